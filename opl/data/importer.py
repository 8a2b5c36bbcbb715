"""``opl data import``: daily files as exchanges and vendors deliver them, into the canonical layout.

Each file's *role* is recognised from its columns after its headers are mapped through
the one alias table (:mod:`opl.data.aliases`): English or Chinese, UTF-8 or GBK/GB18030.

==============  =====================================================  =====================
role            recognised by (canonical columns, first rule that fits)  written as
==============  =====================================================  =====================
``iv_summary``  ``iv_mean``                                            ``iv_summary.csv``
``options``     ``strike_price`` or ``option_type``, or option codes    ``options.csv``
                in ``symbol`` (``CJ605C10000``)
``signals``     ``support`` and ``resistance``                         ``signals.csv``
``futures``     ``close`` or ``settlement`` (futures or ETF bars)      ``futures.csv``
``factors``     ``month``, or a date and only unknown numeric columns  ``factors.csv``
==============  =====================================================  =====================

What is derivable is derived, each derivation written to ``import_log.md``:

* ``settlement := close`` when a file has closes only (futures, ETF and option files);
* ``open, high, low := close`` for a bar file with closes only (range-based
  volatility estimators then read a zero range; the log says so); an option file's
  missing open/high/low are written empty instead, as for a strike that did not trade;
* from an option code (``CJ605C10000``): the type, the strike, the underlying
  (``CJ605``) and, with ``--pack``, the expiry by the pack's expiry rule;
* an option ``symbol`` from the underlying (or the pack's product), the expiry, the type
  and the strike;
* ``contract_multiplier`` from the pack (``--pack``);
* options on spot (an ETF) without codes: each dividend-adjusted contract (a strike moved
  off the grid, or a non-standard multiplier, from its ex-date on) linked to its life before
  the ex-date under one code, its multiplier inferred from the strike ratio when the file
  has none (:mod:`opl.data.adjustments`);
* a column whose header carries a unit (``成交额(万元)``) is rescaled.

An exchange's ``|``-separated daily report (CZCE's ``.txt``, with its title line) is read
as such. Repairs are those of :mod:`opl.data.loaders` (``repair=True``), plus dates written
``2024/6/21`` read as ``2024-06-21``; every one is listed. What cannot be mapped or
derived is refused with located errors (:class:`opl.data.loaders.DataError`): a file
whose role cannot be told, a required column that is neither present nor derivable,
a cell that breaks its contract, two files of one role that repeat a row, option
chains that disagree with the underlying by put–call parity (:mod:`opl.data.parity`),
and — with ``--pack`` — bars or chains dated past the pack's trading calendar or on a
day it closes (:mod:`opl.data.sessions`).

``--data`` of ``simulate``, ``loop``, ``calibrate``, ``assumptions`` and ``backtest``
takes a folder of raw files directly: :func:`resolve_data` runs the same import into a
new folder and returns it with the log.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from opl.data.aliases import ALIASES, SCALES, header_key
from opl.data.csvfiles import write_csv
from opl.data.contracts import CONTRACTS
from opl.data.loaders import (DataError, LoadResult, Problem, Repair, _read_raw, parse_dates, text_cells,
                              validate_frame)

__all__ = ["Role", "ROLES", "FILES", "ImportedFile", "ImportResult", "import_files", "resolve_data",
           "is_canonical", "has_data_files", "recognise_role"]

Role = Literal["futures", "options", "signals", "factors", "iv_summary"]
FILES: dict[str, str] = {"futures": "futures.csv", "options": "options.csv", "signals": "signals.csv",
                         "factors": "factors.csv", "iv_summary": "iv_summary.csv"}
#: The date column each role writes.
DATE_COLUMN: dict[str, str] = {"futures": "trading_date", "options": "trading_date", "signals": "date",
                               "factors": "month", "iv_summary": "date"}
READABLE = (".csv", ".txt", ".parquet", ".pq")
_SLASH_DATE = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:\s+0{1,2}:0{2}(?::0{2})?)?$")
_OPTION_CODE = re.compile(r"^\s*[A-Za-z]{1,3}\d{3,4}[-_ ]?[CPcp][-_ ]?\d+(\.\d+)?\s*$")
_SHOWN = 12


@dataclass
class ImportedFile:
    """One source file: its role, how its headers were read, what was derived and repaired."""

    source: str
    role: Role
    mappings: list[tuple[str, str]] = field(default_factory=list)   # (header as written, canonical column)
    ignored: list[str] = field(default_factory=list)                # headers not in the table (not written)
    derivations: list[str] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: int = 0


@dataclass
class ImportResult:
    """What ``opl data import`` read and wrote."""

    out: Path
    files: list[ImportedFile]
    written: dict[str, Path]
    log: Path
    checks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{f.source}: {f.role}, {f.rows} rows, {len(f.mappings)} columns mapped, "
                 f"{len(f.derivations)} derived, {len(f.repairs)} repaired" for f in self.files]
        lines += self.checks
        return "\n".join(lines)


# --------------------------------------------------------------------------- roles


def _has_option_codes(frame: pd.DataFrame) -> bool:
    if "symbol" not in frame.columns:
        return False
    sample = frame["symbol"].astype(str).str.strip()
    sample = sample[sample != ""].head(50)
    return len(sample) > 0 and bool(sample.str.match(_OPTION_CODE).all())


def _only_unknown_numbers(frame: pd.DataFrame) -> bool:
    extra = [c for c in frame.columns if c not in ALIASES.values()]
    known = [c for c in frame.columns if c in ALIASES.values()]
    if not extra or set(known) - {"trading_date", "month"} or not set(known) & {"trading_date", "month"}:
        return False
    return all(pd.to_numeric(frame[c].str.replace(",", "", regex=False), errors="coerce").notna().mean() > 0.5
               for c in extra)


#: (role, test on the header-mapped frame, what the test looks for): the first that fits wins.
ROLES: tuple[tuple[Role, Callable[[pd.DataFrame], bool], str], ...] = (
    ("iv_summary", lambda f: "iv_mean" in f.columns, "an `iv_mean` column (日均隐含波动率(%))"),
    ("options", lambda f: bool({"strike_price", "option_type"} & set(f.columns)) or _has_option_codes(f),
     "a strike or call/put column, or option codes in `symbol`"),
    ("signals", lambda f: {"support", "resistance"} <= set(f.columns), "`support` and `resistance` columns"),
    ("futures", lambda f: bool({"close", "settlement"} & set(f.columns)), "a `close` or `settlement` column"),
    ("factors", lambda f: "month" in f.columns or _only_unknown_numbers(f),
     "a `month` column, or a date and numeric factor columns"),
)


def recognise_role(frame: pd.DataFrame) -> Role | None:
    """The role of a frame whose headers are already canonical (the first of :data:`ROLES` that fits)."""
    for role, test, _ in ROLES:
        if test(frame):
            return role
    return None


# --------------------------------------------------------------------------- one file


@dataclass
class _Source:
    """A raw file while it is being read: text cells, source lines, its log entry."""

    path: str
    text: pd.DataFrame
    lines: np.ndarray
    entry: ImportedFile
    problems: list[Problem] = field(default_factory=list)
    derived: set[str] = field(default_factory=set)  # columns the import wrote, not the file

    def problem(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(self.path, row, column, message))


def _map_headers(path: str, raw: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]], list[str],
                                                          dict[str, float], list[Problem]]:
    mapped, ignored, scales, taken, problems = [], [], {}, {}, []
    names = []
    for header in raw.columns:
        key = header_key(header)
        canonical = ALIASES.get(key)
        if canonical is None:
            names.append(key)
            ignored.append(str(header))
            continue
        if canonical in taken:
            problems.append(Problem(path, 1, str(header), f"`{header}` and `{taken[canonical]}` both mean "
                                                          f"`{canonical}`: keep one"))
        taken[canonical] = str(header)
        names.append(canonical)
        mapped.append((str(header), canonical))
        if key in SCALES:
            scales[canonical] = SCALES[key]
    frame = raw.copy()
    frame.columns = names
    return frame, mapped, ignored, scales, problems


def _decode(data: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("gb18030", data, 0, 1, "not UTF-8 or GB18030 text")


def _read_pipes(path: Path):
    """An exchange's ``|``-separated daily report (CZCE's .txt files), or None for any other file.

    Such a report may open with a title line (郑州商品交易所期权每日行情表) and close its
    rows with a trailing ``|``; the title is skipped (noted), cells are stripped.
    """
    if path.suffix.lower() not in (".txt", ".csv"):
        return None
    try:
        text, encoding = _decode(path.read_bytes())
    except UnicodeDecodeError:
        return None
    rows = text.splitlines()
    header_at = next((i for i, line in enumerate(rows[:5]) if line.count("|") >= 2), None)
    if header_at is None or "," in rows[header_at].split("|")[0]:
        return None
    notes = [f"read as {encoding}, not UTF-8"] if encoding != "utf-8-sig" else []
    if header_at:
        notes.append(f"lines 1-{header_at} skipped as a title: {rows[0].strip()[:60]!r}")
    split = [[cell.strip() for cell in line.rstrip().rstrip("|").split("|")] for line in rows[header_at:]]
    header, body = split[0], split[1:]
    keep = [i for i, cells in enumerate(body) if any(cells)]
    width = len(header)
    problems = [Problem(str(path), header_at + 2 + i, None, f"{len(body[i])} fields where the header has {width}")
                for i in keep if len(body[i]) != width]
    if problems:
        raise DataError(problems)
    frame = pd.DataFrame([body[i] for i in keep], columns=header, dtype=object)
    notes.append("`|`-separated exchange report")
    return frame, np.array([header_at + 2 + i for i in keep]), notes


def _read_source(path: Path) -> tuple[_Source, dict[str, float]]:
    piped = _read_pipes(path)
    raw, lines, notes = piped if piped is not None else _read_raw(path)
    frame, mapped, ignored, scales, problems = _map_headers(str(path), raw)
    role = recognise_role(frame)
    if role is None:
        wanted = "; ".join(f"{r}: {what}" for r, _, what in ROLES)
        found = ", ".join(map(str, raw.columns)) or "none"
        raise DataError([Problem(str(path), 1, None, f"cannot tell what this file holds (columns: {found}); "
                                                     f"expected one of — {wanted}")])
    if problems:
        raise DataError(problems)
    entry = ImportedFile(source=str(path), role=role, mappings=mapped, notes=list(notes))
    if role == "factors":
        # Every unknown numeric column of a factors file is a factor: kept, under its own name.
        entry.mappings += [(h, header_key(h)) for h in ignored]
    else:
        entry.ignored = ignored
        frame = frame.drop(columns=[header_key(h) for h in ignored])
    date_col = DATE_COLUMN[role]
    if "trading_date" in frame.columns and date_col != "trading_date" and date_col not in frame.columns:
        frame = frame.rename(columns={"trading_date": date_col})
        entry.mappings = [(h, date_col if c == "trading_date" else c) for h, c in entry.mappings]
    frame = frame.apply(text_cells)
    return _Source(str(path), frame, np.asarray(lines), entry), scales


def _rescale(src: _Source, scales: dict[str, float]) -> None:
    for column, factor in scales.items():
        values = pd.to_numeric(src.text[column].str.replace(",", "", regex=False), errors="coerce")
        ok = values.notna()
        src.text.loc[ok, column] = (values[ok] * factor).map(lambda v: f"{v:.10g}")
        src.entry.derivations.append(f"`{column}` multiplied by {factor:,.0f} (its header gives the unit)")


def _iso_dates(src: _Source) -> None:
    for column in ("trading_date", "date", "expiry", "month"):
        if column not in src.text.columns:
            continue
        values = src.text[column]
        match = values.str.extract(_SLASH_DATE)
        hit = match[0].notna()
        if hit.any():
            iso = match[0] + "-" + match[1].str.zfill(2) + "-" + match[2].str.zfill(2)
            src.text.loc[hit, column] = iso[hit]
            first = int(np.flatnonzero(hit.to_numpy())[0])
            src.entry.repairs.append(Repair(src.path, int(src.lines[first]), column,
                                            f"{int(hit.sum())} dates written Y/M/D read as ISO dates",
                                            values.iat[first], iso.iat[first]))


# --------------------------------------------------------------------------- derivations


def _settlement_from_close(src: _Source) -> None:
    t = src.text
    if "settlement" in t.columns or "close" not in t.columns:
        return
    t["settlement"] = t["close"]
    src.entry.derivations.append("`settlement` := `close` (the file has no settlement; the close stands in for "
                                 "it wherever a settlement is used: marking, margin, returns of settlements)")


def _range_from_close(src: _Source) -> None:
    t = src.text
    missing = [c for c in ("open", "high", "low") if c not in t.columns]
    if not missing or "close" not in t.columns:
        return
    for column in missing:
        t[column] = t["close"]
    src.entry.derivations.append(f"{', '.join(f'`{c}`' for c in missing)} := `close` (the file has closes only; "
                                 "range-based volatility estimators read a zero range)")


def _option_range_unknown(src: _Source) -> None:
    t = src.text
    missing = [c for c in ("open", "high", "low", "close") if c not in t.columns]
    if not missing:
        return
    for column in missing:
        t[column] = ""
    src.entry.derivations.append(f"{', '.join(f'`{c}`' for c in missing)} not in the file: written empty, as for "
                                 "a strike that did not trade (the options contract allows it)")


def _from_option_codes(src: _Source, pack) -> None:
    """Type, strike, underlying and (with a pack) expiry from option codes like CJ605C10000."""
    from opl.runtime.market.rules import ContractCode, ContractCodeError, parse_contract

    t = src.text
    wanted = [c for c in ("option_type", "strike_price", "underlying_symbol", "expiry") if c not in t.columns]
    if "symbol" not in t.columns or not wanted or not _has_option_codes(t):
        return
    if "expiry" in wanted and pack is None:
        wanted.remove("expiry")
    dates = parse_dates(t["trading_date"]) if "trading_date" in t else None
    parsed: dict[tuple[str, int], object] = {}
    out = {c: [] for c in wanted}
    for i, code in enumerate(t["symbol"]):
        # a row without a date has no reference: a one-digit-year code on it is reported, not read as today's decade
        ref = dates.iat[i].date() if dates is not None and pd.notna(dates.iat[i]) else None
        key = (code, ref.year * 12 + ref.month if ref is not None else None)
        if key not in parsed:
            try:
                parsed[key] = parse_contract(code, reference=ref)
            except ContractCodeError as error:
                parsed[key] = error
        c = parsed[key]
        if isinstance(c, ContractCodeError) and ref is None and dates is not None:
            c = None  # the row's unreadable date is reported on its own; its code cannot be dated
        if not isinstance(c, ContractCode):
            if c is not None:
                src.problem(int(src.lines[i]), "symbol", f"cannot read {code!r} as an option code: {c}")
            for column in wanted:
                out[column].append("")
            continue
        cells = {"option_type": "C" if c.option_type == "call" else "P", "strike_price": f"{c.strike:g}",
                 "underlying_symbol": re.split(r"[-_ ]?[CPcp][-_ ]?\d", code.strip(), maxsplit=1)[0]}
        if "expiry" in wanted:
            cells["expiry"] = _expiry_of(pack, c, src, i)
        for column in wanted:
            out[column].append(cells[column])
    for column in wanted:
        t[column] = out[column]
    if "expiry" in wanted:
        _expiries_past_calendar(src, pack, out["expiry"])
    how = {"option_type": "type", "strike_price": "strike", "underlying_symbol": "underlying contract",
           "expiry": f"expiry by the {getattr(pack, 'name', '')} pack's rule for the contract month"}
    src.entry.derivations.append("from the option codes in `symbol` (e.g. "
                                 f"{t['symbol'].iat[0]}): " + ", ".join(f"`{c}` (the {how[c]})" for c in wanted))


def _expiry_of(pack, code, src: _Source, i: int) -> str:
    from opl.runtime.market.calendars import expiry_date
    from opl.runtime.market.rules import RulePackError

    try:
        return expiry_date(pack, (code.year, code.month)).isoformat()
    except RulePackError as error:
        src.problem(int(src.lines[i]), "symbol", f"no expiry for {code.root}{code.year % 100:02d}{code.month:02d}: "
                                                 f"{error}")
        return ""


def _expiries_past_calendar(src: _Source, pack, expiries: list[str]) -> None:
    """A located error for each expiry derived outside the pack's calendar, at the first row that gets it
    (:func:`opl.runtime.market.calendars.outside_calendar`): written into the canonical chain, a date
    counted with weekends only would be read as the exchange's own by everything downstream."""
    from opl.runtime.market.calendars import outside_calendar

    first: dict[str, int] = {}
    for i, expiry in enumerate(expiries):
        if expiry and expiry not in first:
            first[expiry] = i
    for expiry, i in first.items():
        message = outside_calendar(pack, dt.date.fromisoformat(expiry), repr(src.text["symbol"].iat[i]))
        if message:
            src.problem(int(src.lines[i]), "symbol", message)


