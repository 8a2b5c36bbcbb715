"""Jump detection finds planted jumps, and finds none where the Student-t tails explain the extremes."""

from __future__ import annotations

import numpy as np
import pytest

from opl.calibration.jumps import expected_false, fit_jump_model


def test_planted_jumps_are_found_and_their_rate_and_size_recovered(garch_series):
    n = 2500
    rng = np.random.default_rng(1)
    days = np.sort(rng.choice(np.arange(50, n), 12, replace=False))
    jumps = np.zeros(n)
    jumps[days] = rng.choice([-1.0, 1.0], 12) * 0.09
    r = garch_series(n=n, alpha=0.06, beta=0.92, nu=8.0, seed=1, jumps=jumps)
    model = fit_jump_model(r)
    planted = set(r.index[days].strftime("%Y-%m-%d"))
    found = set(model.jumps.dates)
    assert len(planted & found) >= 11
    assert len(found - planted) <= 3
    est = model.jumps
    assert est.found and model.refitted
    truth_per_year = 12 / (n / 252)
    assert est.intensity == pytest.approx(truth_per_year, rel=0.35)
    assert np.mean(np.abs(est.sizes)) == pytest.approx(0.09, rel=0.2)
    # The diffusion refitted without the jumps gets back near the GARCH that made it.
    g = model.garch.best
    assert abs(g.alpha - 0.06) < 0.03 and abs(g.beta - 0.92) < 0.04


def test_student_t_tails_alone_are_not_called_jumps(garch_series):
    r = garch_series(n=2500, alpha=0.06, beta=0.92, nu=4.0, seed=2)
    model = fit_jump_model(r)
    assert not model.jumps.found and model.jumps.intensity == 0.0
    assert model.jumps.count <= model.jumps.expected_false + 2 * np.sqrt(model.jumps.expected_false) + 1
    assert not model.refitted and model.garch is model.first_pass


def test_expected_false_detections_follow_the_student_t_tail():
    # Heavier tails, more days beyond the same threshold; the normal limit is 2(1 - Φ(k))·n.
    assert expected_false(1000, 4.0, 4.0) > expected_false(1000, 4.0, 10.0) > expected_false(1000, 4.0, 1e6)
    assert expected_false(1000, 3.0, 1e7) == pytest.approx(2.70, abs=0.01)
