"""Load market data files against their contracts, rejecting bad data with located errors.

Every cell is read as text first so that a value that does not parse can be
reported where it is, instead of turning into a silent NaN. Every problem found
is collected; :class:`DataError` carries them all, and its own ``file``,
``row`` and ``column`` fields are those of the first. ``row`` is the physical
line in a CSV file, counting the header as line 1 (so the first data row is
line 2, and a quoted cell spanning lines moves the rows after it down); in a
Parquet file, which has no header line, it is the 1-based record number. One
cause in one column (a column written with thousands separators, dates in US
order) is one :class:`Problem` with its count, first and last row, and the fix
when there is one; :func:`shown` caps what is printed.

Nothing is dropped or changed unless ``repair=True`` is passed, and each repair
is then returned in :attr:`LoadResult.repairs`. The repairs are deliberately
few, and only of things whose fix is unambiguous:

* a blank line is dropped;
* a thousands separator is removed from a number (``"18,257"``);
* a settlement of 0 or an empty settlement is replaced by the close (the
  exchange's continuous jujube series has two such days);
* an exact duplicate of an earlier row is dropped;
* rows out of date order are sorted (stable).

Anything else — a duplicate date with different values, high < low, a price
outside the day's range or its daily limit — stays an error: those need a
person to look at the source.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from opl.data.contracts import CONTRACTS, Contract, normalise_direction, normalise_option_type
from opl.errors import OplError

__all__ = [
    "Problem", "Repair", "DataError", "shown", "grouped", "parse_dates", "ZONED", "LoadResult", "load",
    "load_futures", "load_options", "load_signals", "load_factors", "validate_frame", "text_cells", "per_value",
]

_MAX_SHOWN = 20
#: From this many rows with the same problem in one column on, they are reported as one problem.
_GROUP_AT = 4
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_MONTH = re.compile(r"^(\d{4})-?(\d{1,2})$")
_PRICE_CHECKED = ("open", "high", "low", "close", "settlement")


@dataclass(frozen=True)
class Problem:
    """One located problem: file, row (see the module docstring), column, message.

    A problem that recurs in a column (the same cause on many rows: every cell of a
    column written with thousands separators, every date in US order) is reported once:
    ``row`` is its first row, ``count`` how many rows have it, ``last`` the last of
    them and ``rows`` all of them. ``fix`` says what repairs it, when something does.
    """

    file: str
    row: int | None
    column: str | None
    message: str
    fix: str = ""
    count: int = 1
    last: int | None = None
    rows: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @property
    def located_rows(self) -> tuple[int, ...]:
        """Every row this problem stands for (empty when it is about the whole file)."""
        if self.rows:
            return self.rows
        return () if self.row is None else (self.row,)

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        col = f" column `{_escaped(self.column)}`:" if self.column else ""
        more = f" (and {self.count - 1} more like it in this column, the last on line {self.last})" \
            if self.count > 1 else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{_escaped(where)}:{col} {_escaped(self.message)}{more}{fix}"


def grouped(file: str, column: str | None, rows, describe: Callable[[int], str], fix: str = "") -> list[Problem]:
    """The problems of one cause in one column at ``rows``: one each when few, else one with their count.

    ``describe(i)`` words the problem at ``rows[i]``; it is called only for those shown.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < _GROUP_AT:
        return [Problem(file, int(row), column, describe(i), fix) for i, row in enumerate(rows)]
    first = int(np.argmin(rows))
    return [Problem(file, int(rows[first]), column, describe(first), fix, count=len(rows), last=int(rows.max()),
                    rows=tuple(rows.tolist()))]


def _escaped(text: str) -> str:
    """``text`` with control and line-breaking characters made visible (names and values come from the file)."""
    from opl.lang.render.full import printable

    return printable(text)


def shown(problems: list[Problem], limit: int = _MAX_SHOWN) -> list[str]:
    """The lines that report ``problems``: at most ``limit``, then one line saying what was left out."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more problems not shown ({len(problems)} in all)")
    return lines


@dataclass(frozen=True)
class Repair:
    """One change made because ``repair=True`` was asked for."""

    file: str
    row: int | None
    column: str | None
    action: str
    old: str = ""
    new: str = ""

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        col = f" column `{self.column}`:" if self.column else ""
        change = f" ({self.old!r} -> {self.new!r})" if (self.old or self.new) else ""
        return f"{where}:{col} {self.action}{change}"


class DataError(OplError, ValueError):
    """Bad input data. ``file``, ``row`` and ``column`` locate the first problem; ``problems`` has all."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("DataError needs at least one problem")
        self.problems = list(problems)
        first = self.problems[0]
        self.file, self.row, self.column, self.message = first.file, first.row, first.column, first.message
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(shown(self.problems))

    def lines(self) -> list[str]:
        """Every shown problem as ``error: path:row: column `name`: message``, then how many there are."""
        count = len(self.problems)
        return ([f"error: {line}" for line in shown(self.problems)]
                + [f"{count} problem{'s' if count != 1 else ''} in the data (the data contracts: "
                   "examples/jujube/data_contracts.md)"] + ([f"  = help: {self.help}"] if self.help else []))


