"""`opl loop --batch K`: K proposals a round from the same best, decided in iteration order; the same
decisions in this process and on a real Dask cluster (tests/conftest.py); a run killed mid-round resumes
the same round; the API key never travels to the cluster, nor reaches a local worker's environment."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cloudpickle  # Dask's (a test dependency: the [test] extra pulls in [dask])
import pytest

from opl.closedloop.builtin import BuiltinProposer
from opl.closedloop.run import LoopSettings, open_run, run_loop, start_run

STRANGLE_HEAD = (Path(__file__).resolve().parents[1] / "fixtures" / "loop" / "strangle_head.opl").read_text()
SMALL = STRANGLE_HEAD + """\
experiment {
  model gbm
  seed 7
  horizon 2
  sizes [ 5, 10, 20 ]
  stress [ vol_up(+50%), gap(-8%) ]
  target median_monthly_return >= 1% and loss_probability <= 25%
}
"""
# The helpers these tests run on the workers (`Client.run`) travel by value: under pytest's importlib mode this
# module is not importable by the name it has here, so by reference a worker could not load them.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SETTINGS = LoopSettings(paths=60, holdout_paths=60, counterfactuals=False, batch=2)
FLAGS = {"max_iterations": 4, "converge_rounds": 10}


def _start(tmp_path, proposer_config=None, settings=SETTINGS, flags=FLAGS):
    source = tmp_path / "small.opl"
    source.write_text(SMALL, encoding="utf-8")
    return start_run(source, tmp_path / "runs", settings, rules_flags=flags,
                     proposer_config=proposer_config or {"proposer": "builtin"})


def _decisions(records) -> list[tuple]:
    """Everything a decision rests on (not the timings)."""
    return [(r["iteration"], r["parent"], r["candidate_sha"], r["proposal"]["move"], r.get("round"),
             json.dumps(r["decision"], sort_keys=True), json.dumps(r["evaluation"]["base"] if r["evaluation"]
                                                                    else None, sort_keys=True))
            for r in records]


def _untimed(value):
    """A record as a comparison should see it: every ``seconds`` (a timing) left out, at any depth."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    outcome = run_loop(_start(tmp_path_factory.mktemp("in-process")), BuiltinProposer())
    return outcome.records


def test_a_round_proposes_k_different_moves_from_the_same_best(in_process):
    assert [r["iteration"] for r in in_process] == [0, 1, 2, 3, 4]
    first, second = in_process[1:3], in_process[3:5]
    assert [r["round"] for r in first] == [{"first": 1, "size": 2}] * 2
    assert [r["round"] for r in second] == [{"first": 3, "size": 2}] * 2
    assert {r["parent"] for r in first} == {0}
    assert first[0]["proposal"]["move"] != first[1]["proposal"]["move"]
    assert first[0]["candidate_sha"] != first[1]["candidate_sha"]
    # The second round starts from the best after the first round's decisions, taken in iteration order.
    assert {r["parent"] for r in second} == {first[1]["decision"]["best_iteration"]}
    # Each candidate is decided against the best so far, the round's earlier candidates included.
    decided = 0
    for before, record in zip(in_process, in_process[1:]):
        if record["evaluation"] is not None and record["decision"]["kind"] == "parameter":
            objective, best = record["evaluation"]["objective"], before["decision"]["best_objective"]
            assert record["decision"]["accepted"] == (objective < best - 1e-12)
            decided += 1
    assert decided >= 2


def test_a_run_killed_mid_round_resumes_the_same_round(tmp_path, in_process):
    archive = _start(tmp_path)
    run_loop(archive, BuiltinProposer(), stop_after=2)  # the baseline and the first of round 1
    assert archive.iteration_numbers() == [0, 1]
    resumed = run_loop(open_run(archive.root, rules_flags={}), BuiltinProposer())
    assert _decisions(resumed.records) == _decisions(in_process)


def test_a_round_checks_each_proposal_once(tmp_path, monkeypatch):
    from opl.closedloop import run as loop_run
    from opl.closedloop.candidate import check_candidate

    calls = []
    monkeypatch.setattr(loop_run, "check_candidate", lambda *a, **k: calls.append(a[:2]) or check_candidate(*a, **k))
    archive = _start(tmp_path, flags={"max_iterations": 2})
    outcome = run_loop(archive, BuiltinProposer())
    assert len(outcome.records) == 3
    # The proposer's check and the loop's second look at its proposal were one check each (two before).
    assert calls and len(calls) == len(set(calls))
    proposed = {(archive.candidate(r["iteration"]), f"{archive.root}/iter_{r['iteration']}/candidate.opl")
                for r in outcome.records[1:]}
    assert proposed <= set(calls)


