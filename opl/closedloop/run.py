"""The driver of `opl loop`: propose → check → evaluate → criticise → accept or reject → archive, until a
stop condition fires; then the hold-out re-measure and the final report.

**Iteration 0** evaluates the file as written (the baseline). Every later iteration asks the proposer for
one candidate derived from the current best, re-checks it (a proposer's word is not trusted), and
classifies the change by comparing the experiment's design settings (`opl.closedloop.candidate.DESIGN_SETTINGS`):

* a **parameter** change (legs, hedge, exits, risk controls, sizes) is accepted when its objective is
  lower than the best's;
* a **design** change (price model, signal hit rate, scenarios, horizon, …) changes the yardstick, so it
  is accepted whatever its objective — unless it makes the test easier: dropping a declared risk
  component of the model (``jump``, clustering, the regime; a fitted equivalent may replace one, and a
  ``jump`` may go only when the data's count test rejects the declared jumps — the decision names the
  test), raising the signal's hit rate above the data's estimate (or above the current design without data),
  dropping stress or sensitivity scenarios, or shortening the horizon. Such a change is rejected
  unevaluated.

The target, paths and seed belong to the run: a candidate that edits its own ``target`` is still scored
against the run's. Every iteration is written to the archive before the next begins (`opl.closedloop.archive`),
so ``--resume`` continues a run without losing or recomputing a finished iteration.

**Rounds** (``--batch K``, ``batch`` in ``run.json``). The iterations go in rounds of K: the proposer is asked
K times from the same best candidate and diagnosis, each time told the round's earlier proposals
(`ProposalContext.pending`: the built-in proposer gives the next untried move, a model is asked for a
different change); the K candidates are evaluated side by side (on a cluster, `opl.simulation.cluster`), then decided
one after the other in iteration order, each against the best so far — so the decisions depend on K but
not on the number of workers or the order the evaluations finish. A candidate proposed from the round's
parent is not accepted over a design change of its round accepted before it whose design it does not carry
(`_superseded`): it would undo that design unseen. On a cluster a candidate's task also
completes its evaluation when the candidate may be accepted (`_bars`) and diagnoses it (`_ahead`): a round
is one trip to the cluster, and the records are the ones deciding first and completing after would write.
Nothing of the next round is evaluated before the round is decided: a guess made while a round's last
candidate ran (the next round's first candidate, as if that one were rejected) was measured not to pay — on
``benchmarks/bench_dask.py``'s loop no guess held (the candidate running last is the one being completed,
because it may be accepted), and the guesses' replays took the workers the round needed. K = 1 is the loop
above. Each iteration
is still written on its own, with ``round`` (its first iteration and size) in its ``result.json``: a run
killed mid-round resumes by proposing the round's missing iterations from the round's own context. An
iteration's ``seconds`` is its share of the round's wall time, so ``--minutes`` counts wall time (and holds
within a round: its evaluations stop at the end of the budget, on a cluster too). The proposer's token and
cost budgets are checked before each proposal, so a round that spends them is cut short where they ran out.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from opl.lang.fileaccess import FileAccess, NamedFileError, read_regular
from opl.closedloop.archive import RunArchive
from opl.closedloop.candidate import Candidate, CandidateError, candidate_sha, check_candidate, checked
from opl.closedloop.critic import diagnose
from opl.closedloop.evaluate import DEFAULT_HOLDOUT_PATHS, DEFAULT_PATHS, EvalSettings, Evaluation, Evaluator
from opl.closedloop.objective import Target, parse_target
from opl.closedloop.proposal import Proposal, ProposalContext, Proposer
from opl.closedloop.records import Decision, IterationRecord, ProposalRecord
from opl.closedloop.stops import StopDecision, StopRules, decide, proposer_budget, stop_rules
from opl.runtime.results.records import package_versions
from opl.errors import OplError

__all__ = ["LoopSettings", "LoopOutcome", "LoopInputError", "start_run", "open_run", "run_loop", "versions"]

Event = Callable[[str, dict[str, Any]], None]


class LoopInputError(OplError, ValueError):
    """The file cannot start a loop (errors, a target the loop cannot score); ``report`` holds the file's
    findings when it has errors."""

    def __init__(self, message: str, report=None):
        super().__init__(message, report=report, diagnostics=report.sorted() if report is not None else ())

    @property
    def rendered(self) -> str:
        """The file's findings as `opl check` prints them ('' when the error is not in the file's text)."""
        return super().render() if self.located else ""

    def render(self, fmt: str = "full", *, color: bool = False) -> str:
        """The file's findings, then the error's own line."""
        head = super().render(fmt, color=color) if self.located else ""
        return head + "\n".join(self.lines()) + "\n"


@dataclass(frozen=True, kw_only=True)
class LoopSettings:
    """A run's fixed settings (``run.json``)."""

    paths: int = DEFAULT_PATHS
    seed: int | None = None  # default: the file's experiment seed, else 0
    holdout_paths: int = DEFAULT_HOLDOUT_PATHS
    holdout_seed: int | None = None
    data: str | None = None
    repair: bool = False
    overrides: tuple[str, ...] = ()
    counterfactuals: bool = True
    batch: int = 1  # candidates proposed and evaluated per round (`--batch K`)


