"""A deadline for a long computation: `opl loop`'s ``--minutes`` reaching into a simulation already running.

`until` sets the deadline (a `time.monotonic` time) for the code it wraps; the engine's long loops call
`check` — between the steps of a replayed month, between the months of a path chunk, between the tables of
American premiums built for a new time grid — which raises `DeadlinePassed` once it is past, so a simulation
stops within one such unit of work. Nothing partly computed is returned: the caller gets the exception, and
what is cached (tables) stays valid. Forked workers get the deadline explicitly (`opl.runtime.engine.replay`); the
clock is the machine's, the same in every process.

>>> import time
>>> with until(time.monotonic() - 1):  # doctest: +IGNORE_EXCEPTION_DETAIL
...     check()
Traceback (most recent call last):
    ...
opl.runtime.engine.deadline.DeadlinePassed: the simulation was stopped at its deadline
>>> check()  # outside `until`: no deadline
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from opl.errors import OplError

__all__ = ["DeadlinePassed", "check", "current", "until", "unless"]

_DEADLINE: ContextVar[float | None] = ContextVar("opl_runtime_deadline", default=None)
_STOP: ContextVar[Callable[[], bool] | None] = ContextVar("opl_runtime_stop", default=None)

#: The clock deadlines are read on (`time.monotonic`); a test replaces it to count checks instead of seconds.
clock = time.monotonic


class DeadlinePassed(OplError):
    """The computation was stopped at its deadline before it finished; nothing of it is returned."""

    def __init__(self, message: str = "the simulation was stopped at its deadline"):
        super().__init__(message)


@contextmanager
def until(deadline: float | None) -> Iterator[None]:
    """Run the wrapped code under ``deadline`` (None: no deadline; an enclosing one stays in force)."""
    if deadline is None:
        yield
        return
    enclosing = _DEADLINE.get()
    token = _DEADLINE.set(deadline if enclosing is None else min(deadline, enclosing))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@contextmanager
def unless(stopped: Callable[[], bool]) -> Iterator[None]:
    """Run the wrapped code until ``stopped()`` is true — asked where the deadline is checked, then
    `DeadlinePassed` — as well as until the deadline in force: a cluster task whose result is no longer wanted
    (`opl.simulation.cluster`) frees its worker within one step instead of running to its end."""
    token = _STOP.set(stopped)
    try:
        yield
    finally:
        _STOP.reset(token)


def current() -> float | None:
    """The deadline in force (None: none)."""
    return _DEADLINE.get()


def check() -> None:
    """Raise `DeadlinePassed` when the deadline in force is past, or the code was told to stop (`unless`)."""
    deadline = _DEADLINE.get()
    if deadline is not None and clock() > deadline:
        raise DeadlinePassed()
    stopped = _STOP.get()
    if stopped is not None and stopped():
        raise DeadlinePassed("the simulation was stopped: its result is no longer wanted")
