"""Template expansion (spec §8) and intent mapping (§3.4)."""

from __future__ import annotations

import pytest

import opl
from opl.lang.intent import canonical_intent, map_intent_to_o
from opl.lang.templates import TEMPLATES, template_reference


def legs_of(expr: str, extra: str = "") -> list[str]:
    result = opl.check(f"opl-lang 1.0\n{extra}S = {expr}\nexit_mode first_hit\n")
    assert not result.report.has_errors, [(d.code, d.message) for d in result.report.diagnostics]
    return [str(leg) for leg in result.legs]


@pytest.mark.parametrize("expr, expected", [
    ("Vertical(Call, 480, 500, 30d)", ["long Option(Call, 480, 30d)", "short Option(Call, 500, 30d)"]),
    ("Condor(Call, K1=480, K2=520, T=30d)", ["long Option(Call, 480, 30d)", "short Option(Call, 490, 30d)",
                                             "short Option(Call, 510, 30d)", "long Option(Call, 520, 30d)"]),
    ("Condor(Put, 440, 460, 540, 560, 30d)", ["long Option(Put, 440, 30d)", "short Option(Put, 460, 30d)",
                                              "short Option(Put, 540, 30d)", "long Option(Put, 560, 30d)"]),
    ("Straddle(ATM, 30d)", ["long Option(Call, ATM, 30d)", "long Option(Put, ATM, 30d)"]),
    ("short Strangle(ATM-5%, ATM+5%, 30d)", ["short Option(Put, ATM-5%, 30d)", "short Option(Call, ATM+5%, 30d)"]),
    ("IronCondor(440, 460, 540, 560, 30d)", ["long Option(Put, 440, 30d)", "short Option(Put, 460, 30d)",
                                             "short Option(Call, 540, 30d)", "long Option(Call, 560, 30d)"]),
    ("IronButterfly(460, 500, 540, 30d)", ["long Option(Put, 460, 30d)", "short Option(Call, 500, 30d)",
                                           "short Option(Put, 500, 30d)", "long Option(Call, 540, 30d)"]),
    ("Butterfly(Call, 480, 500, 520, 30d)", ["long Option(Call, 480, 30d)", "2×short Option(Call, 500, 30d)",
                                             "long Option(Call, 520, 30d)"]),
    ("CoveredCall(520, 30d)", ["long Stock", "short Option(Call, 520, 30d)"]),
    ("CalendarSpread(Call, 500, 30d, 60d)", ["short Option(Call, 500, 30d)", "long Option(Call, 500, 60d)"]),
    ("RatioSpread(Put, 500, 470, 30d, ratio=2)", ["2×short Option(Put, 470, 30d)", "long Option(Put, 500, 30d)"]),
    ("SyntheticShort(500, 60d)", ["short Option(Call, 500, 60d)", "long Option(Put, 500, 60d)"]),
    ("StockEquivalent()", ["long Option(Call, ATM, 365d)", "short Option(Put, ATM, 365d)"]),
    ("2×Collar(470, 530, 60d)", ["2×long Stock", "2×long Option(Put, 470, 60d)", "2×short Option(Call, 530, 60d)"]),
])
def test_template_expands_to_ordinary_legs(expr, expected):
    assert legs_of(expr) == expected


def test_linear_leg_follows_the_underlying():
    assert legs_of("ProtectivePut(460, 90d)", "underlying Future(2026-05-15)\n")[0] == "long Future"


def test_expanded_legs_point_at_the_call_and_name_their_template():
    text = "opl-lang 1.0\nS = long Option(Put, 400, 30d) + Straddle(500, 30d)\nexit_mode first_hit\n"
    result = opl.check(text)
    straddle = [leg for leg in result.legs if leg.origin == "Straddle"]
    assert len(straddle) == 2
    assert {(leg.span.line, leg.span.column, leg.span.end_column) for leg in straddle} == {(2, 34, 52)}


def test_template_legs_merge_with_written_legs():
    # the straddle's call cancels the written short call: I305, and nothing is lost
    result = opl.check("opl-lang 1.0\nS = Straddle(500, 30d) + short Option(Call, 500, 30d)\nexit_mode first_hit\n")
    assert [str(leg) for leg in result.legs] == ["long Option(Put, 500, 30d)"]
    assert [d.code for d in result.report.diagnostics] == ["I305"]


@pytest.mark.parametrize("expr, code, words", [
    ("Vertical(Call, 480, 30d)", "E103", "takes `Vertical(type, K1, K2, T)`"),
    ("Condor(Call, K1=480, K5=520, T=30d)", "E103", "no argument `K5`"),
    ("IronCondor(440, 560, 540, 460, 30d)", "E105", "strikes must increase"),
    ("CalendarSpread(Call, 500, 60d, 30d)", "E105", "`Tnear` must expire before `Tfar`"),
    ("Condor(Call, ATM, 520, 30d)", "E104", "both strikes absolute"),
    ("RatioSpread(Put, 500, 470, 30d, ratio=0)", "E305", "quantity must be positive"),
])
def test_template_argument_errors_are_located(expr, code, words):
    report = opl.check(f"opl-lang 1.0\nS = {expr}\nexit_mode first_hit\n").report
    assert [d.code for d in report.diagnostics] == [code], [(d.code, d.message) for d in report.diagnostics]
    assert words in report.diagnostics[0].message
    assert report.diagnostics[0].span.line == 2


def test_every_bad_template_argument_is_reported():
    report = opl.check("opl-lang 1.0\nS = Straddle(30d, 500)\nexit_mode first_hit\n").report
    assert [(d.code, d.span.column) for d in report.sorted()] == [("E104", 14), ("E104", 19)]


def test_reference_lists_every_template():
    table = template_reference()
    for name in TEMPLATES:
        assert f"`{name}(" in table


@pytest.mark.parametrize("direction, style, expected", [
    ("Breakout", None, ("Neutral", "Debit")),
    ("RangeBound", "Debit", ("Neutral", "Credit")),
    ("Bull", "Credit", ("Bull", "Credit")),
])
def test_canonical_intent(direction, style, expected):
    assert canonical_intent(direction, style) == expected


def test_map_intent_to_o_follows_the_spec_table():
    text = lambda sets: [" + ".join(map(str, s)) for s in sets]  # noqa: E731
    assert text(map_intent_to_o("Bull")) == ["long call", "short put", "long underlying"]
    assert text(map_intent_to_o("Bull", "Debit")) == ["long call", "long underlying"]
    assert text(map_intent_to_o("Bear", "Credit")) == ["short call", "short underlying"]
    assert text(map_intent_to_o("RangeBound")) == ["short call + short put"]
    assert text(map_intent_to_o("Breakout")) == ["long call + long put"]
    assert text(map_intent_to_o("NotBear", "Credit")) == ["short put", "long underlying", "short call + short put"]
    with pytest.raises(ValueError):
        map_intent_to_o("Sideways")
