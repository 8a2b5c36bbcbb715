"""The option cycles of a backtest: which options a month trades, over which sessions, marked how.

A *cycle* is the backtest's month: it opens on a session, sells (or buys) the strategy's
legs and runs to the options' expiry, one futures contract throughout.

**Expiry.** With a chain: among the expiries listed on the opening session for the
contract then held (``underlying_symbol``, when the chain and the futures name
contracts), the one whose calendar days to expiry are nearest the strategy's tenor.
Without a chain: the last session on or before the opening day + tenor (calendar days),
at whose settlement the options are taken to expire.

**End.** The cycle ends at the expiry session; if the contract rolls first (its last
session comes before the expiry) or the data end, the cycle is *cut* there and the replay
closes everything at that session's marks. The next cycle opens on the expiry session (as
a simulated month opens where the last one ended), or on the first session of the new
contract after a roll — never across one. If the chain's expiry falls between sessions,
the cycle ends at the last session before it (closed at market) and the next opens there.

Futures an exercise at expiry creates are closed at the next step, as the simulator
closes them — the next cycle's first step; when the series rolled in between, that step
moves with the new contract (a continuous series holds no later price of the old one).

**Strikes.** Each leg's strike spec is resolved at the opening settlement F₀ as the
simulator resolves it (`opl.runtime.legspec.StrikeRule`), with the support and resistance
of the latest ``signals.csv`` view issued on or before the opening day (the file's level
widths around F₀ without one), then moved to the nearest strike the chain lists that day
for that expiry and type (the rule pack's grid without a chain).

**Marks.** `opl.runtime.historical.mark_cycle`: the chain's settlement where it has one,
else the surface (`opl.backtest.surface`). When the file has an adjustment module, each
cycle also quotes the series it may trade (`CycleQuotes`: the chain's settlements of the
cycle's expiry, the surface otherwise and for later expiries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from opl.runtime.historical import HistoricalMonth, mark_cycle

__all__ = ["Cycle", "plan_cycles", "ChainIndex", "CycleQuotes", "mark_cycles", "DIRECTION_SIGN"]

DIRECTION_SIGN = {"up": 1.0, "down": -1.0, "flat": 0.0}


@dataclass(frozen=True)
class Cycle:
    """Sessions ``start`` … ``end`` (rows of the futures frame, inclusive) of one contract."""

    index: int
    start: int
    end: int
    contract: str
    expiry: pd.Timestamp
    expires: bool
    ends: Literal["expiry", "roll", "data"]


class ChainIndex:
    """The option chain grouped for the cycles' questions (listed expiries, strikes, settlements)."""

    def __init__(self, options: pd.DataFrame, futures: pd.DataFrame):
        self.options = options
        has_underlying = "underlying_symbol" in options.columns and "symbol" in futures.columns
        self.by_underlying = has_underlying
        under = options["underlying_symbol"].astype(str) if has_underlying else pd.Series("", index=options.index)
        self.frame = options.assign(_under=under.to_numpy())
        self.listed: dict[tuple[pd.Timestamp, str], list[pd.Timestamp]] = {}
        for (day, u), expiries in self.frame.groupby(["trading_date", "_under"])["expiry"]:
            self.listed[(pd.Timestamp(day), u)] = sorted(pd.Timestamp(e) for e in set(expiries))
        self._series = {key: group for key, group in self.frame.groupby(["expiry", "_under"])}

    def expiries(self, day: pd.Timestamp, contract: str) -> list[pd.Timestamp]:
        return self.listed.get((day, contract if self.by_underlying else ""), [])

    def series(self, expiry: pd.Timestamp, contract: str) -> pd.DataFrame:
        return self._series.get((expiry, contract if self.by_underlying else ""), self.frame.iloc[:0])

    def forwards(self, futures: pd.DataFrame) -> np.ndarray:
        """Each chain row's underlying settlement (NaN where the futures series does not hold it)."""
        key = ["trading_date", "symbol"] if self.by_underlying else ["trading_date"]
        fut = futures[key + ["settlement"]].drop_duplicates(key)
        left = self.frame[["trading_date"] + (["_under"] if self.by_underlying else [])]
        left = left.rename(columns={"_under": "symbol"})
        merged = left.merge(fut, how="left", on=key)
        return merged["settlement"].to_numpy(dtype=float)


