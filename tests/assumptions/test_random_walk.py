"""The random-walk battery: accepts random walks (also with GARCH-t variance), rejects AR(1) with φ = 0.2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opl.hypotheses.random_walk import random_walk_tests, robust_portmanteau

N = 1500


def garch_t(rng, n=N, alpha=0.08, beta=0.90, df=5.0):
    """A random walk's returns with strong volatility clustering and fat tails."""
    z = rng.standard_t(df, n) / np.sqrt(df / (df - 2))
    var = 0.25 ** 2 / 252
    omega = var * (1 - alpha - beta)
    out = np.empty(n)
    h = var
    for t in range(n):
        out[t] = np.sqrt(h) * z[t]
        h = omega + alpha * out[t] ** 2 + beta * h
    return out


def ar1(rng, phi, n=N):
    e = rng.standard_normal(n + 200) * 0.015
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, len(e)):
        x[t] = phi * x[t - 1] + e[t]
    return x[200:]


@pytest.mark.slow  # a size test: twelve random walks through the whole battery (the rejections below stay)
def test_accepts_random_walks_at_about_the_stated_level():
    verdicts = []
    for seed in range(12):
        rng = np.random.default_rng(1000 + seed)
        x = rng.standard_normal(N) * 0.015 if seed % 2 else garch_t(rng)
        verdicts.append(random_walk_tests(x).verdict)
    # Family-wise level 5%: more than two rejections in twelve would have probability < 2%.
    assert verdicts.count("rejected") <= 2


def test_rejects_ar1_phi_02_every_time():
    for seed in range(6):
        result = random_walk_tests(ar1(np.random.default_rng(2000 + seed), 0.2))
        assert result.verdict == "rejected"
        lag1 = [t for t in result.tests if t.name == "variance_ratio" and t.horizon == 2][0]
        assert lag1.reject and lag1.detail["vr"] > 1
    assert "momentum" in result.implication


def test_detects_mean_reversion_direction():
    result = random_walk_tests(ar1(np.random.default_rng(7), -0.2))
    assert result.verdict == "rejected"
    assert "mean reversion" in result.implication


def test_robust_portmanteau_keeps_its_size_where_classical_ljung_box_does_not():
    from scipy import stats
    from statsmodels.stats.diagnostic import acorr_ljungbox

    robust, classical = 0, 0
    for seed in range(40):
        x = garch_t(np.random.default_rng(3000 + seed), alpha=0.1, beta=0.88, df=4.0)
        q, _, _ = robust_portmanteau(x, lags=10)
        robust += stats.chi2.sf(q[-1], 10) < 0.05
        classical += acorr_ljungbox(x, lags=[10])["lb_pvalue"].iloc[0] < 0.05
    assert robust <= 6 < classical


def test_holm_family_and_bonferroni_is_more_conservative():
    x = ar1(np.random.default_rng(5), 0.07)
    holm = random_walk_tests(x)
    bonf = random_walk_tests(x, correction="bonferroni")
    assert len(holm.tests) == 9 and {t.name for t in holm.tests} == {"portmanteau", "variance_ratio", "adf"}
    for h, b in zip(holm.tests, bonf.tests):
        assert b.adjusted_pvalue >= h.adjusted_pvalue - 1e-12
        assert h.adjusted_pvalue >= h.pvalue - 1e-12
    with pytest.raises(ValueError):
        random_walk_tests(x, correction="fdr")


def test_nan_roll_days_are_excluded_and_counted():
    rng = np.random.default_rng(9)
    x = pd.Series(rng.standard_normal(N) * 0.01)
    x.iloc[0] = np.nan
    x.iloc[[100, 400, 900]] = np.nan
    result = random_walk_tests(x)
    assert result.n == N - 4 and result.n_excluded == 3


def test_result_is_json_serialisable_and_has_a_plain_verdict():
    result = random_walk_tests(np.random.default_rng(4).standard_normal(N))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["verdict"] in ("consistent", "rejected")
    assert data["correction"] == "holm" and data["alpha"] == 0.05
    assert len(data["acf"]["values"]) == 21
    assert "random walk" in result.plain.lower() and result.summary().startswith("Random walk")


def test_too_short_a_series_is_refused():
    with pytest.raises(ValueError, match="too few"):
        random_walk_tests(np.zeros(50))


def test_variance_ratio_rows_carry_the_q_the_test_and_the_plot_use():
    """The shortest variance ratio is VR(2): its row, the JSON, the verdict text and the table all say q=2."""
    result = random_walk_tests(ar1(np.random.default_rng(2000), 0.2))
    vr = [t for t in result.tests if t.name == "variance_ratio"]
    assert [t.horizon for t in vr] == [t.detail["q"] for t in vr] == [2, 5, 10, 21]
    assert [t.label for t in vr] == ["q=2", "q=5", "q=10", "q=21"]
    assert list(result.variance_ratios()["horizon"]) == list(result.variance_ratios()["q"])
    rows = {(d["name"], d["horizon"]): d for d in result.to_dict()["tests"]}
    assert rows[("variance_ratio", 2)]["q"] == 2 and ("variance_ratio", 1) not in rows
    assert "variance_ratio (q=2," in result.plain and "variance_ratio (h=" not in result.plain
    summary_rows = [line.split() for line in result.summary().splitlines() if line.startswith("variance_ratio")]
    assert [r[1] for r in summary_rows] == ["q=2", "q=5", "q=10", "q=21"]
    assert [t.label for t in result.tests if t.name == "portmanteau"] == ["h=1", "h=5", "h=10", "h=21"]
