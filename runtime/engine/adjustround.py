"""The adjustment round of a step: the adjustment module played on the paths where it fires.

`_play_on_paths` plays a round with the numpy proposals of `opl.runtime.engine.adjust` on the few paths
where it fires (`_desk`: the step as the module sees it) and writes them back. `_Round` plays the common
round (rolls and gamma hedges, a lone ``additional_margin`` abort) in one compiled pass
(`opl.runtime.engine.kernels.adjust.round_pass`), the same numbers bit for bit, with the quote tables, fees,
margin rule and mark arrays its kernel takes (`_quote_inputs`, `_slot_fees`, `_rule_tuple`,
`_written_marks`).

Stage 3b of a step (`opl.runtime.engine.step`), apart from the other stages: the largest, and the only one
that changes which series a month holds.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Callable

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.adjust import AdjustEngine, Desk, _margin_bound
from opl.runtime.engine.book import Book, Slot, flat_paths, put_paths
from opl.runtime.engine.guards import blocked
from opl.runtime.engine.ledger import Ledger
from opl.runtime.engine.months import _Month
from opl.runtime.engine.positions import _FLOAT, _close_all
from opl.runtime.engine.runspec import DAYS_PER_YEAR
from opl.runtime.engine.stepstate import _trigger_state
from opl.runtime.engine.triggers import TriggerState

if TYPE_CHECKING:  # the step that plays the round (it imports this module)
    from opl.runtime.engine.step import _Open, _Pass


class _Held:
    """Delivered goods as `_desk` reads them (their total only), on a subset of paths."""

    def __init__(self, total: np.ndarray):
        self._total = total

    def total(self) -> np.ndarray:
        return self._total


def _play_on_paths(engine: AdjustEngine, fire, strat, book: Book, hedge, mo, j, d, sizes, lots_per_option, run,
                   cost, ledger: Ledger, equity, month_pnl, margins, pending, inventory, peak, denominator,
                   open_margin, band_k):
    """The adjustment round on the paths where it fires only, written back: the numbers of a round on every
    path (each path's arithmetic is its own), at the cost of the few. Returns the hedge and where it closed
    (None: nowhere)."""
    cols = np.flatnonzero(fire.any(axis=0))
    sub_book, sub_mo, sub_ledger = book.columns(cols), mo.columns(cols), ledger.columns(cols)

    def cut(x):  # take, not x[:, cols]: that is Fortran-ordered, and every kernel given it would first copy it
        return x.take(cols, axis=1)

    sub_equity, sub_pnl, sub_pending, held = cut(equity), cut(month_pnl), cut(pending), _Held(cut(inventory.total()))
    sub_peak, sub_denominator, sub_open, sub_d = cut(peak), cut(denominator), cut(open_margin), d[cols]

    def state():
        return _trigger_state(sub_mo, j, sub_book, desk.hedge, sub_pnl, sub_denominator, sub_equity, sub_peak,
                              run.capital, sub_open, margins, sub_mo.days_left[j], lots_per_option, sub_pending, held,
                              lambda: (sub_book.option_delta(lots_per_option) + sub_book.static) / sizes, band_k,
                              strat, sub_d)

    desk = _desk(strat, sub_book, cut(hedge), sub_mo, j, sub_d, sizes, lots_per_option, run, cost, sub_ledger,
                 sub_equity, sub_pnl, margins, sub_pending, held, state)
    desk.reuse_margin = True  # the reference prices every action's margin before it afresh; here it is known
    if kernels.available():
        desk.trade_slot = _slot_trader(cost, sub_ledger, sub_equity, sub_pnl)
        if getattr(sub_mo, "fast", False):  # the compiled proposals quote as the month's compiled marks do
            desk.quotes = _quote_inputs(sub_mo, j)
    closed_cols = engine.play(desk, cut(fire))
    book.put_columns(sub_book, cols)
    ledger.put_columns(sub_ledger, cols)
    flat = flat_paths(equity.shape, cols)
    put_paths(equity, cols, flat, sub_equity)
    put_paths(month_pnl, cols, flat, sub_pnl)
    if not (hedge.flags.writeable and hedge.flags.owndata):
        hedge = hedge.copy()  # a view or a shared array; the step's own hedge is written in place (as closes do)
    put_paths(hedge, cols, flat, desk.hedge)
    if not closed_cols.any():
        return hedge, None
    closed = np.zeros(book.shape, dtype=bool)
    closed[:, cols] = closed_cols
    return hedge, closed


class _Round:
    """The common adjustment round in one compiled pass (`opl.runtime.engine.kernels.adjust.round_pass`) on one
    month's book: rolls and gamma hedges, with at most a lone ``additional_margin`` abort, on a fast month and a
    book without futures legs, the margin compiled — what `_play_on_paths` plays with the numpy proposals,
    the same numbers bit for bit (tests/simulate/test_fast_engine.py), without its Python around each action.
    `of` returns None for a round it does not cover; `covers` says whether a step's guards let it play. Made
    for a pass's first month: the playbook gives every month's book the same slots, in the same order.
    """

    def __init__(self, engine: AdjustEngine, plan: tuple, bound: tuple | None, pass_: "_Pass", book: Book):
        kinds, targets, rolls = plan
        self.engine, self.pass_ = engine, pass_
        self.kinds, self.amounts = np.array(kinds, dtype=np.int64), np.array(targets, dtype=float)
        self.rolls = rolls
        self.entries = np.array([(a, g, t) for a, g, t, _, _ in rolls], dtype=np.int64).reshape(-1, 3)
        width = max(len(group.slots) for group in book.groups)
        self.members = np.array([group.slots + [-1] * (width - len(group.slots)) for group in book.groups],
                                dtype=np.int64)
        self.gamma_slot = book.groups[engine.gamma_group].slots[0] if engine.gamma_group is not None else 0
        slots = book.slots
        # Each slot's entry in the base slots' tuples or in the dynamic slots' (`play`).
        place = np.zeros(len(slots), dtype=np.int64)
        for kind in (False, True):
            at = [i for i, s in enumerate(slots) if s.dynamic == kind]
            place[at] = np.arange(len(at))
        self.slots = (np.array([s.is_call for s in slots], dtype=np.bool_),
                      np.array([s.american for s in slots], dtype=np.bool_),
                      np.array([s.extra_days for s in slots], dtype=float),
                      np.array([s.dynamic for s in slots], dtype=np.bool_), place)
        # The series a step may quote: the rolls' targets and the gamma hedge's calls (the month's expiry).
        self.quoted = sorted({slots[t].extra_days for _, _, t, _, _ in rolls} | ({0.0} if 1 in kinds else set()))
        self.abort = (-1, 0.0, False, float(pass_.run.capital)) if bound is None else (
            kernels.EXIT_OPS.index(bound[0]), float(bound[1]), engine.spec.on_abort == "exit",
            float(pass_.run.capital))
        self.rule = _rule_tuple(pass_.margins.rule, pass_.shape[0])
        cost = pass_.cost
        close_fee, short_fee, long_fee = _slot_fees(cost)
        self.fees = (close_fee, short_fee, long_fee,
                     kernels.base._plain((cost.futures_close + cost.futures_slippage)[:, 0], (pass_.shape[0],)))
        self.guarded = any(g.kind == "avoid_leg_if" for g in pass_.strat.guards)
        self._tables: dict[float, tuple] = {}
        self._steps: dict[float, tuple] = {}  # `_step`'s: the step's time to expiry -> (its market, its RoundStep)
        self._market_kept: tuple | None = None  # `_market`'s
        self.hedges = bool(self.amounts.size and 1 in self.kinds)  # a gamma hedge's strikes are snapped up
        # The ledger's counters the round adds to, in the kernel's order (each action's done and aborted last), as
        # a getter of the ledger's dict: one call a round.
        self.counters = operator.itemgetter(
            "option_lots", "futures_lots", "adjust_rounds", "adjust_exits", "exits", "early_exits",
            *pass_.strat.adjust.counters()[2:])

    def __getstate__(self) -> dict:
        # Copied or pickled without `_step`'s structrefs (numba's, which neither copies nor pickles): a copy makes
        # its own from its own arrays.
        return {**self.__dict__, "_steps": {}}

    @classmethod
    def of(cls, engine: AdjustEngine, pass_: "_Pass", book: Book, mo) -> "_Round | None":
        """The compiled round of ``book``'s month, or None where it does not cover the round (class docstring)."""
        spec = engine.spec
        bound = None
        if spec.abort_if is not None:
            bound = _margin_bound(getattr(spec.abort_if, "rule", None))
            if bound is None or pass_.margins.rule is None:
                return None
        if not (kernels.available() and getattr(mo, "fast", False) and pass_.cost.fast and not book.futures
                and len(book.slots) <= kernels.base.BOOK_SLOTS):  # (the round's margin takes that many series)
            return None
        plan = engine.round_plan(book)
        return None if plan is None else cls(engine, plan, bound, pass_, book)

    def covers(self, o: "_Open", j: int, state: Callable[[], TriggerState]) -> bool:
        """Whether no ``avoid_leg_if`` rule can block a series the round would open at step ``j`` of ``o``."""
        return not self.guarded or all(self.engine.never_blocked(self.pass_.strat.guards, state, o.mo, j, extra)
                                       for extra in self.quoted)

    def play(self, o: "_Open", fire: np.ndarray, j: int, cols: np.ndarray) -> int:
        """The round on the elements ``fire`` at step ``j`` (on the paths ``cols``, in order), written into the
        book, the ledger and ``o``; returns how many elements it closed."""
        p, mo, book = self.pass_, o.mo, o.book
        shape = p.shape
        assert len(book.slots) == self.slots[0].size  # the playbook's layout, every month
        by_step = mo.by_step
        price = by_step[0][j].take(cols) if by_step is not None else np.ascontiguousarray(mo.price[cols, j])
        vol = by_step[1][j].take(cols) if by_step is not None else np.ascontiguousarray(mo.vol[cols, j])
        rows = np.empty((len(self.rolls) + 1, cols.size))
        _round_strikes(mo, j, price, vol, self.rolls, rows)
        if self.hedges:
            rows[-1] = mo.snap_up(price)
        base, own, dynamic_values = self._own(book, shape)
        hedge = o.hedge
        if not (hedge.flags.writeable and hedge.flags.owndata and hedge.flags.c_contiguous):
            o.hedge = np.array(hedge, dtype=float)  # a view or a shared array: the round writes its own
        o.is_open = kernels.writable(o.is_open, shape, np.bool_)
        p.equity = kernels.writable(p.equity, shape)
        o.month_pnl = kernels.writable(o.month_pnl, shape)
        ledger = p.ledger
        padded = kernels.base._slot_tuple
        held = np.array([s._held for s in book.slots], dtype=np.bool_)
        closed = kernels.adjust.round_pass(
            cols=cols, fire=kernels.base._plain_bool(fire, shape), step=self._step(book, mo, j), own=own,
            strike_rows=rows, strikes=padded([s.strike for s in base]), values=padded([s.value for s in base]),
            gammas=padded([s.gamma for s in base]), dynamic_values=dynamic_values,
            price=kernels.base._input(price, price.shape), vol=kernels.base._input(vol, vol.shape),
            account=(o.hedge, kernels.base._plain(p.pending, shape), kernels.base._plain(p.inventory.total(), shape)),
            ledger=(ledger.buckets["adjustments"], ledger.buckets["costs"], p.equity, o.month_pnl, o.is_open),
            counters=kernels.base._padded(self.counters(ledger.counters), _NO_COUNTS, _ROUND_COUNTERS),
            early=bool(mo.days_left[j] >= (p.strat.guard_days or 2.0)),
            held=held)
        for s, h in zip(book.slots, held.tolist()):
            s._held = h
        return closed

    def _own(self, book: Book, shape: tuple) -> tuple:
        """The base slots, and the arrays the round writes in place as the kernel takes them: the slots' lots (the
        base slots' and the dynamic slots' tuples) with the dynamic slots' strikes and marks but their values (a
        tuple a mark, `_written_marks`') in an `kernels.adjust.RoundOwn`, and the dynamic slots' values, each made
        the slot's own (C-ordered, writable, (variants, paths)) first.

        The slot tuples, the base slots' and the dynamic slots' apart, are each padded with dummies of its types
        to eight (`kernels.base._padded`): a tuple's length is part of the kernel's signature, and the loop's
        candidates hold books of a few slots to nine (four legs, a roll's slot per leg and the gamma hedge's).
        Tuples of every slot padded to sixteen compiled the round's kernels ~9 s of CPU longer. Kept while the
        arrays are the same objects (`kernels.base.keep_own`; a month's rounds after its first find them so, but the
        values, whose tuple is made every round): checking and padding them again cost a round more than its
        kernel's work at 1,000 paths."""
        slots = book.slots
        base, dynamic = [s for s in slots if not s.dynamic], [s for s in slots if s.dynamic]
        values = []  # (the values apart: a re-mark makes a new one every step, while the step's bookings read the old)
        for s in dynamic:
            x = s.__dict__["value"]
            if not (type(x) is np.ndarray and x.shape == shape and x.dtype == _FLOAT and x.flags.c_contiguous
                    and x.flags.writeable):
                s.value = x = kernels.writable(x, shape)
            values.append(x)
        own = kernels.base.kept_own(_kept_arrays(slots, dynamic)) or self._made_own(slots, base, dynamic, shape)
        return base, own, kernels.base._padded(tuple(values), _DUMMY[0])

    @staticmethod
    def _made_own(slots: list, base: list, dynamic: list, shape: tuple):
        """`_own`'s `kernels.adjust.RoundOwn`, kept (`kernels.base.keep_own`: it holds one reference to each array, as
        the tuples it replaced did, which `kernels.base.kept_references` counts for `months._unshared`)."""
        for s in slots:
            q = s._qty  # (`kernels.writable` inline: most are the slot's own already)
            if not (type(q) is np.ndarray and q.shape == shape and q.dtype == _FLOAT and q.flags.c_contiguous
                    and q.flags.writeable):
                s._qty = kernels.writable(q, shape)
        written = tuple(zip(*kernels.base._padded(tuple([_written_marks(s, shape) for s in dynamic]), _BASE_WRITTEN)))
        lots = kernels.base._padded
        qtys = (lots(tuple([s._qty for s in base]), kernels.base._SCRATCH),
                lots(tuple([s._qty for s in dynamic]), kernels.base._SCRATCH))
        made = kernels.adjust.round_own(qtys, written[0], *written[2:])
        kernels.base.keep_own(_kept_arrays(slots, dynamic), made)
        return made

    def _market(self, mo) -> tuple:
        """The month's gamma switch, the marks' grids and its smile as the round's quotes read them, kept while the
        months' smile and switch are these (every month of a pass)."""
        kept = self._market_kept
        if kept is None or kept[0] is not mo.smile or kept[1] != mo.want_gamma:
            smile = mo.smile
            x_grid, logv_grid = kernels.marks._grids()
            kept = self._market_kept = (smile, mo.want_gamma, (
                bool(mo.want_gamma), x_grid, logv_grid, float(smile.spread), float(smile.floor), float(smile.skew),
                float(smile.curvature)))
        return kept[2]

    def _step(self, book: Book, mo, j: int):
        """The round's `kernels.adjust.RoundStep` at step ``j`` of ``mo``: its fixed inputs, the step's tables
        (`_tables_at`) and the month's market (`_market`), kept by the step's time to expiry while the market is
        the same."""
        key, market = float(mo.t[j]), self._market(mo)
        kept = self._steps.get(key)
        if kept is None or kept[0] is not market:
            kept = self._steps[key] = (market, kernels.adjust.round_step(
                kinds=self.kinds, amounts=self.amounts, members=self.members, entries=self.entries,
                gamma_slot=self.gamma_slot, slots=self.slots, tables=self._tables_at(book, mo, j), market=market,
                lots_per_option=float(self.pass_.lots_per_option), abort=self.abort, rule=self.rule, fees=self.fees))
        return kept[1]

    def _tables_at(self, book: Book, mo, j: int) -> tuple:
        """Each slot's quote tables at step ``j`` of ``mo`` as `_quote_inputs` makes them (a base slot, never quoted
        by a round, gets empty ones), kept by the step's time to expiry."""
        key = float(mo.t[j])
        made = self._tables.get(key)
        if made is None:
            slots = book.slots
            n = len(slots)
            phi, tt, const = np.zeros(n), np.zeros(n), np.zeros((4, n))
            eeps, d_eeps, boundaries = [], [], []  # the dynamic slots' (a base slot is never quoted)
            empty_eep, empty_boundary = kernels.marks._no_tables()
            for i, s in enumerate(slots):
                phi[i] = 1.0 if s.is_call else -1.0
                if not s.dynamic:
                    continue
                tt[i] = float(mo.t[j] + s.extra_days / DAYS_PER_YEAR)
                tables = kernels.marks._series_tables(bool(s.is_call), bool(s.american), (tt[i],), float(mo.rate),
                                                float(mo.markers[s.american].carry))
                const[:, i] = tables.const[:, 0]
                eeps.append(tables.eep), d_eeps.append(tables.d_eep), boundaries.append(tables.boundary)
            pad = kernels.base._padded  # (`play`'s dynamic slot tuples)
            made = self._tables[key] = (phi, self.slots[1], tt, const, pad(tuple(eeps), empty_eep),
                                        pad(tuple(d_eeps), empty_eep), pad(tuple(boundaries), empty_boundary),
                                        self.slots[4])
        return made


def _round_strikes(mo, j: int, price: np.ndarray, vol: np.ndarray, rolls: list, out: np.ndarray) -> None:
    """The rolls' new strikes on a round's paths (``price`` and ``vol`` there at step ``j``) into the rows of ``out``:
    `_Month.strike_for` with ``recentre``, each leg's rule against levels of the month's widths around the price."""
    support, resistance = mo.levels.of(price)
    # The at-the-money volatility only a delta rule reads (a round's few paths: its numpy calls cost more than the
    # arithmetic); the other rules never look at it.
    iv = mo.smile.iv(vol=vol, forward=price, strike=price) if any(r.strike.kind == "delta" for _, _, _, r, _ in rolls) \
        else None
    for row, (_, _, _, rule, extra) in enumerate(rolls):
        t = max(mo.t[j] + extra / DAYS_PER_YEAR, 1e-9)
        out[row] = rule.strike.resolve(is_call=rule.is_call, price=price, support=support, resistance=resistance,
                                       iv=iv, t=t, rate=mo.rate)
    if rolls:  # every row snapped in one call (`_Month.snap` of a fast month, element by element)
        out[:len(rolls)] = kernels.adjust.snap(mo.pack.option.strike_grid, out[:len(rolls)])


# The round's counters tuple (six, then two per playbook action) padded to this many with a dummy never written: a
# tuple's length is part of the kernel's signature, and a candidate of the loop with another number of actions
# compiled `_round` again (~25 s of a fresh cache's CPU).
_ROUND_COUNTERS = 16
_NO_COUNTS = np.zeros((1, 1), dtype=np.int64)

_DUMMY = (np.zeros((1, 1)), np.zeros((1, 1), dtype=np.bool_))  # a base slot's place in the marks a round writes
_BASE_WRITTEN = (_DUMMY[0],) * 4 + (_DUMMY[1], _DUMMY[0])
_WRITTEN = tuple((name, np.dtype(np.bool_ if name == "exercise" else np.float64))
                 for name in ("strike", "value", "delta", "gamma", "exercise", "entry"))
_KEPT_NAMES = ("strike", "delta", "gamma", "exercise", "entry")  # `_written_marks`' but the value (`_Round._own`)


def _kept_arrays(slots: list, dynamic: list) -> tuple:
    """The arrays `_Round._own` keeps its tuples by: every slot's lots, the dynamic slots' marks but their values."""
    return (*[s._qty for s in slots], *[s.__dict__[name] for s in dynamic for name in _KEPT_NAMES])


def _written_marks(s: Slot, shape: tuple) -> tuple:
    """A dynamic slot's strike, value, delta, gamma, exercise and entry as arrays a round writes in place (each
    made the slot's own first if it is not: C-ordered, writable, (variants, paths)); a base slot's dummies."""
    if s.base is not None:
        return _BASE_WRITTEN
    marks = s.__dict__  # (read as the slot's own attributes: a round asks for each of its slots' six)
    out = [marks[name] if name in marks else getattr(s, name) for name, _ in _WRITTEN]
    for i in range(6):
        x = out[i]
        name, dtype = _WRITTEN[i]
        # `kernels.writable` inline: a round's 18 calls of it, most answering the array itself (made own before).
        if not (type(x) is np.ndarray and x.shape == shape and x.dtype == dtype and x.flags.c_contiguous
                and x.flags.writeable):
            out[i] = x = kernels.writable(x, shape, dtype)
            setattr(s, name, x)
    return tuple(out)


def _slot_fees(cost) -> tuple:
    """A lot's fee plus slippage to close, to sell and to buy an option, per variant (`kernels.adjust.fees_of`):
    made for the pass's first round (its costs do not change)."""
    fees = getattr(cost, "adjust_fees", None)
    if fees is None:
        slippage = cost.option_slippage[:, 0]
        fees = cost.adjust_fees = dict(zip(("close_fee", "short_fee", "long_fee"), kernels.adjust.fees_of(
            cost.option_close[:, 0] + slippage, cost.option_open_short[:, 0] + slippage,
            cost.option_open_long[:, 0] + slippage, len(slippage))))
    return fees["close_fee"], fees["short_fee"], fees["long_fee"]


def _rule_tuple(rule, variants: int) -> tuple:
    """A `kernels.MarginRule` as `kernels.adjust.round_pass` reads it (a dummy of the same types without one: the
    round then prices no margin)."""
    if rule is None:
        zero = np.zeros(variants)
        return (zero, False, 0.0, 0.0, zero, zero, False, 0.0, 0.0, False, False, False, False,
                kernels.margin._WIDE_BIT, kernels.base._ONE)
    return (rule.futures_rate, bool(rule.czce), rule.otm_weight, rule.floor_weight, rule.rate, rule.min_rate,
            bool(rule.put_cap), rule.unit, rule.contract_size, bool(rule.futures_underlying), bool(rule.spread),
            bool(rule.straddle), bool(rule.strangle), kernels.margin._WIDE_BIT, kernels.base._ONE)


def _quote_inputs(mo: _Month, j: int) -> Callable:
    """``quotes(is_call, american, extra_days)``: the arguments `kernels.mark_where` gives the mark of one element
    (``_mark_row``) for a series at step ``j`` of the fast month ``mo`` (a round's `_Month.columns` cut) — what
    `opl.runtime.engine.kernels.adjust`' proposals quote with, so their quotes are `_Month.quote`'s to the bit."""
    # (read-only, as every kernel takes a month's prices and volatilities: `kernels.base._input`)
    price, vol = (kernels.base._input(x[:, j], x.shape[:1]) for x in (mo.price, mo.vol))
    x_grid, logv_grid = kernels.marks._grids()
    smile = mo.smile
    made: dict[tuple, tuple] = {}

    def quotes(is_call: bool, american: bool, extra_days: float) -> tuple:
        key = (is_call, american, extra_days)
        if key not in made:
            made[key] = quote(is_call, american, extra_days)
        return made[key]

    def quote(is_call: bool, american: bool, extra_days: float) -> tuple:
        t = float(mo.t[j] + extra_days / DAYS_PER_YEAR)
        tables = kernels.marks._series_tables(bool(is_call), bool(american), (t,), float(mo.rate),
                                        float(mo.markers[american].carry))
        return (price, vol, 1.0 if is_call else -1.0, bool(american), bool(mo.want_gamma), t, tables.const,
                tables.eep, tables.d_eep, tables.boundary, x_grid, logv_grid, float(smile.spread),
                float(smile.floor), float(smile.skew), float(smile.curvature))

    return quotes


def _slot_trader(cost, ledger: Ledger, equity, month_pnl) -> Callable:
    """`opl.runtime.engine.kernels.adjust.trade_slot` on a round's ledger: an action's change of one slot
    traded, paid into ``adjustments`` and counted, as the desk's ``trade_options`` would."""
    fees = dict(zip(("close_fee", "short_fee", "long_fee"), _slot_fees(cost)))

    def trade(old, proposed, go, restruck):
        return kernels.adjust.trade_slot(old, proposed, go, restruck, bucket=ledger.buckets["adjustments"],
                                         equity=equity, month_pnl=month_pnl,
                                         counter=ledger.counters["option_lots"], **fees)

    return trade


def _desk(strat, book, hedge, mo, j, d, sizes, lots_per_option, run, cost, ledger, equity, month_pnl, margins, pending,
          inventory, state) -> Desk:
    """The step as `opl.runtime.engine.adjust` sees it; its trades pay into the ``adjustments`` bucket."""
    f = mo.price[:, j]
    held = []  # futures from exercise and goods, as the margin reads them: summed at the first margin asked

    def margin(legs, futures_lots, cols=None):
        if not held:  # (nothing in a round trades them; most steps of the reference ask no margin)
            other = pending + inventory.total()
            held.extend((other, np.abs(other)))
        lots = None if futures_lots is None else futures_lots + held[1]
        return margins(book, desk.hedge, held[0], f, legs=legs, futures_lots=lots, cols=cols)

    def trade_options(lots, *, closing: bool) -> None:
        if np.any(lots):
            ledger.book("adjustments", -(cost.close_options(lots) if closing else cost.open_options(lots)), equity,
                        month_pnl)
            ledger.count("option_lots", lots != 0, np.abs(lots))

    def trade_futures(lots) -> None:
        if np.any(lots):
            ledger.book("adjustments", -cost.futures(lots, closing=False), equity, month_pnl)
            ledger.count("futures_lots", lots != 0, np.abs(lots))

    def avoid(legs):
        return blocked(strat.guards, desk.state(), legs)

    guarded = any(g.kind == "avoid_leg_if" for g in strat.guards)

    def count(name, mask, amount=1):
        if mask.any():  # a round's counts are mostly of nothing: its ledger's counters are then never copied
            ledger.count(name, mask, amount)

    desk = Desk(book=book, hedge=hedge, mo=mo, j=j, d=d, sizes=sizes, lots_per_option=lots_per_option,
                capital=run.capital, tenor_days=strat.tenor_days, margin=margin, trade_options=trade_options,
                trade_futures=trade_futures,
                close_all=lambda mask: _close_all(book, desk.hedge, mask, cost, ledger, equity, month_pnl),
                state=state, avoid=avoid if guarded else None, count=count,
                hedge_keep=strat.hedge.keep if strat.hedge is not None else 0.0, guards=strat.guards)
    return desk