def _underlying_for_expiry(pack, expiry: dt.date) -> str | None:
    """The futures contract whose options expire on ``expiry`` (CZCE code), by the pack's rule; None if none."""
    from opl.runtime.market.calendars import expiry_date
    from opl.runtime.market.rules import RulePackError

    if pack is None or pack.underlying.kind != "future" or not pack.symbols:
        return None
    for ahead in range(0, 4):
        month = (expiry.year * 12 + expiry.month - 1) + ahead
        year, mon = divmod(month, 12)
        try:
            if expiry_date(pack, (year, mon + 1)) == expiry:
                digits = f"{year % 10}{mon + 1:02d}" if pack.exchange == "CZCE" else f"{year % 100:02d}{mon + 1:02d}"
                return f"{pack.symbols[0]}{digits}"
        except RulePackError:
            continue
    return None


def _symbol_from_terms(src: _Source, pack) -> None:
    """An option code from the underlying (or the pack's product), the expiry, the type and the strike."""
    from opl.data.contracts import normalise_option_type

    t = src.text
    if "symbol" in t.columns or not {"expiry", "option_type", "strike_price"} <= set(t.columns):
        return
    expiry = parse_dates(t["expiry"])
    kind = t["option_type"].map(lambda v: normalise_option_type(v) or "?")
    strike = pd.to_numeric(t["strike_price"], errors="coerce")
    strike_text = strike.map(lambda v: "" if pd.isna(v) else f"{v:g}")
    derived_under = False
    if "underlying_symbol" in t.columns:
        under = t["underlying_symbol"]
    else:
        cache: dict = {}
        for day in expiry.dropna().unique():
            cache[day] = _underlying_for_expiry(pack, pd.Timestamp(day).date())
        under = expiry.map(lambda d: cache.get(d) if pd.notna(d) else None)
        if under.notna().all() and len(under):
            t["underlying_symbol"] = under
            derived_under = True
    if pack is not None and pack.underlying.kind != "future":
        root = pack.symbols[0] if pack.symbols else "OPT"
        month = expiry.dt.strftime("%y%m").fillna("????")
        # SSE-like: 510050C2401M02400 (strike in thousandths).
        milli = strike.map(lambda v: "" if pd.isna(v) else f"{int(round(v * 1000)):05d}")
        symbol = root + kind + month + "M" + milli
        how = f"`{root}` + type + expiry YYMM + `M` + strike in thousandths (510050C2401M02400)"
    elif under.notna().all() and (under.astype(str) != "").all():
        symbol = under.astype(str) + kind + strike_text
        how = "underlying + type + strike (CJ605C10000)"
    else:
        root = pack.symbols[0] if pack is not None and pack.symbols else "OPT"
        symbol = root + "-" + expiry.dt.strftime("%Y%m%d").fillna("?") + "-" + kind + "-" + strike_text
        how = f"`{root}` + expiry + type + strike ({root}-20240812-C-10000)"
    t["symbol"] = symbol
    src.derived.add("symbol")
    src.entry.derivations.append(f"`symbol` := {how}, e.g. {symbol.iat[0] if len(symbol) else ''}")
    if derived_under:
        src.entry.derivations.append(f"`underlying_symbol` from the expiry by the {pack.name} pack's expiry rule "
                                     f"(the contract whose options expire that day), e.g. {under.iat[0]}")


