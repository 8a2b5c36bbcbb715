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

``etf_daily(underlying)`` — ``akshare.fund_etf_hist_sina(symbol="sh510050")``: the
ETF's daily bars (``date, open, high, low, close, volume``, an ``amount`` column in some
versions); one instrument, so no rolls; the ETF market has no settlement price, so
``settlement := close`` (noted).

``etf_option_history(underlying, month)`` — SSE ETF options (50ETF: ``510050``) of one
expiry month, as Sina serves them through AKShare: ``option_sse_codes_sina(symbol=
"看涨期权"|"看跌期权", trade_date="YYYYMM", underlying=...)`` lists the contract IDs
(``序号, 期权代码``: 10002513 …), ``option_sse_greeks_sina(symbol=ID)`` gives each
contract's terms as a ``字段, 值`` table (``交易代码`` 510050C2012M03000, ``行权价``),
and ``option_sse_daily_sina(symbol=ID)`` its daily bars (``日期, 开盘, 最高, 最低, 收盘,
成交量``). Each row keeps the contract ID as its ``symbol``: the SSE never changes it, so
a contract is one series through a dividend adjustment. Sina gives no settlement
(``settlement := close``, noted), no open interest and no multiplier (the pack's); the
expiry is the pack's rule for the month (fourth Wednesday).

A contract already adjusted (``A`` in its trading code: 510050C2412A02850) shows only its
current terms — the adjusted strike K' in ``行权价``; the original strike K is the code's
last five digits — and its bars run through its whole life, before the ex-dividend date at
K × 10,000 units, from it at K' × M'. It is carried as its own contract under its ID, as
``opl data import`` carries one (:mod:`opl.data.adjustments`): the ex-date is the session
on which ``S − (C − P)`` of the adjusted call and put (per unit, S the ETF's close) drops by
about ``(K − K') + S·(1 − K'/K)`` — before the date parity gives ``PV(dividend) + K·df``,
from it ``K'·df`` — and must be the one such drop; M' = round(10,000 / g), g the factor the
exchange's rounding of K' = round(K·g, 3) allows (intersected over the month's adjusted
contracts). An adjusted contract whose sibling of the other type is not listed, or whose
parity shows no single drop, cannot be dated: it is left out and named in the notes, never
given a wrong strike. The ETF's bars come from ``etf`` (``fetch_etf`` passes the ones it
fetched) or one ``fund_etf_hist_sina`` call.

``fetch(symbol, out)`` writes ``futures.csv`` (and, with ``options=True``, one chain
per trading day in ``options.csv``) into a directory in the layout ``opl calibrate
--data`` reads; ``fetch_etf(underlying, months, out)`` the same for an ETF and its
options. Everything is fetched before anything is written.

A call that cannot reach the vendor (no network, a timeout, a refused connection) raises
:class:`AkshareNetworkError` naming the AKShare call and the cause: it is said as a
network failure, not as a problem of the output folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from opl.data.csvfiles import write_csv
from opl.data.loaders import DataError, LoadResult, Problem, validate_frame
from opl.errors import EXIT_USAGE, OplError

__all__ = ["AkshareUnavailable", "AkshareNetworkError", "PRODUCTS", "ETF_PRODUCTS", "futures_daily",
           "option_chain", "fetch", "etf_daily", "etf_option_history", "fetch_etf", "INSTALL_HINT"]

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


class AkshareUnavailable(OplError, ImportError):
    """AKShare is not installed (it is an optional extra); a usage error (exit 2)."""

    exit_code = EXIT_USAGE


class AkshareNetworkError(OplError, RuntimeError):
    """AKShare could not reach its source: no network, a timeout, a refused or dropped connection (exit 2, as
    the command line has always said it)."""

    exit_code = EXIT_USAGE


def _is_network_error(error: BaseException) -> bool:
    """Whether an exception from inside AKShare is the network's (requests', urllib's or the socket's)."""
    import socket
    import urllib.error

    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror, socket.timeout, urllib.error.URLError)):
        return True
    # requests' exceptions (an AKShare dependency) without importing it here.
    return any(cls.__module__.startswith(("requests", "urllib3")) for cls in type(error).__mro__)


