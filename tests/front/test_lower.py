"""Lowering: field names, value types and leg expressions get located, coded errors."""

from __future__ import annotations

import datetime as dt

import pytest

from opl.lang.legs import AbsoluteStrike, DaysTenor, DeltaStrike, LegSum, RelativeStrike, Scaled
from opl.lang.lower import lower
from opl.lang.parser import parse

HEADER = "opl-lang 1.0\n"


def lowered(text: str, header: bool = True):
    result = parse((HEADER if header else "") + text)
    document, diagnostics = lower(result.module, result.source)
    return document, result.diagnostics + diagnostics


def found(text: str, header: bool = True) -> list[tuple[str, int, int, int]]:
    """(code, line, column, end_column) of each diagnostic; lines count the header."""
    _, diagnostics = lowered(text, header)
    return [(d.code, d.span.line, d.span.column, d.span.end_column) for d in diagnostics]


def test_design_example_e101_with_suggestion():
    _, diagnostics = lowered("S = long Swap\n")
    (d,) = diagnostics
    assert (d.code, d.message, d.label, d.help) == ("E101", "unknown primitive `Swap`", "not a primitive",
                                                  "did you mean `Stock`?")
    assert (d.span.line, d.span.column, d.span.end_column) == (2, 10, 14)


def test_header_rules():
    assert found("S = long Stock\n", header=False)[0][:2] == ("E004", 1)
    assert ("E006", 1, 1, 13) in found("opl-lang 2.0\nS = long Stock\n", header=False)
    late = "#" + "x" * 300 + "\nopl-lang 1.0\nS = long Stock\n"
    assert found(late, header=False)[0][:2] == ("E005", 2)
    assert found("S = long Stock\nopl-lang 1.0\n", header=False)[0][:2] == ("E005", 2)
    assert found("opl-lang 1.0\n", header=True)[0][:2] == ("E014", 2)


def test_unknown_and_duplicate_fields():
    assert found("capital_limt 100\n") == [("E102", 2, 1, 13)]
    assert found("paths 10\n") == [("E102", 2, 1, 6)]
    assert found("price 1\nprice 2\n") == [("E202", 3, 1, 8)]
    assert found("price\n") == [("E108", 2, 1, 6)]


def test_type_mismatches_in_option_legs():
    # a swapped strike and tenor is one finding over both arguments (its fix swaps them), not two
    assert found("S = long Option(Put, 30d, 480)\n") == [("E104", 2, 22, 30)]
    assert found("S = long Option(Put, 30d, 2026-05-15)\n") == [("E104", 2, 22, 25)]  # no strike to swap in
    assert found("S = long Option(Put, -480, 30d)\n") == [("E205", 2, 22, 26)]
    assert found("S = long Option(Put, 480, 0d)\n") == [("E206", 2, 27, 29)]
    assert found("S = long Option(Pt, 480, 30d)\n") == [("E105", 2, 17, 19)]
    assert found("S = long Option(Put, 480)\n")[0][0] == "E103"


def test_quantities():
    assert found("S = 0×long Stock\n") == [("E305", 2, 5, 6)]
    assert found("S = 2.5×long Stock\n") == [("E104", 2, 5, 8)]


def test_strike_and_tenor_forms():
    document, diagnostics = lowered(
        "S = long Option(Call, ATM+5%, +30d) + short Option(Put, support-100, 2026-06-19) "
        "+ short Option(Call, delta(0.25), 30d) + long Option(Put, +5%, 30d)\n")
    assert not diagnostics
    terms = document.strategy.expr.terms
    legs = [t.expr.leg if isinstance(t, Scaled) else t.leg for t in terms]
    assert legs[0].strike == RelativeStrike("price", 5.0, True) and legs[0].tenor == DaysTenor(30, True)
    assert legs[1].strike == RelativeStrike("support", -100.0, False) and legs[1].tenor.date == dt.date(2026, 6, 19)
    assert legs[2].strike == DeltaStrike(0.25)
    assert legs[3].strike == RelativeStrike("price", 5.0, True)