def _multiplier_from_pack(src: _Source, pack) -> None:
    t = src.text
    if "contract_multiplier" in t.columns:
        return
    if pack is None:
        src.problem(1, "contract_multiplier", "no multiplier column, and no --pack to take it from "
                                              "(e.g. --pack czce_cj or --pack sse_50etf)")
        return
    t["contract_multiplier"] = f"{pack.option.multiplier:g}"
    src.derived.add("contract_multiplier")
    src.entry.derivations.append(f"`contract_multiplier` := {pack.option.multiplier:g} (the {pack.name} pack's "
                                 "option multiplier)")


def _adjusted_contracts(src: _Source, pack) -> None:
    """Options on spot without codes: link each dividend-adjusted contract to its life before (module doc)."""
    from opl.data.adjustments import finest_step, link_adjusted

    t = src.text
    if pack is None or pack.underlying.kind == "future" or "symbol" not in src.derived or not len(t):
        return
    linked = link_adjusted(t, standard=pack.option.multiplier, step=finest_step(pack),
                           multiplier_given="contract_multiplier" not in src.derived, file=src.path, lines=src.lines)
    src.problems += linked.problems
    t["symbol"], t["contract_multiplier"] = linked.symbol, linked.multiplier
    src.entry.derivations += [f"dividend-adjusted contracts, {note}" for note in linked.notes]


