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

The embedded cluster starts in a background thread (``Runner.__enter__`` returns at once, the
caller lists its files meanwhile); ``Runner.warm`` loads the model on every worker as soon as it
is up; ``Runner.close_soon`` stops the cluster while the caller finishes its own work.
``Timings`` records when each part of a run started and ended (``--timings``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
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


class Timings:
    """When the parts of one run started and ended, for benchmarks (``--timings FILE``); nothing
    prints it. Times are ``time.time()`` (seconds since the epoch: comparable between the
    processes of one machine, and roughly between machines).

    ``spans``: ``{"part", "start", "end", "where"}`` for the client's parts (``cluster start``,
    ``list files``, ``check site``, ``finish``, ``write``, ``cluster stop``, ...) and the
    workers' (``model load``); ``files``: one record per file: ``seconds`` per part its task
    measured on the worker (``read``, ``hash``, ``mel``, ``forward``, ``summary``, ...), the
    task's ``start``/``end``, the worker's ``pid``, and when the client ``received`` and
    ``merged`` it (the caller adds what it knows); ``workers``: what each worker reported of
    its own (the cache writes its background thread made: ``entries``, ``seconds``)."""

    def __init__(self):
        self.spans: list[dict] = []
        self.files: list[dict] = []
        self.workers: list[dict] = []
        self._lock = threading.Lock()

    def add(self, part: str, start: float, end: float, where: str = "client", **extra) -> None:
        with self._lock:
            self.spans.append({"part": part, "start": start, "end": end, "where": where, **extra})

    @contextlib.contextmanager
    def span(self, part: str, **extra):
        t0 = time.time()
        try:
            yield
        finally:
            self.add(part, t0, time.time(), **extra)

    def to_dict(self) -> dict:
        with self._lock:
            return {"spans": list(self.spans), "files": list(self.files),
                    "workers": list(self.workers)}

    def save(self, path: str | os.PathLike) -> None:
        import json

        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
            fh.write("\n")


def span(timings: Timings | None, part: str, **extra):
    """``timings.span(part)``, or nothing without a record."""
    return timings.span(part, **extra) if timings is not None else contextlib.nullcontext()


class Runner:
    """A corpus runner for one job: ``with Runner(jobs, scheduler) as r: r.call(...); r.map(...)``.

    Starts (and at the end stops) the embedded cluster, or connects to ``scheduler``; ``jobs=1``
    without a scheduler runs everything in this process.

    The cluster starts in a background thread: ``with Runner(...)`` returns at once, so that the
    caller lists and checks its files while the workers start; :meth:`warm` asked before the
    cluster is up is sent the moment it is. Whatever needs the cluster (``client``, ``call``,
    ``map``) waits for it, and raises the SteveError the start gave."""

    def __init__(self, jobs: int | None = None, scheduler: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, timings: Timings | None = None):
        if jobs is not None and jobs < 1:
            raise SteveError(f"--jobs must be at least 1, got {jobs}")
        self.jobs, self.scheduler, self.timeout = jobs, scheduler, timeout
        self.timings = timings
        self._client = None
        self._ctx = None
        self._warming: list = []
        self._to_warm: list = []
        self._lock = threading.Lock()
        self._starting: threading.Thread | None = None
        self._stopping: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._stop_error: BaseException | None = None
        self.local = scheduler is None and (jobs == 1 or (jobs is None and default_jobs() == 1))

    def __enter__(self) -> "Runner":
        if not self.local:
            self._starting = threading.Thread(target=self._start, name="steve-qt-cluster-start",
                                              daemon=True)
            self._starting.start()
        return self

    def _start(self) -> None:
        t0 = time.time()
        try:
            ctx = dask_client(self.jobs, self.scheduler, self.timeout)
            client = ctx.__enter__()
        except BaseException as exc:  # raised where the client is first needed
            self._start_error = exc
            return
        if self.timings is not None:
            self.timings.add("cluster start", t0, time.time())
        with self._lock:
            self._ctx, self._client = ctx, client
            pending, self._to_warm = self._to_warm, []
        for fn, args in pending:
            self._submit_warm(fn, args)

    def _ready(self) -> None:
        """Wait for the cluster to be up; raise what its start raised."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._start_error is not None:
            exc, self._start_error = self._start_error, None
            raise exc

    @property
    def client(self):
        """The ``distributed.Client`` (None in-process); waits for the cluster to be up."""
        self._ready()
        return self._client

    def __exit__(self, *exc) -> None:
        try:
            self._ready()
        except BaseException:
            if exc[0] is None:
                raise
        if self._stopping is None:
            self._stop()
        self._stopping.join()
        self._stopping = None
        if self._stop_error is not None:
            err, self._stop_error = self._stop_error, None
            if exc[0] is None:
                raise err

    def close_soon(self, before: Callable[[], R] | None = None):
        """Start stopping the cluster in the background (``__exit__`` waits for it), so that the
        caller goes on with work that no longer needs the workers. ``before()`` runs on every
        worker first (in-process: here); the returned Future gets ``{worker: before()}`` (or
        the exception) as soon as that is done, before the cluster is down."""
        from concurrent.futures import Future

        self._ready()
        done: Future = Future()
        if self._stopping is None:
            self._stop(before, done)
        else:
            done.set_result({})
        return done

    def _stop(self, before=None, done=None) -> None:
        def stop() -> None:
            t0 = time.time()
            try:
                if before is not None:
                    try:
                        got = (self._client.run(before) if self._client is not None
                               else {"local": before()})
                    except Exception as exc:  # the workers are going away anyway
                        if done is not None:
                            done.set_exception(exc)
                    else:
                        if done is not None:
                            done.set_result(got)
                elif done is not None:
                    done.set_result({})
            finally:
                for fut in self._warming:
                    fut.release()
                self._warming = []
                try:
                    if self._ctx is not None:
                        self._ctx.__exit__(None, None, None)
                except BaseException as exc:  # raised by __exit__
                    self._stop_error = exc
                self._ctx = self._client = None
                if self.timings is not None:
                    self.timings.add("cluster stop", t0, time.time())

        self._stopping = threading.Thread(target=stop, name="steve-qt-cluster-stop", daemon=True)
        self._stopping.start()

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def warm(self, fn: Callable[..., object], *args) -> None:
        """Start ``fn(*args)`` on every worker as soon as it is up and return at once (load the
        model everywhere while the client goes on: the first files then find it loaded on every
        worker, not only on the one ``call`` ran on). :meth:`warmed` gives the first result;
        errors are dropped (a task that needs what it prepares does the same work itself when
        it did not happen). In-process: nothing (``warmed`` runs it)."""
        if self.local:
            return
        with self._lock:
            if self._client is None:
                self._to_warm.append((fn, args))
                return
        self._submit_warm(fn, args)

    def _submit_warm(self, fn, args) -> None:
        client = self._client
        workers = list(client.scheduler_info(n_workers=-1).get("workers", {}))
        self._warming += [client.submit(fn, *args, workers=[w], allow_other_workers=False,
                                        pure=False, key=f"steve-qt-warm-{uuid.uuid4().hex}")
                          for w in workers]

    def warmed(self, fn: Callable[..., R], *args) -> R:
        """The result of the first :meth:`warm` task of ``fn`` to finish without error (it is
        the same on every worker); ``fn(*args)`` on a worker when none did (:meth:`call`)."""
        if self.client is not None and self._warming:
            from distributed import as_completed

            for fut in as_completed(list(self._warming), loop=self._client.loop):
                if fut.status == "finished":
                    try:
                        return fut.result()
                    except Exception:
                        continue
        return self.call(fn, *args)

    def warm_results(self) -> list:
        """The results of the :meth:`warm` tasks that have finished without error."""
        out = []
        for fut in self._warming:
            if fut.status == "finished":
                try:
                    out.append(fut.result())
                except Exception:
                    pass
        return out

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
