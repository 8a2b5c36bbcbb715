"""The critic: failing clauses, size-invariant structure, tail attribution, design defects, directions."""

from __future__ import annotations

from pathlib import Path

import opl
from opl.closedloop.candidate import Candidate
from opl.closedloop.critic import Diagnosis, diagnose
from opl.closedloop.evaluate import Evaluation
from opl.closedloop.objective import parse_target

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "loop"
SUPPORT_STRANGLE_HEAD = (FIXTURES / "support_strangle_head.opl").read_text()
FILE = SUPPORT_STRANGLE_HEAD + """\
experiment {
  model gbm
  signal direction hit_rate 0.9
  sizes [ 5, 10, 20 ]
  sensitivity [ fees_up(x2), hit_rate(0.7) ]
  target median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%
}
"""


def _metrics(median, loss, dd, cvar=2.0):
    return {"median_monthly_return": median, "mean_monthly_return": median, "loss_probability": loss,
            "max_drawdown_p95": dd, "max_drawdown_p99": dd * 1.4, "cvar_95": cvar, "cvar_99": cvar * 2,
            "margin_call_probability": 0.1, "forced_liquidation_probability": 0.0, "peak_margin_p95": 30.0}


def _evaluation(target, *, early=45.0, costs=-600.0, premium=1000.0, complete=True, counterfactuals=None,
                scenarios=()):
    sweep = []
    for size in (5.0, 10.0, 20.0):
        values = _metrics(0.04 * size, 45.0 + size / 10, 0.8 * size, 0.2 * size)
        sweep.append({"size": size, "values": values, "distance": target.distance(values),
                      "holds": target.holds(values)})
    base = {"target_metrics": sweep[1]["values"],
            "attribution": {"per_month": {"premium": premium, "hedge": 200.0, "assignment": -10.0, "funding": -2.0,
                                          "costs": costs, "total": premium + 200 - 12 + costs},
                            "percent_of_capital": {"premium": premium / 1e4, "hedge": 0.02, "assignment": -0.001,
                                                   "funding": -0.0002, "costs": costs / 1e4}},
            "trades": {"early_exit_share": early, "hedge_trades_per_month": 6.0},
            "margin": {"margin_call_probability": 0.1, "forced_liquidation_probability": 0.0,
                       "peak_utilisation": {"p95": 30.0}},
            "exercise": {"assignment_share": 2.0, "delivery_share": 1.0}}
    return Evaluation(ok=True, objective=sweep[1]["distance"], target_met=False, size=10.0, sweep=sweep, base=base,
                      scenarios=list(scenarios), counterfactuals=counterfactuals or {}, complete=complete)


def _target():
    return parse_target(opl.check(FILE).document, FILE)


def test_failures_say_which_metric_failed_and_by_how_much():
    target = _target()
    d = diagnose(_evaluation(target), target, Candidate(FILE))
    by_metric = {f["metric"]: f for f in d.failures}
    assert set(by_metric) == {"median_monthly_return", "loss_probability"}
    assert by_metric["median_monthly_return"]["value"] == 0.4
    assert by_metric["median_monthly_return"]["shortfall"] == 0.6
    assert by_metric["loss_probability"]["shortfall"] == 21.0


def test_structure_reports_what_size_cannot_fix():
    target = _target()
    d = diagnose(_evaluation(target), target, Candidate(FILE))
    assert d.structure["loss_probability_range"] == [45.5, 47.0]
    assert d.structure["drawdown_per_return"] == 20.0 and d.structure["allowed_drawdown_per_return"] == 10.0


def test_gbm_is_a_design_defect_with_the_seeds_fix():
    target = _target()
    d = diagnose(_evaluation(target), target, Candidate(FILE))
    (defect,) = [x for x in d.defects if x["code"] == "no_clustering"]
    assert "GBM understates the tails" in defect["message"]
    assert defect["fix"] == {"setting": "model", "value": "garch + jump"}


def test_a_hit_rate_the_data_contradict_is_replaced_by_the_estimate_and_tested_at_its_lower_bound():
    target = _target()
    facts = {"assumptions": {"hit_rate": {"estimate": 0.7639, "wilson": [0.654, 0.847], "n": 72}}}
    d = diagnose(_evaluation(target), target, Candidate(FILE), facts=facts)
    codes = {x["code"]: x for x in d.defects}
    assert codes["hit_rate_unsupported"]["fix"] == {"setting": "signal", "value": "direction hit_rate 0.76"}
    assert "contradicted by" in codes["hit_rate_unsupported"]["message"]
    assert codes["hit_rate_sensitivity"]["fix"] == {"setting": "sensitivity",
                                                    "value": "[ fees_up(x2), hit_rate(0.65) ]"}


def test_calibrated_settings_become_design_fixes_and_keep_the_regime():
    target = _target()
    facts = {"calibration": {"experiment_lines": ["model garch(alpha=0.07, beta=0.9) + jump(intensity=1)",
                                                  "calibration historical"]}}
    text = FILE.replace("model gbm", "model gbm + regime")
    d = diagnose(_evaluation(target), target, Candidate(text), facts=facts)
    fixes = {x["fix"]["setting"]: x["fix"]["value"] for x in d.defects if x.get("fix")}
    assert fixes["model"] == "garch(alpha=0.07, beta=0.9) + jump(intensity=1) + regime"
    assert fixes["calibration"] == "historical"
    assert "no_clustering" not in {x["code"] for x in d.defects}  # the data's fit decides the components


