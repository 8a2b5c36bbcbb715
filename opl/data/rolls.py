"""Contract rolls in a continuous futures series, and returns that never cross one.

A continuous (main-contract) series switches from one delivery month to the
next; the exchange's jujube series is not adjusted, so roll days jump by up to
±30 % (``../shared/data/README.md``). A return computed across a roll measures
the spread between two contracts, not a price move, and would wreck every
volatility and random-walk estimate. The rule here: **the return of a roll day
is NaN and excluded**, and the number excluded is reported. Everything built on
:class:`ContractReturns` (multi-day moves, the spliced log price) inherits it.

Roll rule
---------
``symbol``
    When the frame has a ``symbol`` column, a roll is a row whose symbol
    differs from the previous row's. Exact.
``jump``
    Otherwise a day is a roll when its log change of the roll price
    (settlement if present, else close) is extreme on both counts:

    * robustly: ``|r - median(r)| > mad_k × 1.4826 × MAD(r)`` (the MAD is not
      inflated by the jumps it is looking for), and
    * when the daily limit is known: beyond what the limit allows inside one
      contract, ``r > log(1 + limit)`` or ``r < log(1 - limit)`` (plus one tick of
      rounding) — the settlement of a contract cannot move more than the limit
      from its previous settlement.

    A roll smaller than this threshold cannot be told from a market move; the
    result reports the largest move left unflagged so the margin can be judged.
    Supply a ``symbol`` column to make detection exact.
``evidence`` (the default without ``symbol`` when the frame has ``open_interest``)
    The jump rule, **or** a main-contract switch seen in the activity: the exchange
    makes the contract with the larger open interest (and volume) the main one, so a
    switch lifts the series's open interest in one day to a level it keeps. A day is
    such a switch when the log change of its open interest ``d`` is

    * at least ``oi_k × 1.4826 × MAD`` of the daily changes and at least ``log(1 + oi_min)``
      (default 8 robust sd and +30 %), and
    * persistent: the median log open interest of the day and the next nine sessions
      exceeds that of the five sessions before by at least ``d / 2`` (a spike of a few
      days that reverts is not a switch; the new main contract keeps its lead for months).

    A fall in open interest is never a switch (the exchange's change to single-sided
    counting halved it on 2020-01-02). Activity candidates within ``merge_days``
    sessions of a roll already found are the same switch, not another. Each roll's
    evidence is listed (``price``, ``open interest``, and ``volume`` when the volume
    jumped too, beyond ``volume_k = 3`` robust sd of its daily log changes), with the
    sizes, by :meth:`Rolls.summary` and ``opl data rolls``. A volume jump alone flags
    nothing: news days trade heavily without any switch, and excluding a real move would
    hide exactly the tail risk a volatility fit must see; a day with a volume jump but an
    open-interest rise below the threshold is left to the price rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Rolls", "ContractReturns", "detect_rolls", "within_contract_returns", "forward_moves",
           "classify_moves", "require_moves"]

MAD_TO_SIGMA = 1.4826
#: The share of within-contract returns that must be non-zero for a volatility to be estimated or a
#: random walk tested: below it the fits are singular (arch's ADF, GARCH) or meaningless.
MIN_MOVING_SHARE = 0.10


@dataclass
class Rolls:
    """Roll days of a continuous series.

    Attributes
    ----------
    mask : numpy.ndarray
        ``True`` on each roll day (the first day of the new contract).
    table : pandas.DataFrame
        One row per roll: ``trading_date``, ``jump`` (log change of the roll
        price), and ``from_symbol``/``to_symbol`` for the symbol method.
    method : {"symbol", "jump", "evidence"}
        ``evidence`` tables also have ``oi_change`` and ``volume_change`` (log changes)
        and ``evidence`` (what flagged the day: ``price``, ``open interest``, ``volume``).
    threshold_low, threshold_high : float or None
        The jump method's log-return bounds outside which a day is a roll.
    scale : float or None
        The robust daily standard deviation (1.4826 × MAD).
    largest_unflagged : float or None
        The largest absolute log change not flagged (jump method).
    """

    mask: np.ndarray
    table: pd.DataFrame
    method: str
    price: str | None = None
    threshold_low: float | None = None
    threshold_high: float | None = None
    scale: float | None = None
    largest_unflagged: float | None = None
    oi_threshold: float | None = None

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.table["trading_date"])

    def summary(self) -> str:
        if self.method == "symbol":
            head = f"{self.count} rolls (symbol changes)"
        elif self.method == "evidence":
            head = (f"{self.count} rolls (jump rule on {self.price}: log change outside "
                    f"[{self.threshold_low:+.4f}, {self.threshold_high:+.4f}]; or a main-contract switch: open "
                    f"interest up by more than {self.oi_threshold:+.4f} in log and staying up; largest unflagged |move| {self.largest_unflagged:.4f})")
            rows = [f"  {pd.Timestamp(r.trading_date).date()}  price {r.jump:+.4f}  open interest "
                    f"{r.oi_change:+.4f}  volume {r.volume_change:+.4f}  evidence: {r.evidence}"
                    for r in self.table.itertuples()]
            return "\n".join([head, *rows])
        else:
            head = (f"{self.count} rolls (jump rule on {self.price}: log change outside "
                    f"[{self.threshold_low:+.4f}, {self.threshold_high:+.4f}], robust daily sd "
                    f"{self.scale:.4f}; largest unflagged |move| {self.largest_unflagged:.4f})")
        rows = [f"  {pd.Timestamp(r.trading_date).date()}  {r.jump:+.4f}"
                + (f"  {r.from_symbol} -> {r.to_symbol}" if self.method == "symbol" else "")
                for r in self.table.itertuples()]
        return "\n".join([head, *rows])


def _price_column(frame: pd.DataFrame, price: str | None) -> str:
    if price is not None:
        return price
    if "settlement" in frame.columns and (frame["settlement"] > 0).all():
        return "settlement"
    return "close"


def detect_rolls(frame: pd.DataFrame, *, method: str = "auto", price: str | None = None,
                 limit: float | None = None, tick: float = 0.0, mad_k: float = 8.0, oi_k: float = 8.0,
                 oi_min: float = 0.30, volume_k: float = 3.0, merge_days: int = 5) -> Rolls:
    """Find the roll days of a continuous daily series.

    Parameters
    ----------
    frame : pandas.DataFrame
        Validated futures bars (:func:`opl.data.loaders.load_futures`), in date order.
    method : {"auto", "symbol", "jump", "evidence"}
        ``auto`` uses ``symbol`` when the column exists, else ``evidence`` when there is
        an ``open_interest`` column, else ``jump`` (module docstring).
    price : str, optional
        Column for the jump rule; default settlement (close when a settlement is missing).
    limit : float, optional
        Daily limit fraction; when given a jump must also exceed it to be a roll.
    tick : float
        Price tick, the rounding slack of the limit.
    mad_k : float
        Robust standard deviations a jump must exceed.
    oi_k, oi_min, volume_k, merge_days
        The activity rule of ``evidence`` (module docstring).

    Returns
    -------
    Rolls
    """
    if method == "auto":
        method = ("symbol" if "symbol" in frame.columns else
                  "evidence" if "open_interest" in frame.columns else "jump")
    rule = _ROLL_METHODS.get(method)
    if rule is None:
        raise ValueError(f"unknown method {method!r}")
    col = _price_column(frame, price)
    change = np.diff(np.log(frame[col].to_numpy(dtype=float)), prepend=np.nan)
    return rule(frame, col, change, limit=limit, tick=tick, mad_k=mad_k, oi_k=oi_k, oi_min=oi_min,
                volume_k=volume_k, merge_days=merge_days)


def _symbol_rolls(frame: pd.DataFrame, col: str, change: np.ndarray, **_) -> Rolls:
    """``symbol``: a roll wherever the contract's symbol changes from the day before."""
    if "symbol" not in frame.columns:
        raise ValueError("method='symbol' needs a symbol column")
    sym = frame["symbol"].astype(str).to_numpy()
    mask = np.zeros(len(frame), dtype=bool)
    mask[1:] = sym[1:] != sym[:-1]
    idx = np.flatnonzero(mask)
    table = pd.DataFrame({"trading_date": frame["trading_date"].to_numpy()[idx], "jump": change[idx],
                          "from_symbol": sym[idx - 1], "to_symbol": sym[idx]})
    return Rolls(mask=mask, table=table, method="symbol", price=col)


