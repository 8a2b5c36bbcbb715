"""A month as the replay reads it: its prices, its calendar and the marks of every leg it trades.

`MarkedMonth` names what a step reads of a month (a backtest's given months,
`opl.runtime.engine.historical`, hold the same attributes). `_Month` is a simulated month: its legs' strikes
resolved from the open's price and levels, their marks made — on the fast engine compiled, a step's column
at a time where a position holds it (`_base_marks`), the gamma only where something reads it
(`_base_gammas`) — and the quotes of the series the adjustment module trades, re-marked in place where
nothing else refers to the old marks (`_unshared`).

What a month is, apart from the order of a step's operations (`opl.runtime.engine.replay`) and from where a
pass's months come from (`opl.runtime.engine.passmonths`: made, shared or stored).
"""

from __future__ import annotations

import copy
import sys

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.book import Book, Slot
from opl.runtime.engine.deadline import check as check_deadline
from opl.runtime.engine.legspec import OptionLeg
from opl.runtime.engine.kernels.marks import SeriesMarks
from opl.runtime.engine.marking import AmericanMarker
from opl.runtime.engine.runspec import DAYS_PER_YEAR, RunSpec, StrategySpec
from opl.runtime.pricing.black import greeks as black_greeks


class MarkedMonth:
    """A month with its marks, as the replay reads it.

    ``price`` (P, n + 1) the underlying; ``t`` (n + 1,) years to the options' expiry;
    ``days_left`` (n + 1,) and ``span`` (n + 1,) calendar days to expiry and since the
    previous step; ``step_days`` the mean step; ``strikes`` per leg (P,), ``value``,
    ``delta``, ``exercise`` per leg (P, n + 1); ``atm`` (P, n + 1) at-the-money implied
    volatility; ``support``, ``resistance`` and ``signal`` (P,); ``expires`` whether the
    options expire at the last step (else everything is closed there at market);
    ``band`` None or (centre, width) of the delta band per step, each (n + 1,).

    The adjustment module trades other series too, so it needs a month that can quote
    them: ``quote(is_call, american, strike, extra_days, j, where)`` → (value, delta,
    gamma, exercise), ``strike_for``, ``snap``, ``snap_up``, ``vega`` and per-leg ``gamma``
    (`_Month` for simulated months, `opl.runtime.engine.historical.HistoricalMonth` with quotes).
    """

    price: np.ndarray
    n: int
    t: np.ndarray
    days_left: np.ndarray
    span: np.ndarray
    step_days: float
    strikes: list
    value: list
    delta: list
    exercise: list
    atm: np.ndarray
    support: np.ndarray
    resistance: np.ndarray
    signal: np.ndarray
    expires: bool = True
    band: tuple[np.ndarray, np.ndarray] | None = None

    def remark(self, slot: Slot, j: int) -> None:
        """Move a dynamic slot's marks to step ``j`` where it holds lots (for a month with ``quote``)."""
        where = slot.qty != 0
        if getattr(self, "fast", False):
            self._remark_held(slot, j, where)
            return
        value, delta, gamma, exercise = self.quote(is_call=slot.is_call, american=slot.american, strike=slot.strike,
                                                   extra_days=slot.extra_days, j=j, where=where)
        slot.value = np.where(where, value, slot.value)
        slot.delta = np.where(where, delta, slot.delta)
        slot.gamma = np.where(where, gamma, slot.gamma)
        slot.exercise = np.where(where, exercise, False)


