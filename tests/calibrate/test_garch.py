"""GARCH/GJR Student-t fits recover the parameters of series simulated with them; diagnostics and choice."""

from __future__ import annotations

import math

import pytest

from opl.calibration.garch import LB_LAGS, fit_garch, fit_models


@pytest.fixture(scope="module")
def garch_fit(garch_series):
    r = garch_series(n=4000, alpha=0.08, beta=0.88, nu=6.0, seed=21)
    return fit_garch(r, kind="garch")


def test_a_long_garch_t_series_gives_back_its_parameters(garch_fit):
    f = garch_fit
    assert f.converged
    for name, truth, tol in (("alpha", 0.08, 0.03), ("beta", 0.88, 0.04), ("nu", 6.0, 2.0)):
        estimate = getattr(f, name)
        assert abs(estimate - truth) < tol, (name, estimate)
        # ...and within three of the fit's own standard errors.
        assert abs(estimate - truth) < 3 * f.stderr[name], (name, estimate, f.stderr[name])
    assert f.unconditional_vol == pytest.approx(0.22, rel=0.15)
    assert f.half_life == pytest.approx(math.log(0.5) / math.log(f.persistence))
    assert not f.integrated and f.simulable


def test_diagnostics_find_no_clustering_left_in_the_standardised_residuals(garch_fit):
    lb = garch_fit.ljung_box
    assert set(lb) == {"resid", "squared"} and set(lb["squared"]) == {str(k) for k in LB_LAGS}
    assert min(lb["squared"].values()) > 0.01
    d = garch_fit.to_dict()
    for key in ("persistence", "half_life_days", "unconditional_vol", "ljung_box", "aic", "bic", "stderr"):
        assert key in d


def test_gjr_recovers_its_asymmetry_and_is_chosen_over_garch(garch_series):
    r = garch_series(n=4000, alpha=0.03, gamma=0.10, beta=0.88, nu=7.0, seed=8)
    selection = fit_models(r)
    gjr = selection.fits["gjr"]
    assert abs(gjr.gamma - 0.10) < 0.05 and abs(gjr.alpha - 0.03) < 0.03 and abs(gjr.beta - 0.88) < 0.04
    assert selection.chosen == "gjr"
    assert selection.fits["gjr"].bic < selection.fits["garch"].bic


def test_garch_is_chosen_when_there_is_no_asymmetry(garch_fit, garch_series):
    selection = fit_models(garch_series(n=4000, alpha=0.08, beta=0.88, nu=6.0, seed=21))
    assert selection.chosen == "garch"
    gjr = selection.fits["gjr"]
    # Without asymmetry γ lands near 0 on either side; a negative one cannot be simulated and is never chosen.
    assert abs(gjr.gamma) < 3 * gjr.stderr["gamma"]
    if gjr.gamma < 0:
        assert not gjr.simulable and "γ < 0" in selection.reason
    else:
        assert "BIC lower" in selection.reason


def test_too_short_a_series_is_refused(garch_series):
    with pytest.raises(ValueError, match="at least 250"):
        fit_garch(garch_series(n=200, alpha=0.05, beta=0.9, nu=6.0))