def _jump_mask(frame: pd.DataFrame, col: str, change: np.ndarray, *, limit, tick: float,
               mad_k: float) -> tuple[np.ndarray, dict]:
    """The days whose log change lies beyond ``mad_k`` robust standard deviations (and beyond the daily limit
    when given), and the bounds used."""
    r = change[1:]
    centre = np.median(r) if len(r) else 0.0
    scale = MAD_TO_SIGMA * np.median(np.abs(r - centre)) if len(r) else 0.0
    low, high = centre - mad_k * scale, centre + mad_k * scale
    if limit is not None:
        slack = tick / np.median(frame[col]) if tick else 1e-6
        low = min(low, np.log(1.0 - limit - slack))
        high = max(high, np.log(1.0 + limit + slack))
    mask = np.zeros(len(frame), dtype=bool)
    mask[1:] = (r < low) | (r > high)
    return mask, dict(price=col, threshold_low=float(low), threshold_high=float(high), scale=float(scale))


def _jump_rolls(frame: pd.DataFrame, col: str, change: np.ndarray, *, limit, tick: float, mad_k: float,
                **_) -> Rolls:
    """``jump``: a roll wherever the price jumps beyond the robust bounds (`_jump_mask`)."""
    mask, bounds = _jump_mask(frame, col, change, limit=limit, tick=tick, mad_k=mad_k)
    idx = np.flatnonzero(mask)
    rest = np.abs(change[1:][~mask[1:]])
    table = pd.DataFrame({"trading_date": frame["trading_date"].to_numpy()[idx], "jump": change[idx]})
    return Rolls(mask=mask, table=table, method="jump", largest_unflagged=float(rest.max()) if len(rest) else 0.0,
                 **bounds)


