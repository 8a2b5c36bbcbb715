"""Where a pass's months come from: generated side by side, shared by a lockstep pass's jobs, or stored.

A pass replays chunks side by side (`opl.runtime.engine.passes`): `_SideBySide` draws each chunk's paths
from its own seed and joins them (a piece of a chunk keeps its own paths). The jobs of a pass replayed in
lockstep share a chunk's draws, the months of jobs on the same paths and the marks of jobs with the same
legs (`_Shared`, `_Paths`). `_StoredMonths` reads a pass's months and marks from the current
`opl.runtime.engine.monthstore` store when it holds them, else makes them and puts them there, keyed by
every input of what they name (`_months_key`), and has a month copy the marks of a month of its family
(`_family`: the same paths but for a direction hit rate) where their paths agree.

The bookkeeping of who makes which month, so that none is made twice: apart from what a month is
(`opl.runtime.engine.months`) and from the scheduling of passes over processes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from opl.runtime.engine import kernels, monthstore
from opl.runtime.engine.marking import AmericanMarker
from opl.runtime.engine.months import _Month
from opl.runtime.engine.processes import Draws, MonthPaths, PathGenerator
from opl.runtime.engine.runspec import DAYS_PER_YEAR, RunSpec, StrategySpec


class _SideBySide:
    """Several chunks' path generators as one: each chunk draws its own paths (its own seed), the months
    are joined along the path axis. ``kept``: the paths of each chunk the pass replays (a slice; all of them
    but for a piece of a chunk, `passes._passes`)."""

    def __init__(self, generators: list[PathGenerator], kept: list[slice] | None = None):
        self.generators = generators
        self.kept = kept or [slice(None)] * len(generators)

    def next_month(self) -> MonthPaths:
        generators = self.generators
        if len(generators) == 1 and self.kept[0] == slice(None):
            return generators[0].next_month()
        if all(k == slice(None) for k in self.kept):
            # Each chunk writes its paths into its columns of the month's step-major arrays: nothing to join.
            shape = (generators[0].steps + 1, sum(g.paths for g in generators))
            price, vol = np.empty(shape), np.empty(shape)
            offsets = np.cumsum([0] + [g.paths for g in generators])
            months = [g.next_month(out=(price, vol, int(off))) for g, off in zip(generators, offsets)]
            return MonthPaths(price.T, vol.T, *(_joined_paths(parts) for parts in list(zip(*months))[2:]))
        months = [g.next_month() for g in generators]
        months = [mp if k == slice(None) else MonthPaths(*(x[k] for x in mp)) for mp, k in zip(months, self.kept)]
        return MonthPaths(*(_joined_paths(parts) for parts in zip(*months)))


def _joined_paths(parts: tuple[np.ndarray, ...]) -> np.ndarray:
    """Chunks' arrays joined along the paths: a (paths, steps) array as a view of a step-major one (a step's
    column contiguous, as the compiled generator makes them and the replay reads them), a (paths,) one as is."""
    if parts[0].ndim == 1:
        return np.concatenate(parts)
    return np.concatenate([x.T for x in parts], axis=1).T


def _chunk_paths(run: RunSpec, piece: tuple) -> int:
    """The paths of the chunk that ``piece`` (a pass's ``(chunk, paths[, start])``) is or is part of."""
    return piece[1] if len(piece) == 2 else min(run.chunk, run.paths - piece[0] * run.chunk)


def _kept(piece: tuple) -> slice:
    """The paths of its chunk that ``piece`` replays."""
    if len(piece) == 2:
        return slice(None)
    _, n, start = piece
    return slice(start, start + n)


class _Shared:
    """What the jobs of a pass replayed in lockstep (`passes._replay_lockstep`) share, the current month's only:
    each chunk's random draws (`opl.runtime.engine.processes.Draws`: the scenarios of a simulation redraw the
    base's shocks, jumps and signals), the months of jobs on the same paths, the marks of jobs on the
    same paths with the same legs (`_StoredMonths`' keys), and the months of a family (`_family`: a
    ``hit_rate`` scenario's and the base's), whose marks a later job of the family copies where its paths agree."""

    def __init__(self):
        self.draws: dict[tuple[int, int], Draws] = {}  # (seed, chunk)
        self.paths: dict[tuple, "_Paths"] = {}  # a months key
        self.marks: dict[tuple, tuple[int, "_Month", int]] = {}  # a marks key: (month, its marks, reads left)
        self.readers: dict[tuple, int] = {}  # how many jobs read the months and the marks of a key
        self.siblings: dict[tuple, tuple[int, list]] = {}  # a family key: (month, the months made of it so far)
        self.families: dict[tuple, set] = {}  # a family key: the marks keys of its jobs

    def join(self, *keys: tuple) -> None:
        """A job reads the months or marks of ``keys``: what no other job reads is not kept for it."""
        for key in keys:
            self.readers[key] = self.readers.get(key, 0) + 1

    def marked(self, key: tuple, m: int, make) -> "_Month":
        """Month ``m``'s marks of ``key``: ``make()``'s, kept until every job reading them has."""
        found = self.marks.get(key)
        if found is not None and found[0] == m:
            month, left = found[1], found[2] - 1
        else:
            month, left = make(), self.readers.get(key, 1) - 1
        if left > 0:
            self.marks[key] = (m, month, left)
        else:
            self.marks.pop(key, None)  # a month's marks are 50 MB at 30,000 paths: held while read only
        return month

    def draws_of(self, seed: int, chunk: int, months: int) -> Draws:
        """Chunk ``chunk``'s draws, for ``months`` months at least (none is drawn ahead past the longest job's)."""
        key = (seed, chunk)
        if key not in self.draws:
            self.draws[key] = Draws(np.random.SeedSequence([seed, chunk]), months=months)
        draws = self.draws[key]
        draws.months = max(draws.months or 0, months)
        return draws


class _Paths:
    """A pass's months of paths, made month by month (`_SideBySide`); the last one is kept for the jobs of a
    lockstep pass that read the same paths, and every one only for a month store that keeps them."""

    def __init__(self, run: RunSpec, strat: StrategySpec, group: tuple, shared: _Shared | None, readers: int = 1):
        self.readers = readers  # the jobs reading each month: it is dropped once they all have
        self.reads = 0
        self.gen = _SideBySide([
            PathGenerator(spec=run.process, paths=_chunk_paths(run, piece), price=run.price,
                          month_years=strat.tenor_days / DAYS_PER_YEAR, days_per_month=run.days_per_month,
                          steps_per_day=run.steps_per_day, seed=np.random.SeedSequence([run.seed, piece[0]]),
                          engine=run.engine, months=run.months,
                          draws=shared.draws_of(run.seed, piece[0], run.months) if shared is not None else None)
            for piece in group], [_kept(piece) for piece in group])
        self.last: tuple[int, MonthPaths | None] = (-1, None)

    def month(self, m: int) -> MonthPaths:
        """Month ``m``: the last one made (kept until each of its readers has read it), or the next."""
        if m != self.last[0]:
            if m != self.last[0] + 1:
                raise ValueError(f"month {m} asked for after month {self.last[0]}")
            self.last, self.reads = (m, self.gen.next_month()), 0
        mp = self.last[1]
        self.reads += 1
        if self.reads >= self.readers:
            self.last = (m, None)
        return mp


def _family(process):
    """``process`` with no direction hit rate: the processes of a family draw the same numbers and give the same
    months on every path where the hit draw falls on the same side of their rates (a ``hit_rate`` scenario and
    the base: `opl.runtime.engine.processes.PathGenerator._regime`), the others' are another's."""
    if process is None or process.regime is None:
        return process
    return replace(process, regime=replace(process.regime, hit_rate=0.0))


def _months_key_family(key: tuple) -> tuple:
    """A months key (`_months_key`) with its process's family (`_family`)."""
    return (key[0], _family(key[1]), *key[2:])


def _months_key(run: RunSpec, strat: StrategySpec, group: tuple) -> tuple:
    """The month store's key of a pass's months: every input of the paths `_Paths` makes."""
    return ("months", run.process, run.price, strat.tenor_days, run.days_per_month, run.steps_per_day, run.seed,
            run.months, group, run.engine)


class _StoredMonths:
    """The months of a pass of chunks and their marks, read from the current `opl.runtime.engine.monthstore`
    store when it holds them (the same seed, model and legs: `opl loop`'s candidates), else generated and
    marked here and put there. Keys hold every input of what they name, so what is read is what would be
    computed. ``shared``: what the jobs of a lockstep pass share (`_Shared`)."""

    def __init__(self, run: RunSpec, strat: StrategySpec, group: tuple, shared: _Shared | None = None):
        self.run, self.strat, self.group, self.shared = run, strat, group, shared
        self.store = monthstore.current()
        self.key = _months_key(run, strat, group)
        stored = self.store.get(self.key) if self.store is not None else None
        # A piece of a chunk whose whole months the store holds reads its paths of them (`passes._path_parts`).
        self.cut = None
        if stored is None and self.store is not None and len(group) == 1 and len(group[0]) == 3:
            whole = _months_key(run, strat, ((group[0][0], _chunk_paths(run, group[0])),))
            stored = self.store.get(whole)
            if stored is not None:
                self.cut = (whole, _kept(group[0]))
                stored = [MonthPaths(*(_joined_paths((x[self.cut[1]],)) for x in mp)) for mp in stored]
        self.stored = stored is not None
        # Every month is kept only for a store that will keep them (a month of 30,000 paths is 10 MB).
        self.months = list(stored) if self.stored else []
        self.keep = not self.stored and self.store is not None and self.store.keeps
        self.next = 0
        self.marks_key = ("marks", self.key, tuple((leg.is_call, leg.american, leg.strike, leg.extra_days)
                                                   for leg in strat.legs), strat.smile, strat.rate, strat.levels,
                          strat.greeks, run.pack.option, run.engine, run.exact_american, kernels.available())
        # The marks' inputs with the months' but a direction hit rate (`_family`): months of a family agree on
        # the paths where the rate did not change the direction, and so do their marks.
        self.family_key = ("family", _months_key(replace(run, process=_family(run.process)), strat, group),
                           *self.marks_key[2:])
        if shared is not None:
            shared.join(self.key, self.marks_key)
            shared.families.setdefault(self.family_key, set()).add(self.marks_key)
        self.paths = None

    def start(self) -> None:
        """Make or find the generator of this pass's paths (once every job of a lockstep pass has joined)."""
        shared = self.shared
        if self.stored or self.paths is not None:
            return
        if shared is not None and self.key in shared.paths:
            self.paths = shared.paths[self.key]
            return
        readers = shared.readers[self.key] if shared is not None else 1
        self.paths = _Paths(self.run, self.strat, self.group, shared, readers)
        if shared is not None:
            shared.paths[self.key] = self.paths

    def next_month(self) -> MonthPaths:
        """The next month's paths, stored or generated (the whole run's months are put once all are made)."""
        m, self.next = self.next, self.next + 1
        if self.stored:
            return self.months[m]
        self.start()
        mp = self.paths.month(m)
        if self.keep:
            self.months.append(mp)
            if len(self.months) == self.run.months:
                self.store.put(self.key, tuple(self.months), [a for mp in self.months for a in mp])
        return mp

    def month_key(self, m: int, marker: AmericanMarker, euro: AmericanMarker) -> tuple:
        """The store's key of month ``m``'s marks."""
        return (*self.marks_key, m, marker.carry, euro.carry)

    def marked(self, m: int, mp: MonthPaths, marker: AmericanMarker, euro: AmericanMarker) -> "_Month":
        """Month ``m``'s marks (`_Month`), stored, shared with a job of the lockstep pass on the same paths with
        the same legs, or made (and put)."""
        key = self.month_key(m, marker, euro)
        month = self.store.get(key) if self.store is not None else None
        if month is not None:
            return month
        if self.cut is not None:
            whole = self.store.get((self.marks_key[0], self.cut[0], *self.marks_key[2:], m, marker.carry, euro.carry))
            if whole is not None and whole.series is not None and all(s.complete for s in whole.series):
                return _piece_of(whole, self.cut[1], _Month(self.run, self.strat, mp, marker, euro))
        if self.shared is not None and self.shared.readers.get(self.marks_key, 1) > 1:
            return self.shared.marked(self.marks_key, m, lambda: self._made(key, mp, marker, euro, track=True))
        return self._made(key, mp, marker, euro, track=False)

    def _made(self, key: tuple, mp: MonthPaths, marker: AmericanMarker, euro: AmericanMarker, *,
              track: bool) -> "_Month":
        """Month ``mp``'s marks made here (and put in the store); ``track``: read by several jobs, each
        marking what the others did not (`opl.runtime.engine.kernels.SeriesMarks.track`)."""
        month = _Month(self.run, self.strat, mp, marker, euro)
        if self.store is not None and self.store.keeps:
            if self.store.complete_marks:
                month.mark_all()  # the candidates holding other paths read them: every mark, made once
                self.store.put(key, month, _arrays_of(month))
                return month
            # Marked as this replay asks, tracked: a later replay of the same months (`opl simulate`'s cost
            # scenarios on the sweep's paths) marks only the elements it holds that this one did not.
            for series in month.series or ():
                series.track()
            self.store.put(key, month, _arrays_of(month), frozen=False)
            return month
        if track:
            for series in month.series or ():
                series.track()
        month.share(self._siblings(key))
        if self.shared is not None:
            # Kept for the family's jobs still to make this month (held while one may read it only).
            m, made = self.shared.siblings.get(self.family_key, (None, []))
            made = made + [month] if m == key[-3] else [month]
            more = len(made) < len(self.shared.families[self.family_key])
            self.shared.siblings[self.family_key] = (key[-3], made if more else [])
        return month

    def _siblings(self, key: tuple) -> list["_Month"]:
        """The months of this one's family (`_family`) and number on other paths, whose marks are known where
        they are made: those the jobs of the lockstep pass made before this one, and those the store holds
        (complete)."""
        found = []
        if self.shared is not None:
            m, made = self.shared.siblings.get(self.family_key, (None, []))
            found += made if m == key[-3] else []
        if self.store is not None:
            found += self.store.matching(lambda k: k[0] == "marks" and k[1] != self.key and k[2:] == key[2:]
                                         and _months_key_family(k[1]) == self.family_key[1])
        return found


def _piece_of(whole: "_Month", kept: slice, piece: "_Month") -> "_Month":
    """``piece`` (a month made of paths ``kept`` of ``whole``'s, not marked yet) with ``whole``'s marks (every
    one made: `MonthStore.complete_marks`) on them copied: a mark depends on its path's prices, volatilities
    and strike alone, which the piece has from the same months, so these are the numbers it would compute."""
    for mine, theirs in zip(piece.series, whole.series):
        for name in ("value", "delta", "gamma", "exercise"):
            getattr(mine, name)[...] = getattr(theirs, name)[kept]
        mine.complete = True
    return piece


def _arrays_of(month: "_Month") -> list[np.ndarray]:
    """Every array a `_Month` holds (its attributes and their lists), with the paths' prices and volatilities
    its compiled series hold (copies when the month's own arrays were read-only): the store counts them, each
    memory once (the arrays that own it: a month's (paths, steps) prices are views of its step-major ones)."""
    out = []
    for value in vars(month).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, np.ndarray):
                out.append(item)
    for series in getattr(month, "series", None) or ():
        # The kernel's inputs (its outputs are the month's value, delta... above); not the shared BAW tables.
        out += list(series.inputs)
        if series.done is not None:  # what is marked, when the marks are kept incomplete
            out.append(series.done)
    return [monthstore.owner(a) for a in out]
