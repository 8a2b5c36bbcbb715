"""The loop's objective and evaluator: distance to the target, the evaluated size, fixed seeds, hold-out."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

import opl
from opl.closedloop.evaluate import HOLDOUT_SEED_OFFSET, EvalSettings, Evaluator, _pick_size
from opl.closedloop.objective import DEFAULT_TARGET, Clause, Target, TargetError, parse_target

STRANGLE_HEAD = (Path(__file__).resolve().parents[1] / "fixtures" / "loop" / "strangle_head.opl").read_text()
SMALL = STRANGLE_HEAD + """\
experiment {
  model garch + jump
  seed 7
  horizon 2
  sizes [ 5, 10, 20 ]
  stress [ gap(-8%) ]
  sensitivity [ fees_up(x2) ]
  target median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%
}
"""


def _target(text: str = SMALL) -> Target:
    return parse_target(opl.check(text).document, text)


# --------------------------------------------------------------------------- objective


def test_clause_shortfalls_are_relative_to_the_threshold():
    ge = Clause(metric="median_monthly_return", op=">=", threshold=1.0, text="")
    le = Clause(metric="loss_probability", op="<=", threshold=25.0, text="")
    assert ge.shortfall(0.4) == pytest.approx(0.6)
    assert ge.shortfall(1.2) == 0.0
    assert le.shortfall(30.0) == pytest.approx(0.2)
    assert le.shortfall(25.0) == 0.0
    assert Clause(metric="cvar_95", op="<", threshold=0.0, text="").shortfall(-0.5) == pytest.approx(0.0)
    assert Clause(metric="cvar_95", op="<", threshold=0.0, text="").shortfall(0.0) > 0  # strict: equality fails
    assert ge.shortfall(None) == 1.0 and ge.shortfall(math.nan) == 1.0


def test_distance_counts_size_scaled_clauses_by_their_largest_shortfall_and_is_zero_when_the_target_holds():
    target = _target()
    assert [c.metric for c in target.clauses] == ["median_monthly_return", "loss_probability", "max_drawdown_p95"]
    values = {"median_monthly_return": 0.5, "loss_probability": 30.0, "max_drawdown_p95": 12.0}
    # return and drawdown scale with size: 2 x max(0.5, 0.2); the loss probability adds its 0.2
    assert target.distance(values) == pytest.approx(2 * 0.5 + 0.2)
    one_scaled = Target(text="", clauses=target.clauses[:2])
    assert one_scaled.distance(values) == pytest.approx(0.5 + 0.2)  # the plain sum
    assert not target.holds(values)
    met = {"median_monthly_return": 1.5, "loss_probability": 20.0, "max_drawdown_p95": 8.0}
    assert target.distance(met) == 0.0 and target.holds(met)
    assert [f["metric"] for f in target.failures(values)] == [c.metric for c in target.clauses]


def test_a_file_without_target_gets_the_seeds_default():
    text = SMALL.replace("  target median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%\n",
                         "")
    target = _target(text)
    assert target.source == "default" and target.text == DEFAULT_TARGET and len(target.clauses) == 3


def test_a_target_with_or_is_refused():
    text = SMALL.replace("loss_probability <= 25% and max_drawdown_p95", "loss_probability <= 25% or max_drawdown_p95")
    with pytest.raises(TargetError, match="joined by `and`"):
        _target(text)


# --------------------------------------------------------------------------- the evaluated size


def _rows(target, table):
    rows = []
    for size, median, loss, dd in table:
        values = {"median_monthly_return": median, "loss_probability": loss, "max_drawdown_p95": dd}
        rows.append({"size": size, "values": values, "distance": target.distance(values), "holds": target.holds(values)})
    return rows


def test_the_evaluated_size_balances_return_and_drawdown_not_the_smallest_corner():
    target = _target()
    # Drawdown grows 20x faster than return per lot (more than the target's 10x): the sum of shortfalls is
    # smallest at size 1, but the balanced size is where the return and drawdown shortfalls cross.
    table = [(s, 0.04 * s, 40.0 + (s % 3) * 0.1, 0.8 * s) for s in (1, 5, 10, 15, 20, 25)]
    rows = _rows(target, table)
    size, recommended = _pick_size(rows, target)
    assert recommended is None
    assert size == 15  # shortfalls at 15: return 0.4, drawdown 0.2 (at 10: 0.6/0; at 20: 0.2/0.6)
    # More sizes can only lower the smallest distance: the objective is monotone in the sweep.
    finer = _rows(target, table + [(16.7, 0.668, 40.0, 13.36)])
    best = min(r["distance"] for r in rows)
    assert min(r["distance"] for r in finer) <= best and _pick_size(finer, target)[0] == 16.7


def test_when_the_target_holds_the_evaluated_size_is_the_low_end_of_the_longest_run():
    target = _target()
    table = [(1, 0.2, 20, 1), (2, 1.1, 20, 2), (3, 0.9, 20, 3), (4, 1.2, 20, 4), (5, 1.5, 20, 5), (6, 1.9, 20, 11)]
    size, recommended = _pick_size(_rows(target, table), target)
    assert (size, recommended) == (4, {"low": 4, "high": 5})


# --------------------------------------------------------------------------- the evaluator


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(_target(), EvalSettings(paths=80, seed=7, holdout_paths=120))


@pytest.fixture(scope="module")
def quick(evaluator):
    return evaluator.evaluate(SMALL, complete=False)


def test_every_evaluation_uses_the_runs_seed_and_paths_and_reproduces(evaluator, quick):
    again = evaluator.evaluate(SMALL, complete=False)
    assert quick.ok and quick.run["seed"] == 7 and quick.run["paths"] == 80
    assert again.objective == quick.objective and again.values == quick.values
    # The candidate's own experiment seed does not matter: the run's seed wins.
    other = evaluator.evaluate(SMALL.replace("seed 7", "seed 99"), complete=False)
    assert other.values == quick.values


def test_a_size_between_the_swept_ones_is_picked_by_interpolation_and_measured(evaluator):
    from opl.closedloop.evaluate import _interpolated_size

    target = evaluator.target
    table = [(s, 0.04 * s, 40.0, 0.8 * s) for s in (1, 5, 10, 20)]
    # Return shortfall 1 - 0.04s meets drawdown excess 0.08s - 1 at s = 16.7; 16 and 17 tie (0.36), 16 wins.
    assert _interpolated_size(_rows(target, table), target) == 16
    # Without `capital` in the file every pass is measured against the sweep's capital.
    text = SMALL.replace("capital 1000000\n", "").replace("sizes [ 5, 10, 20 ]", "sizes [ 1, 8 ]")
    evaluation = evaluator.evaluate(text, complete=False)
    measured = [r for r in evaluation.sweep if r.get("interpolated")]
    if measured:
        assert evaluation.size == measured[0]["size"] and evaluation.size not in (1, 8)
    assert {s["size"] for s in evaluation.scenarios} == {evaluation.size}
    assert evaluation.run["capital"] > 0


def test_objective_adds_the_worst_sensitivity_to_the_base_distance(evaluator, quick):
    (sens,) = [s for s in quick.scenarios if s["kind"] == "sensitivity"]
    base = next(r for r in quick.sweep if r["size"] == quick.size)
    assert quick.objective == pytest.approx(base["distance"] + sens["distance"])
    assert [r["size"] for r in quick.sweep] == [5, 10, 20]
    assert not quick.complete and quick.counterfactuals == {}
    assert all(s["kind"] != "stress" for s in quick.scenarios)


def test_complete_adds_stress_and_counterfactuals_without_changing_the_objective(evaluator):
    evaluation = evaluator.evaluate(SMALL, complete=False)
    objective = evaluation.objective
    evaluator.complete(evaluation, SMALL)
    assert evaluation.complete and evaluation.objective == objective
    assert [s["kind"] for s in evaluation.scenarios] == ["stress", "sensitivity"]
    assert all(s["definition"] for s in evaluation.scenarios)  # what each scenario does, for the report
    from opl.closedloop.report import _scenario_table

    table = "\n".join(_scenario_table(evaluation.to_dict(), evaluator.target))
    assert all(f"- `{s['scenario']}`: {s['definition']}" in table for s in evaluation.scenarios)
    assert set(evaluation.counterfactuals) == {"no_jumps", "no_clustering"}
    assert evaluation.counterfactuals["no_clustering"]["model"] == "gbm + jump"
    assert evaluation.counterfactuals["no_jumps"]["model"] == "garch"


def test_holdout_is_measured_on_fresh_seeds_with_more_paths(evaluator, quick):
    held = evaluator.holdout(SMALL, sizes=(5.0, 10.0, 20.0, 30.0))
    assert held.run["seed"] == 7 + HOLDOUT_SEED_OFFSET and held.run["paths"] == 120
    assert [r["size"] for r in held.sweep] == [5, 10, 20, 30]
    assert held.values != quick.values
    assert held.simulation is not None and held.complete


def test_a_candidate_the_simulator_cannot_run_is_a_located_error_not_an_exception(evaluator):
    bad = SMALL.replace("underlying Future(2026-05-15)\nexchange CZCE\nsymbol CJ605\n", "underlying Stock\n")
    assert opl.check(bad).ok  # a valid file, but the simulator needs options on a future with a rule pack
    evaluation = evaluator.evaluate(bad, display="runs/x/iter_3/candidate.opl")
    assert not evaluation.ok and math.isinf(evaluation.objective)
    assert "--> runs/x/iter_3/candidate.opl:2:" in evaluation.error and "cannot simulate" in evaluation.error
    assert evaluation.to_dict()["objective"] is None


def test_evaluation_round_trips_through_its_dict(quick):
    from opl.closedloop.evaluate import Evaluation

    again = Evaluation.from_dict(quick.to_dict())
    assert again.objective == quick.objective and again.size == quick.size and again.values == quick.values
    assert again.complete is False


def test_implied_candidates_are_calibrated_by_the_simulator_on_the_runs_data(tmp_path):
    from opl.data.synth import synthesize

    synthesize(seed=3, years=2).write(tmp_path)
    implied = SMALL.replace("  model garch + jump\n", "  model garch + jump\n  calibration implied\n")
    with_data = Evaluator(_target(), EvalSettings(paths=40, seed=7, holdout_paths=40), data=tmp_path)
    without = Evaluator(_target(), EvalSettings(paths=40, seed=7, holdout_paths=40))
    calibrated = with_data.evaluate(implied, complete=False)
    plain = without.evaluate(implied, complete=False)
    assert calibrated.ok and plain.ok
    assert calibrated.model["calibration"]["method"] == "implied"
    assert calibrated.model != plain.model
    # A historical candidate is not re-fitted per evaluation: its fit is written into the file by the critic.
    historical = with_data.evaluate(SMALL, complete=False)
    assert historical.model == without.evaluate(SMALL, complete=False).model


def test_a_run_with_data_never_tells_the_reader_to_give_data(tmp_path):
    text = SMALL.replace("  model garch + jump\n", "  model garch + jump\n  calibration historical\n") \
        .replace("  stress [ gap(-8%) ]\n", "").replace("  sensitivity [ fees_up(x2) ]\n", "")
    settings = EvalSettings(paths=40, seed=3, holdout_paths=40, counterfactuals=False)
    without = Evaluator(_target(text), settings).holdout(text, sizes=(5.0,))
    assert any("pass --data" in n for n in without.notes)
    with_data = Evaluator(_target(text), settings, data=tmp_path).holdout(text, sizes=(5.0,))
    assert with_data.ok and not any("--data" in n for n in with_data.notes)
    assert not any("--data" in n for n in with_data.simulation.notes)
    assert any("fitted the price model to the run's data" in n for n in with_data.notes)


def test_an_evaluation_replays_the_base_case_once_and_reports_what_a_single_size_run_reports(monkeypatch, tmp_path):
    from opl.runtime.engine.replay import replay_many
    from opl.simulation.run import simulate_file

    calls = []

    def counting(jobs, progress=None, **beside):
        calls.extend(len(v) for _, _, v in jobs)
        return replay_many(jobs, progress=progress, **beside)

    monkeypatch.setattr("opl.runtime.engine.replay.replay_many", counting)
    evaluator = Evaluator(_target(), EvalSettings(paths=60, seed=7, holdout_paths=60))
    quick = evaluator.evaluate(SMALL, complete=False)
    # The sweep's three sizes, then fees_up as a variant on the same paths; the base case at the evaluated size
    # is the sweep's own (the same seed and paths: it is not replayed again).
    assert calls == [3, 1] and quick.size in (5, 10, 20)
    calls.clear()
    evaluator.complete(quick, SMALL)
    assert calls == [1, 1, 1]  # gap, then the two counterfactuals: no base case again
    calls.clear()
    held = evaluator.holdout(SMALL, sizes=(5.0, 10.0, 20.0))
    assert calls[0] == 3 and len(calls) == 3 + 2  # sweep, fees_up, gap, two counterfactuals
    # The hold-out's report is the single-size run at the evaluated size on the same seed and paths.
    path = tmp_path / "small.opl"
    path.write_text(SMALL, encoding="utf-8")
    alone = simulate_file(path, paths=60, seed=held.run["seed"],
                          overrides=[f"experiment.sizes=[{held.size:g}]", f"size={held.size:g}", "capital=1000000"])
    expected, got = alone.to_dict(), held.simulation.to_dict()
    expected.pop("file"), got.pop("file")
    assert got == expected


def test_the_documented_path_counts_are_the_defaults_everywhere():
    from click.testing import CliRunner

    from opl.cli import main
    from opl.closedloop.evaluate import DEFAULT_HOLDOUT_PATHS, DEFAULT_PATHS
    from opl.closedloop.run import LoopSettings

    # Issue 13: each candidate on at least 10,000 paths, the verdict on 50,000 fresh ones.
    assert DEFAULT_PATHS >= 10_000 and DEFAULT_HOLDOUT_PATHS >= 50_000
    assert (EvalSettings().paths, EvalSettings().holdout_paths) == (DEFAULT_PATHS, DEFAULT_HOLDOUT_PATHS)
    assert (LoopSettings().paths, LoopSettings().holdout_paths) == (DEFAULT_PATHS, DEFAULT_HOLDOUT_PATHS)
    shown = CliRunner().invoke(main, ["loop", "--help"]).output
    assert f"default: {DEFAULT_PATHS}" in shown and f"default: {DEFAULT_HOLDOUT_PATHS}" in shown


def test_an_evaluation_simulates_the_checked_text_and_writes_no_file(monkeypatch):
    """The evaluator prepares and simulates the candidate's checked text (`opl.simulation.run.prepare` / `simulate`):
    no temporary .opl file is written, re-read or re-checked."""
    import tempfile

    import opl.simulation.run as simulate_module

    def refuse(*args, **kwargs):
        raise AssertionError("the evaluator wrote or re-read a file")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", refuse)
    monkeypatch.setattr(simulate_module, "simulate_file", refuse)
    checked = []
    real_prepare, real_simulate = simulate_module.prepare, simulate_module.simulate

    def prepare(result, settings=None):
        checked.append(result.report.path)
        return real_prepare(result, settings)

    def simulate(result, settings=None):
        checked.append(result.report.path)
        return real_simulate(result, settings)

    monkeypatch.setattr(simulate_module, "prepare", prepare)
    monkeypatch.setattr(simulate_module, "simulate", simulate)
    evaluator = Evaluator(_target(), EvalSettings(paths=40, seed=7))
    evaluation = evaluator.evaluate(SMALL, display="runs/x/iter_2/candidate.opl", complete=True)
    assert evaluation.ok and evaluation.counterfactuals
    assert len(checked) >= 3 and set(checked) == {"runs/x/iter_2/candidate.opl"}


def test_an_evaluation_is_the_same_whatever_the_number_of_worker_processes():
    # The scenarios and the counterfactuals are replayed side by side by forked workers (sim.workers=2) or one
    # after the other in this process (sim.workers=1): the same evaluation, number for number.
    def evaluated(workers: int) -> dict:
        evaluator = Evaluator(_target(), EvalSettings(paths=50, seed=7, holdout_paths=50,
                                                      overrides=(f"sim.workers={workers}",)))
        quick = evaluator.evaluate(SMALL, complete=False)
        complete = evaluator.complete(quick, SMALL).to_dict()
        held = evaluator.holdout(SMALL, sizes=(5.0, 10.0)).to_dict()
        for out in (complete, held):
            out.pop("seconds")
        return {"complete": complete, "holdout": held}

    alone, pooled = evaluated(1), evaluated(2)
    assert alone["complete"]["counterfactuals"] and alone["holdout"]["scenarios"]
    assert alone == pooled


def test_candidates_share_the_runs_months_and_marks_and_get_the_numbers_of_a_fresh_evaluation():
    # Candidates of a run use one seed and paths: a later candidate reads the months (and, with the same legs,
    # their marks) the earlier ones made, from the evaluator's store, and gets the numbers it gets alone.
    import pickle

    exits = SMALL.replace("pnl_percent(<-25%)", "pnl_percent(<-40%)")
    strikes = SMALL.replace("ATM-5%", "ATM-7%")
    settings = EvalSettings(paths=50, seed=7, holdout_paths=50, overrides=("sim.workers=1",))
    shared = Evaluator(_target(), settings)
    first = shared.evaluate(SMALL, complete=True)
    assert first.ok and len(shared.months) > 0
    for text in (exits, strikes):
        hits = shared.months.hits
        again = shared.evaluate(text, complete=True).to_dict()
        assert shared.months.hits > hits  # read from the store, not made again
        alone = Evaluator(_target(), settings).evaluate(text, complete=True).to_dict()
        again.pop("seconds"), alone.pop("seconds")
        assert again == alone
    assert len(pickle.loads(pickle.dumps(shared)).months) == 0  # the store stays in this process


def test_forked_scenario_replays_read_months_made_once_and_so_do_the_next_candidates():
    # Forked workers keep nothing they make: the months of the market scenarios and the counterfactuals (which
    # depend on the model and the seed only) are made once in the parent, before the workers fork, and the next
    # candidate reads them too — and gets the numbers of a fresh evaluation in one process.
    exits = SMALL.replace("pnl_percent(<-25%)", "pnl_percent(<-40%)")
    pooled = Evaluator(_target(), EvalSettings(paths=40, seed=7, holdout_paths=40, overrides=("sim.workers=2",)))
    pooled.evaluate(SMALL, complete=True)
    models = {key[1] for key in pooled.months._entries if key[0] == "months"}
    assert len(models) == 4  # the base model's, gap(-8%)'s, no_jumps' and no_clustering's
    again = pooled.evaluate(exits, complete=True).to_dict()
    assert {key[1] for key in pooled.months._entries if key[0] == "months"} == models
    alone = Evaluator(_target(), EvalSettings(paths=40, seed=7, holdout_paths=40, overrides=("sim.workers=1",)))
    fresh = alone.evaluate(exits, complete=True).to_dict()
    again.pop("seconds"), fresh.pop("seconds")
    assert again == fresh


def test_a_complete_evaluations_scenario_months_and_marks_are_made_while_its_sweep_is_replayed(monkeypatch):
    # The months of the stress scenarios and the counterfactuals, and their marks, depend on the model, the seed and
    # the legs, not on the size the sweep picks: they are made while the sweep's forked workers replay
    # (`replay.made_ahead`, with the sweep's pool running), so the scenario pass finds every one in the store and
    # makes none before its workers fork — and the evaluation is the one made in one process.
    import opl.runtime.engine.passes as passes_module
    import opl.runtime.engine.replay as replay_module
    from opl.runtime.engine import monthstore

    calls, real_ahead = [], replay_module.made_ahead
    real = {name: getattr(passes_module, name) for name in ("_months_made_here", "_marks_made_here")}

    def ahead(jobs):
        calls.append(("ahead", passes_module._JOBS is not None))  # set while a pool's workers replay
        return real_ahead(jobs)

    def counted(name):
        def made(jobs, plans):
            before = monthstore.current().bytes
            real[name](jobs, plans)
            calls.append((name, monthstore.current().bytes - before))
        return made

    monkeypatch.setattr(replay_module, "made_ahead", ahead)
    for name in real:
        monkeypatch.setattr(passes_module, name, counted(name))
    settings = EvalSettings(paths=40, seed=7, holdout_paths=40, overrides=("sim.workers=2",))
    pooled = Evaluator(_target(), settings).evaluate(SMALL, complete=True).to_dict()
    assert calls[0] == ("ahead", True)
    assert calls[1][0] == "_months_made_here" and calls[1][1] > 0  # gap(-8%)'s, no_jumps' and no_clustering's
    assert calls[2][0] == "_marks_made_here" and calls[2][1] > 0
    assert [n for _, n in calls[3:]] == [0, 0]  # the scenario pass: nothing left to make
    monkeypatch.undo()
    alone = Evaluator(_target(), replace(settings, overrides=("sim.workers=1",))).evaluate(SMALL, complete=True)
    alone = alone.to_dict()
    pooled.pop("seconds"), alone.pop("seconds")
    assert pooled == alone


def test_the_sweeps_rows_get_the_standard_errors_added_while_the_scenarios_replay():
    # The size pick reads no standard error: the sweep's are added while the scenario pass's workers replay, and
    # they are those the sweep computes with its metrics.
    import json

    from opl.closedloop.candidate import Candidate

    evaluator = Evaluator(_target(), EvalSettings(paths=40, seed=7, overrides=("sim.workers=2",)))
    evaluation = evaluator.evaluate(SMALL, complete=False)
    prepared = evaluator._prepare(Candidate(SMALL).without("stress", "experiment"), "candidate.opl", paths=40,
                                  seed=7, extra=["experiment.sizes=[5,10,20]", "size=5"])
    whole = prepared.sweep()
    swept = [r["errors"] for r in evaluation.sweep if not r.get("interpolated")]
    assert all(swept) and json.dumps(swept) == json.dumps([m.standard_errors for _, m, _ in whole.rows])
    best = next(m for size, m, _ in whole.rows if size == evaluation.size)  # a swept size: the sweep's own replay
    assert json.dumps(evaluation.base["standard_errors"]) == json.dumps(best.standard_errors)


def test_the_month_store_keeps_at_most_its_limit_and_its_arrays_cannot_be_changed():
    import numpy as np

    from opl.runtime.engine.monthstore import MonthStore

    store = MonthStore(limit=3 * 800)
    arrays = [np.zeros(100) for _ in range(5)]  # 800 bytes each
    for n, a in enumerate(arrays):
        store.put(n, a, [a])
    assert len(store) == 3 and store.bytes <= store.limit
    assert store.get(0) is None and store.get(4) is arrays[4]  # the least recently used went first
    with pytest.raises(ValueError):
        arrays[4][0] = 1.0
    reader = store.reader()
    reader.put(9, np.zeros(1), [])
    assert reader.get(4) is arrays[4] and reader.get(9) is None  # a forked worker's reader adds nothing


def test_the_month_store_counts_an_array_that_several_entries_hold_once():
    # A month's marks hold its paths' prices, which the months' entry holds too: counted twice, two sets of
    # marks and their months no longer fitted and the best candidate's marks were dropped and made again.
    import numpy as np

    from opl.runtime.engine.monthstore import MonthStore

    store = MonthStore(limit=3 * 800)
    a, shared, c, d = (np.zeros(100) for _ in range(4))  # 800 bytes each
    store.put("months", (a, shared), [a, shared])
    store.put("marks", (shared, c), [shared, c])
    assert len(store) == 2 and store.bytes == 3 * 800
    store.put("other", d, [d])  # the months go; the prices stay, the marks hold them
    assert store.get("months") is None and store.get("marks") is not None and store.bytes == 3 * 800
    store.put("a view", d[:10], [d[:10]])  # its memory is d's, held already
    assert len(store) == 3 and store.bytes == 3 * 800
    hits = store.hits  # a forked worker will read "marks": kept recent, not a read here
    assert store.recent("marks") and not store.recent("nothing") and store.hits == hits


def test_forked_scenario_replays_read_marks_made_once_and_so_does_the_next_completion(monkeypatch):
    # The marks of a completion's market scenarios and counterfactuals depend on the model, the seed and the legs
    # only: made whole in the parent before the workers fork (`passes._marks_made_here`), the next candidate that
    # keeps the legs (an exit changed) reads them — its workers mark none of those jobs' months — and gets the
    # numbers of a fresh evaluation in one process.
    import os

    import opl.runtime.engine.passes as passes_module

    counts, real = [], passes_module._JobReplay.month

    def month(self, m):  # runs in the forked workers: what each job marked is sent back through a pipe
        from opl.runtime.engine import kernels

        made = [0]
        original = kernels.SeriesMarks._run

        def run(series, need, j0, j1, gamma, marks):
            made[0] += marks
            return original(series, need, j0, j1, gamma, marks)

        kernels.SeriesMarks._run = run
        try:
            return real(self, m)
        finally:
            kernels.SeriesMarks._run = original
            os.write(pipe[1], f"{self.run.process.gap is not None},{made[0]}\n".encode())

    pipe = os.pipe()
    monkeypatch.setattr(passes_module._JobReplay, "month", month)
    exits = SMALL.replace("pnl_percent(<-25%)", "pnl_percent(<-40%)")
    settings = EvalSettings(paths=40, seed=7, holdout_paths=40, overrides=("sim.workers=2",))
    pooled = Evaluator(_target(), settings)
    quick = pooled.evaluate(SMALL, complete=False)
    pooled.complete(quick, SMALL)
    marks = {key[1] for key in pooled.months._entries if key[0] == "marks"}
    assert len(marks) == 4  # the base's, gap(-8%)'s, no_jumps' and no_clustering's months marked
    assert pooled.months.bytes <= pooled.months.limit
    os.read(pipe[0], 1 << 16)
    again = pooled.evaluate(exits, complete=False)
    again = pooled.complete(again, exits).to_dict()
    monkeypatch.undo()
    os.close(pipe[1])
    lines = os.read(pipe[0], 1 << 20).decode().split()
    gap_marks = [int(n) for flag, n in (line.split(",") for line in lines) if flag == "True"]
    assert gap_marks and sum(gap_marks) == 0  # the gap scenario's months: read, not marked
    alone = Evaluator(_target(), EvalSettings(paths=40, seed=7, holdout_paths=40, overrides=("sim.workers=1",)))
    fresh = alone.evaluate(exits, complete=False)
    fresh = alone.complete(fresh, exits).to_dict()
    again.pop("seconds"), fresh.pop("seconds")
    assert again == fresh


def test_marks_kept_ahead_never_push_out_what_the_last_two_evaluations_read():
    # `MonthStore.room`: what a replay keeps ahead (marks a later evaluation may read) fits beside every entry read
    # in this evaluation or the one before, dropping older ones only when that makes room.
    import numpy as np

    from opl.runtime.engine.monthstore import MonthStore

    store = MonthStore(limit=4 * 800, ahead=True)
    a, b, c = (np.zeros(100) for _ in range(3))  # 800 bytes each
    store.put("old", a, [a])
    store.begin()
    store.put("before", b, [b])
    store.begin()
    store.put("now", c, [c])
    assert store.room(800) and len(store) == 3  # free room: nothing dropped
    assert store.room(2 * 800) and store.get("old") is None and len(store) == 2  # the old entry made room
    assert not store.room(3 * 800) and len(store) == 2  # only by dropping what the last two evaluations read
    store.begin()
    assert store.room(3 * 800) and len(store) == 1 and store.get("now") is not None
    assert not store.room(5 * 800) and not store.reader().room(800)
    assert not MonthStore(limit=4 * 800).room(800)  # a store that keeps nothing ahead (the hold-out's)


def test_the_holdout_empties_the_store_of_the_candidates_months():
    # The hold-out's fresh seed reads none of the candidates' months: they are let go, not carried into the
    # hold-out's memory (and its forked workers').
    evaluator = Evaluator(_target(), EvalSettings(paths=40, seed=7, holdout_paths=40, counterfactuals=False,
                                                  overrides=("sim.workers=1",)))
    evaluator.evaluate(SMALL, complete=False)
    assert len(evaluator.months) > 0
    candidates = evaluator.months
    evaluator.holdout(SMALL, sizes=(5.0,))
    assert evaluator.months is not candidates and not set(candidates._entries) & set(evaluator.months._entries)


# --------------------------------------------------------------------------- the answer's cautions


def _holdout(mean: float, se: float, median: float, hedge_trades: float) -> dict:
    return {"ok": True, "base": {"target_metrics": {"mean_monthly_return": mean, "median_monthly_return": median},
                                 "standard_errors": {"mean_monthly_return": se},
                                 "trades": {"hedge_trades_per_month": hedge_trades}}}


@pytest.mark.parametrize("mean, se, median, trades, expected", [
    (-0.020, 0.002, 0.585, 0.0, ["the mean month -0.020% ± 0.002%", "0.00 hedge trades a month"]),
    (-0.003, 0.002, 0.585, 3.1, []),  # within two standard errors of 0: no claim
    (0.010, 0.002, 0.585, 3.1, []),
    (-0.020, 0.002, -0.100, 3.1, []),  # median not positive: the answer's numbers already show it
])
def test_the_answer_cautions_a_median_bought_with_the_mean_and_a_hedge_that_never_trades(mean, se, median, trades,
                                                                                          expected):
    from opl.closedloop.report import caveats

    found = caveats(_holdout(mean, se, median, trades), _target(), SMALL)
    assert len(found) == len(expected)
    assert all(text in line for text, line in zip(expected, found))


def test_no_hedge_caution_for_a_file_without_a_hedge_or_a_target_without_the_median():
    from opl.closedloop.report import caveats

    unhedged = SMALL.replace("hedge delta with Future every 1d band 0.05\n", "")
    assert caveats(_holdout(0.01, 0.002, 0.5, 0.0), _target(unhedged), unhedged) == []
    mean_target = SMALL.replace("median_monthly_return >= 1%", "mean_monthly_return >= 1%")
    assert caveats(_holdout(-0.02, 0.002, 0.5, 5.0), _target(mean_target), mean_target) == []
    assert caveats({"ok": False}, _target(), SMALL) == [] and caveats(None, _target(), SMALL) == []