@dataclass
class LoadResult:
    """A validated frame with where each row came from, the repairs made and notes.

    Attributes
    ----------
    frame : pandas.DataFrame
        Canonical columns in contract order (those present), then any extra
        columns, unvalidated and kept as text. Dates are ``datetime64``, the
        factor month a monthly ``Period``.
    lines : numpy.ndarray
        For each row of ``frame``, its row in the source (see the module docstring).
    """

    frame: pd.DataFrame
    kind: str
    file: str
    lines: np.ndarray
    repairs: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def line_of(self, index: int) -> int:
        """The source row of the ``index``-th row of :attr:`frame`."""
        return int(self.lines[index])

    def describe(self) -> dict:
        """What a command's JSON says of the file it read: file, rows used, first and last date, the repairs
        made (a dropped row is one of them: rows in = ``rows`` + rows dropped) and the notes."""
        col = self.frame[CONTRACTS[self.kind].date_column]
        return {"file": self.file, "rows": len(self.frame),
                "first": _day(col.iloc[0]) if len(col) else None, "last": _day(col.iloc[-1]) if len(col) else None,
                "repairs": [str(r) for r in self.repairs], "notes": list(self.notes)}

    def summary(self) -> str:
        frame = self.frame
        date_col = CONTRACTS[self.kind].date_column
        span = ""
        if len(frame):
            first, last = frame[date_col].iloc[0], frame[date_col].iloc[-1]
            span = f", {_day(first)} … {_day(last)}"
        out = [f"{self.file}: {self.kind}, {len(frame)} rows{span}, columns: {', '.join(frame.columns)}"]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  repaired: {r}" for r in self.repairs]
        return "\n".join(out)


def _day(value) -> str:
    return str(value.date()) if isinstance(value, pd.Timestamp) else str(value)


def load(path: str | os.PathLike, *, kind: str, repair: bool = False, limit: float | None = None,
         tick: float = 0.0, rename: dict[str, str] | None = None) -> LoadResult:
    """Read a CSV or Parquet file and validate it against the ``kind`` contract.

    Parameters
    ----------
    path : path-like
        ``.csv`` (UTF-8, with or without BOM; GB18030 is tried when UTF-8 fails)
        or ``.parquet``/``.pq``.
    kind : {"futures", "options", "signals", "factors"}
    repair : bool
        Make the repairs listed in the module docstring, each logged.
    limit : float, optional
        Daily price limit as a fraction of ``prev_settlement`` (0.10 for CJ
        since 2021-10-11). Futures prices outside it are errors. Checked only
        when given and when the file has ``prev_settlement``.
    tick : float
        Tolerance for the limit check, one tick of the limit price's rounding.
    rename : dict, optional
        Explicit ``{source name: canonical name}`` for the file's header.

    Returns
    -------
    LoadResult

    Raises
    ------
    DataError
        When anything in the file breaks the contract.
    OSError
        When the file cannot be read at all.
    """
    name = str(path)
    raw, lines, notes = _read_raw(Path(path))
    return validate_frame(raw, kind=kind, file=name, lines=lines, repair=repair, limit=limit, tick=tick,
                          rename=rename, notes=notes)


def load_futures(path: str | os.PathLike, **kwargs) -> LoadResult:
    """:func:`load` with ``kind="futures"``."""
    return load(path, kind="futures", **kwargs)


def load_options(path: str | os.PathLike, **kwargs) -> LoadResult:
    """:func:`load` with ``kind="options"``."""
    return load(path, kind="options", **kwargs)


def load_signals(path: str | os.PathLike, **kwargs) -> LoadResult:
    """:func:`load` with ``kind="signals"``."""
    return load(path, kind="signals", **kwargs)


def load_factors(path: str | os.PathLike, **kwargs) -> LoadResult:
    """:func:`load` with ``kind="factors"``."""
    return load(path, kind="factors", **kwargs)


