"""Trading calendars and expiry rules of the rule packs.

A pack's calendar is weekends plus a listed set of holidays; outside its
``holidays_from`` … ``holidays_through`` span only weekends are known, so dates
computed there can be off by a holiday (:func:`calendar_covers` tells; data past the
span are refused by ``opl data import --pack`` and the backtest, :mod:`opl.data.sessions`). Expiry rules are the
named kinds of :mod:`opl.runtime.market.rules` (``nth_last_trading_day_on_or_before``,
``nth_weekday_of_month``, ``third_friday``...), chosen in the pack's TOML.

Year fractions are ACT/365F (DESIGN.md: a tenor ``Nd`` is N calendar days);
trading-day counts are here for callers that ask for an exchange calendar.

>>> import datetime as dt
>>> from opl.runtime.market.rules import load_pack
>>> expiry_date(load_pack("czce_cj"), "CJ605", reference=dt.date(2026, 1, 5))
datetime.date(2026, 4, 13)
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
from dataclasses import dataclass

import numpy as np

from opl.runtime.market.rules import (
    WEEKDAYS,
    CalendarSpec,
    NthLastTradingDay,
    NthLastTradingDayOnOrBefore,
    NthTradingDay,
    NthWeekdayOfMonth,
    RulePack,
    RulePackError,
    ThirdFriday,
    contract_month,
)

__all__ = [
    "Expiry", "is_trading_day", "next_trading_day", "previous_trading_day", "add_trading_days",
    "trading_days_between", "trading_days_in_month", "calendar_covers", "coverage", "uncovered", "outside_calendar",
    "apply_rule",
    "expiry_date", "last_trading_date", "listed_expiries", "year_fraction",
]

_ONE = dt.timedelta(days=1)


def _cal_of(obj: RulePack | CalendarSpec) -> CalendarSpec:
    return obj.calendar if isinstance(obj, RulePack) else obj


def is_trading_day(calendar: RulePack | CalendarSpec, day: dt.date) -> bool:
    """Whether ``day`` is neither a weekend day nor a listed holiday."""
    cal = _cal_of(calendar)
    return day.weekday() not in cal.weekend_days and day not in cal.holiday_set


def next_trading_day(calendar: RulePack | CalendarSpec, day: dt.date, *, inclusive: bool = True) -> dt.date:
    """The first trading day on (``inclusive``) or after ``day``."""
    d = day if inclusive else day + _ONE
    for _ in range(400):  # a year of closures would be a broken calendar, not a long holiday
        if is_trading_day(calendar, d):
            return d
        d += _ONE
    raise RulePackError(f"no trading day within 400 days after {day}: is every weekday a holiday?")


def previous_trading_day(calendar: RulePack | CalendarSpec, day: dt.date, *, inclusive: bool = True) -> dt.date:
    """The last trading day on (``inclusive``) or before ``day``."""
    d = day if inclusive else day - _ONE
    for _ in range(400):
        if is_trading_day(calendar, d):
            return d
        d -= _ONE
    raise RulePackError(f"no trading day within 400 days before {day}: is every weekday a holiday?")


def add_trading_days(calendar: RulePack | CalendarSpec, day: dt.date, n: int) -> dt.date:
    """Move ``n`` trading days from ``day`` (negative ``n`` goes back); ``n = 0`` rolls forward to a trading day."""
    if n == 0:
        return next_trading_day(calendar, day)
    d, step = day, (1 if n > 0 else -1)
    for _ in range(abs(n)):
        d = next_trading_day(calendar, d, inclusive=False) if step > 0 else previous_trading_day(
            calendar, d, inclusive=False)
    return d


def trading_days_between(calendar: RulePack | CalendarSpec, start: dt.date, end: dt.date) -> int:
    """Trading days in ``(start, end]``: the number of trading sessions from one close to another."""
    if end <= start:
        return -trading_days_between(calendar, end, start) if end < start else 0
    cal = _cal_of(calendar)
    mask = "".join("0" if i in cal.weekend_days else "1" for i in range(7))
    holidays = np.array(sorted(cal.holiday_set), dtype="datetime64[D]")
    lo = np.datetime64(start + _ONE, "D")
    hi = np.datetime64(end + _ONE, "D")
    return int(np.busday_count(lo, hi, weekmask=mask, holidays=holidays))


def trading_days_in_month(calendar: RulePack | CalendarSpec, year: int, month: int) -> list[dt.date]:
    """All trading days of a calendar month, in order."""
    cal = _cal_of(calendar)
    # The calendar's sets once a month, not once a day: each is looked up by value (a listed expiry's rule
    # reads about 300 months, and a loop's candidate is compiled several times).
    weekend, holidays = cal.weekend_days, cal.holiday_set
    last = _cal.monthrange(year, month)[1]
    return [d for d in (dt.date(year, month, i) for i in range(1, last + 1))
            if d.weekday() not in weekend and d not in holidays]


def calendar_covers(calendar: RulePack | CalendarSpec, day: dt.date) -> bool:
    """Whether the pack lists the holidays of ``day`` (``holidays_from`` … ``holidays_through``; outside,
    dates assume no holidays)."""
    cal = _cal_of(calendar)
    after_start = cal.holidays_from is None or day >= cal.holidays_from
    return cal.holidays_through is not None and day <= cal.holidays_through and after_start


def coverage(pack: RulePack) -> str:
    """The span of a pack's calendar in words: ``czce_cj calendar: holidays listed 2007-01-01 … 2026-12-31``."""
    start, end = pack.calendar.holidays_from, pack.calendar.holidays_through
    if end is None:
        return f"{pack.name} calendar: no holidays listed (weekends only)"
    return f"{pack.name} calendar: holidays listed {start or 'from its first year'} … {end}"


