"""Simulated months and their marks kept for the replays of a run that need them again.

`opl loop` simulates every candidate on the same seed and paths (common random numbers), so the months
of a (price model, seed, chunk) are the same for every candidate, and their marks too while the legs (and
everything the marks depend on) are unchanged. A `MonthStore` made current with `sharing` keeps them:
the replay (`opl.runtime.engine.replay`) reads a chunk's months and marks from it instead of generating
and marking them again, and puts what it generated there. What is read back is what would have been
computed, array for array (the keys hold every input; the arrays are made read-only so that no replay can
change them for the next one), so results do not depend on the store.

The store holds at most ``limit`` bytes (least recently used entries are dropped first). Forked workers
read the entries they inherit (`opl.runtime.engine.replay._pooled` passes them a `MonthStore.reader`) and
keep nothing new. The store does not travel: a pickled store (a Dask task carrying the evaluator) arrives
empty.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Hashable, Iterator

if TYPE_CHECKING:  # numpy is not imported by the loop's driver until a replay runs
    import numpy as np

__all__ = ["MonthStore", "STORE_BYTES", "current", "sharing", "suspended"]

#: What `opl loop`'s evaluator keeps by default: a 10,000-path chunk's twelve months take about 45 MB,
#: their marks for a two-legged strategy about 160 MB more.
STORE_BYTES = 512 * 2**20

_STORE: ContextVar["MonthStore | None"] = ContextVar("opl_month_store", default=None)


class MonthStore:
    """A memory-bounded least-recently-used map from a key (every input of what it holds) to arrays.

    Parameters
    ----------
    limit
        Bytes the entries may take together; an entry larger than that is not kept.
    """

    def __init__(self, limit: int = STORE_BYTES):
        self.limit = limit
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.keeps = True  # False: a reader (`reader`), which adds nothing
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def __getstate__(self) -> dict:
        # Entries stay in the process that made them: a copy sent elsewhere starts empty.
        return {"limit": self.limit}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["limit"])

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any | None:
        """The entry of ``key`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry[0]

    def reader(self) -> "MonthStore":
        """A store that reads these entries and keeps nothing new: what forked workers get, so that what
        they make does not grow each worker's memory by up to ``limit``."""
        view = MonthStore(self.limit)
        view._entries, view.keeps = self._entries, False
        return view

    def put(self, key: Hashable, value: Any, arrays: list[np.ndarray]) -> None:
        """Keep ``value`` under ``key``; ``arrays`` are the arrays it holds (made read-only, counted once each)."""
        size = sum(a.nbytes for a in {id(a): a for a in arrays}.values())
        if not self.keeps or size > self.limit or key in self._entries:
            return
        for a in arrays:
            a.flags.writeable = False
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.limit:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped


def current() -> MonthStore | None:
    """The store in force (None: months are generated and marked every time)."""
    return _STORE.get()


@contextmanager
def sharing(store: MonthStore | None) -> Iterator[None]:
    """Make ``store`` current for the replays in the wrapped code (None: the enclosing one stays)."""
    if store is None:
        yield
        return
    token = _STORE.set(store)
    try:
        yield
    finally:
        _STORE.reset(token)


@contextmanager
def suspended() -> Iterator[None]:
    """No store in force in the wrapped code (a replay whose months no later replay reads: `sharing` with
    None keeps the enclosing store)."""
    token = _STORE.set(None)
    try:
        yield
    finally:
        _STORE.reset(token)