def _read_raw(path: Path) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    notes: list[str] = []
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except ImportError as error:
            raise DataError([Problem(str(path), None, None,
                                     f"reading Parquet needs pyarrow or fastparquet: {error}")]) from None
        except (ValueError, TypeError) as error:
            raise DataError([Problem(str(path), None, None, f"not a readable Parquet file: {error}")]) from None
        frame = frame.reset_index(drop=True)
        text = frame.apply(lambda col: col.map(lambda v: "" if _is_missing(v) else str(v)))
        return text.astype(object), np.arange(1, len(frame) + 1), notes
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise DataError([Problem(str(path), None, None, "not UTF-8 or GB18030 text")])
    del data
    if encoding != "utf-8-sig":
        notes.append(f"read as {encoding}, not UTF-8")
    header = _first_record(text)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError([Problem(str(path), None, None, "file is empty")]) from None
    except pd.errors.ParserError as error:
        if len(header) == 1:  # prose, or another delimiter: say that, not where a later line has commas
            raise DataError([_one_column_header(str(path), header[0], None)]) from None
        match = re.search(r"line (\d+)", str(error))
        row = _physical_line(text, int(match.group(1))) if match else None
        raise DataError([Problem(str(path), row, None, f"malformed CSV: {error}")]) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas makes the first column the index when every row has one field more than the header.
        raise DataError([Problem(str(path), 2, None,
                                 f"malformed CSV: the rows have {len(frame.columns) + 1} fields, the header "
                                 f"{len(header)}", fix="remove the trailing delimiter, or name every column")])
    if len(header) == len(frame.columns):
        frame.columns = header  # pandas renames a repeated `close` to `close.1`; the header is checked as written
    # Rows with too few fields come back as NaN; they are reported as missing values.
    frame = frame.astype(object).where(frame.notna(), "")
    return frame, _record_lines(frame, header, text), notes


def _physical_line(text: str, record: int) -> int:
    """The line ``record`` (1-based, as pandas counts records in its errors) starts on in ``text``."""
    if '"' not in text:
        return record  # no quoted cell, so no record spans lines
    reader = csv.reader(io.StringIO(text))
    try:
        for _ in range(record - 1):
            next(reader)
    except (StopIteration, csv.Error):
        return record
    return reader.line_num + 1


def _first_record(text: str) -> list[str]:
    """The header as written (the first record; newline=None reads a file with CR line ends too)."""
    try:
        return next(csv.reader(io.StringIO(text, newline=None)), [])
    except csv.Error:
        return []


def _record_lines(frame: pd.DataFrame, header: list[str], text: str) -> np.ndarray:
    """The physical line each row starts on; a quoted cell with line breaks makes its row span several lines."""
    first = 2 + sum(name.count("\n") for name in header)
    physical = text.count("\n") + (0 if text.endswith("\n") else 1)
    if physical <= len(frame) + first - 1:
        return np.arange(first, len(frame) + first)
    breaks = np.zeros(len(frame), dtype=np.int64)
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        breaks += column.map(lambda v: v.count("\n") if isinstance(v, str) else 0).to_numpy(dtype=np.int64)
    return first + np.concatenate([[0], np.cumsum(breaks)[:-1]]) + np.arange(len(frame))


