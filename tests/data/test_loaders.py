"""Loaders: every bad-CSV case gets its documented, located error; repairs only when asked, and logged."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from opl.data.contracts import FUTURES, normalise_direction
from opl.data.loaders import DataError, load, load_factors, load_futures, load_options, load_signals

HEADER = "trading_date,symbol,open,high,low,close,settlement,prev_settlement,volume,open_interest,total_turnover"
GOOD = [
    "2024-06-03,CJ409,10000,10100,9950,10050,10040,10000,1000,5000,50200000",
    "2024-06-04,CJ409,10050,10150,10000,10100,10080,10040,1100,5100,55440000",
    "2024-06-05,CJ409,10100,10200,10050,10150,10120,10080,1200,5200,60720000",
    "2024-06-06,CJ409,10150,10250,10100,10200,10170,10120,1300,5300,66105000",
]


def write(tmp_path, rows, header=HEADER, name="fut.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def replace_cell(row: str, column: str, value: str, header: str = HEADER) -> str:
    cells = row.split(",")
    cells[header.split(",").index(column)] = value
    return ",".join(cells)


def error_of(path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_futures(path, **kwargs)
    return info.value


def test_good_file_loads_every_row_with_types(tmp_path):
    result = load_futures(write(tmp_path, GOOD), limit=0.10, tick=5)
    frame = result.frame
    assert list(frame.columns) == list(FUTURES.names)
    assert len(frame) == len(GOOD)
    assert frame["trading_date"].dtype.kind == "M"
    assert frame["close"].tolist() == [10050, 10100, 10150, 10200]
    assert result.lines.tolist() == [2, 3, 4, 5]
    assert result.repairs == []


# (column to break, row index, bad value, expected message fragment)
CELL_CASES = [
    ("close", 2, "abc", "cannot parse 'abc' as a number"),
    ("trading_date", 1, "2024-13-40", "as a date"),
    ("open", 0, "", "missing value"),
    ("low", 3, "-5", "negative price"),
    ("settlement", 2, "0", "price is 0"),
    ("volume", 1, "-3", "negative value"),
    ("symbol", 2, "", "missing value"),
]


@pytest.mark.parametrize("column, index, value, message", CELL_CASES)
def test_bad_cell_is_located_by_line_and_column(tmp_path, column, index, value, message):
    rows = list(GOOD)
    rows[index] = replace_cell(rows[index], column, value)
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (index + 2, column)
    assert message in error.message
    assert str(error).startswith(f"{tmp_path / 'fut.csv'}:{index + 2}: column `{column}`:")


def test_missing_column_is_reported_on_the_header_line(tmp_path):
    header = HEADER.replace(",settlement", "")
    rows = [",".join(c for i, c in enumerate(r.split(",")) if i != 6) for r in GOOD]
    error = error_of(write(tmp_path, rows, header=header))
    assert (error.row, error.column) == (1, "settlement")
    assert "missing required futures column" in error.message


def test_high_below_low(tmp_path):
    rows = list(GOOD)
    rows[1] = replace_cell(replace_cell(rows[1], "high", "9990"), "low", "10010")
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (3, "high")
    assert "below low" in error.message


@pytest.mark.parametrize("column", ["close", "settlement", "open"])
def test_price_outside_the_days_range(tmp_path, column):
    rows = list(GOOD)
    rows[2] = replace_cell(rows[2], column, "10300")
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (4, column)
    assert "outside the day's range" in error.message


def test_settlement_outside_the_daily_limit(tmp_path):
    rows = list(GOOD)
    # prev_settlement 10080 with a 10% limit allows at most 11088 (+ one 5-point tick).
    rows[2] = replace_cell(replace_cell(replace_cell(rows[2], "high", "11200"), "settlement", "11100"),
                           "close", "11100")
    error = error_of(write(tmp_path, rows), limit=0.10, tick=5)
    located = {(p.row, p.column) for p in error.problems}
    assert located == {(4, "high"), (4, "close"), (4, "settlement")}
    assert "daily limit ±10%" in error.message
    # Without a limit the same file is valid: the check is opt-in.
    assert len(load_futures(write(tmp_path, rows)).frame) == 4


def test_duplicate_and_backward_dates(tmp_path):
    rows = list(GOOD)
    rows[2] = replace_cell(rows[2], "trading_date", "2024-06-04")
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (4, "trading_date")
    assert "duplicate date 2024-06-04 (first on line 3)" in error.message
    rows = [GOOD[0], GOOD[2], GOOD[1], GOOD[3]]
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (4, "trading_date")
    assert "dates must increase" in error.message


def test_every_problem_is_collected(tmp_path):
    rows = list(GOOD)
    rows[0] = replace_cell(rows[0], "close", "x")
    rows[3] = replace_cell(rows[3], "volume", "-1")
    error = error_of(write(tmp_path, rows))
    assert [(p.row, p.column) for p in error.problems] == [(2, "close"), (5, "volume")]


def test_blank_line_is_an_error_unless_repaired(tmp_path):
    rows = [GOOD[0], "", GOOD[1], GOOD[2]]
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column, error.message) == (3, None, "blank line")
    result = load_futures(write(tmp_path, rows), repair=True)
    assert len(result.frame) == 3
    assert result.lines.tolist() == [2, 4, 5]
    assert [(r.row, r.action) for r in result.repairs] == [(3, "dropped blank line")]


def test_zero_settlement_repaired_from_close_and_logged(tmp_path):
    rows = list(GOOD)
    rows[1] = replace_cell(rows[1], "settlement", "0")
    result = load_futures(write(tmp_path, rows), repair=True)
    assert result.frame["settlement"].iloc[1] == result.frame["close"].iloc[1]
    (fix,) = result.repairs
    assert (fix.row, fix.column, fix.old) == (3, "settlement", "0")


def test_thousands_separator_only_with_repair(tmp_path):
    rows = list(GOOD)
    rows[0] = rows[0].replace(",1000,", ',"1,000",')
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (2, "volume")
    result = load_futures(write(tmp_path, rows), repair=True)
    assert result.frame["volume"].iloc[0] == 1000
    assert result.repairs[0].action == "removed thousands separators"


def test_exact_duplicate_dropped_only_when_repairing_and_sorting_logged(tmp_path):
    rows = [GOOD[0], GOOD[1], GOOD[1], GOOD[3], GOOD[2]]
    error = error_of(write(tmp_path, rows))
    assert {(p.row, p.column) for p in error.problems} == {(4, "trading_date"), (6, "trading_date")}
    result = load_futures(write(tmp_path, rows), repair=True)
    assert result.frame["trading_date"].is_monotonic_increasing and len(result.frame) == 4
    assert result.lines.tolist() == [2, 3, 6, 5]
    actions = [r.action for r in result.repairs]
    assert actions[0] == "dropped exact duplicate of line 3" and actions[1].startswith("sorted rows")


def test_conflicting_duplicate_stays_an_error_even_with_repair(tmp_path):
    rows = [GOOD[0], GOOD[1], replace_cell(GOOD[1], "close", "10110"), GOOD[3]]
    error = error_of(write(tmp_path, rows), repair=True)
    assert (error.row, error.column) == (4, "trading_date")


def test_malformed_line_is_located(tmp_path):
    rows = list(GOOD)
    rows[2] = rows[2] + ",extra"
    error = error_of(write(tmp_path, rows))
    assert error.row == 4 and "malformed CSV" in error.message


def test_vendor_aliases_are_used_and_noted(tmp_path):
    path = tmp_path / "cont.csv"
    path.write_text(textwrap.dedent("""\
        date,open,high,low,close,volume,hold,settle
        2019-05-06,8820,8900,8620,8665,349204,57284,8745
        2019-05-07,8710,8720,8545,8615,301676,70904,8620
        """), encoding="utf-8")
    result = load_futures(path)
    assert {"trading_date", "settlement", "open_interest"} <= set(result.frame.columns)
    assert "column `settle` read as `settlement`" in result.notes
    assert any(n.startswith("optional columns absent: symbol") for n in result.notes)


def test_signals_directions_and_levels(tmp_path):
    path = write(tmp_path, [
        "2024-01-02,9500,10500,UP,team", "2024-02-01,9400,10400,down,team", "2024-03-01,9300,10300,涨,team",
        "2024-04-01,9200,10200,震荡,team", "2024-05-06,9100,10100,Flat,team", "2024-06-03,9000,10000,跌,team",
    ], header="date,support,resistance,direction,source", name="sig.csv")
    frame = load_signals(path).frame
    assert frame["direction"].tolist() == ["up", "down", "up", "flat", "flat", "down"]
    bad = write(tmp_path, ["2024-01-02,9500,10500,sideways,team", "2024-02-01,10400,10400,up,team"],
                header="date,support,resistance,direction,source", name="bad.csv")
    with pytest.raises(DataError) as info:
        load_signals(bad)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "direction"), (3, "resistance")]
    assert "up/down/flat" in info.value.problems[0].message


def test_normalise_direction_spellings():
    assert [normalise_direction(v) for v in ("Up", "DOWN", " flat ", "涨", "跌", "震荡", "")] == [
        "up", "down", "flat", "up", "down", "flat", None]


OPT_HEADER = HEADER + ",strike_price,option_type,expiry,contract_multiplier"


def test_options_untraded_strikes_may_leave_prices_empty(tmp_path):
    rows = ["2024-06-03,CJ409C10000,120,130,110,125,124,118,10,100,6200,10000,C,2024-08-12,5",
            "2024-06-03,CJ409P10000,,,,,80,85,0,100,0,10000,put,2024-08-12,5"]
    frame = load_options(write(tmp_path, rows, header=OPT_HEADER, name="opt.csv")).frame
    assert frame["option_type"].tolist() == ["C", "P"]
    assert np.isnan(frame["close"].iloc[1]) and frame["settlement"].iloc[1] == 80


@pytest.mark.parametrize("index, column, value, message", [
    (12, "option_type", "X", "option type"),
    (13, "expiry", "2024-06-01", "before the trading date"),
    (6, "settlement", "", "missing value"),
])
def test_bad_option_rows(tmp_path, index, column, value, message):
    row = "2024-06-03,CJ409C10000,120,130,110,125,124,118,10,100,6200,10000,C,2024-08-12,5".split(",")
    row[index] = value
    with pytest.raises(DataError) as info:
        load_options(write(tmp_path, [",".join(row)], header=OPT_HEADER, name="opt.csv"))
    assert (info.value.row, info.value.column) == (2, column)
    assert message in info.value.message


def test_options_duplicate_symbol_on_a_day(tmp_path):
    row = "2024-06-03,CJ409C10000,120,130,110,125,124,118,10,100,6200,10000,C,2024-08-12,5"
    with pytest.raises(DataError) as info:
        load_options(write(tmp_path, [row, row.replace(",125,", ",126,")], header=OPT_HEADER, name="opt.csv"))
    assert (info.value.row, info.value.column) == (3, "trading_date")


def test_factors_months(tmp_path):
    path = write(tmp_path, ["2024-01,0.5,1.2", "2024-02,-0.1,0.3", "202403,0.2,0.1"],
                 header="month,inventory,new_crop", name="fac.csv")
    frame = load_factors(path).frame
    assert [str(m) for m in frame["month"]] == ["2024-01", "2024-02", "2024-03"]
    bad = write(tmp_path, ["2024-01,0.5,1.2", "Jan,0.1,", "2024-01,0.2,0.1"],
                header="month,inventory,new_crop", name="badfac.csv")
    with pytest.raises(DataError) as info:
        load_factors(bad)
    assert [(p.row, p.column) for p in info.value.problems] == [(3, "month"), (3, "new_crop"), (4, "month")]
    assert "duplicate date 2024-01 (first on line 2)" in info.value.problems[2].message
    only_month = write(tmp_path, ["2024-01"], header="month", name="nofac.csv")
    with pytest.raises(DataError, match="at least one numeric column"):
        load_factors(only_month)


def test_empty_file_and_unknown_kind(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="file is empty"):
        load_futures(path)
    with pytest.raises(ValueError, match="unknown kind"):
        load(write(tmp_path, GOOD), kind="bonds")
    header_only = write(tmp_path, [], name="header.csv")
    with pytest.raises(DataError) as info:
        load_futures(header_only)
    (problem,) = info.value.problems
    assert (problem.row, problem.message) == (1, "the file has a header but no rows")


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(write(tmp_path, GOOD))
    frame.loc[2, "close"] = -1.0
    frame.to_parquet(tmp_path / "fut.parquet")
    with pytest.raises(DataError) as info:
        load_futures(tmp_path / "fut.parquet")
    assert (info.value.row, info.value.column) == (3, "close")


# --------------------------------------------------------------------------- issue 12: what a data file can do


def test_a_date_with_a_time_zone_is_a_located_error_not_a_traceback(tmp_path):
    rows = list(GOOD)
    rows[1] = replace_cell(rows[1], "trading_date", "2024-06-04T15:00:00+08:00")
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (3, "trading_date")
    assert "time zone" in error.message and "YYYY-MM-DD" in str(error)
    every = [replace_cell(r, "trading_date", f"2024-06-0{3 + i}T15:00:00Z") for i, r in enumerate(GOOD)]
    error = error_of(write(tmp_path, every, name="all.csv"))
    assert error.problems[0].count == 4 and "time zone" in error.message


def test_a_header_naming_a_column_twice_is_an_error(tmp_path):
    header = HEADER.replace("settlement,prev_settlement", "close,prev_settlement")
    error = error_of(write(tmp_path, GOOD, header=header))
    assert (error.row, error.column) == (1, "close")
    assert "more than once" in error.message


def test_rows_after_a_multi_line_cell_keep_their_physical_line(tmp_path):
    rows = list(GOOD)
    rows[0] = replace_cell(rows[0], "symbol", '"CJ\n409"')
    rows[2] = replace_cell(rows[2], "close", "x")
    error = error_of(write(tmp_path, rows))
    # header 1, the two-line row 2-3, then 4, and the bad row on line 5
    assert (error.row, error.column) == (5, "close")


def test_a_malformed_line_after_a_multi_line_cell_is_its_physical_line(tmp_path):
    rows = list(GOOD)
    rows[0] = replace_cell(rows[0], "symbol", '"CJ\n409"')
    rows[2] = rows[2] + ",extra"
    error = error_of(write(tmp_path, rows))  # pandas counts records: it says line 4
    assert error.row == 5 and "malformed CSV" in error.message


def test_every_row_with_one_field_too_many_is_not_read_shifted(tmp_path):
    error = error_of(write(tmp_path, [r + "," for r in GOOD]))
    assert error.row == 2 and "malformed CSV" in error.message


def test_an_implausible_gap_between_trading_days_is_located(tmp_path):
    rows = list(GOOD)
    for i in (2, 3):
        rows[i] = replace_cell(rows[i], "trading_date", rows[i].split(",")[0].replace("2024", "2243"))
    error = error_of(write(tmp_path, rows))
    assert (error.row, error.column) == (4, "trading_date")
    assert "2243-06-05 is 79,988 days after the previous trading day 2024-06-04 (line 3)" in error.message
    holiday = list(GOOD)
    holiday[3] = replace_cell(holiday[3], "trading_date", "2024-06-17")  # 12 days: a Spring Festival closure
    assert len(load_futures(write(tmp_path, holiday, name="holiday.csv")).frame) == 4


def _long(n: int) -> list[str]:
    days = pd.bdate_range("2024-01-02", periods=n).strftime("%Y-%m-%d")
    return [f"{d},CJ409,10000,10100,9950,10050,10040,10000,1000,5000,50200000" for d in days]


def test_a_cause_repeated_down_a_column_is_reported_once_with_its_count_and_fix(tmp_path):
    rows = [r.replace(",1000,5000,50200000", ',"1,000","5,000","50,200,000"') for r in _long(300)]
    error = error_of(write(tmp_path, rows))
    assert [(p.column, p.count, p.row, p.last) for p in error.problems] == [
        ("volume", 300, 2, 301), ("open_interest", 300, 2, 301), ("total_turnover", 300, 2, 301)]
    assert all("--repair removes thousands separators" in str(p) for p in error.problems)
    assert "(and 299 more like it in this column, the last on line 301)" in str(error.problems[0])
    assert len(error.problems[0].located_rows) == 300
    assert len(load_futures(write(tmp_path, rows), repair=True).frame) == 300


@pytest.mark.parametrize("fmt, order", [("%m/%d/%Y", "MM/DD/YYYY"), ("%d/%m/%Y", "DD/MM/YYYY")])
def test_dates_in_another_order_are_one_problem_naming_the_format(tmp_path, fmt, order):
    rows = _long(40)
    rows = [replace_cell(r, "trading_date", pd.Timestamp(r[:10]).strftime(fmt)) for r in rows]
    (problem,) = error_of(write(tmp_path, rows)).problems
    assert problem.count == 40 and f"written {order}" in problem.message and "YYYY-MM-DD" in problem.fix


def test_a_file_in_another_delimiter_or_no_csv_at_all_is_one_problem(tmp_path):
    semi = write(tmp_path, [r.replace(",", ";") for r in GOOD], header=HEADER.replace(",", ";"), name="semi.csv")
    (problem,) = error_of(semi).problems
    assert problem.row == 1 and "semicolon" in problem.message
    readme = tmp_path / "README.md"
    readme.write_text("# Data\n\nSome prose.\n\nMore prose\n", encoding="utf-8")
    (problem,) = error_of(readme).problems
    assert problem.row == 1 and "not a CSV futures file" in problem.message


def test_a_zero_settlement_says_repair_handles_it(tmp_path):
    rows = list(GOOD)
    rows[1] = replace_cell(rows[1], "settlement", "0")
    assert "--repair replaces a missing or 0 settlement by the close" in str(error_of(write(tmp_path, rows)))


def test_the_shown_lines_are_capped_with_a_summary():
    from opl.data.loaders import Problem, shown

    problems = [Problem("f.csv", row, "close", f"problem {row}") for row in range(2, 40)]
    lines = shown(problems, limit=5)
    assert lines[:5] == [f"f.csv:{row}: column `close`: problem {row}" for row in range(2, 7)]
    assert lines[5] == "... and 33 more problems not shown (38 in all)" and len(lines) == 6
    assert str(DataError(problems)).count("\n") == 20


def test_names_and_values_from_the_file_cannot_break_a_line():
    from opl.data.loaders import Problem

    text = str(Problem("f\u2028.csv", 3, "clo\nse", "cannot parse 'a\u2029b' as a number"))
    assert len(text.splitlines()) == 1


def test_a_close_ten_times_the_day_before_is_a_unit_error_not_a_move(tmp_path):
    rows = list(GOOD)
    rows[2] = "2024-06-05,CJ409,1010000,1020000,1005000,1015000,1012000,10080,1200,5200,60720000"
    error = error_of(write(tmp_path, rows))
    assert [(p.row, p.column) for p in error.problems] == [(4, "close"), (5, "close")]
    assert "close 1,015,000 is 100 times the close 10,100 of the row before (line 3)" in error.message
    assert "decimal point" in error.problems[0].fix


def test_a_file_of_every_contract_each_date_is_refused_with_what_to_do(tmp_path):
    """An exchange's full daily report (every contract on every date) is not one series: one located error for
    all its repeated dates, each pointing at its own date's first line, and the hint to keep one series."""
    days = pd.bdate_range("2024-06-03", periods=40).strftime("%Y-%m-%d")
    frame = pd.DataFrame({"trading_date": np.repeat(days, 3), "symbol": np.tile(["CJ409", "CJ501", "CJ505"], 40),
                          "open": 10000, "high": 10100, "low": 9900, "close": 10050, "settlement": 10040})
    frame.loc[frame["symbol"] == "CJ501", "close"] = 10060  # not exact copies of the first row of the date
    path = tmp_path / "all_contracts.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_futures(path)
    (problem,) = info.value.problems
    assert (problem.row, problem.column, problem.count, problem.last) == (3, "trading_date", 80, 121)
    assert problem.message == "duplicate date 2024-06-03 (first on line 2)"
    assert problem.fix.startswith("rows of several contracts on one date: a futures file is one series")
    # One contract repeated on a date is no such file: no hint.
    frame["symbol"] = "CJ501"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_futures(path)
    assert info.value.problems[0].fix == ""
