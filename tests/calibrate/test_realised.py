"""Realised-volatility estimators: their formulas, a known-volatility GBM, and no return across a roll."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from opl.calibration.realised import close_to_close, garman_klass, parkinson, realised_vol
from opl.data.rolls import within_contract_returns


def test_estimators_match_their_formulas_on_a_hand_computed_bar_set():
    o = np.array([100.0, 102.0, 101.0])
    h = np.array([103.0, 104.0, 102.5])
    lo = np.array([99.0, 100.5, 99.5])
    c = np.array([102.0, 101.0, 100.0])
    hl = np.log(h / lo)
    co = np.log(c / o)
    assert parkinson(h, lo, periods_per_year=1) == pytest.approx(math.sqrt(np.mean(hl ** 2) / (4 * math.log(2))))
    gk = np.mean(0.5 * hl ** 2 - (2 * math.log(2) - 1) * co ** 2)
    assert garman_klass(o, h, lo, c, periods_per_year=1) == pytest.approx(math.sqrt(gk))
    r = np.diff(np.log(c))
    assert close_to_close(np.r_[np.nan, r], periods_per_year=252) == pytest.approx(np.std(r, ddof=1) * math.sqrt(252))


def _gbm_bars(sigma: float, days: int, steps: int, seed: int) -> pd.DataFrame:
    """Daily OHLC of a driftless GBM observed `steps` times a day (continuous trading, no overnight gap)."""
    rng = np.random.default_rng(seed)
    dt = 1.0 / (252 * steps)
    inc = sigma * math.sqrt(dt) * rng.standard_normal((days, steps)) - 0.5 * sigma ** 2 * dt
    path = np.log(1000.0) + np.cumsum(inc.ravel()).reshape(days, steps)
    opens = np.r_[np.log(1000.0), path[:-1, -1]]
    high = np.maximum(path.max(axis=1), opens)
    low = np.minimum(path.min(axis=1), opens)
    return pd.DataFrame({"trading_date": pd.bdate_range("2020-01-01", periods=days), "open": np.exp(opens),
                         "high": np.exp(high), "low": np.exp(low), "close": np.exp(path[:, -1]),
                         "settlement": np.exp(path[:, -1])})


def test_a_known_volatility_gbm_is_recovered_by_all_three():
    sigma = 0.30
    bars = _gbm_bars(sigma, days=1000, steps=2000, seed=3)
    rv = realised_vol(bars, within_contract_returns(bars, method="jump"))
    # The relative sampling error of σ from n days is about 1/sqrt(2n) for close-to-close (2.2% at n = 1000) and
    # smaller for the range estimators; discrete sampling biases the range low (~1.5% at 2000 steps a day).
    assert rv.close_to_close == pytest.approx(sigma, rel=0.07)
    assert rv.parkinson == pytest.approx(sigma, rel=0.04)
    assert rv.garman_klass == pytest.approx(sigma, rel=0.04)
    assert set(rv.recent) == {"21d", "63d", "252d"}
    assert rv.rolling["close_to_close"].iloc[-1] == pytest.approx(rv.recent["21d"]["close_to_close"], rel=0.3)


def test_close_to_close_never_uses_a_roll_day_return():
    bars = _gbm_bars(0.2, days=600, steps=20, seed=5)
    bars["symbol"] = np.where(np.arange(600) < 300, "CJ105", "CJ109")
    rolled = bars.copy()
    # The new contract trades 25% higher: the continuous series jumps on its first day.
    cols = ["open", "high", "low", "close", "settlement"]
    rolled.loc[300:, cols] = rolled.loc[300:, cols] * 1.25
    plain = realised_vol(bars, within_contract_returns(bars, method="symbol"))
    with_roll = realised_vol(rolled, within_contract_returns(rolled, method="symbol"))
    assert with_roll.n_excluded == 1 and with_roll.n_returns == plain.n_returns
    assert with_roll.close_to_close == pytest.approx(plain.close_to_close, rel=1e-12)
    # Had the roll day counted, one 22% log move would dominate 600 days of 1.3% moves.
    naive = close_to_close(np.diff(np.log(rolled["close"].to_numpy())))
    assert naive > 1.15 * plain.close_to_close
