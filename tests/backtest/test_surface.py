"""The surfaces a backtest marks at where the chain has no settlement (opl.backtesting.surface)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from opl.backtesting.surface import REALISED_WINDOW, ChainAtmSurface, RealisedSurface, SurfaceStack
from opl.runtime.engine.marking import SmileRule

FLAT = SmileRule(spread=0.0, floor=0.0, skew=0.0, curvature=0.0)


def _futures(prices, contracts):
    return pd.DataFrame({"trading_date": pd.bdate_range("2024-01-02", periods=len(prices)),
                         "settlement": prices, "contract": contracts})


def test_realised_surface_uses_the_past_within_one_contract():
    rng = np.random.default_rng(0)
    n = 60
    returns = rng.normal(0, 0.01, n)
    prices = 100 * np.exp(np.cumsum(returns))
    prices[40:] *= 1.3  # a roll: a 30% jump between two contracts
    futures = _futures(prices, ["A"] * 40 + ["B"] * 20)
    surface = RealisedSurface.from_futures(futures, smile=FLAT, default=0.25)
    day = futures["trading_date"].iloc[45]
    window = np.diff(np.log(prices))[45 - REALISED_WINDOW:45]
    window = np.delete(window, 39 - (45 - REALISED_WINDOW))  # the roll day's return is not used
    expected = window.std(ddof=1) * math.sqrt(252)
    assert surface.iv(date=day, expiry=day, strike=np.array([100.0]), forward=100.0)[0] == pytest.approx(expected)
    # Before ten returns are known: the default, not a look into the future.
    early = futures["trading_date"].iloc[5]
    assert surface.iv(date=early, expiry=early, strike=np.array([100.0]), forward=100.0)[0] == 0.25
    # Changing the future leaves the past's volatility alone.
    later = prices.copy()
    later[46:] *= 2.0
    again = RealisedSurface.from_futures(_futures(later, ["A"] * 40 + ["B"] * 20), smile=FLAT, default=0.25)
    assert again.vol.iloc[45] == surface.vol.iloc[45]


def test_chain_atm_surface_recovers_the_planted_volatility():
    from opl.runtime.pricing.black import price

    days = pd.bdate_range("2024-01-02", periods=3)
    expiry = pd.Timestamp("2024-02-28")
    rows, forwards = [], []
    for day, f, vol in zip(days, (3.0, 3.04, 2.97), (0.18, 0.22, 0.25)):
        for k in (2.9, 3.0, 3.1):
            for kind in ("C", "P"):
                t = (expiry - day).days / 365
                rows.append({"trading_date": day, "expiry": expiry, "strike_price": k, "option_type": kind,
                             "settlement": float(price(is_call=kind == "C", underlying=f, strike=k, t=t, vol=vol,
                                                       rate=0.02, carry=0.02))})
                forwards.append(f)
    chain = pd.DataFrame(rows)
    surface = ChainAtmSurface.from_chain(chain, np.array(forwards), rate=0.02, carry=0.02, american=False)
    for day, vol in zip(days, (0.18, 0.22, 0.25)):
        assert surface.iv(date=day, expiry=expiry, strike=np.array([2.5, 3.5]), forward=3.0) == pytest.approx(
            [vol, vol], abs=1e-9)
    # A later day without a chain keeps the last known level; a day before the chain is unknown.
    assert surface.iv(date=days[-1] + pd.Timedelta(days=3), expiry=expiry, strike=np.array([3.0]),
                      forward=3.0)[0] == pytest.approx(0.25)
    with pytest.raises(KeyError):
        surface.iv(date=days[0] - pd.Timedelta(days=1), expiry=expiry, strike=np.array([3.0]), forward=3.0)
    stack = SurfaceStack([surface, RealisedSurface(vol=pd.Series(dtype=float), smile=FLAT, default=0.4)])
    assert stack.iv(date=days[0] - pd.Timedelta(days=1), expiry=expiry, strike=np.array([3.0]),
                    forward=3.0)[0] == 0.4
    assert stack.iv(date=days[1], expiry=expiry, strike=np.array([3.0]), forward=3.0)[0] == pytest.approx(0.22)
