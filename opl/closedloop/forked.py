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
from typing import Any, Callable

__all__ = ["Beside", "beside"]


class Beside:
    """``function(*args)`` under way in a forked process, or already done here (`beside`)."""

    def __init__(self, forked, value: Any = None):
        self._forked, self._value = forked, value

    def result(self) -> Any:
        """What the function returned (its exception raised here); waits for the forked process."""
        if self._forked is None:
            return self._value
        try:
            _, value = next(self._forked.results())
            return value
        finally:
            self.close()

    def close(self) -> None:
        """Wait for the forked process to end (its result, if not read, is dropped)."""
        if self._forked is not None:
            self._forked.close()


def beside(function: Callable, *args) -> Beside:
    """``function(*args)`` started in a forked process (`opl.runtime.engine.forkpool`), or run here at once where
    this process may not fork (no ``fork``, or a daemonic process such as a pool's worker). The function and its
    arguments are inherited, not pickled (a simulation's result is large); what it returns must pickle."""
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return Beside(None, function(*args))
    from opl.runtime.engine import forkpool

    return Beside(forkpool.start(lambda _: function(*args), 1, 1))