@dataclass(kw_only=True)
class LoopOutcome:
    """What a finished (or stopped) run gives back to the CLI."""

    root: Path
    stop: StopDecision
    best_iteration: int
    iterations: int
    holdout: Evaluation | None
    answer: str
    report: Path | None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def no_proposal(self) -> bool:
        """The proposer was asked and never gave a file (an endpoint that refused every call)."""
        from opl.closedloop.report import no_proposal

        return no_proposal(self.records)

    def summary(self) -> str:
        """The answer (plain text), the stop and where the report is."""
        lines = [self.answer.replace("**", "").replace("`", ""),
                 f"stop: {self.stop.kind.replace('_', ' ')} — {self.stop.reason}", f"run: {self.root}"]
        if self.report is not None:
            lines.append(f"report: {self.report}")
        return "\n".join(line for line in lines if line)

    def to_frame(self):
        """One row per iteration (index ``iteration``): the decision, the objective, the evaluated size and the
        base case's target metrics (percent)."""
        import pandas as pd

        rows = []
        for record in self.records:
            d, ev = record["decision"], record.get("evaluation") or {}
            rows.append({"iteration": record["iteration"], "version": d["version"], "kind": d["kind"],
                         "accepted": d["accepted"], "change": (record.get("proposal") or {}).get("change", ""),
                         "objective": d.get("objective"), "best_iteration": d["best_iteration"],
                         "size": ev.get("size"), **(ev.get("base") or {}).get("target_metrics", {})})
        return pd.DataFrame(rows).set_index("iteration")

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON: stop, best iteration, answer, report path and every iteration's record."""
        from opl.runtime.results.records import json_safe

        return json_safe({"root": str(self.root), "stop": self.stop.to_dict(), "best_iteration": self.best_iteration,
                          "iterations": self.iterations, "answer": self.answer,
                          "report": str(self.report) if self.report is not None else None,
                          "holdout": self.holdout.to_dict() if self.holdout is not None else None,
                          "records": self.records})

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<p>{html.escape(line)}</p>" for line in self.summary().splitlines())
        return head + self.to_frame().to_html(float_format=lambda v: f"{v:.3f}", na_rep="—")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def start_run(file: str | Path, runs: str | Path, settings: LoopSettings, *, rules_flags: dict[str, Any],
              proposer_config: dict[str, Any]) -> RunArchive:
    """Check ``file`` and create its run folder with ``run.json``, ``define_metrics.md``, ``data_contracts.md``.

    Raises
    ------
    LoopInputError
        The file has errors, or a target the loop cannot score.
    OSError
        The file cannot be read or the folder cannot be written.
    """
    from opl.lang.frontend import check_path, check_text
    from opl.closedloop.objective import TargetError
    from opl.closedloop.report import define_metrics

    from opl.lang.parser import decode

    source, _ = decode(Path(file).read_bytes(), str(file))
    if source is None:  # not UTF-8 text, or too big: the checker's E007/E008, located
        raise LoopInputError(f"{file} has errors: fix them before starting a loop", check_path(file).report)
    text = source.text
    written = check_text(text, str(file))
    if written.report.has_errors:
        raise LoopInputError(f"{file} has errors: fix them before starting a loop", written.report)
    try:
        target = parse_target(written.document, text)
    except TargetError as error:
        raise LoopInputError(f"{file}: {error}") from None
    exp = written.document.experiment
    calibration = _calibration_file(file, exp.calibration_file if exp is not None else None)
    seed = settings.seed if settings.seed is not None else (exp.seed if exp is not None and exp.seed is not None else 0)
    evaluation = EvalSettings(paths=settings.paths, seed=seed, holdout_paths=settings.holdout_paths,
                              holdout_seed=settings.holdout_seed, counterfactuals=settings.counterfactuals,
                              overrides=tuple(settings.overrides))
    rules = stop_rules(written.document, **rules_flags)
    if rules.cost is not None and rules.token_price is None:
        raise LoopInputError(f"{file}: a cost budget needs the token prices: give `--token-price IN,OUT` "
                             "(currency per million prompt and completion tokens)")
    archive = RunArchive.create(runs, Path(file).stem, initial_text=text, settings={
        "created": _now(), "file": str(file), "target": target.to_dict(), "evaluation": evaluation.to_dict(),
        "stops": rules.to_dict(), "proposer": proposer_config, "data": settings.data, "repair": settings.repair,
        "claim": exp.hit_rate if exp is not None else None, "versions": package_versions(), "sessions": [_now()],
        "batch": settings.batch})
    if calibration is not None:
        archive.write_text(*calibration)
    archive.write_text("define_metrics.md", define_metrics(target, evaluation, rules))
    contracts = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "data_contracts.md"
    if contracts.is_file():
        archive.write_text("data_contracts.md", contracts.read_text(encoding="utf-8"))
    else:  # an installed wheel ships no examples: say where the contracts are instead
        archive.write_text("data_contracts.md", "# Data contracts\n\nThe column contracts of the data files are "
                           "`opl.data.contracts` (checked by `opl.data.loaders`); the page that explains them is "
                           "examples/jujube/data_contracts.md in the source repository.\n")
    return archive


def _calibration_file(file: str | Path, named: str | None) -> tuple[str, str] | None:
    """(name, text) of the ``calibration file("…")`` the user's file names, to copy into the run folder.

    Candidates may name files only inside the run and data folders (E015), so the run keeps a copy under
    the same relative name; a name that could not be kept so (absolute, ``..``) is refused at the start.
    """
    if named is None:
        return None
    refusal = FileAccess(()).locate(named)[1]
    if refusal in ("is an absolute path", "leaves the allowed folders (`..`)"):
        raise LoopInputError(f"{file}: `calibration file(\"{named}\")` {refusal}: a loop's candidates name files "
                             "only inside the run and --data folders; copy the file next to the .opl (or into "
                             "--data) and name it by a relative path")
    try:
        text = read_regular(Path(file).parent / named).decode("utf-8")
    except (OSError, NamedFileError, UnicodeDecodeError) as error:
        raise LoopInputError(f"{file}: `calibration file(\"{named}\")`: cannot be read "
                             f"({getattr(error, 'strerror', None) or error})") from None
    return named, text


def open_run(root: str | Path, *, rules_flags: dict[str, Any], batch: int | None = None) -> RunArchive:
    """Open a run for ``--resume``; budget and convergence flags (and ``batch``) given now replace the
    recorded ones."""
    archive = RunArchive.open(root)
    settings = archive.settings()
    rules = StopRules.from_dict(settings["stops"])
    changed = {k: v for k, v in rules_flags.items() if v is not None}
    if changed:
        from dataclasses import replace

        rules = replace(rules, **changed)
    if rules.cost is not None and rules.token_price is None:
        raise LoopInputError(f"{root}: a cost budget needs the token prices: give `--token-price IN,OUT`")
    settings["stops"] = rules.to_dict()
    settings["sessions"] = list(settings.get("sessions", [])) + [_now()]
    if batch is not None:
        settings["batch"] = batch
    archive.write_json("run.json", {k: v for k, v in settings.items()})
    return archive


def _target(settings: dict[str, Any]) -> Target:
    from opl.closedloop.objective import Clause

    t = settings["target"]
    return Target(text=t["text"], source=t.get("source", "file"),
                  clauses=tuple(Clause(**c) for c in t["clauses"]))


def _evaluator(settings: dict[str, Any]) -> Evaluator:
    e = settings["evaluation"]
    return Evaluator(_target(settings), EvalSettings(
        paths=e["paths"], seed=e["seed"], holdout_paths=e["holdout_paths"], holdout_seed=e["holdout_seed"],
        counterfactuals=e["counterfactuals"], overrides=tuple(e["overrides"])))