def _proposed(iteration: int, kind: str):
    from opl.closedloop.proposal import Proposal
    from opl.closedloop.run import _Candidate

    return _Candidate(iteration, Proposal(text="", change="", rationale=""), "", "", kind=kind)


def test_a_candidate_is_completed_ahead_whenever_it_may_be_accepted():
    from opl.closedloop.run import _bars

    # Parameter changes are accepted below the best so far, at most the round's starting best; a design
    # change is accepted whatever its objective. A parameter change after it, proposed from the round's
    # parent, cannot be accepted over it (`_superseded`), and if it failed the bar is still the round's.
    kinds = ["parameter", "parameter", "design", "parameter"]
    assert _bars([_proposed(k, kind) for k, kind in enumerate(kinds)], 2.5) == \
        [2.5 - 1e-12, 2.5 - 1e-12, None, 2.5 - 1e-12]


def test_a_candidate_without_the_rounds_accepted_design_change_is_not_accepted_over_it():
    """A round's parameter change is proposed from the round's parent: after the round's design change is
    accepted, accepting it would undo that design unseen (on jujube the loop then proposed the same design
    change round after round). It is rejected, however good its objective; had the design change failed, it
    would be decided against the round's best as before."""
    from opl.closedloop.evaluate import Evaluation
    from opl.closedloop.proposal import Proposal
    from opl.closedloop.candidate import checked
    from opl.closedloop.objective import parse_target
    from opl.closedloop.run import _Candidate, _decided_in_order

    def candidate(k, text, kind, objective, ok=True):
        c = _Candidate(k, Proposal(text=text, change="", rationale=""), text, "", kind=kind)
        c.evaluation = Evaluation(ok=ok, objective=objective, complete=False)
        return c

    baseline = {"iteration": 0, "evaluation": None, "decision": {
        "best_iteration": 0, "best_objective": 3.0, "best_target_met": False, "design_version": 1,
        "parameter_version": 1}}
    target = parse_target(checked(SMALL).document, "median_monthly_return >= 1% and loss_probability <= 25%")
    design = SMALL.replace("model gbm", "model garch")
    hedged = SMALL.replace("band 0.05", "band 0.1")
    out = _decided_in_order([candidate(1, design, "design", 5.0), candidate(2, hedged, "parameter", 1.0)],
                            [baseline], 0, target, {})
    assert [r["decision"]["accepted"] for r in out] == [True, False]
    assert out[1]["decision"]["why"].startswith("superseded: iteration 1") and out[1]["decision"]["best_iteration"] == 1
    failed = _decided_in_order([candidate(1, design, "design", 5.0, ok=False), candidate(2, hedged, "parameter", 1.0)],
                               [baseline], 0, target, {})
    assert [r["decision"]["accepted"] for r in failed] == [False, True]
    # A killed session wrote the design change: the resumed round still knows its text.
    resumed = _decided_in_order([candidate(2, hedged, "parameter", 1.0)], [baseline, out[0]], 0, target,
                                {1: design})
    assert resumed[0]["decision"] == out[1]["decision"]


def test_a_completion_made_ahead_is_kept_only_for_an_accepted_candidate():
    from opl.closedloop.evaluate import Evaluation
    from opl.closedloop.run import _keep

    class Here:  # `Evaluations.complete` in this process: marks what it completed
        def complete(self, items):
            return [Evaluation(ok=True, objective=e.objective, notes=["completed here"]) for e, _, _ in items]

    a, b, c = (_proposed(k, "parameter") for k in (1, 2, 3))
    for n, candidate in enumerate((a, b, c)):
        candidate.evaluation, candidate.diagnosis, candidate.diagnosed = Evaluation(ok=True, objective=n, complete=False), {"of": "worker"}, True
    a.completed = Evaluation(ok=True, objective=0)  # accepted: its completion and the worker's diagnosis
    b.completed = Evaluation(ok=True, objective=1)  # rejected after all: its quick evaluation, diagnosed again
    _keep(Here(), [a, b, c], [True, False, True])  # c was not completed ahead: it is completed now
    assert a.evaluation is a.completed and a.diagnosed
    assert not b.evaluation.complete and not b.diagnosed and b.diagnosis is None
    assert c.evaluation.notes == ["completed here"] and not c.diagnosed


