"""Margin formulas: worked examples computed by hand, then vectorised and error cases."""

from __future__ import annotations

import numpy as np
import pytest

from opl.runtime.margin import futures_margin, long_option_margin, otm_amount, short_option_margin
from opl.runtime.rules import RulePackError, load_pack


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