#: What each role derives, in order (later steps use what earlier ones derived).
DERIVATIONS: dict[str, tuple[Callable[[_Source, object], None], ...]] = {
    "futures": (lambda s, p: _settlement_from_close(s), lambda s, p: _range_from_close(s)),
    "options": (_from_option_codes, _symbol_from_terms, _multiplier_from_pack, _adjusted_contracts,
                lambda s, p: _settlement_from_close(s), lambda s, p: _option_range_unknown(s)),
    "signals": (),
    "factors": (),
    "iv_summary": (),
}


# --------------------------------------------------------------------------- validation and merging


def _validate(src: _Source, pack) -> LoadResult | None:
    role = src.entry.role
    if role == "iv_summary":
        from opl.data.iv_summary import load_iv_summary

        summary = load_iv_summary(src.path)  # the same alias table; located in the source file
        src.entry.notes += summary.notes
        src.entry.rows = len(summary.frame)
        return None
    extra = {}
    if role == "futures" and pack is not None and "prev_settlement" in src.text.columns:
        from opl.runtime.engine.ledger import tick_size

        close = pd.to_numeric(src.text.get("close", src.text.get("settlement")), errors="coerce").median()
        extra = {"limit": pack.underlying.daily_limit,
                 "tick": tick_size(pack.underlying.tick, float(close)) if pd.notna(close) else 0.0}
    result = validate_frame(src.text, kind=role, file=src.path, lines=src.lines, repair=True, **extra)
    if pack is not None and role in ("futures", "options"):
        from opl.data.sessions import calendar_problems

        problems, notes = calendar_problems(result.frame["trading_date"], pack, file=src.path, lines=result.lines)
        if problems:
            raise DataError(problems)
        src.entry.notes += notes
    src.entry.repairs += result.repairs
    src.entry.notes += [n for n in result.notes if not n.startswith("column `")]
    src.entry.rows = len(result.frame)
    return result


