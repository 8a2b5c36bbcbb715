"""Trading costs and the per-path ledger of a replay.

**Costs.** Fees come from the rule pack (`opl.runtime.market.rules.FeeSchedule.rate`, per lot,
broker commission included): opening a short option uses ``open_short`` when the pack has
one, closing ``close``, an exercised long option ``exercise`` and an assigned short one
``assignment``; futures trades ``open``/``close``. Slippage is a whole number of ticks per
lot traded — the option tick for options, the futures tick for futures — times the
contract multiplier, paid on every trade (opens, closes, hedges, forced liquidations).
The stress scenarios ``fees_up(xk)`` and ``slippage(xk)`` multiply them.

**Ledger.** Every currency amount of a replay lands in one bucket (arrays over variants ×
paths), so the attribution adds up to the P&L exactly:

``premium``     the strategy's legs marked to market: the premium received less what the
                options are worth (or cost to buy back) later — up to their intrinsic
                value when they are exercised; static futures legs too
``hedge``       the hedge futures marked to market
``assignment``  the futures a short option was assigned into (and a long option exercised
                into), marked from the exercise on, the holder's forfeited time value,
                the sale of delivered goods at futures + basis, and storage
``funding``     the financing of delivered goods at the policy's funding rate
``costs``       fees and slippage (negative)
``adjustments`` fees and slippage of the adjustment module's trades (negative;
                `opl.runtime.engine.adjust` — the adjusted legs' marks go to ``premium``)
``interest``    interest at the cash rate on the cash the strategy's trades added to or
                took from the capital (`opl.runtime.engine.replay`, "Money")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opl.runtime.engine.book import flat_paths, put_paths

__all__ = ["Costs", "Ledger", "BUCKETS", "resident_zeros", "tick_size"]

BUCKETS = ("premium", "hedge", "assignment", "funding", "costs", "adjustments", "interest")


def tick_size(bands, price: float) -> float:
    """The tick of a rule pack's band ladder at ``price``."""
    for band in bands:
        if band.upto is None or price <= band.upto:
            return band.step
    return bands[-1].step  # pragma: no cover - the last band has no upper bound


@dataclass(frozen=True, kw_only=True)
class Costs:
    """Per-lot trading costs in currency (fees and slippage already multiplied out)."""

    option_open_short: float
    option_open_long: float
    option_close: float
    option_exercise: float
    option_assignment: float
    futures_open: float
    futures_close: float
    option_slippage: float
    futures_slippage: float

    @classmethod
    def from_pack(cls, pack, *, price: float, premium: float, option_ticks: float = 1.0,
                  futures_ticks: float = 1.0, fee_factor: float = 1.0, slippage_factor: float = 1.0) -> "Costs":
        """Costs of a rule pack; ticks are looked up at the futures ``price`` and the option ``premium``."""
        option = pack.fees.option
        futures = pack.fees.futures or pack.fees.underlying or option
        if option.basis != "per_lot":
            raise ValueError(f"{pack.name}: the simulator needs per-lot option fees (fees.option.basis = \"per_lot\")")
        mult = pack.option.multiplier
        size = pack.underlying.contract_size
        # An ETF's or a stock's fees are a share of the notional: one lot costs rate × price × lot size.
        notional = price * size if futures.basis == "per_notional" else 1.0
        option_tick = tick_size(pack.option.tick, premium)
        futures_tick = tick_size(pack.underlying.tick, price)
        return cls(option_open_short=fee_factor * option.rate("open", short=True),
                   option_open_long=fee_factor * option.rate("open"),
                   option_close=fee_factor * option.rate("close"),
                   option_exercise=fee_factor * option.rate("exercise"),
                   option_assignment=fee_factor * option.rate("assignment"),
                   futures_open=fee_factor * futures.rate("open") * notional,
                   futures_close=fee_factor * futures.rate("close") * notional,
                   option_slippage=slippage_factor * option_ticks * option_tick * mult,
                   futures_slippage=slippage_factor * futures_ticks * futures_tick * size)

    def option_open(self, lots: np.ndarray) -> np.ndarray:
        """Cost of opening signed option lots (shorts pay ``open_short``)."""
        fee = np.where(lots < 0, self.option_open_short, self.option_open_long)
        return np.abs(lots) * (fee + self.option_slippage)

    def option_close(self, lots: np.ndarray) -> np.ndarray:
        return np.abs(lots) * (self.option_close + self.option_slippage)

    def futures_trade(self, lots: np.ndarray, *, closing: bool) -> np.ndarray:
        fee = self.futures_close if closing else self.futures_open
        return np.abs(lots) * (fee + self.futures_slippage)


