"""The Python facade (`opl.api`, issue 17 items 1–2): paths or text in, typed results out, located `OplError`s,
no files written, and notebook views (frames, HTML, figures) that the CLI's PNGs share."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import opl
import opl.api as api
from opl.errors import OplError

ROOT = Path(__file__).resolve().parents[1]
STRANGLE = ROOT / "examples" / "jujube" / "strangle.opl"
SMALL = {"experiment.horizon": 2}


@pytest.fixture(scope="module")
def result():
    return api.simulate(STRANGLE, paths=60, seed=3, set=SMALL)


def test_importing_opl_and_the_facade_imports_nothing_numeric():
    code = ("import sys, opl, opl.api; opl.check('opl-lang 1.0\\nS = long Option(Call, 480, 14d)\\n'); "
            "assert not {'numpy', 'pandas', 'scipy', 'matplotlib'} & set(sys.modules), 'numeric import'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_a_source_is_a_path_or_the_files_text():
    assert api.is_path(STRANGLE) and api.is_path("examples/jujube/strangle.opl")
    assert not api.is_path(STRANGLE.read_text(encoding="utf-8"))
    from_text = api.compile(STRANGLE.read_text(encoding="utf-8"), path="strangle.opl")
    assert from_text.totals == api.compile(STRANGLE).totals
    assert opl.compile(str(STRANGLE)).totals == from_text.totals


def test_simulate_from_text_equals_simulate_from_the_path(result, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is written (the folder stays empty)
    again = api.simulate(STRANGLE.read_text(encoding="utf-8"), paths=60, seed=3, set=["experiment.horizon=2"],
                         path=str(STRANGLE))
    assert again.to_dict() == result.to_dict()
    assert list(tmp_path.iterdir()) == []


def test_set_takes_a_mapping_with_lists():
    run = api.simulate(STRANGLE, paths=20, set={"experiment.horizon": 1, "experiment.sizes": [1, 3], "size": 3})
    assert run.run["sizes"] == [1, 3] and run.base.size == 3


def test_errors_are_opl_errors_with_located_diagnostics():
    bad = "opl-lang 1.0\nS = short Option(Call, 480, 14d\n"
    for stage in (api.compile, api.simulate):
        with pytest.raises(OplError) as caught:
            stage(bad, path="bad.opl")
        error = caught.value
        assert error.located and error.diagnostics[0].span.line == 2
        assert "--> bad.opl:2:" in error.render() and error.to_dict()["diagnostics"][0]["file"] == "bad.opl"
    with pytest.raises(OplError) as caught:
        api.simulate(STRANGLE, paths=5, set={"margin.method": "pairs"})
    assert caught.value.exit_code == 2 and "margin.method" in caught.value.render()
    assert not api.check(bad).ok  # check's findings are its result: it does not raise


def test_results_to_dict_is_the_clis_json(result, tmp_path):
    from click.testing import CliRunner

    from opl.cli import main

    out = CliRunner().invoke(main, ["simulate", str(STRANGLE), "--paths", "60", "--seed", "3", "--set",
                                    "experiment.horizon=2", "--json", "-", "-q"])
    assert out.exit_code == 0, out.output
    cli = json.loads(out.stdout)
    mine = json.loads(json.dumps(result.to_dict()))
    cli["run"].pop("versions"), mine["run"].pop("versions")
    cli.pop("file"), mine.pop("file")
    assert cli == mine


def test_frames_by_size_scenarios_monthly_returns_and_attribution(result):
    frame = result.to_frame()
    assert list(frame.index) == [s for s, _, _ in result.sizes]
    row = frame.loc[result.base.size]
    assert row["median_monthly_return"] == result.base.target_values()["median_monthly_return"]
    assert row["median_monthly_return_se"] == result.base.standard_errors["median_monthly_return"]
    frames = result.frames()
    assert set(frames) == {"by_size", "scenarios", "monthly_returns", "attribution"}
    monthly = frames["monthly_returns"]
    assert monthly.shape == (60, 2) and list(monthly.columns) == [1, 2]
    assert monthly.to_numpy() == pytest.approx(result.monthly_returns * 100)
    assert list(frames["scenarios"].index) == [s.text for s in result.scenarios]
    att = frames["attribution"]
    assert att.loc["total", "per_month"] == pytest.approx(result.base.attribution["per_month"]["total"])


def test_html_shows_the_verdict_the_table_by_size_and_the_scenarios(result):
    html = result._repr_html_()
    assert "recommended size" in html and "<table" in html and html.count("<table") == 2
    assert f"target <code>{result.target}</code>".replace(">=", "&gt;=").replace("<=", "&lt;=") in html


def test_plot_methods_return_figures_and_the_report_pngs_are_the_same_figures(result, tmp_path):
    from matplotlib.figure import Figure

    from opl.runtime.results.report import PLOTS, write_report

    figures = [result.plot_returns(), result.plot_drawdowns(), result.plot_equity(), result.plot_margin(),
               result.plot_size_sweep(), result.plot_size_sweep("max_drawdown_p95"), api.compile(STRANGLE).plot_payoff()]
    assert all(isinstance(f, Figure) for f in figures)
    assert figures[0].axes[0].get_title().startswith("Monthly returns")
    with pytest.raises(ValueError, match="unknown metric"):
        result.plot_size_sweep("sharpe")
    write_report(result, tmp_path)
    assert all((tmp_path / name).stat().st_size > 1000 for name in PLOTS)


def test_compiled_strategy_frame_has_the_per_leg_greeks():
    compiled = api.compile(STRANGLE)
    frame = compiled.to_frame()
    assert len(frame) == len(compiled.legs) and {"delta", "gamma", "vega/1%", "theta/day"} <= set(frame.columns)
    assert frame["delta"].sum() == pytest.approx(compiled.totals.delta)
    assert compiled.to_dict()["totals"]["delta"] == pytest.approx(compiled.totals.delta)


def test_the_verbs_are_on_opl_and_importing_a_stage_never_replaces_one():
    import importlib

    for stage in ("opl.simulation.run", "opl.backtesting", "opl.calibration", "opl.hypotheses", "opl.closedloop.run",
                  "opl.compiler.strategy", "opl.lang.frontend"):
        importlib.import_module(stage)
    for verb in ("check", "compile", "simulate", "backtest", "calibrate", "assumptions", "loop"):
        assert callable(getattr(opl, verb)) and getattr(opl, verb).__module__ == "opl", verb
    assert opl.simulate(STRANGLE, paths=20, set={"experiment.horizon": 1}).run["paths"] == 20
