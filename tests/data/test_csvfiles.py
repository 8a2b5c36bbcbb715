"""`opl.data.csvfiles.write_csv` writes the bytes pandas' ``to_csv`` writes, with its float and date formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opl.data.csvfiles import DATE_FORMAT, FLOAT_FORMAT, write_csv
from opl.data.synth import FILES, synthesize


def _pandas_bytes(frame: pd.DataFrame, path) -> bytes:
    frame.to_csv(path, index=False, date_format=DATE_FORMAT, float_format=FLOAT_FORMAT)
    return path.read_bytes()


def _same(frame: pd.DataFrame, tmp_path) -> None:
    expected = _pandas_bytes(frame, tmp_path / "pandas.csv")
    assert write_csv(frame, tmp_path / "ours.csv").read_bytes() == expected


def test_awkward_floats_as_pandas(tmp_path):
    values = [0.0, -0.0, 5.0, -5.0, 12345.0, 9_999_999_999.0, 1e10, -1e10, 1e16, 3.0010000000000003, 0.1, 1 / 3,
              -2.5e-7, 123456789.123, np.nan, np.inf, -np.inf, 2.0**53, 4.35, 1e-320]
    frame = pd.DataFrame({"x": values, "y": list(reversed(values))})
    _same(frame, tmp_path)


def test_every_column_kind_as_pandas(tmp_path):
    frame = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-02 00:00", None, "2024-03-04 15:00"], format="%Y-%m-%d %H:%M"),
        "text": pd.array(["a,b", None, 'say "x"'], dtype="string"),
        "plain": np.array(["x", None, "z\nw"], dtype=object),
        "n": np.array([1, -2, 3], dtype=np.int64), "u": np.array([1, 2, 3], dtype=np.uint8),
        "flag": [True, False, True], "v": [1.5, np.nan, 2.0],
    })
    _same(frame, tmp_path)


def test_a_kind_it_does_not_know_is_left_to_pandas(tmp_path):
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "mixed": [1, "a", 2.5],
                          "when": pd.to_datetime(["2024-01-02"] * 3).tz_localize("Asia/Shanghai")})
    _same(frame, tmp_path)


@pytest.mark.parametrize("profile", ["jujube", "etf50"])
def test_synthetic_dataset_files_as_pandas(tmp_path, profile):
    data = synthesize(seed=3, years=1, profile=profile)
    written = data.write(tmp_path / "ours")
    for kind, name in FILES.items():
        frame = getattr(data, kind)
        if frame is not None:
            assert written[kind].read_bytes() == _pandas_bytes(frame, tmp_path / name), kind