def _call(ak, function: str, **kwargs):
    """``ak.<function>(**kwargs)``, a network failure raised as :class:`AkshareNetworkError`."""
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        return getattr(ak, function)(**kwargs)
    except Exception as error:  # noqa: BLE001 - only the network's are translated; the rest propagate
        if _is_network_error(error):
            raise AkshareNetworkError(f"network: akshare.{function}({shown}) could not reach its source "
                                      f"({type(error).__name__}: {error}); check the connection (no network?) "
                                      "and retry; nothing was written") from None
        raise


def _akshare():
    try:
        import akshare
    except ImportError as error:
        raise AkshareUnavailable(f"the AKShare adapter needs the optional extra: {INSTALL_HINT} ({error})") from None
    return akshare


def _day(value) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def _window(frame: pd.DataFrame, start, end) -> tuple[pd.DataFrame, np.ndarray]:
    """ISO dates (a value that is not one stays, to be reported where it is) and the rows in [start, end]."""
    dates = pd.to_datetime(frame["trading_date"], errors="coerce")
    frame["trading_date"] = dates.dt.strftime("%Y-%m-%d").where(dates.notna(), frame["trading_date"].astype(str))
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= ~(dates < _day(start)).to_numpy()
    if end is not None:
        keep &= ~(dates > _day(end)).to_numpy()
    return frame[keep].reset_index(drop=True), np.arange(1, len(frame) + 1)[keep]


def _columns(raw, mapping: dict[str, str], name: str) -> pd.DataFrame:
    """AKShare's frame with its columns renamed; a column it no longer has is a located error."""
    frame = pd.DataFrame(raw).rename(columns=lambda c: str(c).strip())
    missing = [c for c in mapping if c not in frame.columns]
    if missing:
        raise DataError([Problem(name, None, c, "column missing from AKShare's frame (has the vendor changed its "
                                               f"columns? found: {', '.join(map(str, frame.columns))})")
                         for c in missing])
    return frame[list(mapping)].rename(columns=mapping)


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
    raw = _call(ak, "futures_zh_daily_sina", symbol=symbol)
    name = f"akshare:futures_zh_daily_sina({symbol})"
    frame, lines = _window(_columns(raw, _FUTURES_COLUMNS, name), start, end)
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
    from opl.runtime.market.calendars import expiry_date, outside_calendar
    from opl.runtime.market.rules import RulePackError, load_pack

    code = product.upper()
    if code not in PRODUCTS:
        raise ValueError(f"no AKShare option mapping for {product!r} (known: {', '.join(PRODUCTS)})")
    ak_name, pack_name = PRODUCTS[code]
    day = _day(trade_date)
    ak = _akshare()
    raw = _call(ak, "option_hist_czce", symbol=ak_name, trade_date=day.strftime("%Y%m%d"))
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
        row = int(np.flatnonzero((parsed["underlying_symbol"] == under).to_numpy())[0]) + 1
        try:
            expiries[under] = pd.Timestamp(expiry_date(pack, under, reference=day.date()))
        except (RulePackError, ValueError) as error:
            problems.append(Problem(name, row, "合约代码", f"no expiry for {under}: {error}"))
            continue
        outside = outside_calendar(pack, expiries[under].date(), f"the options on {under}")
        if outside:
            problems.append(Problem(name, row, "合约代码", outside))
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
    frames = {"futures": futures.frame}
    if options:
        days = pd.DatetimeIndex(futures.frame["trading_date"])
        if start is None:
            days = days[-option_days:]
        chains = []
        for n, day in enumerate(days, 1):
            chains.append(option_chain(code, day, repair=repair).frame)
            if progress is not None:
                progress(n, len(days))
        frames["options"] = pd.concat(chains, ignore_index=True)
    return _write(frames, out)


