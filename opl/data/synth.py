"""A seeded, jujube-like market dataset whose truth is known (``opl data synth``).

Everything downstream — loaders, roll handling, the assumption tests, later
calibration and backtest — can run offline on it, and a test can check that
what it estimates matches what was planted. The generator, from one
``numpy.random.default_rng(seed)``:

*Price.* A common log level ``x`` follows GARCH(1,1) with Student-t shocks,
Poisson jumps, a weak pull towards the starting level (so six years stay in a
jujube-like 6,000–16,000 CNY/t band) and a monthly drift set by last month's
supply/demand factors. Each delivery month ``c`` (Jan, Mar, May, Jul, Sep,
Dec) trades at ``exp(x + b_c)``; the bases alternate in sign, so switching
the main contract creates a level jump of 12–30 % in the continuous series,
like the exchange's own (``../shared/data/README.md``). A daily move is capped
just inside the 10 % limit; prices are on the 5 CNY/t tick.

*Rolls.* The main contract is the one whose options expire next; it rolls on
the trading day after its options' expiry (3rd-to-last trading day on or
before the 15th of the month before delivery, the CZCE rule for 2401 on), so
every one to three months.

*Options.* Daily chains on the main contract: strikes on a 100 grid within
±15 % of the futures, calls and puts, multiplier 5; implied vol
``atm + skew(T)·m + curvature·m²`` in log-moneyness ``m``, the ATM level a
premium over the GARCH conditional vol; settlements from Black-76
(:func:`opl.runtime.pricing.black.price`) on the 1 CNY/t option tick. Strikes that
did not trade leave open/high/low/close empty, as the options contract allows.

*Signals.* One view a month (first trading day), direction right with the
planted probability ``hit_rate`` against the realised move over ``horizon``
trading days measured exactly as :mod:`opl.hypotheses.hit_rate` does, and
wrong (one of the other two classes at random) otherwise.

*Factors.* Three monthly AR(1) factors with unit variance; next month's
expected log return is ``Σ β_j f_j``, with one placebo (β = 0).

``truth.json`` beside the CSVs records every parameter, the roll dates and
jumps, and the realised hit count.

*Profiles.* ``profile="jujube"`` (the default) is all of the above. ``profile="etf50"``
is an SSE 50ETF-like market for the short-straddle example (``examples/etf50/``): one
instrument ``510050`` around 3 CNY on a 0.001 tick (no delivery months, no basis, no
rolls), European options expiring on the fourth Wednesday of every month (the next
trading day when that is closed) with the front month listed each day, strikes on a
0.05 grid, a 0.0001 option tick and a 10,000-unit multiplier, settlements from
Black–Scholes on the spot less the present value of the dividends to expiry with carry =
rate, and levels on the 0.05 grid. It pays ``dividend`` (0.06 CNY a unit) on a yearly
ex-date (the first session on or after ``ex_dividend``, 2 December): the price drops by it,
and the contracts alive across it are adjusted as the SSE does (:class:`_Dividend`; strike
×g, multiplier ÷g, one ``A`` code through the contract's life, new standard contracts at the
grid strikes), recorded in ``truth.json``.
Every other field of :class:`SynthParams` can still be overridden.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from opl.data.csvfiles import write_csv
from opl.data.rolls import classify_moves, detect_rolls, forward_moves, within_contract_returns

__all__ = ["SynthParams", "SynthDataset", "synthesize", "FILES"]

FILES = {"futures": "futures.csv", "options": "options.csv", "signals": "signals.csv", "factors": "factors.csv"}
PROFILES: dict[str, dict] = {
    "jujube": {},
    "etf50": {"symbol": "510050", "price0": 3.0, "tick": 0.001, "annual_vol": 0.20, "jumps_per_year": 2.0,
              "jump_sd": 0.025, "basis_low": 0.0, "basis_high": 0.0, "iv_premium": 1.08, "iv_skew": -0.10,
              "iv_curvature": 0.6, "iv_floor": 0.10, "strike_step": 0.05, "option_tick": 0.0001,
              "multiplier": 10_000.0, "level_tick": 0.05, "factor_betas": {"inventory": -0.01, "new_crop": 0.0,
                                                                            "weather": 0.0},
              "dividend": 0.06, "ex_dividend": "12-02"},
}
_DELIVERY_MONTHS = (1, 3, 5, 7, 9, 12)
_CHINESE = {"up": "涨", "down": "跌", "flat": "震荡"}


@dataclass(frozen=True)
class SynthParams:
    """Every generating parameter; all of them are written to ``truth.json``."""

    seed: int = 1
    years: int = 6
    profile: str = "jujube"
    start: str = "2019-01-02"
    symbol: str = "CJ"
    price0: float = 10_000.0
    tick: float = 5.0
    limit: float = 0.10
    annual_vol: float = 0.22
    garch_alpha: float = 0.07
    garch_beta: float = 0.90
    t_df: float = 6.0
    jumps_per_year: float = 4.0
    jump_mean: float = 0.0
    jump_sd: float = 0.035
    reversion_per_year: float = 1.0
    basis_low: float = 0.06
    basis_high: float = 0.15
    rate: float = 0.02
    iv_premium: float = 1.10
    iv_skew: float = 0.15
    iv_curvature: float = 0.8
    iv_floor: float = 0.08
    strike_step: float = 100.0
    strike_span: float = 0.15
    option_tick: float = 1.0
    multiplier: float = 5.0
    hit_rate: float = 0.85
    horizon: int = 21
    flat_band: float = 0.03
    factor_betas: dict = field(default_factory=lambda: {"inventory": -0.02, "new_crop": -0.01, "weather": 0.0})
    factor_rho: float = 0.5
    options: bool = True
    level_tick: float = 50.0
    #: Cash dividend per unit paid once a year (an ETF; 0: none) and its ex-date's month-day
    #: (the first session on or after it).
    dividend: float = 0.0
    ex_dividend: str = "12-02"


@dataclass
class SynthDataset:
    """The generated frames and their truth."""

    futures: pd.DataFrame
    options: pd.DataFrame | None
    signals: pd.DataFrame
    factors: pd.DataFrame
    truth: dict

    def write(self, out: str | os.PathLike) -> dict[str, Path]:
        """Write the CSVs and ``truth.json`` into ``out`` (created if needed); return the paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for kind, name in FILES.items():
            frame = getattr(self, kind)
            if frame is None:
                continue
            paths[kind] = write_csv(frame, out / name)
        paths["truth"] = out / "truth.json"
        paths["truth"].write_text(json.dumps(self.truth, indent=2, ensure_ascii=False, default=str) + "\n",
                                  encoding="utf-8")
        return paths

    def summary(self) -> str:
        t = self.truth
        lines = [f"synthetic {t['params']['profile']}-like data, seed {t['params']['seed']}, "
                 f"{t['params']['years']} years",
                 f"  futures: {len(self.futures)} days, {len(t['rolls'])} rolls",
                 f"  options: {0 if self.options is None else len(self.options)} rows",
                 f"  signals: {len(self.signals)} (true hit rate {t['hit_rate']['p_true']:.2f}, "
                 f"realised {t['hit_rate']['hits']}/{t['hit_rate']['n_resolved']})",
                 f"  factors: {len(self.factors)} months, betas {t['factors']['betas']}"]
        return "\n".join(lines)


