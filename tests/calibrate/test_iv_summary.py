"""The daily implied-volatility summary file: validated with located errors, level and dispersion."""

from __future__ import annotations

import pytest

from opl.data.iv_summary import load_iv_summary
from opl.data.loaders import DataError

HEADER = "交易日期,日均隐含波动率(%),日最低隐含波动率(%),日最高隐含波动率(%),日波动率标准差(%),日合约数量,成交量(手)\n"


def test_a_clean_file_gives_level_and_dispersion(tmp_path):
    path = tmp_path / "iv.csv"
    path.write_text(HEADER + '2024-06-21,29.43,25.49,37.77,3.47,132,"18,257"\n'
                             "2024-06-24,31.32,27.32,100.00,3.64,140,900\n", encoding="utf-8")
    s = load_iv_summary(path)
    stats = s.stats()
    assert stats["mean"] == pytest.approx((0.2943 + 0.3132) / 2)
    assert stats["dispersion_mean"] == pytest.approx((0.0347 + 0.0364) / 2)
    assert stats["capped_days"] == 1 and stats["days"] == 2
    assert s.frame["volume"].tolist() == [18257, 900]
    assert any("thousands separators" in n for n in s.notes)


def test_every_bad_cell_is_reported_where_it_is(tmp_path):
    path = tmp_path / "iv.csv"
    path.write_text(HEADER + "2024-06-21,29.43,25.49,37.77,3.47,132,100\n"
                             "2024-06-20,abc,25.49,37.77,3.47,132,100\n"
                             "2024-06-25,20.0,25.0,37.77,-1,132,100\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_iv_summary(path)
    found = {(p.row, p.column) for p in info.value.problems}
    assert (3, "iv_mean") in found and (3, "date") in found
    assert (4, "iv_std") in found and (4, "iv_mean") in found  # negative sd; mean below the minimum
    assert str(path) in str(info.value)


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "iv.csv"
    path.write_text("date,iv_mean,iv_min,iv_max\n2024-06-21,29,25,37\n", encoding="utf-8")
    with pytest.raises(DataError, match="required column missing") as info:
        load_iv_summary(path)
    assert info.value.column == "iv_std" and info.value.row == 1


def test_a_date_with_a_time_zone_is_located_and_a_flood_is_one_problem(tmp_path):
    path = tmp_path / "iv.csv"
    path.write_text(HEADER + "2024-06-21,29.43,25.49,37.77,3.47,132,100\n"
                             "2024-06-24T15:00:00+08:00,29.43,25.49,37.77,3.47,132,100\n", encoding="utf-8")
    with pytest.raises(DataError) as info:  # pandas raised "Mixed timezones detected"
        load_iv_summary(path)
    assert (info.value.row, info.value.column) == (3, "date") and "time zone" in info.value.message
    rows = "".join(f"2024-06-{d:02d},x,25.49,37.77,3.47,132,100\n" for d in range(1, 31))
    path.write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_iv_summary(path)
    (problem,) = [p for p in info.value.problems if p.column == "iv_mean" and "number" in p.message]
    assert (problem.row, problem.count, problem.last) == (2, 30, 31)
