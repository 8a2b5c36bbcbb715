"""``opl assumptions``: the DESIGN.md contract keys, report files, located data errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.data.synth import synthesize

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "jujube" / "cj_continuous_daily.csv"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synthesize(seed=6, years=4, options=False).write(out)
    return out


def run(*args: str):
    return CliRunner().invoke(main, ["assumptions", *args])


def test_json_contract_keys(dataset, tmp_path):
    out = tmp_path / "a.json"
    result = run("--futures", str(dataset / "futures.csv"), "--signals", str(dataset / "signals.csv"),
                 "--factors", str(dataset / "factors.csv"), "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["random_walk"]["verdict"] in ("consistent", "rejected")
    hit = data["hit_rate"]
    assert 0 <= hit["estimate"] <= 1 and hit["n"] > 0
    for key in ("wilson", "clopper_pearson"):
        lo, hi = hit[key]
        assert lo <= hit["estimate"] <= hi
    assert data["factors"] is not None and data["data"]["rolls"]["method"] == "symbol"
    assert "Random walk at 1–21 days" in result.output and f"wrote {out}" in result.output


def test_without_signals_the_hit_rate_keys_are_still_there(dataset, tmp_path):
    out = tmp_path / "b.json"
    assert run("--futures", str(dataset / "futures.csv"), "--json", str(out)).exit_code == 0
    hit = json.loads(out.read_text(encoding="utf-8"))["hit_rate"]
    assert hit["n"] == 0 and hit["estimate"] is None and hit["wilson"] is None and hit["clopper_pearson"] is None


def test_report_directory_has_markdown_and_pngs(dataset, tmp_path):
    result = run("--futures", str(dataset / "futures.csv"), "--signals", str(dataset / "signals.csv"),
                 "--report", str(tmp_path / "rep"))
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"assumptions.md", "acf.png", "variance_ratio.png", "hit_rate.png"} <= names


def test_bad_data_is_a_located_error_exit_1(tmp_path):
    path = tmp_path / "fut.csv"
    path.write_text("trading_date,open,high,low,close,settlement\n"
                    "2024-01-02,100,110,90,105,104\n"
                    "2024-01-03,100,90,110,105,104\n", encoding="utf-8")
    result = run("--futures", str(path), "--json", str(tmp_path / "x.json"))
    assert result.exit_code == 1
    assert f"error: {path}:3: column `high`: high 90 is below low 110" in result.stderr
    assert not (tmp_path / "x.json").exists()
    assert "Traceback" not in result.output


def test_too_short_a_series_exits_1_and_io_errors_exit_2(dataset, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("trading_date,open,high,low,close,settlement\n"
                    + "".join(f"2024-01-{d:02d},100,110,90,{100 + d % 3},104\n" for d in range(2, 30)),
                    encoding="utf-8")
    result = run("--futures", str(path))
    assert result.exit_code == 1 and "too few" in result.stderr
    assert run("--futures", str(tmp_path / "missing.csv")).exit_code == 2
    assert run("--signals", str(dataset / "signals.csv")).exit_code == 2
    bad_out = run("--futures", str(dataset / "futures.csv"), "--json", str(tmp_path / "no" / "dir" / "x.json"))
    assert bad_out.exit_code == 2 and "Random walk" not in bad_out.stdout



@pytest.mark.parametrize("option", ["--alpha", "--claim", "--power", "--flat-band", "--limit", "--tick"])
def test_nan_options_are_usage_errors(dataset, option):
    # click's FloatRange lets `nan` through (its comparisons are all false); `--alpha nan` used to exit 0
    # with every verdict silently computed against nan.
    result = run("--futures", str(dataset / "futures.csv"), option, "nan")
    assert result.exit_code == 2 and "not a finite number" in result.stderr, result.output


@pytest.mark.skipif(not REAL.exists(), reason="real jujube data (../shared/data/jujube) not present")
def test_real_jujube_series(tmp_path):
    assert run("--futures", str(REAL)).exit_code == 1  # two zero settlements, documented; repair is opt-in
    out = tmp_path / "real.json"
    result = run("--futures", str(REAL), "--repair", "--limit", "0.10", "--tick", "5", "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    # The six documented price rolls and the main-contract switches seen in the open interest.
    assert data["data"]["rolls"]["count"] > 20
    assert data["random_walk"]["n_excluded_roll_returns"] == data["data"]["rolls"]["count"]
    assert len(data["data"]["futures"]["repairs"]) == 2
    assert data["random_walk"]["verdict"] in ("consistent", "rejected")


def test_constant_prices_are_a_located_error_not_arch_traceback(tmp_path):
    import pandas as pd

    path = tmp_path / "flat.csv"
    days = pd.bdate_range("2022-01-03", periods=300).strftime("%Y-%m-%d")
    path.write_text("trading_date,open,high,low,close,settlement\n"
                    + "".join(f"{d},9000,9000,9000,9000,9000\n" for d in days), encoding="utf-8")
    strategy = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
    for command, *more in (("assumptions",), ("calibrate",), ("assumptions", "--strategy", str(strategy))):
        result = CliRunner().invoke(main, [command, "--futures", str(path), *more])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (command, result.output)
        assert f"error: {path}:2: column `close`: the close never changes (lines 2–301)" in result.stderr


def test_arch_refusing_a_series_is_a_value_error():
    import numpy as np

    from opl.hypotheses.random_walk import random_walk_tests

    with pytest.raises(ValueError, match="too little variation"):
        random_walk_tests(np.zeros(500))
