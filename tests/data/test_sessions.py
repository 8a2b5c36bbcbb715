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
    span = pd.bdate_range(min(sessions), max(sessions)).date  # the series' own span, 2019-05-06 on
    closed = {d for d in span if not is_trading_day(p, d)}
    gaps = {d for d in span if d not in sessions}
    assert gaps - closed == {MISSING_ROW}
    assert closed - gaps == set()


@pytest.mark.parametrize("pack", ["czce_cj", "sse_50etf"])
def test_coverage_has_both_ends(pack):
    p = load_pack(pack)
    assert calendar_covers(p, dt.date(2007, 1, 1)) and not calendar_covers(p, dt.date(2006, 12, 29))
    assert calendar_covers(p, dt.date(2026, 12, 31)) and not calendar_covers(p, dt.date(2027, 1, 4))


#: Closures from the SSE's yearly notices [XSHG-HIST] that a weekday rule cannot guess: the WWII parade
#: (3-4 Sep 2015), the make-up holiday of 31 Dec 2018, the 2008 Olympic-year Mid-Autumn and National Day.
HISTORY = [dt.date(2015, 9, 3), dt.date(2015, 9, 4), dt.date(2018, 12, 31), dt.date(2008, 9, 15),
           dt.date(2008, 9, 29), dt.date(2007, 12, 31), dt.date(2019, 5, 3)]


@pytest.mark.parametrize("pack", ["czce_cj", "sse_50etf"])
def test_the_calendars_run_back_to_2007_from_the_sse_notices(pack):
    p = load_pack(pack)
    assert not any(is_trading_day(p, d) for d in HISTORY)
    # The 50ETF options' first day, and a normal week of 2012: sessions.
    assert is_trading_day(p, dt.date(2015, 2, 9)) and all(is_trading_day(p, dt.date(2012, 3, d)) for d in range(5, 10))
    # 2007-2026: 20 years of notices, 359 weekday closures; each year has its Spring Festival and National Day.
    years = {d.year for d in p.calendar.holiday_set}
    assert years == set(range(2007, 2027)) and len(p.calendar.holiday_set) == 359
    for year in years:
        assert any(d.month == 10 and d.day <= 8 for d in p.calendar.holiday_set if d.year == year), year


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

    days = [d.date() for d in pd.bdate_range("2006-12-20", "2007-01-10") if not dt.date(2007, 1, 1) <= d.date() <= dt.date(2007, 1, 3)]
    path = tmp_path / "futures.csv"
    _bars(days).to_csv(path, index=False)
    result = import_files([path], tmp_path / "out", pack="czce_cj")
    (note,) = [n for n in result.files[0].notes if "before the czce_cj pack's calendar" in n]
    assert note.startswith(f"{path}:2: column `trading_date`: 8 day(s) from 2006-12-20")
    assert "holidays listed from 2007-01-01" in note and "taken as sessions as the file gives them" in note
    assert note in result.log.read_text(encoding="utf-8")
    # Before the calendar nothing can say which weekdays were closed: the file's rows are taken as they are.
    assert any("before the czce_cj pack's calendar" in n for n in load_market(tmp_path, pack=load_pack("czce_cj"))
               .notes())
    inside = tmp_path / "inside.csv"
    _bars([d for d in days if d >= dt.date(2007, 1, 4)]).to_csv(inside, index=False)
    assert not any("before" in n for n in import_files([inside], tmp_path / "out2", pack="czce_cj").files[0].notes)


def test_expiries_outside_the_calendar_are_said_in_compile_and_simulate(tmp_path):
    from opl import check_file
    from opl.compiler.strategy import compile_checked
    from opl.runtime.market.calendars import coverage, uncovered

    cj = load_pack("czce_cj")
    assert coverage(cj) == "czce_cj calendar: holidays listed 2007-01-01 … 2026-12-31"
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
    assert note.startswith("listed expiries 2027-02-11 outside the czce_cj calendar: holidays listed 2007-01-01 … "
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
    assert any(n.startswith("czce_cj calendar: holidays listed 2007-01-01 … 2026-12-31; a simulated month is")
               for n in notes)


def _chain(codes, day="2026-12-01") -> pd.DataFrame:
    n = len(codes)
    return pd.DataFrame({"trading_date": [day] * n, "symbol": codes, "open": [500] * n, "high": [520] * n,
                         "low": [480] * n, "close": [510] * n, "settlement": [505] * n, "volume": [10] * n,
                         "open_interest": [100] * n})


def test_an_expiry_derived_past_the_calendar_is_refused_at_its_row(tmp_path):
    # CJ701 (the 3rd-to-last trading day on or before 15 Dec 2026) is covered; CJ703's expiry falls in Feb 2027,
    # the month of the 2027 Spring Festival, which no notice lists yet.
    path = tmp_path / "chain.csv"
    _chain(["CJ701C10000", "CJ701P10000", "CJ703C10000", "CJ703P10000"]).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        import_files([path], tmp_path / "out", pack="czce_cj")
    (problem,) = info.value.problems
    assert (problem.file, problem.row, problem.column) == (str(path), 4, "symbol")
    assert problem.message.startswith("the expiry of 'CJ703C10000' by the czce_cj pack's rule, 2027-02-11, lies "
                                      "outside the czce_cj calendar: holidays listed 2007-01-01 … 2026-12-31")
    assert "runtime/market/packs/czce_cj.toml" in problem.message and "`expiry` column" in problem.message
    # Within the calendar the same import runs, and an expiry the file gives is the file's, not the rule's.
    _chain(["CJ701C10000", "CJ701P10000"]).to_csv(path, index=False)
    assert import_files([path], tmp_path / "out", pack="czce_cj").written["options"].exists()
    given = _chain(["CJ703C10000", "CJ703P10000"]).assign(expiry="2027-02-01")
    given.to_csv(path, index=False)
    assert import_files([path], tmp_path / "out3", pack="czce_cj").written["options"].exists()
