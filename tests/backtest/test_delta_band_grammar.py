"""The `delta_band` extension (grammar/README.md §7.3): what parses, what the checker reports
(E105 at the argument), and what the simulator says about it (a located E105)."""

from __future__ import annotations

import pytest

import opl
from opl.lang.deltaband import DeltaBandSpec, delta_band_calls
from opl.lang.fmt import format_text

HEAD = "opl-lang 1.0\nS = short Option(Call, 100, 30d) + short Option(Put, 100, 30d)\n"


def _check(trigger: str):
    return opl.check(HEAD + f"exit_triggers [ {trigger}, days_left(<2d) ]\n", path="band.opl")


def _spec(trigger: str) -> DeltaBandSpec:
    """The spec the checker lowered the trigger to (`opl.lang.ir.DeltaBand`)."""
    doc = _check(trigger).document
    return delta_band_calls(doc.exit.triggers[0])[0].spec


@pytest.mark.parametrize("trigger,spec", [
    ("delta_band()", DeltaBandSpec()),
    ("delta_band(1.5, 60d)", DeltaBandSpec(k=1.5, window_days=60)),
    ("delta_band(k=auto, window=365d, objective=sharpe, step=20d)",
     DeltaBandSpec(k=None, window_days=365, objective="sharpe", step_days=20)),
    ("delta_band(2, step=2w)", DeltaBandSpec(k=2, step_days=14)),
    ("delta_band(window=1y)", DeltaBandSpec(window_days=365)),
    ("delta_band(reopen=never)", DeltaBandSpec(reopen="never")),
    ("delta_band(1, 60d, sharpe, 20d, next_day)",
     DeltaBandSpec(k=1, window_days=60, objective="sharpe", step_days=20, reopen="next_day")),
])
def test_good_calls_check_clean_and_parse(trigger, spec):
    report = _check(trigger).report
    assert [d.code for d in report.diagnostics if d.severity == "error"] == []
    assert _spec(trigger) == spec


@pytest.mark.parametrize("trigger,located,words", [
    ("delta_band(k=0)", "0", "k must be a number above 0"),
    ("delta_band(k=-1.5)", "-1.5", "k must be a number above 0"),
    ("delta_band(k=101)", "101", "at most 100"),
    ("delta_band(k=often)", "often", "or `auto`"),
    ("delta_band(1, window=5)", "5", "window must be a duration"),
    ("delta_band(1, window=0d)", "0d", "between 1d"),
    ("delta_band(1, 60d, calmar)", "calmar", "objective must be `max_drawdown` or `sharpe`"),
    ("delta_band(1, step=5bd)", "5bd", "calendar days"),
    ("delta_band(1, k=2)", "k", "given twice"),
    ("delta_band(reopen=sometimes)", "sometimes", "reopen must be `next_day` or `never`"),
])
def test_bad_values_are_e105_at_the_argument(trigger, located, words):
    result = _check(trigger)
    diagnostics = [d for d in result.report.diagnostics if d.severity == "error"]
    assert [d.code for d in diagnostics] == ["E105"], [(d.code, d.message) for d in diagnostics]
    span = diagnostics[0].span
    assert span.line == 3 and result.report.source.text[span.start:span.end] == located
    assert words in diagnostics[0].message and diagnostics[0].help


def test_unknown_argument_is_e103():
    diagnostics = _check("delta_band(k=1, width=2)").report.diagnostics
    assert [d.code for d in diagnostics if d.severity == "error"] == ["E103"]


def test_formatting_keeps_the_call():
    text = HEAD + "exit_triggers [ delta_band(k = auto, window = 250d, objective = sharpe), days_left(<2d) ]\n"
    out = format_text(text).text
    assert "delta_band(k=auto, window=250d, objective=sharpe)" in out
    assert format_text(out).text == out


def test_spec_text_round_trips():
    spec = DeltaBandSpec(k=None, window_days=365, objective="sharpe", step_days=20)
    assert _spec(spec.text()) == spec


def test_simulator_reports_a_located_e105(tmp_path):
    from opl.simulation.run import SimulationInputError, simulate_file

    text = open("examples/jujube/strangle.opl", encoding="utf-8").read().replace(
        "exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]", "exit_triggers [ delta_band(k=1.5, window=60d) ]")
    path = tmp_path / "band.opl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SimulationInputError) as info:
        simulate_file(path, paths=5)
    d = info.value.diagnostics[0]
    assert d.code == "E105" and "opl backtest" in d.message
    assert text.splitlines()[d.span.line - 1][d.span.column - 1:].startswith("delta_band")
