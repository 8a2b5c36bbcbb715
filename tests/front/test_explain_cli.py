"""``opl explain``: long explanations, the code list, and unknown codes as usage errors."""

from __future__ import annotations

from click.testing import CliRunner

from opl.cli import main
from opl.lang.codes import CODES, explain


def run(*args: str):
    return CliRunner().invoke(main, ["explain", *args])


def test_explain_prints_title_then_the_long_text():
    result = run("E101")
    assert result.exit_code == 0
    assert result.output == explain("E101")
    assert result.output.startswith("E101 (error): unknown primitive\n\n")
    assert "Names are case-sensitive." in result.output


def test_explain_accepts_lower_case_and_keeps_examples():
    result = run("e013")
    assert result.exit_code == 0
    assert '[{"qty":1,"side":"long","type":"call","strike":480,"exp":3650}]' in result.output


def test_list_has_every_code_with_severity_and_title():
    result = run("--list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(CODES)
    assert lines[0].split(None, 2) == ["E001", "error", "syntax error"]
    for line, entry in zip(lines, CODES.values()):
        code, severity, title = line.split(None, 2)
        assert (code, severity, title) == (entry.code, entry.severity, entry.title)


def test_unknown_code_suggests_the_nearest_and_exits_2():
    runner = CliRunner(mix_stderr=False) if _mixes() else CliRunner()
    result = runner.invoke(main, ["explain", "E1O1"])
    assert result.exit_code == 2
    assert "unknown code `E1O1`" in result.stderr
    assert "did you mean `E101`?" in result.stderr
    assert result.stdout == ""


def test_code_or_list_is_required():
    assert run().exit_code == 2
    assert run("E101", "--list").exit_code == 2


def _mixes() -> bool:
    """Whether this click still mixes stderr into output by default (click < 8.2)."""
    import inspect

    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


def test_the_generated_tables_of_the_language_reference_are_current():
    # grammar/README.md's tables between `<!-- generated:… -->` markers come from the code (opl.lang.reference);
    # a code, limit, trigger or template added without `python -m opl.lang.reference --write` fails here.
    from pathlib import Path

    from opl.lang.reference import refresh

    readme = Path(__file__).resolve().parents[2] / "grammar" / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert refresh(text) == text, "run `python -m opl.lang.reference --write`"
