"""The bad-data suite: what a vendor's or a careless user's CSV can hold, through every command that reads data.

Each variant is a futures file (a few are option chains, views or factors) derived from one
synthetic series: another encoding, separator or line ending, dates in another format or with
a zone, duplicates, gaps, constant and extreme prices, cells spanning lines, broken structure.
For every variant:

* ``opl data validate`` ends with exit 0 or 1, never a traceback;
* every problem is located (a line, or the header, or the file when it is not text at all), and
  the rows reported are exactly the rows the variant broke — nothing else, nothing less;
* rows in = rows used + rows reported: a file that loads uses every row, and one that loads after
  ``--repair`` uses every row but those the repairs dropped, each of which is logged.

The variants the loader rejects then go through ``opl calibrate``, ``opl assumptions``, ``opl
backtest`` and ``opl simulate --data`` (in-process, through click's runner): each stops with exit 1
and the same located problem. Those that load (a GBK file, a BOM, CRLF, constant prices...) run
the four commands too, in the ``slow`` run; constant prices, which load but cannot be fitted, are
in the default run. The 10⁶-row file is ``slow``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.data.loaders import DataError, load

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = ROOT / "examples" / "jujube" / "strangle.opl"
PRICES = ("open", "high", "low", "close", "settlement", "prev_settlement")
N_ROWS = 260


@dataclass
class Case:
    """One CSV variant and what validating it must give."""

    text: bytes
    rows_in: int
    #: The physical lines reported without --repair; None: the file loads as it is.
    bad: set[int] | None = None
    #: A problem about the whole file or its header (no data row) is expected.
    header: bool = False
    #: Loads with --repair, every row used or dropped by a logged repair.
    repairable: bool = False
    kind: str = "futures"
    fragment: str = ""  # a text the first problem must contain


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from opl.data.synth import synthesize

    out = tmp_path_factory.mktemp("base")
    synthesize(seed=4, years=2, options=False).write(out)
    frame = pd.read_csv(out / "futures.csv", dtype=str, keep_default_na=False).iloc[:N_ROWS]
    return list(frame.columns), frame.to_numpy().tolist()


@pytest.fixture(scope="module")
def others(tmp_path_factory):
    """Option chains (the first 300 rows), views and factors of one synthetic year."""
    from opl.data.synth import synthesize

    out = tmp_path_factory.mktemp("others")
    synthesize(seed=4, years=1).write(out)
    tables = {}
    for kind, rows in (("options", 300), ("signals", None), ("factors", None)):
        frame = pd.read_csv(out / f"{kind}.csv", dtype=str, keep_default_na=False)
        frame = frame.iloc[:rows] if rows else frame
        tables[kind] = (list(frame.columns), frame.to_numpy().tolist())
    return tables


def serialise(header, rows, *, sep=",", newline="\n", encoding="utf-8", quote_all=False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator=newline,
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def _copy(rows):
    return [list(r) for r in rows]


def _col(header, name):
    return header.index(name)


def _set(header, rows, index, column, value):
    rows = _copy(rows)
    rows[index][_col(header, column)] = value
    return rows


def _line(index: int) -> int:
    """The physical line of data row ``index`` in a file with one header line and no multi-line cells."""
    return index + 2


# --------------------------------------------------------------------------- the variants


def _ok(h, r, **kw):
    return Case(serialise(h, r, **kw), len(r))


def _bad(h, r, lines, *, repairable=False, fragment="", **kw):
    return Case(serialise(h, r, **kw), len(r), bad=set(lines), repairable=repairable, fragment=fragment)


def _header_problem(h, r, fragment, **kw):
    return Case(serialise(h, r, **kw), len(r), bad={1}, header=True, fragment=fragment)


def _cells(h, r, column, fn, indices=None):
    rows = _copy(r)
    for i in indices if indices is not None else range(len(rows)):
        rows[i][_col(h, column)] = fn(rows[i][_col(h, column)])
    return rows


def _thousands(value: str) -> str:
    return f"{int(float(value)):,}"


def _dates(h, r, fmt):
    return _cells(h, r, "trading_date", lambda d: pd.Timestamp(d).strftime(fmt))


def _gbk_symbols(h, r):
    return _cells(h, r, "symbol", lambda s: "郑商所" + s)


def _multi_line(h, r):
    rows = _set(h, r, 3, "symbol", "CJ\n905")
    rows = _set(h, rows, 40, "close", "abc")
    return Case(serialise(h, rows), len(rows), bad={_line(40) + 1}, fragment="'abc'")


def _multi_line_then_ragged(h, r):
    text = serialise(h, _set(h, r, 3, "symbol", "CJ\n905")).decode().split("\n")
    text[_line(10)] += ",1"  # data row 10, one physical line further down
    return Case("\n".join(text).encode(), len(r), bad={_line(10) + 1}, fragment="malformed CSV")


def _multi_line_header(h, r):
    header = list(h)
    header[_col(h, "volume")] = "vol\nume"
    return Case(serialise(header, r), len(r), fragment="")  # an unknown column name, a note; the row lines shift


def _ragged(h, r, extra):
    text = serialise(h, r).decode()
    lines = text.split("\n")
    lines[10 + 1] += ",1" * extra  # data row 10
    return Case("\n".join(lines).encode(), len(r), bad={_line(10)}, fragment="malformed CSV")


def _short_row(h, r):
    rows = _copy(r)
    rows[20] = rows[20][:5]
    missing = len(h) - 5
    return Case(serialise(h, rows), len(rows), bad={_line(20)}, fragment="missing value") if missing else None


def _trailing_delimiter(h, r):
    rows = [row + [""] for row in r]
    return Case(serialise(h, rows), len(rows), bad={2}, fragment="malformed CSV")


def _scale(h, r, index, factor, columns=PRICES):
    rows = _copy(r)
    for c in columns:
        rows[index][_col(h, c)] = repr(float(rows[index][_col(h, c)]) * factor)
    return rows


def _constant(h, r):
    rows = _copy(r)
    for row in rows:
        for c in PRICES:
            row[_col(h, c)] = "9000"
    return Case(serialise(h, rows), len(rows), fragment="")


def _wrong_year(h, r, index, years):
    def shift(d):
        day = pd.Timestamp(d)
        return day.replace(year=day.year + years).strftime("%Y-%m-%d")
    return _cells(h, r, "trading_date", shift, range(index, len(r)))


def _drop(rows, start, stop):
    return rows[:start] + rows[stop:]


def _blank_lines(h, r, at, count=1):
    text = serialise(h, r).decode().split("\n")
    for _ in range(count):
        text.insert(at + 1, "")
    return Case("\n".join(text).encode(), len(r) + count, bad=set(range(at + 2, at + 2 + count)), repairable=True,
                fragment="blank line")


def _binary(h, r):
    return Case(bytes(range(256)) * 8, 0, header=True)


def _readme(h, r):
    return Case((ROOT / "README.md").read_bytes(), 0, header=True)


VARIANTS: dict[str, Callable] = {
    # encodings and structure that load
    "utf8": lambda h, r: _ok(h, r),
    "utf8_bom": lambda h, r: _ok(h, r, encoding="utf-8-sig"),
    "gbk_symbols": lambda h, r: _ok(h, _gbk_symbols(h, r), encoding="gb18030"),
    "utf8_symbols_chinese": lambda h, r: _ok(h, _gbk_symbols(h, r)),
    "crlf": lambda h, r: _ok(h, r, newline="\r\n"),
    "cr_only": lambda h, r: _ok(h, r, newline="\r"),
    "no_final_newline": lambda h, r: Case(serialise(h, r)[:-1], len(r)),
    "quote_all": lambda h, r: _ok(h, r, quote_all=True),
    "upper_case_header": lambda h, r: _ok([c.upper() for c in h], r),
    "padded_header_and_cells": lambda h, r: _ok([f" {c} " for c in h], [[f" {v} " for v in row] for row in r]),
    "vendor_aliases": lambda h, r: _ok([{"trading_date": "date", "settlement": "settle",
                                         "open_interest": "hold"}.get(c, c) for c in h], r),
    "extra_column": lambda h, r: _ok(h + ["comment"], [row + ["x"] for row in r]),
    "scientific_numbers": lambda h, r: _ok(h, _cells(h, r, "volume", lambda v: f"{float(v):e}")),
    "dates_compact": lambda h, r: _ok(h, _dates(h, r, "%Y%m%d")),
    "dates_with_time": lambda h, r: _ok(h, _dates(h, r, "%Y-%m-%d 15:00:00")),
    "control_chars_in_text": lambda h, r: _ok(h, _set(h, r, 5, "symbol", "CJ\x1b[31m905\u2028")),
    "huge_text_cell": lambda h, r: _ok(h, _set(h, r, 5, "symbol", "CJ905" * 200_000)),
    "multi_line_header": _multi_line_header,
    "constant_prices": _constant,
    "prices_times_1e12": lambda h, r: _ok(h, [_scale(h, [row], 0, 1e12)[0] for row in r]),
    "holiday_gap_12_days": lambda h, r: _ok(h, _drop(r, 100, 107)),
    # repairable
    "thousands_every_number": lambda h, r: _bad(h, _cells(h, _cells(h, r, "volume", _thousands), "total_turnover",
                                                          _thousands),
                                                {_line(i) for i in range(len(r))}, repairable=True,
                                                fragment="--repair removes thousands separators"),
    "thousands_one_cell": lambda h, r: _bad(h, _cells(h, r, "close", _thousands, [7]), {_line(7)}, repairable=True,
                                            fragment="thousands"),
    "zero_settlement": lambda h, r: _bad(h, _set(h, r, 9, "settlement", "0"), {_line(9)}, repairable=True,
                                         fragment="--repair replaces a missing or 0 settlement"),
    "empty_settlement": lambda h, r: _bad(h, _set(h, r, 9, "settlement", ""), {_line(9)}, repairable=True,
                                          fragment="missing value"),
    "blank_line": lambda h, r: _blank_lines(h, r, 30),
    "blank_lines_at_end": lambda h, r: _blank_lines(h, r, len(r), 3),
    "exact_duplicate_row": lambda h, r: _bad(h, r[:50] + [r[49]] + r[50:], {_line(50)}, repairable=True,
                                             fragment="duplicate date"),
    "one_row_out_of_order": lambda h, r: _bad(h, r[:60] + [r[61], r[60]] + r[62:], {_line(61)}, repairable=True,
                                              fragment="dates must increase"),
    "rows_reversed": lambda h, r: _bad(h, r[::-1], {_line(i) for i in range(1, len(r))}, repairable=True,
                                       fragment="dates must increase"),
    # dates
    "dates_us": lambda h, r: _bad(h, _dates(h, r, "%m/%d/%Y"), {_line(i) for i in range(len(r))},
                                  fragment="MM/DD/YYYY"),
    "dates_european": lambda h, r: _bad(h, _dates(h, r, "%d/%m/%Y"), {_line(i) for i in range(len(r))},
                                        fragment="DD/MM/YYYY"),
    "dates_dotted": lambda h, r: _bad(h, _dates(h, r, "%d.%m.%Y"), {_line(i) for i in range(len(r))}),
    "date_with_zone_one_row": lambda h, r: _bad(h, _set(h, r, 12, "trading_date", "2019-01-21T15:00:00+08:00"),
                                                {_line(12)}, fragment="time zone"),
    "dates_with_zone_every_row": lambda h, r: _bad(h, _dates(h, r, "%Y-%m-%dT15:00:00Z"),
                                                   {_line(i) for i in range(len(r))}, fragment="time zone"),
    "date_missing": lambda h, r: _bad(h, _set(h, r, 14, "trading_date", ""), {_line(14)}, fragment="missing"),
    "date_garbage": lambda h, r: _bad(h, _set(h, r, 14, "trading_date", "N/A"), {_line(14)}),
    "date_excel_serial": lambda h, r: _bad(h, _set(h, r, 14, "trading_date", "43500"), {_line(14)}),
    "date_impossible": lambda h, r: _bad(h, _set(h, r, 14, "trading_date", "2019-02-30"), {_line(14)}),
    "date_year_9999": lambda h, r: _bad(h, _set(h, r, len(r) - 1, "trading_date", "9999-12-31"), {_line(len(r) - 1)},
                                        fragment="days after"),
    # duplicates and gaps
    "conflicting_duplicate_date": lambda h, r: _bad(h, r[:50] + [_scale(h, [r[49]], 0, 1.001, ("settlement",))[0]]
                                                    + r[50:], {_line(50)}, fragment="duplicate date"),
    "gap_219_years": lambda h, r: _bad(h, _wrong_year(h, r, 150, 219), {_line(150)}, fragment="days after"),
    "gap_two_months_missing": lambda h, r: _bad(h, _drop(r, 100, 145), {_line(100)}, fragment="days after"),
    "duplicate_header_column": lambda h, r: _header_problem(
        [("close" if c == "settlement" else c) for c in h], r, "more than once"),
    "missing_required_column": lambda h, r: Case(serialise([c for c in h if c != "settlement"],
                                                           [row[:6] + row[7:] for row in r]), len(r), bad={1},
                                                 header=True, fragment="missing required"),
    # prices
    "price_negative": lambda h, r: _bad(h, _set(h, r, 20, "low", "-5"), {_line(20)}, fragment="negative"),
    "price_zero_close": lambda h, r: _bad(h, _set(h, r, 20, "close", "0"), {_line(20)}),
    "price_nan_text": lambda h, r: _bad(h, _set(h, r, 20, "close", "NaN"), {_line(20)}),
    "price_inf": lambda h, r: _bad(h, _set(h, r, 20, "close", "inf"), {_line(20)}),
    "price_decimal_comma": lambda h, r: _bad(h, _set(h, r, 20, "close", "9855,5"), {_line(20)}),
    "price_1e300_one_day": lambda h, r: _bad(h, _scale(h, r, 20, 1e300), {_line(20), _line(21)},
                                             fragment="no future moves that much"),
    "price_1e-300_from_a_day": lambda h, r: _bad(h, [*r[:20], *[_scale(h, [row], 0, 1e-300)[0] for row in r[20:]]],
                                                 {_line(20)}, fragment="no future moves that much"),
    "price_times_100_one_day": lambda h, r: _bad(h, _scale(h, r, 20, 100), {_line(20), _line(21)}),
    "high_below_low": lambda h, r: _bad(h, _set(h, _set(h, r, 25, "high", "1000"), 25, "low", "2000"), {_line(25)}),
    "close_outside_range": lambda h, r: _bad(h, _set(h, r, 25, "open", repr(float(r[25][_col(h, "high")]) + 500)),
                                             {_line(25)}, fragment="outside the day's range"),
    "volume_negative": lambda h, r: _bad(h, _set(h, r, 25, "volume", "-3"), {_line(25)}),
    "symbol_missing": lambda h, r: _bad(h, _set(h, r, 25, "symbol", ""), {_line(25)}),
    # structure
    "multi_line_cell": _multi_line,
    "multi_line_cell_then_ragged_row": _multi_line_then_ragged,
    "one_row_too_long": lambda h, r: _ragged(h, r, 2),
    "one_row_too_short": _short_row,
    "every_row_a_trailing_delimiter": _trailing_delimiter,
    "semicolon_separated": lambda h, r: _header_problem(h, r, "semicolon", sep=";"),
    "tab_separated": lambda h, r: _header_problem(h, r, "tab", sep="\t"),
    "pipe_separated": lambda h, r: _header_problem(h, r, "vertical bar", sep="|"),
    "header_only": lambda h, r: Case(serialise(h, []), 0, bad={1}, header=True, fragment="no rows"),
    "empty_file": lambda h, r: Case(b"", 0, header=True, fragment="empty"),
    "readme": _readme,
    "binary": _binary,
    "nul_bytes": lambda h, r: _bad(h, _set(h, r, 33, "close", "98\x0055"), {_line(33)}),
}


def _kind(kind: str, make: Callable) -> tuple[str, Callable]:
    def made(h, r):
        case = make(h, r)
        case.kind = kind
        return case
    return kind, made


OTHER_VARIANTS: dict[str, tuple[str, Callable]] = {
    "options_ok": _kind("options", lambda h, r: _ok(h, r)),
    "options_gbk": _kind("options", lambda h, r: _ok(h, r, encoding="gbk")),
    "options_type_chinese": _kind("options", lambda h, r: _ok(h, _cells(
        h, r, "option_type", lambda t: {"C": "看涨", "P": "看跌"}[t]), encoding="gb18030")),
    "options_type_bad": _kind("options", lambda h, r: _bad(h, _set(h, r, 7, "option_type", "X"), {_line(7)},
                                                           fragment="option type")),
    "options_expiry_before_date": _kind("options", lambda h, r: _bad(h, _set(h, r, 7, "expiry", "2018-01-01"),
                                                                     {_line(7)}, fragment="before the trading date")),
    "options_dates_us": _kind("options", lambda h, r: _bad(h, _dates(h, r, "%m/%d/%Y"),
                                                           {_line(i) for i in range(len(r))}, fragment="MM/DD/YYYY")),
    "options_same_code_twice_a_day": _kind("options", lambda h, r: _bad(
        h, r[:9] + [_set(h, [r[8]], 0, "settlement", "99999")[0]] + r[9:], {_line(9)}, fragment="duplicate row")),
    "signals_ok": _kind("signals", lambda h, r: _ok(h, r)),
    "signals_gbk_chinese_header": _kind("signals", lambda h, r: _ok(
        [{"support": "支撑", "resistance": "压力", "direction": "方向"}.get(c, c) for c in h], r, encoding="gbk")),
    "signals_direction_bad": _kind("signals", lambda h, r: _bad(h, _set(h, r, 3, "direction", "sideways"),
                                                                {_line(3)}, fragment="direction")),
    "signals_support_above_resistance": _kind("signals", lambda h, r: _bad(
        h, _set(h, r, 3, "support", "99999"), {_line(3)}, fragment="not above support")),
    "factors_ok": _kind("factors", lambda h, r: _ok(h, r)),
    "factors_month_words": _kind("factors", lambda h, r: _bad(h, _set(h, r, 2, "month", "Jan"), {_line(2)},
                                                              fragment="a month")),
    "factors_semicolons": _kind("factors", lambda h, r: Case(serialise(h, r, sep=";"), len(r), bad={1}, header=True,
                                                             fragment="semicolon")),
}


def _case(base, name) -> Case:
    header, rows = base
    return VARIANTS[name](list(header), _copy(rows))


def _write(tmp_path, case: Case) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    path = folder / f"{case.kind}.csv"
    path.write_bytes(case.text)
    return path


def _no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def _reported_rows(error: DataError) -> set[int]:
    return {row for p in error.problems for row in p.located_rows}


def test_there_are_at_least_sixty_variants():
    assert len(VARIANTS) + len(OTHER_VARIANTS) >= 60


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_validate_locates_every_problem_and_accounts_for_every_row(base, tmp_path, name):
    _validates(tmp_path, _case(base, name))


@pytest.mark.parametrize("name", sorted(OTHER_VARIANTS))
def test_option_view_and_factor_files_too(others, tmp_path, name):
    kind, make = OTHER_VARIANTS[name]
    header, rows = others[kind]
    _validates(tmp_path, make(list(header), _copy(rows)))


def _validates(tmp_path, case: Case) -> None:
    path = _write(tmp_path, case)
    result = CliRunner().invoke(main, ["data", "validate", str(path), "--kind", case.kind])
    _no_traceback(result)
    assert result.exit_code in (0, 1), result.output
    try:
        loaded = load(path, kind=case.kind)
    except DataError as error:
        assert result.exit_code == 1
        assert case.bad is not None or case.header, ("rejected a good file", str(error))
        if case.header:
            assert all(p.row in (None, 1) for p in error.problems), str(error)
        else:
            assert all(p.row is not None for p in error.problems), str(error)  # every problem on its line
            assert _reported_rows(error) == case.bad, str(error)  # exactly the rows broken, each of them
        assert case.fragment in str(error)
        assert len(result.output.splitlines()) <= 22  # one line a cause, capped, and the count
    else:
        assert case.bad is None and not case.header, ("accepted a bad file", loaded.summary())
        assert result.exit_code == 0
        assert len(loaded.frame) == case.rows_in  # every row used
        return
    if case.repairable:
        repaired = load(path, kind=case.kind, repair=True)
        dropped = sum(1 for fix in repaired.repairs if fix.action.startswith("dropped"))
        assert len(repaired.frame) + dropped == case.rows_in
        assert repaired.frame["trading_date"].is_monotonic_increasing


def _consumers(folder: Path, out: Path | None = None) -> dict[str, list[str]]:
    """The commands that read the futures file; with ``out``, each writes its JSON to ``out``/COMMAND.json."""
    commands = {
        "calibrate": ["calibrate", "--data", str(folder)],
        "assumptions": ["assumptions", "--futures", str(folder / "futures.csv")],
        "backtest": ["backtest", str(STRATEGY), "--data", str(folder), "-q"],
        "simulate": ["simulate", str(STRATEGY), "--data", str(folder), "--paths", "20", "--quiet",
                     "--set", "experiment.horizon=2", "--set", "experiment.sizes=[1]"],
    }
    if out is not None:
        for command, args in commands.items():
            args += ["--json", str(out / f"{command}.json")]
    return commands


#: Where each command's JSON describes the futures file it read (`LoadResult.describe`: rows used, repairs).
FUTURES_BLOCK: dict[str, Callable[[dict], dict]] = {
    "calibrate": lambda report: report["inputs"]["futures"],
    "assumptions": lambda report: report["data"]["futures"],
    "backtest": lambda report: report["data"]["inputs"]["futures"],
    "simulate": lambda report: report["model"]["calibration"]["inputs"]["futures"],
}


def _every_row_accounted_for(command: str, report: dict, case: Case) -> None:
    """rows in = rows used + rows reported, in what ``command`` writes: the file's rows plus those a logged
    repair dropped; a backtest's sessions traded or not (and why: before, between, after its cycles); the
    random-walk battery's returns used or excluded (roll days), one fewer than the rows."""
    block = FUTURES_BLOCK[command](report)
    dropped = sum(1 for fix in block["repairs"] if ": dropped " in fix)
    assert block["rows"] + dropped == case.rows_in, (command, block)
    if command == "backtest":
        assert sum(block["sessions"].values()) == block["rows"], block["sessions"]
        assert block["sessions"]["traded"] > 0
    if command == "assumptions":
        walk = report["random_walk"]
        assert walk["n"] + walk["n_excluded_roll_returns"] == block["rows"] - 1, walk


