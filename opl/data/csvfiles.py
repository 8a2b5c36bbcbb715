"""Writing the data files (``futures.csv``, ``options.csv``, …) as pandas writes them, faster.

Every writer of the project's CSVs (`opl.data.synth`, `opl.data.importer`, `opl.data.akshare`) writes
``frame.to_csv(path, index=False, date_format="%Y-%m-%d", float_format="%.10g")``. With a
``float_format`` pandas formats each float cell through a Python call (about 0.8 s CPU for the synthetic
dataset's 89,000-row option chain, most of the data stage's writing); `write_csv` formats each column at
once instead — a float that is a whole number below 10¹⁰ in magnitude (every price on a tick, every strike)
is its integer's digits, which is what ``%.10g`` gives it; any other float goes through ``%.10g`` itself —
and hands the cells to the `csv` writer pandas uses, with pandas' settings. The bytes are the same as
pandas' (tests/data/test_csvfiles.py); a column of a kind this table does not know is written by pandas.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["write_csv", "DATE_FORMAT", "FLOAT_FORMAT"]

DATE_FORMAT = "%Y-%m-%d"
FLOAT_FORMAT = "%.10g"
#: Below this magnitude a whole float's ``%.10g`` is its integer's digits (10 significant digits at most).
_WHOLE_LIMIT = 1e10


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` to ``path`` without its index, byte for byte as ``frame.to_csv(path, index=False,
    date_format=DATE_FORMAT, float_format=FLOAT_FORMAT)`` would (module docstring); return the path."""
    path = Path(path)
    cells = _columns(frame)
    if cells is None:  # a column kind `_FORMATTERS` does not know: pandas writes the frame itself
        frame.to_csv(path, index=False, date_format=DATE_FORMAT, float_format=FLOAT_FORMAT)
        return path
    # pandas' own writer settings: QUOTE_MINIMAL, '"' doubled, the platform's line ending, UTF-8.
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator=os.linesep)
        writer.writerow([str(name) for name in frame.columns])
        writer.writerows(zip(*cells))
    return path


def _columns(frame: pd.DataFrame) -> list[list[str]] | None:
    """Each column's cells as pandas writes them, or None when a column's kind is not in `_FORMATTERS`."""
    out = []
    for name in frame.columns:
        column = frame[name]
        formatter = _FORMATTERS.get(_kind(column))
        if formatter is None:
            return None
        out.append(formatter(column))
    return out


def _kind(column: pd.Series) -> str:
    """The formatter key of a column: numpy's dtype kind, "str" for text columns, "" for anything else."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype):
        return "str"
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            return "str" if all(isinstance(v, str) or v is None or v is pd.NA or (isinstance(v, float) and v != v)
                                for v in column.tolist()) else ""
        if dtype.kind == "M" or dtype.kind in "fiub":
            return dtype.kind
    return ""


def _floats(column: pd.Series) -> list[str]:
    """``%.10g`` of each value, '' for NaN (module docstring)."""
    values = column.to_numpy(dtype=np.float64)
    out = np.full(len(values), "", dtype=object)
    with np.errstate(invalid="ignore"):
        # -0.0 is "-0" under %.10g but "0" as an integer: it takes the general path.
        whole = np.isfinite(values) & (np.abs(values) < _WHOLE_LIMIT) & (values == np.trunc(values)) \
            & ~((values == 0) & np.signbit(values))
    out[whole] = list(map(str, values[whole].astype(np.int64).tolist()))
    other = ~whole & ~np.isnan(values)
    out[other] = [FLOAT_FORMAT % v for v in values[other].tolist()]
    return out.tolist()


def _dates(column: pd.Series) -> list[str]:
    return column.dt.strftime(DATE_FORMAT).fillna("").tolist()


def _integers(column: pd.Series) -> list[str]:
    return list(map(str, column.to_numpy().tolist()))


def _booleans(column: pd.Series) -> list[str]:
    return ["True" if v else "False" for v in column.tolist()]


def _texts(column: pd.Series) -> list[str]:
    return ["" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in column.tolist()]


#: How each kind of column becomes its cells; a kind not here is left to pandas (`write_csv`).
_FORMATTERS: dict[str, Callable[[pd.Series], list[str]]] = {
    "f": _floats, "M": _dates, "i": _integers, "u": _integers, "b": _booleans, "str": _texts,
}