class _Metered(BuiltinProposer):
    """The built-in proposer, as if each proposal had cost a model 600 tokens."""

    def propose(self, context, *, check):
        from dataclasses import replace

        return replace(super().propose(context, check=check), usage={"prompt_tokens": 500, "completion_tokens": 100})


def test_the_token_budget_is_checked_before_each_proposal_of_a_round(tmp_path):
    # 600 tokens a proposal, a budget of 1,000: the second proposal of a round of three spends it, so the
    # third is never asked for (it was: the budget was checked only between rounds).
    archive = _start(tmp_path, settings=LoopSettings(paths=60, holdout_paths=60, counterfactuals=False, batch=3),
                     flags={**FLAGS, "tokens": 1000})
    outcome = run_loop(archive, _Metered())
    assert [r["iteration"] for r in outcome.records] == [0, 1, 2]
    assert [r["round"] for r in outcome.records[1:]] == [{"first": 1, "size": 2}] * 2
    assert outcome.stop.kind == "budget_tokens" and "1,200 of 1,000" in outcome.stop.reason


def test_the_cluster_decides_as_this_process_does(dask_cluster, tmp_path, in_process, monkeypatch):
    from opl.simulation.cluster import Cluster, PooledCall, session

    submitted = _submissions(monkeypatch, Cluster, PooledCall)
    with session(dask_cluster.scheduler_address) as cluster:
        cluster.client.wait_for_workers(2, timeout=60)
        before = cluster.client.run(_warmed_here)
        hits = cluster.client.run(_store_hits)
        events = []
        outcome = run_loop(_start(tmp_path), BuiltinProposer(), cluster=cluster,
                           on_event=lambda kind, payload: events.append((kind, payload)))
        after = cluster.client.run(_warmed_here)
        hits = {w: n - hits.get(w, 0) for w, n in cluster.client.run(_store_hits).items()}
    assert _decisions(outcome.records) == _decisions(in_process)
    # The whole archive too: the evaluations the workers completed ahead and the diagnoses they made (`_ahead`)
    # are the ones this process makes after its decisions.
    assert _untimed(outcome.records) == _untimed(in_process)
    assert any(r["decision"]["accepted"] and any(s["kind"] == "stress" for s in r["evaluation"]["scenarios"])
               for r in outcome.records[1:])
    # Every worker evaluated the file once to load what a candidate task needs (during the baseline).
    assert sorted(len(after[w] - before.get(w, set())) for w in after) == [1, 1]
    # The candidates evaluated on a worker (and the passes it replayed for this process's evaluations) read
    # the months and marks it made for earlier ones, as in one process; the decisions are the same.
    assert sum(hits.values()) > 0
    # Nothing of a round is evaluated before the round before it is decided (no guess evaluated ahead).
    assert [p["display"].split("/")[-2] for kind, p in events if kind == "evaluating"][1:] == \
        [f"iter_{k}" for k in range(1, 5)]  # after the baseline (the file as written)
    assert not [kind for kind, _ in events if kind == "ahead"]
    # A round's candidates are one pool of tasks: each is evaluated here, in a thread, and the replays of both
    # were submitted side by side (one candidate's replay between two of the other's), not one candidate's
    # after the other's.
    pair = [k for k in submitted if k in (1, 2)]
    assert set(pair) == {1, 2} and _interleaved(pair), pair


def _submissions(monkeypatch, cluster_type, call_type) -> list[int]:
    """The iteration of the candidate each replay submitted to a cluster belongs to, in submission order: a
    `Cluster.pooled` call is a candidate's evaluation (its display names the iteration), and each of its
    replays registers its tasks with the call (`PooledCall.track`)."""
    import re

    order: list[int] = []
    pooled, track = cluster_type.pooled, call_type.track

    def named(self, function, item, *, name="opl-pooled"):
        call = pooled(self, function, item, name=name)
        found = re.search(r"iter_(\d+)", next((x for x in item if isinstance(x, str) and "iter_" in x), ""))
        call.iteration = int(found.group(1)) if found else None
        return call

    def tracked(self, tasks, client):
        order.append(getattr(self, "iteration", None))
        return track(self, tasks, client)

    monkeypatch.setattr(cluster_type, "pooled", named)
    monkeypatch.setattr(call_type, "track", tracked)
    return order


def _interleaved(sequence: list) -> bool:
    """Whether ``sequence`` changes its value more than once (``a b a``, not ``a a b b``)."""
    return sum(x != y for x, y in zip(sequence, sequence[1:])) > 1


