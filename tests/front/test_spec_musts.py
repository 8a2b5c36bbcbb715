"""Conformance with the public spec's MUSTs and table rows that opl missed (issue: finish the front end).

One test per gap, each failing on the code before the fix.
"""

from __future__ import annotations

from click.testing import CliRunner

import opl
from opl.cli import main

HEAD = "opl-lang 1.0\nprice 480\niv 0.25\ntime 2026-01-05\n"
EXIT = "exit_mode first_hit\nexit_triggers [ days_left(<2d) ]\n"


def _codes(text: str) -> list[str]:
    return [d.code for d in opl.check(text).report.sorted()]


def test_vertical_requires_k1_below_k2():  # rc6 §8.1: Vertical(Call, K1 < K2)
    (d,) = opl.check(HEAD + "S = Vertical(Call, 500, 480, 30d)\n" + EXIT).report.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("E105", 5, 25)
    assert "`K2` is 480" in d.message
    assert _codes(HEAD + "S = Vertical(Call, 480, 500, 30d)\n" + EXIT) == []


def test_max_risk_as_a_percentage_of_capital_limit():  # rc3 §3.3 table: `max_risk` 3%
    text = HEAD + "capital_limit 100000\nmax_risk 3%\nS = short Option(Put, 480, 30d)\n" + EXIT
    checked = opl.check(text)
    assert checked.document.constraints.max_risk == 3000.0
    assert "E302" in _codes(text)  # a naked put risks far more than 3,000 at 100 a contract
    (d,) = opl.check(HEAD + "max_risk 3%\nS = long Option(Call, 480, 30d)\n" + EXIT).report.diagnostics
    assert (d.code, d.span.line) == ("E108", 5) and "capital_limit" in d.message


def test_zero_quantity_and_negative_leverage_report_only_their_own_errors():
    assert _codes("opl-lang 1.0\nS = 0× long Option(Call, 480, 30d)\n") == ["E305"]
    assert _codes("opl-lang 1.0\nS = long LeveragedETF{-1}\n") == ["E207"]


def test_thousands_separator_is_explained():
    (d,) = opl.check("opl-lang 1.0\ncapital_limit 20,000\nS = long Option(Call, 480, 30d)\n").report.diagnostics
    assert d.code == "E001" and (d.span.line, d.span.column) == (2, 17)
    assert d.help == "numbers are written without separators: `20000`"


def test_no_guard_switches_off_a_default_guard_only(tmp_path):  # rc6 §3.4: `--no-guard XYZ`
    path = tmp_path / "g.opl"
    path.write_text("opl-lang 1.0\nprice 100\niv 0.25\ntime 2026-01-05\n"
                    "S = long Option(Call, 120, 1d)\n" + EXIT)
    runner = CliRunner()
    on = runner.invoke(main, ["check", str(path), "--format", "concise"])
    off = runner.invoke(main, ["check", str(path), "--format", "concise", "--no-guard", "W401"])
    assert "W401" in on.output and "W401" not in off.output and off.exit_code == 0
    own = path.read_text() + "avoid_leg_if strike_offset > 15%\n"
    path.write_text(own)
    still = runner.invoke(main, ["check", str(path), "--format", "concise", "--no-guard", "W401"])
    assert "W401" in still.output  # the file's own rule is not a default guard
    bad = runner.invoke(main, ["check", str(path), "--no-guard", "W999"])
    assert bad.exit_code == 2


def test_default_multiplier_is_100_in_the_checker():  # rc6 §1.2 MUST
    text = HEAD + "capital_limit 1000\nS = long Option(Call, 480, 30d)\n" + EXIT  # premium ≈ 13.7 × 100
    (d,) = [d for d in opl.check(text).report.diagnostics if d.code == "E301"]
    assert "multiplier 100" in " ".join(d.notes)
    assert _codes(text.replace("capital_limit 1000", "capital_limit 1000\ngranularity 1")) == []
