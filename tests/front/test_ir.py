"""The typed IR (issue 15 item 1): lowering leaves no syntax-tree node in the `Document`; rules,
actions, stop rules, hypotheses and template calls are typed values with spans."""

from __future__ import annotations

import dataclasses

import opl
from opl.lang import ast, ir
from opl.lang.legs import LegSum, RelativeStrike, Scaled, TemplateCall
from opl.lang.lower import lower
from opl.lang.normalise import normalise
from opl.lang.parser import parse_source
from opl.lang.source import SourceFile

RICH = """opl-lang 1.0
price 500
iv 0.25
time 2026-01-05
S = short Straddle(ATM, 30d) + long Option(Put, 450, 30d) + long Option(Call, 560, 30d)
adjust_when price_retrace(<-3%) or (days_left < 5d and not expiry_passed)
adjust_playbook [ roll(1, 60d), add_leg(long Option(Put, 440, 30d)), hedge(delta), scale_qty(leg=2, factor=2) ]
abort_if additional_margin(%) > 15
exit_mode first_hit
exit_triggers [ pnl_percent(<-25%), delta_band(k=auto) ]
exit_triggers += days_left < 2d
avoid_leg_if days_left < 2d && strike_offset > 10%
experiment {
  stress [ vol_up(+50%), slippage(x3) ]
  target median_monthly_return >= 1% and loss_probability <= 25%
  stop [ converge(rounds=5, min_gain=0.1%), budget(iterations=10) ]
  hypotheses [ random_walk(1d, 21d), hit_rate(0.9) ]
}
"""


def _everything(root) -> list:
    """Every value reachable from ``root`` through dataclass fields, sequences and mappings."""
    seen, stack = [], [root]
    while stack:
        current = stack.pop()
        seen.append(current)
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            stack.extend(getattr(current, f.name) for f in dataclasses.fields(current))
        elif isinstance(current, (list, tuple, set, frozenset)):
            stack.extend(current)
        elif isinstance(current, dict):
            stack.extend([*current.keys(), *current.values()])
    return seen


def _lowered(text: str):
    source = SourceFile("t.opl", text)
    return lower(parse_source(source).module, source)


def test_the_document_holds_no_syntax_node():
    checked = opl.check(RICH)
    assert [d.code for d in checked.report.diagnostics if d.severity == "error"] == []
    values = _everything(checked.document)
    syntax = [v for v in values if type(v).__module__ == ast.__name__]
    assert not syntax, syntax[:3]
    kinds = {type(v) for v in values}
    assert {ir.Call, ir.BoolOp, ir.Not, ir.Compare, ir.Variable, ir.Quantity, ir.Bound, ir.UnitMark, ir.Word,
            ir.DeltaBand, ir.LegArgument, TemplateCall} <= kinds


def test_every_ir_value_keeps_its_span():
    checked = opl.check(RICH)
    text = checked.report.source.text
    doc = checked.document
    assert text[doc.adjust.abort_if.span.start:doc.adjust.abort_if.span.end] == "additional_margin(%) > 15"
    roll = doc.adjust.playbook[0]
    assert text[roll.span.start:roll.span.end] == "roll(1, 60d)"
    assert text[roll.get("to").span.start:roll.get("to").span.end] == "60d"
    assert text[doc.experiment.stop[1].span.start:doc.experiment.stop[1].span.end] == "budget(iterations=10)"


def test_arguments_are_bound_to_parameter_names_however_written():
    def playbook(item):
        doc, diagnostics = _lowered(f"opl-lang 1.0\nadjust_playbook [ {item} ]\n")
        assert not diagnostics
        return doc.adjust.playbook[0]

    assert playbook("roll(1, 60d)") == playbook("roll(to=60d, leg=1)") == ir.Call(
        "roll", (("leg", ir.Quantity(1.0)), ("to", ir.Quantity(60.0, "days"))))
    assert playbook("shift_strike(2, by=-5%)").quantity("by") == ir.Quantity(-5.0, "percent")


def test_template_calls_are_read_at_lowering_and_built_without_a_lowerer():
    doc, diagnostics = _lowered("opl-lang 1.0\nS = short Straddle(ATM+2%, 30d)\n")
    assert not diagnostics
    expr = doc.strategy.expr
    call = expr.expr if isinstance(expr, Scaled) else expr
    assert isinstance(call, TemplateCall) and dict(call.arguments)["K"] == RelativeStrike("price", 2.0, True)
    legs = normalise(expr).legs
    assert [(leg.option_type, leg.side) for leg in legs] == [("call", -1), ("put", -1)]


def test_a_bad_template_argument_is_reported_by_the_lowerer():
    _, diagnostics = _lowered("opl-lang 1.0\nS = long Straddle(ATM, -3d) + long Option(Put, 450, 30d)\n")
    assert [d.code for d in diagnostics] == ["E206"]


def test_the_walk_and_the_clauses_of_a_condition():
    doc = opl.check(RICH).document
    assert [c.name for c in ir.calls(doc.adjust.when, "price_retrace")] == ["price_retrace"]
    assert [type(c) for c in ir.clauses(doc.experiment.target)] == [ir.Compare, ir.Compare]
    assert isinstance(doc.strategy.expr, LegSum)


def test_a_comparison_against_something_not_a_quantity_is_e104_at_the_operand():
    # before the IR, `days_left < "soon"` checked clean and meant nothing (never true)
    for operand in ('"soon"', "x3"):
        checked = opl.check(f"opl-lang 1.0\nS = short Option(Call, 100, 30d)\nexit_triggers [ days_left < {operand} ]\n")
        (error,) = [d for d in checked.report.diagnostics if d.severity == "error"]
        assert error.code == "E104" and checked.report.source.excerpt(error.span) == operand