def plan_cycles(futures: pd.DataFrame, chain: ChainIndex | None, *, tenor_days: float) -> tuple[list[Cycle], int]:
    """The cycles of the module docstring, and the number of sessions no cycle could open on."""
    dates = pd.DatetimeIndex(futures["trading_date"])
    contract = futures["contract"].to_numpy()
    last = len(dates) - 1
    # The last session of each row's contract.
    contract_end = np.empty(len(dates), dtype=np.int64)
    end = last
    for i in range(last, -1, -1):
        if i < last and contract[i] != contract[i + 1]:
            end = i
        contract_end[i] = end
    cycles: list[Cycle] = []
    skipped = 0
    i = 0
    while i < last:
        day, c = dates[i], str(contract[i])
        if chain is not None:
            listed = [e for e in chain.expiries(day, c) if (e - day).days >= 1]
            if not listed:
                skipped += 1
                i += 1
                continue
            expiry = min(listed, key=lambda e: (abs((e - day).days - tenor_days), e))
        else:
            expiry = day + pd.Timedelta(days=float(tenor_days))
        horizon = int(np.searchsorted(dates.values, expiry.to_datetime64(), side="right")) - 1
        stop = min(horizon, int(contract_end[i]))
        if stop <= i:
            skipped += 1
            i += 1
            continue
        if stop < horizon:  # the contract rolls before the options expire
            ends, expires, nxt = "roll", False, stop + 1
        elif horizon == last and dates[last] < expiry:  # the data end first
            ends, expires, nxt = "data", False, last
        elif chain is None or dates[stop] == expiry:
            # Without a chain the options expire at the last session on or before open + tenor.
            expiry = dates[stop]
            ends, expires, nxt = "expiry", True, stop
        else:  # the chain's expiry falls between sessions: closed at the last session before it
            ends, expires, nxt = "expiry", False, stop
        cycles.append(Cycle(index=len(cycles), start=i, end=stop, contract=c, expiry=pd.Timestamp(expiry),
                            expires=expires, ends=ends))
        i = nxt
    return cycles, skipped


class CycleQuotes:
    """Other series of one cycle (`opl.runtime.historical.Quotes`): the chain's settlements at the
    cycle's expiry, the surface for everything (and for later expiries)."""

    def __init__(self, days: pd.DatetimeIndex, price: np.ndarray, expiry: pd.Timestamp, series, surfaces):
        self.days, self.price, self.expiry, self.surfaces = days, price, expiry, surfaces
        self.table: dict[tuple[pd.Timestamp, str], tuple[np.ndarray, np.ndarray]] = {}
        if series is not None and len(series):
            for (day, kind), rows in series.groupby(["trading_date", "option_type"]):
                rows = rows.sort_values("strike_price")
                self.table[(pd.Timestamp(day), kind)] = (rows["strike_price"].to_numpy(dtype=float),
                                                         rows["settlement"].to_numpy(dtype=float))

    def settlement(self, j: int, is_call: bool, strikes: np.ndarray, extra_days: float) -> np.ndarray:
        strikes = np.asarray(strikes, dtype=float)
        out = np.full(strikes.shape, np.nan)
        listed = self.table.get((self.days[j], "C" if is_call else "P"))
        if extra_days != 0 or listed is None:
            return out
        ks, settle = listed
        at = np.clip(np.searchsorted(ks, strikes), 0, len(ks) - 1)
        for i in (at, np.maximum(at - 1, 0)):
            hit = np.isclose(ks[i], strikes, rtol=1e-12, atol=1e-9) & np.isnan(out)
            out = np.where(hit, settle[i], out)
        return out

    def iv(self, j: int, strikes: np.ndarray, extra_days: float) -> np.ndarray:
        expiry = self.expiry + pd.Timedelta(days=float(extra_days))
        return self.surfaces.iv(date=self.days[j], expiry=expiry, strike=np.asarray(strikes, dtype=float),
                                forward=float(self.price[j]))


