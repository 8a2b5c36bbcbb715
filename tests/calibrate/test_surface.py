"""Implied volatility from settlements: American and European round trips, smiles, 25-delta RR, the surface."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import ndtr

from opl.calibration.surface import IVSurface, fit_slices, fit_surface, option_points
from opl.runtime.pricing.american import baw_price
from opl.runtime.pricing.black import price as black_price

A, B, C = 0.25, 0.10, 1.0  # iv(x) = A + B x + C x², x = ln K/F
F, RATE, DAYS = 10_000.0, 0.02, 45


def smile(x):
    return A + B * x + C * x * x


def chain(style: str, *, days: int = DAYS) -> tuple[pd.DataFrame, pd.DataFrame]:
    strikes = np.arange(8500.0, 11501.0, 100.0)
    k = np.repeat(strikes, 2)
    is_call = np.tile([True, False], len(strikes))
    t = days / 365.0
    vol = smile(np.log(k / F))
    pricer = baw_price if style == "american" else black_price
    settle = np.asarray(pricer(is_call=is_call, underlying=F, strike=k, t=t, vol=vol, rate=RATE, carry=0.0))
    date = pd.Timestamp("2025-03-03")
    options = pd.DataFrame({
        "trading_date": date, "symbol": [f"CJ505{'C' if c else 'P'}{int(s)}" for c, s in zip(is_call, k)],
        "settlement": settle, "strike_price": k, "option_type": np.where(is_call, "C", "P"),
        "expiry": date + pd.Timedelta(days=days), "contract_multiplier": 5.0, "underlying_symbol": "CJ505"})
    futures = pd.DataFrame({"trading_date": [date], "symbol": ["CJ505"], "settlement": [F]})
    return options, futures


@pytest.mark.parametrize("style", ["american", "european"])
def test_vols_inverted_from_prices_made_with_known_vols_come_back(style):
    options, futures = chain(style)
    pts = option_points(options, futures, rate=RATE, style=style, min_price_fraction=0.0)
    # One out-of-the-money option per strike: puts below the forward, calls at or above it.
    assert len(pts) == options["strike_price"].nunique()
    assert ((pts["option_type"] == "C") == (pts["strike"] >= F)).all()
    assert (pts["reason"] == "ok").all() and (pts["forward_source"] == "futures").all()
    np.testing.assert_allclose(pts["iv"], smile(pts["x"]), rtol=0, atol=1e-8)


def test_american_prices_read_as_european_would_overstate_the_vol():
    # The early-exercise premium is real money: a European inversion turns it into volatility.
    options, futures = chain("american", days=120)
    eu = option_points(options, futures, rate=0.08, style="european", min_price_fraction=0.0)
    am = option_points(options, futures, rate=0.08, style="american", min_price_fraction=0.0)
    assert (eu["iv"] >= am["iv"] - 1e-12).all()


def test_parity_gives_the_forward_when_the_futures_are_not_named():
    options, _ = chain("european")
    pts = option_points(options, None, rate=RATE, style="european", min_price_fraction=0.0)
    assert (pts["forward_source"] == "parity").all()
    np.testing.assert_allclose(pts["forward"], F, rtol=1e-10)
    np.testing.assert_allclose(pts["iv"], smile(pts["x"]), atol=1e-8)


def _iv_at_call_delta(target: float) -> float:
    t = DAYS / 365.0

    def gap(x):
        sd = smile(x) * np.sqrt(t)
        return ndtr(-x / sd + 0.5 * sd) - target

    return float(smile(optimize.brentq(gap, -0.5, 0.5)))


def test_the_slice_fit_gives_back_the_smile_and_its_25_delta_risk_reversal():
    options, futures = chain("american")
    slices = fit_slices(option_points(options, futures, rate=RATE, min_price_fraction=0.0))
    (row,) = slices.itertuples()
    assert (row.atm, row.slope, row.convexity) == pytest.approx((A, B, C), abs=1e-7)
    assert row.skew == pytest.approx(B / A) and row.curvature == pytest.approx(C / A)
    call25, put25 = _iv_at_call_delta(0.25), _iv_at_call_delta(0.75)
    # Linear interpolation between listed strikes 100 apart: within 0.02 vol points.
    assert row.rr25 == pytest.approx(call25 - put25, abs=2e-4)
    assert row.bf25 == pytest.approx(0.5 * (call25 + put25) - A, abs=2e-4)


def test_filters_say_why_a_settlement_has_no_vol():
    options, futures = chain("american", days=2)
    pts = option_points(options, futures, rate=RATE)
    assert set(pts["reason"]) == {"too_short"}
    options, futures = chain("american")
    pts = option_points(options, futures, rate=RATE, max_moneyness=0.05)
    assert (pts.loc[pts["x"].abs() > 0.05, "reason"] == "too_far_from_money").all()
    with pytest.raises(ValueError, match="no implied-volatility smile"):
        fit_surface(*chain("american", days=2))


def test_synthetic_chains_give_back_the_planted_smile(synth_dir):
    from opl.data import load_futures, load_options

    truth = pd.read_json(synth_dir / "truth.json", typ="series")["params"]
    result = fit_surface(load_options(synth_dir / "options.csv").frame, load_futures(synth_dir / "futures.csv").frame,
                         rate=truth["rate"], style="european")
    s = result.slices[result.slices["days"] >= 10]
    # synth: iv = atm + iv_skew·sqrt(30/365 / T)·x + iv_curvature·x² on tick-rounded Black-76 settlements.
    slope = truth["iv_skew"] * np.sqrt((30 / 365) / (s["days"] / 365))
    assert np.median(np.abs(s["slope"] - slope)) < 0.003
    assert np.median(np.abs(s["convexity"] - truth["iv_curvature"])) < 0.05
    assert np.quantile(np.abs(s["slope"] - slope), 0.9) < 0.02
    assert result.window["slices"] > 0 and result.window["skew"] > 0 and result.window["rr25"] > 0


def test_the_surface_marks_strikes_without_a_settlement():
    options, futures = chain("american")
    result = fit_surface(options, futures, rate=RATE, min_price_fraction=0.0)
    surface = result.surface
    assert isinstance(surface, IVSurface)
    k = np.array([9000.0, 10000.0, 10750.0])
    expiry = options["expiry"].iloc[0]
    np.testing.assert_allclose(surface.iv(date="2025-03-03", expiry=expiry, strike=k, forward=F),
                               np.maximum(smile(np.log(k / F)), surface.floor), atol=1e-7)
    # A later day without a slice uses the latest earlier slice of the same expiry; an unknown expiry the
    # slice nearest in time to expiry; a day before the surface starts has none.
    assert surface.slice_for("2025-03-10", expiry)["trading_date"] == pd.Timestamp("2025-03-03")
    assert surface.slice_for("2025-03-10", "2025-09-01")["expiry"] == expiry
    with pytest.raises(KeyError, match="no implied-volatility slice"):
        surface.slice_for("2025-01-01", expiry)


def _slices_by_groupby(points: pd.DataFrame) -> list[tuple]:
    """(date, expiry, n, first days, first forward, x, iv, delta) of each slice as pandas' groupby gives it."""
    good = points[points["reason"] == "ok"]
    return [(d, e, len(g), g["days"].iloc[0], g["forward"].iloc[0], *(g[c].to_numpy() for c in ("x", "iv", "delta")))
            for (d, e), g in good.groupby(["trading_date", "expiry"], sort=True)]


def test_slices_are_groupby_slices_in_key_and_row_order(synth_dir):
    """fit_slices groups with numpy: the slices, their order and their rows' order are groupby's (shuffled rows,
    missing keys), so every least-squares fit sees the same arrays and gives the same numbers."""
    from opl.data import load_futures, load_options

    points = option_points(load_options(synth_dir / "options.csv").frame,
                           load_futures(synth_dir / "futures.csv").frame, style="european")
    shuffled = points.sample(frac=1.0, random_state=5)
    shuffled.loc[shuffled.index[:40], "trading_date"] = pd.NaT
    slices = fit_slices(shuffled)
    expected = [s for s in _slices_by_groupby(shuffled) if s[2] >= 5]
    assert len(slices) == len(expected) > 100
    for row, (d, e, n, days, forward, x, iv, _) in zip(slices.itertuples(), expected):
        assert (row.trading_date, row.expiry, row.n, row.days, row.forward) == (d, e, n, days, forward)
        design = np.column_stack([np.ones_like(x), x, x * x])
        assert row.atm == float(np.linalg.lstsq(design, iv, rcond=None)[0][0])