REJECTED = sorted(n for n in VARIANTS if n not in {
    "utf8", "utf8_bom", "gbk_symbols", "utf8_symbols_chinese", "crlf", "cr_only", "no_final_newline", "quote_all",
    "upper_case_header", "padded_header_and_cells", "vendor_aliases", "extra_column", "scientific_numbers",
    "dates_compact", "dates_with_time", "control_chars_in_text", "huge_text_cell", "multi_line_header",
    "constant_prices", "prices_times_1e12", "holiday_gap_12_days"})
ACCEPTED = sorted(set(VARIANTS) - set(REJECTED))


@pytest.mark.parametrize("name", REJECTED)
def test_every_command_stops_a_rejected_file_with_its_located_problem(base, tmp_path, name):
    case = _case(base, name)
    path = _write(tmp_path, case)
    try:
        load(path, kind="futures")
    except DataError as error:
        first = str(error.problems[0])
    else:
        pytest.fail(f"{name} loads")
    for command, args in _consumers(path.parent).items():
        result = CliRunner().invoke(main, args)
        _no_traceback(result)
        assert result.exit_code == 1, (command, result.output)
        assert first in result.output, (command, result.output)


def test_constant_prices_load_but_every_fit_says_why_it_cannot_run(base, tmp_path):
    path = _write(tmp_path, _case(base, "constant_prices"))
    for command in ("calibrate", "assumptions", "simulate"):
        result = CliRunner().invoke(main, _consumers(path.parent)[command])
        _no_traceback(result)
        assert result.exit_code == 1, (command, result.output)
        assert f"{path}:2: column `close`: the close never changes (lines 2–{N_ROWS + 1})" in result.output