class _Failing:
    """A stand-in for `opl.simulation.cluster.Cluster` whose first pooled call fails and whose others never end."""

    def __init__(self):
        self.calls, self.cancelled = [], []

    def pooled(self, function, item, *, name):
        from concurrent.futures import Future

        call = Future()
        if not self.calls:
            call.set_exception(RuntimeError("the candidate's thread crashed"))
        self.calls.append(call)
        return call

    def as_done(self, calls):
        return iter(list(calls))

    def cancel(self, calls):
        self.cancelled += calls


def test_a_round_whose_candidate_fails_stops_its_other_candidates():
    """A round's call that raises ends the round, and the round's calls still running are stopped: left
    running, their passes would hold the workers the run needs next (the hold-out, another command)."""
    from opl.closedloop.run import Evaluations, _Candidate

    cluster = _Failing()
    evaluations = Evaluations(object(), lambda kind, payload: None, cluster)
    round_ = [_Candidate(iteration=k, proposal=None, text=f"text {k}", display=f"iter_{k}") for k in (1, 2, 3)]
    with pytest.raises(RuntimeError, match="crashed"):
        evaluations.quick(round_, best_objective=1.0, facts={})
    assert cluster.cancelled == cluster.calls[1:]


def _store_hits(dask_worker=None) -> int:
    """On a worker: how many times its month store (`opl.simulation.cluster.worker_store`) was read."""
    from opl.simulation.cluster import worker_store

    return worker_store().hits


def _warmed_here(dask_worker=None) -> set:
    """On a worker: the warm-up tasks (`opl.simulation.cluster.Cluster.warm`) it has computed."""
    return {entry[0] for entry in dask_worker.state.log if len(entry) >= 3
            and str(entry[0]).startswith("opl-warm-candidate") and entry[2] == "memory"}


def test_a_worker_killed_mid_round_costs_time_not_decisions(dask_cluster, kill_busy_worker, tmp_path, in_process):
    import threading

    from distributed import Client

    from opl.simulation.cluster import session

    archive = _start(tmp_path)
    out: dict = {}

    def run() -> None:
        try:
            with session(dask_cluster.scheduler_address) as cluster:
                out["outcome"] = run_loop(archive, BuiltinProposer(), cluster=cluster)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            out["error"] = error

    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        thread = threading.Thread(target=run)
        thread.start()
        victim = kill_busy_worker(client, thread, "opl-chunk")  # a pass of a candidate's replay
        thread.join(timeout=600)
        assert not thread.is_alive()
        assert "error" not in out, out.get("error")
        assert victim not in client.run(os.getpid)  # it really died (its nanny started a new one)
    # The archive is the one an undisturbed run writes: every iteration's candidate and decision.
    assert _decisions(out["outcome"].records) == _decisions(in_process)
    assert _untimed(out["outcome"].records) == _untimed(in_process)
    assert [archive.candidate(r["iteration"]) for r in in_process] == \
        [archive.candidate(r["iteration"]) for r in out["outcome"].records]


def _slow_months(pause: float | None, dask_worker=None) -> None:
    """On a worker: every month a replay reads (made or from a month store) first waits ``pause`` seconds
    (None: the engine's own speed again)."""
    import time

    import opl.runtime.engine.passmonths as passmonths

    own = getattr(passmonths._StoredMonths, "_own_next_month", passmonths._StoredMonths.next_month)
    passmonths._StoredMonths._own_next_month = own

    def slowed(self):
        time.sleep(pause)
        return own(self)

    passmonths._StoredMonths.next_month = own if pause is None else slowed


class _Listed:
    """Proposes the given texts, in order."""

    name = "listed"

    def __init__(self, *texts: str):
        self.texts = list(texts)

    def propose(self, context, *, check):
        from opl.closedloop.proposal import Proposal

        return Proposal(text=self.texts.pop(0), change="listed", rationale="test")