def resident_zeros(shape, dtype=np.float64) -> np.ndarray:
    """Zeros written into memory of this process's own, not `numpy.zeros`' lazily zeroed pages.

    A kernel's loop that stores into an array only where a condition holds (a counter, a peak) compiles to
    masked vector stores; on this project's AMD EPYC a masked store into a page not yet written — `numpy.zeros`
    of a large array maps none, `calloc` leaves it to the first write — takes a microcode assist even where
    the mask is all false. The step's margin requirement counts its margin calls so into the ledger's
    counter, which a run rarely writes: ~4 ms a step for 14 × 10,000 elements against ~1.2 ms into written
    pages (the same call on the same arrays, the counter alone copied), the hold-out's sweep of the jujube
    candidate at 10,000 paths in one process 3.35 → 2.09 s. (Here rather than beside the kernels: the
    ledger's module is imported by numpy-only code, the metrics and the data import, which must not load
    numba.)"""
    out = np.empty(shape, dtype=dtype)
    out.fill(0)
    return out


class Ledger:
    """Buckets of P&L and counters over variants × paths, with monthly returns.

    Parameters
    ----------
    shape
        (variants, paths).
    months
        Horizon in months.
    extra
        Further counters (the adjustment module's, one pair per playbook action).
    """

    COUNTERS = ("margin_calls", "liquidations", "assigned_months", "delivered_months", "option_lots",
                "futures_lots", "hedge_trades", "skipped_months", "exits", "early_exits", "avoided_legs", "alerts")

    def __init__(self, shape: tuple[int, int], months: int, extra: tuple[str, ...] = ()):
        self.buckets = {name: np.zeros(shape) for name in BUCKETS}
        # (Counters are written under a mask, as a step's margin calls: `resident_zeros`.)
        self.counters = {name: resident_zeros(shape, np.int64) for name in self.COUNTERS + tuple(extra)}
        self.monthly = np.zeros((*shape, months))

    def columns(self, cols: np.ndarray) -> "Ledger":
        """The buckets and counters of the paths ``cols`` (copies; `put_columns` writes them back). Amounts
        booked there add to the same running sums as here, so the totals are the same to the last bit.
        Each is copied when first used: an adjustment round books into a few of them."""
        sub = Ledger.__new__(Ledger)
        sub.buckets, sub.counters = _Gathered(self.buckets, cols), _Gathered(self.counters, cols)
        sub.monthly = None
        return sub

    def put_columns(self, sub: "Ledger", cols: np.ndarray) -> None:
        flat = None
        for mine, theirs in ((self.buckets, sub.buckets), (self.counters, sub.counters)):
            for name, x in theirs.items():  # only those used there
                if flat is None:
                    flat = flat_paths(mine[name].shape, cols)
                put_paths(mine[name], cols, flat, x)

    def book(self, bucket: str, amount: np.ndarray, equity: np.ndarray, *extra: np.ndarray) -> None:
        """Add ``amount`` to a bucket and to the equity (and to any running P&L in ``extra``)."""
        self.buckets[bucket] += amount
        equity += amount
        for running in extra:
            running += amount

    def cost(self, amount: np.ndarray, equity: np.ndarray, *extra: np.ndarray) -> None:
        """Pay a (non-negative) cost."""
        self.book("costs", -amount, equity, *extra)

    def pay(self, amount: np.ndarray, equity: np.ndarray, *extra: np.ndarray) -> None:
        """`cost` of an ``amount`` the caller no longer needs: negated in place, no new array."""
        self.book("costs", np.negative(amount, out=amount), equity, *extra)

    def count(self, name: str, mask: np.ndarray, amount: np.ndarray | int = 1) -> None:
        """Add 1 (or ``amount``, rounded to whole numbers) to the counter ``name`` where ``mask``."""
        if not np.any(mask):  # most of a step's counts are of nothing (alerts, calls): no whole-array add
            return
        if type(amount) is int and amount == 1 or np.ndim(amount) == 0 and amount == 1:
            self.counters[name] += mask
        else:
            np.add(self.counters[name], np.rint(amount).astype(np.int64), out=self.counters[name], where=mask)


class _Gathered(dict):
    """A ledger's buckets or counters on the paths ``cols``, each copied from ``full`` when first read."""

    def __init__(self, full: dict[str, np.ndarray], cols: np.ndarray):
        super().__init__()
        self.full, self.cols = full, cols

    def __missing__(self, name: str) -> np.ndarray:
        # A KeyError for a name the ledger lacks, as a dict; take: C-ordered, as the round's kernels write them.
        x = self[name] = self.full[name].take(self.cols, axis=1)
        return x
