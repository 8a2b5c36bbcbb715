"""The experiment block: lines the checker accepts and the simulator reads, and `calibration historical`
with data changing what `opl simulate` runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import opl
from opl.simulation.run import SimulationInputError, simulate_file

ROOT = Path(__file__).resolve().parents[2]
STRANGLE = ROOT / "examples" / "jujube" / "strangle.opl"
FAST = ["experiment.horizon=1", "experiment.sizes=[1]"]


def _with_block(tmp_path: Path, lines: list[str]) -> Path:
    """The jujube strangle with its model/calibration lines replaced by ``lines``."""
    text = STRANGLE.read_text(encoding="utf-8")
    body = "\n".join(f"  {line}" for line in lines)
    text = re.sub(r"  model [^\n]*\n  calibration historical\n", body + "\n", text)
    assert body in text
    path = tmp_path / "calibrated.opl"
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_parse_back_to_the_calibrated_values(synth_calibration):
    block = synth_calibration.block
    lines = synth_calibration.experiment_lines(["regime"])
    assert lines[0].startswith("model ") and lines[0].endswith(" + regime") and lines[1] == "calibration historical"
    doc = opl.check("opl-lang 1.0\nexperiment {\n" + "\n".join(lines) + "\n}\n").document
    parsed = {c.name: c.params for c in doc.experiment.model}
    for name, params in block.model:
        assert parsed[name] == pytest.approx(params)
    assert doc.experiment.smile == pytest.approx(block.smile)
    assert doc.experiment.calibration == "historical"


def test_round_trip_calibrate_block_check_simulate(synth_calibration, tmp_path):
    path = _with_block(tmp_path, synth_calibration.experiment_lines(["regime"]))
    checked = opl.check_file(path)
    assert not [d for d in checked.report.diagnostics if d.severity == "error"]
    result = simulate_file(path, paths=200, overrides=FAST)
    block = synth_calibration.block
    name, params = block.model[0]
    assert result.model["components"][0] == name
    garch = result.model["garch"]
    for key in ("alpha", "beta", "nu"):
        assert garch[key] == pytest.approx(params[key])
    assert result.model["vol"] == pytest.approx(params["vol"])
    for key, value in block.smile.items():
        assert result.model["implied"][key] == pytest.approx(value)
    # The block came from the file, not from --data: nothing is recorded as calibrated at run time.
    assert result.model["calibration"] is None


def test_calibration_historical_with_data_changes_what_simulate_runs(synth_dir, synth_calibration):
    default = simulate_file(STRANGLE, paths=200, overrides=FAST)
    fitted = simulate_file(STRANGLE, paths=200, overrides=FAST, data=synth_calibration)
    assert any("without --data uses the documented defaults" in n for n in default.notes)
    assert any("`calibration historical`: the model was fitted to" in n for n in fitted.notes)
    # The file's `iv` no longer sets the model's volatility: the calibration does, and a note says so.
    assert any("is not used: the price model's volatility" in n and "set by the calibration" in n
               for n in fitted.notes)
    assert not any("is not used: the price model's volatility" in n for n in default.notes)
    cal = fitted.model["calibration"]
    applied = cal["applied"]
    fits = synth_calibration.garch.fits
    assert fitted.model["garch"]["alpha"] == pytest.approx(round(fits["garch"].alpha, 4)) == applied["garch.alpha"]
    assert fitted.model["garch"]["alpha"] != default.model["garch"]["alpha"]
    assert fitted.model["vol"] == pytest.approx(synth_calibration.block.vol, abs=1e-4) != default.model["vol"]
    assert fitted.model["implied"]["spread"] == applied["iv.spread"] != default.model["implied"]["spread"]
    assert fitted.model["implied"]["skew"] == applied["iv.skew"] != default.model["implied"]["skew"]
    # The file asks for jumps; the data decide how many.
    assert fitted.model["jump"]["intensity"] == applied["jump.intensity"]
    assert cal["source"]["futures"].endswith("futures.csv")
    # Same seed, different model: different numbers.
    assert fitted.base.monthly_return["median"] != default.base.monthly_return["median"]
    # A directory works as well as a result, and gives the same calibration.
    from_dir = simulate_file(STRANGLE, paths=200, overrides=FAST, data=synth_dir)
    assert from_dir.model["calibration"]["applied"] == applied


def test_the_file_and_set_win_over_the_calibration(synth_calibration, tmp_path):
    path = _with_block(tmp_path, ["model garch(alpha=0.05) + jump + regime", "calibration historical",
                                  "iv smile(spread=10%)"])
    result = simulate_file(path, paths=200, overrides=FAST + ["iv.skew=-0.5"], data=synth_calibration)
    assert result.model["garch"]["alpha"] == 0.05
    assert result.model["implied"]["spread"] == pytest.approx(0.10)
    assert result.model["implied"]["skew"] == -0.5
    cal = result.model["calibration"]
    assert "garch.alpha" in cal["kept_from_file"] and "iv.spread" in cal["kept_from_file"]
    assert cal["applied"]["garch.beta"] == result.model["garch"]["beta"]
    # --set beats the calibration too (it is applied last).
    assert cal["applied"]["iv.skew"] != -0.5


def test_bad_smile_settings_are_located_errors(tmp_path):
    path = _with_block(tmp_path, ["model garch + jump + regime", "calibration historical",
                                  "iv smile(spred=8%, floor=900%)"])
    with pytest.raises(SimulationInputError) as info:
        simulate_file(path, paths=10, overrides=FAST)
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["E103", "E207"]
    messages = " ".join(d.message for d in info.value.diagnostics)
    assert "no parameter `spred`" in messages and "between 0 and 5" in messages
    line = path.read_text(encoding="utf-8").splitlines().index("  iv smile(spred=8%, floor=900%)") + 1
    assert all(d.span.line == line for d in info.value.diagnostics)
