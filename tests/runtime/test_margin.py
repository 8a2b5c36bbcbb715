"""Margin formulas: worked examples computed by hand, then vectorised and error cases."""

from __future__ import annotations

import numpy as np
import pytest

from opl.runtime.market.margin import (
    futures_margin,
    long_option_margin,
    options_margin,
    otm_amount,
    short_option_margin,
    with_margin_method,
)
from opl.runtime.market.rules import RulePackError, load_pack


@pytest.fixture(scope="module")
def cj():
    return load_pack("czce_cj")


@pytest.fixture(scope="module")
def sse():
    return load_pack("sse_50etf")


@pytest.fixture(scope="module")
def us():
    return load_pack("us_equity")


# ------------------------------------------------------------------ CZCE jujube

def test_cj_futures_margin(cj):
    # 12% x 10000 CNY/t x 5 t x 2 lots = 12000 CNY.
    assert futures_margin(pack=cj, price=10000.0, lots=2) == pytest.approx(12000.0)
    # Broker: (12% + 3%) x 10000 x 5 = 7500 CNY per lot.
    assert futures_margin(pack=cj, price=10000.0, broker=True) == pytest.approx(7500.0)


def test_cj_short_call_otm(cj):
    # F = 10000, K = 10500 call, premium 150 CNY/t, 5 t/lot:
    # futures margin = 12% x 10000 x 5 = 6000; OTM = 500 x 5 = 2500;
    # margin = 150 x 5 + max(6000 - 1250, 3000) = 750 + 4750 = 5500.
    m = short_option_margin(pack=cj, is_call=True, underlying=10000.0, strike=10500.0, premium=150.0)
    assert m == pytest.approx(5500.0)


def test_cj_short_put_itm(cj):
    # F = 10000, K = 10400 put (ITM, OTM = 0), premium 480:
    # 480 x 5 + max(6000 - 0, 3000) = 2400 + 6000 = 8400 per lot; 3 lots = 25200.
    m = short_option_margin(pack=cj, is_call=False, underlying=10000.0, strike=10400.0, premium=480.0, lots=3)
    assert m == pytest.approx(25200.0)


def test_cj_deep_otm_hits_the_half_margin_floor(cj):
    # F = 10000, K = 13000 call, premium 20: OTM = 3000 x 5 = 15000;
    # 20 x 5 + max(6000 - 7500, 3000) = 100 + 3000 = 3100.
    m = short_option_margin(pack=cj, is_call=True, underlying=10000.0, strike=13000.0, premium=20.0)
    assert m == pytest.approx(3100.0)


def test_cj_broker_margin_uses_the_addon(cj):
    # Broker rate 15%: futures margin 7500; K = 9500 put OTM = 500 x 5 = 2500;
    # 120 x 5 + max(7500 - 1250, 3750) = 600 + 6250 = 6850.
    m = short_option_margin(pack=cj, is_call=False, underlying=10000.0, strike=9500.0, premium=120.0,
                            broker=True)
    assert m == pytest.approx(6850.0)


def test_cj_strangle_vectorised(cj):
    # The jujube short strangle: put at 9500 and call at 10500 around F = 10000, 2 lots each.
    # put: 120 x 5 + max(6000 - 1250, 3000) = 600 + 4750 = 5350 -> 10700 for 2 lots
    # call: 150 x 5 + 4750 = 5500 -> 11000 for 2 lots
    m = short_option_margin(pack=cj, is_call=np.array([False, True]), underlying=10000.0,
                            strike=np.array([9500.0, 10500.0]), premium=np.array([120.0, 150.0]), lots=2)
    assert isinstance(m, np.ndarray)
    np.testing.assert_allclose(m, [10700.0, 11000.0])


