"""Every semantic check (E2xx, E3xx, W4xx and their notes), located field by field.

Each fixture in tests/fixtures/codes/ triggers one finding; the table gives its code
and span (line, column, end_line, end_column), and the words the message must contain.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import opl
from opl.lang.frontend import check_path

CODES = Path(__file__).resolve().parents[1] / "fixtures" / "codes"

EXPECTED = {
    "E010.opl": ("E010", (2, 10, 2, 32), "more than 64 legs"),
    "E201.opl": ("E201", (4, 10, 4, 32), "expires in 60 days"),
    "E203.opl": ("E203", (1, 1, 1, 13), "no strategy"),
    "E205.opl": ("E205", (3, 10, 3, 35), "resolves to -20"),
    "E206.opl": ("E206", (3, 10, 3, 38), "not after `time`"),
    "E206_outlives.opl": ("E206", (4, 10, 4, 32), "after its underlying future"),
    "E208.opl": ("E208", (3, 5, 3, 6), "A → B → A"),
    "E301.opl": ("E301", (7, 1, 7, 20), "above `capital_limit` 10,000"),
    "E302.opl": ("E302", (5, 5, 5, 61), "worst loss at expiry is about 8,571"),
    "E302_unbounded.opl": ("E302", (3, 5, 3, 33), "unbounded"),
    "E303.opl": ("E303", (4, 1, 4, 19), "short of `premium_offset` 40%"),
    "E304.opl": ("E304", (4, 43, 4, 46), "1.5 lots"),
    "E305.opl": ("E305", (4, 43, 4, 44), "zero or negative"),
    "I301.opl": ("I301", (2, 1, 2, 20), "not checked"),
    "I302.opl": ("I302", (2, 1, 2, 14), "not checked"),
    "I305.opl": ("I305", (2, 10, 2, 32), "cancel out"),
    "I401.opl": ("I401", (2, 11, 2, 40), "`support` is not set"),
    "W401.opl": ("W401", (4, 11, 4, 31), "avoid_leg_if days_left < 2d && strike_offset > 10%"),
    "W401_user.opl": ("W401", (5, 10, 5, 32), "avoid_leg_if strike_offset > 15%"),
    "W402.opl": ("W402", (5, 10, 5, 32), "warn_if days_left > 30d && leg_pnl > +25%"),
    "W404.opl": ("W404", (2, 1, 2, 2), "no exit module"),
    "W405.opl": ("W405", (2, 43, 2, 65), "1 short call lot(s) are not covered"),
    "W406.opl": ("W406", (3, 5, 3, 33), "net short delta"),
    "W406_vega.opl": ("W406", (3, 5, 3, 61), "net long vega"),
    "W407.opl": ("W407", (3, 5, 3, 32), "long vega"),
    "W408.opl": ("W408", (3, 1, 3, 18), "below `liquidity_floor` 500"),
    "W411.opl": ("W411", (6, 49, 6, 82), "both are in the money between 10,000 and 10,900"),
    "W411_levels.opl": ("W411", (4, 1, 4, 14), "`support` 11,000 is above `resistance` 9,900"),
}


def test_every_fixture_is_in_the_table():
    assert sorted(p.name for p in CODES.glob("*.opl")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_check_finds_exactly_the_expected_diagnostic(name):
    code, (line, column, end_line, end_column), words = EXPECTED[name]
    diagnostics = check_path(CODES / name).report.diagnostics
    assert [d.code for d in diagnostics] == [code], [(d.code, d.message) for d in diagnostics]
    d = diagnostics[0]
    assert (d.span.line, d.span.column, d.span.end_line, d.span.end_column) == (line, column, end_line, end_column)
    assert words in d.message
    if d.severity != "note" or code in ("I301", "I302", "I401"):
        assert d.help, f"{code} should say how to fix it"


def _codes(text: str) -> list[str]:
    return [d.code for d in opl.check(text).report.sorted()]


def test_restating_a_default_guard_changes_nothing():
    text = ("opl-lang 1.0\nprice 500\niv 0.25\navoid_leg_if days_left < 2d && strike_offset > 10%\n"
            "S = short Option(Put, 400, 1d)\nexit_triggers [ days_left(<1d) ]\n")
    assert _codes(text) == ["W401"]


def test_guard_with_unknown_inputs_stays_silent():
    # no price: strike_offset cannot be known, so the default guard cannot fire
    assert _codes("opl-lang 1.0\nS = short Option(Put, 400, 1d)\nexit_triggers [ days_left(<1d) ]\n") == []


def test_naked_call_is_covered_by_a_hedge_rule_or_a_stop():
    legs = "S = short Option(Put, 450, 30d) + short Option(Call, 520, 30d)\n"
    base = "opl-lang 1.0\n" + legs
    assert "W405" in _codes(base + "exit_triggers [ days_left(<2d) ]\n")
    assert "W405" not in _codes(base + "exit_triggers [ days_left(<2d) ]\nhedge delta with Future every 1d\n")
    assert "W405" not in _codes(base + "exit_triggers [ pnl_percent(<-25%) ]\n")


def test_intent_with_market_uses_black_delta():
    # a call spread bought below the money is net long delta: Bull is fine, Bear is not
    legs = "price 500\niv 0.25\nS = long Option(Call, 480, 30d) + short Option(Call, 520, 30d)\nexit_mode first_hit\n"
    assert "W406" not in _codes("opl-lang 1.0\ndirection_intent Bull\n" + legs)
    assert "W406" in _codes("opl-lang 1.0\ndirection_intent Bear\n" + legs)


def test_offsetting_guesses_do_not_call_the_delta_sign():
    text = "opl-lang 1.0\ndirection_intent NotBull\nS = RatioSpread(Put, 500, 470, 30d, ratio=2)\nexit_mode first_hit\n"
    assert _codes(text) == []


def test_every_finding_in_a_file_is_reported():
    text = ("opl-lang 1.0\ndirection_intent Bull\nprice 500\niv 0.25\nmax_risk 10\ncapital_limit 1\n"
            "liquidity_floor 500\nopen_interest 10\nS = short Option(Call, 480, 30d)\n")
    assert sorted(set(_codes(text))) == ["E301", "E302", "W404", "W405", "W406", "W408"]


def test_checker_imports_nothing_numeric():
    script = ("import sys, opl\nopl.check_file(sys.argv[1])\n"
              "bad = [m for m in ('numpy', 'scipy', 'pandas', 'pydantic') if m in sys.modules]\n"
              "assert not bad, bad\n")
    path = CODES / "E301.opl"  # reads a rule pack, prices options: the heaviest check
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)


def test_capital_estimate_agrees_with_the_runtime_margin_formula():
    # the checker's numpy-free estimate must equal the rule pack's margin plus nothing else (short legs)
    from opl.lang.estimates import Market
    from opl.runtime.pricing import black as pricing
    from opl.runtime.market.margin import short_option_margin
    from opl.runtime.market.rules import pack_for

    result = check_path(CODES / "E301.opl")
    leg = result.legs[0]
    market = Market.of(result.document)
    premium = float(pricing.price(is_call=False, underlying=10000.0, strike=9800.0, t=30 / 365, vol=0.25, rate=0.0))
    assert market.premium(leg) == pytest.approx(premium, rel=1e-10)
    expected = float(short_option_margin(pack=pack_for("CZCE", "CJ605"), is_call=False, underlying=10000.0,
                                         strike=9800.0, premium=premium, lots=3))
    assert f"about {expected:,.0f} of capital" in result.report.diagnostics[0].message


@pytest.mark.parametrize("contract, price, iv, put, call", [
    ("underlying Future(2026-05-15)\nexchange CZCE\nsymbol CJ605", 10400.0, 0.28, 9800.0, 11200.0),
    ("underlying ETF\nexchange SSE", 2.80, 0.22, 2.60, 3.00),
])
def test_capital_estimate_of_a_strangle_is_the_runtime_combination_margin(contract, price, iv, put, call):
    # E301 and the simulator margin a short strangle the same way: as one position, the pack's combination
    # (max of the two legs' margins + the other leg's premium), with the pack's own single-leg formula.
    from opl.lang.estimates import Market
    from opl.runtime.market.margin import options_margin, with_margin_method
    from opl.runtime.market.rules import pack_for

    text = (f"opl-lang 1.0\n{contract}\nprice {price}\niv {iv}\ncapital_limit 1\n"
            f"S = 4×short Option(Put, {put}, 30d) + 4×short Option(Call, {call}, 30d)\n"
            "exit_triggers [ pnl_percent(<-25%) ]\n")
    result = opl.check(text)
    market = Market.of(result.document)
    book = [(leg.option_type == "call", market.strike(leg), market.premium(leg), -4.0, 30) for leg in result.legs]
    doc = result.document
    pack = pack_for(doc.underlying.exchange, doc.underlying.symbol)
    expected = float(options_margin(pack=pack, holdings=book, underlying=price))
    per_leg = float(options_margin(pack=with_margin_method(pack, "per_leg"), holdings=book, underlying=price))
    assert len(book) == 2 and expected < 0.8 * per_leg
    (d,) = [d for d in result.report.diagnostics if d.code == "E301"]
    assert f"about {expected:,.0f} of capital" in d.message and "combinations" in d.notes[0]