def uncovered(pack: RulePack, days) -> str | None:
    """A note for the dates of ``days`` outside the pack's calendar (weekends only there), or None."""
    outside = sorted({d for d in days if not calendar_covers(pack, d)})
    if not outside:
        return None
    shown = ", ".join(map(str, outside[:3])) + (" …" if len(outside) > 3 else "")
    return (f"{shown} outside the {coverage(pack)}: computed with weekends only, so possibly off by a holiday "
            f"(extend runtime/market/packs/{pack.name}.toml from the exchange's holiday notice)")


def outside_calendar(pack: RulePack, expiry: dt.date, what: str) -> str | None:
    """Why an expiry the pack's rule computed for ``what`` cannot be used as data, or None if the calendar covers it.

    Outside the listed span a rule counts weekends only, so the date can be days off (a CZCE
    expiry before the Spring Festival moves by the whole closure). Where such a date would be
    written into data, the callers (``opl data import``, the AKShare adapter) refuse it with
    this message at the row that needs it.
    """
    if calendar_covers(pack, expiry):
        return None
    return (f"the expiry of {what} by the {pack.name} pack's rule, {expiry}, lies outside the {coverage(pack)}: "
            f"counted with weekends only it may be off by a holiday; give the data an `expiry` column, or list "
            f"that year's holidays in runtime/market/packs/{pack.name}.toml from the exchange's holiday notice")


def _shift_month(month: dt.date, offset: int) -> tuple[int, int]:
    k = month.year * 12 + month.month - 1 + offset
    return k // 12, k % 12 + 1


def _pick(days: list[dt.date], index: int, what: str) -> dt.date:
    try:
        return days[index]
    except IndexError:
        raise RulePackError(f"the calendar has no {what}") from None


def _roll(calendar: CalendarSpec, day: dt.date, roll: str) -> dt.date:
    if roll == "none" or is_trading_day(calendar, day):
        return day
    return next_trading_day(calendar, day) if roll == "following" else previous_trading_day(calendar, day)


def apply_rule(rule, calendar: RulePack | CalendarSpec, month: dt.date) -> dt.date:
    """Evaluate one expiry/last-trading rule for the contract month ``month``.

    The rule's ``month_offset`` moves from the contract month to the month the
    date falls in (``-1``: the month before delivery).
    """
    cal = _cal_of(calendar)
    year, mon = _shift_month(month, rule.month_offset)
    label = f"{year}-{mon:02d}"
    if isinstance(rule, NthTradingDay):
        return _pick(trading_days_in_month(cal, year, mon), rule.n - 1, f"trading day {rule.n} in {label}")
    if isinstance(rule, NthLastTradingDay):
        return _pick(trading_days_in_month(cal, year, mon), -rule.n, f"trading day {rule.n} from the end of {label}")
    if isinstance(rule, NthLastTradingDayOnOrBefore):
        cut = min(rule.day, _cal.monthrange(year, mon)[1])
        days = [d for d in trading_days_in_month(cal, year, mon) if d.day <= cut]
        return _pick(days, -rule.n, f"{rule.n} trading days on or before {label}-{cut:02d}")
    if isinstance(rule, (NthWeekdayOfMonth, ThirdFriday)):
        n, weekday = (3, 4) if isinstance(rule, ThirdFriday) else (rule.n, WEEKDAYS.index(rule.weekday))
        first = dt.date(year, mon, 1)
        day = first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
        if day.month != mon:
            raise RulePackError(f"{label} has no weekday number {n} of that kind")
        return _roll(cal, day, rule.roll)
    raise RulePackError(f"unknown expiry rule {rule!r}")  # pragma: no cover - the pack model is closed