class _Month(MarkedMonth):
    """The marks of one simulated month for every leg: value, delta, exercise flags and implied vol (P, n + 1)."""

    def __init__(self, run: RunSpec, strat: StrategySpec, mp, marker: AmericanMarker, euro: AmericanMarker):
        f = mp.price
        n = f.shape[1] - 1
        self.price, self.n = f, n
        tenor = strat.tenor_days / DAYS_PER_YEAR
        self.t = tenor * (n - np.arange(n + 1)) / n
        self.step_days = strat.tenor_days / n
        self.days_left = (n - np.arange(n + 1)) * self.step_days
        self.span = np.full(n + 1, self.step_days)
        self.signal = mp.signal
        self.smile, self.rate, self.pack, self.levels = strat.smile, strat.rate, run.pack, strat.levels
        self.markers = {True: marker, False: euro}
        self.want_gamma = strat.greeks
        # The compiled marks (opl.runtime.engine.kernels) unless the reference is asked for or BAW is priced directly.
        self.fast = run.engine == "fast" and kernels.available() and not run.exact_american
        # The kernels read (steps, paths): the compiled generator's months are so already (else transposed once
        # here), and the month's (paths, steps) arrays are their views, so every step's column anyone reads is
        # contiguous, not gathered from a path-major array.
        by_step = tuple(np.ascontiguousarray(x.T) for x in (f, mp.vol)) if self.fast else None
        self.by_step = by_step  # the step's columns the quotes and re-marks read, contiguous
        if by_step is not None:
            f = self.price = by_step[0].T
        self.vol = by_step[1].T if by_step is not None else mp.vol
        self._atm = None  # the at-the-money volatility (`atm`), made when first read
        self.support, self.resistance = strat.levels.of(f[:, 0])
        self.strikes, self.value, self.delta, self.exercise = [], [], [], []
        self.gamma = [] if strat.greeks else None
        self.series = [] if self.fast else None  # the legs' compiled marks, filled as the replay asks (fast)
        iv0 = strat.smile.iv(vol=self.vol[:, 0], forward=f[:, 0], strike=f[:, 0])  # the same for every leg
        for leg in strat.legs:
            later = leg.extra_days / DAYS_PER_YEAR  # a far leg's expiry after the month's
            raw = leg.strike.resolve(is_call=leg.is_call, price=f[:, 0], support=self.support,
                                     resistance=self.resistance, iv=iv0, t=tenor + later, rate=strat.rate)
            k = self.snap(raw)  # compiled on the fast engine, as an adjustment's strikes
            self.strikes.append(k)
            if self.fast:
                # Marked a column at a time where held (`_base_marks`), not all at once here.
                series = SeriesMarks(is_call=leg.is_call, american=leg.american, forward=by_step[0].T,
                                     vol=by_step[1].T, strike=k,
                                     t=self.t + later, smile=strat.smile, rate=strat.rate, carry=marker.carry,
                                     gamma=strat.greeks)
                self.series.append(series)
                self.value.append(series.value)
                self.delta.append(series.delta)
                self.exercise.append(series.exercise)
                if self.gamma is not None:
                    self.gamma.append(series.gamma)
                continue
            iv = strat.smile.iv(vol=self.vol, forward=f, strike=k[:, None])
            cols = []
            for j in range(n + 1):
                check_deadline()  # the reference marks price column by column: exact BAW is slow
                cols.append((marker if leg.american else euro).mark(is_call=leg.is_call, forward=f[:, j], strike=k,
                                                                    t=self.t[j] + later, vol=iv[:, j],
                                                                    gamma=strat.greeks))
            self.value.append(np.stack([c.value for c in cols], axis=1))
            self.delta.append(np.stack([c.delta for c in cols], axis=1))
            self.exercise.append(np.stack([c.exercise for c in cols], axis=1))
            if self.gamma is not None:
                self.gamma.append(np.stack([c.gamma for c in cols], axis=1))

    @property
    def atm(self) -> np.ndarray:
        """The at-the-money implied volatility (P, n + 1), made when first read: the replay reads a step's column
        (`atm_column`), which the fast engine makes alone."""
        if getattr(self, "_atm", None) is None:
            self._atm = self.smile.atm(self.vol)  # numpy keeps the layout of its input: step-major on the fast engine
        return self._atm

    @atm.setter
    def atm(self, value: np.ndarray) -> None:
        self._atm = value

    def atm_column(self, j: int) -> np.ndarray:
        """``atm[:, j]``, contiguous: on the fast engine the smile of step ``j``'s volatilities alone (the same
        numbers: the smile is element by element), without the month's whole array."""
        if getattr(self, "_atm", None) is None and getattr(self, "by_step", None) is not None:
            return self.smile.atm(self.by_step[1][j])
        return np.ascontiguousarray(self.atm[:, j])

    def mark_all(self) -> None:
        """Mark every leg on every path and step now (the fast engine otherwise marks where held, as asked)."""
        for series in self.series or ():
            series.mark()

    def share(self, others: list["_Month"]) -> None:
        """Copy the marks of the month of ``others`` (months of the same legs on other paths:
        `passmonths._StoredMonths._siblings`) that agrees with this one on the most paths, where both have the same
        prices and volatilities at every step and the same strike, instead of computing them (a mark depends
        on those only); each leg marks the rest itself."""
        others = [o for o in others if self.series is not None and o.series is not None and o.by_step is not None
                  and o.price.shape == self.price.shape and np.array_equal(o.t, self.t)]
        if not others:
            return
        # The months' last prices pick the month (a path that agrees at every step agrees there).
        last = self.by_step[0][-1]
        other = max(others, key=lambda o: int(np.count_nonzero(o.by_step[0][-1] == last)))
        if not np.any(other.by_step[0][-1] == last):
            return
        same = (self.by_step[0] == other.by_step[0]).all(axis=0) & (self.by_step[1] == other.by_step[1]).all(axis=0)
        if not same.any():
            return
        for mine, theirs, strike, their_strike in zip(self.series, other.series, self.strikes, other.strikes):
            mine.share(theirs, same & (strike == their_strike))

    def columns(self, cols: np.ndarray) -> "_Month":
        """The month on the paths ``cols`` only, for an adjustment round (which touches few paths): the
        prices, volatilities and levels a round reads. Not the legs' mark tables: a round quotes the
        series it trades and its slots carry their marks, so copying the tables was wasted work."""
        sub = copy.copy(self)
        for kept in ("_step_columns", "_strike_kept"):  # the whole month's (`stepstate._columns_at`, `_strike_inputs`)
            vars(sub).pop(kept, None)
        sub.series = None  # the rounds quote and re-mark; a base leg's marks are read on the whole month only
        sub.by_step = None  # (steps, all paths): the round's columns are gathered from its own prices
        for name in ("price", "vol", "support", "resistance", "signal"):
            setattr(sub, name, _paths_taken(np.asarray(getattr(self, name)), cols))
        # The cut's own smile of its volatilities when first read (the same numbers), unless made already.
        atm = getattr(self, "_atm", None)
        sub._atm = None if atm is None else _paths_taken(atm, cols)
        sub.strikes = sub.value = sub.delta = sub.exercise = sub.gamma = None
        return sub

    def _remark_held(self, slot: Slot, j: int, where: np.ndarray) -> None:
        """`remark` on the fast engine: the compiled marks written where the slot holds lots, the other
        paths' marks kept (what `remark`'s whole-array selects give), in one pass (`kernels.mark_where`).
        A mark array nothing but the slot refers to (`_unshared`) is updated in place: no one can see the
        difference, and its old marks are not copied (the value's old array is usually still read, as the
        step's marks before)."""
        into = _unshared(slot)
        slot.value, slot.delta, slot.gamma, slot.exercise = self._marks_where(
            slot.is_call, slot.american, slot.strike, slot.extra_days, j, where,
            old=(slot.value, slot.delta, slot.gamma), into=into)

    def _marks_where(self, is_call: bool, american: bool, strike, extra_days: float, j: int, where: np.ndarray,
                     old=None, into=None):
        """`opl.runtime.engine.kernels.mark_where` at step ``j`` of the series (``strike`` per path or per
        variant and path, ``extra_days`` after the month's expiry) where ``where`` (variants, paths)."""
        by_step = getattr(self, "by_step", None)
        if by_step is not None:  # the whole month: its step's rows are contiguous already
            price, vol = by_step[0][j], by_step[1][j]
        else:
            price, vol = np.ascontiguousarray(self.price[:, j]), np.ascontiguousarray(self.vol[:, j])
        return kernels.mark_where(is_call=is_call, american=american, where=where, strike=strike, price=price,
                                  vol=vol, t=self.t[j] + extra_days / DAYS_PER_YEAR, smile=self.smile,
                                  rate=self.rate, carry=self.markers[american].carry, gamma=self.want_gamma,
                                  old=old, into=into)

    def snap(self, raw: np.ndarray) -> np.ndarray:
        """Strikes on the pack's grid; a level far below it (a collapsed path) gets the lowest listed strike."""
        if getattr(self, "fast", False) and np.ndim(raw) == 1:  # an adjustment's strikes per path, compiled
            return kernels.adjust.snap(self.pack.option.strike_grid, raw)
        lowest = self.pack.option.strike_grid[0].step
        return np.maximum(np.asarray(self.pack.snap_strike(np.maximum(raw, lowest)), dtype=float), lowest)

    def snap_up(self, price: np.ndarray) -> np.ndarray:
        """The listed strike nearest at or above ``price``."""
        if getattr(self, "fast", False) and np.ndim(price) == 1:
            return kernels.adjust.snap(self.pack.option.strike_grid, price, up=True)
        lowest = self.pack.option.strike_grid[0].step
        return np.maximum(np.asarray(self.pack.snap_strike(np.maximum(price, lowest), mode="up"), dtype=float), lowest)

    def strike_for(self, leg: OptionLeg, j: int, *, recentre: bool, extra_days: float) -> np.ndarray:
        """A leg's strike rule resolved at step ``j`` (P,): against the month's support and resistance,
        or (``recentre``) against levels of the same widths around the step's price."""
        f, support, resistance, iv = self._strike_inputs(j, recentre)
        t = max(self.t[j] + extra_days / DAYS_PER_YEAR, 1e-9)
        raw = leg.strike.resolve(is_call=leg.is_call, price=f, support=support, resistance=resistance, iv=iv, t=t,
                                 rate=self.rate)
        return self.snap(raw)

    def _strike_inputs(self, j: int, recentre: bool) -> tuple:
        """`strike_for`'s price, levels and at-the-money volatility at step ``j``: the same for every leg a
        roll re-strikes, so computed for the first and kept (keyed by the price array: a `columns` cut
        computes its own)."""
        kept = getattr(self, "_strike_kept", None)
        if kept is None or kept[0] is not self.price or kept[1] != (j, recentre):
            f = self.price[:, j]
            support, resistance = self.levels.of(f) if recentre else (self.support, self.resistance)
            kept = (self.price, (j, recentre), f, support, resistance,
                    self.smile.iv(vol=self.vol[:, j], forward=f, strike=f))
            self._strike_kept = kept
        return kept[2:]

    def vega(self, slot: Slot, j: int) -> np.ndarray:
        """Black-76 vega per unit and per 1.00 of volatility of a slot's series at step ``j``."""
        f = self.price[:, j]
        iv = self.smile.iv(vol=self.vol[:, j], forward=f, strike=slot.strike)
        t = max(self.t[j] + slot.extra_days / DAYS_PER_YEAR, 0.0)
        return black_greeks(is_call=slot.is_call, underlying=f, strike=slot.strike, t=t, vol=iv, rate=self.rate).vega

    def quote(self, *, is_call: bool, american: bool, strike: np.ndarray, extra_days: float, j: int,
              where: np.ndarray):
        """Marks at step ``j`` of options of ``strike`` (variants, paths) where ``where``; elsewhere 0.

        Used for the series the adjustment module trades (`opl.runtime.engine.book` dynamic slots):
        the smile of the path's volatility at the strike, ``extra_days`` beyond the month's expiry.
        """
        if self.fast:
            return self._marks_where(is_call, american, strike, extra_days, j, where)
        shape = where.shape
        value, delta, gamma = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        exercise = np.zeros(shape, dtype=bool)
        vi, pi = np.nonzero(where)
        if vi.size:
            forward, k = self.price[pi, j], np.broadcast_to(strike, shape)[vi, pi]
            iv = self.smile.iv(vol=self.vol[pi, j], forward=forward, strike=k)
            marks = self.markers[american].mark(is_call=is_call, forward=forward, strike=k,
                                                t=self.t[j] + extra_days / DAYS_PER_YEAR, vol=iv,
                                                gamma=self.want_gamma)
            value[vi, pi], delta[vi, pi], exercise[vi, pi] = marks.value, marks.delta, marks.exercise
            if marks.gamma is not None:
                gamma[vi, pi] = marks.gamma
        return value, delta, gamma, exercise


