"""A pass's running account and its months' steps: `_Pass`, one method a stage.

`_Pass` holds what a pass of chunks carries over (variants, paths) from month to month — the ledger, the
equity and its peaks, futures from exercise, delivered goods, the liquidation decided — and replays each
month it is given (`_Open`: what the month holds while its steps run) in the order of
`opl.runtime.engine.replay`'s docstring: the open, then at every step the marks and the previous step's
decisions (`_settle` on the fast engine), the exits, the adjustment round
(`opl.runtime.engine.adjustround`), exercise, the hedge, expiry, the margin and the alerts. The bookings are
`opl.runtime.engine.positions`'; on the fast engine a stage's hot loop is a step kernel
(`opl.runtime.engine.kernels.steppack`).

What a pass computes, apart from how passes are scheduled (`opl.runtime.engine.passes`: a `_Pass` per job
and pass, fed its months).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.adjust import AdjustEngine, _once
from opl.runtime.engine.book import Book, Slot
from opl.runtime.engine.deadline import check as check_deadline
from opl.runtime.engine.exercise import Inventory
from opl.runtime.engine.guards import blocked, leg_states, warned, warns_nowhere
from opl.runtime.engine.hedging import direction
from opl.runtime.engine.ledger import Costs, Ledger
from opl.runtime.engine.marking import SmileRule
from opl.runtime.engine.months import MarkedMonth, _base_gammas, _base_marks
from opl.runtime.engine.positions import (_FLOAT, _CostArrays, _Margins, _close_all, _close_pending, _exit_rules,
                                          _hedge, _hedge_compiled, _lots_set, _margin_packs, _open_book, _static,
                                          _zeroed)
from opl.runtime.engine.adjustround import _Round, _desk, _play_on_paths
from opl.runtime.engine.runspec import DAYS_PER_YEAR, RunSpec, StrategySpec
from opl.runtime.engine.kernels.steppack import StepPack
from opl.runtime.engine.stepstate import _trigger_state
from opl.runtime.engine.triggers import COMPARISONS, TriggerState


@dataclass(eq=False)
class _Open:
    """What one month holds over (variants, paths) while its steps run (`_Pass.month`)."""

    m: int
    mo: MarkedMonth
    book: Book
    d: np.ndarray  # the month's hedge direction per path
    hedge: np.ndarray
    is_open: np.ndarray
    month_pnl: np.ndarray
    denominator: np.ndarray  # pnl_percent's base: the premium, or the opening margin
    open_margin: np.ndarray
    month_start: np.ndarray
    alerted: np.ndarray
    assigned: np.ndarray
    delivered: np.ndarray
    by_step: np.ndarray | None = None  # `prices`, made when first read
    # How many (variant, path) positions are open (`_Pass._open_anywhere`), None when ``is_open`` changed since it
    # was counted: the adjustment round, the hedge and the alerts each asked numpy to scan the whole array at every
    # step. The compiled exits, which close a few positions at most steps, take their count off it (no new scan).
    open_count: int | None = None
    read_only: tuple | None = None  # `steps_read_only`, made when first read
    # Per base leg and step, the marks' columns the step gives the slot and the kernels' views of them, or None
    # (`_Pass._base_columns`).
    base_cols: list | None = None

    @property
    def prices(self) -> np.ndarray:
        """The month's prices by step, (n + 1, paths) C-ordered (`_price_rows`): a step's row without a copy."""
        if self.by_step is None:
            self.by_step = _price_rows(self.mo)
        return self.by_step


def _steps_read_only(o: _Open, by_step: tuple) -> tuple:
    """The month's prices and volatilities by step as read-only views (the arrays themselves where they are
    read-only), made once a month: `kernels.adjust.when_verdict` takes read-only rows, and made a view of each
    row at every step."""
    rows = o.read_only
    if rows is None or rows[0] is not by_step[0]:
        views = []
        for x in by_step[:2]:
            if x.flags.writeable:
                x = x.view()
                x.setflags(write=False)
            views.append(x)
        rows = o.read_only = (by_step[0], *views)
    return rows[1:]


def _price_rows(mo: MarkedMonth) -> np.ndarray:
    """The month's prices (n + 1, paths), a step's prices a contiguous row: the kernels read a step's prices
    whole, and a column of the (paths, n + 1) table was copied at each of a step's four or five kernel calls
    (a strided gather of the whole column each). A simulated month keeps the transpose (`months._Month.by_step`),
    read where it lies, the month store's read-only one too: the kernels take a month's prices read-only (one
    compiled type an argument, `kernels.base._input`)."""
    by_step = getattr(mo, "by_step", None)
    rows = by_step[0] if by_step is not None else np.asarray(mo.price, dtype=float).T
    # (C-ordered, read-only floats: the step kernels read its rows as they are, `StepPack`)
    return kernels.base._input(rows, rows.shape)


class _Pass:
    """A pass of chunks replayed over (variants, paths): the run's constants, the running account
    (ledger, equity, peaks, futures from exercise, goods, the liquidation decided) and the month's steps
    in the order of `opl.runtime.engine.replay`'s docstring, one method each."""

    def __init__(self, strat: StrategySpec, run: RunSpec, variants, shape: tuple[int, int], want_trace: bool):
        self.strat, self.run, self.shape = strat, run, shape
        self.sizes = np.array([v.size for v in variants])[:, None]
        self.band_k = np.array([v.band_k for v in variants])[:, None]
        self.fast = run.engine == "fast" and kernels.available()
        self.margins = _Margins(_margin_packs(run.pack, variants), self.fast)
        self.hedger = _hedge_compiled if self.fast and not want_trace else _hedge
        # Option ticks are looked up at 1% of the price, where the premiums of monthly options sit.
        premium_level = max(run.price * 0.01, 1e-9)
        costs = [Costs.from_pack(run.pack, price=run.price, premium=premium_level, option_ticks=run.option_ticks,
                                 futures_ticks=run.futures_ticks, fee_factor=v.fee_factor,
                                 slippage_factor=v.slippage_factor) for v in variants]
        self.cost = _CostArrays(costs)
        self.cost.fast = self.fast and not want_trace
        self.exit_rules = _exit_rules(strat) if self.cost.fast else None
        self.mult, self.cs = strat.multiplier, strat.contract_size
        self.lots_per_option = self.mult / self.cs  # futures lots of delta per option lot per unit of delta
        self.cash_rate = strat.rate if run.cash_rate is None else run.cash_rate
        self.margin_rate = self.cash_rate if run.margin_rate is None else run.margin_rate
        self.futures_underlying = run.pack.underlying.kind == "future"
        nl = len(strat.legs)
        numbers = strat.leg_numbers or tuple(range(nl))
        self.engine = AdjustEngine(strat.adjust, shape, numbers) if strat.adjust is not None else None
        self.slots_per_month = nl + (self.engine.extra_slots(strat.legs) if self.engine is not None else 0)
        self.ledger = Ledger(shape, run.months, strat.adjust.counters() if strat.adjust is not None else ())
        self.equity = np.full(shape, run.capital)
        self.peak = self.equity.copy()
        self.max_dd = np.zeros(shape)
        self.peak_margin = np.zeros(shape)
        self.margin_held = np.zeros(shape)  # the requirement over the coming step (for margin_rate)
        self.pending = np.zeros(shape)  # futures lots from exercise, closed at the next step
        self.pending_zero = False  # `pending` known to be zeros (closed at this step's start, no exercise since)
        self.inventory = Inventory(shape, run.months * self.slots_per_month)
        self.liquidate_next = np.zeros(shape, dtype=bool)
        self.ruined = np.zeros(shape, dtype=bool)
        self.no_alerts = np.zeros(shape, dtype=bool)  # `_Open.alerted` where no warn_if rule holds (read only)
        self.no_alerts.flags.writeable = False
        self._paths = np.zeros(shape[1], dtype=bool)  # `_adjust`'s paths of a round (all False between rounds)
        self.warns = any(g.kind == "warn_if" for g in strat.guards)  # asked at every step: the rules do not change
        self._quiet: dict[tuple, bool] = {}  # `_warns_nowhere`'s answers
        self._growths: dict = {}  # `_growth`'s answers
        self._verdicts: dict[tuple, tuple] = {}  # `_exit_verdicts`' answers
        self.absolute_step = 0
        self.tr: dict[str, list] | None = {k: [] for k in (
            "net_delta", "target", "hedge", "equity", "margin", "hedged", "price", "assigned", "unit_delta", "band",
            "exit", "open", "adjusted", "gamma")} if want_trace else None
        # The step kernels with what holds all pass made once (`StepPack`): the fast engine's settle, and where the
        # costs are compiled (untraced) its exits and hedge.
        self.pack = StepPack(
            shape=shape, equity=self.equity, buckets=self.ledger.buckets, counters=self.ledger.counters,
            capital=run.capital, mult=self.mult, cs=self.cs, storage=strat.assignment.storage_per_day,
            funding=strat.assignment.funding_rate, year_days=DAYS_PER_YEAR, option_close_fee=self.cost.option_close_fee,
            futures_close_fee=self.cost.futures_close_fee, futures_open_fee=self.cost.futures_open_fee,
            exit_rules=self.exit_rules[0] if self.exit_rules is not None else None,
            all_required=strat.exit_mode == "all_required",
            stop_level=None if strat.stop_loss is None else -strat.stop_loss * run.capital,
            hedge=(strat.hedge.keep, strat.hedge.band, self.lots_per_option) if strat.hedge is not None else None,
        ) if self.fast else None

    # -- the pass's results ----------------------------------------------------------------------------
    def result(self) -> dict:
        ledger = self.ledger
        return {"monthly": ledger.monthly, "max_drawdown": self.max_dd, "peak_margin": self.peak_margin,
                "buckets": ledger.buckets, "counters": ledger.counters}

    def trace(self) -> dict[str, np.ndarray] | None:
        return {k: np.stack(v, axis=-1) for k, v in self.tr.items()} if self.tr is not None else None

    # -- a month ---------------------------------------------------------------------------------------
    def month(self, m: int, mo: MarkedMonth) -> None:
        """Month ``m``: the open, its steps, its P&L into the ledger."""
        kernels.base.forget_tuples()  # the last month's kept kernel tuples would keep its marks alive
        o = self._open(m, mo)
        for j in range(1, mo.n + 1):
            check_deadline()  # a step of a chunk is the longest the replay runs past its deadline
            self._step(o, j)
        self.ledger.monthly[..., m] = self.equity - o.month_start
        self.ledger.count("assigned_months", o.assigned)
        self.ledger.count("delivered_months", o.delivered)
        self.ruined |= self.equity <= 0

    def state(self, o: _Open, j: int, hedge=None, month_pnl=None, denominator=None, open_margin=None) -> TriggerState:
        """What the triggers read at step ``j`` (the month's own hedge, P&L and bases unless given)."""
        book, sizes, lots_per_option = o.book, self.sizes, self.lots_per_option
        return _trigger_state(o.mo, j, book, o.hedge if hedge is None else hedge,
                              o.month_pnl if month_pnl is None else month_pnl,
                              o.denominator if denominator is None else denominator, self.equity, self.peak,
                              self.run.capital, o.open_margin if open_margin is None else open_margin,
                              self.margins, o.mo.days_left[j], lots_per_option, self.pending, self.inventory,
                              lambda: (book.option_delta(lots_per_option) + book.static) / sizes, self.band_k,
                              self.strat, o.d)

    def _open(self, m: int, mo: MarkedMonth) -> _Open:
        """Step 0: the legs resolved, guarded, margined, sold or bought; the hedge set."""
        strat, shape, ledger, cost, equity = self.strat, self.shape, self.ledger, self.cost, self.equity
        f = mo.price
        d = direction(strat.hedge, mo.signal) if strat.hedge is not None else np.zeros(shape[1])
        book = _open_book(strat, mo, self.sizes, shape)
        if self.engine is not None:
            if not hasattr(mo, "quote"):
                raise ValueError("the adjustment module needs simulated months (their options can be re-marked)")
            self.engine.open_month(book)
        zero = np.zeros(shape)  # (read only until replaced below; the base of pnl_percent read by the guards only)
        o = _Open(m=m, mo=mo, book=book, d=d, hedge=zero, is_open=np.zeros(shape, dtype=bool), month_pnl=zero,
                  denominator=np.ones(shape) if strat.guards else zero, open_margin=zero, month_start=equity.copy(),
                  alerted=np.zeros(shape, dtype=bool), assigned=np.zeros(shape, dtype=bool),
                  delivered=np.zeros(shape, dtype=bool))
        if self.fast:
            o.base_cols = self._base_columns(mo)
        if strat.guards:
            # avoid_leg_if: a leg whose rule holds at the open is not opened on that path.
            at_open = self.state(o, 0)
            for s, hit in zip(book.slots, blocked(strat.guards, at_open, leg_states(book, f[:, 0], mo.days_left[0]))):
                if np.any(hit):
                    ledger.count("avoided_legs", hit & ~self.ruined & ~self.liquidate_next)
                    s.qty = np.where(hit, 0.0, s.qty)
        open_margin = self.margins(book, zero, zero, f[:, 0])
        # A liquidation decided at the last step of a month runs at the next step; nothing opens before it.
        can_open = ~self.ruined & ~self.liquidate_next & (equity >= open_margin)
        ledger.count("skipped_months", ~self.ruined & ~can_open)
        # The adjustment module's slots hold nothing yet: their lots, costs and counts are zeros (skipped).
        opened = [s for s in book.slots if s.held()]
        closed = ~can_open
        for s in opened:  # (the lots `_open_book` made: the slot's own array, zeroed in place where not opened)
            _lots_set(s, _zeroed(s._qty, closed))
        book.futures = [np.where(can_open, fut, 0.0) for fut in book.futures]
        is_open = can_open & book.any_open()
        margin = np.where(is_open, open_margin, 0.0)
        self.margin_held = self.margin_held + margin
        month_pnl = np.zeros(shape)
        for s in opened:
            lots = np.abs(s._qty)
            ledger.pay(cost.open_options(s._qty, lots), equity, month_pnl)
            ledger.count("option_lots", is_open, lots)
        for fut in book.futures:
            ledger.cost(cost.futures(fut, closing=False), equity, month_pnl)
        # (The slots not opened hold no lots: their terms, ±0, change no |sum|.)
        premium = np.abs(-sum(s._qty * s.value for s in opened) * self.mult)
        o.denominator = np.where(premium > 0, premium, np.maximum(open_margin, 1e-9))
        o.is_open, o.month_pnl, o.open_margin, o.hedge = is_open, month_pnl, open_margin, np.zeros(shape)
        if strat.hedge is not None:
            o.hedge = self.hedger(strat, book, o.hedge, d, is_open, self.lots_per_option, cost, ledger, equity,
                                  month_pnl, self.tr)
        margin /= self.run.capital
        np.maximum(self.peak_margin, margin, out=self.peak_margin)
        if self.engine is not None:
            when = self._when(o, 0)
            self.engine.start(self.state(o, 0) if when is None else None, is_open, when=when)
        return o

    @staticmethod
    def _base_columns(mo) -> list | None:
        """`_Open.base_cols` of a fast month (its marks stored (steps, paths), `SeriesMarks`), else None: per base
        leg, per step ``j``, (value, delta, exercise, gamma) — the columns ``[:, j]`` of the month's tables, gamma
        0.0 without greeks — and the value's, delta's and exercise flags' read-only (1, paths) views the kernels
        read, all made here at once.

        A step gave each base slot its columns by four subscripts, and every tuple of them the step's kernels take
        (the settle's, the hedge's, the margin's, the exercise scan's) made its read-only view again
        (`kernels.base._grid_view`: a reshape and a flag set); the step now takes them from these lists and puts the
        views in `kernels.base._VIEWS` for those tuples (`_settle`)."""
        if getattr(mo, "series", None) is None:
            return None
        gammas = mo.gamma
        legs = []
        for b, tables in enumerate(zip(mo.value, mo.delta, mo.exercise)):
            columns, rows = [], []
            for x in tables:
                x = x.T  # (steps, paths)
                if not x.flags.c_contiguous:
                    return None
                columns.append(list(x))  # x[j] is the column ``[:, j]`` of the (paths, steps) table, the same view
                x = x.reshape(x.shape[0], 1, x.shape[1])
                x.setflags(write=False)
                rows.append(list(x))
            steps = len(columns[0])
            columns.append(list(gammas[b].T) if gammas is not None else [0.0] * steps)
            legs.append(list(zip(*columns, *rows)))
        return legs

    # -- a step ----------------------------------------------------------------------------------------
    def _step(self, o: _Open, j: int) -> None:
        """Step ``j`` of the month, in the order of `opl.runtime.engine.replay`'s docstring."""
        self.absolute_step += 1
        if self.fast:
            self._settle(o, j)
        else:
            self._interest(o, j)
            self._mark(o, j)
            self._previous_decisions(o)
        self._exits(o, j)
        fired = self._adjust(o, j)
        may = self._exercisable(o, j)
        self._rebalance(o, j)
        assigned = self._assign(o, j, may)
        if j == o.mo.n:
            self._expire(o)
        requirement = self._requirement(o, j)
        self._alerts(o, j)
        if self.tr is not None:
            self._trace_step(o, j, requirement, assigned, fired)

    def _interest(self, o: _Open, j: int) -> None:
        """Interest on the cash held over the step (before this step's marks and trades)."""
        cash_rate, margin_rate = self.cash_rate, self.margin_rate
        if not (cash_rate or margin_rate != cash_rate):
            return
        book, f = o.book, o.mo.price
        years = o.mo.span[j] / DAYS_PER_YEAR
        # Units of an ETF or a stock held were paid for; futures settle daily and hold no cash.
        cash = self.equity - self.run.capital - book.option_value(self.mult)
        if not self.futures_underlying:
            cash = cash - (book.static + o.hedge + self.pending + self.inventory.total()) * f[:, j - 1] * self.cs
        amount = cash * np.expm1(cash_rate * years)
        if margin_rate != cash_rate:  # the deposit earns the margin rate instead of the cash rate
            amount += self.margin_held * (np.expm1(margin_rate * years) - np.expm1(cash_rate * years))
        self.ledger.book("interest", amount, self.equity, o.month_pnl)

    def _interest_terms(self, o: _Open, j: int) -> tuple | None:
        """The step's interest as the compiled kernels take it — (units of an ETF or a stock held, or None;
        the cash's growth; the deposit; the deposit's own growth, or None) —, None when nothing accrues."""
        cash_rate, margin_rate = self.cash_rate, self.margin_rate
        if not (cash_rate or margin_rate != cash_rate):
            return None
        units = None
        if not self.futures_underlying:
            units = o.book.static + o.hedge + self.pending + self.inventory.total()
        growth, margin_growth = self._growth(o.mo.span[j])
        return units, growth, self.margin_held, margin_growth

    def _growth(self, span) -> tuple:
        """The cash's and the deposit's own growth over a step of ``span`` days (`_interest_terms`), kept per span:
        a month's steps have one or two spans, and these were three numpy scalar expressions a step."""
        known = self._growths.get(span)
        if known is None:
            cash_rate, margin_rate = self.cash_rate, self.margin_rate
            years = span / DAYS_PER_YEAR
            known = self._growths[span] = (
                np.expm1(cash_rate * years),
                np.expm1(margin_rate * years) - np.expm1(cash_rate * years) if margin_rate != cash_rate else None)
        return known

    def _settle(self, o: _Open, j: int) -> None:
        """1.–2. on the fast engine, one compiled pass (`opl.runtime.engine.kernels.settle`): the interest,
        the marks booked, the carry and the close of the futures from exercise, the numbers of `_interest`,
        `_mark` and `_previous_decisions` bit for bit. After a margin call not met, the liquidation comes
        before that close (`_previous_decisions` does both, as the reference orders them); so it does when the
        costs are booked stage by stage (a traced replay: ``cost.fast`` is False)."""
        mo = o.mo
        interest = self._interest_terms(o, j)
        # The slots moved to step j's marks (base slots, dynamic ones where held), in the book's order
        # (`_marked_slots`: marking changes no slot's lots), as the kernel takes them, in one loop.
        cols, views = o.base_cols, kernels.base._VIEWS
        qtys, befores, afters, valued = [], [], [], []
        for s in o.book.slots:
            b = s.base
            if b is None:
                if not s._held:
                    continue
                befores.append(s.value)
                mo.remark(s, j)
            else:
                befores.append(s.value)
                if cols is None:
                    _base_marks(s, mo, j)
                else:
                    marks = mo.series[b]
                    if not marks.complete:  # (a store's month is marked whole already)
                        _base_marks(s, mo, j)
                    value, s.delta, s.exercise, s.gamma, value_row, delta_row, flag_row = cols[b][j]
                    s.value = value
                    views[id(value)] = (value, value_row)  # the columns' kernel views, for the step's tuples
                    views[id(s.delta)] = (s.delta, delta_row)
                    views[id(s.exercise)] = (s.exercise, flag_row)
            qtys.append(s._qty)
            afters.append(s.value)
            valued.append(s._held)
        closing = self.cost.fast and not _any(self.liquidate_next, axis=None)
        self.pending = pending = kernels.writable(self.pending, self.shape)
        prices = o.prices
        self.pack.settle(interest=interest, qtys=qtys, befores=befores, afters=afters, valued=tuple(valued),
                         static=_static(o.book), hedge=o.hedge, pending=pending,
                         # (no name kept for the total: the step's releases change it in place, `Inventory`)
                         goods=self.inventory.total() if self.inventory.holds() else None,
                         previous=prices[j - 1],
                         price=prices[j], span=mo.span[j], close=closing, month_pnl=o.month_pnl)
        self._previous_decisions(o, pending_closed=closing)

    def _mark(self, o: _Open, j: int) -> None:
        """1. Mark to market: options, the strategy's futures, the hedge, futures awaiting their close, goods."""
        ledger, equity, month_pnl, mo, cs = self.ledger, self.equity, o.month_pnl, o.mo, self.cs
        for s, before in self._marked_slots(o, j):
            ledger.book("premium", s.qty * (s.value - before) * self.mult, equity, month_pnl)
        held = self.inventory.total()
        goods = held if np.any(held) else None
        f, terms = mo.price, self.strat.assignment
        df = f[:, j] - f[:, j - 1]
        ledger.book("premium", o.book.static * df * cs, equity, month_pnl)
        ledger.book("hedge", o.hedge * df * cs, equity, month_pnl)
        ledger.book("assignment", self.pending * df * cs, equity)
        if goods is not None:
            ledger.book("assignment", held * df * cs, equity)
            ledger.book("assignment", -held * cs * terms.storage_per_day * mo.span[j], equity)
            ledger.book("funding", -held * cs * f[:, j] * terms.funding_rate * mo.span[j] / DAYS_PER_YEAR, equity)

    def _marked_slots(self, o: _Open, j: int) -> list[tuple[Slot, np.ndarray]]:
        """The option slots moved to step ``j``'s marks (base slots, dynamic ones where held), in the book's
        order, each with its marks before."""
        moved = []
        for s in o.book.slots:
            before = s.value
            if s.base is not None:
                _base_marks(s, o.mo, j)
            elif s._held:
                o.mo.remark(s, j)
            else:
                continue
            moved.append((s, before))
        return moved

    def _previous_decisions(self, o: _Open, pending_closed: bool = False) -> None:
        """2. What the previous step decided: a liquidation, the close of futures from exercise (unless
        ``pending_closed``: `_settle` did, which it does only where no liquidation was decided), goods sold."""
        ledger, equity, cost = self.ledger, self.equity, self.cost
        liquidate = self.liquidate_next
        if not pending_closed and np.any(liquidate):
            ledger.count("liquidations", liquidate)
            _close_all(o.book, o.hedge, liquidate, cost, ledger, equity, o.month_pnl)
            o.is_open &= ~liquidate
            o.open_count = None
            sold = self.inventory.take(mask=liquidate)
            ledger.cost(cost.futures(sold, closing=True), equity)
            self.pending = _close_pending(self.pending, liquidate, cost, ledger, equity)
            self.liquidate_next = np.zeros(self.shape, dtype=bool)
        if not pending_closed:
            self.pending = _close_pending(self.pending, self.pending != 0, cost, ledger, equity)
        self.pending_zero = True  # every lot closed, by `_settle` or just above, wherever it was not 0
        if not self.inventory.due(self.absolute_step):
            return  # most steps: nothing is released (no array of zeros scanned)
        sold = self.inventory.take(step=self.absolute_step)
        if self.cost.fast:
            kernels.book_sold(sold, cs=self.cs, basis=self.strat.assignment.basis, fee=cost.futures_close_fee,
                              buckets=ledger.buckets, equity=equity)  # one pass, not seven whole-array operations
        elif np.any(sold):
            ledger.book("assignment", sold * self.cs * self.strat.assignment.basis, equity)
            ledger.cost(cost.futures(sold, closing=True), equity)

    def _exit_flags(self, o: _Open, j: int) -> np.ndarray:
        """Where the exit triggers, the stop loss, the guard or the cycle's end close the position now."""
        strat, shape, mo = self.strat, self.shape, o.mo
        exit_now = np.zeros(shape, dtype=bool)
        if strat.exit_triggers or strat.score is not None:
            state = self.state(o, j)
            flags = [np.broadcast_to(t(state), shape) for t in strat.exit_triggers]
            if strat.score is not None:
                threshold = strat.score.threshold if strat.score_threshold is None else strat.score_threshold
                exit_now |= np.broadcast_to(strat.score.score(state, flags), shape) >= threshold
            else:  # pairwise, not np.any/np.all over the list: those first stack the flags into a new array
                combine = np.logical_and if strat.exit_mode == "all_required" else np.logical_or
                exit_now |= functools.reduce(combine, flags)
        if strat.stop_loss is not None:
            exit_now |= o.month_pnl <= -strat.stop_loss * self.run.capital
        if strat.guard_days is not None and mo.days_left[j] < strat.guard_days:
            exit_now[:] = True
        if j == mo.n and not mo.expires:  # a cycle cut at a roll or at the data's end: close at market
            exit_now[:] = True
        exit_now &= o.is_open
        return exit_now

    def _exits(self, o: _Open, j: int) -> None:
        """3. Exit triggers under the exit mode, the stop loss and the guard: a hit closes at market."""
        if self.exit_rules is not None:
            self._exits_compiled(o, j)
            return
        strat, mo, tr = self.strat, o.mo, self.tr
        exit_now = self._exit_flags(o, j)
        if tr is not None:
            unit_delta = (o.book.option_delta(self.lots_per_option) + o.book.static) / self.sizes
            tr["unit_delta"].append(np.where(o.is_open, unit_delta, np.nan))
            tr["band"].append(np.broadcast_to(self.band_k * mo.band[1][j], self.shape).copy() if mo.band is not None
                              else np.full(self.shape, np.nan))
            tr["exit"].append(exit_now.copy())
        if np.any(exit_now):
            self.ledger.count("exits", exit_now)
            cut = j == mo.n and not mo.expires
            if mo.days_left[j] >= (strat.guard_days or 2.0) and not cut:
                # Closed before the last days: a stop or a take-profit, what the critic wants to see.
                self.ledger.count("early_exits", exit_now)
            _close_all(o.book, o.hedge, exit_now, self.cost, self.ledger, self.equity, o.month_pnl)
            o.is_open &= ~exit_now
            o.open_count = None

    def _exits_compiled(self, o: _Open, j: int) -> None:
        """`_exits` for pnl_percent and days_left triggers in one compiled pass (`opl.runtime.engine.kernels.
        exits_close`): the flags, the stop loss, the guard, the counts and the close, the same numbers. The lots
        are closed in place (a slot's and the futures' arrays made their own first): most steps close a few
        positions, and new arrays for every slot, each rescanned for `Slot.held`, cost more than the exits.
        Where nothing is open (known: `_open_anywhere`) nothing can exit, and the step skips the call."""
        mo, shape = o.mo, self.shape
        if not self._open_anywhere(o):
            return
        start, force, early = self._exit_verdicts(mo.days_left[j], j == mo.n and not mo.expires)
        o.is_open = kernels.writable(o.is_open, shape, np.bool_)
        held, qtys = [], []
        for s in o.book.slots:  # the held slots and their lots, each the slot's own writable array (`writable` inline)
            if not s._held:
                continue
            q = s._qty
            if not (type(q) is np.ndarray and q.shape == shape and q.dtype == _FLOAT and (flags := q.flags).c_contiguous
                    and flags.writeable):
                s._qty = q = kernels.writable(q, shape)  # the same lots: `Slot.held` stays
            held.append(s)
            qtys.append(q)
        futures = o.book.futures
        own = [kernels.writable(f, shape) for f in (*futures, o.hedge)] if futures else [kernels.writable(o.hedge, shape)]
        still = self.pack.exits(month_pnl=o.month_pnl, denominator=o.denominator, start=start, force=force,
                                is_open=o.is_open, early=early, qtys=qtys, futures=own)
        if still is None:
            return  # nothing exited: nothing was written
        o.open_count -= self.pack.exited  # (each exit closed an open position: counted by `_open_anywhere` above)
        for s, h in zip(held, still):
            s._held = h
        o.hedge = own[-1]
        for f, w in zip(o.book.futures, own):
            if w is not f:
                f[...] = w  # a view or another type: written back, as the reference's close writes in place

    def _exit_verdicts(self, days_left, cut: bool) -> tuple[bool, bool, bool]:
        """`_exits_compiled`'s verdicts for every path at a step ``days_left`` days from expiry (``cut``: the last
        step of a cycle cut at a roll or the data's end): the days_left triggers combined (``start``: the
        pnl_percent ones still to test), the guard or the cut closing everything, an exit counted as early.
        Kept per (days_left, cut): a month's steps ask the same numbers every month."""
        known = self._verdicts.get((days_left, cut))
        if known is None:
            strat = self.strat
            pnl_rules, day_rules = self.exit_rules
            days = [COMPARISONS[op](days_left, bound) for op, bound in day_rules]  # one verdict for every path
            start = bool(all(days) if strat.exit_mode == "all_required" else any(days)) if (days or pnl_rules) \
                else False
            force = bool(strat.guard_days is not None and days_left < strat.guard_days) or cut
            early = bool(days_left >= (strat.guard_days or 2.0)) and not cut
            known = self._verdicts[(days_left, cut)] = (start, force, early)
        return known

    def _adjust(self, o: _Open, j: int) -> np.ndarray:
        """3b. The adjustment module on the positions still open; returns where a round fired."""
        engine, shape, mo = self.engine, self.shape, o.mo
        if engine is None or j >= mo.n or not self._open_anywhere(o):
            return self.no_alerts  # (nothing fired: the pass's read-only False, which only a trace reads)
        strat, run, book, ledger, equity = self.strat, self.run, o.book, self.ledger, self.equity
        if self.fast and hasattr(mo, "columns"):
            # The fast engine plays a round on the few paths where it fires (a few percent of them).
            when = self._when(o, j)
            state = _once(lambda: self.state(o, j))  # (the compiled condition and round do not read it)
            fire = engine.decide(state() if when is None else None, o.is_open, j, mo.step_days,
                                 compiled=kernels.available(), when=when)
            cols = engine.fired_paths if engine.fired_paths is not None else np.flatnonzero(fire.any(axis=0))
            closed = None
            if strat.greeks and cols.size:  # (cols: the paths where an element fires, in order)
                paths = self._paths
                paths[cols] = True  # fire.any(axis=0), without a scan of the whole fire
                _base_gammas(book, mo, j, paths)  # what the round reads (its gamma hedge, conditions)
                paths[cols] = False  # (all False again for the next round: no new array a step)
            compiled = self._compiled_round(o)
            if compiled is not None and cols.size and compiled.covers(o, j, state):
                if compiled.play(o, fire, j, cols):  # its exits counted and closed there
                    o.open_count = None
            elif cols.size:
                o.hedge, closed = _play_on_paths(
                    engine, fire, strat, book, o.hedge, mo, j, o.d, self.sizes, self.lots_per_option, run, self.cost,
                    ledger, equity, o.month_pnl, self.margins, self.pending, self.inventory, self.peak,
                    o.denominator, o.open_margin, self.band_k)
        else:
            _base_gammas(book, mo, j)
            desk = _desk(strat, book, o.hedge, mo, j, o.d, self.sizes, self.lots_per_option, run, self.cost, ledger,
                         equity, o.month_pnl, self.margins, self.pending, self.inventory,
                         lambda: self.state(o, j, hedge=desk.hedge))
            closed = engine.step(desk, o.is_open, mo.step_days)
            o.hedge = desk.hedge
        if closed is not None and np.any(closed):
            ledger.count("exits", closed)
            if mo.days_left[j] >= (strat.guard_days or 2.0):
                ledger.count("early_exits", closed)
            o.is_open &= ~closed
            o.open_count = None
        return engine.fired

    @staticmethod
    def _open_anywhere(o: _Open) -> bool:
        """Whether a position of ``o`` is open on any path: counted once after each change of ``is_open`` but the
        compiled exits' (`_Open.open_count`)."""
        if o.open_count is None:
            o.open_count = int(np.count_nonzero(o.is_open))
        return o.open_count > 0

    def _when(self, o: _Open, j: int) -> np.ndarray | None:
        """``adjust_when``'s verdict per path at step ``j`` of ``o`` in one compiled pass
        (`opl.runtime.engine.kernels.adjust.when_verdict`: a condition of price and volatility triggers on a
        fast month with the stock smile), or None: the numpy test then reads the step's trigger state."""
        program, mo = self.engine.when_program, o.mo
        by_step = getattr(mo, "by_step", None)
        if program is None or not self.fast or by_step is None or type(mo.smile) is not SmileRule:
            return None
        price, vol = _steps_read_only(o, by_step)
        return kernels.adjust.when_verdict(program, price=price[j], open_price=price[0], vol=vol[j], open_vol=vol[0],
                                           floor=mo.smile.floor, spread=mo.smile.spread)

    def _compiled_round(self, o: _Open) -> "_Round | None":
        """The pass's compiled round (`_Round`: every month's book has the same slots), made at its first round;
        None where it does not cover them."""
        kept = getattr(self, "_round", None)
        if kept is None:
            kept = self._round = (_Round.of(self.engine, self, o.book, o.mo) if _ROUNDS_COMPILED else None,)
        return kept[0]

    def _rebalance(self, o: _Open, j: int) -> None:
        """4. The hedge rule on its rebalancing steps."""
        strat, tr = self.strat, self.tr
        if strat.hedge is not None and j < o.mo.n and j % strat.hedge.every == 0:
            if self.hedger is _hedge_compiled:
                self._hedge_packed(o)
                return
            o.hedge = self.hedger(strat, o.book, o.hedge, o.d, o.is_open, self.lots_per_option, self.cost, self.ledger,
                                  self.equity, o.month_pnl, tr)
        elif tr is not None:
            tr["hedged"].append(np.zeros(self.shape, dtype=bool))
            for key in ("net_delta", "target"):
                tr[key].append(np.full(self.shape, np.nan))

    def _hedge_packed(self, o: _Open) -> None:
        """`_hedge_compiled` at a rebalancing step by the pass's `StepPack`, told whether anything is open (known:
        no scan of ``is_open``), the same numbers."""
        hedge, book = o.hedge, o.book
        # The month's own hedge is rebalanced in place (`_hedge_compiled`); a view or a shared array gets a new one.
        flags = hedge.flags
        own = hedge.shape == self.shape and hedge.dtype == _FLOAT and flags.c_contiguous and flags.writeable \
            and flags.owndata
        if not self._open_anywhere(o):  # nothing trades: the hedge kept, the same array or a copy
            if not own:
                o.hedge = np.array(hedge, dtype=float)
            return
        qtys, deltas = [], []
        for s in book.slots:  # (the held slots' lots and deltas in one loop)
            if s._held:
                qtys.append(s._qty)
                deltas.append(s.delta)
        o.hedge = self.pack.hedge(qtys=qtys, deltas=deltas, static=_static(book), hedge=hedge, d=o.d,
                                  active=o.is_open, month_pnl=o.month_pnl, in_place=own)

    def _exercisable(self, o: _Open, j: int) -> set[int] | None:
        """Before expiry on the fast engine, the slots that may be exercised at step ``j``: the held American
        ones with a short lot in the exercise region, all found in one compiled call
        (`opl.runtime.engine.kernels.shorts_exercised`); None (every slot asks `_exercised`) otherwise."""
        if not self.fast or j >= o.mo.n:
            return None
        index, qtys, flags = [], [], []
        for si, s in enumerate(o.book.slots):  # (the held American slots' places, lots and flags in one loop)
            if s._held and s.american:
                index.append(si)
                qtys.append(s._qty)
                flags.append(s.exercise)
        if not index:
            return set()
        return {si for si, hit in zip(index, self.pack.shorts(qtys, flags)) if hit}

    def _exercised(self, s: Slot, j: int, mo, found: bool = False) -> np.ndarray | None:
        """Where slot ``s`` is exercised at step ``j`` — short American lots in the holder's exercise region
        before expiry, lots in the money at expiry —, or None where nowhere (an empty slot, a European one
        before expiry, a series expiring after the month: it is closed at market at the month's end).
        ``found``: `_exercisable` found the slot short in its exercise region before expiry (not asked again)."""
        option = self.run.pack.option
        if not s.held():
            return None
        if j < mo.n or s.extra_days > 0:
            if not (s.american and j < mo.n):
                return None
            if found:  # (one temporary: the flags and-ed into the comparison's own array)
                hit = s._qty < 0
                if type(hit) is not np.ndarray or hit.shape != self.shape:
                    return hit & s.exercise
                hit &= s.exercise
                return hit
            if self.fast and not kernels.any_short_exercised(s.qty, s.exercise):
                return None  # the usual step: found in one pass, without the masks below
            hit = (s.qty < 0) & s.exercise
        elif option.auto_exercise_itm:
            hit = (s.qty != 0) & (s.phi * (mo.price[:, mo.n] - s.strike) > option.auto_exercise_threshold)
        else:
            return None
        return hit if np.any(hit) else None

    def _assign(self, o: _Open, j: int, may: set[int] | None = None) -> np.ndarray | None:
        """5./6. Early assignment of short American legs, exercise at expiry; returns where a short was assigned
        at this step for the trace (None untraced on the fast engine: its kernel marks the month's ``assigned``
        in place, no step's array made and or-ed in). ``may``: `_exercisable`'s answer at this step, if asked
        already (the hedge changes no lots or flags)."""
        direct = self.fast and self.tr is None
        if direct and may is not None and not may:
            return None  # before expiry, no slot short in its exercise region (most steps): nothing to book
        strat, mo, ledger, equity, cost = self.strat, o.mo, self.ledger, self.equity, self.cost
        f, mult = mo.price, self.mult
        assigned_now = o.assigned if direct else np.zeros(self.shape, dtype=bool)
        may = self._exercisable(o, j) if may is None else may
        for si, s in enumerate(o.book.slots):
            hit = self._exercised(s, j, mo, found=may is not None) if may is None or si in may else None
            if hit is None:
                continue
            if self.fast:
                self._exercise_compiled(o, si, s, hit, j, assigned_now)
                continue
            q = s.qty
            lots_f = np.where(hit, q * s.phi * self.lots_per_option, 0.0)
            intrinsic = np.maximum(s.phi * (f[:, j] - s.strike), 0.0)
            ledger.book("assignment", np.where(hit, -q * (s.value - intrinsic) * mult, 0.0), equity, o.month_pnl)
            ledger.cost(np.where(q < 0, cost.option_assignment, cost.option_exercise) * np.abs(
                np.where(hit, q, 0.0)), equity, o.month_pnl)
            short = hit & (q < 0)
            assigned_now |= short
            if strat.assignment.action == "take_delivery":
                goods = np.where(short & (lots_f > 0), lots_f, 0.0)
                hold = int(np.ceil(strat.assignment.hold_days / mo.step_days))
                self.inventory.add(o.m * self.slots_per_month + si, goods, self.absolute_step + max(hold, 1))
                o.delivered |= goods > 0
                lots_f = lots_f - goods
            self.pending = self.pending + lots_f
            self.pending_zero = False
            s.qty = np.where(hit, 0.0, q)
        if direct:
            return None
        o.assigned |= assigned_now
        return assigned_now

    def _exercise_compiled(self, o: _Open, si: int, s: Slot, hit: np.ndarray, j: int, assigned_now) -> None:
        """`_assign`'s bookings for slot ``s`` in one compiled pass (`opl.runtime.engine.kernels.exercise`)."""
        terms, cost, mo = self.strat.assignment, self.cost, o.mo
        shape = self.shape
        s._qty, self.pending = kernels.writable(s._qty, shape), kernels.writable(self.pending, shape)
        self.pending_zero = False
        qty, self.pending, goods = kernels.exercise(
            qty=s.qty, hit=hit, phi=s.phi, lots_per_option=self.lots_per_option, price=o.prices[j], strike=s.strike,
            value=s.value, mult=self.mult, fee_assigned=cost.option_assignment[:, 0],
            fee_exercised=cost.option_exercise[:, 0], take_delivery=terms.action == "take_delivery",
            buckets=self.ledger.buckets, equity=self.equity, month_pnl=o.month_pnl, assigned=assigned_now,
            pending=self.pending, in_place=True)  # the slot's and the pass's own arrays: no new ones a call
        _lots_set(s, qty)
        if terms.action == "take_delivery":
            hold = int(np.ceil(terms.hold_days / mo.step_days))
            at = self.inventory.add(o.m * self.slots_per_month + si, goods, self.absolute_step + max(hold, 1),
                                    within=hit)  # (goods only where an exercise hit)
            if at.size:  # ``goods > 0`` at the positions stored: ``delivered |= goods > 0`` without a scan
                o.delivered.reshape(-1)[at] = True

    def _expire(self, o: _Open) -> None:
        """6. At expiry what was not exercised lapses (its mark is already 0); series expiring later are sold
        back at market with the hedge and the futures."""
        book = o.book
        for s in book.slots:
            if s.extra_days == 0 and s._held:  # (a slot holding nothing holds zeros already)
                s.qty = np.zeros(self.shape)
        expiring = o.is_open | (o.hedge != 0) | (_static(book) != 0)  # (no array of zeros made for no futures)
        _close_all(book, o.hedge, expiring, self.cost, self.ledger, self.equity, o.month_pnl)
        o.is_open[:] = False
        o.open_count = 0

    def _requirement(self, o: _Open, j: int) -> np.ndarray:
        """7. Margin by the rule pack, margin calls, the liquidation decided for the next step, peaks and
        drawdown; returns the requirement."""
        strat, run, ledger, equity = self.strat, self.run, self.ledger, self.equity
        if self.fast and self.margins.rule is not None:
            # The margin and the account in one compiled pass (kernels.requirement_account), the same numbers.
            # (By the pass's `StepPack`, of the pass's equity and capital.)
            self.margin_held, self.liquidate_next = self.pack.requirement(
                self.margins.rule, [s for s in o.book.slots if s._held], static=_static(o.book), hedge=o.hedge,
                other=self._other_futures(), price=o.prices[j], margin_buffer=strat.margin_buffer,
                calls=ledger.counters["margin_calls"], peak_margin=self.peak_margin, peak=self.peak, max_dd=self.max_dd,
                into=self._account_arrays())
            return self.margin_held
        requirement = self.margins(o.book, o.hedge, self.pending + self.inventory.total(), o.mo.price[:, j])
        self.margin_held = requirement
        if self.fast:
            self.liquidate_next = kernels.account(equity=equity, requirement=requirement, capital=run.capital,
                                                  margin_buffer=strat.margin_buffer,
                                                  calls=ledger.counters["margin_calls"], peak_margin=self.peak_margin,
                                                  peak=self.peak, max_dd=self.max_dd)
        else:
            call = (equity < requirement) & (requirement > 0)
            ledger.count("margin_calls", call)
            self.liquidate_next = call & (equity < (1.0 - strat.margin_buffer) * requirement)
            np.maximum(self.peak_margin, requirement / run.capital, out=self.peak_margin)
            np.maximum(self.peak, equity, out=self.peak)
            np.maximum(self.max_dd, (self.peak - equity) / self.peak, out=self.max_dd)
        return requirement

    def _account_arrays(self) -> tuple | None:
        """The last requirement's and liquidation's arrays for this step's to be written into (each read before:
        the interest over the step, the liquidation at its start), or None for new ones: a traced step keeps its
        requirement, and an array shared or not the pass's own is not written."""
        if self.tr is not None:
            return None
        held, liquidate = self.margin_held, self.liquidate_next
        for x, dtype in ((held, np.float64), (liquidate, np.bool_)):
            flags = x.flags
            if not (x.shape == self.shape and x.dtype == dtype and flags.c_contiguous and flags.writeable
                    and flags.owndata):
                return None
        return held, liquidate

    def _other_futures(self) -> np.ndarray:
        """The futures lots from exercise and the goods held, as the margin counts them (|lots|): the futures alone
        while no goods are held (the inventory's total is then exact zeros), the goods alone while the futures are
        zeros (closed at the step's start, none exercised since: |0 + x| is |x|), no sum made at most steps."""
        if not self.inventory.blocks():
            return self.pending
        return self.inventory.total() if self.pending_zero else self.pending + self.inventory.total()

    def _alerts(self, o: _Open, j: int) -> None:
        """warn_if: an alert when a rule starts to hold on a path; no trading effect."""
        strat = self.strat
        if self.warns and j < o.mo.n and self._open_anywhere(o):
            days_left = o.mo.days_left[j]
            if self._warns_nowhere(days_left, tuple([s.extra_days for s in o.book.slots if s._held])):
                hit = None  # decided by the days to expiry alone (most steps): no state, no legs made
            else:
                hit = warned(strat.guards, self.state(o, j), leg_states(o.book, o.mo.price[:, j], days_left))
            if hit is None:  # no rule holds anywhere (most steps): no alert, and none holds now
                o.alerted = self.no_alerts
                return
            now = hit & o.is_open
            self.ledger.count("alerts", now & ~o.alerted)
            o.alerted = now

    def _warns_nowhere(self, days_left, extra_days: tuple) -> bool:
        """`warns_nowhere` of the strategy's rules, kept per (days to expiry, held legs' extra days): its answer
        reads those numbers only, and a month's steps ask about the same few at every month."""
        known = self._quiet.get((days_left, extra_days))
        if known is None:
            known = self._quiet[(days_left, extra_days)] = warns_nowhere(self.strat.guards, days_left, extra_days)
        return known

    def _trace_step(self, o: _Open, j: int, requirement, assigned, fired) -> None:
        tr, shape, f = self.tr, self.shape, o.mo.price
        tr["equity"].append(self.equity.copy())
        tr["margin"].append(requirement)
        tr["hedge"].append(o.hedge.copy())
        tr["price"].append(np.broadcast_to(f[:, j], shape).copy())
        tr["assigned"].append(assigned)
        tr["open"].append(o.is_open.copy())
        tr["adjusted"].append(fired)
        _base_gammas(o.book, o.mo, j)
        tr["gamma"].append(o.book.gamma(self.lots_per_option) * f[:, j] * 0.01 if self.strat.greeks
                           else np.full(shape, np.nan))


_ROUNDS_COMPILED = True  # `_Round` plays the rounds it covers (tests switch it off to compare)


# ``x.any()`` as one call (the method's Python wrapper and its reduction are three in numpy 2; a step asks a few):
# whether any element is nonzero, NaN counting as nonzero.
_any = np.logical_or.reduce
