"""Roll detection finds planted rolls, and no return ever crosses one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opl.data.loaders import DataError, load_futures
from opl.data.rolls import classify_moves, detect_rolls, forward_moves, within_contract_returns
from opl.data.synth import synthesize

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "jujube" / "cj_continuous_daily.csv"
DOCUMENTED_ROLLS = ["2021-07-22", "2021-07-27", "2021-07-28", "2022-07-12", "2023-08-08", "2025-07-02"]


@pytest.fixture(scope="module")
def synth():
    return synthesize(seed=11, years=4, options=False)


def planted(data) -> list[str]:
    return [r["trading_date"] for r in data.truth["rolls"]]


def test_symbol_changes_are_the_planted_rolls(synth):
    rolls = detect_rolls(synth.futures)
    assert rolls.method == "symbol"
    assert [str(d.date()) for d in rolls.dates] == planted(synth)
    assert rolls.count == len(planted(synth)) > 15


def test_jump_rule_finds_the_planted_rolls_without_a_symbol_column(synth):
    frame = synth.futures.drop(columns="symbol")
    rolls = detect_rolls(frame, method="jump", limit=0.10, tick=5.0)
    assert rolls.method == "jump"
    assert [str(d.date()) for d in rolls.dates] == planted(synth)
    # The margin is real: every ordinary day stays inside the limit, every roll is far outside.
    assert rolls.largest_unflagged < np.log(1.10) < min(abs(j) for j in rolls.table["jump"])


def test_jump_rule_without_limit_uses_the_robust_scale(synth):
    frame = synth.futures.drop(columns="symbol")
    rolls = detect_rolls(frame, method="jump", mad_k=8.0)
    assert rolls.threshold_high == pytest.approx(rolls.scale * 8.0, rel=0.05)
    assert set(str(d.date()) for d in rolls.dates) >= set(planted(synth)) - {
        r["trading_date"] for r in synth.truth["rolls"] if abs(r["jump"]) < rolls.threshold_high}


def test_no_return_crosses_a_roll(synth):
    frame = synth.futures
    returns = within_contract_returns(frame)
    symbol = frame["symbol"].to_numpy()
    valid = ~np.isnan(returns.returns.to_numpy())
    assert not valid[0]
    crossing = valid[1:] & (symbol[1:] != symbol[:-1])
    assert not crossing.any()
    assert returns.n_excluded == len(planted(synth))
    assert len(returns.valid) == len(frame) - 1 - returns.n_excluded
    # Within contracts the returns are ordinary: no roll-sized value survives.
    assert returns.valid.abs().max() < np.log(1.10)


def test_spliced_log_price_has_no_roll_jumps(synth):
    returns = within_contract_returns(synth.futures)
    spliced = returns.log_price()
    assert len(spliced) == len(returns.valid) + 1
    assert np.abs(np.diff(spliced.to_numpy())).max() < np.log(1.10)


def test_forward_moves_skip_the_roll_day_and_flag_incomplete_windows(synth):
    returns = within_contract_returns(synth.futures)
    roll_day = pd.Timestamp(planted(synth)[3])
    index = returns.returns.index
    start = index[index.get_loc(roll_day) - 2]
    moves = forward_moves(returns, [start, index[-3]], horizon=5)
    window = returns.returns.loc[index[index.get_loc(start) + 1]:index[index.get_loc(start) + 5]]
    assert moves["move"].iloc[0] == pytest.approx(window.sum(skipna=True))
    assert moves["rolls_inside"].iloc[0] == 1
    assert not moves["complete"].iloc[1] and np.isnan(moves["move"].iloc[1])
    weekend = forward_moves(returns, [pd.Timestamp("2019-01-05")], horizon=1)
    assert weekend["entry"].iloc[0] == pd.Timestamp("2019-01-07")


def test_classify_moves_flat_band():
    assert classify_moves(np.array([0.05, -0.05, 0.03, -0.03, 0.0]), flat_band=0.03).tolist() == [
        "up", "down", "flat", "flat", "flat"]


@pytest.mark.skipif(not REAL.exists(), reason="real jujube data (../shared/data/jujube) not present")
def test_real_continuous_series_rolls():
    with pytest.raises(DataError) as info:
        load_futures(REAL)
    # The documented quirk: settle is 0 on 2021-12-30 and 2024-09-25.
    assert [(p.row, p.column) for p in info.value.problems] == [(650, "settlement"), (1313, "settlement")]
    loaded = load_futures(REAL, repair=True)
    assert len(loaded.frame) == 1773 and len(loaded.repairs) == 2
    rolls = detect_rolls(loaded.frame, method="jump", limit=0.10, tick=5.0)
    assert [str(d.date()) for d in rolls.dates] == DOCUMENTED_ROLLS
    returns = within_contract_returns(loaded.frame, rolls=rolls)
    assert returns.n_excluded == 6
    assert returns.valid.abs().max() < 0.11
    # With the open interest as evidence too (the default for a series that has it), the six price rolls
    # stay and the main-contract switches the price jump cannot see are found (issue 14: 19 of them).
    both = detect_rolls(loaded.frame, limit=0.10, tick=5.0)
    assert both.method == "evidence" and set(DOCUMENTED_ROLLS) <= {str(d.date()) for d in both.dates}
    by_oi = both.table[both.table["evidence"].str.contains("open interest")]
    assert 17 <= len(by_oi) <= 22
    assert (by_oi["oi_change"] > np.log(1.3)).all()
    # The exchange's change to single-sided counting halved open interest on 2020-01-02: not a switch.
    assert "2020-01-02" not in {str(d.date()) for d in both.dates}


def _continuous(n: int = 240, seed: int = 5) -> pd.DataFrame:
    """A continuous series whose moves stay small; open interest and volume drift slowly."""
    rng = np.random.default_rng(seed)
    price = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    oi = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    volume = 100_000 * np.exp(rng.normal(0, 0.3, n))
    return pd.DataFrame({"trading_date": pd.bdate_range("2024-01-02", periods=n), "close": price,
                         "settlement": price, "open_interest": oi, "volume": volume})


def test_a_roll_found_only_by_open_interest():
    frame = _continuous()
    # Day 120: the series switches to the next contract, 1% dearer (no price rule can see it), whose open
    # interest is 1.8 times the old one's and stays there; the volume jumps too.
    frame.loc[120:, ["close", "settlement"]] *= 1.01
    frame.loc[120:, "open_interest"] *= 1.8
    frame.loc[120, "volume"] *= 4
    jump_only = detect_rolls(frame, method="jump", limit=0.10)
    assert jump_only.count == 0
    rolls = detect_rolls(frame, limit=0.10)
    assert rolls.method == "evidence" and rolls.count == 1
    row = rolls.table.iloc[0]
    assert row["trading_date"] == frame["trading_date"].iat[120]
    assert row["evidence"] == "open interest + volume"
    assert row["oi_change"] == pytest.approx(np.log(1.8) + np.log(frame["open_interest"].iat[120] / 1.8
                                                                   / frame["open_interest"].iat[119]))
    returns = within_contract_returns(frame, rolls=rolls)
    assert np.isnan(returns.returns.iat[120]) and returns.n_excluded == 1
    assert "evidence: open interest + volume" in rolls.summary()


def test_open_interest_that_falls_or_reverts_is_not_a_roll():
    frame = _continuous()
    frame.loc[60, "open_interest"] *= 2.0          # a one-day spike that reverts
    frame.loc[150:, "open_interest"] *= 0.5        # counting halved (CZCE, 2020-01-01)
    frame.loc[200:202, "open_interest"] *= 1.6     # three days up, then back
    assert detect_rolls(frame, limit=0.10).count == 0


def test_a_switch_completing_over_two_days_is_one_roll():
    frame = _continuous()
    frame.loc[100:, "open_interest"] *= 1.6
    frame.loc[101:, "open_interest"] *= 1.5
    rolls = detect_rolls(frame, limit=0.10)
    assert rolls.count == 1 and rolls.table["trading_date"].iat[0] == frame["trading_date"].iat[100]


def test_cli_lists_each_roll_with_its_evidence(tmp_path):
    from click.testing import CliRunner

    from opl.cli import main

    frame = _continuous()
    frame["open"] = frame["high"] = frame["low"] = frame["close"]
    frame.loc[120:, ["open", "high", "low", "close", "settlement"]] *= 1.01
    frame.loc[120:, "open_interest"] *= 1.8
    frame["open_interest"] = frame["open_interest"].round()
    frame["volume"] = frame["volume"].round()
    frame.to_csv(tmp_path / "f.csv", index=False, date_format="%Y-%m-%d")
    res = CliRunner().invoke(main, ["data", "rolls", str(tmp_path / "f.csv"), "--limit", "0.10"])
    assert res.exit_code == 0, res.output
    assert re.search(r"2024-06-18  price \+0\.0\d+  open interest \+0\.5\d+  volume [+-]\d\.\d+  evidence: "
                     r"open interest", res.output), res.output
