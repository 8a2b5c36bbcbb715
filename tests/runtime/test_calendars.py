"""Trading calendars, expiry rules of the three packs, listed series and ACT/365F."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from opl.runtime.market.calendars import (
    Expiry,
    add_trading_days,
    apply_rule,
    calendar_covers,
    expiry_date,
    is_trading_day,
    last_trading_date,
    listed_expiries,
    next_trading_day,
    previous_trading_day,
    trading_days_between,
    trading_days_in_month,
    year_fraction,
)
from opl.runtime.market.rules import ContractCodeError, NthLastTradingDayOnOrBefore, RulePackError, load_pack

D = dt.date
REF = D(2026, 1, 5)


@pytest.fixture(scope="module")
def cj():
    return load_pack("czce_cj")


@pytest.fixture(scope="module")
def sse():
    return load_pack("sse_50etf")


@pytest.fixture(scope="module")
def us():
    return load_pack("us_equity")


def _with_holiday(pack, day):
    cal = pack.calendar.model_copy(update={"holidays": pack.calendar.holidays + (day,)})
    return pack.model_copy(update={"calendar": cal})


# ------------------------------------------------------------------ trading days

def test_weekends_and_holidays(cj):
    assert is_trading_day(cj, D(2026, 4, 7))
    assert not is_trading_day(cj, D(2026, 4, 4))      # Saturday
    assert not is_trading_day(cj, D(2026, 4, 6))      # Qingming (Monday)
    assert not is_trading_day(cj, D(2025, 10, 8))     # National Day week
    assert next_trading_day(cj, D(2026, 2, 14)) == D(2026, 2, 24)  # Spring Festival: closed 16-23 Feb
    assert previous_trading_day(cj, D(2026, 2, 23)) == D(2026, 2, 13)
    assert next_trading_day(cj, D(2026, 2, 13), inclusive=False) == D(2026, 2, 24)


def test_trading_day_arithmetic(cj):
    assert add_trading_days(cj, D(2026, 2, 13), 1) == D(2026, 2, 24)
    assert add_trading_days(cj, D(2026, 2, 24), -1) == D(2026, 2, 13)
    assert add_trading_days(cj, D(2026, 2, 14), 0) == D(2026, 2, 24)
    # (Fri 13 Feb, Tue 24 Feb]: only the 24th trades.
    assert trading_days_between(cj, D(2026, 2, 13), D(2026, 2, 24)) == 1
    assert trading_days_between(cj, D(2026, 2, 24), D(2026, 2, 13)) == -1
    assert trading_days_between(cj, D(2026, 3, 2), D(2026, 3, 2)) == 0
    # April 2026: 22 weekdays minus Qingming (6 Apr) = 21.
    assert len(trading_days_in_month(cj, 2026, 4)) == 21


def test_a_months_trading_days_are_its_days_that_trade(cj, sse, us):
    # trading_days_in_month reads the calendar's weekend and holidays once a month (a listed expiry's rule
    # reads ~300 months); every day it keeps or drops is is_trading_day's verdict on it.
    for pack in (cj, sse, us, _with_holiday(cj, D(2026, 4, 8))):
        for year, month in [(y, m) for y in (2007, 2019, 2025, 2026, 2027) for m in range(1, 13)]:
            days = [D(year, month, 1) + dt.timedelta(days=i) for i in range(31)]
            expected = [d for d in days if d.month == month and is_trading_day(pack, d)]
            assert trading_days_in_month(pack, year, month) == expected


def test_calendar_coverage(cj):
    assert calendar_covers(cj, D(2026, 12, 31))
    assert not calendar_covers(cj, D(2027, 1, 4))


# ------------------------------------------------------------------ CZCE jujube

def test_cj605_option_expiry(cj):
    # CJ605: delivery May 2026, so the month before is April 2026. Trading days on or
    # before Wed 15 Apr: ..., 9, 10, 13, 14, 15 (6 Apr is Qingming). Third to last: Mon 13 Apr.
    assert expiry_date(cj, "CJ605", reference=REF) == D(2026, 4, 13)


@pytest.mark.parametrize("month, expected, why", [
    ("2026-01", D(2025, 12, 11), "Dec 2025: <=15th trading days end 11, 12, 15 -> Thu 11"),
    ("2026-03", D(2026, 2, 11), "Feb 2026: 15th is a Sunday; ... 11, 12, 13 -> Wed 11"),
    ("2025-09", D(2025, 8, 13), "Aug 2025: 13, 14, 15 -> Wed 13"),
    ("2025-01", D(2024, 12, 11), "Dec 2024: 15th is a Sunday; 11, 12, 13 -> Wed 11"),
    ("2025-12", D(2025, 11, 12), "Nov 2025: 15th is a Saturday; 12, 13, 14 -> Wed 12"),
])
def test_cj_expiries_from_2401(cj, month, expected, why):
    assert expiry_date(cj, month) == expected, why


def test_cj_rule_before_2401(cj):
    # Contract months before 2401: the 3rd trading day of the month before delivery.
    # CJ309: August 2023 starts Tue 1 -> 1, 2, 3 -> Thu 3 Aug (no holiday then).
    assert expiry_date(cj, "2023-09") == D(2023, 8, 3)
    assert expiry_date(cj, "2024-01") == D(2023, 12, 13)  # 2401 uses the new rule: Dec 13, 14, 15


def test_cj_no_series_for_non_delivery_month(cj):
    with pytest.raises(RulePackError, match="no option series for contract month 2026-04"):
        expiry_date(cj, "2026-04")


def test_cj_futures_last_trading_day(cj):
    # 10th trading day of May 2026: May 1, 4, 5 closed -> 6, 7, 8, 11, 12, 13, 14, 15, 18, 19.
    assert last_trading_date(cj, "CJ605", reference=REF) == D(2026, 5, 19)
    with pytest.raises(RulePackError, match="not a delivery month"):
        last_trading_date(cj, "2026-06")


def test_cj_listed_expiries(cj):
    series = listed_expiries(cj, after=REF, count=3)
    assert series == [Expiry(D(2026, 3, 1), D(2026, 2, 11)), Expiry(D(2026, 5, 1), D(2026, 4, 13)),
                      Expiry(D(2026, 7, 1), D(2026, 6, 11))]
    assert series[1].code_month == "2605"
    # On an expiry day that series is no longer "after": the next one leads.
    assert listed_expiries(cj, after=D(2026, 4, 13), count=1)[0].contract_month == D(2026, 7, 1)


def test_rule_on_or_before_a_short_month(cj):
    rule = NthLastTradingDayOnOrBefore(rule="nth_last_trading_day_on_or_before", n=1, day=31)
    assert apply_rule(rule, cj, D(2026, 2, 1)) == D(2026, 2, 27)  # day 31 clipped to the month's end


# ------------------------------------------------------------------ SSE 50ETF

@pytest.mark.parametrize("month, expected", [
    ("2025-01", D(2025, 1, 22)),   # Jan 2025 Wednesdays: 1, 8, 15, 22
    ("2025-02", D(2025, 2, 26)),   # 5, 12, 19, 26
    ("2025-10", D(2025, 10, 22)),  # 1 (holiday, still counted), 8, 15, 22
    ("2026-01", D(2026, 1, 28)),   # 7, 14, 21, 28
    ("2026-06", D(2026, 6, 24)),   # 3, 10, 17, 24
])
def test_sse_fourth_wednesday(sse, month, expected):
    assert expiry_date(sse, month) == expected


def test_sse_holiday_rolls_to_next_trading_day(sse):
    # If the 4th Wednesday is closed, expiry moves to the next trading day (Thu 29 Jan).
    assert expiry_date(_with_holiday(sse, D(2026, 1, 28)), "2026-01") == D(2026, 1, 29)


def test_sse_listing_two_near_months_two_quarterlies(sse):
    months = [e.contract_month.month for e in listed_expiries(sse, after=REF, count=10)]
    assert months == [1, 2, 3, 6]
    # After the January expiry, February becomes the near month.
    months = [e.contract_month.month for e in listed_expiries(sse, after=D(2026, 1, 28), count=4)]
    assert months == [2, 3, 6, 9]


# ------------------------------------------------------------------ US third Friday

@pytest.mark.parametrize("month, expected", [
    ("2026-01", D(2026, 1, 16)),
    ("2026-07", D(2026, 7, 17)),
    ("2025-01", D(2025, 1, 17)),
    ("2025-04", D(2025, 4, 17)),   # third Friday 18 Apr 2025 is Good Friday: preceding business day
])
def test_us_third_friday(us, month, expected):
    assert expiry_date(us, month) == expected


def test_us_listed_monthlies(us):
    assert [e.expiry for e in listed_expiries(us, after=D(2025, 4, 17), count=2)] == [
        D(2025, 5, 16), D(2025, 6, 20)]


# ------------------------------------------------------------------ ACT/365F

def test_year_fraction_act365f():
    assert year_fraction(D(2026, 1, 5), D(2026, 2, 4)) == pytest.approx(30 / 365)
    assert year_fraction(D(2024, 1, 1), D(2025, 1, 1)) == pytest.approx(366 / 365)  # leap year: ACT days
    assert year_fraction(D(2026, 2, 4), D(2026, 1, 5)) == pytest.approx(-30 / 365)
    assert year_fraction("2026-01-05", "2026-01-05") == 0.0
    assert year_fraction(dt.datetime(2026, 1, 5, 12), dt.datetime(2026, 1, 6)) == pytest.approx(0.5 / 365)


def test_year_fraction_vectorised():
    starts = np.array(["2026-01-05", "2026-01-05", "2026-03-01"], dtype="datetime64[D]")
    out = year_fraction(starts, D(2026, 4, 13))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, np.array([98, 98, 43]) / 365)


def test_expiry_of_a_one_digit_year_code_needs_its_quote_date():
    with pytest.raises(ContractCodeError, match="one-digit year"):
        expiry_date(load_pack("czce_cj"), "CJ605")
