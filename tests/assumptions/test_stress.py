"""The fourth assumption: the strategy's stress scenarios run with the simulator, each judged against its target."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.hypotheses.stress import stress_test

STRANGLE = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
FAST = ["experiment.horizon=1", "experiment.sizes=[1]"]


def _variant(tmp_path: Path, *, target: str | None = "keep", stress: str | None = "keep") -> Path:
    text = STRANGLE.read_text(encoding="utf-8")
    text = re.sub(r"  horizon 12\n", "  horizon 1\n", text)
    text = re.sub(r"  sizes \[[^\]]*\]\n", "  sizes [1]\n", text)
    if target != "keep":
        text = re.sub(r"  target [^\n]*\n", f"  target {target}\n" if target else "", text)
    if stress != "keep":
        text = re.sub(r"  stress [^\n]*\n", f"  stress {stress}\n" if stress else "", text)
    path = tmp_path / "strategy.opl"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report():
    return stress_test(STRANGLE, paths=150, overrides=FAST)


def test_every_scenario_is_judged_with_the_clauses_that_fail(report):
    assert [s.text for s in report.scenarios if s.kind == "stress"] == [
        "vol_up(+50%)", "gap(-8%)", "slippage(x3)", "sr_shift(-3%)"]
    # Each scenario says exactly what it does (opl.simulation.scenarios), in the JSON and the summary.
    assert all(s.definition and s.to_dict()["definition"] == s.definition for s in report.scenarios)
    assert f"`gap(-8%)`: {report.scenarios[1].definition}" in report.summary()
    clauses = ["median_monthly_return >= 1%", "loss_probability <= 25%", "max_drawdown_p95 <= 10%"]
    limits = {"median_monthly_return": (1.0, ">="), "loss_probability": (25.0, "<="), "max_drawdown_p95": (10.0, "<=")}
    for s in report.scenarios:
        def breaks(clause: str) -> bool:
            key = clause.split()[0]
            limit, op = limits[key]
            return s.values[key] < limit if op == ">=" else s.values[key] > limit

        # The failing clauses are exactly those the scenario's own figures break.
        broken = [c for c in clauses if breaks(c)]
        assert s.failing == broken
        assert s.holds is (not broken)
        assert f"`{s.text}`" in s.plain and ("fails" in s.plain) is (not s.holds)
    stress = [s for s in report.scenarios if s.kind == "stress"]
    assert report.verdict == ("fails" if any(not s.holds for s in stress) else "holds")


def test_the_base_case_is_compared_at_the_scenarios_size(report):
    gap = next(s for s in report.scenarios if s.name == "gap")
    # An -8% gap every month cannot leave a short strangle better off than the base case.
    assert gap.values["median_monthly_return"] <= gap.base["median_monthly_return"]
    assert gap.values["loss_probability"] >= gap.base["loss_probability"]
    d = report.to_dict()
    assert d["status"] == "run" and d["verdict"] == report.verdict and len(d["scenarios"]) == 6
    json.dumps(d, allow_nan=False)


def test_a_target_that_holds_everywhere_and_files_without_target_or_stress(tmp_path):
    easy = stress_test(_variant(tmp_path, target="median_monthly_return >= -100%"), paths=100)
    assert easy.verdict == "holds" and "holds in all 4 stress scenarios" in easy.plain
    none = stress_test(_variant(tmp_path, target=None), paths=100)
    assert none.verdict == "no target" and all(s.holds is None for s in none.scenarios)
    bare = stress_test(_variant(tmp_path, stress=None), paths=100)
    assert bare.verdict == "no stress" and all(s.kind == "sensitivity" for s in bare.scenarios)


def test_the_assumption_report_carries_the_stress_verdict(report, tmp_path):
    from opl.hypotheses.report import run_assumptions
    from opl.data.loaders import load
    from opl.data.synth import synthesize

    paths = synthesize(seed=5, years=2, options=False).write(tmp_path / "data")
    rep = run_assumptions(futures=load(paths["futures"], kind="futures"), stress=report)
    data = rep.to_dict()
    assert data["stress"]["status"] == "run" and data["stress"]["verdict"] == report.verdict
    md = rep.write_markdown(tmp_path / "out").read_text(encoding="utf-8")
    assert f"**Verdict: {report.verdict}**" in md and "| `gap(-8%)` | stress |" in md
    assert (tmp_path / "out" / "stress.png").is_file()
    assert "Strategy under stress" in rep.summary()


def test_cli_runs_the_strategy_with_a_model_fitted_to_the_futures(tmp_path):
    from opl.cli import main
    from opl.data.synth import synthesize

    paths = synthesize(seed=5, years=2, options=False).write(tmp_path / "data")
    strategy = _variant(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["assumptions", "--futures", str(paths["futures"]), "--strategy", str(strategy),
                               "--paths", "100", "--json", str(tmp_path / "a.json")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert data["stress"]["verdict"] in ("holds", "fails")
    assert data["stress"]["calibration"]["source"]["futures"] == str(paths["futures"])
    res = runner.invoke(main, ["assumptions", "--futures", str(paths["futures"]), "--strategy", str(strategy),
                               "--paths", "100", "--no-calibrate", "--json", str(tmp_path / "b.json")])
    assert res.exit_code == 0
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))["stress"]["calibration"] is None
    bad = tmp_path / "bad.opl"
    bad.write_text(strategy.read_text(encoding="utf-8").replace("short Option(Put", "short Swap(Put"),
                   encoding="utf-8")
    res = runner.invoke(main, ["assumptions", "--futures", str(paths["futures"]), "--strategy", str(bad)])
    assert res.exit_code == 1 and "E101" in res.output