def _merge(role: str, results: list[LoadResult]) -> pd.DataFrame:
    """One frame from several files of one role; a row key repeated across files is a located error."""
    if len(results) == 1:
        return results[0].frame
    contract = CONTRACTS[role]
    keys = [contract.date_column, *contract.key]
    frames = []
    for result in results:
        frame = result.frame.copy()
        frame["_file"], frame["_line"] = result.file, result.lines
        frames.append(frame)
    merged = pd.concat(frames, ignore_index=True)
    dup = merged.duplicated(subset=keys, keep=False)
    problems = []
    if dup.any():
        first: dict[tuple, tuple[str, int]] = {}
        for rec in merged.loc[dup].to_dict("records"):
            key = tuple(rec[k] for k in keys)
            if key in first:
                f, line = first[key]
                problems.append(Problem(rec["_file"], int(rec["_line"]), contract.date_column,
                                        f"{pd.Timestamp(key[0]).date()}{' ' + key[1] if len(key) > 1 else ''} is "
                                        f"also in {f}:{line}: two files of one {role} series overlap"))
            else:
                first[key] = (rec["_file"], int(rec["_line"]))
    if problems:
        raise DataError(problems)
    merged = merged.sort_values(keys, kind="stable").reset_index(drop=True)
    return merged.drop(columns=["_file", "_line"])