def _evidence_rolls(frame: pd.DataFrame, col: str, change: np.ndarray, *, limit, tick: float, mad_k: float,
                    oi_k: float, oi_min: float, volume_k: float, merge_days: int) -> Rolls:
    """``evidence``: the jumps confirmed by the open interest's and the volume's activity (`_with_activity`)."""
    if "open_interest" not in frame.columns:
        raise ValueError("method='evidence' needs an open_interest column")
    mask, bounds = _jump_mask(frame, col, change, limit=limit, tick=tick, mad_k=mad_k)
    return _with_activity(frame, mask, change, bounds, oi_k=oi_k, oi_min=oi_min, volume_k=volume_k,
                          merge_days=merge_days)


# `detect_rolls`' methods.
_ROLL_METHODS = {"symbol": _symbol_rolls, "jump": _jump_rolls, "evidence": _evidence_rolls}


def _log_changes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Log level, its daily change (NaN first and where a value is not positive), robust sd of the changes."""
    level = np.log(np.where(values > 0, values, np.nan))
    change = np.diff(level, prepend=np.nan)
    finite = change[np.isfinite(change)]
    scale = MAD_TO_SIGMA * np.median(np.abs(finite - np.median(finite))) if len(finite) else 0.0
    return level, change, float(scale)


def _persistent(level: np.ndarray, t: int, rise: float) -> bool:
    """The level from ``t`` (t and nine more sessions) stays ``rise / 2`` above the five sessions before."""
    before, after = level[max(t - 5, 0):t], level[t:t + 10]
    before, after = before[np.isfinite(before)], after[np.isfinite(after)]
    return len(before) > 0 and len(after) > 0 and np.median(after) - np.median(before) >= rise / 2


def _with_activity(frame: pd.DataFrame, jump_mask: np.ndarray, change: np.ndarray, bounds: dict, *, oi_k: float,
                   oi_min: float, volume_k: float, merge_days: int) -> Rolls:
    """The jump rule's rolls plus the main-contract switches seen in open interest and volume."""
    oi_level, oi_change, oi_scale = _log_changes(frame["open_interest"].to_numpy(dtype=float))
    if "volume" in frame.columns:
        _, vol_change, vol_scale = _log_changes(frame["volume"].to_numpy(dtype=float))
    else:
        vol_change, vol_scale = np.full(len(frame), np.nan), 0.0
    threshold = max(oi_k * oi_scale, np.log(1.0 + oi_min))
    volume_jump = np.nan_to_num(vol_change, nan=-np.inf) > volume_k * vol_scale if vol_scale > 0 else \
        np.zeros(len(frame), dtype=bool)
    rise = np.nan_to_num(oi_change, nan=-np.inf)
    candidate = rise >= threshold
    jumps = np.flatnonzero(jump_mask)
    mask = jump_mask.copy()
    evidence: dict[int, list[str]] = {int(t): ["price"] for t in jumps}
    last_kept = -10 ** 9
    for t in np.flatnonzero(candidate):
        if t == 0 or not _persistent(oi_level, t, rise[t]):
            continue
        near = jumps[np.abs(jumps - t) <= merge_days]
        if len(near):  # the same switch as a price jump close by
            evidence[int(near[np.argmin(np.abs(near - t))])].append("open interest")
            continue
        if t - last_kept <= merge_days:  # the switch completing over a few sessions
            continue
        mask[t] = True
        last_kept = t
        evidence[int(t)] = ["open interest"] + (["volume"] if volume_jump[t] else [])
    idx = np.flatnonzero(mask)
    rest = np.abs(change[1:][~mask[1:]])
    table = pd.DataFrame({"trading_date": frame["trading_date"].to_numpy()[idx], "jump": change[idx],
                          "oi_change": oi_change[idx], "volume_change": vol_change[idx],
                          "evidence": [" + ".join(dict.fromkeys(evidence[int(t)])) for t in idx]})
    return Rolls(mask=mask, table=table, method="evidence", largest_unflagged=float(rest.max()) if len(rest) else 0.0,
                 oi_threshold=float(threshold), **bounds)