def synthesize(*, seed: int = 1, years: int = 6, profile: str = "jujube", **overrides) -> SynthDataset:
    """Generate a dataset; ``profile`` picks the market (module docstring), ``overrides`` set any
    other :class:`SynthParams` field.

    >>> data = synthesize(seed=1, years=1, options=False)
    >>> data.futures.columns[:3].tolist(), data.truth["params"]["seed"]
    (['trading_date', 'symbol', 'open'], 1)
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (profiles: {', '.join(PROFILES)})")
    p = replace(SynthParams(), seed=seed, years=years, profile=profile, **{**PROFILES[profile], **overrides})
    if p.years < 1:
        raise ValueError("years must be >= 1")
    rng = np.random.default_rng(p.seed)
    calendar = _trading_days(pd.Timestamp(p.start), p.years + 2)
    days = calendar[calendar < pd.Timestamp(p.start) + pd.DateOffset(years=p.years)]
    contracts = _contracts(calendar, days[0], p)
    main = np.searchsorted(contracts["option_expiry"].to_numpy(), days.to_numpy(), side="left")
    months = days.to_period("M")
    factors, factor_values = _factors(rng, months.unique(), p)
    x, sd = _log_level(rng, days, months, factor_values, p)
    basis = _bases(rng, len(contracts), p)
    s_log = _settlement_level(rng, x, sd)
    dividends = _pay_dividends(days, x, s_log, p)
    futures = _futures_bars(rng, days, x, s_log, sd, main, contracts, basis, p)
    options = _option_chains(rng, days, s_log, sd, main, contracts, basis, p, dividends) if p.options else None
    signals, hit_truth = _signals(rng, futures, days, p)
    rolls = detect_rolls(futures, method="symbol")
    truth = {
        "params": asdict(p),
        "generator": {
            "numpy": np.__version__, "pandas": pd.__version__,
            "garch_omega": _garch_omega(p),
            "daily_move_cap": [float(np.log(1 - 0.95 * p.limit)), float(np.log(1 + 0.95 * p.limit))],
            "iv_formula": "max(iv_floor, iv_premium*garch_vol + iv_skew*sqrt(30/365/max(T,7/365))*m "
                          "+ iv_curvature*m^2), m = ln(K/F)",
            "roll_rule": "main contract = first whose options have not expired; rolls the next trading day",
            "calendar": "weekdays less Jan 1, May 1-3, Oct 1-7 and a Spring Festival stand-in week "
                        "(the first five weekdays from Jan 28 + 7 days)",
        },
        "rolls": [{"trading_date": str(pd.Timestamp(r.trading_date).date()), "from": r.from_symbol,
                   "to": r.to_symbol, "jump": round(float(r.jump), 6)} for r in rolls.table.itertuples()],
        "hit_rate": hit_truth,
        "dividends": [{"ex_date": str(d.day.date()), "dividend": p.dividend, "prev_close": d.prev_close,
                       "strike_factor": d.factor, "multiplier": d.multiplier, "expiry": None if d.expiry is None
                       else str(d.expiry.date()), "adjusted_strikes": list(d.strikes)} for d in dividends],
        "factors": {"betas": dict(p.factor_betas), "rho": p.factor_rho,
                    "relation": "E[log return of month m+1 | f_m] = sum_j beta_j * f_j(m), spread evenly "
                                "over the trading days of month m+1 (plus the weak reversion and the jump mean)"},
    }
    return SynthDataset(futures=futures, options=options, signals=signals, factors=factors, truth=truth)


def _trading_days(start: pd.Timestamp, years: int) -> pd.DatetimeIndex:
    end = start + pd.DateOffset(years=years) - pd.Timedelta(days=1)
    days = pd.bdate_range(start, end)
    closed = set()
    for year in range(start.year, end.year + 1):
        closed |= {dt.date(year, 1, 1), dt.date(year, 5, 1), dt.date(year, 5, 2), dt.date(year, 5, 3)}
        closed |= {dt.date(year, 10, d) for d in range(1, 8)}
        festival = pd.bdate_range(dt.date(year, 2, 4), periods=5)
        closed |= {d.date() for d in festival}
    keep = np.array([d.date() not in closed for d in days])
    return days[keep]


def _etf_contracts(calendar: pd.DatetimeIndex, first_day: pd.Timestamp, p: SynthParams) -> pd.DataFrame:
    """One instrument; monthly option expiries on the 4th Wednesday (the next session when closed)."""
    day_values = calendar.to_numpy()
    out = []
    for year in range(calendar[0].year, calendar[-1].year + 1):
        for month in range(1, 13):
            wednesdays = pd.date_range(pd.Timestamp(year, month, 1), periods=5, freq="W-WED")
            fourth = np.datetime64(wednesdays[3])
            after = day_values[day_values >= fourth]
            if len(after) == 0:
                continue
            out.append({"symbol": p.symbol, "year": year, "month": month, "option_expiry": pd.Timestamp(after[0])})
    frame = pd.DataFrame(out)
    return frame[frame["option_expiry"] >= first_day].reset_index(drop=True)


def _contracts(calendar: pd.DatetimeIndex, first_day: pd.Timestamp, p: SynthParams) -> pd.DataFrame:
    """Delivery months with their options' expiry on the synthetic calendar (which runs past the data)."""
    if p.profile == "etf50":
        return _etf_contracts(calendar, first_day, p)
    day_values = calendar.to_numpy()
    out = []
    for year in range(calendar[0].year, calendar[-1].year):
        for month in _DELIVERY_MONTHS:
            before = pd.Timestamp(year, month, 1) - pd.DateOffset(months=1)
            cutoff = np.datetime64(pd.Timestamp(before.year, before.month, 15))
            eligible = day_values[day_values <= cutoff]
            if len(eligible) < 3:
                continue
            out.append({"symbol": f"{p.symbol}{year % 10}{month:02d}", "year": year, "month": month,
                        "option_expiry": pd.Timestamp(eligible[-3])})
    frame = pd.DataFrame(out)
    return frame[frame["option_expiry"] >= first_day].reset_index(drop=True)


