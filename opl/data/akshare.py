"""Optional AKShare adapter: CZCE futures bars and option chains onto the data contracts.

AKShare (https://akshare.akfamily.xyz) is an optional extra — ``pip install -e
".[akshare]"`` — and is imported only when a function here runs; without it they raise
:class:`AkshareUnavailable` saying how to install it. Every frame it returns goes
through :func:`opl.data.validate_frame`, so a vendor change shows up as a located
:class:`opl.data.DataError` (``file`` names the AKShare call), never as a silent NaN.

``futures_daily(symbol)`` — ``akshare.futures_zh_daily_sina(symbol=...)``: Sina's daily
bars of one contract (``CJ2505``) or of the main continuous series (``CJ0``); columns
``date, open, high, low, close, volume, hold, settle``. A single contract gets a
``symbol`` column (so rolls are exact); the continuous series has none and its rolls
are found by the jump rule, as for the exchange's own file.

``option_chain(product, trade_date)`` — ``akshare.option_hist_czce(symbol="红枣期权",
trade_date="YYYYMMDD")``: the CZCE's daily option report, one row per option, with
the exchange's Chinese headers (``合约代码, 昨结算, 今开盘, 最高价, 最低价, 今收盘,
今结算, 涨跌1, 涨跌2, 成交量(手), 持仓量, 增减量, 成交额(万元), DELTA, 隐含波动率,
行权量``; headers may carry spaces, which are stripped). Mapped as: ``合约代码`` →
``symbol``, parsed into ``underlying_symbol`` (``CJ505``), ``option_type`` and
``strike_price``; ``今结算`` → ``settlement``, ``昨结算`` → ``prev_settlement``,
``今开盘/最高价/最低价/今收盘`` → ``open/high/low/close`` (0, the report's mark of
a strike that did not trade, becomes empty — counted in the notes), ``成交量(手)`` →
``volume``, ``持仓量`` → ``open_interest``, ``成交额(万元)`` × 10,000 →
``total_turnover`` (CNY); ``expiry`` from the product's rule pack
(:func:`opl.runtime.market.calendars.expiry_date`, CZCE's three-digit year resolved against
the trade date) and ``contract_multiplier`` from the pack; the exchange's ``DELTA``
and ``隐含波动率`` are kept as ``exchange_delta`` and ``exchange_iv``.

``fetch(symbol, out)`` writes ``futures.csv`` (and, with ``options=True``, one chain
per trading day in ``options.csv``) into a directory in the layout ``opl calibrate
--data`` reads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from opl.data.loaders import DataError, LoadResult, Problem, validate_frame

__all__ = ["AkshareUnavailable", "PRODUCTS", "futures_daily", "option_chain", "fetch", "INSTALL_HINT"]

INSTALL_HINT = 'pip install -e ".[akshare]"'

#: CZCE product code → (AKShare's option product name, rule pack).
PRODUCTS: dict[str, tuple[str, str]] = {"CJ": ("红枣期权", "czce_cj")}

_FUTURES_COLUMNS = {"date": "trading_date", "open": "open", "high": "high", "low": "low", "close": "close",
                    "volume": "volume", "hold": "open_interest", "settle": "settlement"}
_OPTION_COLUMNS = {"合约代码": "symbol", "昨结算": "prev_settlement", "今开盘": "open", "最高价": "high",
                   "最低价": "low", "今收盘": "close", "今结算": "settlement", "成交量(手)": "volume",
                   "持仓量": "open_interest", "成交额(万元)": "total_turnover", "DELTA": "exchange_delta",
                   "隐含波动率": "exchange_iv"}
_CODE = re.compile(r"^([A-Za-z]+)(\d{3,4})([CP])(\d+(?:\.\d+)?)$")
_CONTRACT = re.compile(r"^[A-Za-z]+\d{3,4}$")  # one delivery month (CJ2505, CJ505); CJ0 is Sina's main series


class AkshareUnavailable(ImportError):
    """AKShare is not installed (it is an optional extra)."""


def _akshare():
    try:
        import akshare
    except ImportError as error:
        raise AkshareUnavailable(f"the AKShare adapter needs the optional extra: {INSTALL_HINT} ({error})") from None
    return akshare


def _day(value) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def futures_daily(symbol: str, *, start=None, end=None, repair: bool = False) -> LoadResult:
    """Daily futures bars from ``akshare.futures_zh_daily_sina``, validated (module docstring).

    Parameters
    ----------
    symbol
        Sina's code: a contract (``CJ2505``) or the main continuous series (``CJ0``).
    start, end
        Optional first and last trading day kept.
    repair
        The loaders' documented repairs (a zero settlement replaced by the close, logged).

    Raises
    ------
    AkshareUnavailable, DataError
    """
    ak = _akshare()
    raw = ak.futures_zh_daily_sina(symbol=symbol)
    name = f"akshare:futures_zh_daily_sina({symbol})"
    frame = pd.DataFrame(raw).rename(columns=lambda c: str(c).strip())
    missing = [c for c in _FUTURES_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError([Problem(name, None, c, "column missing from AKShare's frame (has the vendor changed its "
                                               f"columns? found: {', '.join(map(str, frame.columns))})")
                         for c in missing])
    frame = frame[list(_FUTURES_COLUMNS)].rename(columns=_FUTURES_COLUMNS)
    dates = pd.to_datetime(frame["trading_date"], errors="coerce")
    # ISO text for the validator; a value that is not a date stays as it was, to be reported where it is.
    frame["trading_date"] = dates.dt.strftime("%Y-%m-%d").where(dates.notna(), frame["trading_date"].astype(str))
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= ~(dates < _day(start)).to_numpy()
    if end is not None:
        keep &= ~(dates > _day(end)).to_numpy()
    lines = np.arange(1, len(frame) + 1)[keep]
    frame = frame[keep].reset_index(drop=True)
    if _CONTRACT.match(symbol):
        frame.insert(1, "symbol", symbol.upper())
    return validate_frame(frame, kind="futures", file=name, lines=lines, repair=repair)


def _parse_codes(codes: pd.Series, name: str) -> tuple[pd.DataFrame, list[Problem]]:
    parts = codes.str.strip().str.extract(_CODE)
    problems = [Problem(name, i + 1, "合约代码", f"not an option code like CJ505C10000: {codes.iloc[i]!r}")
                for i in np.flatnonzero(parts[0].isna().to_numpy())]
    out = pd.DataFrame({"underlying_symbol": (parts[0].str.upper() + parts[1]),
                        "option_type": parts[2], "strike_price": pd.to_numeric(parts[3], errors="coerce")})
    return out, problems


def option_chain(product: str, trade_date, *, repair: bool = False) -> LoadResult:
    """One day's CZCE option chain from ``akshare.option_hist_czce``, validated (module docstring).

    Parameters
    ----------
    product
        CZCE product code with a rule pack (``PRODUCTS``: ``CJ``).
    trade_date
        The trading day.

    Raises
    ------
    AkshareUnavailable, DataError, ValueError (unknown product)
    """
    from opl.runtime.market.calendars import expiry_date
    from opl.runtime.market.rules import RulePackError, load_pack

    code = product.upper()
    if code not in PRODUCTS:
        raise ValueError(f"no AKShare option mapping for {product!r} (known: {', '.join(PRODUCTS)})")
    ak_name, pack_name = PRODUCTS[code]
    day = _day(trade_date)
    ak = _akshare()
    raw = ak.option_hist_czce(symbol=ak_name, trade_date=day.strftime("%Y%m%d"))
    name = f"akshare:option_hist_czce({ak_name}, {day.date()})"
    frame = pd.DataFrame(raw).rename(columns=lambda c: str(c).strip())
    if frame.empty:
        raise DataError([Problem(name, None, None, "AKShare returned no rows (not a trading day, or no options "
                                                   "listed that day)")])
    missing = [c for c in _OPTION_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError([Problem(name, None, c, "column missing from AKShare's frame (found: "
                                               f"{', '.join(map(str, frame.columns))})") for c in missing])
    frame = frame[list(_OPTION_COLUMNS)].rename(columns=_OPTION_COLUMNS).reset_index(drop=True)
    frame["symbol"] = frame["symbol"].astype(str).str.strip()
    parsed, problems = _parse_codes(frame["symbol"], name)
    if problems:
        raise DataError(problems)
    pack = load_pack(pack_name)
    expiries = {}
    for under in parsed["underlying_symbol"].unique():
        try:
            expiries[under] = pd.Timestamp(expiry_date(pack, under, reference=day.date()))
        except (RulePackError, ValueError) as error:
            rows = np.flatnonzero((parsed["underlying_symbol"] == under).to_numpy())
            problems.append(Problem(name, int(rows[0]) + 1, "合约代码", f"no expiry for {under}: {error}"))
    if problems:
        raise DataError(problems)
    ohlc = ["open", "high", "low", "close"]
    numbers = frame[ohlc].apply(pd.to_numeric, errors="coerce")
    untraded = (numbers == 0).all(axis=1)
    frame.loc[untraded, ohlc] = np.nan
    turnover = pd.to_numeric(frame["total_turnover"].astype(str).str.replace(",", "", regex=False), errors="coerce")
    frame["total_turnover"] = (turnover * 10_000).round(2)
    out = pd.concat([frame, parsed], axis=1)
    out.insert(0, "trading_date", day.strftime("%Y-%m-%d"))
    out["expiry"] = out["underlying_symbol"].map(lambda u: expiries[u].strftime("%Y-%m-%d"))
    out["contract_multiplier"] = pack.option.multiplier
    notes = [f"{int(untraded.sum())} options did not trade (open/high/low/close 0 in the report): left empty"] \
        if untraded.any() else []
    return validate_frame(out, kind="options", file=name, repair=repair, notes=notes)


def fetch(symbol: str, out: str | os.PathLike, *, start=None, end=None, options: bool = True, option_days: int = 60,
          repair: bool = False, progress: Callable[[int, int], None] | None = None) -> dict[str, Path]:
    """Write ``futures.csv`` (Sina's main continuous series ``<symbol>0``) and ``options.csv`` into ``out``.

    Option chains come one AKShare call per trading day: every day of the futures
    series when ``start`` is given, else its last ``option_days`` days. Returns the
    paths written.
    """
    code = symbol.upper()
    futures = futures_daily(f"{code}0", start=start, end=end, repair=repair)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"futures": directory / "futures.csv"}
    futures.frame.to_csv(paths["futures"], index=False, date_format="%Y-%m-%d", float_format="%.10g")
    if options:
        days = pd.DatetimeIndex(futures.frame["trading_date"])
        if start is None:
            days = days[-option_days:]
        chains = []
        for n, day in enumerate(days, 1):
            chains.append(option_chain(code, day, repair=repair).frame)
            if progress is not None:
                progress(n, len(days))
        paths["options"] = directory / "options.csv"
        pd.concat(chains, ignore_index=True).to_csv(paths["options"], index=False, date_format="%Y-%m-%d",
                                                   float_format="%.10g")
    return paths
