"""The option cycles of a backtest: which options a cycle trades, over which sessions, marked how.

A *cycle* is one trade of the strategy: it opens on a session, sells (or buys) the
strategy's legs and runs to the options' expiry, one futures contract throughout — it
lasts its options' life, and those options are the tenor's the file writes.

**Expiry and open.** With a chain: among the expiries listed on a session for the
contract then held (``underlying_symbol``, when the chain and the futures name
contracts), the one whose calendar days to expiry are nearest the strategy's tenor.
When later sessions of the same contract bring that expiry nearer the tenor (a chain
that lists only the main contract's next expiry, one to three months out), the account
stays flat until the session nearest the tenor, and the cycle opens there: a file that
sells 30-day options sells 30-day options, not 60- or 90-day ones (the sessions waited
are counted in the notes). Without a chain: the last session on or before the opening
day + tenor (calendar days), at whose settlement the options are taken to expire.

**End.** The cycle ends at the expiry session; if the contract rolls first (its last
session comes before the expiry) or the data end, the cycle is *cut* there and the replay
closes everything at that session's marks. The next cycle may open on the expiry session
(as a simulated month opens where the last one ended), or on the first session of the new
contract after a roll — never across one. If the chain's expiry falls between sessions,
the cycle ends at the last session before it (closed at market) and the next may open there.

Futures an exercise at expiry creates are closed at the next step, as the simulator
closes them — the next cycle's first step; when the series rolled in between, that step
moves with the new contract (a continuous series holds no later price of the old one).

**Levels.** Support and resistance come from the latest ``signals.csv`` view issued on or
before the opening day (the file's level widths around F₀ without one). A view is a price
of the contract held on its issue date; when the cycle trades a later contract, the
levels are *re-anchored* to it by the ratio of the two contracts' prices on the same day
at each roll in between (`level_factors`: the new contract's ``prev_settlement`` on its
first session over the old contract's last settlement — a same-day pair; without
``prev_settlement``, the two settlements a session apart, noted as approximate). A view
issued before the data's first session cannot be placed on a contract: its cycle is
skipped, with a note.

**Strikes.** Each leg's strike spec is resolved at the opening settlement F₀ as the
simulator resolves it (`opl.runtime.engine.legspec.StrikeRule`) with those levels, then moved to
the nearest strike the chain lists that day for that expiry and type (the rule pack's grid
without a chain). Moving to listed strikes must not change what is sold: two legs with
different strike specs must not land on one strike or swap order, and a short put must
stay below a short call (unless both legs share one spec, a straddle). A cycle whose
listed strikes cannot keep that is skipped, with a note naming the strikes — never
traded as a different position.

**Marks.** `opl.runtime.engine.historical.mark_cycle`: the chain's settlement where it has one,
else the surface (`opl.backtesting.surface`). When the file has an adjustment module, each
cycle also quotes the series it may trade (`CycleQuotes`: the chain's settlements of the
cycle's expiry, the surface otherwise and for later expiries).

**Options on spot (an ETF).** European options on spot are priced, inverted and hedged
with the cost of carry their chain implies by put–call parity at the cycle's open for its
expiry (`ChainIndex.parity_carries`: b = ln(F/S)/T, F the parity forward), not the rate
alone: the spot price knows nothing of the dividends to expiry. A leg follows the contract
it opened on by its code through its life: after an ex-dividend adjustment (SSE: 2.40 ×
10,000 → 2.348 × 10,220) it is marked on that contract, on its original terms and the
underlying scaled by the multipliers' ratio (`_quotes`); adjusted contracts are never
opened. A chain without contract codes gets them from `opl data import` (or a raw
``--data`` folder), which infers the adjusted contracts and links each across its ex-date
(`opl.data.adjustments`); a canonical file whose codes name the strike instead is followed
by the strike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from opl.runtime.engine.historical import HistoricalMonth, mark_cycle

__all__ = ["Cycle", "Plan", "plan_cycles", "open_cycle", "ChainIndex", "CycleQuotes", "mark_cycles", "Marked",
           "level_factors", "strike_problem", "DIRECTION_SIGN"]

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
    ends: Literal["expiry", "roll", "data", "reopen"]


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

    def parity_carries(self, futures: pd.DataFrame, rate: float) -> dict[tuple[pd.Timestamp, pd.Timestamp], float]:
        """The cost of carry b = ln(F/S)/T of each (date, expiry), F its put–call parity forward, S the spot.

        For options on spot (an ETF) the spot price is not the forward: F = S·e^{(r−q)T} carries
        the dividends to expiry, which the chain's prices know and the spot does not. Marking with
        carry b prices and hedges on the chain's own forward (exact for European options).
        """
        from opl.data.parity import row_forwards

        spot = self.forwards(futures)
        forward = row_forwards(self.frame, rate)
        t = (self.frame["expiry"] - self.frame["trading_date"]).dt.days.to_numpy() / 365.0
        ok = np.isfinite(spot) & np.isfinite(forward) & (spot > 0) & (forward > 0) & (t > 0)
        frame = pd.DataFrame({"trading_date": self.frame["trading_date"].to_numpy()[ok],
                              "expiry": self.frame["expiry"].to_numpy()[ok],
                              "carry": np.log(forward[ok] / spot[ok]) / t[ok]})
        first = frame.drop_duplicates(["trading_date", "expiry"])
        return {(pd.Timestamp(d), pd.Timestamp(e)): float(c)
                for d, e, c in zip(first["trading_date"], first["expiry"], first["carry"])}


@dataclass(frozen=True)
class Plan:
    """The planned cycles; sessions no cycle could open on; sessions waited flat for the tenor's expiry."""

    cycles: list[Cycle]
    skipped: int
    waited: int


