"""A pass's step kernels with the arguments that hold for the whole pass bound once (`StepPack`).

`opl.runtime.engine.kernels.steps`' public fronts (`settle`, `exits_close`, `hedge_step`, `shorts_exercised`)
take every argument as the reference's stages hold it and check, convert and pad each at every call. A
replayed step calls them with the same fees, rules, numbers, ledger, equity and counters all pass long:
`StepPack` makes those once — the fees as rows, the exit rules coded, the numbers as floats — and its
methods build only what changes from step to step (the slots' tuples, the month's rows), then call the
same compiled kernels with the same arguments: the same bits. The margin requirement and account
(`margin.requirement_account`) likewise, its rule's numbers made arguments once. In the kernels' package but outside
their shared cache stamp (`opl.runtime.engine.kernels.stamp`), so an edit here recompiles none of them.
"""

from __future__ import annotations

import numpy as np

from opl.runtime.engine.kernels import base, margin, steps
from opl.runtime.engine.kernels.base import (BOOK_SLOTS, _SCRATCH, _flag_view, _grid, _input, _padded, _plain,
                                             _plain_bool, _slot_tuple)

__all__ = ["StepPack"]

def _marks_tuple(arrays: list, least: int = 8) -> tuple:
    """`_slot_tuple` of a step's marks, whose every view was made already (`base._VIEWS`: a base leg's columns
    and their views are put there at each step, `step._Pass._settle`; a dynamic slot's by an earlier tuple), else
    `_slot_tuple` itself: the same tuple, not kept.

    A step's marks are a new set of arrays at every step (a base leg's columns), so `_slot_tuple` kept their tuples
    for nothing but the next step's settle and filled its store every few steps (then emptied: every tuple made
    again); made from the views alone, such a tuple costs a third of one made and kept."""
    views = base._VIEWS
    try:
        out = [views[id(x)][1] for x in arrays]  # (an id there names ``x`` itself: the entry keeps it alive)
    except KeyError:
        return _slot_tuple(arrays, least)
    n = len(out)
    return (*out, *base._PADS[:least - n]) if n <= least <= 16 else _padded(tuple(out), base._ONE, least)


_EIGHT = (_SCRATCH,) * 8  # `_padded`'s dummies for a tuple of up to eight writable positions, by a slice
_NO_FLAGS8 = (base._NO_FLAGS,) * 8  # and for a tuple of up to eight slots' flags


