"""``opl data synth|validate|rolls``: files written, located errors, exit codes, never a traceback."""

from __future__ import annotations

import json

from click.testing import CliRunner

from opl.cli import main


def run(*args: str):
    return CliRunner().invoke(main, ["data", *args])


def test_synth_writes_the_dataset_and_validate_accepts_it(tmp_path):
    result = run("synth", "--out", str(tmp_path), "--seed", "4", "--years", "1", "--no-options")
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"futures.csv", "signals.csv", "factors.csv", "truth.json"}
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert truth["params"]["seed"] == 4 and truth["params"]["options"] is False
    for kind in ("futures", "signals", "factors"):
        check = run("validate", str(tmp_path / f"{kind}.csv"), "--kind", kind, "--limit", "0.1", "--tick", "5")
        assert check.exit_code == 0, check.output
        assert check.output.rstrip().endswith("ok")


def test_validate_prints_every_located_problem_and_exits_1(tmp_path):
    path = tmp_path / "sig.csv"
    path.write_text("date,support,resistance,direction,source\n"
                    "2024-01-02,9500,10500,up,team\n"
                    "2024-01-01,9500,9400,maybe,team\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["data", "validate", str(path), "--kind", "signals"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"{path}:3: column `direction`: cannot parse 'maybe'" in lines[0]
    assert any(f"{path}:3: column `resistance`:" in line for line in lines)
    assert any(f"{path}:3: column `date`:" in line and "dates must increase" in line for line in lines)
    assert "3 problems" in result.stderr
    assert "Traceback" not in result.output


def test_validate_repair_lists_what_it_changed(tmp_path):
    path = tmp_path / "fut.csv"
    path.write_text("date,open,high,low,close,volume,hold,settle\n"
                    "2021-12-29,14400,14470,14155,14280,9699,58389,14300\n"
                    "2021-12-30,14400,14470,14155,14280,9699,58389,0\n", encoding="utf-8")
    assert run("validate", str(path), "--kind", "futures").exit_code == 1
    result = run("validate", str(path), "--kind", "futures", "--repair")
    assert result.exit_code == 0
    assert f"repaired: {path}:3: column `settlement`: settlement missing or 0" in result.output


def test_usage_and_io_errors_exit_2(tmp_path):
    assert run("validate", str(tmp_path / "missing.csv"), "--kind", "futures").exit_code == 2
    assert run("validate", str(tmp_path / "x.csv"), "--kind", "bonds").exit_code == 2
    assert run("synth").exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = run("synth", "--out", str(blocker / "sub"), "--years", "1", "--no-options")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_rolls_lists_planted_rolls(tmp_path):
    assert run("synth", "--out", str(tmp_path), "--seed", "2", "--years", "1", "--no-options").exit_code == 0
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    result = run("rolls", str(tmp_path / "futures.csv"))
    assert result.exit_code == 0
    assert result.output.startswith(f"{len(truth['rolls'])} rolls (symbol changes)")
    for roll in truth["rolls"]:
        assert roll["trading_date"] in result.output