def _hit_rate(text: str) -> float | None:
    doc = checked(text).document
    return doc.experiment.hit_rate if doc is not None and doc.experiment is not None else None


def weakening(parent: Candidate, child: Candidate, facts: dict[str, Any]) -> str | None:
    """Why a design change makes the test easier to pass, or None (module docstring)."""
    return model_change(parent, child, facts)[0]


def model_change(parent: Candidate, child: Candidate, facts: dict[str, Any]) -> tuple[str | None, list[dict]]:
    """Why a design change makes the test easier (or None), and the risk components it may drop.

    A risk component the parent's model declares (``jump``, volatility clustering, the signal's regime)
    may be replaced by a fitted equivalent (``garch`` by the data's ``gjr``), never removed — unless a
    stated data test rejects it: for ``jump``, the count test of the declared jumps against the data
    (`opl.closedloop.critic.declared_jumps_test`). The second item lists each removal a test allowed, as
    ``{"component", "test"}``, for the decision and the report.
    """
    from opl.closedloop.critic import declared_jumps_test

    a, b = checked(parent.text).document, checked(child.text).document
    ea, eb = a.experiment, b.experiment
    if ea is None:
        return None, []
    if eb is None:
        return "it drops the experiment block", []

    def families(exp):
        names = {c.name for c in exp.model}
        out = {"clustering" if n in ("garch", "gjr") else n for n in names} - {"gbm"}
        if exp.hit_rate is not None:
            out.add("regime")  # a signal adds the regime to the model (opl.simulation.run)
        return out

    lost = families(ea) - families(eb)
    allowed = []
    if "jump" in lost:
        test = declared_jumps_test(parent, facts)
        if test is not None and test["rejected"]:
            lost.discard("jump")
            allowed.append({"component": "jump", "test": test["text"]})
        elif lost == {"jump"}:
            why = f"the data do not reject them: {test['text']}" if test is not None else \
                "no data test rejects them (the run has no calibrated data)"
            return f"it drops jump from the price model; {why}", []
    if lost:
        return f"it drops {', '.join(sorted(lost))} from the price model", []
    if ea.hit_rate is not None:
        estimate = ((facts.get("assumptions") or {}).get("hit_rate") or {}).get("estimate")
        ceiling = max(ea.hit_rate, estimate) if estimate is not None and estimate >= ea.hit_rate else ea.hit_rate
        if eb.hit_rate is None or eb.hit_rate > ceiling + 1e-9:
            return (f"it raises the signal's hit rate above {ceiling:.2f}" if eb.hit_rate is not None else
                    "it drops the direction signal"), []
    if len(eb.stress) < len(ea.stress) or len(eb.sensitivity) < len(ea.sensitivity):
        return "it drops stress or sensitivity scenarios", []
    if (eb.horizon_months or 12) < (ea.horizon_months or 12):
        return "it shortens the horizon", []
    return None, allowed


def _tradeoff(target: Target, parent: dict, child: dict) -> str | None:
    """"return" when the return clause improved and the drawdown clause worsened, "drawdown" for the reverse."""
    ret = next((c for c in target.clauses if c.metric.endswith("monthly_return")), None)
    dd = next((c for c in target.clauses if c.metric.startswith("max_drawdown")), None)
    if ret is None or dd is None or not parent or not child:
        return None
    d_ret = ret.shortfall(child.get(ret.metric)) - ret.shortfall(parent.get(ret.metric))
    d_dd = dd.shortfall(child.get(dd.metric)) - dd.shortfall(parent.get(dd.metric))
    if d_ret < -1e-9 and d_dd > 1e-9:
        return "return"
    if d_dd < -1e-9 and d_ret > 1e-9:
        return "drawdown"
    return None


