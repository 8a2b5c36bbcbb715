"""A daily summary of listed options' implied volatility (no strikes, no expiries): level and dispersion.

The exchange's jujube file in ``../shared/data/jujube/cj_option_iv_daily.csv`` has one
row a day with the mean, minimum and maximum implied volatility of the listed CJ
options, their cross-sectional standard deviation (all in percent), the number of
contracts and the volume in lots (with thousands separators). Without strikes or
expiries it calibrates the *level* of implied volatility and its dispersion across
contracts, not a smile: the skew and curvature stay at the simulator's defaults when
this is the only option data.

Columns (Chinese as the exchange writes them, or the English names; every spelling
is in the one alias table, :mod:`opl.data.aliases`):

=======================  ==============  ===========================================
exchange                 English         meaning
=======================  ==============  ===========================================
交易日期                 ``date``        trading day
日均隐含波动率(%)        ``iv_mean``     mean implied volatility, percent
日最低隐含波动率(%)      ``iv_min``      lowest, percent
日最高隐含波动率(%)      ``iv_max``      highest, percent (the exchange's file caps it at 100)
日波动率标准差(%)        ``iv_std``      cross-sectional standard deviation, percent
日合约数量               ``contracts``   option contracts listed (optional)
成交量(手)               ``volume``      lots traded (optional; "18,257" is read as 18257)
=======================  ==============  ===========================================

Every cell is checked: a value that does not parse, a negative or above-100 percentage,
min > mean or mean > max, a repeated or out-of-order date is a located
:class:`opl.data.DataError` (file, line, column); nothing is dropped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opl.data.aliases import contract_aliases, header_key
from opl.data.loaders import ZONED, DataError, Problem, grouped, parse_dates

__all__ = ["IVSummary", "load_iv_summary", "COLUMNS"]

#: Header spelling -> column, from the one alias table (:mod:`opl.data.aliases`).
COLUMNS = contract_aliases(("date", "iv_mean", "iv_min", "iv_max", "iv_std", "contracts", "volume"), "date")
_REQUIRED = ("date", "iv_mean", "iv_min", "iv_max", "iv_std")
_PERCENT = ("iv_mean", "iv_min", "iv_max", "iv_std")
_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d*)?$")
_CAP = 100.0


@dataclass
class IVSummary:
    """The summary file, validated, as fractions (0.2943 for 29.43%)."""

    frame: pd.DataFrame = field(repr=False)
    file: str
    notes: list[str] = field(default_factory=list)

    @property
    def level(self) -> pd.Series:
        """The daily mean implied volatility, indexed by date."""
        return self.frame.set_index("date")["iv_mean"]

    def stats(self) -> dict:
        f = self.frame
        level = f["iv_mean"]
        return {"file": self.file, "days": int(len(f)), "first": str(f["date"].iloc[0].date()),
                "last": str(f["date"].iloc[-1].date()), "mean": float(level.mean()), "median": float(level.median()),
                "p01": float(level.quantile(0.01)), "p05": float(level.quantile(0.05)),
                "p95": float(level.quantile(0.95)), "min": float(level.min()), "max": float(level.max()),
                "dispersion_mean": float(f["iv_std"].mean()), "range_mean": float((f["iv_max"] - f["iv_min"]).mean()),
                "capped_days": int((f["iv_max"] >= _CAP / 100.0).sum()), "notes": list(self.notes)}

    def summary(self) -> str:
        s = self.stats()
        return (f"Implied volatility summary {self.file}: {s['days']} days {s['first']} … {s['last']}, mean IV "
                f"{s['mean']:.1%} (median {s['median']:.1%}, 5-95% {s['p05']:.1%}-{s['p95']:.1%}), "
                f"cross-sectional sd {s['dispersion_mean']:.1%} on average; {s['capped_days']} days with the "
                "maximum at the 100% cap")


def _read(path: Path) -> tuple[pd.DataFrame, str | None]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding), (
                None if encoding == "utf-8-sig" else encoding)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise DataError([Problem(str(path), None, None, "file is empty")]) from None
        except pd.errors.ParserError as error:
            raise DataError([Problem(str(path), None, None, f"malformed CSV: {error}")]) from None
    raise DataError([Problem(str(path), None, None, "not UTF-8 or GB18030 text")])


def load_iv_summary(path: str | os.PathLike) -> IVSummary:
    """Read and validate a summary file (module docstring).

    Raises
    ------
    DataError
        Located problems, all of them.
    OSError
        The file cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    name = str(path)
    raw, encoding = _read(path)
    notes = [f"read as {encoding}, not UTF-8"] if encoding else []
    raw = raw.rename(columns={col: COLUMNS.get(header_key(col), header_key(col)) for col in raw.columns})
    problems = [Problem(name, 1, c, "required column missing") for c in _REQUIRED if c not in raw.columns]
    if problems:
        raise DataError(problems)
    lines = np.arange(2, len(raw) + 2)
    out = pd.DataFrame(index=raw.index)
    out["date"], problems = _dates(raw, lines, name)
    separators = 0
    for col in _PERCENT + ("contracts", "volume"):
        if col in raw.columns:
            out[col], found, separators = _numbers(raw, col, lines, name, separators)
            problems += found
    if separators:
        notes.append(f"{separators} volume values read with thousands separators")
    problems += _row_checks(out, lines, name)
    if not len(out):
        problems.append(Problem(name, None, None, "no rows"))
    if problems:
        raise DataError(sorted(problems, key=lambda p: p.row or 0))
    return IVSummary(frame=out.reset_index(drop=True), file=name, notes=notes)