def _write(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.PeriodDtype):
            out[column] = out[column].astype(str)
    write_csv(out, path)


# --------------------------------------------------------------------------- the import


def _expand(paths) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in READABLE)
            if not found:
                raise DataError([Problem(str(p), None, None, f"no data files ({', '.join(READABLE)}) in the folder")])
            out += found
        elif not p.exists():
            raise FileNotFoundError(2, "No such file or directory", str(p))
        else:
            out.append(p)
    return out


def import_files(paths, out: str | os.PathLike, *, pack: str | object | None = None, parity: bool = True,
                 tolerance: float | None = None) -> ImportResult:
    """Import raw files (or folders of them) into ``out`` in the canonical layout, with ``import_log.md``.

    Parameters
    ----------
    paths : iterable of path-like
        Files, or folders whose ``.csv``/``.txt``/``.parquet`` files are all read.
    out : path-like
        Folder to write (created); the canonical files and ``import_log.md``.
    pack : str or RulePack, optional
        Rule pack (``czce_cj``, ``sse_50etf``): option multiplier, expiry rule, daily limit,
        whether the underlying is a future or spot.
    parity : bool
        Check option chains against the underlying by put–call parity (:mod:`opl.data.parity`).
    tolerance : float, optional
        Parity tolerance (log gap); the check's default when ``None``.

    Raises
    ------
    DataError
        Everything that could not be mapped, derived or validated, located (file, line, column).
    OSError
        A file cannot be read, or ``out`` cannot be written.
    """
    from opl.runtime.market.rules import load_pack

    pack_obj = load_pack(pack) if isinstance(pack, str) else pack
    sources = _mapped_sources(paths, pack_obj)
    results, iv_sources = _validated(sources, pack_obj)
    frames = {role: _merge(role, items) for role, items in results.items()}
    checks = _cross_checks(frames, results, pack_obj, parity, tolerance)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for role, frame in frames.items():
        written[role] = root / FILES[role]
        _write(frame, written[role])
    for src in iv_sources:
        written["iv_summary"] = root / FILES["iv_summary"]
        src.text.to_csv(written["iv_summary"], index=False)  # headers mapped, cells as validated
    log = root / "import_log.md"
    result = ImportResult(out=root, files=[s.entry for s in sources], written=written, log=log, checks=checks)
    log.write_text(_log_text(result, pack_obj), encoding="utf-8")
    return result


