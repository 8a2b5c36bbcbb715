"""The etf50 profile of `opl data synth`: an SSE 50ETF-like market for the straddle example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.data import detect_rolls, load_futures, load_options, load_signals
from opl.data.synth import synthesize


@pytest.fixture(scope="module")
def etf():
    return synthesize(seed=5, years=1, profile="etf50")


def test_one_instrument_no_rolls_on_the_tick(etf):
    fut = etf.futures
    assert set(fut["symbol"]) == {"510050"}
    assert detect_rolls(fut).count == 0
    assert 2.0 < fut["settlement"].median() < 4.0
    assert np.allclose(np.round(fut["settlement"] / 0.001) * 0.001, fut["settlement"])


def test_chain_is_european_on_the_spot_with_carry(etf):
    opt, fut = etf.options, etf.futures.set_index("trading_date")["settlement"]
    opt = opt[opt["contract_multiplier"] == 10_000.0]  # the standard contracts; adjusted ones below
    assert np.allclose(np.round(opt["strike_price"] / 0.05) * 0.05, opt["strike_price"])
    # One expiry a day, the front month, on a fourth Wednesday unless that day is closed.
    assert opt.groupby("trading_date")["expiry"].nunique().max() == 1
    for expiry in pd.DatetimeIndex(opt["expiry"].unique()):
        fourth = pd.date_range(pd.Timestamp(expiry.year, expiry.month, 1), periods=5, freq="W-WED")[3]
        assert fourth <= expiry <= fourth + pd.Timedelta(days=10)
    # Put-call parity with carry = rate (Black-Scholes on the spot, no dividends), up to the tick.
    day = opt[opt["trading_date"] == opt["trading_date"].iloc[0]]
    calls = day[day["option_type"] == "C"].set_index("strike_price")["settlement"]
    puts = day[day["option_type"] == "P"].set_index("strike_price")["settlement"]
    s = fut.loc[day["trading_date"].iloc[0]]
    t = (day["expiry"].iloc[0] - day["trading_date"].iloc[0]).days / 365
    k = calls.index.to_numpy()
    near = np.abs(k / s - 1) < 0.05
    parity = (calls - puts).to_numpy()[near] - (s - k[near] * np.exp(-0.02 * t))
    assert np.max(np.abs(parity)) <= 2e-4


def test_an_ex_dividend_date_adjusts_the_contracts_alive_across_it(etf):
    """SSE: strike K·g to 0.001, multiplier M/g to a unit, g = (close − D)/close; one code for life."""
    (div,) = etf.truth["dividends"]
    opt = etf.options
    ex, expiry = pd.Timestamp(div["ex_date"]), pd.Timestamp(div["expiry"])
    close = etf.futures.set_index("trading_date")["close"]
    before = close.index[close.index < ex][-1]
    g = (close[before] - 0.06) / close[before]
    assert div["prev_close"] == close[before] and div["strike_factor"] == pytest.approx(g, rel=1e-12)
    assert div["multiplier"] == round(10_000 / g)
    adjusted = opt[opt["contract_multiplier"] != 10_000]
    assert set(adjusted["contract_multiplier"]) == {div["multiplier"]}
    assert adjusted["trading_date"].min() == ex and set(adjusted["expiry"]) == {expiry}
    assert adjusted["symbol"].str.match(r"^510050[CP]\d{4}A\d{5}$").all()
    for code, rows in opt[opt["symbol"].isin(adjusted["symbol"])].groupby("symbol"):
        k = int(code[-5:]) / 1000
        old, new = rows[rows["trading_date"] < ex], rows[rows["trading_date"] >= ex]
        assert len(old) and len(new) and np.allclose(old["strike_price"], k)
        assert np.allclose(old["contract_multiplier"], 10_000)
        assert np.allclose(new["strike_price"], round(k * g, 3), atol=1e-12)
    # New standard contracts are listed at the grid strikes from the ex-date on, under M codes.
    fresh = opt[(opt["trading_date"] >= ex) & (opt["expiry"] == expiry) & (opt["contract_multiplier"] == 10_000)]
    assert len(fresh) and fresh["symbol"].str[11].eq("M").all()
    # Before the ex-date, parity sees the spot less the dividend's present value.
    day = opt[(opt["trading_date"] == before) & (opt["expiry"] == expiry)]
    calls = day[day["option_type"] == "C"].set_index("strike_price")["settlement"]
    puts = day[day["option_type"] == "P"].set_index("strike_price")["settlement"]
    s = etf.futures.set_index("trading_date")["settlement"][before]
    k = calls.index.to_numpy()
    near = np.abs(k / s - 1) < 0.05
    pv = 0.06 * np.exp(-0.02 * (ex - before).days / 365)
    t = (expiry - before).days / 365
    parity = (calls - puts).to_numpy()[near] - (s - pv - k[near] * np.exp(-0.02 * t))
    assert np.max(np.abs(parity)) <= 2e-4


def test_files_pass_their_contracts(tmp_path):
    result = CliRunner().invoke(main, ["data", "synth", "--profile", "etf50", "--out", str(tmp_path), "--years", "1",
                                       "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "etf50" in result.output
    load_futures(tmp_path / "futures.csv")
    load_options(tmp_path / "options.csv")
    load_signals(tmp_path / "signals.csv")
    symbols = pd.read_csv(tmp_path / "options.csv", dtype={"symbol": str})["symbol"]
    assert symbols.str.match(r"^510050[CP]\d{4}[MA]\d{5}$").all()


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile"):
        synthesize(profile="soybean")