def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def per_value(values: pd.Series, fn) -> pd.Series:
    """``fn`` (a Series → Series of the same length) applied once per distinct value, spread back.

    A daily chain repeats its dates, types, strikes and prices tens of thousands of times:
    a 10⁶-row file has a few thousand distinct values a column, so parsing those is what
    makes such a file load in seconds rather than minutes.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    done = fn(pd.Series(uniques, dtype=values.dtype if len(uniques) else object))
    return pd.Series(done.to_numpy()[codes], index=values.index, name=values.name, dtype=done.dtype)


def text_cells(column: pd.Series) -> pd.Series:
    """Each cell as stripped text, a missing one as ``""`` (once per distinct value: :func:`per_value`)."""
    if column.dtype == object and pd.api.types.infer_dtype(column, skipna=False) == "string":
        return per_value(column, lambda u: u.str.strip())
    return column.map(lambda v: "" if _is_missing(v) else str(v).strip())


def validate_frame(raw: pd.DataFrame, *, kind: str, file: str = "<frame>", lines=None, repair: bool = False,
                   limit: float | None = None, tick: float = 0.0, rename: dict[str, str] | None = None,
                   notes: list[str] | None = None) -> LoadResult:
    """Validate an in-memory table against the ``kind`` contract; see :func:`load`.

    ``raw`` may hold text or already typed values; ``lines`` gives each row's
    source row for the messages (default: 1-based record numbers).
    """
    if kind not in CONTRACTS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(CONTRACTS)}")
    contract = CONTRACTS[kind]
    lines = np.arange(1, len(raw) + 1) if lines is None else np.asarray(lines)
    state = _State(file=file, contract=contract, repair=repair, notes=list(notes or []), lines=lines)
    text = raw.copy()
    text.columns = _canonical_header(text.columns, contract, rename or {}, state)
    text = text.apply(text_cells)
    text, lines = _drop_blank(text, lines, state)
    if len(text) == 0 and not state.problems:
        # A header alone is not data: every consumer would fail later, further from the cause.
        raise DataError([Problem(file, state.header_row, None, "the file has a header but no rows")])
    state.lines = lines
    parsed = _parse_columns(text, state)
    _check_rows(parsed, state, limit=limit, tick=tick)
    parsed, lines = _check_order(parsed, text, lines, state)
    if state.problems:
        raise DataError(sorted(state.problems, key=lambda p: (p.row or 0)))
    order = [c for c in contract.names if c in parsed.columns]
    order += [c for c in parsed.columns if c not in order]
    return LoadResult(frame=parsed[order].reset_index(drop=True), kind=kind, file=file,
                      lines=np.asarray(lines), repairs=state.repairs, notes=state.notes)


#: More calendar days than this between two trading days of a daily series is not a holiday
#: (the longest exchange closure, Spring Festival, is 11 or 12 days) but a wrong date or missing rows.
_MAX_GAP_DAYS = 31
_DAILY = ("futures", "options")
#: A futures close this many times the previous row's (or less than its inverse) is a unit or decimal error:
#: daily limits are 4-20 % and even a roll between two months of one product moves far less.
_MAX_DAILY_RATIO = 10.0
_REPAIR_SETTLEMENT = "--repair replaces a missing or 0 settlement by the close"


@dataclass
class _State:
    file: str
    contract: Contract
    repair: bool
    notes: list[str]
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    lines: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    header_row: int = 1

    def problem(self, pos: int | None, column: str | None, message: str, fix: str = "") -> None:
        row = None if pos is None else int(self.lines[pos])
        self.problems.append(Problem(self.file, row, column, message, fix))

    def report(self, positions, column: str | None, describe: Callable[[int], str], fix: str = "") -> None:
        """One cause at ``positions`` of one column: a problem each when few, else one with their count.

        ``describe(pos)`` words the problem at a position; it is called only for those shown.
        """
        positions = np.asarray(positions, dtype=np.int64)
        self.problems.extend(grouped(self.file, column, self.lines[positions],
                                     lambda i: describe(int(positions[i])), fix))

    def fixed(self, pos: int | None, column: str | None, action: str, old: str = "", new: str = "") -> None:
        row = None if pos is None else int(self.lines[pos])
        self.repairs.append(Repair(self.file, row, column, action, old, new))


_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}


def _canonical_header(columns, contract: Contract, rename: dict[str, str], state: _State) -> list[str]:
    names = [rename.get(str(c), str(c)).strip().lower() for c in columns]
    if len(names) == 1 and names[0] not in contract.names:
        raise DataError([_one_column_header(state.file, str(columns[0]), contract)])
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    dupes = sorted(n for n, count in seen.items() if count > 1)
    if dupes:
        raise DataError([Problem(state.file, state.header_row, d, "column appears more than once in the header",
                                 "keep one of them, or rename the other")
                         for d in dupes])
    out = []
    for name in names:
        target = contract.aliases.get(name)
        if target and target not in names and target not in out:
            state.notes.append(f"column `{name}` read as `{target}`")
            out.append(target)
        else:
            out.append(name)
    missing = [c for c in contract.required if c not in out]
    if missing:
        found = ", ".join(out) or "none"
        raise DataError([Problem(state.file, state.header_row, c,
                                 f"missing required {contract.kind} column (columns found: {found})")
                         for c in missing])
    absent = [c for c in contract.optional if c not in out]
    if absent:
        state.notes.append(f"optional columns absent: {', '.join(absent)}")
    extra = [c for c in out if c not in contract.names]
    if extra and not contract.open_numeric:
        state.notes.append(f"extra columns kept unvalidated: {', '.join(extra)}")
    if contract.open_numeric and not extra:
        raise DataError([Problem(state.file, state.header_row, None,
                                 f"a {contract.kind} file needs at least one numeric column besides "
                                 f"`{contract.date_column}`")])
    return out


def _one_column_header(file: str, header: str, contract: Contract | None) -> Problem:
    """A header read as one column: another delimiter, or not a CSV file at all; one problem, not one a column."""
    kind = f"{contract.kind} " if contract else ""
    need = f" with the columns {', '.join(contract.required)}" if contract else ""
    for delimiter, word in _DELIMITERS.items():
        if delimiter in header:
            return Problem(file, 1, None, f"the header is one column: the file is separated by {word}s, not commas",
                           f"write it comma-separated{need}")
    excerpt = header if len(header) <= 40 else header[:40] + "…"
    return Problem(file, 1, None, f"the first line {excerpt!r} is not a header: no commas; not a CSV {kind}file",
                   f"a {kind}file starts with a header naming its columns{need}")


def _drop_blank(text: pd.DataFrame, lines: np.ndarray, state: _State):
    blank = (text == "").all(axis=1).to_numpy()
    if not blank.any():
        return text, lines
    if not state.repair:
        state.report(np.flatnonzero(blank), None, lambda pos: "blank line", "--repair drops blank lines")
        return text, lines
    for pos in np.flatnonzero(blank):
        state.repairs.append(Repair(state.file, int(lines[pos]), None, "dropped blank line"))
    keep = ~blank
    return text.loc[keep].reset_index(drop=True), lines[keep]


def _parse_columns(text: pd.DataFrame, state: _State) -> pd.DataFrame:
    contract = state.contract
    out = {}
    names = list(text.columns)
    fill = state.repair and contract.kind == "futures" and "close" in names and "settlement" in names
    for name in sorted(names, key=lambda n: fill and n == "settlement"):  # the close first: it fills a settlement
        values = text[name]
        if name in contract.names:
            col = contract.column(name)
            if fill and name == "settlement":
                values = _fill_settlement(values, out["close"], state)
            out[name] = _parse(values, name, col.kind, col.nullable, state)
        elif contract.open_numeric:
            out[name] = _parse(values, name, "number", False, state)
        else:
            out[name] = values
    return pd.DataFrame({name: out[name] for name in names}, index=text.index)


def _fill_settlement(values: pd.Series, close: pd.Series, state: _State) -> pd.Series:
    """A settlement that is empty or 0 replaced by the day's close (logged); the exchange's series has such days."""
    gone = (values == "").to_numpy() | (pd.to_numeric(values, errors="coerce") == 0).to_numpy()
    bad = np.flatnonzero(gone & (close > 0).to_numpy())
    if not len(bad):
        return values
    values = values.copy()
    for pos in bad:
        state.fixed(int(pos), "settlement", "settlement missing or 0: replaced by the close", values.iat[pos],
                    _fmt(close.iat[pos]))
        values.iat[pos] = repr(float(close.iat[pos]))
    return values


def _parse(values: pd.Series, name: str, kind: str, nullable: bool, state: _State) -> pd.Series:
    empty = (values == "").to_numpy()
    if kind == "text":
        state.report(np.flatnonzero(empty), name, lambda pos: "missing value")
        return values
    if kind == "date":
        parsed = parse_dates(values)
        _report_unparsed(values, empty, parsed.isna().to_numpy(), name, "date", nullable, state)
        return parsed
    if kind == "month":
        parsed = per_value(values, lambda u: u.map(_parse_month))
        _report_unparsed(values, empty, parsed.isna().to_numpy(), name, "month", nullable, state)
        return parsed.astype("period[M]")
    if kind == "direction":
        parsed = per_value(values, lambda u: u.map(normalise_direction))
        _report_unparsed(values, empty, parsed.isna().to_numpy(), name, "direction", nullable, state)
        return parsed
    if kind == "option_type":
        parsed = per_value(values, lambda u: u.map(normalise_option_type))
        _report_unparsed(values, empty, parsed.isna().to_numpy(), name, "option_type", nullable, state)
        return parsed
    if state.repair:
        sep = values.str.match(_THOUSANDS).to_numpy()
        for pos in np.flatnonzero(sep):
            new = values.iat[pos].replace(",", "")
            state.fixed(pos, name, "removed thousands separators", values.iat[pos], new)
            values = values.copy()
            values.iat[pos] = new
    parsed = per_value(values, lambda u: pd.to_numeric(u.where(u != "", None), errors="coerce").astype(float))
    bad = parsed.isna().to_numpy() | ~np.isfinite(parsed.to_numpy())
    _report_unparsed(values, empty, bad, name, "number", nullable, state)
    parsed[bad] = np.nan  # an unreadable inf is reported once, not again by every check that compares it
    ok = ~bad
    num = parsed.to_numpy()
    if kind == "price":
        state.report(np.flatnonzero(ok & (num < 0)), name, lambda pos: f"negative price {values.iat[pos]}")
        state.report(np.flatnonzero(ok & (num == 0)), name, lambda pos: "price is 0 (a missing price)",
                     _settlement_fix(name, state))
    elif name in state.contract.nonnegative:
        state.report(np.flatnonzero(ok & (num < 0)), name, lambda pos: f"negative value {values.iat[pos]}")
    return parsed


def _settlement_fix(name: str, state: _State) -> str:
    return _REPAIR_SETTLEMENT if name == "settlement" and state.contract.kind == "futures" else ""


#: A time of day with a zone (``T15:00:00+08:00``, ``T07:00Z``): the trading day depends on the zone.
ZONED = re.compile(r"\d[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_SLASHED = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def parse_dates(values: pd.Series, *, format: str = "ISO8601") -> pd.Series:
    """Dates (text) as ``datetime64`` at midnight; NaT where a value is not one or carries a time zone.

    ``format`` is pandas': ``ISO8601`` for the contracts, ``mixed`` for a vendor's summary. Never
    raises: pandas refuses a column mixing time zones as a whole ("Mixed timezones").
    """
    return per_value(values.astype(str), lambda u: _parse_distinct_dates(u, format))


def _parse_distinct_dates(values: pd.Series, format: str) -> pd.Series:
    values = values.str.strip()
    zoned = values.str.contains(ZONED).to_numpy()
    usable = values.where(~((values == "").to_numpy() | zoned), None)
    try:
        parsed = pd.to_datetime(usable, format=format, errors="coerce")
    except (ValueError, TypeError, OverflowError):
        parsed = pd.to_datetime(usable.map(lambda v: _one_date(v, format)), errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # a zone the pattern missed: the day is not known
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    return parsed.dt.normalize()


def _one_date(value, format: str = "ISO8601"):
    try:
        day = pd.to_datetime(value, format=format)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    return pd.NaT if day is pd.NaT or day.tzinfo is not None else day


_WHAT = {"date": "a date (YYYY-MM-DD)", "month": "a month (YYYY-MM)", "number": "a number",
         "direction": "a direction (up/down/flat, any case, or 涨/跌/震荡)",
         "option_type": "an option type (C/P, call/put or 看涨/看跌)"}


def _report_unparsed(values, empty, bad, name, kind, nullable, state: _State) -> None:
    """Missing and unreadable cells of one column, grouped by cause, each cause with its fix."""
    if not nullable:
        state.report(np.flatnonzero(bad & empty), name, lambda pos: "missing value", _settlement_fix(name, state))
    unread = np.flatnonzero(bad & ~empty)
    if not len(unread):
        return
    what = _WHAT[kind]
    for positions, why, fix in _CAUSES.get(kind, _no_cause)(values, unread):
        state.report(positions, name, lambda pos: f"cannot parse {values.iat[pos]!r} as {what}{why}", fix)


def _no_cause(values: pd.Series, unread: np.ndarray):
    return [(unread, "", "")]


def _number_causes(values: pd.Series, unread: np.ndarray):
    sep = values.iloc[unread].str.match(_THOUSANDS).to_numpy()
    return [(unread[sep], "", "--repair removes thousands separators"), (unread[~sep], "", "")]


def _date_causes(values: pd.Series, unread: np.ndarray):
    cells = values.iloc[unread]
    zoned = cells.str.contains(ZONED).to_numpy()
    parts = cells.str.extract(_SLASHED)
    slashed = parts[0].notna().to_numpy()
    order = "DD/MM/YYYY or MM/DD/YYYY"
    if slashed.any():
        first, second = parts[0][slashed].astype(int), parts[1][slashed].astype(int)
        order = "MM/DD/YYYY" if (second > 12).any() else "DD/MM/YYYY" if (first > 12).any() else order
    return [(unread[zoned], ": it carries a time zone",
             "write the exchange's trading day as YYYY-MM-DD, without time or zone"),
            (unread[slashed], f": it is written {order}", "write dates as YYYY-MM-DD (ISO 8601)"),
            (unread[~zoned & ~slashed], "", "")]


_CAUSES = {"number": _number_causes, "date": _date_causes}


def _parse_month(value: str):
    if not value:
        return pd.NaT
    match = _MONTH.match(value)
    try:
        if match:
            return pd.Period(year=int(match.group(1)), month=int(match.group(2)), freq="M")
        # ISO dates only: a free-form parser would read "Jan" as January of this year.
        day = _one_date(value)
        return pd.NaT if pd.isna(day) else day.to_period("M")
    except (ValueError, TypeError):
        return pd.NaT


def _fmt(value: float) -> str:
    return f"{value:,.10g}"


def _check_rows(frame: pd.DataFrame, state: _State, *, limit: float | None, tick: float) -> None:
    cols = frame.columns
    if "high" in cols and "low" in cols:
        high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
        # Values <= 0 are already reported as bad prices; comparing them would repeat it.
        valid = (high > 0) & (low > 0)
        state.report(np.flatnonzero(valid & (high < low)), "high",
                     lambda pos: f"high {_fmt(high[pos])} is below low {_fmt(low[pos])}")
        for name in ("open", "close", "settlement"):
            if name not in cols:
                continue
            v = frame[name].to_numpy()
            # Settlement of an untraded option strike is model-set, not traded, so
            # only days with a range are checked.
            outside = valid & (v > 0) & (high >= low) & ((v < low) | (v > high))
            state.report(np.flatnonzero(outside), name,
                         lambda pos, name=name, v=v: f"{name} {_fmt(v[pos])} is outside the day's range "
                                                     f"[{_fmt(low[pos])}, {_fmt(high[pos])}]")
    if limit is not None and state.contract.kind == "futures" and "prev_settlement" in cols:
        prev = frame["prev_settlement"].to_numpy()
        lo, hi = prev * (1.0 - limit) - tick, prev * (1.0 + limit) + tick
        slack = 1e-9 * np.abs(prev)
        for name in _PRICE_CHECKED:
            if name not in cols:
                continue
            v = frame[name].to_numpy()
            state.report(np.flatnonzero((prev > 0) & (v > 0) & ((v < lo - slack) | (v > hi + slack))), name,
                         lambda pos, name=name, v=v: f"{name} {_fmt(v[pos])} is outside the daily limit "
                                                     f"±{limit:.0%} of prev_settlement {_fmt(prev[pos])}")
    if state.contract.kind == "futures":
        _check_moves(frame["close"].to_numpy(), state)
    if state.contract.kind == "signals":
        sup, res = frame["support"].to_numpy(), frame["resistance"].to_numpy()
        state.report(np.flatnonzero((sup > 0) & (res > 0) & (sup >= res)), "resistance",
                     lambda pos: f"resistance {_fmt(res[pos])} is not above support {_fmt(sup[pos])}")
    if state.contract.kind == "options":
        expiry, day = frame["expiry"], frame["trading_date"]
        state.report(np.flatnonzero((expiry < day).to_numpy()), "expiry",
                     lambda pos: f"expiry {_day(expiry.iat[pos])} is before the trading date {_day(day.iat[pos])}")


def _check_moves(close: np.ndarray, state: _State) -> None:
    """A futures close more than `_MAX_DAILY_RATIO` times (or under 1/x of) the row before's: not a market move."""
    prev = np.concatenate([[np.nan], close[:-1]])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.abs(np.log(close / prev))
    bad = np.flatnonzero((close > 0) & (prev > 0) & (ratio > np.log(_MAX_DAILY_RATIO)))
    state.report(bad, "close", lambda pos: f"close {_fmt(close[pos])} is {close[pos] / prev[pos]:.3g} times the close "
                                           f"{_fmt(prev[pos])} of the row before (line {int(state.lines[pos - 1])}): "
                                           "no future moves that much in a day",
                 "check the price's unit and decimal point")


