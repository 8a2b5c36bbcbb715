"""`opl schema NAME`: every JSON output's schema, validated against real outputs of the commands."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.schemas import SCHEMAS, json_schema

ROOT = Path(__file__).resolve().parents[1]
JUJUBE = ROOT / "examples" / "jujube" / "strangle.opl"


def _validate(name: str, document) -> None:
    schema = json_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def _json(args: list[str], tmp_path: Path | None = None):
    """Run ``opl ARGS`` and read its JSON: from stdout, or from the ``--json`` file it wrote."""
    if tmp_path is None:
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (0, 1), result.output
        return json.loads(result.stdout)
    out = tmp_path / f"{args[0]}.json"
    result = CliRunner().invoke(main, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from opl.data.synth import synthesize

    folder = tmp_path_factory.mktemp("data")
    synthesize(seed=4, years=2, options=False).write(folder)  # a chain would only slow the backtest
    return folder


def test_every_output_has_a_versioned_schema_the_cli_prints():
    listed = CliRunner().invoke(main, ["schema", "--list"])
    assert listed.exit_code == 0 and [line.split()[0] for line in listed.output.splitlines()] == list(SCHEMAS)
    for name in SCHEMAS:
        printed = json.loads(CliRunner().invoke(main, ["schema", name]).output)
        assert printed == json_schema(name) and printed["$id"] == f"urn:opl:schema:{name}:1"
        jsonschema.Draft202012Validator.check_schema(printed)
    unknown = CliRunner().invoke(main, ["schema", "simulat"])
    assert unknown.exit_code == 2 and "did you mean `simulate`?" in unknown.output


def test_check_and_compile(tmp_path):
    findings = _json(["check", "--format", "json", str(ROOT / "examples/tour/bad.opl")])
    assert findings
    _validate("check", findings)
    _validate("compile", _json(["compile", "--format", "json", str(ROOT / "examples/tour/bull_call.opl")]))


def test_simulate(tmp_path):
    output = _json(["simulate", str(JUJUBE), "--paths", "60", "-q", "--set", "experiment.horizon=1",
                    "--set", "experiment.sizes=[1,2]"], tmp_path)
    assert output["scenarios"]
    _validate("simulate", output)


def test_backtest_calibrate_and_assumptions(data, tmp_path):
    _validate("backtest", _json(["backtest", str(JUJUBE), "--data", str(data), "-q"], tmp_path))
    _validate("calibrate", _json(["calibrate", "--data", str(data)], tmp_path))
    _validate("assumptions", _json(["assumptions", "--data", str(data)], tmp_path))


def test_a_key_the_schema_does_not_name_fails_validation(tmp_path):
    # The schemas are closed: an output that grows a key without its schema is caught here.
    output = _json(["simulate", str(JUJUBE), "--paths", "20", "-q", "--set", "experiment.horizon=1",
                    "--set", "experiment.sizes=[1]"], tmp_path)
    output["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError, match="surprise"):
        _validate("simulate", output)
    output.pop("surprise")
    output["schema"] = "opl.simulate/2"  # another version is another schema
    with pytest.raises(jsonschema.ValidationError):
        _validate("simulate", output)
