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
    assert set(opt["contract_multiplier"]) == {10_000.0}
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


def test_files_pass_their_contracts(tmp_path):
    result = CliRunner().invoke(main, ["data", "synth", "--profile", "etf50", "--out", str(tmp_path), "--years", "1",
                                       "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "etf50" in result.output
    load_futures(tmp_path / "futures.csv")
    load_options(tmp_path / "options.csv")
    load_signals(tmp_path / "signals.csv")
    symbols = pd.read_csv(tmp_path / "options.csv", dtype={"symbol": str})["symbol"]
    assert symbols.str.match(r"^510050[CP]\d{4}M\d{5}$").all()


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile"):
        synthesize(profile="soybean")