def _mapped_sources(paths, pack) -> list[_Source]:
    """Every file read, rescaled, dated in ISO form and given its derived columns; DataError with every problem
    of every file (nothing is written when one file is bad)."""
    sources: list[_Source] = []
    problems: list[Problem] = []
    for path in _expand(paths):
        try:
            src, scales = _read_source(path)
        except DataError as error:
            problems += error.problems
            continue
        _rescale(src, scales)
        _iso_dates(src)
        for derive in DERIVATIONS[src.entry.role]:
            derive(src, pack)
        problems += src.problems
        sources.append(src)
    if problems:
        raise DataError(problems)
    return sources


def _validated(sources: list[_Source], pack) -> tuple[dict, list[_Source]]:
    """The sources validated against their contracts: the load results per role, and the IV summaries (at
    most one); DataError with every problem found."""
    results: dict[str, list[LoadResult]] = {}
    iv_sources: list[_Source] = []
    problems: list[Problem] = []
    for src in sources:
        try:
            result = _validate(src, pack)
        except DataError as error:
            problems += error.problems
            continue
        if result is None:
            iv_sources.append(src)
        else:
            results.setdefault(src.entry.role, []).append(result)
    if len(iv_sources) > 1:
        problems.append(Problem(iv_sources[1].path, None, None, f"a second IV summary (the first is "
                                                                f"{iv_sources[0].path}): import one"))
    if problems:
        raise DataError(problems)
    return results, iv_sources


def _cross_checks(frames: dict, results: dict, pack, parity: bool, tolerance: float | None) -> list[str]:
    """The checks across files, as the log states them: put–call parity of the chains against the underlying's
    bars (DataError when it fails), the futures' rolls."""
    checks = []
    if parity and "options" in frames and "futures" in frames:
        from opl.data.parity import check_parity

        opt_file = "+".join(r.file for r in results["options"])
        lines = np.concatenate([r.lines for r in results["options"]]) if len(results["options"]) == 1 else None
        report = check_parity(frames["options"], frames["futures"], spot=_is_spot(pack),
                              file=opt_file, lines=lines, futures_file="+".join(r.file for r in results["futures"]),
                              **({} if tolerance is None else {"tolerance": tolerance}))
        if report.problems:
            raise DataError(report.problems)
        checks.append(report.summary())
    elif "options" in frames:
        checks.append("put–call parity: not checked (no underlying bars among the files)")
    if "futures" in frames:
        checks.append(_rolls_line(frames["futures"], pack))
    return checks


