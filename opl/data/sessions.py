"""Data dates against a rule pack's trading calendar: fail loudly past it, report where they disagree.

A pack lists its exchange's holidays for ``holidays_from`` … ``holidays_through``
(:class:`opl.runtime.market.rules.CalendarSpec`); outside that span only weekends are known, so
an expiry or a trading-day count computed there may be off by a holiday. Data that run
past the calendar are therefore refused with a located error naming the first such row
and the pack file to extend (from the exchange's holiday notice). Within the span:

* a row dated on a weekend or a listed holiday is a located error (the date is wrong, or
  the pack is);
* a trading day of the pack with no row is reported in a note (a missing row, or an
  unlisted closure), with the first few dates.

Before ``holidays_from`` the exchange's closures are not listed either: rows dated there
are kept with the assumption stated in a located note (their days are taken as sessions as
the file gives them, unchecked; an expiry the pack computes there counts weekends only).
:func:`opl.runtime.market.calendars.coverage` is the one-line statement of a pack's span that the
commands print.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from opl.data.loaders import Problem

__all__ = ["calendar_problems", "calendar_span"]

_SHOWN = 5


def calendar_span(pack) -> tuple[dt.date | None, dt.date | None]:
    """First and last day whose holidays the pack lists."""
    cal = pack.calendar
    return cal.holidays_from, cal.holidays_through


def calendar_problems(dates, pack, *, file: str, lines=None, column: str = "trading_date",
                      within: bool = True) -> tuple[list[Problem], list[str]]:
    """Problems (data past the calendar; with ``within``, rows on closed days) and notes (missing days).

    Parameters
    ----------
    dates : array-like of dates
        The file's trading dates, in file order (repeats allowed, as in an option chain).
    pack : RulePack
    file, lines, column
        Where the dates come from (``lines``: the source row of each; default row number + 2).
    within : bool
        Also compare the dates with the calendar inside its span.
    """
    from opl.runtime.market.calendars import is_trading_day

    days = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates))).date
    lines = np.arange(2, len(days) + 2) if lines is None else np.asarray(lines)
    start, end = calendar_span(pack)
    problems: list[Problem] = []
    notes: list[str] = []
    source = f"runtime/market/packs/{pack.name}.toml"
    if end is None:
        return [Problem(file, None, column, f"the {pack.name} pack lists no holidays (calendar.holidays_through): "
                                            f"its trading days are unknown; list them in {source}")], notes
    past = np.flatnonzero(np.array([d > end for d in days]))
    if len(past):
        i = past[0]
        problems.append(Problem(file, int(lines[i]), column,
                                f"{days[i]} is past the {pack.name} pack's calendar (holidays listed through {end}): "
                                f"{len(np.unique(days[past]))} trading days from here would be computed without their "
                                f"holidays; add them to {source} from the exchange's holiday notice"))
    before = np.flatnonzero(np.array([start is not None and d < start for d in days]))
    if len(before):
        i = before[0]
        notes.append(f"{file}:{int(lines[i])}: column `{column}`: {len(np.unique(days[before]))} day(s) from {days[i]} "
                     f"are before the {pack.name} pack's calendar (holidays listed from {start}): taken as sessions "
                     "as the file gives them, unchecked; an expiry the pack computes there counts weekends only")
    if not within:
        return problems, notes
    covered = [d for d in np.unique(days) if (start is None or d >= start) and d <= end]
    closed = {d for d in covered if not is_trading_day(pack, d)}
    if closed:
        for i in np.flatnonzero(np.array([d in closed for d in days])):
            kind = "a weekend" if _is_weekend(pack, days[i]) else "a holiday"
            problems.append(Problem(file, int(lines[i]), column,
                                    f"{days[i]} is {kind} in the {pack.name} pack's calendar: the date or the pack "
                                    "is wrong"))
            if len(problems) > 20:
                break
    if covered:
        expected = pd.bdate_range(covered[0], covered[-1]).date
        missing = [d for d in expected if is_trading_day(pack, d) and d not in set(covered)]
        if missing:
            shown = ", ".join(map(str, missing[:_SHOWN])) + (" …" if len(missing) > _SHOWN else "")
            notes.append(f"{len(missing)} trading days of the {pack.name} calendar between {covered[0]} and "
                         f"{covered[-1]} have no row ({shown}): missing rows, or closures the pack does not list")
    return problems, notes


def _is_weekend(pack, day: dt.date) -> bool:
    return day.weekday() in pack.calendar.weekend_days
