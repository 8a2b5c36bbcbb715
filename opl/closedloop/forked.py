"""Work the loop's own process hands to a forked process, to run beside what it does next.

The loop's serial stages have parts that do not depend on each other: the data stage's calibration and its
assumption tests, the hold-out simulation's plots and the rest of the final report. On a machine of several
cores one of them runs in a forked process meanwhile (`beside`); the other is done here, then the forked one's
result is read (`Beside.result`). A forked process computes exactly what this one would: the same code and
inputs, inherited, so nothing that is written depends on where it ran.

>>> work = beside(sum, [1, 2, 3])        # doctest: +SKIP
>>> work.result()                        # doctest: +SKIP
6
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

__all__ = ["Beside", "beside"]


class Beside:
    """``function(*args)`` under way in a forked process, or already done here (`beside`)."""

    def __init__(self, pool: ProcessPoolExecutor | None, pending: Any):
        self._pool, self._pending = pool, pending

    def result(self) -> Any:
        """What the function returned (its exception raised here); waits for the forked process."""
        if self._pool is None:
            return self._pending
        try:
            return self._pending.result()
        finally:
            self.close()

    def close(self) -> None:
        """Wait for the forked process to end (its result, if not read, is dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def beside(function: Callable, *args) -> Beside:
    """``function(*args)`` started in a forked process, or run here at once where this process may not fork (no
    ``fork``, or a daemonic process such as a pool's worker). The function and its arguments are inherited, not
    pickled (a simulation's result is large); what it returns must pickle."""
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return Beside(None, function(*args))
    global _CALL
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
    _CALL = (function, args)
    try:
        return Beside(pool, pool.submit(_inherited))  # the pool forks its process here
    finally:
        _CALL = None


_CALL: tuple | None = None  # what the process `beside` forks runs (inherited)


def _inherited():
    function, args = _CALL
    return function(*args)
