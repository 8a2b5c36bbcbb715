"""European prices and Greeks: textbook values, parity, finite differences, limits, QuantLib."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opl.runtime.pricing.black import Greeks, d1, forward_intrinsic, greeks, linear_greeks, price

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a numpy warning leaking out fails the test


# ------------------------------------------------------------------ textbook values

def test_hull_bsm_example():
    # Hull, Options, Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%, σ=20%, T=0.5 (no dividend: b = r).
    kw = dict(underlying=42.0, strike=40.0, t=0.5, vol=0.2, rate=0.1, carry=0.1)
    assert price(is_call=True, **kw) == pytest.approx(4.76, abs=5e-3)
    assert price(is_call=False, **kw) == pytest.approx(0.81, abs=5e-3)


def test_haug_black76_example():
    # Haug (2007) §1.1.2: futures option F=19, K=19, T=0.75, r=10%, σ=28%: put (= call at the money) 1.7011.
    kw = dict(underlying=19.0, strike=19.0, t=0.75, vol=0.28, rate=0.1, carry=0.0)
    assert price(is_call=False, **kw) == pytest.approx(1.7011, abs=5e-5)
    assert price(is_call=True, **kw) == pytest.approx(1.7011, abs=5e-5)


def test_haug_merton_dividend_yield_example():
    # Haug (2007) §1.1.3: S=100, K=95, T=0.5, r=10%, q=5% (b = 5%), σ=20%: put 2.4648.
    assert price(is_call=False, underlying=100.0, strike=95.0, t=0.5, vol=0.2, rate=0.1, carry=0.05) == \
        pytest.approx(2.4648, abs=5e-5)


def test_haug_greek_examples():
    # Haug (2007) §2.1: delta, gamma, vega, theta and rho examples.
    g = greeks(is_call=True, underlying=105.0, strike=100.0, t=0.5, vol=0.36, rate=0.1, carry=0.0)
    p = greeks(is_call=False, underlying=105.0, strike=100.0, t=0.5, vol=0.36, rate=0.1, carry=0.0)
    assert (g.delta, p.delta) == (pytest.approx(0.5946, abs=5e-5), pytest.approx(-0.3566, abs=5e-5))
    g = greeks(is_call=True, underlying=55.0, strike=60.0, t=0.75, vol=0.3, rate=0.1, carry=0.1)
    assert g.gamma == pytest.approx(0.0278, abs=5e-5)
    assert g.vega == pytest.approx(18.9358, abs=5e-5)
    p = greeks(is_call=False, underlying=430.0, strike=405.0, t=0.0833, vol=0.2, rate=0.07, carry=0.02)
    assert p.theta == pytest.approx(-31.1924, abs=5e-5)
    g = greeks(is_call=True, underlying=72.0, strike=75.0, t=1.0, vol=0.19, rate=0.09, carry=0.09,
               carry_follows_rate=True)
    assert g.rho == pytest.approx(38.7325, abs=5e-5)


def test_futures_rho_is_minus_t_times_value():
    g = greeks(is_call=True, underlying=19.0, strike=19.0, t=0.75, vol=0.28, rate=0.1)
    assert g.rho == pytest.approx(-0.75 * g.price, rel=1e-14)


# ------------------------------------------------------------------ parity and shapes

finite = dict(allow_nan=False, allow_infinity=False)
underlyings = st.floats(0.01, 1e4, **finite)
moneyness = st.floats(0.2, 5.0, **finite)
times = st.floats(1e-4, 10.0, **finite)
vols = st.floats(1e-3, 3.0, **finite)
rates = st.floats(-0.05, 0.2, **finite)
carries = st.floats(-0.2, 0.2, **finite)


@settings(max_examples=300, deadline=None)
@given(s=underlyings, m=moneyness, t=times, v=vols, r=rates, b=carries)
def test_put_call_parity(s, m, t, v, r, b):
    k = s * m
    kw = dict(underlying=s, strike=k, t=t, vol=v, rate=r, carry=b)
    c, p = price(is_call=True, **kw), price(is_call=False, **kw)
    forward_value = s * np.exp((b - r) * t) - k * np.exp(-r * t)
    assert c - p == pytest.approx(forward_value, abs=1e-12 * (s + k) * np.exp(abs(b - r) * t + abs(r) * t))
    gc, gp = greeks(is_call=True, **kw), greeks(is_call=False, **kw)
    # Parity holds Greek by Greek: the forward contract has delta e^{(b-r)T} and no gamma or vega.
    assert gc.delta - gp.delta == pytest.approx(np.exp((b - r) * t), abs=1e-12)
    assert gc.gamma == pytest.approx(gp.gamma, rel=1e-9, abs=1e-300)
    assert gc.vega == pytest.approx(gp.vega, rel=1e-9, abs=1e-300)


@settings(max_examples=200, deadline=None)
@given(s=underlyings, m=moneyness, t=times, v=vols, r=rates, b=carries, call=st.booleans())
def test_price_within_no_arbitrage_bounds(s, m, t, v, r, b, call):
    k = s * m
    kw = dict(underlying=s, strike=k, t=t, rate=r, carry=b)
    value = price(is_call=call, vol=v, **kw)
    lower = forward_intrinsic(is_call=call, **kw)
    upper = s * np.exp((b - r) * t) if call else k * np.exp(-r * t)
    assert lower - 1e-12 * upper <= value <= upper * (1 + 1e-12)


def test_broadcasting_and_scalar_returns():
    g = greeks(is_call=np.array([True, False]), underlying=np.array([[90.0], [100.0], [110.0]]), strike=100.0,
               t=0.25, vol=0.3, rate=0.02)
    assert isinstance(g, Greeks)
    assert all(np.shape(x) == (3, 2) for x in g)
    s = greeks(is_call=True, underlying=100.0, strike=100.0, t=0.25, vol=0.3, rate=0.02)
    assert all(type(x) is float for x in s)
    assert type(price(is_call=False, underlying=1.0, strike=1.0, t=1.0, vol=0.1, rate=0.0)) is float
    assert np.shape(d1(underlying=[1.0, 2.0], strike=1.0, t=1.0, vol=0.2)) == (2,)


@pytest.mark.parametrize("field", ["underlying", "strike", "t", "vol"])
def test_negative_inputs_are_refused(field):
    kw = dict(is_call=True, underlying=100.0, strike=100.0, t=0.5, vol=0.2, rate=0.01)
    kw[field] = np.array([1.0, -1.0])
    with pytest.raises(ValueError, match=field):
        price(**kw)


def test_linear_leg_has_unit_delta_and_nothing_else():
    g = linear_greeks(underlying=np.array([10000.0, 10500.0]))
    np.testing.assert_array_equal(g.price, [10000.0, 10500.0])
    np.testing.assert_array_equal(g.delta, [1.0, 1.0])
    for name in ("gamma", "vega", "theta", "rho", "charm"):
        np.testing.assert_array_equal(getattr(g, name), [0.0, 0.0])
    assert linear_greeks(underlying=5.0).delta == 1.0


# ------------------------------------------------------------------ Greeks against central differences

GRID = list(itertools.product([True, False], [70.0, 95.0, 100.0, 108.0, 140.0], [0.02, 0.25, 1.5],
                              [0.1, 0.45], [0.03], [0.0, -0.02, 0.03]))


def _fd(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("call,s,t,v,r,b", GRID)
def test_greeks_match_central_differences(call, s, t, v, r, b):
    k = 100.0

    def value(**over):
        kw = dict(is_call=call, underlying=s, strike=k, t=t, vol=v, rate=r, carry=b) | over
        return price(**kw)

    g = greeks(is_call=call, underlying=s, strike=k, t=t, vol=v, rate=r, carry=b)
    scale = s  # errors are judged against the size of the underlying, the natural unit of V
    assert g.delta == pytest.approx(_fd(lambda x: value(underlying=x), s, 1e-5 * s), abs=1e-8)
    h = 1e-4 * s
    assert g.gamma == pytest.approx((value(underlying=s + h) - 2 * g.price + value(underlying=s - h)) / h**2,
                                    abs=1e-9, rel=1e-3)
    assert g.vega == pytest.approx(_fd(lambda x: value(vol=x), v, 1e-5), abs=1e-7 * scale)
    # theta and charm are per year of time *passing*: minus the derivative in time to expiry.
    assert g.theta == pytest.approx(-_fd(lambda x: value(t=x), t, 1e-6), abs=1e-6 * scale, rel=1e-6)
    # rho with b held (futures) and with q = r − b held (stocks).
    assert g.rho == pytest.approx(_fd(lambda x: value(rate=x), r, 1e-6), abs=1e-7 * scale)
    g_q = greeks(is_call=call, underlying=s, strike=k, t=t, vol=v, rate=r, carry=b, carry_follows_rate=True)
    assert g_q.rho == pytest.approx(_fd(lambda x: value(rate=x, carry=b + (x - r)), r, 1e-6), abs=1e-7 * scale)

    def delta_at(x):
        return greeks(is_call=call, underlying=s, strike=k, t=x, vol=v, rate=r, carry=b).delta

    assert g.charm == pytest.approx(-_fd(delta_at, t, 1e-6), abs=1e-6, rel=1e-6)


def test_theta_sign_convention():
    # A long at-the-money futures option loses value as time passes; theta is that (negative) rate per year.
    kw = dict(is_call=True, underlying=100.0, strike=100.0, vol=0.3, rate=0.02)
    g = greeks(t=30 / 365, **kw)
    one_day_later = price(t=29 / 365, **kw)
    assert g.theta < 0
    assert (one_day_later - g.price) * 365 == pytest.approx(g.theta, rel=0.02)
    # Charm: an OTM call's delta decays towards 0 as time passes.
    otm = greeks(is_call=True, underlying=100.0, strike=110.0, t=30 / 365, vol=0.3, rate=0.02)
    assert otm.charm < 0


# ------------------------------------------------------------------ limits

def _assert_clean(g: Greeks):
    for name, x in zip(Greeks._fields, g):
        assert np.all(np.isfinite(x)), name


def test_expiry_gives_intrinsic_and_a_delta_step():
    s = np.array([90.0, 100.0, 110.0])
    c = greeks(is_call=True, underlying=s, strike=100.0, t=0.0, vol=0.3, rate=0.05)
    p = greeks(is_call=False, underlying=s, strike=100.0, t=0.0, vol=0.3, rate=0.05)
    _assert_clean(c), _assert_clean(p)
    np.testing.assert_array_equal(c.price, [0.0, 0.0, 10.0])
    np.testing.assert_array_equal(p.price, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(c.delta, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(p.delta, [-1.0, -0.5, 0.0])
    np.testing.assert_array_equal(c.gamma, 0.0)
    np.testing.assert_array_equal(c.vega, 0.0)


def test_near_expiry_converges_to_the_expiry_values():
    s = np.array([90.0, 110.0])
    near = greeks(is_call=True, underlying=s, strike=100.0, t=1e-9, vol=0.3, rate=0.05)
    np.testing.assert_allclose(near.price, [0.0, 10.0], atol=1e-6)
    np.testing.assert_allclose(near.delta, [0.0, 1.0], atol=1e-12)


def test_zero_vol_gives_discounted_forward_intrinsic():
    s = np.array([90.0, 100.0, 110.0])
    kw = dict(underlying=s, strike=100.0, t=0.5, rate=0.05, carry=0.02)
    for call in (True, False):
        g = greeks(is_call=call, vol=0.0, **kw)
        _assert_clean(g)
        np.testing.assert_allclose(g.price, forward_intrinsic(is_call=call, **kw), rtol=1e-15)
        tiny = greeks(is_call=call, vol=1e-9, **kw)
        np.testing.assert_allclose(tiny.price, g.price, atol=1e-9)
        # Delta is the discounted step e^{(b−r)T}·1{in the money}; it is continuous in σ off the money.
        np.testing.assert_allclose(tiny.delta[[0, 2]], g.delta[[0, 2]], atol=1e-12)
        np.testing.assert_allclose(tiny.theta[[0, 2]], g.theta[[0, 2]], rtol=1e-9, atol=1e-12)


def test_deep_in_and_out_of_the_money_are_finite():
    s = np.array([1e-3, 1.0, 1e3, 1e6])
    for call in (True, False):
        g = greeks(is_call=call, underlying=s, strike=1.0, t=np.array([[1e-6], [1.0], [30.0]]), vol=0.2,
                   rate=0.03, carry=0.01)
        _assert_clean(g)
        assert np.all(g.price >= 0)


def test_zero_strike_and_zero_underlying():
    g = greeks(is_call=True, underlying=50.0, strike=0.0, t=1.0, vol=0.2, rate=0.05, carry=0.01)
    _assert_clean(g)
    assert g.price == pytest.approx(50.0 * np.exp(-0.04))
    assert g.delta == pytest.approx(np.exp(-0.04))
    assert g.gamma == g.vega == 0.0
    p = greeks(is_call=False, underlying=0.0, strike=50.0, t=1.0, vol=0.2, rate=0.05)
    _assert_clean(p)
    assert p.price == pytest.approx(50.0 * np.exp(-0.05))
    both = greeks(is_call=np.array([True, False]), underlying=0.0, strike=0.0, t=1.0, vol=0.2, rate=0.05)
    _assert_clean(both)
    np.testing.assert_array_equal(both.price, 0.0)


# ------------------------------------------------------------------ QuantLib oracle (test-only)

ql = pytest.importorskip("QuantLib")
TODAY = ql.Date(15, 1, 2025)


def _ql_greeks(call, s, k, days, v, r, q):
    ql.Settings.instance().evaluationDate = TODAY
    dc = ql.Actual365Fixed()

    def curve(x):
        return ql.YieldTermStructureHandle(ql.FlatForward(TODAY, x, dc, ql.Continuous))

    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(s)), curve(q), curve(r),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), v, dc)))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k),
                              ql.EuropeanExercise(TODAY + days))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return dict(price=option.NPV(), delta=option.delta(), gamma=option.gamma(), vega=option.vega(),
                theta=option.theta(), rho=option.rho(), dividend_rho=option.dividendRho())


QL_GRID = list(itertools.product([True, False], [80.0, 97.0, 100.0, 104.0, 125.0], [7, 30, 91, 365],
                                 [0.12, 0.3, 0.6], [0.02, 0.06]))


def _close(mine, ref, what):
    # 1e-8 relative, with an absolute floor for Greeks that pass through zero.
    assert mine == pytest.approx(ref, rel=1e-8, abs=1e-10), what


@pytest.mark.parametrize("call,f,days,v,r", QL_GRID)
def test_black76_against_quantlib(call, f, days, v, r):
    # Black-76 in QuantLib: a BSM process whose dividend yield equals the rate (b = 0).
    ref = _ql_greeks(call, f, 100.0, days, v, r, r)
    g = greeks(is_call=call, underlying=f, strike=100.0, t=days / 365, vol=v, rate=r, carry=0.0)
    for name in ("price", "delta", "gamma", "vega", "theta"):
        _close(getattr(g, name), ref[name], name)
    # QuantLib's rho holds q; ours holds b = r − q, i.e. moves q with r: rho + dividendRho.
    _close(g.rho, ref["rho"] + ref["dividend_rho"], "rho")


@pytest.mark.parametrize("call,s,days,v,r", QL_GRID)
def test_bsm_with_dividend_yield_against_quantlib(call, s, days, v, r):
    q = 0.025
    ref = _ql_greeks(call, s, 100.0, days, v, r, q)
    g = greeks(is_call=call, underlying=s, strike=100.0, t=days / 365, vol=v, rate=r, carry=r - q,
               carry_follows_rate=True)
    for name in ("price", "delta", "gamma", "vega", "theta", "rho"):
        _close(getattr(g, name), ref[name], name)


# ------------------------------------------------------------------ the checker's scalar kernel

def test_agrees_with_the_checkers_plain_python_kernel():
    # opl.lang.estimates is the numpy-free Black kernel the checker uses; both must give the same numbers.
    from opl.lang import estimates

    rng = np.random.default_rng(11)
    for _ in range(200):
        call = bool(rng.random() < 0.5)
        s, k = rng.uniform(50, 150), rng.uniform(50, 150)
        t, v, r, b = rng.uniform(1e-3, 3), rng.uniform(0.05, 1.0), rng.uniform(-0.01, 0.1), rng.uniform(-0.05, 0.1)
        g = greeks(is_call=call, underlying=s, strike=k, t=t, vol=v, rate=r, carry=b)
        kw = dict(s=s, k=k, t=t, sigma=v, r=r, b=b)
        assert g.price == pytest.approx(estimates.black_price(is_call=call, **kw), rel=1e-11, abs=1e-13)
        assert g.delta == pytest.approx(estimates.black_delta(is_call=call, **kw), rel=1e-11, abs=1e-13)
        assert g.vega == pytest.approx(estimates.black_vega(**kw), rel=1e-11, abs=1e-13)
