"""Calibration on the exchange's jujube data (../shared/data/jujube); skipped when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from opl.calibration import calibrate
from opl.data.iv_summary import load_iv_summary
from opl.data import load_futures

JUJUBE = Path(__file__).resolve().parents[3] / "shared" / "data" / "jujube"
FUTURES = JUJUBE / "cj_continuous_daily.csv"
IV = JUJUBE / "cj_option_iv_daily.csv"
pytestmark = pytest.mark.skipif(not (FUTURES.exists() and IV.exists()), reason="../shared/data/jujube is absent")


@pytest.fixture(scope="module")
def real():
    bars = load_futures(FUTURES, repair=True, limit=0.10, tick=5.0)
    return calibrate(futures=bars, iv_summary=IV, limit=0.10, tick=5.0)


def test_realised_volatility_of_cj(real):
    rv = real.realised
    # The six documented price rolls and the main-contract switches seen in the open interest.
    assert rv.n_excluded == real.returns.rolls.count and rv.n_excluded > 20
    assert 0.22 < rv.close_to_close < 0.30
    assert 0.20 < rv.parkinson < 0.30 and 0.20 < rv.garman_klass < 0.30


def test_garch_fit_of_cj(real):
    best = real.garch.best
    assert best.converged and best.nu < 4  # fat tails
    assert best.persistence > 0.98
    _, params = real.block.model[0]
    assert params["alpha"] + params["beta"] + 0.5 * params.get("gamma", 0.0) < 1.0


def test_implied_level_of_cj_options():
    stats = load_iv_summary(IV).stats()
    assert 0.25 < stats["mean"] < 0.35
    assert stats["capped_days"] > 0


def test_implied_spread_over_the_model(real):
    assert real.implied["days"] > 300
    assert -0.2 < real.implied["spread"] < 0.3
    assert set(real.block.smile) == {"spread", "floor"}  # no strikes: no skew from this file