def test_directions_follow_the_numbers():
    target = _target()
    d = diagnose(_evaluation(target, early=45.0), target, Candidate(FILE))
    moves = [x["move"] for x in d.directions]
    assert moves[:2] == ["loosen_exit", "widen_strikes"]
    assert "raise_hedge_band" in moves  # costs 60% of the options' P&L
    calm = [x["move"] for x in diagnose(_evaluation(target, early=5.0, costs=-100.0), target,
                                         Candidate(FILE)).directions]
    assert "loosen_exit" not in calm and "raise_hedge_band" not in calm and calm[0] == "widen_strikes"


def test_tail_attribution_reads_the_counterfactuals():
    target = _target()
    cf = {"no_jumps": {"model": "garch", "values": _metrics(0.4, 45, 6, cvar=1.5)},
          "no_clustering": {"model": "gbm + jump", "values": _metrics(0.4, 45, 5, cvar=1.0)}}
    d = diagnose(_evaluation(target, counterfactuals=cf), target, Candidate(FILE))
    assert d.tail["jumps"]["share_of_cvar95"] == 0.25  # CVaR95 2.0 → 1.5
    assert d.tail["volatility_clustering"]["share_of_cvar95"] == 0.5
    assert d.tail["early_exits"]["share"] == 45.0
    quick = diagnose(_evaluation(target, complete=False), target, Candidate(FILE))
    assert quick.tail["jumps"]["measured"] is False


def test_failing_scenarios_are_listed_with_their_clauses_and_the_diagnosis_round_trips():
    target = _target()
    scenario = {"scenario": "gap(-8%)", "kind": "stress", "holds": False, "distance": 3.0,
                "values": _metrics(-0.5, 90, 12)}
    d = diagnose(_evaluation(target, scenarios=[scenario]), target, Candidate(FILE))
    (s,) = d.scenarios
    assert s["scenario"] == "gap(-8%)" and {f["metric"] for f in s["failures"]} == {
        "median_monthly_return", "loss_probability", "max_drawdown_p95"}
    again = Diagnosis(**d.to_dict())
    assert again.summary() == d.summary() and "`gap(-8%)` fails" in d.summary()


def test_an_evaluation_error_is_carried_as_is():
    target = _target()
    d = diagnose(Evaluation(ok=False, error="error[E105]: ..."), target, Candidate(FILE))
    assert not d.ok and d.error == "error[E105]: ..." and d.directions == []


def test_a_model_on_default_parameters_is_a_design_defect():
    target = _target()
    evaluation = _evaluation(target)
    plain = diagnose(evaluation, target, Candidate(FILE))
    assert "uncalibrated" not in [x["code"] for x in plain.defects]
    evaluation.notes = ["`calibration historical` without --data uses the documented defaults, a rough fit to CJ"]
    (defect,) = [x for x in diagnose(evaluation, target, Candidate(FILE)).defects if x["code"] == "uncalibrated"]
    assert "--data" in defect["message"]


def test_an_implied_candidate_is_not_rewritten_to_the_historical_fit():
    target = _target()
    facts = {"calibration": {"experiment_lines": ["model garch(alpha=0.07, beta=0.9)", "calibration historical"]}}
    text = FILE.replace("  model gbm\n", "  model gbm\n  calibration implied\n")
    d = diagnose(_evaluation(target), target, Candidate(text), facts=facts)
    assert "calibrated" not in {x["code"] for x in d.defects}


def _jump_facts(count, *, model="garch(alpha=0.07, beta=0.9)"):
    """A calibration that found no jumps beyond its Student-t tails (count days beyond 4.5 sd in 1,500)."""
    return {"calibration": {"experiment_lines": [f"model {model}", "calibration historical"],
                            "result": {"jumps": {"jumps": {"count": count, "n": 1500, "threshold": 4.5,
                                                           "expected_false_detections": 5.0, "alpha": 0.05}},
                                       "block": {"vol": 0.22}}}}


def test_the_calibrated_model_keeps_a_declared_jump_the_data_do_not_reject():
    # The fit's t tails absorbed the extreme days, so its model line has no jump; 9 days beyond 4.5 sd is
    # what the declared jumps predict (about 6.7), so the jumps stay (they were dropped before).
    target = _target()
    text = FILE.replace("  model gbm\n", "  model garch + jump\n")
    d = diagnose(_evaluation(target), target, Candidate(text), facts=_jump_facts(9))
    fixes = {x["fix"]["setting"]: x["fix"]["value"] for x in d.defects if x.get("fix")}
    assert fixes["model"] == "garch(alpha=0.07, beta=0.9) + jump"
    (message,) = [x["message"] for x in d.defects if x["code"] == "calibrated" and x["fix"]["setting"] == "model"]
    assert "the declared `jump` stays: declared jumps (2 a year of N(+0.0%, 4.0%)) predict 6.7 days" in message


def test_declared_jumps_the_data_reject_leave_the_calibrated_model():
    target = _target()
    text = FILE.replace("  model gbm\n", "  model garch + jump(intensity=40, std=8%)\n")
    facts = _jump_facts(3)
    from opl.closedloop.critic import declared_jumps_test

    test = declared_jumps_test(Candidate(text), facts)
    assert test["rejected"] and test["expected"] > 100 and "one-sided Poisson" in test["text"]
    d = diagnose(_evaluation(target), target, Candidate(text), facts=facts)
    fixes = {x["fix"]["setting"]: x["fix"]["value"] for x in d.defects if x.get("fix")}
    assert fixes["model"] == "garch(alpha=0.07, beta=0.9)"


def test_a_run_with_data_is_not_told_to_give_data():
    target = _target()
    evaluation = _evaluation(target)
    evaluation.notes = ["`calibration historical` without --data uses the documented defaults, a rough fit to CJ"]
    defects = diagnose(evaluation, target, Candidate(FILE), facts=_jump_facts(9)).defects
    assert "uncalibrated" not in [x["code"] for x in defects]