def _history_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What a proposer sees of a past iteration (ProposalContext.history)."""
    d = record["decision"]
    return {"iteration": record["iteration"], "parent": record.get("parent"), "candidate_sha": record["candidate_sha"],
            "change": record["proposal"].get("change", ""), "move": record["proposal"].get("move"),
            "reason": record["proposal"].get("rationale", ""), "kind": d["kind"], "accepted": d["accepted"],
            "why": d.get("why", ""), "objective": d.get("objective"), "best_objective": d["best_objective"],
            "metrics": (record.get("evaluation") or {}).get("base", {}).get("target_metrics", {}),
            "size": (record.get("evaluation") or {}).get("size")}


def _usage(records: list[dict[str, Any]]) -> int:
    return sum(sum((r.get("proposal") or {}).get("usage", {}).values()) for r in records)


def _cost(rules: StopRules, records: list[dict[str, Any]]) -> float | None:
    """The proposer's spend so far at the run's token prices (None when no prices were given)."""
    spent = [rules.spent((r.get("proposal") or {}).get("usage", {})) for r in records]
    return None if rules.token_price is None else sum(s for s in spent if s is not None)


def _load_engine() -> None:
    """Import the simulation engine (numba and the compiled kernels' modules, ~0.35 s), which the baseline's
    evaluation needs first: done while the data stage's calibration runs beside (`prepare_data`'s
    ``meanwhile``), not after it."""
    import opl.runtime.engine.passes  # noqa: F401 - loaded for what follows
    import opl.simulation.run  # noqa: F401


def _elapsed_minutes(records: list[dict[str, Any]], facts_seconds: float) -> float:
    return (sum(r.get("seconds", 0.0) for r in records) + facts_seconds) / 60.0


def run_loop(archive: RunArchive, proposer: Proposer, *, on_event: Event | None = None,
             stop_after: int | None = None, cluster=None) -> LoopOutcome:
    """Run (or continue) the loop of ``archive`` until a stop fires, then the hold-out and the final report.

    ``stop_after`` ends this session after that many new iterations without the final report (tests use it
    to interrupt a run between iterations, as a kill would). ``cluster`` (an `opl.simulation.cluster.Cluster`)
    evaluates the candidates of a round (``batch`` in ``run.json``) side by side as its tasks.
    """
    from opl.closedloop.inputs import prepare_data

    emit = on_event or (lambda kind, payload: None)
    # The proposer knows its key: every file of the run is scrubbed of it (and of any bearer token).
    archive.redact = getattr(proposer, "redact", None) or archive.redact
    settings = archive.settings()
    target = _target(settings)
    evaluator = _evaluator(settings)
    rules = StopRules.from_dict(settings["stops"])
    facts: dict[str, Any] = {}
    facts_seconds = 0.0
    if settings.get("data"):
        started = time.perf_counter()
        facts = prepare_data(archive, settings["data"], initial_text=archive.path("initial.opl").read_text("utf-8"),
                             claim=settings.get("claim"), repair=settings.get("repair", False),
                             progress=lambda stage: emit("stage", {"stage": stage}), meanwhile=_load_engine)
        facts_seconds = facts.get("seconds") or (time.perf_counter() - started)
        if "seconds" not in facts:
            facts["seconds"] = facts_seconds
            archive.write_json("facts.json", facts)
        for item in facts.get("untested") or []:
            emit("untested", {"text": item})
        origin = facts.get("origin") or {}
        evaluator.data = archive.path("data") if origin.get("kind") == "synth" else origin.get("folder")
    # A candidate names files only inside the run folder and the data folder (E015, `opl.lang.fileaccess`).
    access = FileAccess.within(archive.root, evaluator.data if isinstance(evaluator.data, (str, Path)) else None)
    evaluator.files = access
    records = archive.iterations()
    for record in records:
        emit("resumed", {"record": record})
    batch = max(1, int(settings.get("batch") or 1))
    evaluations = Evaluations(evaluator, emit, cluster)
    checks = _RoundChecks(access)
    return _rounds(archive, proposer, evaluator, evaluations, checks, target, rules, records, facts,
                   facts_seconds, batch, settings, emit, stop_after)


def _rounds(archive, proposer, evaluator, evaluations, checks, target, rules, records, facts, facts_seconds, batch,
            settings, emit, stop_after) -> LoopOutcome:
    """`run_loop`'s iterations: the baseline, then round after round until a stop fires."""
    from opl.closedloop.report import change_log, iteration_summary

    new = 0
    exhausted = False
    if batch > 1:
        left = None if rules.minutes is None else rules.minutes * 60 - _elapsed_minutes(records, facts_seconds) * 60
        evaluations.warm(archive.path("initial.opl").read_text(encoding="utf-8"),
                         None if left is None else time.monotonic() + left)
    while True:
        k = len(records)
        if k == 0:
            text = archive.path("initial.opl").read_text(encoding="utf-8")
            batch_records = [_baseline(archive, evaluator, target, text, facts, emit)]
        else:
            decision = decide(rules, [r["decision"] for r in records], minutes=_elapsed_minutes(records, facts_seconds),
                              tokens=_usage(records), cost=_cost(rules, records), exhausted=exhausted)
            if records[0]["evaluation"] is None or not records[0]["evaluation"]["ok"]:
                decision = StopDecision(kind="baseline_failed", reason="the file as written cannot be simulated "
                                                                 "(iteration 0): nothing to improve on")
            if decision is not None:
                return _finish(archive, evaluator, target, records, decision, facts, emit)
            if stop_after is not None and new >= stop_after:
                return _interrupted(archive, records)
            seconds_left = None if rules.minutes is None else \
                rules.minutes * 60 - _elapsed_minutes(records, facts_seconds) * 60
            budget = _Budget.of(archive, evaluator, records[0], rules, seconds_left=seconds_left)
            # --minutes holds within the round: a simulation still running at its end is stopped.
            evaluator.deadline = None if seconds_left is None else time.monotonic() + seconds_left
            try:
                batch_records = _round(archive, evaluator, target, proposer, records, facts, emit, checks, budget,
                                       size=min(batch, rules.max_iterations - (k - 1)), evaluations=evaluations,
                                       rules=rules)
            finally:
                evaluator.deadline = None  # the baseline and the hold-out always run whole
            if not batch_records:  # the proposer has nothing left: no iteration is written
                exhausted = True
                continue
        for n, record in enumerate(batch_records):
            if n and stop_after is not None and new >= stop_after:  # as a kill between a round's iterations
                return _interrupted(archive, records)
            typed, record = record, record.to_dict()
            files = {"candidate.opl": typed.text, "config.json": _json(_config(settings, record, proposer)),
                     "result.json": _json(record), "summary.md": iteration_summary(record, target)}
            if typed.transcript:
                files["transcript.json"] = _json(list(typed.transcript))
            archive.write_iteration(typed.iteration, files)
            records.append(record)
            archive.write_text("change_log.md", change_log(records, target))
            emit("iteration", {"record": record})
            new += 1


def _interrupted(archive: RunArchive, records: list[dict[str, Any]]) -> LoopOutcome:
    """The outcome of a session ended by ``stop_after`` (no final report: ``--resume`` continues it)."""
    return LoopOutcome(root=archive.root, stop=StopDecision(kind="budget_iterations", reason="session interrupted"),
                       best_iteration=records[-1]["decision"]["best_iteration"], iterations=len(records),
                       holdout=None, answer="", report=None, records=records)


#: A candidate may cost at most this many times the file as written (estimated path-steps, `opl.lang.experiment.cost`).
COST_FACTOR = 4.0


@dataclass(frozen=True)
class _Budget:
    """What one candidate's evaluation may cost: `COST_FACTOR` × the baseline's estimated path-steps, and no
    more estimated seconds (the baseline's measured rate) than ``--minutes`` leaves."""

    base_steps: int
    seconds_per_step: float | None
    seconds_left: float | None

    @classmethod
    def of(cls, archive: RunArchive, evaluator: Evaluator, baseline: dict[str, Any], rules: StopRules, *,
           seconds_left: float | None) -> "_Budget | None":
        cost = _run_cost(archive.path("initial.opl").read_text(encoding="utf-8"), evaluator.settings.paths)
        if cost is None:
            return None
        seconds = (baseline.get("evaluation") or {}).get("seconds")
        return cls(cost.path_steps, seconds / cost.path_steps if seconds else None, seconds_left)

    def refusal(self, text: str, paths: int) -> str:
        """Why the candidate ``text`` is refused unevaluated ("" when it fits the budget)."""
        cost = _run_cost(text, paths)
        if cost is None:
            return ""  # a text that does not lower was refused by the check already
        if cost.path_steps > COST_FACTOR * self.base_steps:
            return (f"rejected unevaluated: it would simulate {cost.describe()}, more than {COST_FACTOR:g} × the "
                    f"file as written ({self.base_steps:,}): the run's budget")
        if self.seconds_left is not None and self.seconds_per_step is not None:
            estimate = cost.path_steps * self.seconds_per_step
            if estimate > max(self.seconds_left, 0.0):
                return (f"rejected unevaluated: it would take about {estimate:,.0f} s to simulate, more than the "
                        f"{max(self.seconds_left, 0.0):,.0f} s left of --minutes")
        return ""