def _nearest_tenor_session(dates: pd.DatetimeIndex, i: int, last: int, expiry: pd.Timestamp, tenor_days: float,
                           listed) -> int:
    """The first session from ``i`` (up to ``last``, while ``expiry`` stays listed) whose calendar days to
    ``expiry`` are nearest ``tenor_days``."""
    def gap(j: int) -> float:
        return abs((expiry - dates[j]).days - tenor_days)

    j = i
    while j < last and expiry in listed(dates[j + 1]) and gap(j + 1) < gap(j):
        j += 1
    return j


def _contract_ends(contract: np.ndarray) -> np.ndarray:
    """The last session of each row's contract."""
    last = len(contract) - 1
    out = np.empty(len(contract), dtype=np.int64)
    end = last
    for i in range(last, -1, -1):
        if i < last and contract[i] != contract[i + 1]:
            end = i
        out[i] = end
    return out


def _tenor_expiry(chain: ChainIndex | None, day: pd.Timestamp, contract: str, tenor_days: float) -> pd.Timestamp | None:
    """The listed expiry (at least a day ahead) nearest the tenor, or open + tenor without a chain."""
    if chain is None:
        return day + pd.Timedelta(days=float(tenor_days))
    listed = [e for e in chain.expiries(day, contract) if (e - day).days >= 1]
    return min(listed, key=lambda e: (abs((e - day).days - tenor_days), e)) if listed else None


def _cycle_at(dates: pd.DatetimeIndex, contract_end: np.ndarray, chain: ChainIndex | None, i: int, contract: str,
              expiry: pd.Timestamp, index: int) -> tuple[Cycle | None, int]:
    """The cycle opening on session ``i`` for ``expiry`` (None when it would not last a session), and the
    session the next may open on."""
    last = len(dates) - 1
    horizon = int(np.searchsorted(dates.values, expiry.to_datetime64(), side="right")) - 1
    stop = min(horizon, int(contract_end[i]))
    if stop <= i:
        return None, i + 1
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
    return Cycle(index=index, start=i, end=stop, contract=contract, expiry=pd.Timestamp(expiry), expires=expires,
                 ends=ends), nxt


def open_cycle(futures: pd.DataFrame, chain: ChainIndex | None, start: int, *, tenor_days: float,
               index: int = 0) -> Cycle | None:
    """A cycle opening on session ``start`` at once (no waiting), on the expiry nearest the tenor listed there;
    None when none fits (`opl.backtesting.reopen`)."""
    dates = pd.DatetimeIndex(futures["trading_date"])
    contract = futures["contract"].to_numpy()
    if start >= len(dates) - 1:
        return None
    expiry = _tenor_expiry(chain, dates[start], str(contract[start]), tenor_days)
    if expiry is None:
        return None
    return _cycle_at(dates, _contract_ends(contract), chain, start, str(contract[start]), expiry, index)[0]