def _runs_and_accounts(base, tmp_path, name) -> None:
    case = _case(base, name)
    path = _write(tmp_path, case)
    out = tmp_path / "out"
    out.mkdir()
    for command, args in _consumers(path.parent, out).items():
        result = CliRunner().invoke(main, args)
        _no_traceback(result)
        assert result.exit_code in (0, 1), (command, result.output)
        if result.exit_code == 1:  # only a located reason may stop it
            assert f"{path}:" in result.output or f"{STRATEGY}:" in result.output, (command, result.output)
        else:
            _every_row_accounted_for(command, json.loads((out / f"{command}.json").read_text()), case)
    _calibration_uses_every_row(path, case)


@pytest.mark.slow
@pytest.mark.parametrize("name", ACCEPTED)
def test_every_command_runs_an_accepted_file_or_says_why_not(base, tmp_path, name):
    _runs_and_accounts(base, tmp_path, name)


@pytest.mark.parametrize("name", ["holiday_gap_12_days", "dates_with_time"])
def test_every_command_uses_or_reports_every_row(base, tmp_path, name):
    # The slow run does this for every accepted variant.
    _runs_and_accounts(base, tmp_path, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in REJECTED if n.startswith(("thousands", "zero_settlement",
                                                                            "blank", "exact", "one_row_out",
                                                                            "rows_reversed", "empty_settlement"))))