def _run_cost(text: str, paths: int):
    """The `opl.lang.experiment.cost.RunCost` of ``text`` at the run's ``paths`` (None when it does not lower)."""
    from opl.lang.experiment.cost import experiment_cost

    document = checked(text).document
    return experiment_cost(document.experiment, paths=paths) if document is not None else None


def _json(data) -> str:
    import json

    from opl.runtime.results.records import json_safe

    return json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _config(settings: dict[str, Any], record: dict[str, Any], proposer: Proposer) -> dict[str, Any]:
    ev = record.get("evaluation") or {}
    run = ev.get("run", {})
    config = getattr(proposer, "config", None)
    return {"iteration": record["iteration"], "seed": settings["evaluation"]["seed"],
            "paths": settings["evaluation"]["paths"], "holdout_seed": settings["evaluation"]["holdout_seed"],
            "holdout_paths": settings["evaluation"]["holdout_paths"], "overrides": settings["evaluation"]["overrides"],
            "steps_per_day": run.get("steps_per_day"), "horizon_months": run.get("horizon_months"),
            "days_per_month": run.get("days_per_month"), "sizes": run.get("sizes"), "capital": run.get("capital"),
            "hedge": (ev.get("strategy") or {}).get("hedge"), "model": ev.get("model"),
            "proposer": config() if callable(config) else {"proposer": getattr(proposer, "name", "?")},
            "versions": package_versions()}


def _evaluate(evaluator, text, display, emit, *, complete: bool) -> Evaluation:
    emit("evaluating", {"display": display})
    return evaluator.evaluate(text, display=display, complete=complete,
                              progress=lambda stage: emit("pass", {"stage": stage}))


def _diagnose(target, evaluation, text, facts):
    try:
        return diagnose(evaluation, target, Candidate(text), facts=facts)
    except CandidateError:
        return None


def _baseline(archive, evaluator, target, text, facts, emit) -> IterationRecord:
    started = time.perf_counter()
    # Iteration 0 is the user's file as written: its diagnostics point at that file.
    display = archive.settings().get("file") or f"{archive.root}/iter_0/candidate.opl"
    evaluation = _evaluate(evaluator, text, display, emit, complete=True)
    diagnosis = _diagnose(target, evaluation, text, facts)
    evaluated = evaluation.to_dict()
    decision = Decision(kind="baseline", accepted=evaluation.ok,
                        why="baseline" if evaluation.ok else "the file cannot be simulated",
                        objective=evaluated["objective"], best_iteration=0,
                        best_objective=evaluation.objective if evaluation.ok else float("inf"),
                        best_target_met=evaluation.target_met, design_version=1, parameter_version=1)
    return IterationRecord(iteration=0, parent=None, candidate_sha=candidate_sha(text),
                           proposal=ProposalRecord(change="the file as written", rationale="baseline"),
                           evaluation=evaluated, diagnosis=diagnosis.to_dict() if diagnosis else None,
                           decision=decision, seconds=time.perf_counter() - started, text=text)


@dataclass
class _Candidate:
    """One proposal of a round on its way to a record: checked and classified, then evaluated and decided."""

    iteration: int
    proposal: Proposal
    text: str
    display: str
    kind: str = "parameter"
    why: str = ""
    dropped: list = field(default_factory=list)
    evaluation: Evaluation | None = None
    stopped: bool = False  # its evaluation was stopped at the end of --minutes
    completed: Evaluation | None = None  # completed ahead on a worker, in case it is accepted (`_ahead`)
    diagnosis: dict[str, Any] | None = None  # the critic's, of what the record keeps, once `diagnosed`
    diagnosed: bool = False

    @property
    def to_evaluate(self) -> bool:
        return self.kind != "failed" and not self.why


class Evaluations:
    """Evaluates a round's candidates: here one after the other, or side by side on a Dask cluster, each in a
    thread of this process whose replays are the cluster's tasks (`opl.simulation.cluster.Cluster.pooled`): a
    round's candidates are one pool of passes, which keeps every worker busy to the round's end. Only the
    replays travel (and the workers' warm-up), never the proposer."""

    def __init__(self, evaluator: Evaluator, emit: Event, cluster=None):
        self.evaluator = evaluator
        self.emit = emit
        self.cluster = cluster
        self.warming: list = []  # the workers' warm-up tasks (`warm`), held for the run: released, a task is dropped

    def warm(self, text: str, deadline: float | None) -> None:
        """On a cluster, have every worker evaluate ``text`` (the file as written) on `WARM_PATHS` paths now,
        while this process evaluates the baseline: the rounds' candidate tasks then find their workers
        loaded (`opl.simulation.cluster.Cluster.warm`). ``deadline``: the end of ``--minutes`` (None: none),
        which the warm-up keeps too — the candidate tasks queue behind it."""
        from opl.simulation.cluster import time_left

        if self.cluster is not None:
            self.warming = self.cluster.warm(_warmed, (self.evaluator, text, time_left(deadline)),
                                             name="opl-warm-candidate")

    def quick(self, candidates: list["_Candidate"], *, best_objective: float, facts: dict[str, Any]) -> None:
        """The quick evaluation (`Evaluator.evaluate`, ``complete=False``) of each candidate into its
        ``evaluation`` (None, and ``stopped``, for one the evaluator's deadline — the end of ``--minutes`` —
        stopped). Side by side on a cluster (`opl.simulation.cluster.Cluster.pooled`): each candidate's call
        also completes the evaluation when the candidate may be accepted, and diagnoses it (`_ahead`), so that
        every replay of the round is in the pool while the pool runs. ``best_objective``: the best's at the
        round's start. A call that fails stops the round's others (their passes would hold the workers)."""
        if self.cluster is None or len(candidates) < 2:
            for c in candidates:
                c.evaluation = self._here(c.text, c.display)
                c.stopped = c.evaluation is None
            return
        calls = {}
        for c, bar in zip(candidates, _bars(candidates, best_objective)):
            self.emit("evaluating", {"display": c.display})
            calls[self.cluster.pooled(_ahead, (self._pinned(), c.text, c.display, bar, facts), name="opl-candidate")] = c
        try:
            for call in self.cluster.as_done(calls):
                c, (quick, completed, diagnosis) = calls[call], call.result()
                c.evaluation, c.stopped, c.completed = quick, quick is None, completed
                c.diagnosis, c.diagnosed = diagnosis, quick is not None
        finally:
            self.cluster.cancel([call for call in calls if not call.done()])

    def complete(self, items: list[tuple[Evaluation, str, str]]) -> list[Evaluation]:
        """`Evaluator.complete` of each (evaluation, text, display)."""
        if self.cluster is None or len(items) < 2:
            return [self.evaluator.complete(evaluation, text, display=display,
                                            progress=lambda stage: self.emit("pass", {"stage": stage}))
                    for evaluation, text, display in items]
        calls = [self.cluster.pooled(_completed, (self._pinned(), evaluation, text, display), name="opl-complete")
                 for evaluation, text, display in items]
        return [call.result() for call in calls]

    def _pinned(self) -> Evaluator:
        """The evaluator as a call of `opl.simulation.cluster.Cluster.pooled` keeps it: its deadline the one in
        force now; its store, settings and facts shared (they do not change during a run)."""
        import copy

        return copy.copy(self.evaluator)

    def _here(self, text: str, display: str) -> Evaluation | None:
        from opl.runtime.engine.deadline import DeadlinePassed

        try:
            return _evaluate(self.evaluator, text, display, self.emit, complete=False)
        except DeadlinePassed:
            return None



