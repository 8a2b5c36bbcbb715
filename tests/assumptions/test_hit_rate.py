"""Hit-rate intervals cover the true rate at about their nominal frequency; sample sizes are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opl.hypotheses.hit_rate import claim_power, hit_rate, intervals, sample_size_for_claim
from opl.data.rolls import classify_moves, forward_moves, within_contract_returns

REPS = 200


def random_walk_market(rng, days=1600):
    dates = pd.bdate_range("2015-01-05", periods=days)
    close = 10_000 * np.exp(np.cumsum(rng.standard_normal(days) * 0.015))
    frame = pd.DataFrame({"trading_date": dates, "symbol": "CJ", "close": close, "settlement": close})
    return within_contract_returns(frame)


def views_with_rate(rng, returns, p, *, horizon=21, flat_band=0.03):
    dates = returns.returns.index[::horizon][:-2]
    realised = classify_moves(forward_moves(returns, dates, horizon=horizon)["move"].to_numpy(), flat_band=flat_band)
    classes = np.array(["up", "down", "flat"])
    wrong = np.array([rng.choice(classes[classes != r]) for r in realised])
    direction = np.where(rng.random(len(dates)) < p, realised, wrong)
    return pd.DataFrame({"date": dates, "direction": direction})


def test_intervals_cover_at_nominal_frequency():
    rng = np.random.default_rng(17)
    p, n = 0.85, 60
    hits = rng.binomial(n, p, REPS)
    cover = {"wilson": 0, "clopper_pearson": 0}
    for h in hits:
        for name, (lo, hi) in intervals(hits=int(h), n=n).items():
            cover[name] += lo <= p <= hi
    # Nominal 95%; 200 replications give a Monte Carlo standard error of about 1.5 points.
    assert 0.90 <= cover["wilson"] / REPS <= 0.99
    assert 0.93 <= cover["clopper_pearson"] / REPS <= 1.0
    assert cover["clopper_pearson"] >= cover["wilson"]  # exact intervals are conservative


def test_end_to_end_hit_rate_covers_the_planted_rate():
    rng = np.random.default_rng(23)
    returns = random_walk_market(rng)
    covered, estimates = 0, []
    for _ in range(REPS):
        signals = views_with_rate(rng, returns, 0.8)
        result = hit_rate(signals=signals, returns=returns, alternatives=())
        lo, hi = result.wilson
        covered += lo <= 0.8 <= hi
        estimates.append(result.estimate)
    assert 0.90 <= covered / REPS <= 0.99
    assert np.mean(estimates) == pytest.approx(0.8, abs=0.015)


def test_definitions_confusion_and_unresolved_views():
    rng = np.random.default_rng(5)
    returns = random_walk_market(rng, days=300)
    index = returns.returns.index
    signals = pd.DataFrame({"date": [index[0], index[50], index[-5]], "direction": ["up", "flat", "down"]})
    result = hit_rate(signals=signals, returns=returns, horizon=21, flat_band=0.03)
    assert result.n == 2 and result.unresolved == [str(index[-5].date())]
    moves = forward_moves(returns, signals["date"][:2], horizon=21)["move"].to_numpy()
    realised = classify_moves(moves, flat_band=0.03)
    assert result.hits == int((realised == np.array(["up", "flat"])).sum())
    assert result.confusion.to_numpy().sum() == 2
    data = result.to_dict()
    assert {"estimate", "wilson", "clopper_pearson", "n"} <= set(data)


def test_verdicts_against_the_90_percent_claim():
    rng = np.random.default_rng(8)
    returns = random_walk_market(rng, days=4000)
    assert hit_rate(signals=views_with_rate(rng, returns, 0.55, horizon=10), returns=returns,
                    horizon=10).verdict == "rejected"
    always = views_with_rate(rng, returns, 1.0, horizon=10)
    supported = hit_rate(signals=always, returns=returns, horizon=10)
    assert supported.verdict == "supported" and supported.estimate == 1.0
    assert hit_rate(signals=always.iloc[:10], returns=returns, horizon=10).verdict == "not established"


def test_no_signals_gives_empty_result_with_contract_keys():
    returns = random_walk_market(np.random.default_rng(1), days=100)
    result = hit_rate(signals=None, returns=returns)
    data = result.to_dict()
    assert data["n"] == 0 and data["estimate"] is None and data["wilson"] is None
    assert result.verdict == "no data"


@pytest.mark.parametrize("true_rate", [0.93, 0.95, 0.97])
def test_sample_size_is_the_first_n_with_power_from_then_on(true_rate):
    size = sample_size_for_claim(claim=0.90, true_rate=true_rate, alpha=0.05, power=0.80)
    n = size["exact"]
    assert claim_power(n=n, true_rate=true_rate) >= 0.80
    assert claim_power(n=n - 1, true_rate=true_rate) < 0.80
    assert all(claim_power(n=m, true_rate=true_rate) >= 0.80 for m in range(n, n + 40))
    assert abs(size["normal"] - n) / n < 0.15


def test_sample_size_known_value():
    # Normal approximation: ((1.645·√(0.9·0.1) + 0.842·√(0.95·0.05)) / 0.05)² = 183.3.
    assert sample_size_for_claim(claim=0.90, true_rate=0.95)["normal"] == 184
    with pytest.raises(ValueError):
        sample_size_for_claim(claim=0.90, true_rate=0.90)