def _garch_omega(p: SynthParams) -> float:
    return (p.annual_vol ** 2 / 252.0) * (1.0 - p.garch_alpha - p.garch_beta)


def _factors(rng, months: pd.PeriodIndex, p: SynthParams):
    names = list(p.factor_betas)
    n = len(months)
    values = np.empty((n, len(names)))
    values[0] = rng.standard_normal(len(names))
    scale = np.sqrt(1.0 - p.factor_rho ** 2)
    for m in range(1, n):
        values[m] = p.factor_rho * values[m - 1] + scale * rng.standard_normal(len(names))
    frame = pd.DataFrame(np.round(values, 4), columns=names)
    frame.insert(0, "month", months.astype(str))
    return frame, pd.DataFrame(np.round(values, 4), index=months, columns=names)


def _log_level(rng, days, months, factor_values: pd.DataFrame, p: SynthParams):
    n = len(days)
    betas = np.array([p.factor_betas[c] for c in factor_values.columns])
    # Month m's drift comes from month m-1's factors; the first month has none.
    monthly = np.concatenate([[0.0], factor_values.to_numpy()[:-1] @ betas])
    month_pos = factor_values.index.get_indexer(months)
    per_day = pd.Series(1, index=days).groupby(month_pos).transform("size").to_numpy()
    drift = monthly[month_pos] / per_day
    z = rng.standard_t(p.t_df, n) / np.sqrt(p.t_df / (p.t_df - 2.0))
    jump = (rng.random(n) < p.jumps_per_year / 252.0) * rng.normal(p.jump_mean, p.jump_sd, n)
    omega, a, b = _garch_omega(p), p.garch_alpha, p.garch_beta
    cap_lo, cap_hi = np.log(1 - 0.95 * p.limit), np.log(1 + 0.95 * p.limit)
    x = np.empty(n)
    var = np.empty(n)
    h, eps_prev, level = p.annual_vol ** 2 / 252.0, 0.0, np.log(p.price0)
    anchor, kappa = np.log(p.price0), p.reversion_per_year / 252.0
    for t in range(n):
        h = omega + a * eps_prev ** 2 + b * h if t else h
        eps = np.sqrt(h) * z[t]
        r = drift[t] - kappa * (level - anchor) + eps + jump[t]
        r = min(max(r, cap_lo), cap_hi)
        level += r if t else 0.0
        x[t], var[t], eps_prev = level, h, eps
    return x, np.sqrt(var)


