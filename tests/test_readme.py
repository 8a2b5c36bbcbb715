"""The README shows real output: the tour's `opl check` block is what opl prints today."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from opl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_tour_output_is_current(monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"<!-- tour-output -->\n```\n(.*?)```\n<!-- /tour-output -->", readme, re.S).group(1)
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check", "examples/tour/bad.opl"])
    assert result.exit_code == 1
    assert result.output == shown


def test_tour_files_are_the_ones_shown():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("bad.opl", "bull_call.opl"):
        assert (ROOT / "examples" / "tour" / name).read_text(encoding="utf-8").strip() in readme


MAIN_JOB = "opl loop examples/jujube/strangle.opl --data synth --runs runs/jujube"


def test_two_setup_commands_on_top():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    block = lines[lines.index("```bash") + 1:lines.index("```bash") + 3]
    assert block[0] == f"pip install -e . && {MAIN_JOB}"
    assert block[1] == 'pip install -e ".[test]" && pytest'


def test_the_main_job_is_the_one_its_walkthrough_explains():
    assert (ROOT / "examples" / "jujube" / "strangle.opl").is_file()
    walkthrough = (ROOT / "examples" / "jujube" / "README.md").read_text(encoding="utf-8")
    assert f"pip install -e . && {MAIN_JOB}" in walkthrough
    # every flag of the main job exists on the command it runs
    from opl.cli.loop import loop

    options = {opt for param in loop.params for opt in getattr(param, "opts", [])}
    assert {"--data", "--runs"} <= options