def _levels(signals: pd.DataFrame | None, day: pd.Timestamp, price: float, levels) -> tuple[float, float, float, bool]:
    """Support, resistance, direction sign on ``day`` and whether a view gave them."""
    if signals is not None and len(signals):
        known = signals[pd.DatetimeIndex(signals["date"]) <= day]
        if len(known):
            row = known.iloc[-1]
            return float(row["support"]), float(row["resistance"]), DIRECTION_SIGN[row["direction"]], True
    support, resistance = levels.of(np.array([price]))
    return float(support[0]), float(resistance[0]), 0.0, False


def _snap(listed: np.ndarray, raw: float, pack) -> float:
    if listed.size:
        return float(listed[np.argmin(np.abs(listed - raw))])
    lowest = pack.option.strike_grid[0].step
    return float(max(float(pack.snap_strike(max(raw, lowest))), lowest))


def mark_cycles(cycles: list[Cycle], *, futures: pd.DataFrame, chain: ChainIndex | None, signals: pd.DataFrame | None,
                strategy, surfaces, pack, carry: float) -> tuple[list[HistoricalMonth], list[dict]]:
    """Mark every cycle (module docstring); returns the months and one record per cycle for the report."""
    dates = pd.DatetimeIndex(futures["trading_date"])
    settle = futures["settlement"].to_numpy(dtype=float)
    months, records = [], []
    for cycle in cycles:
        rows = np.arange(cycle.start, cycle.end + 1)
        days = dates[rows]
        price = settle[rows]
        t = np.maximum((cycle.expiry - days).days.to_numpy(dtype=float), 0.0) / 365.0
        support, resistance, sign, viewed = _levels(signals, days[0], price[0], strategy.levels)
        series = chain.series(cycle.expiry, cycle.contract) if chain is not None else None
        # One surface query per session for the at-the-money level and every leg (resolved at the open).
        atm = np.array([float(surfaces.iv(date=days[0], expiry=cycle.expiry, strike=np.array([price[0]]),
                                          forward=price[0])[0])])
        strikes, quotes, from_chain = [], [], 0
        for leg in strategy.legs:
            kind = "C" if leg.is_call else "P"
            typed = series[series["option_type"] == kind] if series is not None else None
            listed = np.array([]) if typed is None else np.unique(
                typed.loc[typed["trading_date"] == days[0], "strike_price"].to_numpy(dtype=float))
            raw = leg.strike.resolve(is_call=leg.is_call, price=price[:1], support=np.array([support]),
                                     resistance=np.array([resistance]), iv=atm[:1], t=float(t[0]),
                                     rate=strategy.rate)
            k = _snap(listed, float(raw[0]), pack)
            quote = np.full(len(rows), np.nan)
            if typed is not None and len(typed):
                same = typed[np.isclose(typed["strike_price"].to_numpy(dtype=float), k)]
                by_day = same.drop_duplicates("trading_date").set_index("trading_date")["settlement"]
                quote = by_day.reindex(days).to_numpy(dtype=float)
            from_chain += int(np.isfinite(quote).sum())
            strikes.append(k)
            quotes.append(quote)
        # The surface is needed where a settlement is missing or does not invert, so at every session.
        grid = np.array([[surfaces.iv(date=d, expiry=cycle.expiry, strike=np.array([f] + strikes), forward=f)]
                         for d, f in zip(days, price)]).reshape(len(rows), len(strikes) + 1)
        atm = grid[:, 0]
        surface_iv = [grid[:, 1 + i] for i in range(len(strikes))]
        # Only the adjustment module trades series beyond the file's legs.
        other = CycleQuotes(days, price, cycle.expiry, series, surfaces) if strategy.adjust is not None else None
        months.append(mark_cycle(legs=strategy.legs, price=price, t=t, strikes=strikes, quotes=quotes,
                                 surface=surface_iv, atm=atm, support=support, resistance=resistance, signal=sign,
                                 rate=strategy.rate, carry=carry, expires=cycle.expires, gamma=strategy.greeks,
                                 other=other, pack=pack, levels=strategy.levels))
        records.append({"cycle": cycle.index, "open": days[0], "close": days[-1], "dates": days,
                        "contract": cycle.contract, "expiry": cycle.expiry, "ends": cycle.ends,
                        "sessions": len(rows) - 1, "open_price": float(price[0]), "strikes": strikes,
                        "support": support, "resistance": resistance, "direction": sign, "view": viewed,
                        "marks_from_chain": from_chain, "marks": len(rows) * len(strategy.legs)})
    return months, records
