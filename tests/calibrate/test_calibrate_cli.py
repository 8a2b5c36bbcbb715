"""`opl calibrate` and `opl simulate --data` from the command line: outputs, exit codes, located errors."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from opl.cli import main

TOP_KEYS = {"inputs", "settings", "realised", "garch", "jumps", "surface", "iv_summary", "implied", "block",
            "versions"}


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def test_calibrate_a_data_directory_writes_json_block_and_report(runner, synth_dir, tmp_path):
    out = tmp_path / "report"
    res = runner.invoke(main, ["calibrate", "--data", str(synth_dir), "--json", str(tmp_path / "c.json"),
                               "--block", str(tmp_path / "exp.opl"), "--report", str(out), "--component", "regime"])
    assert res.exit_code == 0, res.output
    assert "Experiment block:" in res.output and "+ regime" in res.output
    data = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert set(data) == TOP_KEYS
    assert data["block"]["lines"][1] == "calibration historical"
    assert data["surface"]["window"]["slices"] > 0 and data["implied"]["spread"] is not None
    block = (tmp_path / "exp.opl").read_text(encoding="utf-8")
    assert "experiment {" in block and "+ regime" in block
    for name in ("calibration.md", "calibration.json", "experiment.opl", "realised_vol.png", "garch_vol.png",
                 "qq_residuals.png", "iv_smile.png", "iv_level.png"):
        assert (out / name).is_file(), name
    assert "## Experiment block" in (out / "calibration.md").read_text(encoding="utf-8")


def test_json_to_stdout_is_strict_json(runner, synth_dir):
    res = runner.invoke(main, ["calibrate", "--data", str(synth_dir), "--json", "-"])
    assert res.exit_code == 0
    data = json.loads(res.output)
    json.dumps(data, allow_nan=False)
    assert data["settings"]["style"] == "american"


@pytest.mark.parametrize("args, message", [
    ([], "either --data DIR or --futures FILE"),
    (["--data", "D", "--futures", "F"], "either --data DIR or --futures FILE"),
    (["--data", "D", "--options", "O"], "go with --futures"),
])
def test_usage_errors_exit_2(runner, args, message):
    res = runner.invoke(main, ["calibrate", *args])
    assert res.exit_code == 2 and message in res.output


def test_a_missing_directory_is_an_io_error(runner, tmp_path):
    res = runner.invoke(main, ["calibrate", "--data", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "No such directory" in res.output


def test_bad_data_is_a_located_error_and_writes_nothing(runner, synth_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(synth_dir, bad)
    lines = (bad / "futures.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(",")
    cells[5] = "12O00"  # close, with a letter O
    lines[5] = ",".join(cells)
    (bad / "futures.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = runner.invoke(main, ["calibrate", "--data", str(bad), "--json", str(tmp_path / "c.json")])
    assert res.exit_code == 1
    assert f"{bad / 'futures.csv'}:6: column `close`" in res.output
    assert not (tmp_path / "c.json").exists()


def test_a_chain_of_another_product_is_a_located_error(runner, synth_dir, tmp_path):
    # Options on contracts the futures never list used to fall back to parity forwards and fit their own
    # smile silently, reported as the futures' implied volatility (exit 0).
    import pandas as pd

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(synth_dir / "futures.csv", mixed / "futures.csv")
    chain = pd.read_csv(synth_dir / "options.csv", dtype=str, nrows=400)
    chain["underlying_symbol"] = "510050"
    chain.to_csv(mixed / "options.csv", index=False)
    res = runner.invoke(main, ["calibrate", "--data", str(mixed), "--json", str(tmp_path / "c.json")])
    assert res.exit_code == 1, res.output
    assert f"{mixed / 'options.csv'}:2: column `underlying_symbol`: no option's underlying (510050)" in res.output
    assert "another product" in res.output and not (tmp_path / "c.json").exists()


def test_a_directory_without_futures_says_what_it_needs(runner, tmp_path):
    res = runner.invoke(main, ["calibrate", "--data", str(tmp_path)])
    assert res.exit_code == 1 and "no futures file" in res.output and "opl data synth" in res.output


def test_simulate_with_data_records_the_calibration(runner, synth_dir, tmp_path):
    from pathlib import Path

    strangle = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
    res = runner.invoke(main, ["simulate", str(strangle), "--paths", "100", "--set", "experiment.horizon=1",
                               "--set", "experiment.sizes=[1]", "--data", str(synth_dir), "--json", "-", "-q"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["model"]["calibration"]["applied"]["iv.spread"] == data["model"]["implied"]["spread"]
    res = runner.invoke(main, ["simulate", str(strangle), "--paths", "10", "--data", str(tmp_path), "-q"])
    assert res.exit_code == 1 and "no futures file" in res.output
    res = runner.invoke(main, ["simulate", str(strangle), "--paths", "10", "--data", str(tmp_path / "nowhere"), "-q"])
    assert res.exit_code == 2 and f"{tmp_path / 'nowhere'}: No such directory" in res.output