def _write(frames: dict[str, pd.DataFrame], out) -> dict[str, Path]:
    """The fetched frames as ``<kind>.csv`` in ``out`` (after every fetch succeeded)."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, frame in frames.items():
        paths[kind] = directory / f"{kind}.csv"
        write_csv(frame, paths[kind])
    return paths


# --------------------------------------------------------------------------- SSE ETF options (Sina)

#: SSE ETF code → rule pack.
ETF_PRODUCTS: dict[str, str] = {"510050": "sse_50etf"}
_ETF_BARS = {"date": "trading_date", "open": "open", "high": "high", "low": "low", "close": "close",
             "volume": "volume"}
_SSE_DAILY = {"日期": "trading_date", "开盘": "open", "最高": "high", "最低": "low", "收盘": "close",
              "成交量": "volume"}
_SSE_SIDES = {"看涨期权": "C", "看跌期权": "P"}
#: 510050C2412M02800: underlying, C/P, expiry YYMM, M (A, B … once adjusted), strike in thousandths.
_SSE_CODE = re.compile(r"^(\d{6})([CP])(\d{4})([A-Z])(\d{5})$")
_CLOSE_ONLY = "settlement := close (Sina publishes no settlement price)"


def _etf_pack(underlying: str):
    from opl.runtime.market.rules import load_pack

    if underlying not in ETF_PRODUCTS:
        raise ValueError(f"no AKShare option mapping for ETF {underlying!r} (known: {', '.join(ETF_PRODUCTS)})")
    return load_pack(ETF_PRODUCTS[underlying])


def etf_daily(underlying: str = "510050", *, start=None, end=None) -> LoadResult:
    """The ETF's daily bars from ``akshare.fund_etf_hist_sina``, validated (module docstring).

    Raises
    ------
    AkshareUnavailable, AkshareNetworkError, DataError, ValueError (an ETF without a pack)
    """
    _etf_pack(underlying)
    ak = _akshare()
    sina = ("sh" if underlying.startswith("5") else "sz") + underlying
    name = f"akshare:fund_etf_hist_sina({sina})"
    frame, lines = _window(_columns(_call(ak, "fund_etf_hist_sina", symbol=sina), _ETF_BARS, name), start, end)
    frame.insert(1, "symbol", underlying)
    frame["settlement"] = frame["close"]
    return validate_frame(frame, kind="futures", file=name, lines=lines, notes=[_CLOSE_ONLY])


def _terms(raw, name: str) -> dict[str, str]:
    """Sina's ``字段, 值`` table of one contract as a dict."""
    table = pd.DataFrame(raw)
    if not {"字段", "值"} <= set(table.columns):
        raise DataError([Problem(name, None, None, "not a 字段/值 table (has the vendor changed its columns? found: "
                                                   f"{', '.join(map(str, table.columns))})")])
    return {str(k).strip(): str(v).strip() for k, v in zip(table["字段"], table["值"])}


def _contract_bars(ak, cid: str, terms: dict[str, str], expiry: pd.Timestamp, pack) -> pd.DataFrame:
    name = f"akshare:option_sse_daily_sina({cid})"
    bars = _columns(_call(ak, "option_sse_daily_sina", symbol=cid), _SSE_DAILY, name)
    code = _SSE_CODE.match(terms["交易代码"])
    bars["symbol"] = cid
    bars["settlement"] = bars["close"]
    bars["strike_price"] = terms["行权价"]
    bars["option_type"] = code.group(2)
    bars["expiry"] = expiry.strftime("%Y-%m-%d")
    bars["contract_multiplier"] = pack.option.multiplier
    bars["underlying_symbol"] = code.group(1)
    return bars


