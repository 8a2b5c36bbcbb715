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
(`opl.runtime.engine.passmonths._StoredMonths._siblings`). A replay may also keep marks ahead, for later
evaluations (`opl.runtime.engine.passes._marks_made_here`: a loop candidate's scenario marks, which the next
candidate with the same legs reads), but only where `MonthStore.room` finds room beside what the current and
the previous evaluation read (`MonthStore.begin` counts the evaluations). Forked workers read the entries they inherit (`opl.runtime.engine.passes._pooled` passes them a `MonthStore.reader`) and
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

#: What `opl loop`'s evaluator keeps by default. A 10,000-path chunk's twelve months take about 35 MB, their
#: marks for the jujube strangle's two legs about 175 MB more; a candidate also reads the months of its market
#: scenarios and counterfactuals (six for the jujube file: `opl.runtime.engine.passes._months_made_here`) and
#: the marks of its ``hit_rate`` sensitivity: 600 MB. The rest holds a rejected candidate's other legs' marks,
#: or some of a completion's market scenarios' and counterfactuals' marks for the next candidate with the same
#: legs (`opl.runtime.engine.passes._marks_made_here`). At 1 GB two of those five sets fit: the candidates'
#: marks fell from 259.5M to 228.0M, but the main job's largest resident size rose from 1.36 to 1.80 GB, its
#: CPU not measurably lower (273 against 284 s on a loaded machine): not worth it (all five would need 1.4 GB).
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
    ahead
        Whether replays keep marks here ahead, for later evaluations that may read them (`room`): `opl loop`'s
        candidates' store, not the hold-out's, whose marks no later evaluation reads.
    """

    def __init__(self, limit: int = STORE_BYTES, *, complete_marks: bool = True, ahead: bool = False):
        self.limit = limit
        self.complete_marks = complete_marks
        self.ahead = ahead
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.keeps = True  # False: a reader (`reader`), which adds nothing
        # The evaluation under way (`begin`): marks kept ahead (`room`) never push out an entry read by it or the one
        # before (the run's base months and marks, a quick evaluation's scenario marks before its completion).
        self.epoch = 0
        self._used: dict[Hashable, int] = {}  # key -> the epoch it was last read or put in
        self._entries: OrderedDict[Hashable, tuple[Any, tuple[int, ...]]] = OrderedDict()  # value, its arrays' ids
        self._held: dict[int, list] = {}  # id of a held array -> [entries holding it, its bytes]

    def __getstate__(self) -> dict:
        # Entries stay in the process that made them: a copy sent elsewhere starts empty.
        return {"limit": self.limit, "complete_marks": self.complete_marks, "ahead": self.ahead}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["limit"], complete_marks=state.get("complete_marks", True), ahead=state.get("ahead", False))

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
        self._used[key] = self.epoch
        return entry[0]

    def recent(self, key: Hashable) -> bool:
        """Whether ``key`` is held; if so it is now the most recently used (a replay elsewhere, a forked worker,
        is about to read it). Not counted as a hit: this process does not read it."""
        if key not in self._entries:
            return False
        self._entries.move_to_end(key)
        self._used[key] = self.epoch
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
        view._entries, view.keeps, view.epoch = self._entries, False, self.epoch
        return view

    def begin(self) -> None:
        """A new evaluation starts (`opl.closedloop.evaluate.Evaluator`): what the one before last read is now
        old enough for `room` to drop."""
        self.epoch += 1

    def room(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more fit within `limit` beside every entry read or put in this evaluation or the
        one before (`begin`), after dropping the least recently used of the others as far as needed (only if
        that suffices): for what a replay keeps ahead for later evaluations (marks made before they are asked
        for: `opl.runtime.engine.passes._marks_made_here`), which must not push out what the run reads every
        evaluation."""
        if not self.keeps or not self.ahead or nbytes > self.limit:
            return False
        need, held, freed = self.bytes + nbytes - self.limit, {}, 0
        for key, (_, ids) in self._entries.items():  # least recently used first
            if freed >= need or self._used.get(key, -1) >= self.epoch - 1:
                break
            for i in ids:  # memory only this entry (and older ones dropped with it) holds is freed
                held[i] = held.get(i, self._held[i][0]) - 1
                freed += self._held[i][1] if held[i] == 0 else 0
        if freed < need:
            return False
        while self.bytes + nbytes > self.limit:
            self._drop_oldest()
        return True

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
        self._used[key] = self.epoch
        self.bytes += size
        while self.bytes > self.limit:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Drop the least recently used entry; the bytes of the arrays no other entry holds go with it."""
        key, (_, ids) = self._entries.popitem(last=False)
        self._used.pop(key, None)
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