def test_a_repaired_file_is_calibrated_on_every_row_not_dropped(base, tmp_path, name):
    case = _case(base, name)
    assert case.repairable
    _calibration_uses_every_row(_write(tmp_path, case), case, repair=True)


def test_a_repaired_file_is_calibrated_on_every_row_it_does_not_drop(base, tmp_path):
    case = _case(base, "exact_duplicate_row")
    _calibration_uses_every_row(_write(tmp_path, case), case, repair=True)


def _calibration_uses_every_row(path: Path, case: Case, *, repair: bool = False) -> None:
    """rows in = rows calibrated + rows a logged repair dropped (calibrate's JSON says both)."""
    import json

    result = CliRunner().invoke(main, ["calibrate", "--futures", str(path), "--json", "-",
                                       *(["--repair"] if repair else [])])
    _no_traceback(result)
    if result.exit_code != 0:  # constant prices: located, checked above
        assert f"{path}:" in result.output
        return
    futures = json.loads(result.stdout)["inputs"]["futures"]
    dropped = sum(1 for fix in futures["repairs"] if ": dropped " in fix)
    assert futures["rows"] + dropped == case.rows_in, futures


@pytest.mark.slow
def test_a_million_rows(base, tmp_path):
    header, rows = base
    days = pd.bdate_range("1900-01-01", periods=1_000_000).strftime("%Y-%m-%d")
    template = rows[0]
    body = [[d, "CJ905", *template[2:]] for d in days]
    body[777_777][_col(header, "close")] = "x"
    path = tmp_path / "futures.csv"
    path.write_bytes(serialise(header, body))
    result = CliRunner().invoke(main, ["data", "validate", str(path), "--kind", "futures"])
    _no_traceback(result)
    assert result.exit_code == 1 and f"{path}:{777_777 + 2}: column `close`: cannot parse 'x'" in result.output
    body[777_777][_col(header, "close")] = template[_col(header, "close")]
    path.write_bytes(serialise(header, body))
    assert len(load(path, kind="futures").frame) == 1_000_000