def plan_cycles(futures: pd.DataFrame, chain: ChainIndex | None, *, tenor_days: float) -> Plan:
    """The cycles of the module docstring."""
    dates = pd.DatetimeIndex(futures["trading_date"])
    contract = futures["contract"].to_numpy()
    last = len(dates) - 1
    contract_end = _contract_ends(contract)
    cycles: list[Cycle] = []
    skipped = waited = 0
    i = 0
    while i < last:
        c = str(contract[i])
        expiry = _tenor_expiry(chain, dates[i], c, tenor_days)
        if expiry is None:
            skipped += 1
            i += 1
            continue
        if chain is not None:
            start = _nearest_tenor_session(dates, i, int(contract_end[i]), expiry, tenor_days,
                                           lambda d, c=c: chain.expiries(d, c))
            waited += start - i
            i = start
        cycle, nxt = _cycle_at(dates, contract_end, chain, i, c, expiry, len(cycles))
        if cycle is None:
            skipped += 1
        else:
            cycles.append(cycle)
        i = nxt
    return Plan(cycles=cycles, skipped=skipped, waited=waited)


class CycleQuotes:
    """Other series of one cycle (`opl.runtime.engine.historical.Quotes`): the chain's settlements at the
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


def level_factors(futures: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Per session, the factor that carries a price level between contracts (module docstring, **Levels**).

    A level quoted on session ``a``'s contract is ``level · f[b] / f[a]`` on session ``b``'s. Returns the
    factors and the number of rolls re-anchored approximately (no usable ``prev_settlement``).
    """
    settle = futures["settlement"].to_numpy(dtype=float)
    contract = futures["contract"].to_numpy()
    prev = (futures["prev_settlement"].to_numpy(dtype=float) if "prev_settlement" in futures.columns
            else np.full(len(settle), np.nan))
    rolls = np.flatnonzero(contract[1:] != contract[:-1]) + 1
    # The new contract's previous settlement is its price on the old contract's last day — unless the
    # file carries the old contract's there (it equals that day's settlement) or nothing.
    same_day = np.isfinite(prev[rolls]) & (prev[rolls] > 0) & (prev[rolls] != settle[rolls - 1])
    ratio = np.ones(len(settle))
    ratio[rolls] = np.where(same_day, prev[rolls], settle[rolls]) / settle[rolls - 1]
    return np.cumprod(ratio), int((~same_day).sum())


@dataclass(frozen=True)
class View:
    """The levels a cycle opens with, on the contract it trades."""

    support: float
    resistance: float
    sign: float
    viewed: bool
    issued: pd.Timestamp | None = None
    factor: float = 1.0


def _view(signals: pd.DataFrame | None, dates: pd.DatetimeIndex, factors: np.ndarray, start: int, price: float,
          levels) -> View | str:
    """The latest view on or before session ``start``, re-anchored to its contract; a reason when it cannot be."""
    day = dates[start]
    if signals is not None and len(signals):
        issued = pd.DatetimeIndex(signals["date"])
        known = np.flatnonzero(issued <= day)
        if known.size:
            row = signals.iloc[known[-1]]
            on = int(np.searchsorted(dates.values, issued[known[-1]].to_datetime64(), side="right")) - 1
            if on < 0:
                return (f"the view of {issued[known[-1]].date()} precedes the data, so the contract its levels "
                        "are quoted on is unknown")
            factor = float(factors[start] / factors[on])
            return View(support=float(row["support"]) * factor, resistance=float(row["resistance"]) * factor,
                        sign=DIRECTION_SIGN[row["direction"]], viewed=True, issued=issued[known[-1]], factor=factor)
    support, resistance = levels.of(np.array([price]))
    return View(support=float(support[0]), resistance=float(resistance[0]), sign=0.0, viewed=False)


def _snap(listed: np.ndarray, raw: float, pack) -> float:
    if listed.size:
        return float(listed[np.argmin(np.abs(listed - raw))])
    lowest = pack.option.strike_grid[0].step
    return float(max(float(pack.snap_strike(max(raw, lowest))), lowest))