def test_margin_over_price_paths(cj):
    # Vectorised over paths x strikes by broadcasting, as the replay will call it.
    f = np.array([[9000.0], [10000.0], [11000.0]])
    m = short_option_margin(pack=cj, is_call=True, underlying=f, strike=np.array([10500.0, 12000.0]),
                            premium=100.0)
    assert m.shape == (3, 2)
    # Row F = 9000, K = 10500: fm = 5400, OTM = 1500 x 5 = 7500 -> 500 + max(5400 - 3750, 2700) = 3200.
    assert m[0, 0] == pytest.approx(3200.0)


# ------------------------------------------------------------------ SSE 50ETF

def test_sse_short_call(sse):
    # S = 2.80, K = 3.00 call, settle 0.05: OTM = 0.20;
    # 0.05 + max(12% x 2.80 - 0.20, 7% x 2.80) = 0.05 + max(0.136, 0.196) = 0.246; x 10000 = 2460.
    m = short_option_margin(pack=sse, is_call=True, underlying=2.80, strike=3.00, premium=0.05)
    assert m == pytest.approx(2460.0)


def test_sse_short_put(sse):
    # S = 2.50, K = 2.60 put (ITM), settle 0.12:
    # min[0.12 + max(0.30 - 0, 7% x 2.60 = 0.182), 2.60] = 0.42; x 10000 = 4200.
    m = short_option_margin(pack=sse, is_call=False, underlying=2.50, strike=2.60, premium=0.12)
    assert m == pytest.approx(4200.0)


def test_sse_put_capped_at_strike(sse):
    # S = 0.10, K = 3.00 put, settle 2.90: 2.90 + max(0.012, 0.21) = 3.11 > K -> capped at 3.00 x 10000.
    m = short_option_margin(pack=sse, is_call=False, underlying=0.10, strike=3.00, premium=2.90)
    assert m == pytest.approx(30000.0)


def test_sse_has_no_futures_margin(sse):
    with pytest.raises(RulePackError, match="margin.futures_rate"):
        futures_margin(pack=sse, price=2.8)


# ------------------------------------------------------------------ US (CBOE margin manual)

def test_us_short_put_itm(us):
    # 5 puts, S = 52, K = 55, premium 4 (CBOE-style example):
    # max(4 + 20% x 52 - 0, 4 + 10% x 55) = max(14.40, 9.50) = 14.40; x 100 x 5 = 7200.
    m = short_option_margin(pack=us, is_call=False, underlying=52.0, strike=55.0, premium=4.0, lots=5)
    assert m == pytest.approx(7200.0)


def test_us_short_call_otm(us):
    # 5 calls, S = 52, K = 55 (OTM 3), premium 4:
    # max(4 + 10.40 - 3, 4 + 5.20) = 11.40; x 100 x 5 = 5700.
    m = short_option_margin(pack=us, is_call=True, underlying=52.0, strike=55.0, premium=4.0, lots=5)
    assert m == pytest.approx(5700.0)


def test_us_far_otm_put_minimum_on_strike(us):
    # S = 100, K = 70 put (OTM 30), premium 0.50: 20% x 100 - 30 < 0, so the minimum
    # 10% x 70 = 7 applies: (0.50 + 7) x 100 = 750.
    m = short_option_margin(pack=us, is_call=False, underlying=100.0, strike=70.0, premium=0.50)
    assert m == pytest.approx(750.0)


# ------------------------------------------------------------------ common

def test_long_option_pays_premium_only(cj, sse):
    assert long_option_margin(pack=cj, premium=150.0, lots=2) == pytest.approx(1500.0)   # 150 x 5 x 2
    assert long_option_margin(pack=sse, premium=0.0512) == pytest.approx(512.0)       # 0.0512 x 10000


def test_otm_amount():
    np.testing.assert_allclose(otm_amount([True, True, False, False], 100.0, [110.0, 90.0, 90.0, 110.0]),
                               [10.0, 0.0, 10.0, 0.0])