def etf_option_history(underlying: str = "510050", month: str = "202412", *, start=None, end=None,
                       repair: bool = False, etf: pd.DataFrame | None = None) -> LoadResult:
    """Every contract of one expiry month of an SSE ETF's options, its daily bars, validated (module docstring).

    Parameters
    ----------
    underlying
        The ETF (``ETF_PRODUCTS``: ``510050``).
    month
        The expiry month, ``YYYYMM``.
    etf
        The ETF's bars (``trading_date``, ``close``) to date dividend adjustments by parity;
        fetched when a month has adjusted contracts and none are given.

    Raises
    ------
    AkshareUnavailable, AkshareNetworkError, DataError, ValueError (an ETF without a pack)
    """
    from opl.runtime.market.calendars import expiry_date, outside_calendar

    pack = _etf_pack(underlying)
    expiry = pd.Timestamp(expiry_date(pack, f"{month[:4]}-{month[4:]}"))
    outside = outside_calendar(pack, expiry.date(), f"the {month} series")
    if outside:
        raise DataError([Problem(f"akshare:option_sse ({underlying}, {month})", None, "month", outside)])
    ak = _akshare()
    frames, adjusted, problems = [], [], []
    for side in _SSE_SIDES:
        listing = f"akshare:option_sse_codes_sina({side}, {month}, {underlying})"
        codes = _columns(_call(ak, "option_sse_codes_sina", symbol=side, trade_date=month, underlying=underlying),
                         {"期权代码": "id"}, listing)
        for cid in codes["id"].astype(str).str.strip():
            name = f"akshare:option_sse_greeks_sina({cid})"
            terms = _terms(_call(ak, "option_sse_greeks_sina", symbol=cid), name)
            code = _SSE_CODE.match(terms.get("交易代码", ""))
            if code is None or code.group(2) != _SSE_SIDES[side] or code.group(1) != underlying:
                problems.append(Problem(name, None, "交易代码", f"{terms.get('交易代码')!r} is not a {side} code of "
                                                                f"{underlying} like {underlying}C2412M02800"))
            elif code.group(4) != "M":
                adjusted.append((cid, terms, code))
            else:
                frames.append(_contract_bars(ak, cid, terms, expiry, pack))
    if problems:
        raise DataError(problems)
    notes = []
    if adjusted:
        closes = etf if etf is not None else etf_daily(underlying).frame
        carried, adjusted_notes = _adjusted_contracts(ak, adjusted, expiry, pack, closes)
        frames += carried
        notes += adjusted_notes
    name = f"akshare:option_sse ({underlying}, {month})"
    if not frames:
        raise DataError([Problem(name, None, None, "AKShare listed no standard contract for the month")])
    frame, _ = _window(pd.concat(frames, ignore_index=True), start, end)
    # One day's chain after another, as the contract requires (Sina serves one contract's history at a time).
    frame = frame.sort_values(["trading_date", "symbol"], kind="stable").reset_index(drop=True)
    lines = np.arange(1, len(frame) + 1)
    notes = [_CLOSE_ONLY, "open interest: not in Sina's daily bars",
             f"contract_multiplier := {pack.option.multiplier:g} (the {pack.name} pack's) for the standard contracts"
             ] + notes
    return validate_frame(frame, kind="options", file=name, lines=lines, repair=repair, notes=notes)


def _adjusted_contracts(ak, adjusted: list, expiry: pd.Timestamp, pack, etf: pd.DataFrame
                        ) -> tuple[list[pd.DataFrame], list[str]]:
    """The bars of the month's dividend-adjusted contracts with their terms on each side of the ex-date, and
    the notes (module docstring): a call and a put of one original strike are dated together."""
    from opl.data.adjustments import HALF_TICK

    standard = pack.option.multiplier
    pairs: dict[str, dict[str, tuple]] = {}
    for cid, terms, code in adjusted:
        pairs.setdefault(code.group(3) + code.group(4) + code.group(5), {})[code.group(2)] = (cid, terms, code)
    spot = pd.Series(pd.to_numeric(etf["close"], errors="coerce").to_numpy(),
                     index=_iso(etf["trading_date"]).to_numpy())
    dated, notes = [], []
    for sides in pairs.values():
        named = " and ".join(f"{cid} ({terms['交易代码']})" for cid, terms, _ in sides.values())
        if set(sides) != {"C", "P"}:
            missing = "put" if "C" in sides else "call"
            notes.append(f"dividend-adjusted {named} left out: its {missing} is not listed, so parity cannot date "
                         "the adjustment, and Sina gives only the current terms, which its earlier bars did not have")
            continue
        bars = {side: _contract_bars(ak, cid, terms, expiry, pack) for side, (cid, terms, _) in sides.items()}
        strike, adjusted_strike = int(sides["C"][2].group(5)) / 1000.0, float(sides["C"][1]["行权价"])
        found = _ex_date(bars, spot, strike, adjusted_strike)
        if isinstance(found, str):
            notes.append(f"dividend-adjusted {named} left out: {found}")
            continue
        dated.append((bars, strike, adjusted_strike, found, named))
    # Every adjusted contract of the month (dated or not) was rounded from the same factor: their strikes narrow g.
    terms_all = [(int(code.group(5)) / 1000.0, float(terms["行权价"])) for _, terms, code in adjusted]
    frames = []
    for ex in sorted({d[3][0] for d in dated}):
        group = [d for d in dated if d[3][0] == ex]
        pairs_used = terms_all if len({d[3][0] for d in dated}) == 1 else [(k, k_new) for _, k, k_new, _, _ in group]
        low = max((k_new - HALF_TICK) / k for k, k_new in pairs_used)
        high = min((k_new + HALF_TICK) / k for k, k_new in pairs_used)
        if low > high:  # two adjustments in one month: the dated group's own strikes only
            low = max((k_new - HALF_TICK) / k for _, k, k_new, _, _ in group)
            high = min((k_new + HALF_TICK) / k for _, k, k_new, _, _ in group)
        multiplier = float(np.rint(standard / ((low + high) / 2.0)))
        fits = sorted({float(np.rint(standard / high)), float(np.rint(standard / low))})
        how = (f"the strike ratio of the month's {len(pairs_used)} adjusted contract(s), g in [{low:.5f}, {high:.5f}]"
               + (f"; {fits[0]:,.0f} … {fits[-1]:,.0f} fit them, the middle taken" if len(fits) > 1 else ""))
        for bars, k, k_new, (_, drop, expected), named in group:
            for frame in bars.values():
                after = (_iso(frame["trading_date"]) >= ex).to_numpy()
                frame["strike_price"] = np.where(after, k_new, k)
                frame["contract_multiplier"] = np.where(after, multiplier, standard)
                frames.append(frame)
            notes.append(f"dividend-adjusted {named}: ex-date {ex} (S − (C − P) fell by {drop:.4f} that session, "
                         f"{expected:.4f} expected from the strikes): strike {k:g} × {standard:,.0f} before, "
                         f"{k_new:g} × {multiplier:,.0f} from it (the multiplier from {how}); carried as its own "
                         "contracts under their IDs")
    return frames, notes