def strike_problem(legs, raw: list[float], strikes: list[float]) -> str | None:
    """Why the listed ``strikes`` would trade another position than the resolved ``raw`` ones (module
    docstring, **Strikes**), or None."""
    for a in range(len(legs)):
        for b in range(a + 1, len(legs)):
            if legs[a].strike == legs[b].strike:
                continue
            order = np.sign(raw[b] - raw[a])
            if order and np.sign(strikes[b] - strikes[a]) != order:
                return (f"legs {a + 1} and {b + 1} resolve to {raw[a]:g} and {raw[b]:g}, but the nearest listed "
                        f"strikes are {strikes[a]:g} and {strikes[b]:g}")
            put, call = (a, b) if legs[b].is_call else (b, a)
            if (legs[a].is_call != legs[b].is_call and legs[a].side < 0 and legs[b].side < 0
                    and strikes[put] >= strikes[call]):
                return (f"the short put ({strikes[put]:g}) would not be below the short call ({strikes[call]:g}): "
                        "both in the money")
    return None


@dataclass
class Marked:
    """The marked cycles (renumbered from 0), one record each for the report, and the cycles skipped."""

    cycles: list[Cycle]
    months: list[HistoricalMonth]
    records: list[dict]
    skipped: list[str]
    approximate_rolls: int = 0
    reanchored: int = 0


def _strikes(strategy, series, day: pd.Timestamp, price: float, view: View, iv: float, t: float,
             pack) -> tuple[list[float], list[float]]:
    """The resolved and the listed strike of every leg at the open."""
    raw, strikes = [], []
    for leg in strategy.legs:
        kind = "C" if leg.is_call else "P"
        typed = series[series["option_type"] == kind] if series is not None else None
        if typed is not None and "contract_multiplier" in typed.columns:
            # A dividend-adjusted contract (non-standard multiplier) is held through its life, never opened.
            typed = typed[np.isclose(typed["contract_multiplier"].to_numpy(dtype=float), pack.option.multiplier)]
        listed = np.array([]) if typed is None else np.unique(
            typed.loc[typed["trading_date"] == day, "strike_price"].to_numpy(dtype=float))
        k = leg.strike.resolve(is_call=leg.is_call, price=np.array([price]), support=np.array([view.support]),
                               resistance=np.array([view.resistance]), iv=np.array([iv]), t=t,
                               rate=strategy.rate)
        raw.append(float(k[0]))
        strikes.append(_snap(listed, float(k[0]), pack))
    return raw, strikes