def _paths_taken(x: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``x[cols]`` (paths first) in the layout of ``x``: a (paths, steps) view of a step-major array is taken
    along its contiguous rows and stays one (numpy's take across a strided axis copied the whole month
    first), anything else by ``take`` (twice ``x[cols]``'s speed)."""
    if x.ndim == 2 and not x.flags.c_contiguous and x.T.flags.c_contiguous:
        return x.T.take(cols, axis=1).T
    return x.take(cols, axis=0)


def _unshared(slot: Slot) -> tuple:
    """The slot's value, delta, gamma and exercise arrays, each where nothing else refers to it (no other name,
    container or view: numpy views hold their base), so that writing into it changes nothing anyone else reads;
    else None in its place."""
    kept = kernels.base._KEPT_REFS
    marks = slot.__dict__
    out = []
    for name in _REMARKED:
        x = marks[name] if name in marks else getattr(slot, name)
        # Three references when the slot's is the only one: the slot's, ``x`` and getrefcount's argument; besides
        # them the kernels' kept tuples of its views (`kernels.base.kept_references`), which read its elements as
        # they are. (Two names of the slot for one array count twice: not written in place.)
        if type(x) is np.ndarray and x.base is None:
            refs = sys.getrefcount(x) - 3
            out.append(x if refs <= 0 or refs <= kept.get(id(x), 0) else None)
        else:
            out.append(None)
        x = None  # (not counted at the next name's array, should it be this one)
    return tuple(out)


_REMARKED = ("value", "delta", "gamma", "exercise")  # the marks a re-mark writes (`_unshared`)


def _base_marks(slot: Slot, mo, j: int) -> None:
    """A base slot's marks at step ``j``, from the month's tables.

    On the fast engine the month's column ``j`` is marked here, on the paths where a variant holds the slot:
    elsewhere nothing reads it (every use of a mark is weighted or masked by the lots held), so the paths
    that closed or rolled the leg cost nothing. Its gamma is left owed: only the adjustment module's gamma
    hedge and gamma conditions read it, on a few paths and steps, and they ask for it (`_base_gammas`).
    """
    b = slot.base
    series = getattr(mo, "series", None)
    if series is not None:
        qty = slot._qty
        if type(qty) is np.ndarray and qty.ndim == 2 and kernels.base._ready(qty, (qty.shape[0], mo.price.shape[0]),
                                                                          np.float64):
            series[b].mark_held(qty, j)  # (the usual lots: the held paths found in the mark's own pass)
        else:
            qty = np.asarray(qty)
            # (A float array's any() is its elements' != 0: the same flags as (qty != 0).any(axis=0), without the
            # (variants, paths) flags made first.)
            held = qty != 0 if qty.ndim <= 1 else qty.any(axis=0) if qty.dtype == np.float64 else \
                (qty != 0).any(axis=0)
            series[b].mark(held if held.shape == mo.price.shape[:1] else np.broadcast_to(held, mo.price.shape[:1]),
                           (j, j + 1), gamma=False)
    slot.value, slot.delta, slot.exercise = mo.value[b][:, j], mo.delta[b][:, j], mo.exercise[b][:, j]
    gamma = getattr(mo, "gamma", None)
    slot.gamma = gamma[b][:, j] if gamma is not None else 0.0


def _base_gammas(book: Book, mo, j: int, paths: np.ndarray | None = None) -> None:
    """The gamma the base slots owe at step ``j`` (`_base_marks`) computed (on ``paths`` (P,) only when given)
    before anyone reads it: the numbers the month's marks would have had with it. Owed where a slot was
    held when marked: a path closed since then gets its gamma too, which its lots (0) do not weigh.

    A slot whose gamma is no longer the month's column (a round wrote its marks back: `Book.put_columns`)
    gets the computed elements too."""
    series = getattr(mo, "series", None)
    if series is None:
        return
    for s in book.slots:
        if s.base is None or not s._held:
            continue
        marks = series[s.base]
        done = marks.gamma_at(j, paths)
        if done is None:
            continue
        column = marks.gamma[:, j]
        # The column itself (`_base_marks`' view of it) sees the gammas just written. Asked by the memory's bounds:
        # a (paths,) array overlapping a contiguous column of the month's table is that column (``ctypes.data``,
        # compared before, cost ten times as much a call).
        if not (isinstance(s.gamma, np.ndarray) and s.gamma.shape == column.shape
                and np.may_share_memory(s.gamma, column)):
            s.gamma = np.where(done, column, s.gamma)
