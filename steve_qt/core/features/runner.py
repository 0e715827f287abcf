"""The corpus runner: one task per file on a Dask cluster (or in this process).

``run_files(files, task, jobs=None, scheduler=None, progress=None)`` calls ``task(file)`` for
every file and returns the results in the order of ``files``; ``iter_files`` yields
``(index, result)`` as they finish, so that a caller can merge them without holding them all.

Where the tasks run:

- default: an embedded ``LocalCluster`` started and stopped here: ``jobs`` worker processes
  (default: the number of cores), one thread each, on 127.0.0.1, no dashboard; each worker's
  torch gets ``cores // jobs`` threads (``OMP_NUM_THREADS``).
- ``jobs=1`` (and no scheduler): in this process, one file after the other (no cluster to start;
  the same task code).
- ``scheduler="tcp://host:8786"``: an existing cluster (``dask scheduler`` + ``dask worker``,
  dask-jobqueue, Kubernetes, ...); its workers must import steve_qt. An address that does not
  answer within ``timeout`` seconds is a SteveError.

Tasks must be picklable callables that return picklable results and never raise (a broken file is
a result with its reason). They must be idempotent: a worker that dies mid-run has its tasks
re-run elsewhere by Dask, so a task may run twice; the per-file caches are written atomically and
keyed by content, so a second run writes the same thing. State a task wants to keep per worker
(the loaded model) lives in module globals of the worker process (``pipeline.get_adapter``).

At most ``2 * workers + 2`` tasks are in flight, so results never pile up in memory however large
the corpus is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from typing import Callable, Iterator, Sequence, TypeVar

from ..errors import SteveError

#: columns of the files.csv the corpus commands write (one row per audio file)
FILES_COLUMNS = ("file", "status", "reason", "frames", "windows", "extracted", "cached", "seconds")

R = TypeVar("R")
#: progress(done, total, what) after each file.
ProgressFn = Callable[[int, int, str], None]

DEFAULT_TIMEOUT_S = 10.0

#: Dask settings for the embedded cluster's workers. Measured here (tiny.en encoder forward, one
#: thread, a busy 2-core machine): with Dask's defaults a forward took about 2x as long in a worker
#: as in a plain process; with these it takes the same. Dask sets MALLOC_TRIM_THRESHOLD_ in its
#: workers, which turns off glibc's adaptive mmap threshold (torch's large temporaries are then
#: mmapped and page-faulted afresh on every call); its statistical profiler and 20 ms ticks wake
#: the worker's other threads. Users of --scheduler can give their workers the same settings.
WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(jobs: int | None = None, scheduler: str | None = None,
                timeout: float = DEFAULT_TIMEOUT_S):
    """A ``distributed.Client``: on an embedded LocalCluster, or connected to ``scheduler``."""
    from distributed import Client, LocalCluster

    for name in ("distributed", "distributed.worker", "distributed.nanny", "distributed.scheduler",
                 "distributed.core", "distributed.comm"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SteveError(f"no Dask scheduler answers at {scheduler} within {timeout:g} s "
                             f"({type(exc).__name__})") from exc
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError) as exc:
                raise SteveError(f"the Dask scheduler at {scheduler} has no workers "
                                 f"(waited {timeout:g} s)") from exc
            yield client
        finally:
            client.close()
        return
    jobs = jobs or default_jobs()
    threads = str(max(1, default_jobs() // jobs))
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    import dask

    spawn_env = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ",
                                                   {}).items() if k != "MALLOC_TRIM_THRESHOLD_"}
    spawn_env.update(env)
    with dask.config.set({**WORKER_CONFIG, "distributed.nanny.pre-spawn-environ": spawn_env}):
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1",
                               silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


class Runner:
    """A corpus runner for one job: ``with Runner(jobs, scheduler) as r: r.call(...); r.map(...)``.

    Starts (and at the end stops) the embedded cluster, or connects to ``scheduler``; ``jobs=1``
    without a scheduler runs everything in this process."""

    def __init__(self, jobs: int | None = None, scheduler: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S):
        if jobs is not None and jobs < 1:
            raise SteveError(f"--jobs must be at least 1, got {jobs}")
        self.jobs, self.scheduler, self.timeout = jobs, scheduler, timeout
        self.client = None
        self._ctx = None
        self._warming: list = []
        self.local = scheduler is None and (jobs == 1 or (jobs is None and default_jobs() == 1))

    def __enter__(self) -> "Runner":
        if not self.local:
            self._ctx = dask_client(self.jobs, self.scheduler, self.timeout)
            self.client = self._ctx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for fut in self._warming:
            fut.release()
        self._warming = []
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
            self._ctx = self.client = None

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def warm(self, fn: Callable[..., object], *args) -> None:
        """Start ``fn(*args)`` on every worker now and return at once (load the model everywhere
        while the client goes on: the first files then find it loaded on every worker, not only
        on the one ``call`` ran on). Its results and errors are dropped; a task that needs what
        it prepares does the same work itself when it did not happen. In-process: nothing."""
        if self.client is None:
            return
        workers = list(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        self._warming = [self.client.submit(fn, *args, workers=[w], allow_other_workers=False,
                                            pure=False, key=f"steve-qt-warm-{uuid.uuid4().hex}")
                         for w in workers]

    def call(self, fn: Callable[..., R], *args) -> R:
        """``fn(*args)`` once, on a worker (where the model gets loaded anyway)."""
        if self.client is None:
            return fn(*args)
        fut = self.client.submit(fn, *args, pure=False)
        try:
            return fut.result()
        except SteveError:
            raise
        except Exception as exc:
            raise SteveError(f"the cluster could not run {getattr(fn, '__name__', fn)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        finally:
            fut.release()

    def map(self, files: Sequence[str], task: Callable[[str], R],
            progress: ProgressFn | None = None) -> Iterator[tuple[int, R]]:
        """Yield ``(index into files, task(files[index]))`` as tasks finish (any order)."""
        files = [os.fspath(f) for f in files]
        total = len(files)
        if progress:
            progress(0, total, "")
        if total == 0:
            return
        if self.client is None:
            for i, f in enumerate(files):
                r = task(f)
                if progress:
                    progress(i + 1, total, os.path.basename(f))
                yield i, r
            return
        from distributed import as_completed

        client = self.client
        run = uuid.uuid4().hex[:8]
        window = 2 * self.workers + 2
        pending = iter(range(total))
        index_of = {}

        def submit(i: int):
            fut = client.submit(task, files[i], key=f"steve-qt-{run}-{i}", pure=False)
            index_of[fut.key] = i
            return fut

        queue = as_completed([submit(i) for _, i in zip(range(window), pending)],
                             loop=client.loop)
        done = 0
        for fut in queue:
            i = index_of.pop(fut.key)
            try:
                result = fut.result()
            except Exception as exc:  # a task that raised, or kept killing its workers
                raise SteveError(f"the task failed on the cluster: {type(exc).__name__}: {exc}",
                                 files[i]) from exc
            fut.release()
            del fut
            nxt = next(pending, None)
            if nxt is not None:
                queue.add(submit(nxt))
            done += 1
            if progress:
                progress(done, total, os.path.basename(files[i]))
            yield i, result


def never_raising(run: Callable[[str], R], path: str, failed: Callable[[str, str], R]) -> R:
    """``run(path)``, or ``failed(path, reason)`` when it raises (a SteveError gives its problem,
    anything else its type and message): the body of a task that never raises. The result's
    ``seconds`` is set to the time it took."""
    t0 = time.perf_counter()
    try:
        result = run(path)
    except SteveError as exc:
        result = failed(path, exc.problem)
    except Exception as exc:  # a model failure or a bug on this file: report it, go on
        result = failed(path, f"{type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - t0
    return result


def iter_files(files: Sequence[str], task: Callable[[str], R], jobs: int | None = None,
               scheduler: str | None = None, progress: ProgressFn | None = None,
               timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[tuple[int, R]]:
    """Yield ``(index into files, task(files[index]))`` as tasks finish (any order)."""
    with Runner(jobs, scheduler, timeout) as runner:
        yield from runner.map(files, task, progress)


def run_files(files: Sequence[str], task: Callable[[str], R], jobs: int | None = None,
              scheduler: str | None = None, progress: ProgressFn | None = None,
              timeout: float = DEFAULT_TIMEOUT_S) -> list[R]:
    """``[task(f) for f in files]``, on the cluster (see module doc); results in file order."""
    out: list = [None] * len(files)
    for i, r in iter_files(files, task, jobs, scheduler, progress, timeout):
        out[i] = r
    return out


def tqdm_progress(desc: str, unit: str = "file", tty_only: bool = False):
    """A progress callback ``progress(done, total, what)`` drawing a tqdm bar on stderr, and a
    function that closes it. ``tty_only``: draw only when stderr is a terminal."""
    import sys

    bar = None

    def progress(done: int, total: int, what: str) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True,
                       disable=None if tty_only else False)
        if total != bar.total:  # a model run's stages count their own steps
            bar.total = total
        bar.set_postfix_str(what, refresh=False)
        if done >= bar.n:
            bar.update(done - bar.n)
        else:
            bar.n = done
            bar.refresh()

    def close() -> None:
        if bar is not None:
            bar.close()

    return progress, close