#: Paths of a worker's warm-up evaluation: enough to run every stage, few enough to cost next to nothing.
WARM_PATHS = 64


def _warmed(job) -> None:
    """A cluster task: a complete evaluation of ``text`` on `WARM_PATHS` paths, its result dropped; stopped
    at the end of ``--minutes`` (``left``, `opl.simulation.cluster.time_left`)."""
    import copy

    from opl.runtime.engine.deadline import DeadlinePassed
    from opl.simulation.cluster import worker_deadline

    evaluator, text, left = job
    evaluator = copy.copy(evaluator)  # its own store: months of other paths than the candidates'
    evaluator.settings, evaluator.deadline = replace(evaluator.settings, paths=WARM_PATHS), worker_deadline(left)
    try:
        evaluator.evaluate(text, complete=True)
    except DeadlinePassed:
        pass  # what it loaded stays loaded


def _completed(job) -> Evaluation:
    """A `opl.simulation.cluster.Cluster.pooled` call: `Evaluator.complete` of a candidate's ``evaluation``."""
    evaluator, evaluation, text, display = job
    return evaluator.complete(evaluation, text, display=display)


def _bars(candidates: list["_Candidate"], best_objective: float) -> list[float | None]:
    """For each candidate of a round, the objective below which it may be accepted (None: whatever its
    objective, when the evaluation runs). A design change is accepted whenever it is evaluated; a parameter
    change below the best so far, which is at most the round's starting ``best_objective`` — after a design
    change accepted earlier in the round it cannot be accepted at all (`_superseded`), and if that design
    change failed, the best is still the round's."""
    return [None if c.kind == "design" else best_objective - 1e-12 for c in candidates]


def _ahead(job) -> tuple[Evaluation | None, Evaluation | None, dict[str, Any] | None]:
    """A `opl.simulation.cluster.Cluster.pooled` call: a candidate's quick evaluation (None when the deadline
    stopped it), its completion when it may be accepted (its objective below ``bar``, `_bars`; else None), and
    the critic's diagnosis of the completion if made, else of the quick evaluation — what the loop keeps in
    either case. The loop decides as before from the quick evaluations; this keeps the completions' replays
    in the round's pool, beside the other candidates'."""
    import copy

    from opl.runtime.engine.deadline import DeadlinePassed

    evaluator, text, display, bar, facts = job
    try:
        quick = evaluator.evaluate(text, display=display, complete=False)
    except DeadlinePassed:
        return None, None, None
    completed = None
    if quick.ok and (bar is None or quick.objective < bar):
        completed = evaluator.complete(copy.deepcopy(quick), text, display=display)  # the quick one is kept too
    diagnosis = _diagnose(evaluator.target, completed or quick, text, facts)
    return quick, completed, diagnosis.to_dict() if diagnosis is not None else None


def _round_so_far(records: list[dict[str, Any]]) -> tuple[int, int]:
    """(first iteration, size) of the round the last record belongs to when a kill cut it short, else
    (len(records), 0): a round of ``--batch K`` proposals is written one iteration at a time."""
    info = records[-1].get("round")
    if info and records[-1]["iteration"] < info["first"] + info["size"] - 1:
        return info["first"], info["size"]
    return len(records), 0


def _context(target: Target, base: list[dict[str, Any]], best_text: str) -> ProposalContext:
    """What the proposer sees at the start of the round after ``base`` (the records so far): the best
    candidate (``best_text``), its evaluation and diagnosis, the history and the objective."""
    last = base[-1]["decision"]
    best = base[last["best_iteration"]]
    return ProposalContext(iteration=len(base), candidate=best_text, result=best["evaluation"],
                           diagnosis=best["diagnosis"], history=tuple(_history_entry(r) for r in base),
                           objective={"target": target.to_dict(), "best_iteration": last["best_iteration"],
                                      "best_objective": last["best_objective"],
                                      "description": "distance to the target (0 = met); see define_metrics.md"})


def _decided_in_order(candidates: list["_Candidate"], records: list[dict[str, Any]], parent: int,
                      target: Target, earlier: dict[int, str]) -> list[dict[str, Any]]:
    """The records of a round's ``candidates`` (proposed from ``parent``), each decided against the best so
    far in iteration order (the round's earlier candidates included: ``earlier``, the texts of its
    iterations a killed session wrote), without their diagnoses."""
    decided = {r["iteration"]: r for r in records}
    round_texts = {**earlier, **{c.iteration: c.text for c in candidates}}
    out: list[dict[str, Any]] = []
    for c in candidates:
        last = (out[-1] if out else records[-1])["decision"]
        record = _decided(c, decided[last["best_iteration"]], last, parent, target,
                          superseded=_superseded(c, last["best_iteration"], round_texts))
        decided[c.iteration] = record
        out.append(record)
    return out


def _superseded(c: "_Candidate", best_k: int, round_texts: dict[int, str]) -> str:
    """Why ``c`` cannot be accepted over ``best_k``, a candidate of its own round accepted before it whose
    design it does not carry ("" when it can be). ``c`` was proposed from the round's parent: accepted, it
    would undo that design change unseen — a parameter change scored on the design it reverts (the loop then
    proposed the same design change round after round)."""
    if best_k not in round_texts or c.evaluation is None or not c.evaluation.ok:
        return ""
    if Candidate(round_texts[best_k]).design() == Candidate(c.text).design():
        return ""
    return (f"superseded: iteration {best_k}, a design change of the same round decided before it, is the best "
            "now, and this candidate, proposed from the round's parent, does not carry that design")