@dataclass
class ContractReturns:
    """Daily log returns within contracts.

    Attributes
    ----------
    returns : pandas.Series
        Indexed by trading date, one value per row of the frame: NaN on the
        first row (no previous price) and on every roll day.
    rolls : Rolls
    price : str
        The column the returns are computed from.
    """

    returns: pd.Series
    rolls: Rolls
    price: str

    @property
    def valid(self) -> pd.Series:
        """The returns that are used: roll days and the first row removed."""
        return self.returns.dropna()

    @property
    def n_excluded(self) -> int:
        """Roll-day returns excluded (the first row has no return and is not counted)."""
        return int(self.rolls.mask[1:].sum())

    def log_price(self) -> pd.Series:
        """The spliced log price: the cumulative sum of valid returns, starting at 0.

        Equivalent to a back-adjusted continuous series with each roll's jump
        removed; a variance ratio or unit-root test on it never sees a roll.
        """
        valid = self.valid
        start = pd.Series([0.0], index=self.returns.index[:1])
        return pd.concat([start, valid.cumsum()])

    def summary(self) -> str:
        return (f"{len(self.valid)} daily log returns of {self.price}, "
                f"{self.n_excluded} roll-day returns excluded; {self.rolls.summary()}")


def within_contract_returns(frame: pd.DataFrame, *, price: str = "close", rolls: Rolls | None = None,
                            **detect) -> ContractReturns:
    """Daily log returns of ``price`` that never cross a roll.

    Parameters
    ----------
    frame : pandas.DataFrame
        Validated futures bars in date order.
    price : str
        Column to return on. ``close`` by default: the settlement is a
        volume-weighted day average, and differences of averages are
        autocorrelated (Working, 1960), which would bias the random-walk tests.
    rolls : Rolls, optional
        Precomputed rolls; otherwise :func:`detect_rolls` runs with ``**detect``.
    """
    rolls = rolls if rolls is not None else detect_rolls(frame, **detect)
    logp = np.log(frame[price].to_numpy(dtype=float))
    r = np.diff(logp, prepend=np.nan)
    r[rolls.mask] = np.nan
    series = pd.Series(r, index=pd.DatetimeIndex(frame["trading_date"]), name=f"log_return_{price}")
    return ContractReturns(returns=series, rolls=rolls, price=price)


