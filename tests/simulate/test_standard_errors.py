"""Monte Carlo standard errors of the headline metrics: coverage on known distributions with correlated months."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from opl.runtime.results.standard_errors import cvar_se, mean_se, quantile_se, share_se

# Months of a path share a path effect: r = a_path + e_month, a ~ N(0, 0.6²), e ~ N(0, 1), so the pooled
# months are N(0, 1.36) and correlated within a path (ρ = 0.26, design effect 1 + 11ρ ≈ 3.9 at 12 months).
PATH_SD, MONTH_SD, PATHS, MONTHS, REPS = 0.6, 1.0, 300, 12, 400
SD = np.hypot(PATH_SD, MONTH_SD)


def _draws(rng):
    return rng.normal(0, PATH_SD, (PATHS, 1)) + rng.normal(0, MONTH_SD, (PATHS, MONTHS))


def _cvar(r, level):
    s = np.sort(r.ravel())
    k = int(np.ceil(s.size * (1 - level)))
    return -s[:k].mean()


def _coverage(estimate, error, truth, seed=11):
    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(REPS):
        r = _draws(rng)
        hits.append(abs(estimate(r) - truth) <= 1.96 * error(r))
    return float(np.mean(hits))


@pytest.mark.parametrize("name, estimate, error, truth", [
    ("mean", np.mean, mean_se, 0.0),
    ("median", np.median, lambda r: quantile_se(r, 0.5), 0.0),
    ("p95", lambda r: np.percentile(r, 95), lambda r: quantile_se(r, 0.95), stats.norm.ppf(0.95) * SD),
    ("loss probability", lambda r: np.mean(r < 0), lambda r: share_se(r < 0), 0.5),
    ("cvar95", lambda r: _cvar(r, 0.95), lambda r: cvar_se(r, 0.95), SD * stats.norm.pdf(stats.norm.ppf(0.95)) / 0.05),
])
def test_95_percent_intervals_cover_the_truth_with_correlated_months(name, estimate, error, truth):
    # 400 replications: the coverage's own sd is about 1.1 percentage points.
    assert 0.92 <= _coverage(estimate, error, truth) <= 0.98, name


def test_treating_months_as_independent_would_under_cover():
    # The same check with the naive iid error fails: the months of a path are not independent draws.
    naive = _coverage(np.mean, lambda r: r.std(ddof=1) / np.sqrt(r.size), 0.0)
    assert naive < 0.85


def test_a_quantile_of_one_value_a_path_covers_an_exponential_p95():
    rng = np.random.default_rng(5)
    truth = -np.log(0.05)
    hits = [abs(np.percentile(x, 95) - truth) <= 1.96 * quantile_se(x, 0.95)
            for x in (rng.exponential(1.0, 2_000) for _ in range(REPS))]
    assert 0.92 <= np.mean(hits) <= 0.98


def test_no_error_without_independent_paths_and_none_on_an_atom():
    one = np.arange(12.0)[None, :]
    assert np.isnan(mean_se(one)) and np.isnan(quantile_se(one, 0.5)) and np.isnan(cvar_se(one, 0.95))
    atom = np.zeros((50, 12))
    atom[:, 0] = np.linspace(-1, 1, 50)  # most months earn exactly 0: the median sits on the atom
    assert quantile_se(atom, 0.5) == 0.0


def test_the_hall_sheather_bandwidth_is_scipy_stats_normal_bit_for_bit_without_importing_scipy_stats():
    import subprocess
    import sys

    from opl.runtime.results.standard_errors import hall_sheather

    # The formula written with scipy.stats' norm, as the errors were computed before (the JSON stays the same).
    def with_stats(n, tau, alpha=0.05):
        z = stats.norm.ppf(tau)
        return float(n ** (-1 / 3) * stats.norm.ppf(1 - alpha / 2) ** (2 / 3)
                     * (1.5 * stats.norm.pdf(z) ** 2 / (2 * z**2 + 1)) ** (1 / 3))

    taus = np.concatenate([np.random.default_rng(3).uniform(0.001, 0.999, 2000), [0.5, 0.95, 0.99, 0.05, 0.01]])
    for n in (300, 12 * 50_000, 600_000):
        assert all(hall_sheather(n, tau) == with_stats(n, tau) for tau in taus)
    # The metrics (every `opl simulate`) no longer import scipy.stats (~1 s): only scipy.special.
    code = "import sys, opl.runtime.results.metrics; print('scipy.stats' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def _samples(seed):
    """Returns as the metrics see them: continuous, with ties (an atom at 0, rounded P&L), tiny and odd sizes."""
    rng = np.random.default_rng(seed)
    for paths in (2, 3, 7, 150, 1001, 20_000):
        r = rng.standard_t(3, (paths, 12)) * 0.7
        yield r
        yield np.round(r, 1)
        yield np.where(rng.random((paths, 12)) < 0.4, 0.0, r)


def _cvar_se_alone(r, level):
    """`cvar_se` as it was written before `cvar_ses` (a quantile call of its own)."""
    losses = -r
    var = np.quantile(losses.ravel(), level)
    h = var + np.maximum(losses - var, 0.0) / (1 - level)
    per_path = h.mean(axis=1)
    return float(per_path.std(ddof=1) / np.sqrt(per_path.size))


def test_the_one_call_quantiles_are_each_levels_own_call_bit_for_bit():
    from opl.runtime.results.metrics import _pct, _pcts, _sorted_median
    from opl.runtime.results.standard_errors import cvar_ses

    for r in _samples(5):
        flat = np.sort(r.ravel())
        # What `quantile_se` and `cvar_se` computed with a call per level before they took one for all.
        a, n = r, r.size
        for tau in (0.5, 0.95, 0.99):
            h = min(tau + 0.3 * n ** (-1 / 3), 1 - 0.5 / n), max(tau - 0.3 * n ** (-1 / 3), 0.5 / n)
            together = np.quantile(flat, [h[0], h[1], tau])
            assert [float(v) for v in together] == [float(np.quantile(flat, q)) for q in (h[0], h[1], tau)]
            assert quantile_se(a, tau, flat_sorted=flat) == quantile_se(a, tau)
        assert cvar_ses(r, (0.95, 0.99)) == [_cvar_se_alone(r, 0.95), _cvar_se_alone(r, 0.99)]
        for values in (flat, r[:, 0]):
            assert _pcts(values, (1, 5, 25, 50, 75, 95, 99)) == {f"p{q}": _pct(values, q) for q in (1, 5, 25, 50, 75, 95, 99)}
        assert _sorted_median(flat) == float(np.median(flat))
    assert np.isnan(_sorted_median(np.array([1.0, np.nan]))) and np.isnan(_sorted_median(np.array([])))
