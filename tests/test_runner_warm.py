"""Runner.warm runs a function once on every worker of the embedded cluster, without waiting."""

from __future__ import annotations

import os
import sys
import time

import cloudpickle

from steve_qt.core.features.runner import Runner

KEY = "STEVE_QT_TEST_WARMED"  # the mark lives in the worker process's environment

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


def mark(tag: str) -> int:
    time.sleep(0.2)
    os.environ[KEY] = os.environ.get(KEY, "") + tag + ";"
    return os.getpid()


def marks() -> list[str]:
    return [t for t in os.environ.get(KEY, "").split(";") if t]


def test_warm_runs_on_every_worker_and_does_not_wait():
    with Runner(jobs=2) as runner:
        pids = list(runner.client.run(os.getpid).values())
        t0 = time.perf_counter()
        runner.warm(mark, "model")
        assert time.perf_counter() - t0 < 0.2  # returned before the 0.2 s tasks could finish
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = runner.client.run(marks)
            if all(v == ["model"] for v in seen.values()):
                break
            time.sleep(0.1)
        assert len(seen) == 2 and all(v == ["model"] for v in seen.values()), seen
    for pid in pids:  # the cluster's workers are gone with the runner
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            raise AssertionError(f"worker {pid} still running after the runner stopped")


def test_warm_in_process_does_nothing():
    os.environ.pop(KEY, None)
    with Runner(jobs=1) as runner:
        runner.warm(mark, "x")
    assert marks() == []
