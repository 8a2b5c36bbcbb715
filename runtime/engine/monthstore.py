"""Simulated months and their marks kept for the replays of a run that need them again.

`opl loop` simulates every candidate on the same seed and paths (common random numbers), so the months
of a (price model, seed, chunk) are the same for every candidate, and their marks too while the legs (and
everything the marks depend on) are unchanged. A `MonthStore` made current with `sharing` keeps them:
the replay (`opl.runtime.engine.replay`) reads a chunk's months and marks from it instead of generating
and marking them again, and puts what it generated there. What is read back is what would have been
computed, array for array (the keys hold every input; the arrays are made read-only so that no replay can
change them for the next one), so results do not depend on the store.

`opl simulate` keeps its sweep's months and marks the same way for its cost scenarios, which replay the
sweep's paths with its legs; there the marks are kept as the sweep marked them (``complete_marks=False``)
and the cost pass marks what it lacks (`opl.simulation.run._sweep_and_scenarios`).

The store holds at most ``limit`` bytes (least recently used entries are dropped first), each memory counted
once however many entries hold it or views of it: a month's marks hold its paths' prices and volatilities,
which the months' entry holds too. A replay of other months may read stored marks too (`MonthStore.matching`):
a ``hit_rate`` scenario copies the base months' marks on the paths where its months are theirs
(`opl.runtime.engine.replay._StoredMonths._siblings`). Forked workers read the entries they inherit (`opl.runtime.engine.replay._pooled` passes them a `MonthStore.reader`) and
keep nothing new. The store does not travel: a pickled store (a Dask task carrying the evaluator) arrives
empty.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator

if TYPE_CHECKING:  # numpy is not imported by the loop's driver until a replay runs
    import numpy as np

__all__ = ["MonthStore", "STORE_BYTES", "current", "owner", "sharing", "suspended"]

#: What `opl loop`'s evaluator keeps by default. A 10,000-path chunk's twelve months take about 30 MB, their
#: marks for the jujube strangle's two legs about 230 MB more; a candidate also reads the months of its market
#: scenarios and counterfactuals (six for the jujube file: `opl.runtime.engine.replay._months_made_here`).
#: That is 440 MB, and a candidate that tries other legs puts 230 MB of marks more: with 512 MB they pushed
#: out the best legs' marks, which the next candidate made again.
STORE_BYTES = 768 * 2**20

_STORE: ContextVar["MonthStore | None"] = ContextVar("opl_month_store", default=None)


class MonthStore:
    """A memory-bounded least-recently-used map from a key (every input of what it holds) to arrays.

    Parameters
    ----------
    limit
        Bytes the entries may take together; an entry larger than that is not kept.
    complete_marks
        Whether a month's marks are made whole before they are kept (`opl loop`'s store: the candidates hold
        other paths), or kept as the replay that made them marked them, tracked, for the next replay of the
        same months to mark only what it lacks (`opl.simulation.run.simulate`'s: its cost scenarios are
        replayed on the sweep's paths, where the sweep marked a month's legs on the paths it held them).
    """

    def __init__(self, limit: int = STORE_BYTES, *, complete_marks: bool = True):
        self.limit = limit
        self.complete_marks = complete_marks
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.keeps = True  # False: a reader (`reader`), which adds nothing
        self._entries: OrderedDict[Hashable, tuple[Any, tuple[int, ...]]] = OrderedDict()  # value, its arrays' ids
        self._held: dict[int, list] = {}  # id of a held array -> [entries holding it, its bytes]

    def __getstate__(self) -> dict:
        # Entries stay in the process that made them: a copy sent elsewhere starts empty.
        return {"limit": self.limit, "complete_marks": self.complete_marks}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["limit"], complete_marks=state.get("complete_marks", True))

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

    def recent(self, key: Hashable) -> bool:
        """Whether ``key`` is held; if so it is now the most recently used (a replay elsewhere, a forked worker,
        is about to read it). Not counted as a hit: this process does not read it."""
        if key not in self._entries:
            return False
        self._entries.move_to_end(key)
        return True

    def holds(self, key: Hashable) -> bool:
        """Whether ``key`` is held (not counted as a hit or a miss; its place in the order is unchanged)."""
        return key in self._entries

    def matching(self, test: Callable[[Hashable], bool]) -> list:
        """The entries whose keys pass ``test``, most recently used first (not counted as hits or misses)."""
        return [self._entries[key][0] for key in reversed(self._entries) if test(key)]

    def reader(self) -> "MonthStore":
        """A store that reads these entries and keeps nothing new: what forked workers get, so that what
        they make does not grow each worker's memory by up to ``limit``."""
        view = MonthStore(self.limit, complete_marks=self.complete_marks)
        view._entries, view.keeps = self._entries, False
        return view

    def put(self, key: Hashable, value: Any, arrays: list[np.ndarray], *, frozen: bool = True) -> None:
        """Keep ``value`` under ``key``; ``arrays`` are the arrays it holds (made read-only unless not ``frozen``:
        marks still to be completed, whose marked elements no reader changes). Memory is counted by the arrays
        that own it (a view counts its base): what another entry holds adds nothing to `bytes`."""
        owners = {id(o): o for o in map(owner, arrays)}
        size = sum(o.nbytes for i, o in owners.items() if i not in self._held)
        if not self.keeps or size > self.limit or key in self._entries:
            return
        for a in arrays if frozen else ():
            a.flags.writeable = False
        for i, o in owners.items():
            held = self._held.setdefault(i, [0, o.nbytes])
            held[0] += 1
        self._entries[key] = (value, tuple(owners))
        self.bytes += size
        while self.bytes > self.limit:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Drop the least recently used entry; the bytes of the arrays no other entry holds go with it."""
        _, (_, ids) = self._entries.popitem(last=False)
        for i in ids:
            held = self._held[i]
            held[0] -= 1
            if not held[0]:
                self.bytes -= held[1]
                del self._held[i]


def owner(a: np.ndarray) -> np.ndarray:
    """The array whose memory ``a`` is (itself, or the base its views lead to)."""
    import numpy as np

    while isinstance(a.base, np.ndarray):
        a = a.base
    return a

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
