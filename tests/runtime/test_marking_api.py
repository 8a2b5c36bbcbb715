"""The kernels' public entry points for the simulator's marking: value, delta and gamma
only, BAW with analytic delta and gamma, and BAW's critical price."""

from __future__ import annotations

import numpy as np
import pytest

from opl.runtime.pricing.american import american_greeks, baw_price, baw_value_delta_gamma, critical_price
from opl.runtime.pricing.black import greeks, value_delta_gamma


def _grid():
    rng = np.random.default_rng(3)
    s = 100 * np.exp(rng.normal(0, 0.2, 500))
    return dict(underlying=s, strike=rng.choice([80.0, 100.0, 120.0], s.size), t=rng.uniform(0.0, 1.0, s.size),
                vol=rng.uniform(0.0, 0.8, s.size), rate=0.02, carry=0.0)


@pytest.mark.parametrize("is_call", [True, False])
def test_value_delta_gamma_equals_greeks(is_call):
    args = _grid()
    value, delta, gamma = value_delta_gamma(is_call=is_call, **args)
    full = greeks(is_call=is_call, **args)
    assert np.array_equal(value, full.price) and np.array_equal(delta, full.delta)
    assert np.allclose(gamma, full.gamma, rtol=1e-12, atol=0)
    assert value_delta_gamma(is_call=is_call, with_gamma=False, **args)[2] is None
    assert isinstance(value_delta_gamma(is_call=True, underlying=100.0, strike=100.0, t=0.5, vol=0.2, rate=0.0)[0],
                      float)
    with pytest.raises(ValueError, match="vol"):
        value_delta_gamma(is_call=True, underlying=100.0, strike=100.0, t=0.5, vol=-0.2, rate=0.0)


@pytest.mark.parametrize("is_call", [True, False])
def test_baw_value_delta_gamma_equals_american_greeks(is_call):
    args = _grid()
    value, delta, gamma = baw_value_delta_gamma(is_call=is_call, **args)
    full = american_greeks(is_call=is_call, **args)
    assert np.array_equal(value, full.price) and np.array_equal(delta, full.delta)
    assert np.array_equal(gamma, full.gamma)


def test_critical_price_is_where_the_put_is_worth_its_intrinsic_value():
    t, vol, rate, k = 0.5, 0.3, 0.08, 100.0
    star, done = critical_price(is_call=False, strike=k, t=t, vol=vol, rate=rate)
    assert bool(done) and 0 < star < k
    at = baw_price(is_call=False, underlying=star, strike=k, t=t, vol=vol, rate=rate)
    assert at == pytest.approx(k - star, abs=1e-8)
    above = baw_price(is_call=False, underlying=star * 1.02, strike=k, t=t, vol=vol, rate=rate)
    assert above > k - star * 1.02 + 1e-6  # above S* the put keeps time value
    # Homogeneous in K: the ratio S*/K does not depend on the strike.
    ratio, _ = critical_price(is_call=False, strike=1.0, t=t, vol=vol, rate=rate)
    assert ratio == pytest.approx(star / k, rel=1e-9)
    calls, done = critical_price(is_call=True, strike=np.array([90.0, 110.0]), t=t, vol=vol, rate=rate)
    assert done.all() and np.all(calls > [90.0, 110.0])
    with pytest.raises(ValueError, match="t > 0"):
        critical_price(is_call=True, strike=100.0, t=0.0, vol=vol, rate=rate)
