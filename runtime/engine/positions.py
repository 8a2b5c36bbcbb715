"""What a step can do to a book's positions: open, close, hedge and margin them, at each variant's costs.

`_open_book` makes a month's book at the open; `_CostArrays` holds the variants' fees and slippage as
(variants, 1) columns; `_close_all` closes a book where asked (an exit, a liquidation, expiry, an
adjustment's abort), `_hedge` trades the hedge rule, `_margin` and `_Margins` price the exchange's
requirement of what is held — each the numpy reference, its compiled twin beside it (`_close_all_compiled`,
`_hedge_compiled`, `opl.runtime.engine.kernels.book_margin`), the same numbers.

The step (`opl.runtime.engine.step`) and the adjustment round (`opl.runtime.engine.adjustround`) both book
through them: what a position can get, apart from when in a step it gets it.
"""

from __future__ import annotations

import functools

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.book import Book, Slot
from opl.runtime.engine.hedging import HedgeSpec, rebalance
from opl.runtime.engine.ledger import Costs
from opl.runtime.engine.months import _base_marks
from opl.runtime.engine.runspec import StrategySpec
from opl.runtime.market.margin import futures_margin, options_margin

_FLOAT = np.dtype(np.float64)


def _margin_packs(pack, variants):
    """One pack per variant: ``pack`` itself, or a copy with its margin rates × ``margin_factor`` — each
    rate the pack sets: a futures underlying's futures rate (the option margin builds on it), an ETF's
    or a stock's option rates (`opl.runtime.engine.kernels.MarginRule.RATES`)."""
    packs = []
    for v in variants:
        if v.margin_factor == 1.0:
            packs.append(pack)
        else:
            # Only the rates the pack has: an ETF pack has no futures rate (None) to scale.
            scaled = {name: rate * v.margin_factor for name in kernels.MarginRule.RATES
                      if (rate := getattr(pack.margin, name)) is not None}
            packs.append(pack.model_copy(update={"margin": pack.margin.model_copy(update=scaled)}))
    return packs