def _check_order(frame: pd.DataFrame, text: pd.DataFrame, lines: np.ndarray, state: _State):
    """The rows' keys unique (`_check_duplicates`) and their dates increasing (`_check_dates_increase`), with
    --repair's drops and sort; returns the frame and its lines as they are after both."""
    frame, lines = _check_duplicates(frame, text, lines, state)
    return _check_dates_increase(frame, lines, state)


def _check_duplicates(frame: pd.DataFrame, text: pd.DataFrame, lines: np.ndarray, state: _State):
    """Repeated keys (date and the contract's key columns) reported at their later lines, with the first's
    line; --repair drops exact copies. Returns the frame and lines without the rows dropped."""
    contract = state.contract
    date_col = contract.date_column
    keys = [date_col, *contract.key]
    # Rows whose key did not parse are already reported; the others are still checked.
    keyed = np.flatnonzero(frame[keys].notna().all(axis=1).to_numpy())
    sub = frame.iloc[keyed]
    dup = sub.duplicated(subset=keys, keep=False).to_numpy()
    # Whole-row comparison only where a key repeats (hashing every cell of 10⁶ rows costs seconds).
    exact_rows = np.zeros(len(text), dtype=bool)
    if dup.any():
        exact_rows = text.duplicated(keep="first").to_numpy()
    drop = np.zeros(len(frame), dtype=bool)
    # Each repeated key's first line, by array (a file of every contract on every date repeats 10⁶ keys).
    first_line = np.zeros(len(frame), dtype=np.int64)
    exact, conflicting, several = [], [], False
    if dup.any():
        group = sub.groupby(keys, sort=False).ngroup().to_numpy()
        first = ~sub.duplicated(subset=keys, keep="first").to_numpy()
        first_of_group = np.empty(group.max() + 1, dtype=np.int64)
        first_of_group[group[first]] = keyed[first]
        repeated = dup & ~first
        first_line[keyed[repeated]] = np.asarray(lines)[first_of_group[group[repeated]]]
        later = keyed[repeated]  # in file order
        copies = exact_rows[later]
        if state.repair:
            for pos in later[copies]:
                state.fixed(int(pos), None, f"dropped exact duplicate of line {first_line[pos]}")
            drop[later[copies]] = True
            exact = []
        else:
            exact = later[copies].tolist()
        conflicting = later[~copies].tolist()
        several = "symbol" in frame.columns and len(keys) == 1 and bool(np.any(
            frame["symbol"].to_numpy()[later] != frame["symbol"].to_numpy()[first_of_group[group[repeated]]]))
    what = "date" if len(keys) == 1 else "row for " + ", ".join(keys)
    # A file of every contract on every date (an exchange's full daily report) is not one series.
    hint = ("rows of several contracts on one date: a futures file is one series, a row a date — keep one "
            "contract's rows, or each date's main contract (the most open interest)") if several else ""

    def duplicate(pos: int) -> str:
        key = tuple(frame[k].iat[pos] for k in keys)
        rest = " " + " ".join(map(str, key[1:])) if len(key) > 1 else ""
        return f"duplicate {what} {_day(key[0])}{rest} (first on line {first_line[pos]})"

    state.report(exact, date_col, duplicate, "an exact copy of the first: --repair drops exact duplicates")
    state.report(conflicting, date_col, duplicate, hint)
    if drop.any():
        keep = ~drop
        frame, lines = frame.loc[keep].reset_index(drop=True), lines[keep]
        state.lines = lines
    return frame, lines