def _iso(dates: pd.Series) -> pd.Series:
    """Dates as ``YYYY-MM-DD`` text (a cell that is not a date stays, to be reported by the validation)."""
    parsed = pd.to_datetime(dates, errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), dates.astype(str))


def _ex_date(bars: dict[str, pd.DataFrame], spot: pd.Series, strike: float, adjusted: float
             ) -> tuple[str, float, float] | str:
    """The ex-date of an adjusted call/put pair by parity, its drop and the drop expected; or why none."""
    call, put = (pd.Series(pd.to_numeric(bars[side]["close"], errors="coerce").to_numpy(),
                           index=_iso(bars[side]["trading_date"]).to_numpy()) for side in ("C", "P"))
    joined = pd.concat({"s": spot, "c": call, "p": put}, axis=1, join="inner").dropna().sort_index()
    if len(joined) < 2:
        return "fewer than two sessions with the ETF's close and both prices: parity cannot date the adjustment"
    level = joined["s"] - (joined["c"] - joined["p"])
    drops = -level.diff().iloc[1:]
    at = int(np.argmax(drops.to_numpy()))
    day, drop = drops.index[at], float(drops.iloc[at])
    expected = (strike - adjusted) + float(joined["s"].iloc[at]) * (1.0 - adjusted / strike)
    others = np.delete(np.abs(drops.to_numpy()), at)
    if not 0.5 * expected <= drop <= 1.5 * expected or (others.size and others.max() >= 0.5 * expected):
        return (f"parity shows no single ex-date (largest one-session fall of S − (C − P) {drop:.4f} on {day}, "
                f"{expected:.4f} expected from strike {strike:g} → {adjusted:g})")
    return day, drop, expected


def fetch_etf(underlying: str, months, out: str | os.PathLike, *, start=None, end=None,
              progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Path], list[str]]:
    """``futures.csv`` (the ETF's bars) and ``options.csv`` (the months' contracts) into ``out``, and the notes.

    Everything is fetched before anything is written.
    """
    bars = etf_daily(underlying, start=start, end=end)
    chains, notes = [], list(bars.notes)
    for n, month in enumerate(months, 1):
        chain = etf_option_history(underlying, month, start=start, end=end, etf=bars.frame)
        chains.append(chain.frame)
        notes += [f"{month}: {note}" for note in chain.notes]
        if progress is not None:
            progress(n, len(months))
    return _write({"futures": bars.frame, "options": pd.concat(chains, ignore_index=True)}, out), notes