def _rule_for(rules, month: dt.date):
    key = f"{month.year:04d}-{month.month:02d}"
    chosen = None
    for rule in rules:  # sorted by from_month when the pack was validated
        if rule.from_month is None or rule.from_month <= key:
            chosen = rule
    if chosen is None:
        raise RulePackError(f"no expiry rule applies to contract month {key} (earliest from_month is "
                            f"{rules[0].from_month})")
    return chosen


def expiry_date(pack: RulePack, month, *, reference: dt.date | None = None) -> dt.date:
    """Option expiry for a contract month.

    Parameters
    ----------
    pack
        The rule pack.
    month
        The contract month: a ``date``, ``"YYYY-MM"``, ``(year, month)`` or a code
        such as ``"CJ605"`` (for futures options, the underlying's delivery month).
    reference
        The date a CZCE one-digit-year code was quoted on (see ``rules.resolve_year_digit``);
        required for such codes.
    """
    cm = contract_month(month, reference=reference)
    if cm.month not in pack.option.contract_months:
        raise RulePackError(f"{pack.name}: no option series for contract month {cm:%Y-%m} (months listed: "
                            f"{', '.join(map(str, pack.option.contract_months))})")
    return apply_rule(_rule_for(pack.option.expiry, cm), pack, cm)


def last_trading_date(pack: RulePack, month, *, reference: dt.date | None = None) -> dt.date:
    """Last trading day of the futures underlying for a delivery month."""
    rule = pack.underlying.last_trading
    if rule is None:
        raise RulePackError(f"{pack.name}: the underlying has no last-trading rule (underlying.last_trading)")
    cm = contract_month(month, reference=reference)
    months = pack.underlying.delivery_months or ()
    if cm.month not in months:
        raise RulePackError(f"{pack.name}: {cm:%Y-%m} is not a delivery month")
    return apply_rule(rule, pack, cm)


@dataclass(frozen=True)
class Expiry:
    """One listed option series: its contract month (first day) and expiry date."""

    contract_month: dt.date
    expiry: dt.date

    @property
    def code_month(self) -> str:
        """``YYMM`` of the contract month (``2605``)."""
        return f"{self.contract_month:%y%m}"


def listed_expiries(pack: RulePack, *, after: dt.date, count: int) -> list[Expiry]:
    """The next ``count`` option series expiring strictly after ``after``, in expiry order.

    When the pack has a ``listing`` rule (SSE: two near months and two
    quarterlies) only the series that rule lists are given, so fewer than
    ``count`` may come back.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    found: list[Expiry] = []
    start = dt.date(after.year, after.month, 1)
    # Expiries fall at most a year from their contract month; look 25 years ahead at most.
    for k in range(-12, 300):
        y, m = _shift_month(start, k)
        if m not in pack.option.contract_months:
            continue
        cm = dt.date(y, m, 1)
        exp = apply_rule(_rule_for(pack.option.expiry, cm), pack, cm)
        if exp > after:
            found.append(Expiry(cm, exp))
        if len(found) >= count + 24:
            break
    found.sort(key=lambda e: e.expiry)
    listing = pack.option.listing
    if listing is not None:
        near = found[:listing.consecutive]
        rest = [e for e in found[listing.consecutive:] if e.contract_month.month in listing.then_months]
        found = near + rest[:listing.then_count]
    return found[:count]


def year_fraction(start, end) -> float | np.ndarray:
    """ACT/365F year fraction from ``start`` to ``end`` (dates, datetimes, ISO strings or arrays).

    Negative when ``end`` precedes ``start``; vectorised over numpy arrays.
    """
    s = np.asarray(start).astype("datetime64[s]")
    e = np.asarray(end).astype("datetime64[s]")
    out = (e - s) / np.timedelta64(1, "D") / 365.0
    return float(out) if np.ndim(out) == 0 else out