def _dates(raw: pd.DataFrame, lines: np.ndarray, name: str) -> tuple[pd.Series, list[Problem]]:
    """The ``date`` column parsed, and a problem per cell that is not a date. A zone makes the trading day
    depend on where it is read: such a cell is not a date here."""
    dates = parse_dates(raw["date"], format="mixed")
    zoned = raw["date"].str.contains(ZONED).to_numpy()
    unread = dates.isna().to_numpy()
    problems: list[Problem] = []
    for mask, why, fix in ((unread & zoned, " (it carries a time zone)", "write the trading day as YYYY-MM-DD"),
                           (unread & ~zoned, "", "")):
        at = np.flatnonzero(mask)
        problems += grouped(name, "date", lines[at], lambda i, at=at: f"not a date: {raw['date'].iloc[at[i]]!r}{why}",
                            fix)
    return dates, problems


def _numbers(raw: pd.DataFrame, col: str, lines: np.ndarray, name: str, separators: int) -> tuple:
    """Column ``col`` as numbers (percentages as fractions), its problems (not a number, a percentage outside
    0-100%, a negative count) and the count of volumes read with thousands separators (``separators``
    updated for ``volume``)."""
    text = raw[col].astype(str).str.strip()
    if col == "volume":
        thousands = text.str.match(_THOUSANDS)
        separators = int(thousands.sum())
        text = text.where(~thousands, text.str.replace(",", "", regex=False))
    values = pd.to_numeric(text, errors="coerce")
    at = np.flatnonzero(values.isna().to_numpy())
    problems = grouped(name, col, lines[at], lambda i: f"not a number: {raw[col].iloc[at[i]]!r}")
    if col in _PERCENT:
        for i in np.flatnonzero(((values < 0) | (values > _CAP)).to_numpy()):
            problems.append(Problem(name, int(lines[i]), col, f"{values.iloc[i]:g}% is outside 0-100%"))
        return values / 100.0, problems, separators
    for i in np.flatnonzero((values < 0).to_numpy()):
        problems.append(Problem(name, int(lines[i]), col, "must not be negative"))
    return values, problems, separators


def _row_checks(out: pd.DataFrame, lines: np.ndarray, name: str) -> list[Problem]:
    """Problems across a row's cells and between rows: a mean outside [minimum, maximum], a date that repeats
    or goes back."""
    problems = []
    order = (out["iv_min"] > out["iv_mean"] + 1e-12) | (out["iv_mean"] > out["iv_max"] + 1e-12)
    for i in np.flatnonzero(order.fillna(False).to_numpy()):
        problems.append(Problem(name, int(lines[i]), "iv_mean", "the mean is not between the minimum and the maximum"))
    valid = out["date"].notna().to_numpy()
    d = out["date"].to_numpy()
    for i in range(1, len(out)):
        if valid[i] and valid[i - 1] and d[i] <= d[i - 1]:
            what = "repeats" if d[i] == d[i - 1] else "comes before"
            problems.append(Problem(name, int(lines[i]), "date", f"date {what} the previous row's"))
    return problems