def _round(archive, evaluator, target, proposer, records, facts, emit, checks: "_RoundChecks",
           budget: "_Budget | None", *, size: int, evaluations: Evaluations, rules: StopRules) -> list[dict[str, Any]]:
    """The next round: ``size`` proposals from the current best and its diagnosis (each told the round's
    earlier ones, ``ProposalContext.pending``), evaluated side by side, then decided one after the other in
    iteration order against the best so far. A round a kill cut short is finished with the proposals it
    still lacked. The proposer's token and cost budgets are checked before each proposal: a round that spends
    them is cut short there (the run then stops). Returns its new records in order ([] when the proposer has
    nothing left)."""
    started = time.perf_counter()
    first, planned = _round_so_far(records)
    if planned:
        size = planned - (len(records) - first)
    base = records[:first]
    best_k = base[-1]["decision"]["best_iteration"]
    best_text = archive.candidate(best_k)
    earlier = {r["iteration"]: archive.candidate(r["iteration"]) for r in records[first:]}  # a resumed round's
    candidates = _proposals(archive, evaluator, proposer, records, facts, emit, checks, budget, rules, first=first,
                            size=size, best_k=best_k, best_text=best_text, context=_context(target, base, best_text))
    if not candidates:
        return []
    todo = [c for c in candidates if c.to_evaluate]
    evaluations.quick(todo, best_objective=base[-1]["decision"]["best_objective"], facts=facts)
    for c in todo:
        if c.stopped:
            c.why = (f"stopped unevaluated: its simulation was still running at the end of --minutes (after "
                     f"{time.perf_counter() - started:,.0f} s of this iteration); the candidate is kept in this "
                     f"folder, outside the search")
    out = _decided_in_order(candidates, records, best_k, target, earlier)
    _keep(evaluations, candidates, [r["decision"]["accepted"] for r in out])
    seconds = (time.perf_counter() - started) / len(candidates)  # the round's wall time, shared
    return _round_records(candidates, out, target, facts, first=first,
                          size=len(records) - first + len(candidates), seconds=seconds)


def _proposals(archive, evaluator, proposer, records, facts, emit, checks: "_RoundChecks", budget: "_Budget | None",
               rules: StopRules, *, first: int, size: int, best_k: int, best_text: str,
               context) -> list["_Candidate"]:
    """The round's proposals, each classified (`_classified`) and told the round's earlier ones; the round
    stops early when the proposer's budgets are spent or it has nothing left."""
    pending = [_pending_entry(r["candidate_sha"], r["proposal"]) for r in records[first:] if r["candidate_sha"]]
    candidates: list[_Candidate] = []
    for k in range(len(records), len(records) + size):
        if candidates and _round_spent(rules, records, candidates):
            break
        display = f"{archive.root}/iter_{k}/candidate.opl"
        emit("proposing", {"iteration": k, "best_iteration": best_k})
        try:
            proposal = proposer.propose(replace(context, iteration=k, pending=tuple(pending)),
                                        check=lambda text, d=display: checks(text, d))
        except Exception as error:  # noqa: BLE001 - a proposer's crash ends its iteration, not the run
            proposal = Proposal(text=None, change="", rationale="",
                                failure=archive.redact(f"the proposer failed: {error!r}"))
        if proposal.text is None and proposal.exhausted:
            if not candidates and first == len(records):
                emit("exhausted", {"reason": proposal.failure or ""})
            break
        candidates.append(_classified(k, proposal, best_text, display, facts, checks, budget, evaluator))
        if proposal.text is not None:
            pending.append(_pending_entry(candidate_sha(proposal.text), {"change": proposal.change,
                                                                         "move": proposal.move}))
    return candidates


def _round_records(candidates: list["_Candidate"], out: list[dict[str, Any]], target, facts, *, first: int,
                   size: int, seconds: float) -> list:
    """The round's decided records as `IterationRecord`s: each with its evaluation, its diagnosis (made now for
    an evaluated candidate not yet diagnosed), the round and its share of the round's wall time."""
    typed = []
    for c, record in zip(candidates, out):
        if c.evaluation is not None and not c.diagnosed:
            diagnosis = _diagnose(target, c.evaluation, c.text, facts)
            c.diagnosis, c.diagnosed = diagnosis.to_dict() if diagnosis is not None else None, True
        record.update(evaluation=c.evaluation.to_dict() if c.evaluation is not None else None,
                      diagnosis=c.diagnosis, round={"first": first, "size": size}, seconds=seconds)
        text, transcript = record.pop("_text"), record.pop("_transcript")
        typed.append(replace(IterationRecord.from_dict(record, text=text), transcript=tuple(transcript)))
    return typed


def _keep(evaluations: "Evaluations", candidates: list["_Candidate"], accepted: list[bool]) -> None:
    """The round's evaluations as their records keep them: an accepted candidate's completed (it steers the
    next proposals: its stress scenarios and counterfactuals feed the diagnosis), a rejected one's quick.
    A completion made ahead on a worker (`_ahead`) is used or dropped; what was not made ahead is made now."""
    missing = []
    for c, kept in zip(candidates, accepted):
        if c.completed is not None and kept:
            c.evaluation = c.completed
        elif c.completed is not None:
            c.diagnosis, c.diagnosed = None, False  # the worker diagnosed the completion: not what is kept
        elif kept:
            missing.append(c)
            c.diagnosis, c.diagnosed = None, False
    for c, evaluation in zip(missing, evaluations.complete([(c.evaluation, c.text, c.display) for c in missing])):
        c.evaluation = evaluation


def _round_spent(rules: StopRules, records: list[dict[str, Any]], candidates: list["_Candidate"]) -> bool:
    """Whether the proposals so far, the round's ``candidates`` included, spent the token or cost budget."""
    so_far = records + [{"proposal": {"usage": dict(c.proposal.usage)}} for c in candidates]
    return proposer_budget(rules, tokens=_usage(so_far), cost=_cost(rules, so_far)) is not None


def _pending_entry(sha: str, proposal: dict[str, Any]) -> dict[str, Any]:
    return {"candidate_sha": sha, "change": proposal.get("change", ""), "move": proposal.get("move")}


