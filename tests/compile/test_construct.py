"""Construction paths A/B/C and `opl build`: the built file checks clean and meets its targets."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

import opl
from opl.cli import main
from opl.compiler.construct import BuildError, BuildRequest, build
from opl.compiler.strategy import compile_checked

# multiplier 1 keeps the targets and max_risk below in price units per lot
BASE = dict(price=500.0, iv=0.25, rate=0.0, time=dt.date(2026, 1, 5), multiplier=1.0)


@pytest.mark.parametrize("path", ["A", "B", "C"])
@pytest.mark.parametrize("intent, style, sign", [("RangeBound", "Credit", -1), ("Breakout", "Debit", 1)])
def test_every_path_builds_a_clean_file_with_the_intended_vega(path, intent, style, sign):
    result = build(BuildRequest(intent=intent, vega_style=style, path=path, **BASE))
    report = opl.check(result.text).report
    assert [d.code for d in report.diagnostics if d.severity != "note"] == []
    assert sign * result.greeks["vega"] > 0
    assert sign * result.premium > 0  # credit received for Credit, paid for Debit


def test_path_c_meets_target_greeks_within_a_lot():
    result = build(BuildRequest(intent="RangeBound", vega_style="Credit", targets={"delta": 0.0, "vega": -0.5},
                                path="C", **BASE))
    assert result.greeks["delta"] == pytest.approx(0.0, abs=0.05)
    assert result.greeks["vega"] == pytest.approx(-0.5, abs=0.05)


def test_built_greeks_agree_with_the_compiler():
    result = build(BuildRequest(intent="Bull", path="C", **BASE))
    compiled = compile_checked(opl.check(result.text)).strategy
    assert compiled.totals.delta == pytest.approx(result.greeks["delta"], rel=1e-9)
    assert compiled.totals.vega / 100 == pytest.approx(result.greeks["vega"], rel=1e-9)


def test_max_risk_is_respected_and_caps_naked_calls():
    result = build(BuildRequest(intent="RangeBound", vega_style="Credit", targets={"vega": -1.0}, max_risk=40.0,
                                path="C", **BASE))
    assert result.worst_loss is not None and result.worst_loss <= 40.0 + 1e-6
    report = opl.check(result.text).report
    assert not report.has_errors


def test_premium_offset_is_applied_and_checked():
    result = build(BuildRequest(intent="Breakout", vega_style="Debit", premium_offset=0.3, path="B", **BASE))
    assert "premium_offset 30%" in result.text
    assert not opl.check(result.text).report.has_errors  # the checker's E303 agrees the offset is met


def test_max_risk_beats_premium_offset_with_w403():
    # a Bull call financed by selling puts (spec §3.5 allows short puts for Bull) adds downside
    # risk: max_risk stops the offset short, with W403, rather than failing the build
    result = build(BuildRequest(intent="Bull", premium_offset=0.9, max_risk=25.0, path="A", **BASE))
    assert any(note.startswith("W403") for note in result.notes)
    assert result.worst_loss is not None and result.worst_loss <= 25.0 + 1e-9
    assert "W403" in [d.code for d in opl.check(result.text).report.diagnostics]


def test_unattainable_offset_without_naked_sales_is_e303():
    with pytest.raises(BuildError, match="E303"):  # Breakout may only sell spreads against its longs
        build(BuildRequest(intent="Breakout", vega_style="Debit", premium_offset=0.9, max_risk=25.0, path="B",
                           **BASE))


def test_unreachable_max_risk_is_an_error():
    with pytest.raises(BuildError, match="max_risk"):
        build(BuildRequest(intent="Bull", targets={"delta": 5.0}, max_risk=0.01, path="A", **BASE))


def test_build_cli_prints_a_file_that_checks_clean(tmp_path):
    out = tmp_path / "built.opl"
    result = CliRunner().invoke(main, ["build", "--intent", "RangeBound", "--vega-style", "Credit", "--target",
                                       "delta=0,vega=-50", "--market", "price=10000,iv=0.25,time=2026-01-05",
                                       "--multiplier", "5", "--max-risk", "20000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = opl.check_file(out).report
    assert not report.has_errors and report.count("warning") == 0
    bad = CliRunner().invoke(main, ["build", "--intent", "Bull", "--target", "omega=1"])
    assert bad.exit_code == 2 and "omega" in bad.output


@pytest.mark.parametrize("args, message", [
    (["--target", "delta=nan"], "not a finite number"),
    (["--target", "delta=1e30"], "not a finite number"),
    (["--max-risk", "nan"], "not a finite number"),
    (["--max-risk", "-5"], "not in the range x>0"),
    (["--multiplier", "inf"], "not a finite number"),
    (["--premium-offset", "nan"], "not a finite number"),
])
def test_build_non_finite_or_negative_numbers_are_usage_errors(args, message):
    # Before: nan passed click's FloatRange (every comparison with nan is false) and reached the
    # solver, which failed with "HiGHS Status 2: Model error" and exit 1.
    result = CliRunner().invoke(main, ["build", "--intent", "Bull", "--market", "price=100,iv=0.2,time=2026-01-05",
                                       *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "HiGHS" not in result.output
