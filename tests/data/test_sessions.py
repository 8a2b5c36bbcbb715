"""Data dates against a pack's trading calendar: the packs' holidays match the exchange's own sessions, and
data past the calendar (or on a closed day) are located errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from opl.data.importer import import_files
from opl.data.loaders import DataError
from opl.data.sessions import calendar_problems
from opl.runtime.market.calendars import calendar_covers, is_trading_day
from opl.runtime.market.rules import load_pack

SERIES = Path(__file__).resolve().parents[3] / "shared" / "data" / "jujube" / "cj_continuous_daily.csv"
MISSING_ROW = dt.date(2019, 7, 17)  # a Wednesday, no holiday: the series lacks the row


@pytest.mark.skipif(not SERIES.exists(), reason="../shared/data is not present")
@pytest.mark.parametrize("pack", ["czce_cj", "sse_50etf"])
def test_the_packs_closed_weekdays_are_the_exchanges_own(pack):
    p = load_pack(pack)
    sessions = set(pd.read_csv(SERIES, parse_dates=["date"])["date"].dt.date)
    span = pd.bdate_range(p.calendar.holidays_from, max(sessions)).date
    closed = {d for d in span if not is_trading_day(p, d)}
    gaps = {d for d in span if d not in sessions}
    assert gaps - closed == {MISSING_ROW}
    assert closed - gaps == set()


def test_coverage_has_both_ends():
    cj = load_pack("czce_cj")
    assert calendar_covers(cj, dt.date(2019, 5, 6)) and not calendar_covers(cj, dt.date(2019, 5, 3))
    assert calendar_covers(cj, dt.date(2026, 12, 31)) and not calendar_covers(cj, dt.date(2027, 1, 4))


def _bars(days) -> pd.DataFrame:
    n = len(days)
    return pd.DataFrame({"trading_date": [d.isoformat() for d in days], "open": [10000] * n, "high": [10100] * n,
                         "low": [9900] * n, "close": [10050] * n, "settlement": [10040] * n})


def test_data_past_the_calendar_are_refused_at_the_first_such_row(tmp_path):
    days = [d.date() for d in pd.bdate_range("2026-12-28", "2027-01-08") if d.date() != dt.date(2027, 1, 1)]
    path = tmp_path / "bars.csv"
    _bars(days).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        import_files([path], tmp_path / "out", pack="czce_cj")
    problem = info.value.problems[0]
    first_past = days.index(next(d for d in days if d.year == 2027))
    assert (problem.row, problem.column) == (first_past + 2, "trading_date")
    assert "past the czce_cj pack's calendar (holidays listed through 2026-12-31)" in problem.message
    assert "runtime/market/packs/czce_cj.toml" in problem.message
    # Without a pack nothing says which days the exchange closes: the import runs.
    assert import_files([path], tmp_path / "out2").written["futures"].exists()


def test_a_row_on_a_listed_holiday_is_located(tmp_path):
    days = [dt.date(2024, 9, 13), dt.date(2024, 9, 16), dt.date(2024, 9, 18)]  # 16 Sep 2024: Mid-Autumn
    path = tmp_path / "bars.csv"
    _bars(days).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        import_files([path], tmp_path / "out", pack="czce_cj")
    problem = info.value.problems[0]
    assert problem.row == 3 and "2024-09-16 is a holiday in the czce_cj pack's calendar" in problem.message


def test_missing_sessions_are_noted():
    days = pd.Series(pd.to_datetime(["2024-06-03", "2024-06-05"]))
    problems, notes = calendar_problems(days, load_pack("czce_cj"), file="f.csv")
    assert problems == [] and "1 trading days of the czce_cj calendar" in notes[0] and "2024-06-04" in notes[0]


def test_a_backtest_refuses_data_past_the_calendar(tmp_path):
    from opl.backtesting.market import load_market

    days = [d.date() for d in pd.bdate_range("2026-12-21", "2027-01-15")]
    (tmp_path / "futures.csv").write_text(_bars(days).to_csv(index=False), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_market(tmp_path, pack=load_pack("czce_cj"))
    assert "2027-01-01 is past the czce_cj pack's calendar" in info.value.problems[0].message


def test_rows_before_the_calendar_are_kept_with_the_assumption_stated(tmp_path):
    from opl.backtesting.market import load_market

    days = [d.date() for d in pd.bdate_range("2019-04-25", "2019-05-10")]
    path = tmp_path / "futures.csv"
    _bars(days).to_csv(path, index=False)
    result = import_files([path], tmp_path / "out", pack="czce_cj")
    (note,) = [n for n in result.files[0].notes if "before the czce_cj pack's calendar" in n]
    assert note.startswith(f"{path}:2: column `trading_date`: 7 day(s) from 2019-04-25")
    assert "holidays listed from 2019-05-06" in note and "taken as sessions as the file gives them" in note
    assert note in result.log.read_text(encoding="utf-8")
    # 1-3 May 2019 (Labour Day) are weekdays in the file: before the calendar nothing can say they were closed.
    assert any("before the czce_cj pack's calendar" in n for n in load_market(tmp_path, pack=load_pack("czce_cj"))
               .notes())
    inside = tmp_path / "inside.csv"
    _bars([d for d in days if d >= dt.date(2019, 5, 6)]).to_csv(inside, index=False)
    assert not any("before" in n for n in import_files([inside], tmp_path / "out2", pack="czce_cj").files[0].notes)


def test_expiries_outside_the_calendar_are_said_in_compile_and_simulate(tmp_path):
    from opl import check_file
    from opl.compiler.strategy import compile_checked
    from opl.runtime.market.calendars import coverage, uncovered

    cj = load_pack("czce_cj")
    assert coverage(cj) == "czce_cj calendar: holidays listed 2019-05-06 … 2026-12-31"
    assert uncovered(cj, [dt.date(2026, 12, 30)]) is None
    assert "2027-02-10 outside the czce_cj calendar" in uncovered(cj, [dt.date(2027, 2, 10), dt.date(2026, 6, 1)])
    text = Path("examples/jujube/strangle.opl").read_text(encoding="utf-8")
    late, early = tmp_path / "late.opl", tmp_path / "early.opl"
    moved = text.replace("time 2026-01-05", "time 2026-12-20").replace("Future(2026-05-15)", "Future(2027-05-14)")
    late.write_text(moved, encoding="utf-8")
    early.write_text(text, encoding="utf-8")
    assert "time 2026-01-05" in text and "Future(2026-05-15)" in text
    notes = compile_checked(check_file(str(late))).strategy.notes
    (note,) = [n for n in notes if n.startswith("listed expiries")]
    assert note.startswith("listed expiries 2027-02-11 outside the czce_cj calendar: holidays listed 2019-05-06 … "
                           "2026-12-31: computed with weekends only")
    assert not any(n.startswith("listed expiries") for n in compile_checked(check_file(str(early))).strategy.notes)


def test_simulate_states_the_calendar_it_used():
    import json

    from click.testing import CliRunner

    from opl.cli import main

    result = CliRunner().invoke(main, ["simulate", "examples/jujube/strangle.opl", "--paths", "50", "--json", "-",
                                       "--set", "experiment.horizon=1"])
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert any(n.startswith("czce_cj calendar: holidays listed 2019-05-06 … 2026-12-31; a simulated month is")
               for n in notes)
