"""The compiler: resolution, rounding to the exchange grid, prices and Greeks, the JSON contract."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import opl
from opl.cli import main
from opl.compiler.compiled import CompiledStrategy
from opl.compiler.strategy import compile_checked, parse_market

ROOT = Path(__file__).resolve().parents[2]
MARKET = {"price": 500.0, "iv": 0.25, "rate": 0.02, "time": dt.date(2026, 1, 5)}


def compiled(text: str, **market) -> CompiledStrategy:
    result = compile_checked(opl.check(text), {**MARKET, **market})
    assert result.ok, [(d.code, d.message) for d in result.diagnostics]
    return result.strategy


def test_bull_vertical_golden_example():
    s = compiled("opl-lang 1.0\nS = long Option(Call, 480, 30d) + short Option(Call, 520, 30d)\nexit_mode first_hit\n")
    assert [(leg.side, leg.type, leg.strike, leg.expiry, leg.tenor_days) for leg in s.legs] == [
        ("long", "call", 480.0, dt.date(2026, 2, 4), 30.0), ("short", "call", 520.0, dt.date(2026, 2, 4), 30.0)]
    assert s.totals.delta == pytest.approx(sum(leg.position_greeks.delta for leg in s.legs))
    assert 0 < s.totals.delta < 1 * 100 and s.totals.premium > 0
    # spec rc6 §1.2 (MUST): one contract is 100 units without a rule pack or `granularity`
    assert [leg.multiplier for leg in s.legs] == [100.0, 100.0]
    assert s.legs[0].position_greeks.delta == pytest.approx(100 * s.legs[0].greeks.delta)


def test_granularity_overrides_the_default_multiplier():
    s = compiled("opl-lang 1.0\ngranularity 10\nS = long Option(Call, 480, 30d)\nexit_mode first_hit\n")
    assert s.legs[0].multiplier == 10.0


def test_relative_and_delta_strikes_resolve_against_the_market():
    s = compiled("opl-lang 1.0\nsupport 450\nresistance 560\nS = short Option(Put, support-10, 30d) + "
                 "short Option(Call, resistance+2%, 30d) + long Option(Call, ATM+5%, 30d) + "
                 "long Option(Put, delta(0.25), 30d)\nexit_mode first_hit\n")
    by_spec = {leg.strike_spec: leg for leg in s.legs}
    assert by_spec["support-10"].strike == 440.0
    assert by_spec["resistance+2%"].strike == pytest.approx(571.2)
    assert by_spec["ATM+5%"].strike == pytest.approx(525.0)
    assert abs(by_spec["delta(0.25)"].greeks.delta) == pytest.approx(0.25, abs=1e-6)


def test_european_price_and_greeks_match_quantlib():
    ql = pytest.importorskip("QuantLib")
    s = compiled("opl-lang 1.0\nS = long Option(Put, 480, 30d)\nexit_mode first_hit\n")
    leg = s.legs[0]
    today = ql.Date(5, 1, 2026)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    spot = ql.QuoteHandle(ql.SimpleQuote(500.0))
    rate = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.02, day_count, ql.Continuous))
    dividend = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, day_count, ql.Continuous))
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), 0.25, day_count))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Put, 480.0), ql.EuropeanExercise(ql.Date(4, 2, 2026)))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(ql.BlackScholesMertonProcess(spot, dividend, rate, vol)))
    assert leg.price == pytest.approx(option.NPV(), rel=1e-8)
    assert leg.greeks.delta == pytest.approx(option.delta(), rel=1e-8)
    assert leg.greeks.gamma == pytest.approx(option.gamma(), rel=1e-8)
    assert leg.greeks.vega == pytest.approx(option.vega(), rel=1e-8)
    assert leg.greeks.theta == pytest.approx(option.theta(), rel=1e-6)
    assert leg.greeks.rho == pytest.approx(option.rho(), rel=1e-8)


def test_jujube_legs_follow_the_czce_pack():
    s = compiled((ROOT / "examples" / "jujube" / "strangle.opl").read_text(encoding="utf-8"),
                 price=10000.0, support=9620.0, resistance=10390.0)
    assert s.underlying.rule_pack == "czce_cj" and s.underlying.carry == 0.0
    assert {leg.multiplier for leg in s.legs} == {5.0}
    assert all(leg.exercise == "american" for leg in s.legs)
    assert all(leg.strike % 100 == 0 for leg in s.legs)  # the 100 CNY/t grid below 10,000 ... and 200 above
    assert s.totals.margin and s.totals.margin > 0
    assert s.totals.premium < 0  # a credit


def test_missing_market_is_a_located_error():
    result = compile_checked(opl.check("opl-lang 1.0\nS = long Option(Call, 480, 30d)\nexit_mode first_hit\n"))
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("E306", 2)]
    assert "--market" in result.diagnostics[0].help


def test_json_contract_and_schema(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["compile", str(ROOT / "examples" / "tour" / "bull_call.opl"), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for leg in data["legs"]:
        assert {"side", "qty", "type", "strike", "expiry", "tenor_days", "multiplier", "price", "greeks",
                "position_greeks"} <= set(leg)
        assert set(leg["greeks"]) == {"delta", "gamma", "vega", "theta", "rho", "charm"}
    for name in ("delta", "gamma", "vega", "theta", "rho", "charm"):
        assert data["totals"][name] == pytest.approx(sum(leg["position_greeks"][name] for leg in data["legs"]))
    CompiledStrategy.model_validate(data)  # what we print, we can read back
    schema = json.loads(runner.invoke(main, ["compile", "--schema"]).output)
    assert set(schema["required"]) >= {"legs", "totals", "market", "underlying"}


def test_compile_cli_reports_errors_and_bad_market():
    runner = CliRunner()
    bad = runner.invoke(main, ["compile", str(ROOT / "examples" / "tour" / "bad.opl")])
    assert bad.exit_code == 1 and "error[E101]" in bad.output
    usage = runner.invoke(main, ["compile", str(ROOT / "examples" / "tour" / "bull_call.opl"), "--market", "vol=1"])
    assert usage.exit_code == 2 and "--market" in usage.output


def test_table_labels_units():
    result = CliRunner().invoke(main, ["compile", str(ROOT / "examples" / "tour" / "bull_call.opl")])
    assert result.exit_code == 0
    assert "vega/1%" in result.output and "theta/day" in result.output


def test_payoff_writes_png_and_reports_breakevens(tmp_path):
    out = tmp_path / "p.png"
    result = CliRunner().invoke(main, ["payoff", str(ROOT / "strategies" / "iron_condor.opl"), "--out", str(out),
                                       "--market", "time=2026-01-05"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "breakevens" in result.output and "max loss" in result.output


def test_payoff_curves_match_hand_computed_expiry_values():
    from opl.compiler.payoff import payoff_curves

    s = compiled("opl-lang 1.0\nS = short Option(Put, 450, 30d) + short Option(Call, 550, 30d)\nexit_mode first_hit\n")
    curves = payoff_curves(s)
    credit = -s.totals.premium
    m = s.legs[0].multiplier
    expected = credit - m * (np.maximum(450 - curves.prices, 0) + np.maximum(curves.prices - 550, 0))
    np.testing.assert_allclose(curves.pnl[-1], expected, atol=1e-9)
    assert curves.loss_unbounded and not curves.profit_unbounded
    assert curves.breakevens == pytest.approx((450 - credit / m, 550 + credit / m), abs=0.01)


def test_parse_market_rejects_bad_items():
    assert parse_market("price=9850, iv=22%, time=2026-03-02") == {
        "price": 9850.0, "iv": 0.22, "time": dt.date(2026, 3, 2)}
    for bad in ("price", "vol=0.2", "price=-1", "time=2026-13-01", "iv=abc"):
        with pytest.raises(ValueError):
            parse_market(bad)



@pytest.mark.parametrize("bad", ["iv=50", "iv=501%", "price=1e300", "support=1e13", "time=0001-01-01"])
def test_parse_market_keeps_the_file_bounds(bad):
    # An override is held to the bounds of the field it replaces (`iv 50` in a file is E207, 1e300 is E012).
    with pytest.raises(ValueError, match="not a valid"):
        parse_market(bad)
    assert parse_market("iv=5")["iv"] == 5.0


@pytest.mark.parametrize("args, message", [
    (["--out", "p.txt"], "cannot write a plot as `.txt`"),
    (["--low", "nan"], "'nan' is not a finite number"),
    (["--high", "inf"], "'inf' is not a finite number"),
    (["--low", "-5"], "not in the range x>0"),
    (["--low", "600", "--high", "400"], "--low must be positive and below --high"),
])
def test_payoff_bad_options_are_usage_errors(tmp_path, args, message):
    args = [a if a != "p.txt" else str(tmp_path / a) for a in args]
    result = CliRunner().invoke(main, ["payoff", str(ROOT / "strategies" / "iron_condor.opl"),
                                       "--out", str(tmp_path / "p.png"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "p.txt").exists()


def test_payoff_out_without_suffix_names_the_png_it_writes(tmp_path):
    result = CliRunner().invoke(main, ["payoff", str(ROOT / "strategies" / "iron_condor.opl"), "--out",
                                       str(tmp_path / "plot"), "--market", "time=2026-01-05"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plot.png").exists() and f"wrote {tmp_path / 'plot.png'}" in result.output


SPEC = sorted((ROOT / "tests" / "fixtures" / "spec").glob("*.opl"))


@pytest.mark.parametrize("path", SPEC, ids=lambda p: p.name)
def test_every_spec_example_compiles_to_its_normalised_leg_set(path):
    checked = opl.check_file(path)
    result = compile_checked(checked, {**MARKET, "support": 450.0, "resistance": 550.0,
                                       **({"price": 10400.0} if "jujube" in path.name else {})})
    if not checked.legs:  # rc6 golden 5 states only intent and constraints: the compiler builds its legs
        assert result.ok, [(d.code, d.message) for d in result.diagnostics]
        assert any("built from `direction_intent Bull`" in note for note in result.strategy.notes)
        return
    assert result.ok, [(d.code, d.message) for d in result.diagnostics]
    legs = result.strategy.legs
    assert [(leg.side, leg.qty, leg.kind, leg.type) for leg in legs] == [
        ("long" if leg.side > 0 else "short", leg.qty, leg.kind, leg.option_type) for leg in checked.legs]
    for name in ("delta", "gamma", "vega", "theta", "rho", "charm"):
        assert getattr(result.strategy.totals, name) == pytest.approx(
            sum(getattr(leg.position_greeks, name) for leg in legs))


def test_the_evaluation_date_is_explicit_and_stated():
    # A file without `time` is priced on the caller's evaluation date, which the notes state;
    # the file's own `time` wins over it (issue 15 item 5: no hidden date.today()).
    text = "opl-lang 1.0\nprice 500\niv 0.25\nS = long Option(Call, 500, 30d)\nexit_mode first_hit\n"
    given = compile_checked(opl.check(text), evaluation_date=dt.date(2020, 3, 2)).strategy
    assert given.market.time == dt.date(2020, 3, 2)
    assert given.legs[0].expiry == dt.date(2020, 4, 1)
    assert any("evaluation date 2020-03-02: given by the caller" in note for note in given.notes)
    dated = compile_checked(opl.check(text.replace("price 500", "price 500\ntime 2026-01-05")),
                            evaluation_date=dt.date(2020, 3, 2)).strategy
    assert dated.market.time == dt.date(2026, 1, 5)
    assert not any("evaluation date" in note for note in dated.notes)