def test_negative_lots_rejected(cj):
    with pytest.raises(ValueError, match="lots must be >= 0"):
        short_option_margin(pack=cj, is_call=True, underlying=1.0e4, strike=1.05e4, premium=150.0, lots=-1)


def test_zero_lots_zero_margin(cj):
    assert short_option_margin(pack=cj, is_call=True, underlying=1.0e4, strike=1.05e4, premium=150.0,
                               lots=0) == 0.0


# ------------------------------------------------------------------ combination margin (opl.runtime.market.combinations)
# Worked by hand from the packs' cited rules: a short straddle/strangle posts max(call margin, put
# margin) + the other leg's premium; a vertical spread min(short leg's margin, strike width x unit).

def _book(*legs):
    """(is_call, strike, premium, signed lots) -> options_margin's holdings, one expiry."""
    return [(is_call, k, p, q, 0) for is_call, k, p, q in legs]


def test_cj_short_strangle_is_margined_as_one_position(cj):
    # F = 10400; put 9800 at 135.8: 679 + max(6240 - 0.5 x 600 x 5, 3120) = 679 + 4740 = 5419;
    # call 11200 at 109.2: 546 + max(6240 - 0.5 x 800 x 5, 3120) = 546 + 4240 = 4786.
    # Leg by leg 10,205 a lot; as a strangle max(5419, 4786) + 109.2 x 5 = 5,965; 20 lots 119,300.
    book = _book((False, 9800.0, 135.8, -20.0), (True, 11200.0, 109.2, -20.0))
    assert options_margin(pack=cj, holdings=book, underlying=10400.0) == pytest.approx(119_300.0)
    per_leg = with_margin_method(cj, "per_leg")
    assert options_margin(pack=per_leg, holdings=book, underlying=10400.0) == pytest.approx(204_100.0)
    assert cj.margin.combinations and not per_leg.margin.combinations and load_pack("czce_cj").margin.combinations


def test_cj_short_straddle_charges_the_larger_leg_and_the_other_premium(cj):
    # F = 10000, both at 10000, call 300, put 280: FM = 6000, OTM 0 -> call 1500 + 6000 = 7500, put 1400 + 6000
    # = 7400; straddle 7500 + 280 x 5 = 8900 (leg by leg 14,900).
    book = _book((True, 10000.0, 300.0, -1.0), (False, 10000.0, 280.0, -1.0))
    assert options_margin(pack=cj, holdings=book, underlying=10000.0) == pytest.approx(8900.0)


def test_unequal_lots_pair_what_they_can_and_margin_the_rest_alone(cj):
    # 3 short calls, 1 short put (the strangle above): one strangle lot 5,965 + 2 calls x 4,786 = 15,537.
    book = _book((False, 9800.0, 135.8, -1.0), (True, 11200.0, 109.2, -3.0))
    assert options_margin(pack=cj, holdings=book, underlying=10400.0) == pytest.approx(15_537.0)


def test_a_put_struck_above_the_call_is_not_a_strangle(cj):
    # Put 10900 / call 10000 at F = 10400 (support above resistance, W411): both legs are margined alone.
    book = _book((False, 10900.0, 560.0, -1.0), (True, 10000.0, 470.0, -1.0))
    both = sum(short_option_margin(pack=cj, is_call=c, underlying=10400.0, strike=k, premium=p)
               for c, k, p, _, _ in book)
    assert options_margin(pack=cj, holdings=book, underlying=10400.0) == pytest.approx(both)


def test_different_expiries_do_not_pair(cj):
    book = [(False, 9800.0, 135.8, -1.0, 0), (True, 11200.0, 109.2, -1.0, 30)]
    assert options_margin(pack=cj, holdings=book, underlying=10400.0) == pytest.approx(10_205.0)