def test_subtraction_and_polarity_nest():
    document, _ = lowered("S = 2×(long Stock - short Option(Call, 480, 30d))\n")
    expr = document.strategy.expr
    assert isinstance(expr, Scaled) and expr.qty == 2
    inner = expr.expr
    assert isinstance(inner, LegSum) and inner.terms[1].side == -1


def _quantities(text: str) -> list[tuple[int, str, float]]:
    """(signed quantity, type, strike) of each normalised leg."""
    import opl

    result = opl.check(HEADER + text)
    assert not [d for d in result.report.diagnostics if d.severity == "error"], result.report.diagnostics
    return sorted((leg.signed_qty, leg.option_type, leg.strike.value) for leg in result.legs)


@pytest.mark.parametrize("text,expected", [
    # A written quantity binds to the one term after it (grammar/README.md §3), whichever way it is written.
    ("S = 3 short Option(Put, 100, 30d) + long Option(Call, 110, 30d)\n", [(-3, "put", 100), (1, "call", 110)]),
    ("S = 3×short Option(Put, 100, 30d) + long Option(Call, 110, 30d)\n", [(-3, "put", 100), (1, "call", 110)]),
    ("S = long Option(Call, 110, 30d) + 3 short Option(Put, 100, 30d)\n", [(-3, "put", 100), (1, "call", 110)]),
    ("S = long Option(Call, 110, 30d) - 2 short Option(Put, 100, 30d)\n", [(1, "call", 110), (2, "put", 100)]),
    ("S = 2 Option(Put, 90, 30d) + 3 short Option(Put, 100, 30d) + 4 long Option(Call, 110, 30d)\n",
     [(-3, "put", 100), (2, "put", 90), (4, "call", 110)]),
    ("S = 2 (Option(Put, 90, 30d) + short Option(Put, 100, 30d))\n", [(-2, "put", 100), (2, "put", 90)]),
])
def test_a_quantity_binds_to_the_next_term_only(text, expected):
    assert _quantities(text) == sorted(expected)


def test_values_side_by_side_without_a_quantity_are_e001():
    assert [c for c, *_ in found("S = 3 short Option(Put, 100, 30d) Option(Call, 100, 30d)\n")] == ["E001"]
    assert [c for c, *_ in found("S = long Stock long Stock\n")] == ["E001"]


def test_every_bad_term_of_a_sum_is_reported():
    text = "S = long Swap + long Option(Call, 480, 30d) + short Option(Call, 30d, 500) + long Bond\n"
    assert [c for c, *_ in found(text)] == ["E101", "E104", "E101"]  # strike and tenor swapped: one finding


def test_a_long_flat_sum_is_not_deep_nesting():
    legs = " +\n  ".join(f"long Option(Call, {100 + i}, 30d)" for i in range(64))
    assert not [c for c, *_ in found(f"S = {legs}\n") if c.startswith("E")]
    legs = " +\n  ".join(f"long Option(Call, {100 + i}, 30d)" for i in range(300))
    assert "E009" in [c for c, *_ in found(f"S = {legs}\n")]


def test_invalid_enum_values_suggest():
    _, diagnostics = lowered("direction_intent Bul\n")
    assert diagnostics[0].code == "E105" and diagnostics[0].help == "did you mean `Bull`?"


def test_conditions_and_actions_are_validated():
    assert found("exit_triggers [ pnl_pct(<-25%) ]\n") == [("E106", 2, 17, 24)]
    assert found("warn_if days_lft > 30d\n") == [("E106", 2, 9, 17)]
    assert found("adjust_playbook [ rol_nearest_term() ]\n") == [("E106", 2, 19, 35)]
    assert found("adjust_playbook [ scale_qty(leg=1, factr=2) ]\n") == [("E103", 2, 36, 41)]