def _quotes(series, strikes: list[float], strategy, days: pd.DatetimeIndex,
            multiplier: float | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Each leg's settlement per session and the cycle's adjustment factor per session.

    With contract codes (``symbol`` and ``contract_multiplier`` in the chain), a leg follows
    the contract it opened on (at the pack's ``multiplier``) through its life, even after an
    ex-dividend adjustment changes its strike and multiplier (SSE: 2.40 → 2.348 and 10,000 →
    10,220) and a new standard contract is listed at the old strike. From then on the factor
    is the multiplier's ratio M'/M, the quote is scaled by it and so is the cycle's underlying
    price (:func:`mark_cycles`): the contract is worth M'·C(S, K') = M·C(S·M'/M, K), as option
    prices are homogeneous in spot and strike and K' = K·M/M', so the leg keeps its strike K
    and multiplier M on the scaled price. Without codes a leg is the series at its strike.
    """
    out, factor = [], np.ones(len(days))
    coded = series is not None and {"symbol", "contract_multiplier"} <= set(series.columns)
    for leg, k in zip(strategy.legs, strikes):
        quote = np.full(len(days), np.nan)
        typed = series[series["option_type"] == ("C" if leg.is_call else "P")] if series is not None else None
        if typed is not None and len(typed):
            same = typed[np.isclose(typed["strike_price"].to_numpy(dtype=float), k)]
            opening = same[same["trading_date"] == days[0]] if coded else same.iloc[:0]
            if coded and multiplier is not None:
                opening = opening[np.isclose(opening["contract_multiplier"].to_numpy(dtype=float), multiplier)]
            if len(opening):
                rows = typed[typed["symbol"] == opening["symbol"].iat[0]].drop_duplicates("trading_date")
                by_day = rows.set_index("trading_date").reindex(days)
                ratio = (by_day["contract_multiplier"].ffill().to_numpy(dtype=float)
                         / float(opening["contract_multiplier"].iat[0]))
                quote = by_day["settlement"].to_numpy(dtype=float) * ratio
                factor = np.where(factor == 1.0, ratio, factor)
            else:
                by_day = same.drop_duplicates("trading_date").set_index("trading_date")["settlement"]
                quote = by_day.reindex(days).to_numpy(dtype=float)
        out.append(quote)
    return out, factor


def mark_cycles(cycles: list[Cycle], *, futures: pd.DataFrame, chain: ChainIndex | None, signals: pd.DataFrame | None,
                strategy, surfaces, pack, carry: float,
                carries: dict[tuple[pd.Timestamp, pd.Timestamp], float] | None = None, progress=None) -> Marked:
    """Mark every cycle (module docstring); cycles whose levels or strikes cannot be placed are skipped.

    ``carries`` (options on spot: :meth:`ChainIndex.parity_carries`) gives a cycle the cost of
    carry its chain implied at the open for its expiry, known then (no look-ahead); else ``carry``.
    ``progress(done, total)`` before each cycle.
    """
    dates = pd.DatetimeIndex(futures["trading_date"])
    settle = futures["settlement"].to_numpy(dtype=float)
    factors, approximate = level_factors(futures)
    out = Marked(cycles=[], months=[], records=[], skipped=[], approximate_rolls=approximate)
    for done, cycle in enumerate(cycles):
        if progress is not None:
            progress(done, len(cycles))
        rows = np.arange(cycle.start, cycle.end + 1)
        days = dates[rows]
        price = settle[rows]
        t = np.maximum((cycle.expiry - days).days.to_numpy(dtype=float), 0.0) / 365.0
        where = f"the cycle opening {days[0].date()} on {cycle.contract}"
        view = _view(signals, dates, factors, cycle.start, price[0], strategy.levels)
        if isinstance(view, str):
            out.skipped.append(f"{where} is skipped: {view}")
            continue
        series = chain.series(cycle.expiry, cycle.contract) if chain is not None else None
        cycle_carry = (carries or {}).get((days[0], cycle.expiry), carry)
        atm = float(surfaces.iv(date=days[0], expiry=cycle.expiry, strike=np.array([price[0]]),
                                forward=price[0])[0])
        raw, strikes = _strikes(strategy, series, days[0], price[0], view, atm, float(t[0]), pack)
        problem = strike_problem(strategy.legs, raw, strikes)
        if problem:
            out.skipped.append(f"{where} is skipped: {problem}")
            continue
        quotes, factor = _quotes(series, strikes, strategy, days, pack.option.multiplier)
        price = price * factor  # an adjusted contract's underlying, in the units of its original terms (_quotes)
        from_chain = sum(int(np.isfinite(q).sum()) for q in quotes)
        # The surface is needed where a settlement is missing or does not invert, so at every session.
        grid = np.array([[surfaces.iv(date=d, expiry=cycle.expiry, strike=np.array([f] + strikes), forward=f)]
                         for d, f in zip(days, price)]).reshape(len(rows), len(strikes) + 1)
        surface_iv = [grid[:, 1 + i] for i in range(len(strikes))]
        # Only the adjustment module trades series beyond the file's legs.
        other = CycleQuotes(days, price, cycle.expiry, series, surfaces) if strategy.adjust is not None else None
        out.months.append(mark_cycle(legs=strategy.legs, price=price, t=t, strikes=strikes, quotes=quotes,
                                     surface=surface_iv, atm=grid[:, 0], support=view.support,
                                     resistance=view.resistance, signal=view.sign, rate=strategy.rate,
                                     carry=cycle_carry,
                                     expires=cycle.expires, gamma=strategy.greeks, other=other, pack=pack,
                                     levels=strategy.levels))
        kept = replace(cycle, index=len(out.cycles))
        out.reanchored += view.factor != 1.0
        out.cycles.append(kept)
        out.records.append({"cycle": kept.index, "open": days[0], "close": days[-1], "dates": days,
                            "contract": cycle.contract, "expiry": cycle.expiry, "ends": cycle.ends,
                            "sessions": len(rows) - 1, "open_price": float(price[0]), "strikes": strikes,
                            "support": view.support, "resistance": view.resistance, "direction": view.sign,
                            "view": view.viewed, "view_date": view.issued, "level_factor": view.factor,
                            "carry": cycle_carry, "adjustment": float(factor[-1]), "marks_from_chain": from_chain, "marks": len(rows) * len(strategy.legs)})
    return out
