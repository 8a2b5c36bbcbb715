"""The pre-commit hooks run what they say on the files pre-commit passes them."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _hooks() -> dict[str, dict]:
    yaml = pytest.importorskip("yaml")
    return {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def _run(hook: dict, *files: Path):
    program, *args = shlex.split(hook["entry"])
    assert program == "opl" and hook["language"] == "python"  # installs this package, runs its script
    return CliRunner().invoke(main, [*args, *map(str, files)])


def test_the_hooks_are_opl_check_and_opl_fmt_on_opl_files():
    hooks = _hooks()
    assert set(hooks) == {"opl-check", "opl-fmt"}
    assert all(hook["files"] == r"\.opl$" for hook in hooks.values())


def test_opl_check_hook_fails_on_an_error_and_passes_a_clean_file(tmp_path):
    clean = tmp_path / "clean.opl"
    clean.write_text((ROOT / "strategies" / "iron_condor.opl").read_text(encoding="utf-8"), encoding="utf-8")
    broken = tmp_path / "broken.opl"
    broken.write_text("opl-lang 1.0\ndirction_intent Bull\n", encoding="utf-8")
    assert _run(_hooks()["opl-check"], clean).exit_code == 0
    result = _run(_hooks()["opl-check"], clean, broken)
    assert result.exit_code == 1 and "E102" in result.output


def test_opl_fmt_hook_rewrites_a_file_out_of_canonical_form(tmp_path):
    from opl.lang.fmt import format_text

    messy = tmp_path / "messy.opl"
    text = "opl-lang 1.0\nS=short   Option(Put,9800,30d)\nexit_mode   first_hit\n"
    messy.write_text(text, encoding="utf-8")
    assert _run(_hooks()["opl-fmt"], messy).exit_code == 0
    assert messy.read_text(encoding="utf-8") == format_text(text).text != text
