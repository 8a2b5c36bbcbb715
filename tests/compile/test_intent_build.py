"""Spec rc6 golden sample 5 and §4: legs built from an intent survive every path and its constraints.

Each test failed before: golden 5 did not compile (E203), `--path C` for Breakout returned
one long put, a premium_offset cut by max_risk was the error E303, and an offset could be
"met" by selling options that turned the position against its intent.
"""

from __future__ import annotations

import datetime as dt

import pytest

import opl
from opl.compiler.strategy import compile_checked
from opl.compiler.construct import BuildError, BuildRequest, base_legs, build, candidates

GOLDEN5 = "opl-lang 1.0\nintent           = Bull\npremium_offset   = 40%\nmax_risk         = 1500 USD\n"
MARKET = {"price": 480.0, "iv": 0.25, "time": dt.date(2026, 1, 5)}


def _premiums(strategy):
    debit = sum(leg.price * leg.qty * leg.multiplier for leg in strategy.legs if leg.side == "long")
    credit = sum(leg.price * leg.qty * leg.multiplier for leg in strategy.legs if leg.side == "short")
    return debit, credit


def test_golden_sample_5_compiles_to_a_bull_position_within_its_constraints():
    result = compile_checked(opl.check(GOLDEN5), MARKET)
    assert result.ok, [(d.code, d.message) for d in result.diagnostics]
    s = result.strategy
    assert any(leg.side == "long" and leg.type == "call" for leg in s.legs)  # MapIntentToO(Bull) survives
    assert s.totals.delta > 0
    debit, credit = _premiums(s)
    assert credit >= 0.4 * debit - 1e-9
    from opl.compiler.payoff import payoff_curves

    curves = payoff_curves(s)
    assert not curves.loss_unbounded and -curves.pnl[-1].min() <= 1500 + 1e-6
    assert [leg.multiplier for leg in s.legs] == [100.0] * len(s.legs)  # rc6 §1.2 default


def test_intent_build_states_the_assumed_market_and_date():
    result = compile_checked(opl.check(GOLDEN5))
    notes = " | ".join(result.strategy.notes)
    assert "market assumed for the build: price 100, iv 0.25" in notes
    assert "evaluation date" in notes and "no `time`" in notes


def test_unmeetable_max_risk_is_refused_with_a_located_e302():
    text = "opl-lang 1.0\nprice 500\niv 0.25\ndirection_intent Bull\nmax_risk 1\n"
    result = compile_checked(opl.check(text))
    assert not result.ok
    (d,) = result.diagnostics
    assert d.code == "E302" and d.span.line == 5


@pytest.mark.parametrize("path", ["A", "B", "C"])
@pytest.mark.parametrize("intent", ["Breakout", "RangeBound", "Bull", "Bear"])
def test_mapped_base_legs_survive_every_path(intent, path):
    request = BuildRequest(intent=intent, path=path, price=500.0, iv=0.25, time=dt.date(2026, 1, 5))
    result = build(request)
    for leg in base_legs(request):
        lots = sum(max(leg.side * q, 0) for c, q in result.quantities.items() if c.option_type == leg.instrument)
        assert lots >= 1, (str(leg), result.text)


def test_breakout_path_c_is_long_both_wings_not_one_long_put():
    result = build(BuildRequest(intent="Breakout", path="C", price=100.0, iv=0.25, time=dt.date(2026, 1, 5)))
    sides = {(c.option_type, q > 0) for c, q in result.quantities.items()}
    assert ("call", True) in sides and ("put", True) in sides


def test_premium_offset_cut_by_max_risk_is_w403_not_e303():
    text = ("opl-lang 1.0\nprice 100\niv 0.25\nmax_risk 1000\npremium_offset 40%\n"
            "S = long Option(Call, 100, 30d) + short Option(Call, 110, 30d)\nexit_mode first_hit\n")
    codes = [d.code for d in opl.check(text).report.diagnostics]
    assert "W403" in codes and "E303" not in codes
    without_max_risk = text.replace("max_risk 1000\n", "")
    assert "E303" in [d.code for d in opl.check(without_max_risk).report.diagnostics]


def test_offset_never_turns_the_position_against_the_intent():
    request = BuildRequest(intent="Bull", premium_offset=0.9, path="A", price=100.0, iv=0.25,
                           time=dt.date(2026, 1, 5))
    try:
        result = build(request)
    except BuildError as error:
        assert "E303" in str(error)
        return
    assert result.greeks["delta"] > 0


def test_candidate_ladder_is_centred_on_the_price():
    strikes = sorted({c.strike for c in candidates(BuildRequest(intent="Bull", price=480.0))})
    assert strikes[0] < 480 < strikes[-1]


def test_intent_build_takes_the_callers_evaluation_date():
    result = compile_checked(opl.check(GOLDEN5), evaluation_date=dt.date(2021, 6, 1))
    assert result.strategy.market.time == dt.date(2021, 6, 1)
    assert any("evaluation date 2021-06-01: given by the caller" in note for note in result.strategy.notes)