def _check_dates_increase(frame: pd.DataFrame, lines: np.ndarray, state: _State):
    """Dates that go back reported (--repair sorts a file whose keys all parsed), else the gaps checked.
    Returns the frame and lines, sorted when repaired."""
    date_col = state.contract.date_column
    keys = [date_col, *state.contract.key]
    keyed = np.flatnonzero(frame[keys].notna().all(axis=1).to_numpy())
    values = frame[date_col].iloc[keyed]
    order_key = values.astype("int64") if isinstance(values.dtype, pd.PeriodDtype) else values
    running = order_key.cummax().shift(1)
    back = (order_key < running).to_numpy()
    if not back.any():
        _check_gaps(frame, keyed, state)
        return frame, lines
    if state.repair and len(keyed) == len(frame):
        order = np.argsort(order_key.to_numpy(), kind="stable")
        state.fixed(None, date_col, f"sorted rows by {date_col}: {int(back.sum())} rows were out of order")
        frame, lines = frame.iloc[order].reset_index(drop=True), lines[order]
        state.lines = lines
        _check_gaps(frame, np.arange(len(frame)), state)
        return frame, lines
    state.report(keyed[np.flatnonzero(back)], date_col,
                 lambda pos: f"{date_col} {_day(frame[date_col].iat[pos])} comes after a later date "
                             f"({_day(frame[date_col].iloc[keyed[keyed < pos]].max())}): dates must increase",
                 "--repair sorts the rows by date" if len(keyed) == len(frame) else "")
    return frame, lines


def _check_gaps(frame: pd.DataFrame, keyed: np.ndarray, state: _State) -> None:
    """A daily series whose consecutive trading days lie more than `_MAX_GAP_DAYS` apart: located, not a return."""
    if state.contract.kind not in _DAILY or len(keyed) < 2:
        return
    days = frame[state.contract.date_column].iloc[keyed].to_numpy()
    step = np.diff(days).astype("timedelta64[D]").astype(np.int64)
    after = keyed[1:][step > _MAX_GAP_DAYS]
    if not len(after):
        return
    before = {int(b): int(a) for a, b in zip(keyed[:-1][step > _MAX_GAP_DAYS], after)}
    date_col = state.contract.date_column

    def gap(pos: int) -> str:
        prev = before[pos]
        span = (frame[date_col].iat[pos] - frame[date_col].iat[prev]).days
        return (f"{_day(frame[date_col].iat[pos])} is {span:,} days after the previous trading day "
                f"{_day(frame[date_col].iat[prev])} (line {int(state.lines[prev])}): no exchange closes for more "
                f"than {_MAX_GAP_DAYS} days, so a return across it is not a daily return")

    state.report(after, date_col, gap, "check the year of the date, or add the missing rows")