def test_experiment_settings():
    document, diagnostics = lowered(
        "experiment {\n  model garch(alpha=0.08, beta=0.9) + jump\n  signal direction hit_rate 0.9\n"
        "  paths 50000  steps_per_day 1  seed 7\n  horizon 12\n  sizes [1, 2, 5]\n"
        "  stress [ vol_up(+50%), slippage(x3) ]\n  target median_monthly_return >= 1%\n}\n")
    assert not diagnostics
    experiment = document.experiment
    assert [c.name for c in experiment.model] == ["garch", "jump"]
    assert experiment.model[0].params == {"alpha": 0.08, "beta": 0.9}
    assert (experiment.paths, experiment.steps_per_day, experiment.seed) == (50000, 1, 7)
    assert experiment.hit_rate == 0.9 and experiment.horizon_months == 12 and experiment.sizes == (1, 2, 5)
    assert [(s.name, s.value) for s in experiment.stress] == [("vol_up", 0.5), ("slippage", 3.0)]
    assert found("experiment {\n  pahts 10\n  paths 0\n  model garhc\n}\n") == [
        ("E107", 3, 3, 8), ("E207", 4, 9, 10), ("E105", 5, 9, 14)]


def test_hedge_rule_and_assignment():
    document, diagnostics = lowered("hedge delta with Future every 1d band 0.05 keep 10% along direction\n"
                                    "on_assignment take_delivery(storage=2/day, funding=3%, hold=45d)\n")
    assert not diagnostics
    assert (document.hedge.every_days, document.hedge.band, document.hedge.keep, document.hedge.along) == (
        1.0, 0.05, 0.1, "direction")
    policy = document.assignment
    assert (policy.action, policy.storage_per_day, policy.funding_rate, policy.hold_days) == (
        "take_delivery", 2.0, 0.03, 45.0)
    assert found("hedge delta keep 150%\n") == [("E207", 2, 18, 22)]
    assert found("hedge delta sometimes\n") == [("E103", 2, 13, 22)]


@pytest.mark.parametrize("text, along, every", [
    ("hedge delta with Future every 1d band 0.05 keep 10% along long\n", "long", 1.0),
    ("hedge delta with Future keep 10% along short every 2d band 0.05\n", "short", 2.0),
    ("hedge delta keep 10% along LONG\nS = short Option(Put, 9800, 30d)\n", "long", 1.0),
])
def test_a_fixed_side_after_along_is_a_value_not_a_polarity(text, along, every):
    # `long`/`short` are polarity keywords elsewhere; after `along` the next word (or the line's end) must not
    # be read as their operand — `along long` once failed to parse, `along short every 2d` swallowed `every`.
    document, diagnostics = lowered(text)
    assert not [d for d in diagnostics if d.severity == "error"]
    assert (document.hedge.along, document.hedge.every_days, document.hedge.keep) == (along, every, 0.1)


def test_rc6_fields_with_units():
    document, diagnostics = lowered("intent = Bull\npremium_offset = 40%\nmax_risk = 1500 USD\nvol_target 35 IV\n"
                                    "holding_horizon 10 d\n")
    assert not diagnostics
    assert document.intent.direction == "Bull" and document.constraints.premium_offset == 0.4
    assert document.constraints.max_risk == 1500 and document.constraints.currency == "USD"
    assert document.intent.vol_target == pytest.approx(0.35) and document.intent.holding_horizon_days == 10


def test_strategies_defined_twice_and_unused_names():
    assert found("S = long Stock\nS = short Stock\n") == [("E204", 3, 1, 2)]
    assert found("A = long Stock\nS = long ETF\n") == [("W409", 2, 1, 2)]
    document, diagnostics = lowered("A = long Stock\nS = A + short ETF\n")
    assert not diagnostics and document.strategy.name == "S"


def test_margin_buffer_accepts_its_default_of_zero():
    # 0% is the default headroom, so writing it is accepted; a 0% stop loss is still out of range
    document, diagnostics = lowered("margin_buffer 0%\n")
    assert diagnostics == [] and document.risk.margin_buffer == 0.0
    assert [d[0] for d in found("stop_loss 0%\n")] == ["E207"]
    assert [d[0] for d in found("margin_buffer 120%\n")] == ["E207"]