@pytest.mark.slow  # the budget is spent waiting: ~20 s at a low load, minutes at a high one
def test_minutes_hold_for_the_candidates_a_cluster_evaluates(dask_cluster, tmp_path, in_process):
    # (`in_process`: this process has evaluated the file before, so the baseline's rate, and the test, are short.)
    from opl.simulation.cluster import session

    archive = _start(tmp_path)
    with session(dask_cluster.scheduler_address) as cluster:
        cluster.client.wait_for_workers(2, timeout=60)
        run_loop(archive, BuiltinProposer(), cluster=cluster, stop_after=1)  # the baseline alone
        baseline = archive.iterations()[0]
        # Time left for a round by the baseline's rate (candidates of its cost), but on the workers every
        # month now waits a third of it: the workers' warm-up (a sweep of 2 months, then a pass at the size
        # it picks) runs to the end of the budget, and the round's two candidate tasks queue behind it.
        left = 2 * baseline["evaluation"]["seconds"] + 2.0
        minutes = (baseline["seconds"] + left) / 60
        cluster.client.run(_slow_months, left / 3)
        try:
            outcome = run_loop(open_run(archive.root, rules_flags={"minutes": minutes}),
                               _Listed(WIDER_BAND, FURTHER_OUT), cluster=cluster)
        finally:
            cluster.client.run(_slow_months, None)
    assert outcome.stop.kind == "budget_minutes"
    round_1 = outcome.records[1:]
    assert [r["round"] for r in round_1] == [{"first": 1, "size": 2}] * 2
    for record in round_1:  # stopped on the workers at the end of --minutes, recorded as such
        assert record["evaluation"] is None and record["decision"]["stopped"] == "budget_minutes"
        assert record["decision"]["why"].startswith("stopped unevaluated: its simulation was still running")
    # The round ended at the deadline (and the month under way): its candidates, started behind the warm-up,
    # did not get `left` seconds of their own.
    assert sum(r["seconds"] for r in round_1) < 2 * left


KEY = "sk-cluster-0123456789-SECRET"
WIDER_BAND = SMALL.replace("band 0.05", "band 0.1")
FURTHER_OUT = SMALL.replace("ATM-5%", "ATM-8%")


def test_the_api_key_never_travels_to_the_cluster(tmp_path, monkeypatch, openai_server):
    import distributed.protocol

    from opl.simulation.cluster import session
    from opl.closedloop.llm import OpenAIProposer

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    sent: list[bytes] = []
    dumps = distributed.protocol.dumps

    def recorded(*args, **kwargs):
        frames = dumps(*args, **kwargs)
        sent.extend(bytes(frame) for frame in frames)
        return frames

    # Every message this process sends (client to scheduler; the local scheduler to its workers) is
    # serialised by distributed.protocol.dumps.
    monkeypatch.setattr(distributed.protocol, "dumps", recorded)
    openai_server.answer_json(WIDER_BAND, "wider hedge band").answer_json(FURTHER_OUT, "put further out")
    proposer = OpenAIProposer("test-model", openai_server.url)
    with session(workers=2) as cluster:
        # (A lambda: `os.environ.get` would pickle this process's environment, key included, by value.)
        assert set(cluster.client.run(lambda: os.environ.get("OPENAI_API_KEY")).values()) == {""}
        archive = _start(tmp_path, proposer.config(), flags={"max_iterations": 2})
        outcome = run_loop(archive, proposer, cluster=cluster)
    assert [r["proposal"]["change"] for r in outcome.records[1:]] == ["wider hedge band", "put further out"]
    second = openai_server.chat_requests[1].body["messages"][1]["content"]
    assert "Already proposed this round" in second and "wider hedge band" in second
    blob = b"".join(sent)
    assert b"opl-chunk" in blob  # the candidates' replays did travel; their texts stay here, with the proposer
    assert WIDER_BAND.encode() not in blob and FURTHER_OUT.encode() not in blob
    assert KEY.encode() not in blob


def test_opl_loop_on_a_scheduler_batches_by_its_workers(dask_cluster, tmp_path):
    from click.testing import CliRunner

    from opl.cli import main

    source = tmp_path / "small.opl"
    source.write_text(SMALL, encoding="utf-8")
    result = CliRunner().invoke(main, ["loop", str(source), "--max-iter", "2", "--runs", str(tmp_path / "runs"),
                                       "--paths", "60", "--holdout-paths", "60", "--quiet",
                                       "--scheduler", dask_cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").glob("small-*")
    assert json.loads((run / "run.json").read_text(encoding="utf-8"))["batch"] == 2  # the cluster's two workers
    assert json.loads((run / "iter_2" / "result.json").read_text(encoding="utf-8"))["round"] == {"first": 1,
                                                                                                 "size": 2}


def test_opl_loop_stops_before_any_work_when_the_scheduler_is_unreachable(tmp_path, monkeypatch):
    import socket

    from click.testing import CliRunner

    from opl.cli import main

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = tmp_path / "small.opl"
    source.write_text(SMALL, encoding="utf-8")
    monkeypatch.setenv("OPL_SCHEDULER", f"tcp://127.0.0.1:{port}")
    monkeypatch.setenv("OPL_SCHEDULER_TIMEOUT", "1")
    result = CliRunner().invoke(main, ["loop", str(source), "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "runs").exists()  # no run folder: nothing was started