def _rolls_line(futures: pd.DataFrame, pack) -> str:
    """The rolls of the bars, with their evidence: no return across one is ever used downstream."""
    from opl.data.rolls import detect_rolls

    limit = pack.underlying.daily_limit if pack is not None else None
    rolls = detect_rolls(futures, limit=limit)
    if not rolls.count:
        return f"rolls: none found ({rolls.method} rule)"
    listed = "; ".join(f"{pd.Timestamp(r['trading_date']).date()} ({r.get('evidence', rolls.method)})"
                       for r in rolls.table.to_dict("records"))
    return (f"rolls: {rolls.count} ({rolls.method} rule; `opl data rolls futures.csv` shows the sizes), excluded "
            f"from every return downstream: {listed}")


def _is_spot(pack) -> bool:
    return pack is not None and pack.underlying.kind != "future"


def _log_text(result: ImportResult, pack) -> str:
    md = ["# Import log", "",
          f"`opl data import` wrote the canonical layout (`opl data synth`'s) into `{result.out}`"
          + (f" with the rule pack `{pack.name}`." if pack is not None else " without a rule pack."),
          "Header spellings come from the one alias table, `opl/data/aliases.py` "
          "(printed in `examples/jujube/data_contracts.md`).", ""]
    for entry in result.files:
        md += [f"## {entry.source} → {FILES[entry.role]} ({entry.role}, {entry.rows} rows)", ""]
        md += ["Headers:", ""] + [f"- `{h}` → `{c}`" + (" (as written)" if header_key(h) == c else "")
                                  for h, c in entry.mappings]
        if entry.ignored:
            md += [f"- not in the alias table, not written: {', '.join(f'`{h}`' for h in entry.ignored)}"]
        md += [""]
        if entry.derivations:
            md += ["Derived:", ""] + [f"- {d}" for d in entry.derivations] + [""]
        if entry.repairs:
            md += [f"Repaired ({len(entry.repairs)}):", ""] + [f"- {r}" for r in entry.repairs[:_SHOWN]]
            if len(entry.repairs) > _SHOWN:
                md += [f"- … and {len(entry.repairs) - _SHOWN} more of the same kinds"]
            md += [""]
        if entry.notes:
            md += ["Notes:", ""] + [f"- {n}" for n in entry.notes] + [""]
    if result.checks:
        md += ["## Checks", ""] + [f"- {c}" for c in result.checks] + [""]
    md += ["## Written", ""] + [f"- `{p.name}` ({role})" for role, p in result.written.items()] + [""]
    return "\n".join(md)


# --------------------------------------------------------------------------- --data of the commands


def has_data_files(folder: str | os.PathLike) -> bool:
    """Whether a folder holds any file the import reads (``.csv``, ``.txt``, ``.parquet``, ``.pq``)."""
    return any(p.is_file() and p.suffix.lower() in READABLE for p in Path(folder).iterdir())


def is_canonical(folder: str | os.PathLike) -> bool:
    """Whether a folder already has the canonical layout (a ``futures`` file, or only canonical names)."""
    root = Path(folder)
    names = {p.name for p in root.iterdir() if p.is_file()}
    if any(f"futures{s}" in names for s in (".csv", ".parquet", ".pq")):
        return True
    data = {n for n in names if Path(n).suffix.lower() in READABLE}
    return bool(data) and data <= set(FILES.values())


def resolve_data(data: str | os.PathLike | None, *, pack=None, into: str | os.PathLike | None = None,
                 ) -> tuple[str | None, ImportResult | None]:
    """``--data`` as given, or — for a folder of raw files — the folder the same import wrote.

    Returns ``(folder, result)``: ``result`` is ``None`` when nothing was imported (no
    ``--data``, a file, or a folder already in the canonical layout). ``into`` is the
    folder to import into (default: a new temporary folder, named in the log).
    """
    if data is None or not Path(data).is_dir() or is_canonical(data) or not has_data_files(Path(data)):
        # Nothing to import: the command says what it needs.
        return (None if data is None else str(data)), None
    target = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix="opl-import-"))
    result = import_files([data], target, pack=pack)
    return str(target), result
