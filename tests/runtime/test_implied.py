"""Implied volatility: round trips (European and American), hard corners, and NaN with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from opl.runtime.pricing.american import baw_price, deterministic_price
from opl.runtime.pricing.implied import REASONS, ImpliedVolResult, implied_vol
from opl.runtime.pricing.black import forward_intrinsic, greeks, price

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy warnings leaking out fail the test


def test_hull_example_round_trip():
    r = implied_vol(price=4.759422392871532, is_call=True, underlying=42.0, strike=40.0, t=0.5, rate=0.1,
                    carry=0.1)
    assert isinstance(r, ImpliedVolResult)
    assert r.reason == "ok"
    assert r.vol == pytest.approx(0.2, rel=1e-12)


def test_black76_futures_option():
    # Haug's Black-76 example backwards: F = K = 19, T = 0.75, r = 10%, put 1.7011 → σ ≈ 28%.
    r = implied_vol(price=1.7010507252362679, is_call=False, underlying=19.0, strike=19.0, t=0.75, rate=0.1)
    assert (r.reason, r.vol) == ("ok", pytest.approx(0.28, rel=1e-12))


# ------------------------------------------------------------------ round trips

def _round_trip(call, s, k, t, v, r, b, style="european"):
    pricer = price if style == "european" else baw_price
    kw = dict(is_call=call, underlying=s, strike=k, t=t, rate=r, carry=b)
    p = pricer(vol=v, **kw)
    res = implied_vol(price=p, style=style, **kw)
    return p, res, kw, pricer


@settings(max_examples=400, deadline=None)
@given(call=st.booleans(), s=st.floats(1.0, 1e4), m=st.floats(0.25, 4.0), t=st.floats(1 / 365 / 24, 10.0),
       v=st.floats(0.01, 3.0), r=st.floats(-0.02, 0.15), b=st.floats(-0.1, 0.15))
# A subnormal price (6e-314: 2.2× out of the money at σ = 1%) keeps a few significant bits only, so it
# pins σ to 5e-4 at best; it must still reprice, but σ is compared only where the price is a normal float.
@example(call=True, s=1.0, m=2.232884883794277, t=2.046875, v=0.01, r=0.0, b=0.12919325756133074)
def test_european_round_trip(call, s, m, t, v, r, b):
    p, res, kw, pricer = _round_trip(call, s, s * m, t, v, r, b)
    lower = forward_intrinsic(**kw)
    if res.reason == "at_intrinsic":
        # Only when the time value is lost in the rounding of the price itself.
        assert p - lower <= 64 * np.finfo(float).eps * p
        return
    assert res.reason == "ok"
    # The solved vol reprices to the precision of the price itself: ~1e-15 near the money, but 30
    # standard deviations out F·N(d1) − K·N(d2) cancels to ~1e-10 (a 1e-250 price, seen by hypothesis).
    assert pricer(vol=res.vol, **kw) == pytest.approx(p, rel=1e-8, abs=1e-300)
    vega = greeks(vol=v, **kw).vega
    if vega * v > 1e-6 * p and p >= np.finfo(float).tiny:  # where the price still says something about σ
        assert res.vol == pytest.approx(v, rel=1e-6)


@settings(max_examples=150, deadline=None)
# A rate so small that 1 − e^{−rT} rounds to 0 once sent BAW's call boundary to infinity (value 0 at σ = 10).
@example(call=True, s=10.0, m=1.0, t=3.0, v=1.0, r=6.981871847425986e-117, b=0.0)
# ... and a carry that small did the same for the put-side test of early exercise (b = -2e-67, r = 0).
@example(call=True, s=10.0, m=1.0, t=3.0, v=1.0, r=0.0, b=-2.0594185593014228e-67)
@given(call=st.booleans(), s=st.floats(10.0, 1e3), m=st.floats(0.5, 2.0), t=st.floats(1 / 365, 3.0),
       v=st.floats(0.05, 1.5), r=st.floats(0.0, 0.12), b=st.floats(-0.1, 0.12))
def test_american_round_trip(call, s, m, t, v, r, b):
    p, res, kw, pricer = _round_trip(call, s, s * m, t, v, r, b, style="american")
    if res.reason == "at_intrinsic":
        # Deep in the exercise region the value is the intrinsic value for a whole range of σ.
        assert p == pytest.approx(deterministic_price(**kw), rel=1e-12)
        return
    assert res.reason == "ok"
    assert pricer(vol=res.vol, **kw) == pytest.approx(p, rel=1e-9, abs=1e-12 * s)


def test_deep_otm_itm_and_near_expiry_grid():
    s = np.array([[50.0], [80.0], [100.0], [125.0], [200.0]])
    t = np.array([1 / 365 / 24, 1 / 365, 7 / 365, 1.0, 5.0])
    for call in (True, False):
        for v in (0.05, 0.3, 1.2):
            p, res, kw, pricer = _round_trip(call, s, 100.0, t, v, 0.03, 0.0)
            ok = res.reason == "ok"
            assert set(np.unique(res.reason)) <= {"ok", "at_intrinsic"}
            # rtol 1e-9: some of these prices are 1e-230, where ln P moves ~1000 times faster than ln σ.
            np.testing.assert_allclose(pricer(vol=np.where(ok, res.vol, v), **kw)[ok], p[ok], rtol=1e-9)
            # Where the time value is not lost in the rounding of a deep in-the-money price, σ comes back.
            informative = ok & (p - forward_intrinsic(**kw) >= 1e-6 * p)
            assert informative.sum() >= 10
            np.testing.assert_allclose(res.vol[informative], v, rtol=1e-8)
            assert np.all(np.isnan(res.vol[~ok]))


def test_tiny_prices_of_far_otm_options_still_invert():
    # 1e-30 of premium 40 standard deviations out: a real (if useless) number with a definite σ.
    kw = dict(is_call=True, underlying=100.0, strike=300.0, t=0.25, rate=0.02)
    p = price(vol=0.15, **kw)
    assert 0 < p < 1e-30
    res = implied_vol(price=p, **kw)
    assert (res.reason, res.vol) == ("ok", pytest.approx(0.15, rel=1e-10))


def test_vectorised_large_sample_never_fails_to_converge():
    rng = np.random.default_rng(7)
    n = 100_000
    call = rng.random(n) < 0.5
    s = rng.uniform(50, 200, n)
    t = np.exp(rng.uniform(np.log(1 / 365), np.log(5), n))
    v = np.exp(rng.uniform(np.log(0.02), np.log(3), n))
    r, b = rng.uniform(-0.01, 0.1, n), rng.uniform(-0.05, 0.1, n)
    kw = dict(is_call=call, underlying=s, strike=100.0, t=t, rate=r, carry=b)
    res = implied_vol(price=price(vol=v, **kw), **kw)
    assert set(np.unique(res.reason)) <= {"ok", "at_intrinsic"}
    assert res.vol.shape == (n,)


# ------------------------------------------------------------------ no volatility: NaN with a reason

def test_reasons_for_impossible_prices():
    kw = dict(underlying=100.0, strike=90.0, t=0.5, rate=0.05, carry=0.0)
    intrinsic = forward_intrinsic(is_call=True, **kw)  # e^{-rT}(F − K)
    cases = {
        "below_intrinsic": (True, intrinsic - 0.01, kw),
        "at_intrinsic": (True, intrinsic, kw),
        "above_upper_bound": (True, 100.0 * np.exp(-0.025) + 0.01, kw),
        "no_time": (True, 10.0, kw | {"t": 0.0}),
        "invalid_input": (True, -1.0, kw),
        "out_of_range": (True, price(is_call=True, vol=12.0, **kw), kw),  # above vol_max = 10
    }
    for expected, (call, p, args) in cases.items():
        res = implied_vol(price=p, is_call=call, **args)
        assert res.reason == expected, expected
        assert np.isnan(res.vol), expected


def test_reason_array_and_shapes():
    p = np.array([[0.001, 5.0, 200.0], [np.nan, 0.0, 3.0]])
    res = implied_vol(price=p, is_call=False, underlying=100.0, strike=100.0, t=np.array([[0.25], [0.25]]),
                      rate=0.02)
    assert res.vol.shape == res.reason.shape == (2, 3)
    assert res.reason.tolist() == [["ok", "ok", "above_upper_bound"], ["invalid_input", "at_intrinsic", "ok"]]
    assert set(res.reason.ravel()) <= set(REASONS)
    assert np.isfinite(res.vol[0, :2]).all() and np.isnan(res.vol[0, 2])


def test_invalid_inputs_are_reasons_not_exceptions():
    res = implied_vol(price=np.array([1.0, 1.0, 1.0, 1.0, np.inf]), is_call=True,
                      underlying=np.array([-1.0, 0.0, 100.0, 100.0, 100.0]),
                      strike=np.array([100.0, 100.0, 0.0, 100.0, 100.0]), t=np.array([0.5, 0.5, 0.5, -0.1, 0.5]),
                      rate=0.01)
    assert res.reason.tolist() == ["invalid_input"] * 5
    with pytest.raises(ValueError, match="style"):
        implied_vol(price=1.0, is_call=True, underlying=1.0, strike=1.0, t=1.0, rate=0.0, style="bermudan")
    with pytest.raises(ValueError, match="vol_min"):
        implied_vol(price=1.0, is_call=True, underlying=1.0, strike=1.0, t=1.0, rate=0.0, vol_min=0.0)


def test_american_bounds():
    kw = dict(is_call=False, underlying=80.0, strike=100.0, t=0.5, rate=0.05, style="american")
    # An American put is worth at least K − S = 20 (a European one only e^{-rT}K − S ≈ 17.5).
    assert implied_vol(price=19.0, **kw).reason == "below_intrinsic"
    assert implied_vol(price=20.0, **kw).reason == "at_intrinsic"
    assert implied_vol(price=100.5, **kw).reason == "above_upper_bound"
    res = implied_vol(price=baw_price(vol=0.6, **{k: v for k, v in kw.items() if k != "style"}), **kw)
    assert (res.reason, res.vol) == ("ok", pytest.approx(0.6, rel=1e-8))
    # The same price read as European implies a different volatility.
    euro = implied_vol(price=baw_price(vol=0.6, **{k: v for k, v in kw.items() if k != "style"}),
                       **(kw | {"style": "european"}))
    assert euro.reason == "ok" and euro.vol > 0.6