class StepPack:
    """The pass's constant arguments of the step kernels, made once (module docstring).

    Parameters
    ----------
    shape
        (variants, paths) of the pass.
    equity, buckets, counters
        The pass's own equity (written in place) and its ledger's buckets and counters (dicts of the arrays
        the kernels add into; the arrays are read at each call, so a ledger's arrays may be replaced).
    capital, mult, cs
        The capital, the option multiplier and the futures contract size.
    storage, funding, year_days
        Delivered goods' storage a day and funding rate, and the days of a year.
    option_close_fee, futures_close_fee, futures_open_fee
        A lot's fee per variant, (variants,).
    exit_rules
        The pnl_percent triggers' (comparison, bound) pairs (`steps.EXIT_OPS`), or None: no compiled
        exits; with ``all_required`` and ``stop_level`` (None: no stop loss) as `steps.exits_close`
        takes them.
    hedge
        (keep, band, lots per option) of the hedge rule, or None.
    """

    def __init__(self, *, shape: tuple[int, int], equity: np.ndarray, buckets: dict, counters: dict, capital: float,
                 mult: float, cs: float, storage: float, funding: float, year_days: float, option_close_fee,
                 futures_close_fee, futures_open_fee, exit_rules=None, all_required: bool = False,
                 stop_level: float | None = None, hedge: tuple | None = None):
        self.shape, self.equity, self.buckets, self.counters = shape, equity, buckets, counters
        self.capital, self.mult, self.cs = float(capital), float(mult), float(cs)
        self.storage, self.funding, self.year_days = float(storage), float(funding), float(year_days)
        rows = shape[:1]
        self.option_close_fee = _plain(option_close_fee, rows)
        self.futures_close_fee = _plain(futures_close_fee, rows)
        self.futures_open_fee = _plain(futures_open_fee, rows)
        if exit_rules is not None:
            self.ops, self.bounds = steps._exit_codes(tuple(exit_rules))
        self.all_required = bool(all_required)
        self.stop = stop_level is not None
        self.stop_level = 0.0 if stop_level is None else float(stop_level)
        self.exited = 0  # positions the last `exits` closed
        self._held = np.ones(16, dtype=np.bool_)
        self._shorts = np.zeros(16, dtype=np.bool_)  # `shorts`' answers (written at each call)  # the exits' flags of the slots still held (written after an exit)
        self.keep, self.band, self.lots_per_option = (float(x) for x in hedge) if hedge is not None else (0.0,) * 3
        self.capital_arg = float(capital)  # (`requirement`'s: the number as `requirement_account` passes it)
        self._rule: tuple | None = None  # (the rule, its numbers as the requirement kernels take them)

    def settle(self, *, interest: tuple | None, qtys: list, befores: list, afters: list, valued: tuple, static, hedge,
               pending: np.ndarray, goods, previous: np.ndarray, price: np.ndarray, span: float, close: bool,
               month_pnl: np.ndarray) -> None:
        """`steps.settle` of the slots moved (their lots, marks before and after, and whether each was
        held at the step's start, in the book's order); ``previous`` and ``price`` the month's rows of the
        step's start and end (C-ordered read-only floats, `step._price_rows`, as `base._input` gives the other
        kernels theirs); ``close``: the futures from exercise
        closed at the pass's futures fee."""
        shape, equity, buckets = self.shape, self.equity, self.buckets
        units, growth, held_margin, margin_growth = interest if interest is not None else (None, 0.0, equity, None)
        paid = units is not None
        kernel = steps._settle_parallel if equity.size >= base.STEP_PARALLEL_MIN else steps._settle
        kernel(equity, self.capital, self.mult, interest is not None, paid, _plain(units, shape) if paid else equity,
               previous, self.cs, float(growth), _plain(held_margin, shape),
               0.0 if margin_growth is None else float(margin_growth), margin_growth is not None, _slot_tuple(qtys),
               _marks_tuple(befores), _marks_tuple(afters), steps._valued(valued), len(qtys), _grid(static),
               _plain(hedge, shape), pending, _plain(goods, shape) if goods is not None else equity,
               goods is not None, price, self.storage, self.funding, float(span), self.year_days, close,
               self.futures_close_fee, buckets["interest"], buckets["premium"], buckets["hedge"],
               buckets["assignment"], buckets["funding"], buckets["costs"], self.counters["futures_lots"], month_pnl)

    def exits(self, *, month_pnl: np.ndarray, denominator, start: bool, force: bool, is_open: np.ndarray,
              early: bool, qtys: list, futures: list) -> list[bool] | None:
        """`steps.exits_close` with the pass's rules, fees and ledger: whether each slot still holds lots,
        or None where nothing exited. ``exited`` is then how many positions exited (each one open)."""
        n, counters = len(qtys), self.counters
        held = self._held if n <= self._held.shape[0] else np.ones(n, dtype=np.bool_)
        hits = steps._exits_in_place(
            month_pnl, _plain(denominator, self.shape), start, self.all_required, self.ops, self.bounds, self.stop,
            self.stop_level, force, is_open, early, counters["exits"], counters["early_exits"],
            (*qtys, *_EIGHT[n:]) if n <= 8 else _padded(tuple(qtys), _SCRATCH), n, self.option_close_fee,
            (*futures, *_EIGHT[m:]) if (m := len(futures)) <= 8 else _padded(tuple(futures), _SCRATCH), m,
            self.futures_close_fee, self.buckets["costs"], self.equity, counters["option_lots"],
            counters["futures_lots"], held)
        self.exited = hits
        return held[:n].tolist() if hits else None

    def hedge(self, *, qtys: list, deltas: list, static, hedge: np.ndarray, d, active: np.ndarray,
              month_pnl: np.ndarray, in_place: bool) -> np.ndarray:
        """`steps.hedge_step` where a position is open somewhere, with the pass's rule, fee and ledger:
        the new hedge (into ``hedge`` itself when ``in_place``)."""
        shape, counters = self.shape, self.counters
        new = hedge if in_place else np.empty(hedge.shape)
        kernel = steps._hedge_step_parallel if new.size >= base.STEP_PARALLEL_MIN \
            else steps._hedge_step
        kernel(_slot_tuple(qtys), _marks_tuple(deltas), len(qtys), _grid(static), _plain(hedge, shape),
               _plain(d, shape[1:]), _plain_bool(active, shape), self.keep, self.band, self.lots_per_option,
               self.futures_open_fee, self.buckets["costs"], self.equity, month_pnl, counters["futures_lots"],
               counters["hedge_trades"], new)
        return new

    def requirement(self, rule, held: list, *, static, hedge, other, price: np.ndarray, margin_buffer: float, calls,
                    peak_margin, peak, max_dd, into: tuple | None) -> tuple[np.ndarray, np.ndarray]:
        """`margin.requirement_account` of the book's slots ``held`` (those holding lots, in the book's
        order: each one's type, strike, marks, lots and expiry read off it), the same call and numbers: the held
        series' lists made in one loop and the rule's numbers once a pass (at every step the margin's wrapper
        made a tuple a slot, then a list of each field, through two calls by keyword)."""
        shape, equity = self.shape, self.equity
        kept = self._rule
        if kept is None or kept[0] is not rule:
            kept = self._rule = (rule, (rule.futures_rate, rule.czce, rule.otm_weight, rule.floor_weight, rule.rate,
                                        rule.min_rate, rule.put_cap, rule.unit, rule.contract_size,
                                        rule.futures_underlying, rule.spread, rule.straddle, rule.strangle))
        strikes, premiums, qtys, kinds = [], [], [], []
        for s in held:
            strikes.append(s.strike)
            premiums.append(s.value)
            qtys.append(s._qty)
            kinds.append((s.is_call, s.extra_days))
        is_call, expiry, two_kinds = margin._series_kinds(tuple(kinds))
        both = rule.spread and (rule.straddle or rule.strangle) and two_kinds
        out, liquidate = into if into is not None else (np.empty(shape), np.empty(shape, dtype=np.bool_))
        kernel = margin._requirement_parallel if out.size >= base.STEP_PARALLEL_MIN \
            else margin._requirement_account
        kernel(is_call, expiry, _slot_tuple(strikes, BOOK_SLOTS), _marks_tuple(premiums, BOOK_SLOTS),
               _slot_tuple(qtys, BOOK_SLOTS), len(qtys), _input(price, shape[1:]), _grid(static), _grid(hedge),
               _grid(other), *kept[1], both, margin._WIDE_BIT, equity, self.capital_arg, float(margin_buffer),
               calls, liquidate, peak_margin, peak, max_dd, out)
        return out, liquidate

    def shorts(self, qtys: list, flags: list) -> list[bool]:
        """`steps.shorts_exercised`, as a list."""
        n = len(qtys)
        # (every entry written: the pass's own row when it will do, as `_held`)
        out = self._shorts if n <= self._shorts.shape[0] else np.zeros(n, dtype=np.bool_)
        if qtys:
            # (a base leg's flags: the step's view of its column, `step._Pass._settle`; a dynamic slot's kept)
            grids = [_flag_view(f) for f in flags]
            steps._shorts_exercised(_slot_tuple(qtys), (*grids, *_NO_FLAGS8[n:]) if n <= 8 else
                                    _padded(tuple(grids), base._NO_FLAGS), n, out)
        return out[:n].tolist()