def require_moves(returns: ContractReturns, *, file: str, lines) -> None:
    """Refuse, located, a price that (almost) never moves: there is no volatility to fit or test.

    Parameters
    ----------
    returns
        The within-contract returns of a validated file.
    file, lines
        The file and the source row of each bar (`opl.data.LoadResult.file`, ``.lines``).

    Raises
    ------
    opl.data.DataError
        Fewer than `MIN_MOVING_SHARE` of the returns are non-zero (constant prices).
    """
    from opl.data.loaders import DataError, Problem

    r = returns.returns.to_numpy()
    valid = ~np.isnan(r)
    n, moving = int(valid.sum()), int((valid & (r != 0)).sum())
    if n == 0 or moving >= MIN_MOVING_SHARE * n:
        return
    lines = np.asarray(lines)
    what = f"the {returns.price} never changes" if moving == 0 else \
        f"the {returns.price} changes on only {moving} of {n} days"
    raise DataError([Problem(file, int(lines[0]), returns.price,
                             f"{what} (lines {int(lines[0])}–{int(lines[-1])}): there is no volatility to fit or "
                             "test", "check that the file holds traded prices, not a constant or a placeholder",
                             rows=tuple(int(x) for x in lines))])


def forward_moves(returns: ContractReturns, dates, *, horizon: int) -> pd.DataFrame:
    """Log moves over ``horizon`` trading days after each date, never across a roll.

    The entry is the close of the first trading day on or after each date (a
    view dated on a weekend is entered at the next session). The move is the
    sum of the valid daily returns over the next ``horizon`` trading days, so
    a roll inside the window contributes nothing instead of its jump
    (``rolls_inside`` counts them).

    Returns
    -------
    pandas.DataFrame
        Columns ``date``, ``entry``, ``exit``, ``move`` (NaN when the data end
        before ``horizon`` days have passed), ``rolls_inside``, ``complete``.
    """
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    index = returns.returns.index
    r = returns.returns.to_numpy()
    filled = np.where(np.isnan(r), 0.0, r)
    filled[0] = 0.0
    cum = np.concatenate([[0.0], np.cumsum(filled)])
    roll_cum = np.concatenate([[0], np.cumsum(returns.rolls.mask)])
    when = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates))).normalize()
    entry = index.searchsorted(when, side="left")
    exit_ = entry + horizon
    complete = exit_ < len(index)
    safe_entry = np.minimum(entry, len(index) - 1)
    safe_exit = np.minimum(exit_, len(index) - 1)
    move = cum[safe_exit + 1] - cum[safe_entry + 1]
    inside = roll_cum[safe_exit + 1] - roll_cum[safe_entry + 1]
    return pd.DataFrame({
        "date": when,
        "entry": index[safe_entry].where(entry < len(index)),
        "exit": index[safe_exit].where(complete),
        "move": np.where(complete, move, np.nan),
        "rolls_inside": np.where(complete, inside, 0),
        "complete": complete,
    })


def classify_moves(moves: np.ndarray, *, flat_band: float) -> np.ndarray:
    """``up``/``down``/``flat`` for each log move: flat when |move| <= ``flat_band``."""
    moves = np.asarray(moves, dtype=float)
    return np.where(moves > flat_band, "up", np.where(moves < -flat_band, "down", "flat"))