def _bases(rng, n: int, p: SynthParams) -> np.ndarray:
    if p.basis_high == 0:  # one instrument (an ETF): no contracts, no basis
        return np.zeros(n)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * (1.0 if rng.random() < 0.5 else -1.0)
    return sign * rng.uniform(p.basis_low, p.basis_high, n)


def _round_tick(values, tick: float, how: str = "round") -> np.ndarray:
    fn = {"round": np.round, "floor": np.floor, "ceil": np.ceil}[how]
    return fn(np.asarray(values) / tick) * tick


def _settlement_level(rng, x: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Log settlement before the contract basis: a day's VWAP, about halfway along its move.

    The close is the path itself; the settlement averages the day, as the
    exchange's does, so that settlement-to-settlement changes carry the
    averaging autocorrelation real ones have and close-to-close ones do not.
    """
    move = np.diff(x, prepend=x[0])
    return x - 0.5 * move + rng.normal(0.0, sd / np.sqrt(12.0))


@dataclass
class _Dividend:
    """One ex-dividend date: the SSE's adjustment of the option contracts alive across it.

    The reference price is the previous close less the dividend; each such contract's strike
    becomes K·factor (to 0.001) and its multiplier M/factor (to a unit), factor = reference /
    previous close (SSE: 2.40 × 10,000 → 2.348 × 10,220). ``expiry`` and ``strikes`` (the
    original strikes adjusted) are filled in with the chains.
    """

    row: int
    day: pd.Timestamp
    prev_close: float
    factor: float
    multiplier: float
    expiry: pd.Timestamp | None = None
    strikes: tuple[float, ...] = ()


def _pay_dividends(days: pd.DatetimeIndex, x: np.ndarray, s_log: np.ndarray, p: SynthParams) -> list[_Dividend]:
    """Drop the price by the dividend on each yearly ex-date (``p.ex_dividend``), in place."""
    if p.dividend <= 0:
        return []
    month, day = (int(v) for v in p.ex_dividend.split("-"))
    out = []
    for year in range(days[0].year, days[-1].year + 1):
        row = int(np.searchsorted(days.to_numpy(), np.datetime64(pd.Timestamp(year, month, day))))
        if not 0 < row < len(days):
            continue
        prev_close = float(_round_tick(np.exp(x[row - 1]), p.tick))
        factor = (prev_close - p.dividend) / prev_close
        x[row:] += np.log(factor)
        s_log[row:] += np.log(factor)
        out.append(_Dividend(row, days[row], prev_close, factor, float(np.rint(p.multiplier / factor))))
    return out


def _futures_bars(rng, days, x, s_log, sd, main, contracts, basis, p: SynthParams) -> pd.DataFrame:
    n = len(days)
    tick = p.tick
    b = basis[main]
    prev_s = np.concatenate([[s_log[0]], s_log[:-1]])
    prev = _round_tick(np.exp(prev_s + b), tick)
    up = _round_tick(prev * (1 + p.limit), tick, "floor")
    down = _round_tick(prev * (1 - p.limit), tick, "ceil")
    # Clipping only binds on limit days; there the exchange's prices are clipped too.
    settle = np.clip(_round_tick(np.exp(s_log + b), tick), down, up)
    close = np.clip(_round_tick(np.exp(x + b), tick), down, up)
    prev_x = np.concatenate([[x[0]], x[:-1]])
    open_ = np.clip(_round_tick(np.exp(prev_x + b + rng.normal(0, 0.3 * sd)), tick), down, up)
    top = np.maximum.reduce([open_, close, settle]) * np.exp(np.abs(rng.normal(0, 0.4 * sd)))
    bottom = np.minimum.reduce([open_, close, settle]) * np.exp(-np.abs(rng.normal(0, 0.4 * sd)))
    high = np.minimum(up, _round_tick(top, tick, "ceil"))
    low = np.maximum(down, _round_tick(bottom, tick, "floor"))
    volume = np.round(rng.lognormal(np.log(120_000), 0.4, n) * (1 + 8 * np.abs(np.diff(x, prepend=x[0]))))
    oi = np.round(150_000 * np.exp(np.cumsum(rng.normal(0, 0.03, n)) * 0.3))
    return pd.DataFrame({
        "trading_date": days, "symbol": contracts["symbol"].to_numpy()[main],
        "open": open_, "high": high, "low": low, "close": close, "settlement": settle,
        "prev_settlement": prev, "volume": volume.astype(np.int64), "open_interest": oi.astype(np.int64),
        "total_turnover": (volume * settle * p.multiplier).astype(np.int64),
    })


def _adjusted_rows(t_idx, strike, expiry, days, dividends: list[_Dividend], p: SynthParams):
    """Rows of the contracts an ex-date adjusts: (session, strike, multiplier, strike in the code, adjusted).

    The contracts of the expiry listed before the ex-date keep trading from it on at the
    adjusted strike and multiplier, beside the new standard contracts the grid lists; each
    keeps one code through its life, the SSE's adjusted code (``A`` for ``M``) with its
    original strike.
    """
    mult = np.full(len(t_idx), p.multiplier)
    code_strike, adjusted = strike.copy(), np.zeros(len(t_idx), dtype=bool)
    extra_t, extra_k, extra_m, extra_code = [], [], [], []
    for d in dividends:
        live = expiry[d.row - 1]
        if live < days[d.row].to_datetime64():
            continue  # no contract lives across this ex-date
        before = (expiry[t_idx] == live) & (t_idx < d.row)
        old = np.unique(np.round(strike[before], 9))
        d.expiry, d.strikes = pd.Timestamp(live), tuple(float(k) for k in old)
        adjusted |= before  # the same contracts, under their adjusted code from their listing on
        for t in np.flatnonzero(expiry == live):
            if t < d.row:
                continue
            extra_t.append(np.full(len(old), t))
            extra_k.append(np.round(old * d.factor, 3))
            extra_m.append(np.full(len(old), d.multiplier))
            extra_code.append(old)
    if not extra_t:
        return t_idx, strike, mult, code_strike, adjusted
    n = sum(len(a) for a in extra_t)
    return (np.concatenate([t_idx, *extra_t]), np.concatenate([strike, *extra_k]), np.concatenate([mult, *extra_m]),
            np.concatenate([code_strike, *extra_code]), np.concatenate([adjusted, np.ones(n, dtype=bool)]))


def _dividend_pv(day_values, expiry_values, dividends: list[_Dividend], days, p: SynthParams) -> np.ndarray:
    """The present value of the dividends going ex after each row's session, up to its expiry."""
    pv = np.zeros(len(day_values))
    for d in dividends:
        ex = days[d.row].to_datetime64()
        ahead = (day_values < ex) & (ex <= expiry_values)
        years = (ex - day_values[ahead]) / np.timedelta64(365, "D")
        pv[ahead] += p.dividend * np.exp(-p.rate * years)
    return pv


def _option_chains(rng, days, s_log, sd, main, contracts, basis, p: SynthParams,
                   dividends: list[_Dividend] = ()) -> pd.DataFrame:
    from opl.runtime.pricing.black import price as black_price

    expiry = contracts["option_expiry"].to_numpy()[main]
    # Options settle against the futures settlement.
    fut = _round_tick(np.exp(s_log + basis[main]), p.tick)
    prev_fut = _round_tick(np.exp(np.concatenate([[s_log[0]], s_log[:-1]]) + basis[main]), p.tick)
    vol = np.clip(p.iv_premium * sd * np.sqrt(252.0), 0.12, 0.80)
    prev_vol = np.concatenate([[vol[0]], vol[:-1]])
    t_idx, strike = _listed_strikes(fut, p)
    t_idx, strike, mult, code_strike, adjusted = _adjusted_rows(t_idx, strike, expiry, days, list(dividends), p)
    t_idx, strike, mult = np.repeat(t_idx, 2), np.repeat(strike, 2), np.repeat(mult, 2)
    code_strike, adjusted = np.repeat(code_strike, 2), np.repeat(adjusted, 2)
    is_call = np.tile([True, False], len(t_idx) // 2)
    day_values = days.to_numpy()[t_idx]
    tau = (expiry[t_idx] - day_values) / np.timedelta64(365, "D")
    prev_day = days.to_numpy()[np.maximum(t_idx - 1, 0)]
    prev_tau = (expiry[t_idx] - prev_day) / np.timedelta64(365, "D")
    # European options on an ETF see the spot less the dividends paid before they expire.
    pv = _dividend_pv(day_values, expiry[t_idx], list(dividends), days, p)
    prev_pv = _dividend_pv(prev_day, expiry[t_idx], list(dividends), days, p)

    # Options on an ETF are priced on the spot (less the dividends to expiry) with carry = rate; on a future, 0.
    carry = p.rate if p.profile == "etf50" else 0.0

    def settle_price(f, v, t_years):
        m = np.log(strike / f)
        skew = p.iv_skew * np.sqrt((30 / 365) / np.maximum(t_years, 7 / 365))
        iv = np.maximum(p.iv_floor, v + skew * m + p.iv_curvature * m * m)
        value = black_price(is_call=is_call, underlying=f, strike=strike, t=t_years, vol=iv, rate=p.rate,
                            carry=carry)
        return np.maximum(p.option_tick, _round_tick(value, p.option_tick)), iv

    settle, _ = settle_price(fut[t_idx] - pv, vol[t_idx], tau)
    prev, _ = settle_price(prev_fut[t_idx] - prev_pv, prev_vol[t_idx], prev_tau)
    m = np.log(strike / fut[t_idx])
    volume = rng.poisson(600 * np.exp(-(m / 0.06) ** 2))
    traded = volume > 0
    open_, high, low, close = _option_bars(rng, settle, prev, p)
    blank = np.where(traded, 1.0, np.nan)
    under = contracts["symbol"].to_numpy()[main][t_idx]
    kind = np.where(is_call, "C", "P")
    symbol = _option_symbols(under, kind, strike, code_strike, adjusted, expiry[t_idx], p)
    return pd.DataFrame({
        "trading_date": days[t_idx], "symbol": symbol,
        "open": open_ * blank, "high": high * blank, "low": low * blank, "close": close * blank,
        "settlement": settle, "prev_settlement": prev, "volume": volume,
        "open_interest": rng.poisson(2_000 * np.exp(-(m / 0.08) ** 2)),
        "total_turnover": np.round(volume * settle * mult).astype(np.int64),
        "strike_price": strike, "option_type": kind, "expiry": pd.DatetimeIndex(expiry[t_idx]),
        "contract_multiplier": mult, "underlying_symbol": under,
    }).sort_values(["trading_date", "strike_price", "contract_multiplier"], kind="stable").reset_index(drop=True)


def _listed_strikes(fut: np.ndarray, p: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """(day index, strike) of every strike listed each day: the grid's steps within ``strike_span`` of the
    day's futures settlement."""
    day_idx, strikes = [], []
    for t in range(len(fut)):
        lo = np.ceil(fut[t] * (1 - p.strike_span) / p.strike_step) * p.strike_step
        hi = np.floor(fut[t] * (1 + p.strike_span) / p.strike_step) * p.strike_step
        k = np.arange(lo, hi + p.strike_step / 2, p.strike_step)
        day_idx.append(np.full(len(k), t))
        strikes.append(k)
    return np.concatenate(day_idx), np.concatenate(strikes)


def _option_bars(rng, settle: np.ndarray, prev: np.ndarray, p: SynthParams) -> tuple:
    """(open, high, low, close) of each option row around its settlement and the previous one, on the tick
    (the draws in this order: close, open, high, low)."""
    tick, n = p.option_tick, len(settle)
    close = np.maximum(tick, _round_tick(settle * np.exp(rng.normal(0, 0.03, n)), tick))
    open_ = np.maximum(tick, _round_tick(prev * np.exp(rng.normal(0, 0.05, n)), tick))
    high = _round_tick(np.maximum.reduce([open_, close, settle]) * (1 + np.abs(rng.normal(0, 0.03, n))), tick, "ceil")
    low = np.maximum(tick, _round_tick(np.minimum.reduce([open_, close, settle]) * (1 - np.abs(rng.normal(0, 0.03, n))),
                                       tick, "floor"))
    return open_, high, low, close


def _option_symbols(under, kind, strike, code_strike, adjusted, expiry, p: SynthParams) -> np.ndarray:
    """Each row's contract code: CZCE-like (CJ605C10800) or, for the ETF profile, SSE-like (underlying, C/P,
    expiry year-month, M — A once adjusted —, strike in thousandths: 510050C2401M03000; an adjusted contract
    keeps its original strike in the code)."""
    if p.profile != "etf50":
        return np.char.add(np.char.add(under.astype(str), kind), strike.astype(np.int64).astype(str))
    month_code = pd.DatetimeIndex(expiry).strftime("%y%m").to_numpy().astype(str)
    thousandths = np.char.zfill(np.rint(code_strike * 1000).astype(np.int64).astype(str), 5)
    letter = np.where(adjusted, "A", "M")
    return np.char.add(np.char.add(np.char.add(np.char.add(under.astype(str), kind), month_code), letter),
                       thousandths)


def _signals(rng, futures: pd.DataFrame, days, p: SynthParams):
    firsts = pd.Series(days).groupby(days.to_period("M")).first().to_numpy()
    returns = within_contract_returns(futures, price="close", method="symbol")
    moves = forward_moves(returns, firsts, horizon=p.horizon)
    realised = classify_moves(moves["move"].to_numpy(), flat_band=p.flat_band)
    classes = np.array(["up", "down", "flat"])
    right = rng.random(len(firsts)) < p.hit_rate
    other = np.array([rng.choice(classes[classes != r]) for r in realised])
    direction = np.where(right, realised, other)
    entry = futures.set_index("trading_date")["close"].reindex(pd.DatetimeIndex(firsts)).to_numpy()
    support = _round_tick(entry * (1 - rng.uniform(0.04, 0.10, len(firsts))), p.level_tick, "floor")
    resistance = _round_tick(entry * (1 + rng.uniform(0.04, 0.10, len(firsts))), p.level_tick, "ceil")
    complete = moves["complete"].to_numpy()
    frame = pd.DataFrame({"date": pd.DatetimeIndex(firsts), "support": support, "resistance": resistance,
                          "direction": [_CHINESE[d] for d in direction], "source": "spot_team"})
    hits = int((right & complete).sum())
    truth = {"p_true": p.hit_rate, "horizon": p.horizon, "flat_band": p.flat_band, "price": "close",
             "n_signals": len(firsts), "n_resolved": int(complete.sum()), "hits": hits,
             "empirical": hits / max(int(complete.sum()), 1),
             "definition": "hit when the view equals the class of the within-contract log move of the close "
                           "over `horizon` trading days after the first session on or after the view's date; "
                           "flat when |move| <= flat_band"}
    return frame, truth
