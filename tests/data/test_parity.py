"""Put–call parity between an option chain and its underlying: consistent data pass, inconsistent data are
located errors with the size of the disagreement."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.data.importer import import_files
from opl.data.loaders import DataError
from opl.data.parity import check_parity
from opl.data.synth import synthesize

PRICES = ("open", "high", "low", "close", "settlement", "prev_settlement")


@pytest.fixture(scope="module")
def etf():
    return synthesize(seed=3, years=2, profile="etf50")


@pytest.fixture(scope="module")
def jujube():
    return synthesize(seed=3, years=1)


def forward_adjusted(futures: pd.DataFrame, yield_per_year: float = 0.03) -> pd.DataFrame:
    """A 前复权 series: each day scaled down by the dividends paid after it (a steady yield here)."""
    out = futures.copy()
    years_left = (out["trading_date"].iloc[-1] - out["trading_date"]).dt.days / 365.0
    for column in PRICES:
        out[column] = out[column] * np.exp(-yield_per_year * years_left)
    return out


def test_a_consistent_etf_chain_passes(etf):
    report = check_parity(etf.options, etf.futures, spot=True)
    assert report.problems == []
    assert report.groups["checked"].all() and len(report.groups) > 400
    # The chain was priced on the spot less the dividends to expiry with carry = rate: the implied forward
    # is (S − D·e^{−r·t_ex})·exp(rT), to the option tick.
    g = report.groups
    pv = np.zeros(len(g))
    for div in etf.truth["dividends"]:
        ex = pd.Timestamp(div["ex_date"])
        ahead = ((g["trading_date"] < ex) & (ex <= g["expiry"])).to_numpy()
        pv[ahead] = 0.06 * np.exp(-0.02 * (ex - g["trading_date"][ahead]).dt.days.to_numpy() / 365)
    assert pv.max() > 0
    expected = np.log(1.0 - pv / g["underlying"]) + 0.02 * g["t"]
    assert np.abs(g["gap"] - expected).max() < 2e-3


def test_a_forward_adjusted_underlying_fails_located_with_its_size(etf):
    adjusted = forward_adjusted(etf.futures)
    report = check_parity(etf.options, adjusted, spot=True, file="opt.csv", futures_file="etf.csv")
    assert report.problems
    head = report.problems[0]
    assert head.file == "opt.csv" and head.row == 2 and head.column == "settlement"
    assert "adjusted (复权) underlying" in head.message
    first = report.groups.iloc[0]
    # Two years of a 3% yield: the first day's price is about 6% below the one the options were written on.
    assert first["gap"] == pytest.approx(0.03 * 2 + 0.02 * first["t"], abs=0.01)
    assert "6.1% apart" in report.problems[1].message
    # The latest days agree: the adjustment vanishes at the end of the history.
    assert report.groups["ok"].iloc[-20:].all()


def test_a_consistent_futures_chain_passes_contract_by_contract(jujube):
    report = check_parity(jujube.options, jujube.futures)
    assert report.problems == [] and "same contract" in report.mode
    assert np.abs(report.groups["gap"]).max() < 1e-3


def test_a_wrong_unit_underlying_is_read_as_a_power_of_ten(jujube):
    kilo = jujube.futures.assign(settlement=jujube.futures["settlement"] / 1000)
    report = check_parity(jujube.options, kilo)
    assert "a factor of 1000: the strikes or the underlying in another unit" in report.problems[0].message


def test_option_prices_per_lot_show_in_the_slope(jujube):
    per_lot = jujube.options.assign(settlement=jujube.options["settlement"] * 5)
    report = check_parity(per_lot, jujube.futures)
    assert report.problems
    assert re.search(r"in \d+ date/expiry groups call − put changes by (4\.9\d|5) per unit of strike",
                     report.problems[0].message)
    assert all("another unit" in p.message for p in report.problems)


def test_another_products_chain_fails_without_contract_codes(jujube):
    other = jujube.futures.drop(columns=["symbol"]).assign(settlement=jujube.futures["settlement"] * 0.6)
    report = check_parity(jujube.options.drop(columns=["underlying_symbol"]), other)
    assert "nearest expiry" in report.mode
    assert report.problems and "disagree" in report.problems[0].message


def test_import_refuses_an_adjusted_underlying(tmp_path, etf):
    raw = tmp_path / "raw"
    raw.mkdir()
    options = etf.options[etf.options["trading_date"] < "2019-03-01"]
    # A vendor's ETF option history: date, call/put, expiry, strike, close.
    options[["trading_date", "option_type", "expiry", "strike_price", "settlement"]].rename(columns={
        "trading_date": "日期", "option_type": "认购/认沽", "expiry": "到期日", "strike_price": "行权价",
        "settlement": "收盘价"}).to_csv(raw / "50etf_options.csv", index=False, date_format="%Y-%m-%d")
    fut = forward_adjusted(etf.futures)
    fut[fut["trading_date"] < "2019-03-01"][["trading_date", "close"]].to_csv(
        raw / "510050_qfq.csv", index=False, date_format="%Y-%m-%d")
    with pytest.raises(DataError) as info:
        import_files([raw], tmp_path / "out", pack="sse_50etf")
    assert str(raw / "50etf_options.csv") == info.value.problems[0].file
    assert "put–call parity" in info.value.problems[0].message
    assert not (tmp_path / "out").exists()
    # The same files with the unadjusted series import, and the log reports the check.
    etf.futures[etf.futures["trading_date"] < "2019-03-01"][["trading_date", "close"]].to_csv(
        raw / "510050_qfq.csv", index=False, date_format="%Y-%m-%d")
    result = import_files([raw], tmp_path / "out", pack="sse_50etf")
    assert "put–call parity (spot underlying, every expiry)" in result.log.read_text(encoding="utf-8")


def test_validate_checks_the_chain_beside_its_futures(tmp_path, jujube):
    jujube.write(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(main, ["data", "validate", str(tmp_path / "options.csv"), "--kind", "options"])
    assert ok.exit_code == 0, ok.output
    assert "put–call parity (same contract" in ok.output
    bad = jujube.futures.copy()
    bad[list(PRICES)] = bad[list(PRICES)] * 1.1
    bad.to_csv(tmp_path / "shifted.csv", index=False, date_format="%Y-%m-%d")
    res = runner.invoke(main, ["data", "validate", str(tmp_path / "options.csv"), "--kind", "options",
                               "--underlying", str(tmp_path / "shifted.csv")])
    assert res.exit_code == 1
    assert f"{tmp_path / 'options.csv'}:2: column `settlement`: put–call parity:" in res.output
    assert "9.5% apart" in res.output


def test_one_parity_forward_for_the_check_the_surface_and_the_backtest(etf):
    """The check, `opl calibrate`'s surface and `opl backtest`'s ETF carry read the same F* (one fit)."""
    from opl.backtesting.cycles import ChainIndex
    from opl.calibration.surface import option_points
    from opl.data.parity import implied_forwards

    groups = implied_forwards(etf.options, 0.02).set_index(["trading_date", "expiry"])["forward"]
    checked = check_parity(etf.options, etf.futures, spot=True, rate=0.02).groups
    np.testing.assert_array_equal(checked.set_index(["trading_date", "expiry"])["forward"], groups)
    points = option_points(etf.options, etf.futures, rate=0.02, style="european", spot=True)
    by_point = groups.reindex(pd.MultiIndex.from_frame(points[["trading_date", "expiry"]])).to_numpy()
    np.testing.assert_array_equal(points["forward"].to_numpy(), by_point)
    chain = ChainIndex(etf.options, etf.futures)
    carries = chain.parity_carries(etf.futures, 0.02)
    (day, expiry), carry = next(iter(carries.items()))
    spot = etf.futures.set_index("trading_date")["settlement"][day]
    t = (expiry - day).days / 365.0
    assert carry == pytest.approx(np.log(groups[(day, expiry)] / spot) / t, rel=1e-12)
