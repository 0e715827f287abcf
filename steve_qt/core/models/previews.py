"""Previews: a first result computed without loading the model (no torch), shown until the
model's own result replaces it.

An adapter package may offer, beside its adapter's entry point, a module-level function

    preview_for(arg) -> (fn(samples, window, should_cancel) -> Extraction | None) | None

(``arg``: the part of the model spec after the colon). It returns None when it cannot preview
that model (steve_whisper previews the embedded tiny.en once its converted weights are in the
user cache). The preview's Extraction has ``meta[PREVIEW_META]`` set and ``"model"`` first in
``pending``. Importing the package must stay light (no torch): the front end looks at it before
the model loads.

``start(spec, path)`` computes a preview of a file in a background thread at start-up (the GUI
does so before it builds its window); ``take(spec, audio, window, should_cancel)`` hands it over
(or computes one now) in the extraction worker. Failures are logged and give no preview.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Callable

from .adapters import CancelFn, Extraction, available_adapters, parse_spec
from ..errors import Cancelled

log = logging.getLogger(__name__)

#: ``Extraction.meta`` key that marks a preview (its value says what computed it)
PREVIEW_META = "preview"
#: what a preview is, in a phrase for titles and messages
PREVIEW_NOTE = "computed without torch, within one float16 step of the model's capture"
#: why a preview is not exported
PREVIEW_NOT_EXPORTED = ("the maps shown are the encoder preview (computed without torch), not "
                        "the model's own capture; Attention > Extract Again gives those")

#: seconds ``take`` waits for a started preview (about half a second normally) before it gives up
WAIT_S = 20.0

#: (spec, resolved path, window) -> Future of (samples, Extraction | None)
_STARTED: dict[tuple, Future] = {}


def is_preview(ex) -> bool:
    return PREVIEW_META in (getattr(ex, "meta", None) or {})


def preview_function(spec: str | None) -> Callable | None:
    """The preview function of ``spec``'s adapter package for this model, or None."""
    name, arg = parse_spec(spec)
    try:
        ep = available_adapters().get(name)
        if ep is None:
            return None
        offer = getattr(importlib.import_module(ep.module), "preview_for", None)
        return offer(arg) if offer is not None else None
    except Exception:  # noqa: BLE001 - a preview is optional: log and go without
        log.warning("no preview for %s", spec, exc_info=True)
        return None


def _key(spec: str | None, path, window: int) -> tuple:
    name, arg = parse_spec(spec)
    return (name, arg, str(Path(path).resolve()), window)


def _compute(fn: Callable, path, window: int):
    from ..speech.audio import load_audio

    samples = load_audio(path).samples
    return samples, fn(samples, window, None)


def _in_child(fn: Callable, path, window: int, conn) -> None:
    """The forked child: compute, send (samples, Extraction) or the exception, exit."""
    try:
        conn.send(_compute(fn, path, window))
    except BaseException as exc:  # noqa: BLE001 - re-raised in the parent by take()
        conn.send(exc)
    finally:
        conn.close()


def start(spec: str | None, path, window: int = 0) -> bool:
    """Read ``path`` and compute its preview in the background; False (nothing started) when
    ``spec``'s model has no preview now.

    Where processes can be forked (Linux), in a child process forked now (call this before
    other threads start): a thread of this process would share the GIL with the GUI thread
    building the window, and the preview's many short numpy calls would each wait for it
    (measured under load 5 on 2 cores: the preview was ready 0.17-0.45 s after the window was
    built from a child, 0.48-0.74 s from a thread; the first paint came at the same time within
    the noise). A thread waits here for the child's answer. Elsewhere, in a thread."""
    fn = preview_function(spec)
    if fn is None:
        return False
    fut: Future = Future()
    child = _fork_child(fn, path, window)

    def run() -> None:
        try:
            if child is None:
                fut.set_result(_compute(fn, path, window))
                return
            proc, conn = child
            try:
                answer = conn.recv()
            except EOFError:
                answer = RuntimeError(f"the preview process ended ({proc.exitcode})")
            finally:
                conn.close()
                proc.join(5)
            if isinstance(answer, BaseException):
                raise answer
            fut.set_result(answer)
        except BaseException as exc:  # noqa: BLE001 - handed to take(), which logs it
            fut.set_exception(exc)

    fut.process = child[0] if child is not None else None  # take() ends it on Cancel
    _STARTED[_key(spec, path, window)] = fut
    threading.Thread(target=run, name="steve-qt preview", daemon=True).start()
    return True


def _fork_child(fn: Callable, path, window: int):
    """(process, connection) of a forked child computing the preview, or None (no fork)."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_in_child, args=(fn, path, window, send),
                       name="steve-qt preview", daemon=True)
    proc.start()
    send.close()
    return proc, receive


def take(spec: str | None, audio, window: int = 0,
         should_cancel: CancelFn | None = None) -> Extraction | None:
    """The preview of ``audio`` (a steve_qt Audio) for ``spec``: the one ``start`` computed for
    the same file and samples (waited for), else computed now; None when there is none.
    Raises Cancelled when ``should_cancel()`` turns True while waiting or computing."""
    fut = _STARTED.pop(_key(spec, audio.path, window), None) if audio.path else None
    try:
        if fut is not None:
            deadline = time.monotonic() + WAIT_S
            while not wait([fut], timeout=0.02).done:
                cancelled = should_cancel is not None and should_cancel()
                if cancelled or time.monotonic() > deadline:
                    if getattr(fut, "process", None) is not None:
                        fut.process.kill()  # SIGKILL: a handler or a stuck child cannot keep it
                    if cancelled:
                        raise Cancelled()
                    raise TimeoutError(f"no preview after {WAIT_S:g} s")
            samples, ex = fut.result()
            if len(samples) == len(audio.samples) and (samples == audio.samples).all():
                return ex
        fn = preview_function(spec)
        return None if fn is None else fn(audio.samples, window, should_cancel)
    except Cancelled:
        raise
    except Exception:  # noqa: BLE001 - no preview; the model's own result follows as ever
        log.warning("preview failed for %s", spec, exc_info=True)
        return None
