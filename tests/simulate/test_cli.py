"""`opl simulate` end to end: stable JSON keys, reproducibility, located errors, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.simulation.run import SettingsError, SimulationInputError, simulate_file
from opl.lang.vocabulary import SCENARIOS, TARGET_METRICS

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

ROOT = Path(__file__).resolve().parents[2]
JUJUBE = ROOT / "examples" / "jujube" / "strangle.opl"
SMALL = ["--paths", "150", "--set", "experiment.horizon=2"]

TOP_KEYS = {"schema", "file", "run", "model", "strategy", "target", "base", "sizes", "recommended_size",
            "recommended_size_reason", "scenario_size", "scenarios", "notes"}
METRIC_KEYS = {"size", "paths", "months", "monthly_return", "loss_probability", "max_drawdown", "cvar",
               "attribution", "margin", "exercise", "trades", "adjustments", "guards", "target_metrics",
               "standard_errors"}
ERROR_KEYS = {"mean_monthly_return", "median_monthly_return", "loss_probability", "max_drawdown_p95",
              "max_drawdown_p99", "cvar_95", "cvar_99"}


def _run(*args: str):
    return CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def jujube_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "out.json"
    result = _run(str(JUJUBE), *SMALL, "--json", str(out), "-q")
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_json_keys_are_stable(jujube_json):
    d = jujube_json
    assert set(d) == TOP_KEYS
    assert d["schema"] == "opl.simulate/1"
    assert set(d["base"]) == METRIC_KEYS
    assert set(d["base"]["monthly_return"]) == {"mean", "median", "std", "p1", "p5", "p25", "p75", "p95"}
    assert set(d["base"]["max_drawdown"]) == {"mean", "p50", "p95", "p99"}
    assert set(d["base"]["cvar"]) == {"95", "99"}
    assert set(d["base"]["attribution"]["per_month"]) == {"premium", "hedge", "assignment", "funding", "costs",
                                                          "adjustments", "interest", "total"}
    assert set(d["base"]["margin"]) == {"peak_utilisation", "margin_call_probability",
                                        "forced_liquidation_probability", "margin_calls_per_path"}
    assert set(d["base"]["exercise"]) == {"assignment_share", "delivery_share", "skipped_share"}
    assert set(d["base"]["target_metrics"]) == set(TARGET_METRICS)
    for metrics in [d["base"]] + [x["metrics"] for x in d["sizes"] + d["scenarios"]]:
        assert set(metrics["standard_errors"]) == ERROR_KEYS
        assert all(v is not None and v >= 0 for v in metrics["standard_errors"].values())
    assert d["base"]["standard_errors"]["mean_monthly_return"] > 0
    assert set(d["base"]["adjustments"]) == {"rounds_per_month", "exit_share", "actions"}
    assert [a["action"] for a in d["base"]["adjustments"]["actions"]] == ["roll_nearest_term()",
                                                                         "hedge_gamma(target=0.10)"]
    assert set(d["base"]["guards"]) == {"avoided_legs_per_month", "alerts_per_month", "alert_path_share"}
    assert d["strategy"]["adjust"]["playbook"] == ["roll_nearest_term()", "hedge_gamma(target=0.10)"]
    assert [g["kind"] for g in d["strategy"]["guards"]] == ["avoid_leg_if", "warn_if"]
    assert d["scenario_size"]["size"] == d["scenarios"][0]["size"]
    assert set(d["target"]) == {"condition", "holds"}
    assert [s["size"] for s in d["sizes"]] == [1, 2, 5, 10, 20]
    assert all(set(s) == {"size", "holds", "metrics"} for s in d["sizes"])
    assert [s["scenario"] for s in d["scenarios"]] == ["vol_up(+50%)", "gap(-8%)", "slippage(x3)", "sr_shift(-3%)",
                                                       "fees_up(x2)", "hit_rate(0.7)"]
    assert all(set(s) == {"name", "kind", "scenario", "size", "holds", "definition", "metrics"}
               for s in d["scenarios"])
    assert d["scenarios"][0]["definition"].startswith("each month's options are opened at the model's implied")
    assert d["run"]["paths"] == 150 and d["run"]["seed"] == 7 and d["run"]["horizon_months"] == 2
    assert d["run"]["cash_rate"] == d["run"]["margin_rate"] == d["run"]["rate"] == 0.015  # cash earns the file's rate
    assert d["recommended_size"] is None or set(d["recommended_size"]) == {"low", "high"}
    assert (d["recommended_size"] is None) != (d["recommended_size_reason"] is None)
    attribution = d["base"]["attribution"]["per_month"]
    assert attribution["total"] == pytest.approx(sum(v for k, v in attribution.items() if k != "total"))
    assert d["base"]["monthly_return"]["mean"] == pytest.approx(attribution["total"] / d["run"]["capital"] * 100)


def test_every_pnl_bucket_has_a_label_for_people():
    from opl.runtime.engine.ledger import BUCKETS
    from opl.runtime.results.metrics import BUCKET_LABELS

    assert set(BUCKET_LABELS) == set(BUCKETS) | {"total"}


def test_same_seed_reproduces_every_number(jujube_json, tmp_path):
    out = tmp_path / "again.json"
    assert _run(str(JUJUBE), *SMALL, "--json", str(out), "-q").exit_code == 0
    again = json.loads(out.read_text())
    again["run"].pop("versions"), jujube_json["run"].pop("versions", None)
    assert again == {**jujube_json, "run": again["run"]} and again["run"] == jujube_json["run"]
    other = simulate_file(JUJUBE, paths=150, seed=8, overrides=["experiment.horizon=2"]).to_dict()
    assert other["base"]["monthly_return"] != jujube_json["base"]["monthly_return"]


def test_table_and_report(tmp_path):
    result = _run(str(JUJUBE), "--paths", "100", "--set", "experiment.horizon=1", "--report", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    assert "recommended size" in result.output and "scenarios at size" in result.output
    assert "adjustments at size 1:" in result.output and "roll_nearest_term()" in result.output
    assert "dd p95" in result.output and "% peak" in result.output  # units on the columns
    assert "± one Monte Carlo standard error" in result.output and "\n± " not in result.output.split("by size")[0]
    # The mean month is shown beside the median, each with its error, in the table and the scenarios.
    assert result.output.count("± ") >= 5 * 5 + 5
    assert "options P&L (premium less buy-back/expiry value)" in result.output and "premium +" not in result.output
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert files == {"report.md", "returns.png", "drawdown.png", "equity.png", "margin.png"}
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## By size" in report and "**Headline at size 1** (± one Monte Carlo standard error" in report
    headline = next(line for line in report.splitlines() if line.startswith("**Headline"))
    for words in ("mean monthly return", "median monthly return", "loss probability", "max drawdown p95", "CVaR95"):
        assert f"{words} " in headline and headline.split(f"{words} ")[1].split(",")[0].count(" ± ") == 1, words
    assert "| mean % cap | median % cap |" in report and "options P&L" in report
    # Every scenario's exact definition, in the report and on the console.
    assert "- `gap(-8%)`: the futures open -8.0% from the previous close on one random trading day" in report
    assert "gap(-8%): the futures open -8.0%" in " ".join(result.output.split())


def test_standard_errors_match_an_independent_computation_on_the_paths():
    result = simulate_file(JUJUBE, paths=150, overrides=["experiment.horizon=3", "size=5"])
    assert result.plot_size["size"] == 5
    metrics = next(m for size, m, _ in result.sizes if size == 5)
    r = result.monthly_returns * 100  # (paths, months), percent of capital
    se = metrics.standard_errors
    summary = result.summary()
    assert "(± one Monte Carlo standard error): mean monthly return" in summary and "options P&L" in summary
    assert se["mean_monthly_return"] == pytest.approx(r.mean(axis=1).std(ddof=1) / np.sqrt(150))
    assert se["loss_probability"] == pytest.approx((r < 0).mean(axis=1).std(ddof=1) / np.sqrt(150) * 100)
    # The asymptotic quantile errors are of the size a seeded bootstrap over paths gives (both estimates are
    # themselves noisy at 150 paths: test_quantile_errors_match_the_spread_over_seeds compares with the truth).
    rng = np.random.default_rng(0)
    picks = rng.integers(0, 150, (400, 150))
    dd = result.drawdowns * 100
    boot_median = np.std([np.median(r[i]) for i in picks], ddof=1)
    boot_dd = np.std([np.percentile(dd[i], 95) for i in picks], ddof=1)
    assert 0.5 < se["median_monthly_return"] / boot_median < 2.0
    assert 0.5 < se["max_drawdown_p95"] / boot_dd < 3.0  # conservative in a skewed tail at few paths


@pytest.mark.slow
def test_quantile_errors_match_the_spread_over_seeds(tmp_path):
    # The truth: the sd of each headline number over 30 independent seeds; the error each run reports
    # should match it on average (measured at 150 paths: median 0.0364 true against 0.0385 reported, bootstrap 0.0438).
    text = "\n".join(line for line in JUJUBE.read_text().splitlines() if not line.strip().startswith(("stress",
                                                                                                       "sensitivity")))
    path = tmp_path / "plain.opl"
    path.write_text(text, encoding="utf-8")
    values, errors = [], []
    for seed in range(30):
        m = simulate_file(path, paths=150, seed=seed, overrides=["experiment.horizon=3", "size=5",
                                                                 "experiment.sizes=[5]"]).base
        values.append(m.target_values())
        errors.append(m.standard_errors)
    for key in ("mean_monthly_return", "median_monthly_return", "loss_probability", "cvar_95"):
        truth = np.std([v[key] for v in values], ddof=1)
        assert np.mean([e[key] for e in errors]) == pytest.approx(truth, rel=0.3), key
    # The drawdown p95 at 150 paths: the difference quotient spans p91–p99 of a right-skewed tail, so the
    # error is conservative (measured 0.24 against a spread of 0.149); it must not understate.
    truth = np.std([v["max_drawdown_p95"] for v in values], ddof=1)
    assert 0.9 * truth < np.mean([e["max_drawdown_p95"] for e in errors]) < 2.0 * truth


@pytest.mark.parametrize("item,message", [
    ("experiment.horizn=3", "did you mean `experiment.horizon`"),
    ("hedge.keep=abc", "not a valid kept exposure"),
    ("experiment.paths=0", "must lie between 1"),
    ("hedge.along=sideways", "direction | long | short"),
    ("model.heston.kappa=2", "not in the model"),
    ("experiment.sizes=[0.5]", "whole lots"),
    ("nonsense", "expected key=value"),
])
def test_bad_overrides_are_usage_errors(item, message):
    result = CliRunner().invoke(main, ["simulate", str(JUJUBE), "--paths", "10", "--set", item])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def _variant(tmp_path, old: str, new: str) -> Path:
    text = JUJUBE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "variant.opl"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize("old,new,code,message", [
    ("model garch + jump + regime", "model garch(alpha=0.2, beta=0.85) + jump + regime", "E207", "not stationary"),
    ("model garch + jump + regime", "model garch(omega=1) + jump + regime", "E207", "no parameter `omega`"),
    ("exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]", "exit_triggers [ delta_band(2, 20d) ]", "E105",
     "not supported by the simulator yet"),
    ("exit_mode first_hit", "exit_mode machine_decide(score)", "E106", "unknown score function `score`"),
    ("exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]", "exit_triggers [ open_interest < 100 ]", "E105",
     "`open_interest` is not simulated"),
    ("exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]", "exit_triggers [ structure_destabilised(theta) ]",
     "E105", "measures one of delta, gamma, vega"),
    ("adjust_playbook [ roll_nearest_term(), hedge_gamma(target=0.10) ]", "adjust_playbook [ scale_qty(7, 2) ]",
     "E105", "names leg 7, but the strategy has 2 legs"),
    ("adjust_playbook [ roll_nearest_term(), hedge_gamma(target=0.10) ]",
     "adjust_playbook [ add_leg(long Option(Put, support-300, 10d)) ]", "E105", "expiring with the month (30d)"),
    ("adjust_playbook [ roll_nearest_term(), hedge_gamma(target=0.10) ]", "adjust_playbook [ roll_tenor(1, -5d) ]",
     "E105", "moves expiries out"),
    ("stress [ vol_up(+50%),", "stress [ vol_up,", "E103", "needs a value"),
    # The file's `sizes` get the bound `--set experiment.sizes` has (it used to check clean at 1e9).
    ("sizes [ 1, 2, 5, 10, 20 ]", "sizes [1, 1000000000]", "E207", "`sizes` must be at most 1e+06"),
])
def test_bad_file_settings_are_located_errors(tmp_path, old, new, code, message):
    path = _variant(tmp_path, old, new)
    with pytest.raises(SimulationInputError) as info:
        simulate_file(path, paths=10)
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.code == code and message in diagnostic.message
    result = CliRunner().invoke(main, ["simulate", str(path), "--paths", "10"])
    assert result.exit_code == 1
    assert f"error[{code}]" in result.output and f"{path.name}:" in result.output
    assert "Traceback" not in result.output


def test_file_errors_and_missing_file(tmp_path):
    path = _variant(tmp_path, "S = short Option(Put", "S = short Swap(Put")
    assert CliRunner().invoke(main, ["simulate", str(path)]).exit_code == 1
    assert CliRunner().invoke(main, ["simulate", str(tmp_path / "missing.opl")]).exit_code == 2


def test_stock_underlying_is_refused_with_a_location(tmp_path):
    path = tmp_path / "stock.opl"
    path.write_text("opl-lang 1.0\nprice 100\niv 0.2\nS = short Option(Call, 105, 30d)\n", encoding="utf-8")
    with pytest.raises(SimulationInputError, match="options on a future"):
        simulate_file(path, paths=10)


def test_settings_error_names_the_key():
    with pytest.raises(SettingsError) as info:
        simulate_file(JUJUBE, paths=10, overrides=["iv.floor=-1"])
    assert info.value.key == "iv.floor"


def test_every_vocabulary_scenario_runs(tmp_path):
    values = {"hit_rate": "0.8", "slippage": "x2", "fees_up": "x2", "jump_intensity": "2"}
    items = ", ".join(f"{name}({values.get(name, '+5%')})" for name in SCENARIOS)
    path = _variant(tmp_path, "sensitivity [ fees_up(x2), hit_rate(0.7) ]", f"sensitivity [ {items} ]")
    result = simulate_file(path, paths=40, overrides=["experiment.horizon=1", "experiment.sizes=[1]"])
    assert [s.name for s in result.scenarios if s.kind == "sensitivity"] == list(SCENARIOS)
    assert all(s.definition for s in result.scenarios)


def test_recommended_size_is_the_run_of_sizes_where_the_target_holds(tmp_path):
    path = _variant(tmp_path, "target median_monthly_return >= 1% and loss_probability <= 25% and "
                              "max_drawdown_p95 <= 10%", "target max_drawdown_p95 <= 2% and mean_monthly_return > 0%")
    result = simulate_file(path, paths=300, overrides=["experiment.horizon=3"])
    holds = [h for _, _, h in result.sizes]
    for _, metrics, h in result.sizes:
        values = metrics.target_values()
        assert h == (values["max_drawdown_p95"] <= 2 and values["mean_monthly_return"] > 0)
    assert holds[0] and not holds[-1]
    passing = [s for s, _, h in result.sizes if h]
    assert result.recommended_size == {"low": passing[0], "high": passing[-1]}
    assert result.recommended_reason is None
    # Scenarios are reported at the low end of the recommended size.
    assert {s.size for s in result.scenarios} == {passing[0]}


def test_scenarios_run_at_the_best_swept_size_when_nothing_is_recommended(tmp_path):
    path = _variant(tmp_path, "target median_monthly_return >= 1% and", "target median_monthly_return >= 50% and")
    result = simulate_file(path, paths=120, overrides=["experiment.horizon=1", "experiment.sizes=[1,5,10]"])
    assert result.recommended_size is None
    best = max(result.sizes, key=lambda r: (r[1].monthly_return["median"], -r[0]))[0]
    assert {s.size for s in result.scenarios} == {best}
    assert result.scenario_size == {"size": best, "reason": "no size is recommended: the swept size with the best "
                                                            "median monthly return"}
    assert f"scenarios at size {best:g}" in result.summary()
    # The plotted arrays are that size's too, since no `--set size=` names one; with one, they are the base's.
    assert result.plot_size["size"] == best
    index = [s for s, _, _ in result.sizes].index(best)
    assert np.percentile(result.drawdowns * 100, 95) == pytest.approx(result.sizes[index][1].max_drawdown["p95"])
    pinned = simulate_file(path, paths=120, overrides=["experiment.horizon=1", "experiment.sizes=[1,5,10]", "size=5"])
    assert pinned.plot_size == {"size": 5, "reason": "the base size"}


def test_a_size_the_capital_never_opens_cannot_hold_the_target_or_be_the_best(tmp_path):
    # Size 100000 needs far more opening margin than the 1,000,000 capital: every month is skipped,
    # its P&L is flat zero, and before the fix it "held" `loss_probability <= 25%` and was recommended.
    path = _variant(tmp_path, "target median_monthly_return >= 1% and loss_probability <= 25% and "
                              "max_drawdown_p95 <= 10%", "target loss_probability <= 25%")
    result = simulate_file(path, paths=40, overrides=["experiment.horizon=1", "experiment.sizes=[1,100000]"])
    rows = {s: (m, h) for s, m, h in result.sizes}
    assert rows[100000][0].exercise["skipped_share"] == 100.0 and rows[100000][1] is False
    assert result.recommended_size is None or result.recommended_size["high"] < 100000
    assert {s.size for s in result.scenarios} == {1}
    assert any("size 100000 never opens a position" in note for note in result.notes)


def test_every_playbook_action_and_guard_runs_from_a_file(tmp_path):
    playbook = ("adjust_playbook [ roll_nearest_term(), roll(1, 60d), roll_tenor(2, 30d), shift_strike(1, -2%), "
                "scale_qty(2, 2), hedge_gamma(target=0.05), delta_neutralise(keep=10%), hedge(delta), "
                "add_leg(long Option(Put, support-300, 30d)), replace_leg(2, short Option(Call, resistance+300, 30d)), "
                "remove_leg(1), close(2), close() ]")
    text = JUJUBE.read_text(encoding="utf-8")
    text = text.replace("adjust_playbook [ roll_nearest_term(), hedge_gamma(target=0.10) ]", playbook)
    text = text.replace("adjust_when price_retrace(>-3%) or vega_crush(>20%)",
                        "adjust_when price_retrace(>1%) or price_retrace(<-1%) or structure_destabilised(gamma)")
    text = text.replace("exit_mode first_hit", "exit_mode machine_decide(profit_capture)\n"
                        "avoid_leg_if strike_offset > 12%\nwarn_if leg_pnl < -100%")
    path = tmp_path / "all.opl"
    path.write_text(text, encoding="utf-8")
    result = simulate_file(path, paths=200, overrides=["experiment.horizon=2", "experiment.sizes=[2]", "size=2",
                                                       "adjust.cooldown=0"])
    actions = result.base.adjustments["actions"]
    assert [a["action"].split("(")[0] for a in actions] == [
        "roll_nearest_term", "roll", "roll_tenor", "shift_strike", "scale_qty", "hedge_gamma", "delta_neutralise",
        "hedge", "add_leg", "replace_leg", "remove_leg", "close", "close"]
    assert actions[0]["done_per_month"] > 0 and result.base.adjustments["rounds_per_month"] > 0
    assert result.strategy["score_fn"] == "profit_capture"
    assert [g["rule"] for g in result.strategy["guards"]][2:] == ["strike_offset > 12%", "leg_pnl < -100%"]
    attribution = result.base.attribution["per_month"]
    assert attribution["adjustments"] < 0
    assert attribution["total"] == pytest.approx(sum(v for k, v in attribution.items() if k != "total"))


def test_legs_of_different_tenors_run_as_a_calendar(tmp_path):
    path = _variant(tmp_path, "S = short Option(Put, support-100, 30d)", "S = long Option(Put, support-100, 60d)")
    result = simulate_file(path, paths=100, overrides=["experiment.horizon=2", "experiment.sizes=[1]"])
    assert any("different tenors (30d, 60d)" in note for note in result.notes)
    assert result.run["tenor_days"] == 30
    # The 60-day put is bought each month and sold back at the guard with the 30-day call: 4 lots a month.
    assert result.base.trades["option_lots_per_month"] == pytest.approx(4.0, abs=0.2)


def test_margin_method_is_a_setting_recorded_in_the_json(jujube_json):
    # The jujube strangle is margined as the exchange's combination by default; per_leg posts both legs in full.
    assert jujube_json["run"]["margin_method"] == "combination"
    assert jujube_json["run"]["margin_combinations"] == ["short_straddle", "short_strangle", "vertical_spread"]
    per_leg = simulate_file(JUJUBE, paths=150, overrides=["experiment.horizon=2", "margin.method=per_leg"]).to_dict()
    assert per_leg["run"]["margin_method"] == "per_leg" and per_leg["run"]["margin_combinations"] == []
    combo = {s["size"]: s["metrics"]["margin"]["peak_utilisation"]["p50"] for s in jujube_json["sizes"]}
    alone = {s["size"]: s["metrics"]["margin"]["peak_utilisation"]["p50"] for s in per_leg["sizes"]}
    assert all(combo[size] < alone[size] for size in combo)
    with pytest.raises(SettingsError, match="margin.method"):
        simulate_file(JUJUBE, paths=10, overrides=["margin.method=pairs"])


def test_a_file_iv_overridden_by_the_models_vol_is_a_note(tmp_path):
    # The jujube file gives `iv 0.28`; a model writing `gbm(vol=0.40)` sets the volatility instead: a note says so.
    path = _variant(tmp_path, "model garch + jump + regime", "model gbm(vol=0.40)")
    notes = simulate_file(path, paths=20, overrides=["experiment.horizon=1", "experiment.sizes=[1]"]).notes
    (note,) = [n for n in notes if "`iv 0.28` is not used" in n]
    assert "40.0%, set by the file's model (`gbm(vol=...)`)" in note and "25.9%" in note
    notes = simulate_file(JUJUBE, paths=20, overrides=["experiment.horizon=1", "experiment.sizes=[1]",
                                                       "model.vol=0.3"]).notes
    assert any("`iv 0.28` is not used: the price model's volatility is 30.0%, set by `--set` (`model.vol`)" in n
               for n in notes)
    plain = simulate_file(JUJUBE, paths=20, overrides=["experiment.horizon=1", "experiment.sizes=[1]"]).notes
    assert not any("is not used" in n for n in plain)


@pytest.mark.parametrize("every, steps_per_day, steps, note", [
    ("1", "1", 1, None),
    ("0.25", "4", 1, None),
    ("2.5", "1", 3, "hedge every 2.5d is 2.5 steps at 1 step a day: rounded to every 3 steps (3 trading days)"),
    ("0.25", "1", 1, "rounded to every 1 step (1 trading day) — shorter than one step"),
    ("7", "1", 7, "hedge every 7d counts trading days (sessions): about 9.8 calendar days; a weekly hedge is "
                  "`every 5d`"),
])
def test_hedge_period_counts_trading_days_and_rounding_is_a_note(every, steps_per_day, steps, note):
    # One rule (grammar/README.md §9.1): `every Nd` counts sessions, rounded half up to whole steps, at least
    # one; rounding, and a period in whole weeks, are said in a note.
    result = simulate_file(JUJUBE, paths=10, overrides=["experiment.horizon=1", "experiment.sizes=[1]",
                                                        f"hedge.every={every}",
                                                        f"experiment.steps_per_day={steps_per_day}"])
    assert result.to_dict()["strategy"]["hedge"]["every"] == steps
    hedge_notes = [n for n in result.notes if n.startswith("hedge every")]
    assert hedge_notes == ([] if note is None else [n for n in hedge_notes if note in n]) and \
        (note is None or len(hedge_notes) == 1)


def test_compile_and_simulate_say_which_expiry_30d_means():
    # `opl compile` prices `30d` to the listed expiry nearest it (2026-02-11, 37 days from 2026-01-05); the
    # simulator's months give the options exactly 30 days. Both outputs say so.
    import opl
    from opl.compiler.strategy import compile_checked

    compiled = compile_checked(opl.check_file(JUJUBE)).strategy
    assert [leg.tenor_days for leg in compiled.legs] == [37, 37]
    (note,) = compiled.notes
    assert "`opl compile` prices `30d` to the listed expiry nearest it, 2026-02-11 (37 days" in note
    assert "`opl simulate` gives the options exactly 30 days" in note
    result = _run(str(JUJUBE), "--paths", "10", "--set", "experiment.horizon=1", "--set", "experiment.sizes=[1]")
    assert "2026-02-11 (37 days from `time`" in " ".join(result.output.split())
    notes = simulate_file(JUJUBE, paths=10, overrides=["experiment.horizon=1", "experiment.sizes=[1]"]).notes
    assert [n for n in notes if "2026-02-11" in n] == [note]


def test_default_capital_follows_the_margin_method(tmp_path):
    # Without `capital`, 3 x the opening margin: the combination's 5,964.87 CNY a strangle, or 10,204.87 leg by leg
    # (`opl compile`'s two figures for the jujube file).
    path = _variant(tmp_path, "capital 1000000\n", "")
    base = ["experiment.horizon=1", "experiment.sizes=[1]"]
    combined = simulate_file(path, paths=10, overrides=base).to_dict()["run"]["capital"]
    per_leg = simulate_file(path, paths=10, overrides=[*base, "margin.method=per_leg"]).to_dict()["run"]["capital"]
    assert combined == pytest.approx(3 * 5_964.87, abs=0.05) and per_leg == pytest.approx(3 * 10_204.87, abs=0.05)


def test_a_file_whose_legs_come_from_its_intent_is_refused_without_a_traceback():
    """rc6 golden sample 5 has no strategy line and no futures underlying: E306, not an AttributeError."""
    golden5 = ROOT / "tests" / "fixtures" / "spec" / "rc6_golden5_premium_offset.opl"
    result = _run(str(golden5), "--paths", "20", "--market", "price=100,iv=0.2")
    assert result.exit_code == 2
    assert "needs options on a future with an exchange rule pack" in result.output


def test_no_data_given_imports_no_data_importer():
    # `opl simulate` without --data used to import the raw-data importer and pandas (~0.5 s a run) for nothing.
    import subprocess
    import sys

    code = ("import sys; from opl.cli.rawdata import data_folder; assert data_folder(None) is None; "
            "print('pandas' in sys.modules, 'opl.data.importer' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split() == ["False", "False"]


def test_a_command_leaves_its_heap_to_the_exit_without_collecting_it():
    # The shutdown's full collections over a simulate's heap (~0.4 s CPU at 50,000 paths) are skipped: the
    # command freezes the heap at the exit. The handler below, registered first, runs last (LIFO).
    import subprocess
    import sys

    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "from opl.cli import main\n"
            "sys.argv = ['opl', 'check', sys.argv[1]]\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code, str(JUJUBE)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("frozen True")
