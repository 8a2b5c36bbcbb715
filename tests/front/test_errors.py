"""One error family (`opl.errors.OplError`) and one CLI handler (`opl.cli.report.handled`)."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.errors import EXIT_FINDINGS, EXIT_USAGE, OplError

ROOT = Path(__file__).resolve().parents[2]


def _error_classes():
    """Every class named ``*Error`` (or ``AkshareUnavailable``, ``UnsupportedCondition``) that opl defines."""
    found = []
    for folder, package in ((ROOT / "opl", "opl"), (ROOT / "runtime", "opl.runtime")):
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = ".".join((package, *path.relative_to(folder).with_suffix("").parts)).removesuffix(".__init__")
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and any(
                        isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id.endswith("Exception"))
                        for b in node.bases):
                    found.append((module, node.name))
    return found


def test_every_error_class_is_an_opl_error():
    classes = _error_classes()
    assert len(classes) >= 18  # the issue counted 18 unrelated ones
    outside = []
    for module, name in classes:
        cls = getattr(importlib.import_module(module), name)
        if not name.startswith("_") and not issubclass(cls, OplError):
            outside.append(f"{module}.{name}")
    assert not outside, f"not in the OplError family: {outside}"


def test_errors_keep_their_builtin_bases():
    from opl.data.akshare import AkshareUnavailable
    from opl.data.loaders import DataError
    from opl.lang.experiment.settings import SettingsError

    assert issubclass(DataError, ValueError) and issubclass(SettingsError, ValueError)
    assert issubclass(AkshareUnavailable, ImportError)


def test_exit_codes_by_kind():
    from opl.closedloop.archive import ArchiveError
    from opl.closedloop.inputs import DataInputError
    from opl.runtime.market.rules import RulePackError
    from opl.lang.experiment.settings import SettingsError
    from opl.simulation.run import SimulationInputError

    assert SettingsError("x", key="size").exit_code == EXIT_USAGE
    assert ArchiveError("x").exit_code == EXIT_USAGE and RulePackError("x").exit_code == EXIT_USAGE
    assert DataInputError("x", usage=True).exit_code == EXIT_USAGE
    assert DataInputError("x").exit_code == EXIT_FINDINGS
    assert SimulationInputError(None, []).exit_code == EXIT_FINDINGS


def test_a_run_error_carries_located_diagnostics_and_renders_like_check(tmp_path):
    import opl
    from opl.lang.render import render
    from opl.simulation.run import SimulationInputError, simulate_file

    path = tmp_path / "bad.opl"
    path.write_text("opl-lang 1.0\nS = short Option(Call, 480, 14d\n", encoding="utf-8")
    with pytest.raises(SimulationInputError) as caught:
        simulate_file(path, paths=5)
    error = caught.value
    assert isinstance(error, OplError) and error.located
    assert error.render() == render([opl.check_file(path).report], "full")
    found = error.to_dict()
    assert found["error"] == "SimulationInputError" and found["exit_code"] == 1
    first = found["diagnostics"][0]
    assert first["file"] == str(path) and first["line"] == 2 and first["code"].startswith("E")


def test_an_error_outside_a_file_renders_as_error_lines():
    from opl.lang.experiment.settings import SettingsError

    error = SettingsError("must be positive", key="experiment.paths", help="give a whole number >= 1")
    assert error.render() == "error: --set experiment.paths: must be positive\n  = help: give a whole number >= 1\n"
    assert error.to_dict()["diagnostics"] == []
    json.dumps(error.to_dict())


def test_the_errors_module_is_numpy_free():
    code = "import sys, opl.errors; assert 'numpy' not in sys.modules, 'numpy imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


CAUGHT_IN_CLI = re.compile(r"except\s*\(?[^:]*\b(\w+Error|AkshareUnavailable|UnsupportedCondition)\b")
#: The handler itself, and `opl data validate`/`rolls`, whose result is the list of the file's problems (stdout).
ALLOWED = {("report.py", "OplError"), ("data.py", "DataError")}


def test_no_command_catches_an_opl_error_to_print_it():
    """Commands leave printing and exiting to `opl.cli.report.reported`; an except clause naming an OplError
    subclass may only translate it (raise), never print and exit."""
    offenders = []
    for path in sorted((ROOT / "opl" / "cli").glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            match = CAUGHT_IN_CLI.search(line)
            if not match or match.group(1) in ("ValueError", "OSError", "ImportError") or \
                    (path.name, match.group(1)) in ALLOWED:
                continue
            body = "\n".join(lines[number + 1:number + 4])
            if "raise" not in body:
                offenders.append(f"{path.name}:{number + 1}: {line.strip()}")
    assert not offenders, offenders


def test_the_handler_prints_the_located_error_and_exits_1(tmp_path):
    path = tmp_path / "bad.opl"
    path.write_text("opl-lang 1.0\nS = short Option(Call, 480, 14d\n", encoding="utf-8")
    for command in (["compile", str(path)], ["simulate", str(path), "--paths", "5"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, (command, result.output)
        assert "error[E" in result.stderr and f"{path}:2:" in result.stderr and "Traceback" not in result.output


def test_the_handler_gives_a_bad_setting_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["simulate", str(ROOT / "examples" / "jujube" / "strangle.opl"), "--paths",
                                       "5", "--set", "margin.method=pairs"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --set margin.method:")


def test_the_handler_reports_an_unreadable_file_exit_2(tmp_path):
    missing = tmp_path / "missing.opl"
    result = CliRunner().invoke(main, ["compile", str(missing)])
    assert result.exit_code == 2 and f"error: {missing}:" in result.stderr