def _zeroed(x: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``np.where(where, 0.0, x)``: into ``x`` itself when it is an array of its own of ``where``'s shape."""
    flags = x.flags
    if not (x.shape == where.shape and x.dtype == _FLOAT and flags.owndata and flags.writeable):
        return np.where(where, 0.0, x)
    np.copyto(x, 0.0, where=where)
    return x


def _filled(x, shape) -> np.ndarray:
    """``x * np.ones(shape)`` (x times 1.0 is x, bit for bit) without the ones."""
    out = np.empty(shape)
    out[...] = x
    return out


def _open_book(strat, mo, sizes, shape) -> Book:
    """The month's book at the open: a base slot per option leg, the strategy's futures."""
    book = Book(shape)
    for li, leg in enumerate(strat.legs):
        number = strat.leg_numbers[li] if strat.leg_numbers else li
        g = book.add_group(leg, file_index=number)
        slot = book.slots[book.add_slot(g, is_call=leg.is_call, american=leg.american, strike=mo.strikes[li], base=li,
                                        qty=_filled(leg.signed_qty * sizes, shape), extra_days=leg.extra_days)]
        _base_marks(slot, mo, 0)
        slot.entry = slot.value
    for number, lots in (strat.futures_legs or ((None, strat.futures),) if strat.futures else ()):
        book.futures.append(_filled(lots * sizes, shape))
        book.futures_index.append(number)
    return book


class _CostArrays:
    """Per-variant costs as (V, 1) columns, so they broadcast over paths (``fast``: the compiled engine's)."""

    fast = False

    def __init__(self, costs: list[Costs]):
        for name in Costs.__dataclass_fields__:
            setattr(self, name, np.array([getattr(c, name) for c in costs])[:, None])

    # A lot's fee per variant, (variants,), as the compiled kernels take it: made once, not at every step.
    @functools.cached_property
    def option_close_fee(self) -> np.ndarray:
        return (self.option_close + self.option_slippage)[:, 0]

    @functools.cached_property
    def futures_close_fee(self) -> np.ndarray:
        return (self.futures_close + self.futures_slippage)[:, 0]

    @functools.cached_property
    def futures_open_fee(self) -> np.ndarray:
        return (self.futures_open + self.futures_slippage)[:, 0]

    def open_options(self, lots, size=None):
        """The cost of opening ``lots`` (|lots| times the fee and the slippage; ``size``: |lots| if at hand), a new
        array."""
        fee = np.where(lots < 0, self.option_open_short, self.option_open_long)  # (the result's array: its own)
        fee += self.option_slippage
        fee *= np.abs(lots) if size is None else size
        return fee

    def close_options(self, lots):
        return np.abs(lots) * (self.option_close + self.option_slippage)

    def futures(self, lots, *, closing: bool):
        return np.abs(lots) * ((self.futures_close if closing else self.futures_open) + self.futures_slippage)


def _close_all(book: Book, hedge, mask, cost, ledger, equity, month_pnl, bucket: str = "costs") -> None:
    """Close options, the strategy's futures and the hedge where ``mask`` (in place)."""
    if getattr(cost, "fast", False):
        _close_all_compiled(book, hedge, mask, cost, ledger, equity, month_pnl, bucket)
        return
    for s in book.slots:
        closing = np.where(mask, s.qty, 0.0)
        ledger.book(bucket, -cost.close_options(closing), equity, month_pnl)
        ledger.count("option_lots", mask, np.abs(closing))
        s.qty = np.where(mask, 0.0, s.qty)
    for fut in (*book.futures, hedge):
        closing = np.where(mask, fut, 0.0)
        ledger.book(bucket, -cost.futures(closing, closing=True), equity, month_pnl)
        ledger.count("futures_lots", mask, np.abs(closing))
        fut[mask] = 0.0


def _close_all_compiled(book: Book, hedge, mask, cost, ledger, equity, month_pnl, bucket: str) -> None:
    """`_close_all` by `opl.runtime.engine.kernels.close_book`: the same bookings, one pass for every position."""
    held = book.held()
    left = kernels.close_book([s._qty for s in held], [*book.futures, hedge], mask,
                              cost.option_close_fee, cost.futures_close_fee, bucket=ledger.buckets[bucket],
                              equity=equity, month_pnl=month_pnl, option_lots=ledger.counters["option_lots"],
                              futures_lots=ledger.counters["futures_lots"])
    for s, qty in zip(held, left):
        s.qty = qty  # (often closed everywhere, at expiry: numpy's whole scan is then the faster answer)


def _lots_set(s: Slot, qty) -> None:
    """``s.qty = qty`` after a compiled exercise or the open, `Slot.held` found by `kernels.adjust._any_lots`: the
    lots are held near the start of the array, where it stops (numpy's ``any`` reads every element: ~49 against ~2 us
    at 5 x 30,000; on lots of zeros it is the slower, ~97 against ~56 us)."""
    if type(qty) is np.ndarray and qty.ndim == 2 and qty.dtype == _FLOAT and qty.flags.c_contiguous \
            and qty.flags.writeable and kernels.available():  # (the round's kernels' type: no compile of its own)
        s._qty, s._held = qty, bool(kernels.adjust._any_lots(qty))
    else:
        s.qty = qty


def _close_pending(pending, mask, cost, ledger, equity):
    closing = np.where(mask, pending, 0.0)
    if np.any(closing):
        ledger.cost(cost.futures(closing, closing=True), equity)
        ledger.count("futures_lots", mask, np.abs(closing))
    return np.where(mask, 0.0, pending)


def _hedge(strat, book: Book, hedge, d, is_open, lots_per_option, cost, ledger, equity, month_pnl, tr,
           keep: float | None = None, bucket: str = "costs"):
    """The hedge rule at a rebalancing step (``keep`` set: trade to that target now, whatever the band)."""
    other = book.option_delta(lots_per_option) + book.static
    size = book.short_lots()
    spec = strat.hedge if keep is None else HedgeSpec(every=1, band=0.0, keep=keep,
                                                      along=strat.hedge.along if strat.hedge else "direction")
    new = rebalance(spec=spec, other_delta=other, hedge=hedge, size=size, d=d, active=is_open)
    trade = new - hedge
    traded = trade != 0
    if np.any(traded):
        ledger.book(bucket, -cost.futures(trade, closing=False), equity, month_pnl)
        ledger.count("futures_lots", traded, np.abs(trade))
        ledger.count("hedge_trades", traded)
    if tr is not None and keep is None:
        tr["hedged"].append(is_open.copy())
        tr["net_delta"].append(other + new)
        tr["target"].append(spec.keep * d * size)
    return new


def _hedge_compiled(strat, book: Book, hedge, d, is_open, lots_per_option, cost, ledger, equity, month_pnl, tr,
                    anywhere: bool | None = None):
    """`_hedge` at a rebalancing step in one compiled pass (`opl.runtime.engine.kernels.hedge_step`), the same numbers.
    ``anywhere``: whether a position is open anywhere, when known (False: nothing trades; None: asked of
    ``is_open``)."""
    # The month's own hedge is rebalanced in place (a new array a step cost its allocation and page faults), as the
    # exits and the rounds close it in place; a view or a shared array gets a new one.
    flags = hedge.flags
    own = hedge.shape == book.shape and hedge.dtype == np.float64 and flags.c_contiguous and flags.writeable \
        and flags.owndata
    if anywhere is False:  # `kernels.hedge_step` with nothing active: the hedge kept, the same array or a copy
        return hedge if own else np.array(hedge, dtype=float)
    held = book.held()
    return kernels.hedge_step(qtys=[s._qty for s in held], deltas=[s.delta for s in held], static=_static(book),
                              hedge=hedge, d=d, active=is_open, keep=strat.hedge.keep, band=strat.hedge.band,
                              lots_per_option=lots_per_option, fee=cost.futures_open_fee,
                              costs=ledger.buckets["costs"], equity=equity, month_pnl=month_pnl,
                              lots_traded=ledger.counters["futures_lots"], trades=ledger.counters["hedge_trades"],
                              in_place=own, anywhere=anywhere)


def _exit_rules(strat: StrategySpec) -> tuple | None:
    """The exit triggers as the compiled step tests them (`step._Pass._exits_compiled`): the (comparison, bound) pairs
    of the pnl_percent triggers and of the days_left ones; None where a trigger is of another kind or a score
    decides (the stages' path then)."""
    if strat.score is not None or strat.exit_mode not in ("first_hit", "all_required"):
        return None
    rules: dict[str, list] = {"pnl_percent": [], "days_left": []}
    for test in strat.exit_triggers:
        rule = getattr(test, "rule", None)  # set on a trigger's compiled test (opl.runtime.engine.triggers)
        if rule is None or rule.measure not in rules:
            return None
        rules[rule.measure].append((rule.op, rule.bound))
    return tuple(rules["pnl_percent"]), tuple(rules["days_left"])


def _static(book: Book):
    """The strategy's own futures lots for a compiled step, or 0.0 when it holds none (the kernels broadcast
    it: no array of zeros made at each call, as `Book.static` makes one)."""
    return book.static if book.futures else 0.0


def _holdings(book: Book) -> list[tuple]:
    """(is_call, strike, premium, signed lots, expiry) of every slot holding lots: the margin's view of the book."""
    return [(s.is_call, s.strike, s.value, s._qty, s.extra_days) for s in book.slots if s._held]


class _Margins:
    """The chunk's margin calculator: `_margin`'s reference formulas, or the compiled kernel
    (`opl.runtime.engine.kernels.book_margin`, the same numbers) on the fast engine."""

    def __init__(self, packs, fast: bool):
        self.packs = packs
        self.rule = kernels.MarginRule.of(packs) if fast else None

    def __call__(self, book: Book, hedge, other_futures, price, legs=None, futures_lots=None, cols=None):
        if self.rule is None:
            return _margin(self.packs, book, hedge, other_futures, price, legs, futures_lots, cols)
        if futures_lots is None:
            futures_lots = kernels.futures_lots(book.static, hedge, other_futures)
        holdings = _holdings(book) if legs is None else legs
        return kernels.book_margin(self.rule, holdings, futures_lots, price, book.shape, cols)


def _margin(packs, book: Book, hedge, other_futures, price, legs=None, futures_lots=None, cols=None) -> np.ndarray:
    """Exchange margin of everything held, (V, P); variants sharing a pack are computed together.

    Options are margined by `opl.runtime.market.margin.options_margin`: the pack's combinations
    (a short strangle as one position) unless the run margins leg by leg. ``legs`` and
    ``futures_lots`` replace the book's options (``_holdings`` tuples) and futures lots (an
    adjustment's proposal, `opl.runtime.engine.adjust`); ``cols`` computes only those paths, (V, len(cols)).
    """
    if futures_lots is None:
        futures_lots = np.abs(book.static) + np.abs(hedge) + np.abs(other_futures)
    legs = list(_holdings(book) if legs is None else legs)
    if cols is not None:
        futures_lots, price = np.broadcast_to(futures_lots, book.shape)[:, cols], np.asarray(price)[cols]
        legs = [(is_call, np.asarray(strike)[..., cols], np.asarray(premium)[..., cols],
                 np.broadcast_to(qty, book.shape)[:, cols], expiry) for is_call, strike, premium, qty, expiry in legs]
    out = np.zeros(futures_lots.shape)
    groups: dict[int, list[int]] = {}
    for v, pack in enumerate(packs):
        groups.setdefault(id(pack), []).append(v)

    def rows_of(x, sel):
        return x[sel] if np.ndim(x) == 2 else x

    for rows in groups.values():
        pack = packs[rows[0]]
        sel = slice(rows[0], rows[-1] + 1) if rows == list(range(rows[0], rows[-1] + 1)) else rows
        if pack.underlying.kind == "future":
            total = futures_margin(pack=pack, price=price, lots=futures_lots[sel])
        else:
            # Units of an ETF or a stock held after an exercise are paid for in full.
            total = price * pack.underlying.contract_size * futures_lots[sel]
        held = [(is_call, rows_of(strike, sel), rows_of(premium, sel), qty[sel], expiry)
                for is_call, strike, premium, qty, expiry in legs if np.any(qty[sel])]
        if held:
            total = total + options_margin(pack=pack, holdings=held, underlying=price)
        out[sel] = total
    return out
