"""A tiny evented model, Qt-free: ``obj.events.<name>.connect(callback)``.

Modelled on napari's ``EmitterGroup``: a model owns one :class:`EmitterGroup` with one
:class:`EventEmitter` per field; setting a field emits ``Event(type=name, value=new, old=old)``
to every connected callback, synchronously, in the thread that set it (the GUI thread: workers
hand their results to the GUI thread first, they never set fields themselves).

A callback that raises does not stop the others: the error is logged (logger
``steve_qt.core.events``, level ERROR, with the traceback and the event's name) and the remaining
callbacks still run, so one broken view cannot freeze the rest. The tests fail on such a record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str  # name of the emitter, e.g. "layer"
    value: Any = None  # the new value
    old: Any = None  # the previous value (when there is one)


Callback = Callable[[Event], Any]


class EventEmitter:
    def __init__(self, name: str):
        self.name = name
        self._callbacks: list[Callback] = []
        self._blocked = 0

    def connect(self, callback: Callback) -> Callback:
        """Call ``callback(event)`` on every emit; returns the callback (usable as decorator)."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callback | None = None) -> None:
        """Remove one callback, or all of them when ``callback`` is None."""
        if callback is None:
            self._callbacks.clear()
        elif callback in self._callbacks:
            self._callbacks.remove(callback)

    @property
    def callbacks(self) -> tuple[Callback, ...]:
        return tuple(self._callbacks)

    def blocked(self) -> "_Blocker":
        """Context manager: emits inside it are dropped."""
        return _Blocker(self)

    def __call__(self, value: Any = None, old: Any = None) -> Event:
        event = Event(self.name, value, old)
        if self._blocked:
            return event
        for cb in list(self._callbacks):
            try:
                cb(event)
            except Exception:  # one broken listener must not stop the others
                log.exception("error in a listener of event %r (%s)", self.name,
                              getattr(cb, "__qualname__", repr(cb)))
        return event

    emit = __call__


class _Blocker:
    def __init__(self, emitter: EventEmitter):
        self.emitter = emitter

    def __enter__(self) -> None:
        self.emitter._blocked += 1

    def __exit__(self, *exc) -> None:
        self.emitter._blocked -= 1


class EmitterGroup:
    """Named emitters: ``group.add("layer")`` then ``group.layer.connect(cb)``."""

    def __init__(self, *names: str):
        self._emitters: dict[str, EventEmitter] = {}
        for n in names:
            self.add(n)

    def add(self, name: str) -> EventEmitter:
        if name not in self._emitters:
            self._emitters[name] = EventEmitter(name)
        return self._emitters[name]

    def __getattr__(self, name: str) -> EventEmitter:
        try:
            return self.__dict__["_emitters"][name]
        except KeyError:
            raise AttributeError(f"no event {name!r}") from None

    def include(self, other: "EmitterGroup") -> None:
        """Make ``other``'s emitters reachable from this group too (the same emitter objects:
        connecting through either group is the same thing). A composed model uses this to offer
        one ``events`` over its parts."""
        for name, emitter in other._emitters.items():
            if self._emitters.get(name, emitter) is not emitter:
                raise ValueError(f"two parts emit {name!r}")
            self._emitters[name] = emitter

    def __contains__(self, name: str) -> bool:
        return name in self._emitters

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._emitters)


def same(a: Any, b: Any) -> bool:
    """Equality that tolerates values (numpy arrays) whose ``==`` is not a bool."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


class Evented:
    """Base of the small models: ``_set(name, value)`` stores a field and emits its event."""

    events: EmitterGroup

    def _set(self, name: str, value: Any) -> bool:
        old = getattr(self, name)
        if same(old, value):
            return False
        setattr(self, name, value)
        getattr(self.events, name)(value, old)
        return True