class _RoundChecks:
    """`check_candidate` of a run's texts, each (text, display) checked once: the proposer checks its
    proposal with this function and the loop checks the proposal again (`_classified`) — the same text, name
    and folders moments apart. The loop's own check either way: a proposer cannot put a verdict here."""

    def __init__(self, files):
        self.files = files
        self.outcomes: dict[tuple[str, str], Any] = {}

    def __call__(self, text: str, display: str):
        key = (text, display)
        if key not in self.outcomes:
            self.outcomes[key] = check_candidate(text, display, files=self.files)
        return self.outcomes[key]


def _classified(k: int, proposal: Proposal, best_text: str, display: str, facts, checks: _RoundChecks,
                budget: "_Budget | None", evaluator: Evaluator) -> _Candidate:
    """The proposal checked and classified: a failure, a design or parameter change, and whether it is
    rejected unevaluated (a design change that makes the test easier, a candidate over the budget)."""
    if proposal.text is None:
        return _Candidate(k, proposal, best_text, display, kind="failed",
                          why=proposal.failure or "the proposer gave no file")
    c = _Candidate(k, proposal, proposal.text, display)
    outcome = checks(c.text, display)
    if not outcome.ok:
        c.kind, c.why = "failed", "the proposed file has errors:\n" + outcome.rendered
        return c
    parent, child = Candidate(best_text), Candidate(c.text)
    if parent.design() != child.design():
        c.kind = "design"
        reason, c.dropped = model_change(parent, child, facts)
        if reason is not None:
            c.why = f"rejected unevaluated: the design change makes the test easier ({reason})"
    if not c.why and budget is not None:
        c.why = budget.refusal(c.text, evaluator.settings.paths)
    return c


def _decided(c: _Candidate, best: dict[str, Any], last: dict[str, Any], parent: int,
             target: Target, *, superseded: str = "") -> dict[str, Any]:
    """The record of candidate ``c`` decided against ``best`` (the best record so far; ``last`` the latest
    decision), without its diagnosis yet; ``superseded``: why it cannot be accepted (`_superseded`)."""
    d_version, p_version = last["design_version"], last["parameter_version"]
    decision: dict[str, Any] = {"best_iteration": last["best_iteration"], "best_objective": last["best_objective"],
                                "best_target_met": last["best_target_met"], "design_version": d_version,
                                "parameter_version": p_version, "objective": None, "tradeoff": None}
    why, evaluation = c.why, c.evaluation
    if c.dropped:
        decision["dropped"] = c.dropped
    if c.stopped:
        decision["stopped"] = "budget_minutes"
    if evaluation is not None:
        decision["objective"] = evaluation.to_dict()["objective"]
        decision["tradeoff"] = _tradeoff(target, (best["evaluation"] or {}).get("base", {}).get("target_metrics", {}),
                                         evaluation.values)
        if not evaluation.ok:
            why = "the candidate cannot be simulated"
        elif superseded:
            why = superseded
        elif c.kind == "design":
            why = "design change: accepted as the new yardstick" + "".join(
                f"; it drops {d['component']} because the data reject it ({d['test']})" for d in c.dropped)
            d_version, p_version = d_version + 1, 1
            decision.update(best_iteration=c.iteration, best_objective=evaluation.objective,
                            best_target_met=evaluation.target_met, accepted=True)
        elif evaluation.objective < last["best_objective"] - 1e-12:
            why = f"objective {last['best_objective']:.4f} → {evaluation.objective:.4f}"
            p_version += 1
            decision.update(best_iteration=c.iteration, best_objective=evaluation.objective,
                            best_target_met=evaluation.target_met, accepted=True)
        else:
            why = f"no gain: objective {evaluation.objective:.4f} ≥ best {last['best_objective']:.4f}"
    decision.setdefault("accepted", False)
    decision.update(kind=c.kind, why=why, design_version=d_version, parameter_version=p_version,
                    version=f"v{d_version}.{p_version}")
    p = c.proposal
    return {"schema": "opl.loop.iteration/1", "iteration": c.iteration, "parent": parent,
            "candidate_sha": candidate_sha(p.text) if p.text is not None else None,
            "proposal": {"change": p.change, "rationale": p.rationale, "risk": p.risk, "move": p.move,
                         "failure": p.failure, "attempts": p.attempts, "usage": dict(p.usage)},
            "evaluation": evaluation.to_dict() if evaluation is not None else None, "diagnosis": None,
            "decision": decision, "seconds": 0.0,
            "_text": p.text if p.text is not None else c.text, "_transcript": list(p.transcript)}


def _finish(archive, evaluator, target, records, decision, facts, emit) -> LoopOutcome:
    from opl.closedloop.report import write_final_report

    best_k = records[-1]["decision"]["best_iteration"]
    best = records[best_k]
    holdout = None
    if best["evaluation"] and best["evaluation"]["ok"]:
        emit("holdout", {"iteration": best_k, "paths": evaluator.settings.holdout_paths,
                         "seed": evaluator.settings.effective_holdout_seed})
        text = archive.candidate(best_k)
        holdout = evaluator.holdout(text, display=f"{archive.root}/iter_{best_k}/candidate.opl",
                                    sizes=_holdout_sizes(best["evaluation"]),
                                    progress=lambda stage: emit("pass", {"stage": stage}))
    report, answer = write_final_report(archive, records, target, decision, holdout, facts)
    emit("done", {"stop": decision.to_dict(), "report": str(report)})
    return LoopOutcome(root=archive.root, stop=decision, best_iteration=best_k, iterations=len(records),
                       holdout=holdout, answer=answer, report=report, records=records)


def _holdout_sizes(evaluation: dict[str, Any]) -> tuple[float, ...]:
    """The best candidate's whole sweep plus a finer grid up to twice its evaluated size.

    Every size the candidate swept is re-measured (the hold-out must be able to contradict any number the
    search saw); the finer grid adds at most as many sizes as keep the total at 16, nearest the evaluated
    size first.
    """
    sizes = {float(s["size"]) for s in evaluation.get("sweep", [])}
    best = float(evaluation.get("size") or 1.0)
    top = max(max(sizes, default=best), 2 * best)
    step = max(1.0, round(top / 12))
    extra = {float(s) for s in range(int(step), int(top) + 1, int(step))} - sizes - {best}
    room = max(0, 16 - len(sizes | {best}))
    kept = sorted(extra, key=lambda s: (abs(s - best), s))[:room]
    return tuple(sorted(sizes | {best} | set(kept)))