OTHER_REJECTED = sorted(n for n in OTHER_VARIANTS if not n.endswith(("_ok", "_gbk", "_chinese", "_chinese_header")))


@pytest.mark.parametrize("name", OTHER_REJECTED)
def test_a_rejected_chain_view_or_factor_file_stops_the_commands_that_read_it(base, others, tmp_path, name):
    kind, make = OTHER_VARIANTS[name]
    header, rows = others[kind]
    case = make(list(header), _copy(rows))
    path = _write(tmp_path, case)
    (path.parent / "futures.csv").write_bytes(serialise(*base))
    try:
        load(path, kind=kind)
    except DataError as error:
        first = str(error.problems[0])
    else:
        pytest.fail(f"{name} loads")
    readers = {
        "options": [["calibrate", "--data", str(path.parent)],
                    ["backtest", str(STRATEGY), "--data", str(path.parent), "-q"]],
        "signals": [["assumptions", "--futures", str(path.parent / "futures.csv"), "--signals", str(path)],
                    ["backtest", str(STRATEGY), "--data", str(path.parent), "-q"]],
        "factors": [["assumptions", "--futures", str(path.parent / "futures.csv"), "--factors", str(path)]],
    }[kind]
    for args in readers:
        result = CliRunner().invoke(main, args)
        _no_traceback(result)
        assert result.exit_code == 1, (args[0], result.output)
        assert first in result.output, (args[0], result.output)


def test_an_implied_calibration_names_every_row_it_read(tmp_path):
    # simulate --data with `calibration implied` reads the chain and the futures: its JSON says how many rows.
    from opl.data.synth import synthesize

    synthesize(seed=4, years=1).write(tmp_path)
    rows = {kind: len(pd.read_csv(tmp_path / f"{kind}.csv")) for kind in ("options", "futures")}
    strategy = tmp_path / "implied.opl"
    strategy.write_text(STRATEGY.read_text(encoding="utf-8").replace("calibration historical", "calibration implied"),
                        encoding="utf-8")
    out = tmp_path / "simulate.json"
    result = CliRunner().invoke(main, ["simulate", str(strategy), "--data", str(tmp_path), "--paths", "20", "-q",
                                       "--set", "experiment.horizon=1", "--set", "experiment.sizes=[1]",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    inputs = json.loads(out.read_text())["model"]["calibration"]["inputs"]
    assert {kind: inputs[kind]["rows"] for kind in rows} == rows
