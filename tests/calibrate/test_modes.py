"""`calibration implied`, `hybrid` and `file`: each changes what `opl simulate` runs in the way
opl/calibration/modes.py documents, and bad data or a bad file is a located error."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import opl
from opl.calibration import CalibrationError
from opl.calibration.stored import StoredCalibrationError, load_calibration
from opl.cli import main
from opl.runtime.engine.processes import DEFAULTS
from opl.simulation.run import SimulationInputError, simulate_file

ROOT = Path(__file__).resolve().parents[2]
STRANGLE = ROOT / "examples" / "jujube" / "strangle.opl"
FAST = ["experiment.horizon=1", "experiment.sizes=[1]"]
HEADER = "交易日期,日均隐含波动率(%),日最低隐含波动率(%),日最高隐含波动率(%),日波动率标准差(%)\n"


def _strangle(tmp_path: Path, lines: list[str], name: str = "modes.opl") -> Path:
    text = STRANGLE.read_text(encoding="utf-8")
    body = "\n".join(f"  {line}" for line in lines)
    text = re.sub(r"  model [^\n]*\n  calibration historical\n", body + "\n", text)
    assert body in text
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _total_vol(model: dict) -> float:
    jump = model.get("jump") or {"intensity": 0.0, "mean": 0.0, "std": 0.0}
    return math.sqrt(model["vol"] ** 2 + jump["intensity"] * (jump["mean"] ** 2 + jump["std"] ** 2))


def test_implied_takes_level_and_smile_from_the_chain(synth_dir, synth_calibration, tmp_path):
    path = _strangle(tmp_path, ["model garch + jump + regime", "calibration implied"])
    result = simulate_file(path, paths=100, overrides=FAST, data=synth_dir)
    window = synth_calibration.surface.window
    model, cal = result.model, result.model["calibration"]
    assert cal["method"] == "implied"
    # Diffusion and jumps together have the chain's one-month ATM volatility.
    assert _total_vol(model) == pytest.approx(window["atm"], abs=2e-4)
    assert model["implied"]["spread"] == 0.0
    assert model["implied"]["skew"] == pytest.approx(window["skew"], abs=1e-3)
    assert model["implied"]["curvature"] == pytest.approx(window["curvature"], abs=1e-3)
    assert model["implied"]["floor"] == pytest.approx(synth_calibration.surface.history.quantile(0.01), abs=1e-4)
    # The dynamics are not implied by prices: they keep the simulator's defaults.
    assert model["garch"]["alpha"] == DEFAULTS["garch"].alpha and model["garch"]["beta"] == DEFAULTS["garch"].beta
    assert model["jump"]["intensity"] == DEFAULTS["jump"].intensity
    assert set(cal["from"].values()) == {"options"} and "garch.beta" not in cal["from"]
    assert cal["implied"]["atm"] == pytest.approx(window["atm"])
    assert any(n.startswith("`calibration implied`: volatility level") for n in result.notes)


def test_implied_from_the_summary_file_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"2024-06-{d:02d},{level:.2f},{level - 4:.2f},{level + 6:.2f},3.5\n"
            for d, level in zip(range(3, 28), [30.0] * 5 + [20.0 + 0.5 * i for i in range(20)])]
    (data / "iv_summary.csv").write_text(HEADER + "".join(rows), encoding="utf-8")
    path = _strangle(tmp_path, ["model gbm + regime", "calibration implied"])
    result = simulate_file(path, paths=100, overrides=FAST, data=data)
    recent = [20.0 + 0.5 * i for i in range(20)][-21:] + [30.0]  # the last 21 days of 25
    expected = sorted(recent)[10] / 100
    assert result.model["vol"] == pytest.approx(expected, abs=1e-4)
    assert result.model["implied"]["spread"] == 0.0
    # No strikes: the smile's shape keeps the defaults, and the record says so.
    default = simulate_file(path, paths=10, overrides=FAST)
    assert result.model["implied"]["skew"] == default.model["implied"]["skew"]
    cal = result.model["calibration"]
    assert cal["from"]["vol"] == "iv_summary" and "iv.skew" not in cal["applied"]
    assert any("skew and curvature keep their defaults" in n for n in cal["notes"])


def test_hybrid_keeps_the_dynamics_of_the_history_and_the_level_of_the_chain(synth_dir, synth_calibration,
                                                                            tmp_path):
    path = _strangle(tmp_path, ["model garch + jump + regime", "calibration hybrid"])
    hybrid = simulate_file(path, paths=100, overrides=FAST, data=synth_calibration)
    historical = simulate_file(STRANGLE, paths=100, overrides=FAST, data=synth_calibration)
    fits = synth_calibration.garch.fits["garch"]
    for key in ("alpha", "beta", "nu"):
        assert hybrid.model["garch"][key] == historical.model["garch"][key]
    assert hybrid.model["garch"]["beta"] == pytest.approx(fits.beta, abs=1e-4)
    assert hybrid.model["jump"] == historical.model["jump"]
    assert _total_vol(hybrid.model) == pytest.approx(synth_calibration.surface.window["atm"], abs=2e-4)
    assert hybrid.model["vol"] != historical.model["vol"]
    assert hybrid.model["implied"]["spread"] == 0.0 != historical.model["implied"]["spread"]
    cal = hybrid.model["calibration"]
    assert cal["method"] == "hybrid"
    assert cal["from"]["garch.beta"] == "history" and cal["from"]["vol"] == "options"
    assert cal["source"]["futures"].endswith("futures.csv")
    # A directory gives the same as a calibration already run on it.
    from_dir = simulate_file(path, paths=100, overrides=FAST, data=synth_dir)
    assert from_dir.model["calibration"]["applied"] == cal["applied"]


def test_the_file_and_set_win_over_implied_values(synth_calibration, tmp_path):
    path = _strangle(tmp_path, ["model garch(vol=30%) + regime", "calibration hybrid", "iv smile(skew=-0.3)"])
    result = simulate_file(path, paths=100, overrides=FAST + ["iv.floor=12%"], data=synth_calibration)
    assert result.model["vol"] == pytest.approx(0.30)
    assert result.model["implied"]["skew"] == -0.3
    assert result.model["implied"]["floor"] == pytest.approx(0.12)
    cal = result.model["calibration"]
    assert "vol" in cal["kept_from_file"] and "iv.skew" in cal["kept_from_file"]
    assert cal["applied"]["iv.floor"] != 0.12


def test_implied_and_hybrid_without_options_are_errors(synth_dir, tmp_path):
    futures_only = tmp_path / "futures_only"
    futures_only.mkdir()
    shutil.copy(synth_dir / "futures.csv", futures_only / "futures.csv")
    for method in ("implied", "hybrid"):
        path = _strangle(tmp_path, ["model garch + regime", f"calibration {method}"])
        with pytest.raises(CalibrationError, match="no option data"):
            simulate_file(path, paths=10, overrides=FAST, data=futures_only)
    out = CliRunner().invoke(main, ["simulate", str(path), "--data", str(futures_only), "-q"])
    assert out.exit_code == 1 and "no option data" in out.output and "Traceback" not in out.output


@pytest.fixture(scope="module")
def calib_json(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("calib") / "calib.json"
    run = CliRunner().invoke(main, ["calibrate", "--data", str(synth_dir), "--json", str(out)])
    assert run.exit_code == 0, run.output
    return out


def test_file_round_trips_opl_calibrate_json(calib_json, synth_calibration, tmp_path):
    shutil.copy(calib_json, tmp_path / "calib.json")
    path = _strangle(tmp_path, ["model garch + jump + regime", 'calibration file("calib.json")'])
    doc = opl.check_file(path).document
    assert doc.experiment.calibration == "file" and doc.experiment.calibration_file == "calib.json"
    stored = simulate_file(path, paths=100, overrides=FAST)
    fitted = simulate_file(STRANGLE, paths=100, overrides=FAST, data=synth_calibration)
    for key in ("garch", "jump", "vol", "implied"):
        assert stored.model[key] == fitted.model[key]
    cal = stored.model["calibration"]
    assert cal["method"] == "file" and cal["applied"] == fitted.model["calibration"]["applied"]
    assert set(cal["from"].values()) == {str(tmp_path / "calib.json")}
    assert stored.base.monthly_return == fitted.base.monthly_return
    # --data names the JSON as well (for a bare `calibration file`).
    bare = _strangle(tmp_path, ["model garch + jump + regime", "calibration file"], "bare.opl")
    run = CliRunner().invoke(main, ["simulate", str(bare), "--data", str(calib_json), "--paths", "100", "--json", "-",
                                    "--set", FAST[0], "--set", FAST[1], "-q"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["model"]["garch"] == fitted.model["garch"]


def test_a_missing_or_bad_calibration_file_is_located(calib_json, tmp_path):
    path = _strangle(tmp_path, ["model garch + regime", 'calibration file("absent.json")'])
    line = path.read_text(encoding="utf-8").splitlines().index('  calibration file("absent.json")') + 1
    with pytest.raises(SimulationInputError) as info:
        simulate_file(path, paths=10, overrides=FAST)
    (diag,) = info.value.diagnostics
    assert diag.code == "E306" and diag.span.line == line and "absent.json: no such file" in diag.message
    (tmp_path / "absent.json").write_text('{"inputs": {},\n  "settings": }\n', encoding="utf-8")
    with pytest.raises(SimulationInputError, match=r"absent.json:2:\d+: not JSON"):
        simulate_file(path, paths=10, overrides=FAST)
    data = json.loads(calib_json.read_text(encoding="utf-8"))
    del data["garch"]["fits"]["garch"]["beta"]
    (tmp_path / "absent.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(StoredCalibrationError, match=r"garch.fits.garch: no `beta`"):
        load_calibration(tmp_path / "absent.json")
    bare = _strangle(tmp_path, ["model garch + regime", "calibration file"], "bare.opl")
    with pytest.raises(SimulationInputError, match="names no file"):
        simulate_file(bare, paths=10, overrides=FAST)
    out = CliRunner().invoke(main, ["simulate", str(path), "-q"])
    assert out.exit_code == 1 and f"{path.name}:{line}:" in out.output and "Traceback" not in out.output


def test_calibration_arguments_are_checked():
    source = "opl-lang 1.0\nexperiment {\n  calibration file(3)\n}\n"
    errors = [d for d in opl.check(source).report.diagnostics if d.severity == "error"]
    assert [(d.code, d.span.line) for d in errors] == [("E103", 3)]
    errors = [d for d in opl.check(source.replace("file(3)", 'implied("x")')).report.diagnostics
              if d.severity == "error"]
    assert [(d.code, d.span.line) for d in errors] == [("E103", 3)]
    assert "takes no arguments" in errors[0].message


def test_without_data_the_methods_note_the_defaults(tmp_path):
    path = _strangle(tmp_path, ["model garch + regime", "calibration implied"])
    result = simulate_file(path, paths=10, overrides=FAST)
    assert result.model["calibration"] is None
    assert any(n.startswith("`calibration implied` without --data uses the documented defaults") for n in result.notes)


def test_a_calibration_json_given_to_historical_is_a_located_error(calib_json, tmp_path):
    # `opl simulate FILE --data calib.json` on a file that says `calibration historical` named the
    # JSON "No such directory"; it now says what to write instead, at the calibration line.
    path = _strangle(tmp_path, ["model garch + regime", "calibration historical"])
    line = path.read_text(encoding="utf-8").splitlines().index("  calibration historical") + 1
    with pytest.raises(SimulationInputError) as info:
        simulate_file(path, paths=10, overrides=FAST, data=str(calib_json))
    (diag,) = info.value.diagnostics
    assert diag.code == "E306" and diag.span.line == line
    assert "a file; `calibration historical` fits a data directory" in diag.message
    assert "`calibration file`" in diag.message
    out = CliRunner().invoke(main, ["simulate", str(path), "--data", str(calib_json), "-q"])
    assert out.exit_code == 1 and f"{path.name}:{line}:" in out.output and "No such directory" not in out.output
