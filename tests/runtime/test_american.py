"""American options: BAW against Haug's table, QuantLib and the tree; exact cases; Greeks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import opl.runtime.pricing.american as am
from opl.runtime.pricing.american import american_greeks, baw_price, binomial_price, deterministic_price
from opl.runtime.pricing.black import Greeks, greeks, price

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy warnings leaking out fail the test

# Haug, Option Pricing Formulas (1998) p. 24, as reproduced in QuantLib's test-suite (americanoption.cpp):
# futures options (b = 0), K = 100, r = 10%; (call?, S, T, σ, value). QuantLib replicates them to 3e-3.
HAUG_BAW = [
    (True, 90, 0.1, 0.15, 0.0206), (True, 100, 0.1, 0.15, 1.8771), (True, 110, 0.1, 0.15, 10.0089),
    (True, 90, 0.1, 0.25, 0.3159), (True, 100, 0.1, 0.25, 3.1280), (True, 110, 0.1, 0.25, 10.3919),
    (True, 90, 0.1, 0.35, 0.9495), (True, 100, 0.1, 0.35, 4.3777), (True, 110, 0.1, 0.35, 11.1679),
    (True, 90, 0.5, 0.15, 0.8208), (True, 100, 0.5, 0.15, 4.0842), (True, 110, 0.5, 0.15, 10.8087),
    (True, 90, 0.5, 0.25, 2.7437), (True, 100, 0.5, 0.25, 6.8015), (True, 110, 0.5, 0.25, 13.0170),
    (True, 90, 0.5, 0.35, 5.0063), (True, 100, 0.5, 0.35, 9.5106), (True, 110, 0.5, 0.35, 15.5689),
    (False, 90, 0.1, 0.15, 10.0000), (False, 100, 0.1, 0.15, 1.8770), (False, 110, 0.1, 0.15, 0.0410),
    (False, 90, 0.1, 0.25, 10.2533), (False, 100, 0.1, 0.25, 3.1277), (False, 110, 0.1, 0.25, 0.4562),
    (False, 90, 0.1, 0.35, 10.8787), (False, 100, 0.1, 0.35, 4.3777), (False, 110, 0.1, 0.35, 1.2402),
    (False, 90, 0.5, 0.15, 10.5595), (False, 100, 0.5, 0.15, 4.0842), (False, 110, 0.5, 0.15, 1.0822),
    (False, 90, 0.5, 0.25, 12.4419), (False, 100, 0.5, 0.25, 6.8014), (False, 110, 0.5, 0.25, 3.3226),
    (False, 90, 0.5, 0.35, 14.6945), (False, 100, 0.5, 0.35, 9.5104), (False, 110, 0.5, 0.35, 5.8823),
]


def test_haug_table():
    call, s, t, v, expected = (np.array(x) for x in zip(*HAUG_BAW))
    kw = dict(is_call=call, underlying=s.astype(float), strike=100.0, t=t, vol=v, rate=0.1, carry=0.0)
    np.testing.assert_allclose(baw_price(**kw), expected, atol=3e-3)
    # The approximation error on this table, against the reference tree (documented in american.py).
    err = np.abs(baw_price(**kw) - binomial_price(**kw))
    assert err[t == 0.1].max() < 0.01
    assert err.max() < 0.04


# ------------------------------------------------------------------ QuantLib (test-only oracle)

ql = pytest.importorskip("QuantLib")
TODAY = ql.Date(15, 1, 2025)


def _ql_american(engine, call, s, k, days, v, r, q):
    ql.Settings.instance().evaluationDate = TODAY
    dc = ql.Actual365Fixed()

    def curve(x):
        return ql.YieldTermStructureHandle(ql.FlatForward(TODAY, x, dc, ql.Continuous))

    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(s)), curve(q), curve(r),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), v, dc)))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k),
                              ql.AmericanExercise(TODAY, TODAY + days))
    option.setPricingEngine(engine(process))
    return option.NPV()


BAW_GRID = list(itertools.product([True, False], [70.0, 90.0, 100.0, 110.0, 150.0], [1, 30, 182, 1000],
                                  [0.05, 0.3, 1.0], [0.001, 0.1], [0.0, -0.05, 0.05]))


def _baw_grid():
    call, s, days, v, r, b = (np.array(x) for x in zip(*BAW_GRID))
    kw = dict(is_call=call.astype(bool), underlying=s, strike=100.0, t=days / 365, vol=v, rate=r, carry=b)
    ref = np.array([_ql_american(ql.BaroneAdesiWhaleyApproximationEngine, c, x, 100.0, int(d), w, y, y - z)
                    for c, x, d, w, y, z in BAW_GRID])
    return kw, ref


def test_baw_matches_quantlib_algorithm(monkeypatch):
    # With QuantLib's Newton tolerance (1e-6) the two implementations take the same steps.
    kw, ref = _baw_grid()
    monkeypatch.setattr(am, "BAW_TOLERANCE", 1e-6)
    np.testing.assert_allclose(baw_price(**kw), ref, rtol=1e-10, atol=1e-12)


def test_baw_default_tolerance_is_tighter_than_quantlib():
    # Our 1e-12 tolerance moves prices by at most what QuantLib's 1e-6 residual allows (~1e-6 K).
    kw, ref = _baw_grid()
    np.testing.assert_allclose(baw_price(**kw), ref, rtol=0, atol=2e-6 * 100.0)


TREE_GRID = list(itertools.product([True, False], [80.0, 100.0, 125.0], [7, 91, 365], [0.15, 0.6],
                                   [(0.02, 0.0), (0.1, 0.05), (0.05, -0.05)]))


@pytest.mark.parametrize("call,s,days,v,rb", TREE_GRID)
def test_tree_matches_quantlib_finite_differences(call, s, days, v, rb):
    r, b = rb
    ref = _ql_american(lambda p: ql.FdBlackScholesVanillaEngine(p, 800, 800), call, s, 100.0, days, v, r, r - b)
    mine = binomial_price(is_call=call, underlying=s, strike=100.0, t=days / 365, vol=v, rate=r, carry=b)
    assert mine == pytest.approx(ref, rel=1e-3, abs=1e-5 * 100)


def test_european_tree_is_quantlibs_leisen_reimer_tree():
    ql.Settings.instance().evaluationDate = TODAY
    for call, s, days, v in [(True, 100.0, 91, 0.3), (False, 120.0, 365, 0.6), (True, 85.0, 30, 0.2)]:
        dc = ql.Actual365Fixed()
        flat = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, 0.03, dc, ql.Continuous))
        div = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, 0.01, dc, ql.Continuous))
        process = ql.BlackScholesMertonProcess(ql.QuoteHandle(ql.SimpleQuote(s)), div, flat,
                                               ql.BlackVolTermStructureHandle(
                                                   ql.BlackConstantVol(TODAY, ql.NullCalendar(), v, dc)))
        option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, 100.0),
                                  ql.EuropeanExercise(TODAY + days))
        option.setPricingEngine(ql.BinomialVanillaEngine(process, "lr", 301))
        mine = binomial_price(is_call=call, underlying=s, strike=100.0, t=days / 365, vol=v, rate=0.03,
                              carry=0.02, steps=301, american=False)
        assert mine == pytest.approx(option.NPV(), rel=1e-10)


# ------------------------------------------------------------------ documented accuracy

def test_baw_accuracy_grid():
    """The numbers in the american.py docstring: b = 0, r = 2%, the CZCE-like grid."""
    m = np.round(np.arange(0.80, 1.2001, 0.05), 2)
    g = np.array(list(itertools.product([1.0, 0.0], m, [7, 14, 30, 60, 91, 182, 365], [0.15, 0.25, 0.35, 0.45, 0.6])))
    kw = dict(is_call=g[:, 0].astype(bool), underlying=100.0 * g[:, 1], strike=100.0, t=g[:, 2] / 365,
              vol=g[:, 3], rate=0.02, carry=0.0)
    ref = binomial_price(**kw, steps=1001)
    err = np.abs(baw_price(**kw) - ref)
    worth = ref >= 0.05
    assert err.max() < 0.03
    assert (err / ref)[worth].max() < 0.007
    assert err[~worth].max() < 1e-4
    assert err[g[:, 2] <= 30].max() < 0.005
    assert (err / ref)[worth & (g[:, 2] <= 30)].max() < 5e-4


def test_reference_tree_converges():
    kw = dict(is_call=np.array([True, False]), underlying=np.array([125.0, 100.0]), strike=100.0, t=1.0,
              vol=0.6, rate=0.1, carry=-0.05)
    fine = binomial_price(**kw, steps=4001)
    np.testing.assert_allclose(binomial_price(**kw, steps=1001), fine, atol=3e-3)
    np.testing.assert_allclose(binomial_price(**kw, steps=1001, method="crr"), fine, atol=1e-2)


# ------------------------------------------------------------------ exact cases and bounds

def test_call_with_carry_at_least_rate_is_european():
    kw = dict(underlying=np.array([80.0, 100.0, 130.0]), strike=100.0, t=0.7, vol=0.3, rate=0.03)
    for b in (0.03, 0.08):
        np.testing.assert_array_equal(baw_price(is_call=True, carry=b, **kw), price(is_call=True, carry=b, **kw))


def test_put_with_nonpositive_rate_is_european():
    kw = dict(underlying=np.array([80.0, 100.0, 130.0]), strike=100.0, t=0.7, vol=0.3, carry=0.0)
    for r in (0.0, -0.01):
        np.testing.assert_array_equal(baw_price(is_call=False, rate=r, **kw), price(is_call=False, rate=r, **kw))
        tree = binomial_price(is_call=False, rate=r, **kw)
        np.testing.assert_allclose(tree, price(is_call=False, rate=r, **kw), atol=2e-3)


def test_nonpositive_rates():
    g = np.array(list(itertools.product([1.0, 0.0], [80.0, 100.0, 120.0], [0.25, 1.0], [0.1, 0.3], [-0.03, 0.0],
                                        [-0.05, 0.0, 0.05])))
    kw = dict(is_call=g[:, 0].astype(bool), underlying=g[:, 1], strike=100.0, t=g[:, 2], vol=g[:, 3], rate=g[:, 4],
              carry=g[:, 5])
    baw, tree, euro = baw_price(**kw), binomial_price(**kw, steps=2001), price(**kw)
    # Futures options (b = 0) at r <= 0 are never exercised early: exact, and the tree agrees.
    futures = g[:, 5] == 0
    np.testing.assert_array_equal(baw[futures], euro[futures])
    np.testing.assert_allclose(tree[futures], euro[futures], atol=2e-3)
    # Elsewhere BAW carries the (documented) error of an approximation made for r > 0.
    assert np.abs(baw - tree).max() < 0.25
    assert np.all(baw >= euro - 1e-12)


def test_expiry_and_zero_vol():
    s = np.array([80.0, 100.0, 120.0])
    np.testing.assert_array_equal(baw_price(is_call=False, underlying=s, strike=100.0, t=0.0, vol=0.3, rate=0.05),
                                  [20.0, 0.0, 0.0])
    # σ = 0: the best deterministic exercise date. An ITM put on a future is exercised now.
    v0 = baw_price(is_call=False, underlying=s, strike=100.0, t=1.0, vol=0.0, rate=0.05)
    np.testing.assert_allclose(v0, [20.0, 0.0, 0.0])
    # A stock call with r > b > 0 and F > K waits for the interior optimum e^{bτ} = rK/((r−b)S).
    s0, k, r, b = 100.0, 150.0, 0.08, 0.06
    tau = np.log(r * k / ((r - b) * s0)) / b
    best = s0 * np.exp((b - r) * tau) - k * np.exp(-r * tau)
    assert deterministic_price(is_call=True, underlying=s0, strike=k, t=30.0, rate=r, carry=b) == \
        pytest.approx(best)
    # The tree approaches the deterministic value as σ → 0; BAW's small-σ limit is off by its own
    # approximation error (here 0.003 on 23.37, 1.3e-4 relative).
    kw = dict(is_call=True, underlying=120.0, strike=100.0, t=2.0, rate=0.08, carry=0.03)
    assert binomial_price(vol=1e-3, **kw, steps=4001) == pytest.approx(deterministic_price(**kw), rel=1e-9)
    with pytest.raises(ValueError, match="no valid branching"):  # CRR needs σ√Δt > bΔt
        binomial_price(vol=1e-3, **kw, method="crr")
    assert baw_price(vol=1e-4, **kw) == pytest.approx(deterministic_price(**kw), rel=2e-4)


def test_deep_in_the_money_put_is_exercised():
    g = american_greeks(is_call=False, underlying=50.0, strike=100.0, t=0.5, vol=0.2, rate=0.05)
    assert (g.price, g.delta, g.gamma) == (50.0, -1.0, 0.0)


def test_zero_strike_and_zero_underlying():
    out = baw_price(is_call=np.array([True, False, True, False]), underlying=np.array([50.0, 50.0, 0.0, 0.0]),
                    strike=np.array([0.0, 0.0, 100.0, 100.0]), t=1.0, vol=0.3, rate=0.05, carry=0.0)
    np.testing.assert_array_equal(out, [50.0, 0.0, 0.0, 100.0])


@settings(max_examples=200, deadline=None)
@given(s=st.floats(1.0, 1000.0), m=st.floats(0.3, 3.0), t=st.floats(1e-4, 5.0), v=st.floats(0.01, 2.0),
       r=st.floats(0.0, 0.15), b=st.floats(-0.15, 0.15), call=st.booleans())
def test_american_at_least_european_and_intrinsic(s, m, t, v, r, b, call):
    kw = dict(is_call=call, underlying=s, strike=s * m, t=t, vol=v, rate=r, carry=b)
    value = baw_price(**kw)
    assert np.isfinite(value)
    assert value >= price(**kw) * (1 - 1e-12) - 1e-12 * s
    assert value >= max((s - s * m) if call else (s * m - s), 0.0) - 1e-12 * s


def test_newton_converges_on_a_wide_random_grid():
    rng = np.random.default_rng(20250115)
    n = 50_000
    phi = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    t = np.exp(rng.uniform(np.log(1 / 8760), np.log(30), n))
    v = np.exp(rng.uniform(np.log(1e-4), np.log(5), n))
    r = rng.uniform(1e-4, 0.3, n)
    b = rng.uniform(-0.3, 0.3, n)
    early = np.where(phi > 0, b < r, True)
    crit, *_, done = am._critical_price(phi[early], np.full(early.sum(), 100.0), t[early], v[early], r[early],
                                        b[early])
    assert done.all()
    assert np.all(np.isfinite(crit))
    values = baw_price(is_call=phi > 0, underlying=rng.uniform(50, 150, n), strike=100.0, t=t, vol=v, rate=r, carry=b)
    assert np.all(np.isfinite(values))


def test_tree_argument_checks():
    kw = dict(is_call=True, underlying=100.0, strike=100.0, t=0.5, vol=0.2, rate=0.05)
    with pytest.raises(ValueError, match="method"):
        binomial_price(**kw, method="trinomial")
    with pytest.raises(ValueError, match="steps"):
        binomial_price(**kw, steps=0)
    # Leisen–Reimer needs an odd number of steps: 100 is priced as 101.
    assert binomial_price(**kw, steps=100) == binomial_price(**kw, steps=101)
    assert np.shape(binomial_price(**(kw | {"underlying": [[90.0, 100.0]]}), steps=51)) == (1, 2)
    # Far from the strike near expiry Leisen–Reimer's p rounds to 1; the tree falls back to CRR.
    far = dict(is_call=True, underlying=1000.0, strike=100.0, t=1 / 365, vol=0.05, rate=0.05)
    assert binomial_price(**far) == pytest.approx(900.0, rel=1e-12)


# ------------------------------------------------------------------ Greeks

@pytest.mark.parametrize("call,s,t,v,r,b", list(itertools.product(
    [True, False], [85.0, 100.0, 115.0], [30 / 365, 0.5], [0.2, 0.5], [0.05], [0.0, -0.03])))
def test_american_greeks_match_bumped_prices(call, s, t, v, r, b):
    g = american_greeks(is_call=call, underlying=s, strike=100.0, t=t, vol=v, rate=r, carry=b)
    assert isinstance(g, Greeks)

    def value(**over):
        return baw_price(**(dict(is_call=call, underlying=s, strike=100.0, t=t, vol=v, rate=r, carry=b) | over))

    assert g.price == value()
    # Bumps differ from the implementation's (1e-4 in σ and T, 1e-5 in r), so this checks method and wiring.
    h = 1e-4 * s
    assert g.delta == pytest.approx((value(underlying=s + h) - value(underlying=s - h)) / (2 * h), abs=1e-7)
    h = 1e-3 * s
    assert g.gamma == pytest.approx((value(underlying=s + h) - 2 * g.price + value(underlying=s - h)) / h**2,
                                    rel=1e-3, abs=1e-6)
    assert g.vega == pytest.approx((value(vol=v + 3e-4) - value(vol=v - 3e-4)) / 6e-4, rel=1e-4)
    assert g.theta == pytest.approx(-(value(t=t + 3e-4) - value(t=t - 3e-4)) / 6e-4, rel=1e-3, abs=1e-4)
    assert g.rho == pytest.approx((value(rate=r + 3e-5) - value(rate=r - 3e-5)) / 6e-5, rel=1e-4, abs=1e-6)
    gq = american_greeks(is_call=call, underlying=s, strike=100.0, t=t, vol=v, rate=r, carry=b,
                         carry_follows_rate=True)
    assert gq.rho == pytest.approx((value(rate=r + 3e-5, carry=b + 3e-5) - value(rate=r - 3e-5, carry=b - 3e-5))
                                   / 6e-5, rel=1e-4, abs=1e-6)

    def delta_at(x):
        return american_greeks(is_call=call, underlying=s, strike=100.0, t=x, vol=v, rate=r, carry=b).delta

    assert g.charm == pytest.approx(-(delta_at(t + 3e-4) - delta_at(t - 3e-4)) / 6e-4, rel=1e-3, abs=1e-5)
    assert g.theta <= 0  # a long option loses value as time passes (0 where it is exercised now)


def test_american_greeks_reduce_to_european_when_exercise_is_never_early():
    kw = dict(is_call=True, underlying=np.array([90.0, 100.0, 110.0]), strike=100.0, t=0.4, vol=0.3, rate=0.02,
              carry=0.02)
    a, e = american_greeks(**kw), greeks(**kw)
    for name in ("price", "delta", "gamma"):
        np.testing.assert_allclose(getattr(a, name), getattr(e, name), rtol=1e-14)
    for name in ("vega", "theta", "rho", "charm"):
        np.testing.assert_allclose(getattr(a, name), getattr(e, name), rtol=1e-6, atol=1e-8)


def test_american_greeks_limits_are_finite():
    g = american_greeks(is_call=np.array([[True], [False]]), underlying=np.array([0.0, 1.0, 100.0, 1e4]),
                        strike=100.0, t=np.array([[0.0], [1e-6]]), vol=0.3, rate=0.05)
    for name, x in zip(Greeks._fields, g):
        assert np.all(np.isfinite(x)), name


def test_critical_price_is_solved_once_per_distinct_series(monkeypatch):
    # The marking tables price a grid of 401 underlyings × 41 vols: S* depends on the vol only, so
    # the Newton solve runs on 41 elements, and every price is bit for bit the element-wise one.
    sizes = []
    solve = am._critical_price

    def counting(*args):
        sizes.append(args[0].size)
        return solve(*args)

    forward = np.exp(np.linspace(-1.0, 1.0, 401))[:, None]
    vol = np.exp(np.linspace(np.log(0.02), np.log(3.0), 41))[None, :]
    monkeypatch.setattr(am, "_critical_price", counting)
    grid = baw_price(is_call=False, underlying=forward, strike=1.0, t=0.08, vol=vol, rate=0.015)
    assert sizes == [41]
    single = [baw_price(is_call=False, underlying=forward[i, 0], strike=1.0, t=0.08, vol=vol[0, j], rate=0.015)
              for i in (0, 200, 400) for j in (0, 20, 40)]
    assert [grid[i, j] for i in (0, 200, 400) for j in (0, 20, 40)] == single
