"""ETF options as they trade: the exercise style from the rule pack and the forward from parity.

The chain is priced here with an independent Black-76 (scipy) off F = S·exp((r − q)·T), a
dividend yield q the spot price knows nothing about: inverted with the parity forward the
input volatilities come back to 1e-6, with the spot price as the forward they do not.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import norm

from opl.calibration.product import pack_for_symbols, product_terms
from opl.calibration.surface import fit_slices, option_points

RATE, DIVIDEND, SPOT = 0.02, 0.04, 3.0
ATM_VOL, SKEW = 0.20, -0.6


def _black76(forward, strike, t, vol, is_call):
    sd = vol * np.sqrt(t)
    d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    call = np.exp(-RATE * t) * (forward * norm.cdf(d1) - strike * norm.cdf(d2))
    return np.where(is_call, call, call - np.exp(-RATE * t) * (forward - strike))


def _etf_chain(skew: float = 0.0):
    """Two days, two expiries, strikes 2.60 … 3.40 by 0.05: European prices off the dividend forward."""
    rows, bars = [], []
    for day in pd.to_datetime(["2024-03-01", "2024-03-04"]):
        bars.append({"trading_date": day, "symbol": "510050", "settlement": SPOT, "close": SPOT})
        for expiry in pd.to_datetime(["2024-03-27", "2024-06-26"]):
            t = (expiry - day).days / 365.0
            forward = SPOT * np.exp((RATE - DIVIDEND) * t)
            for strike in np.round(np.arange(2.60, 3.401, 0.05), 2):
                vol = ATM_VOL * (1.0 + skew * np.log(strike / forward))
                for kind in "CP":
                    price = float(_black76(forward, strike, t, vol, kind == "C"))
                    rows.append({"trading_date": day, "expiry": expiry, "strike_price": strike, "option_type": kind,
                                 "settlement": price, "underlying_symbol": "510050", "vol": vol, "true_forward": forward})
    return pd.DataFrame(rows), pd.DataFrame(bars)


def test_the_pack_decides_the_exercise_style_and_an_explicit_one_overrides_it():
    etf = product_terms(pack="sse_50etf")
    assert (etf.style, etf.spot, etf.pack) == ("european", True, "sse_50etf")
    cj = product_terms(pack="czce_cj")
    assert (cj.style, cj.spot) == ("american", False)
    assert product_terms(style="american", pack="sse_50etf").style == "american"
    assert product_terms(style="american", pack="sse_50etf").source == "--exercise"
    # No pack given: the data's symbols name it.
    bars = pd.DataFrame({"symbol": ["510050"]})
    named = product_terms(futures=bars)
    assert (named.style, named.spot, named.pack) == ("european", True, "sse_50etf")
    assert pack_for_symbols(["CJ605"]).name == "czce_cj"
    unknown = product_terms(futures=pd.DataFrame({"symbol": ["ZZ999"]}))
    assert (unknown.style, unknown.spot, unknown.pack) == ("american", False, None)
    assert "no rule pack" in unknown.source


def test_parity_forward_recovers_the_input_vols_where_spot_as_forward_does_not():
    options, bars = _etf_chain()
    parity = option_points(options, bars, rate=RATE, style="european", spot=True)
    ok = parity[parity["reason"] == "ok"]
    assert len(ok) > 40 and set(ok["forward_source"]) == {"parity"}
    true_forward = options["true_forward"].to_numpy()[ok["row"].to_numpy()]
    assert np.max(np.abs(ok["forward"].to_numpy() / true_forward - 1.0)) < 1e-9
    assert np.max(np.abs(ok["iv"].to_numpy() - ATM_VOL)) < 1e-6
    # The old behaviour: the ETF's price (matched by symbol) taken as the forward.
    naive = option_points(options, bars, rate=RATE, style="european", spot=False)
    bad = naive[naive["reason"] == "ok"]
    assert set(bad["forward_source"]) == {"futures"}
    assert np.max(np.abs(bad["iv"].to_numpy() - ATM_VOL)) > 5e-3


def test_the_skew_has_the_input_sign_with_the_parity_forward():
    options, bars = _etf_chain(skew=SKEW)
    parity = fit_slices(option_points(options, bars, rate=RATE, style="european", spot=True))
    assert len(parity) == 4
    assert np.all(parity["skew"] < 0)
    assert np.max(np.abs(parity["skew"] - SKEW)) < 1e-6
    assert np.max(np.abs(parity["atm"] - ATM_VOL)) < 1e-6
    naive = fit_slices(option_points(options, bars, rate=RATE, style="european", spot=False))
    assert np.max(np.abs(naive["skew"] - SKEW)) > 0.05


@pytest.fixture(scope="module")
def etf_dir(tmp_path_factory):
    from opl.data.synth import synthesize

    out = tmp_path_factory.mktemp("etf50")
    synthesize(seed=1, years=2, profile="etf50").write(out)
    return out


def test_calibrate_inverts_an_etf_chain_european_unless_told_otherwise(etf_dir, tmp_path):
    from opl.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["calibrate", "--data", str(etf_dir), "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "a.json").read_text())["settings"]
    assert (settings["style"], settings["pack"], settings["spot_underlying"]) == ("european", "sse_50etf", True)
    assert "inverted european (the sse_50etf pack" in result.output
    result = runner.invoke(main, ["calibrate", "--data", str(etf_dir), "--exercise", "american",
                                  "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "b.json").read_text())["settings"]
    assert (settings["style"], settings["style_from"]) == ("american", "--exercise")
    result = runner.invoke(main, ["calibrate", "--data", str(etf_dir), "--pack", "czce_cj",
                                  "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "c.json").read_text())["settings"]["style"] == "american"
    result = runner.invoke(main, ["calibrate", "--data", str(etf_dir), "--pack", "nosuch"])
    assert result.exit_code == 2 and "nosuch" in result.output


def test_backtest_marks_an_etf_chain_on_its_parity_forward():
    """The backtest's chain-ATM surface and its marks use the chain's carry, not the rate alone."""
    from opl.backtesting.cycles import ChainIndex
    from opl.backtesting.surface import ChainAtmSurface
    from opl.runtime.engine.historical import option_marks

    options, bars = _etf_chain()
    chain = ChainIndex(options, bars)
    carries = chain.parity_carries(bars, RATE)
    assert len(carries) == 4
    assert max(abs(c - (RATE - DIVIDEND)) for c in carries.values()) < 1e-9
    row_carry = np.array([carries[(d, e)] for d, e in zip(options["trading_date"], options["expiry"])])
    spot = chain.forwards(bars)
    atm = ChainAtmSurface.from_chain(options, spot, rate=RATE, carry=row_carry, american=False).atm
    assert len(atm) == 4 and np.max(np.abs(atm["iv"] - ATM_VOL)) < 1e-6
    rate_only = ChainAtmSurface.from_chain(options, spot, rate=RATE, carry=RATE, american=False).atm
    assert np.max(np.abs(rate_only["iv"] - ATM_VOL)) > 1e-3  # the call and put errors partly cancel
    # A series the chain does not quote is valued on the same forward.
    t = np.array([0.3, 0.1])
    value, *_ = option_marks(is_call=True, american=False, price=np.full(2, SPOT), strike=np.full(2, 3.1), t=t,
                             iv=np.full(2, ATM_VOL), rate=RATE, carry=RATE - DIVIDEND)
    expected = _black76(SPOT * np.exp((RATE - DIVIDEND) * t), 3.1, t, ATM_VOL, True)
    assert np.max(np.abs(value - expected)) < 1e-12


def _adjusted_chain():
    """A straddle's contracts at 2.40 across an ex-dividend date (the third session): from then
    they trade as 2.348 × 10,220, and new standard contracts are listed at 2.40 × 10,000."""
    from types import SimpleNamespace

    days = pd.bdate_range("2024-06-10", periods=5)
    expiry = pd.Timestamp("2024-06-26")
    rows = []
    for j, day in enumerate(days):
        adjusted = j >= 2
        for kind, base in (("C", 0.050), ("P", 0.040)):
            rows.append({"trading_date": day, "symbol": f"510050{kind}2406M02400", "option_type": kind,
                         "strike_price": 2.348 if adjusted else 2.40, "contract_multiplier": 10220.0 if adjusted
                         else 10000.0, "settlement": base + 0.001 * j, "expiry": expiry})
            if adjusted:
                rows.append({"trading_date": day, "symbol": f"510050{kind}2406A02400", "option_type": kind,
                             "strike_price": 2.40, "contract_multiplier": 10000.0, "settlement": 0.5 * base,
                             "expiry": expiry})
    legs = [SimpleNamespace(is_call=True), SimpleNamespace(is_call=False)]
    return pd.DataFrame(rows), days, SimpleNamespace(legs=legs)


def test_a_straddle_held_across_an_ex_date_is_marked_on_its_own_adjusted_contracts():
    from opl.backtesting.cycles import _quotes

    series, days, strategy = _adjusted_chain()
    quotes, factor = _quotes(series, [2.40, 2.40], strategy, days, 10000.0)
    assert np.allclose(factor, [1, 1, 1.022, 1.022, 1.022], rtol=0, atol=1e-12)
    for quote, base in zip(quotes, (0.050, 0.040)):
        own = base + 0.001 * np.arange(5)
        assert np.allclose(quote, own * factor, rtol=0, atol=1e-12)  # never the new 2.40 contract's 0.5 × base


def test_the_adjusted_contract_is_its_original_terms_on_the_scaled_price():
    """M'·C(S, K') = M·C(S·M'/M, K): why a carried leg keeps K and M on the scaled price."""
    from opl.runtime.engine.historical import option_marks

    spot, ratio, t = np.array([2.35, 2.45]), 1.022, np.array([0.05, 0.05])
    args = dict(is_call=True, american=False, t=t, iv=np.full(2, 0.2), rate=RATE, carry=RATE)
    adjusted, *_ = option_marks(price=spot, strike=np.full(2, 2.40 / ratio), **args)
    original, *_ = option_marks(price=spot * ratio, strike=np.full(2, 2.40), **args)
    assert np.allclose(10220.0 * adjusted, 10000.0 * original, rtol=1e-12, atol=0)


def test_the_chain_check_accepts_an_adjusted_multiplier_and_refuses_another_products():
    from opl.backtesting.market import _check_chain
    from opl.data.loaders import DataError
    from opl.runtime.market.rules import load_pack

    pack = load_pack("sse_50etf")
    series, *_ = _adjusted_chain()
    _check_chain(series, np.arange(2, len(series) + 2), "options.csv", pack)
    other = series.assign(contract_multiplier=np.where(series["contract_multiplier"] > 10000, 100.0, 10000.0))
    with pytest.raises(DataError) as caught:
        _check_chain(other, np.arange(2, len(other) + 2), "options.csv", pack)
    assert "100 is not the rule pack's multiplier" in str(caught.value.problems[0])