def test_sse_short_strangle(sse):
    # S = 2.80: call 3.00 at 0.05 -> 2460 (above); put 2.60 at 0.03, OTM 0.20:
    # min[0.03 + max(0.336 - 0.20, 7% x 2.60 = 0.182), 2.60] = 0.212 -> 2120.
    # Strangle: max(2460, 2120) + 0.03 x 10000 = 2760 (leg by leg 4580).
    book = _book((True, 3.00, 0.05, -1.0), (False, 2.60, 0.03, -1.0))
    assert options_margin(pack=sse, holdings=book, underlying=2.80) == pytest.approx(2760.0)


def test_sse_spreads_post_their_strike_width_and_debit_spreads_nothing(sse):
    # Bear call spread (short 3.00, long 3.10): width 0.10 x 10000 = 1000 < 2460.
    bear_call = _book((True, 3.00, 0.05, -1.0), (True, 3.10, 0.03, 1.0))
    assert options_margin(pack=sse, holdings=bear_call, underlying=2.80) == pytest.approx(1000.0)
    # Bull put spread (short 2.60, long 2.50): 1000 < 2120.
    bull_put = _book((False, 2.60, 0.03, -1.0), (False, 2.50, 0.01, 1.0))
    assert options_margin(pack=sse, holdings=bull_put, underlying=2.80) == pytest.approx(1000.0)
    # Bull call spread (long 2.90, short 3.00): the long leg covers the short one.
    bull_call = _book((True, 2.90, 0.09, 1.0), (True, 3.00, 0.05, -1.0))
    assert options_margin(pack=sse, holdings=bull_call, underlying=2.80) == pytest.approx(0.0)
    # A wide spread posts no more than its short leg alone: width 1.00 x 10000 = 10,000 > 2460.
    wide = _book((True, 3.00, 0.05, -1.0), (True, 4.00, 0.001, 1.0))
    assert options_margin(pack=sse, holdings=wide, underlying=2.80) == pytest.approx(2460.0)


def test_iron_condor_takes_the_cheaper_pairing(sse):
    # Two spreads (1000 + 1000) beat the strangle of the shorts (2760, wings unpaired): 2000.
    condor = _book((False, 2.50, 0.01, 1.0), (False, 2.60, 0.03, -1.0), (True, 3.00, 0.05, -1.0),
                   (True, 3.10, 0.03, 1.0))
    assert options_margin(pack=sse, holdings=condor, underlying=2.80) == pytest.approx(2000.0)
    # With wings 0.40 away the spreads cost 4000 + 4000 capped at the legs (2120 + 2460): the strangle's 2760 wins.
    wide = _book((False, 2.20, 0.001, 1.0), (False, 2.60, 0.03, -1.0), (True, 3.00, 0.05, -1.0),
                 (True, 3.40, 0.001, 1.0))
    assert options_margin(pack=sse, holdings=wide, underlying=2.80) == pytest.approx(2760.0)


def test_combination_margin_is_vectorised_path_by_path(cj):
    # Path 0 holds the strangle, path 1 only the put, path 2 nothing: 5965, 5419, 0.
    put = (False, 9800.0, 135.8, np.array([-1.0, -1.0, 0.0]), 0)
    call = (True, 11200.0, 109.2, np.array([-1.0, 0.0, 0.0]), 0)
    m = options_margin(pack=cj, holdings=[put, call], underlying=np.full(3, 10400.0))
    assert m == pytest.approx([5965.0, 5419.0, 0.0])


def test_us_short_strangle_worked_example_of_the_cited_broker_page(us):
    # [TW-STRAD]: S = 45, short 47 call at 2.10 -> [(0.20 x 45 - 2) + 2.10] x 100 = 910 (vs 660);
    # short 43 put at 1.20 -> [(0.20 x 45 - 2) + 1.20] x 100 = 820 (vs 550); the strangle 910 + 120 = 1,030.
    book = _book((True, 47.0, 2.10, -1.0), (False, 43.0, 1.20, -1.0))
    assert options_margin(pack=us, holdings=book, underlying=45.0) == pytest.approx(1030.0)
