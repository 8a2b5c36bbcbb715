"""The evaluator: simulate a candidate on the run's fixed seeds and score it against the run's target.

Every candidate of a run is simulated with the same ``paths`` and ``seed`` (common random numbers: the
differences between candidates are the candidates', not the draws'), whatever its own experiment block
says. One evaluation is one `opl.simulation.run.prepare`d run of the candidate's checked text (nothing is written:
the archive keeps each iteration's candidate.opl) and three stages on its seed and paths:

1. **sweep** — the candidate's ``sizes`` (else ``[1, 2, 5, 10, 20]``) on one set of paths, without its
   scenarios. The *evaluated size*: when the target holds at several sizes, the lowest size of the longest
   unbroken run of them (the simulator's ``recommended_size`` rule); otherwise the whole-lot size, swept
   or between two swept sizes, where the distance (`opl.closedloop.objective`: it balances the return shortfall
   against the drawdown excess) interpolated linearly between neighbouring swept sizes is smallest (the
   smaller size on a tie); a size between swept ones is then measured exactly by the scenario pass, on
   the same paths, and added to the sweep marked ``interpolated``;
2. **scenarios** — the stress and sensitivity scenarios at the evaluated size: the cost scenarios as
   variants of one pass, each market scenario a pass; the base case at the evaluated size is the sweep's
   own replay (a variant does not depend on the others of its pass), not a pass again;
3. **counterfactuals** (tail attribution for the critic) — the base case at the evaluated size without
   the model's jumps (``no_jumps``) and with GARCH/GJR volatility replaced by constant volatility
   (``no_clustering``), each only when the model has that component.

The objective needs only the sweep and the sensitivities; a *quick* evaluation (``complete=False``) stops
there, and `Evaluator.complete` adds the stress scenarios and the counterfactuals to the candidates the
loop keeps (the ones whose diagnosis steers the next proposal), on the same seed and paths.

**Objective** = distance of the base case at the evaluated size + the largest distance among the
sensitivity scenarios (0 without sensitivities). ``target_met`` is ``objective == 0``: the target holds
and still holds under every sensitivity. Stress scenarios are reported, not part of the objective.

**Hold-out.** `Evaluator.holdout` re-measures the final candidate on fresh seeds (``holdout_seed``,
documented default ``seed + 1_000_003``) with more paths (``holdout_paths``) and a finer size grid, so
the verdict the loop reports is not measured on the paths it searched on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from opl.lang.fields import plus_terms
from opl.closedloop.candidate import Candidate, CandidateError
from opl.closedloop.objective import Target
from opl.runtime.engine.monthstore import MonthStore, sharing

__all__ = ["EvalSettings", "Evaluation", "Evaluator", "DEFAULT_SIZES", "HOLDOUT_SEED_OFFSET", "DEFAULT_PATHS",
           "DEFAULT_HOLDOUT_PATHS"]

DEFAULT_SIZES = (1.0, 2.0, 5.0, 10.0, 20.0)
#: Paths per candidate and of the hold-out (`opl loop --paths`, `--holdout-paths`): enough that the Monte Carlo
#: error of a candidate's median and drawdown p95 is small beside the differences the loop decides on.
DEFAULT_PATHS = 10_000
DEFAULT_HOLDOUT_PATHS = 50_000
HOLDOUT_SEED_OFFSET = 1_000_003
#: Calibration methods the simulator runs on the loop's data folder for each candidate.
DATA_CALIBRATIONS = ("implied", "hybrid")
#: How the simulator's note on `calibration historical` without --data begins (opl.simulation.run), and what a run
#: with data says instead.
NO_DATA_NOTE = "`calibration historical` without --data"
NO_DATA_NOTE_IN_A_RUN_WITH_DATA = (
    "`calibration historical`: the loop fitted the price model to the run's data once "
    "(calibration/calibration.md) and the critic writes that fit into the candidate; a model parameter the "
    "candidate does not write keeps the simulator's documented default")


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """How candidates are simulated; fixed for a run and recorded in every ``config.json``."""

    paths: int = DEFAULT_PATHS
    seed: int = 7
    holdout_paths: int = DEFAULT_HOLDOUT_PATHS
    holdout_seed: int | None = None  # default: seed + HOLDOUT_SEED_OFFSET
    counterfactuals: bool = True
    overrides: tuple[str, ...] = ()  # extra ``--set key=value`` for every simulation of the run

    @property
    def effective_holdout_seed(self) -> int:
        return self.seed + HOLDOUT_SEED_OFFSET if self.holdout_seed is None else self.holdout_seed

    def to_dict(self) -> dict:
        return {"paths": self.paths, "seed": self.seed, "holdout_paths": self.holdout_paths,
                "holdout_seed": self.effective_holdout_seed, "counterfactuals": self.counterfactuals,
                "overrides": list(self.overrides)}


@dataclass(kw_only=True)
class Evaluation:
    """The evaluation of one candidate (module docstring); ``ok`` False carries ``error`` instead."""

    ok: bool
    objective: float = math.inf
    target_met: bool = False
    error: str | None = None
    size: float | None = None
    sweep: list[dict[str, Any]] = field(default_factory=list)
    recommended_size: dict[str, float] | None = None
    base: dict[str, Any] = field(default_factory=dict)
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    counterfactuals: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = True  # False: no stress scenarios and no counterfactuals (Evaluator.complete adds them)
    run: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    strategy: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    simulation: Any = field(default=None, repr=False)  # the scenario pass's SimulationResult (hold-out plots)

    @property
    def values(self) -> dict[str, float]:
        """Target metrics of the base case at the evaluated size (percent)."""
        return self.base.get("target_metrics", {})

    def to_dict(self) -> dict[str, Any]:
        from opl.runtime.results.records import json_safe

        return json_safe({"ok": self.ok, "error": self.error,
                       "objective": self.objective if math.isfinite(self.objective) else None,
                       "target_met": self.target_met, "size": self.size, "recommended_size": self.recommended_size,
                       "sweep": self.sweep, "base": self.base, "scenarios": self.scenarios,
                       "counterfactuals": self.counterfactuals, "complete": self.complete, "run": self.run, "model": self.model,
                       "strategy": self.strategy, "notes": self.notes, "seconds": round(self.seconds, 3)})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evaluation":
        objective = data.get("objective")
        return cls(ok=data["ok"], objective=math.inf if objective is None else objective,
                   target_met=data.get("target_met", False), error=data.get("error"), size=data.get("size"),
                   sweep=data.get("sweep", []), recommended_size=data.get("recommended_size"),
                   base=data.get("base", {}), scenarios=data.get("scenarios", []),
                   counterfactuals=data.get("counterfactuals", {}), complete=data.get("complete", True),
                   run=data.get("run", {}),
                   model=data.get("model", {}), strategy=data.get("strategy", {}), notes=data.get("notes", []),
                   seconds=data.get("seconds", 0.0))

    def summary(self, target: Target | None = None) -> str:
        """One line: objective, size and the target metrics (with their clauses when ``target`` is given)."""
        if not self.ok:
            first = (self.error or "").strip().splitlines()
            return f"not evaluated: {first[0] if first else 'error'}"
        v = self.values
        parts = [f"{k.replace('_', ' ')} {v[k]:.2f}%" for k in
                 (c.metric for c in target.clauses) if k in v] if target else \
            [f"median {v.get('median_monthly_return', float('nan')):+.2f}%",
             f"loss {v.get('loss_probability', float('nan')):.1f}%",
             f"dd p95 {v.get('max_drawdown_p95', float('nan')):.2f}%"]
        verdict = "target met" if self.target_met else f"objective {self.objective:.3f}"
        return f"{verdict} at size {self.size:g}: " + ", ".join(parts)


class Evaluator:
    """Evaluate candidate texts for one run (fixed target and settings)."""

    def __init__(self, target: Target, settings: EvalSettings, *, data: str | Path | None = None):
        self.target = target
        self.settings = settings
        # The run's data folder: candidates whose `calibration` is `implied` or `hybrid` are calibrated on it
        # by the simulator itself (a `historical` fit is written into the candidate by the critic instead).
        self.data = data
        # Where the `calibration file` a candidate names may be (`opl.lang.fileaccess`; the run and data folders).
        self.files = None
        # A `time.monotonic` time at which every simulation still running stops with
        # `opl.runtime.engine.deadline.DeadlinePassed` (the loop's end of --minutes); None: no limit.
        self.deadline: float | None = None
        # The run's simulated months and their marks, shared by the candidates (they use the same seed and
        # paths): a candidate that keeps the model, or the model and the legs, reads them instead of making them
        # (and a completion's scenario marks, kept ahead for the next candidate: `MonthStore.ahead`).
        self.months = MonthStore(ahead=True)

    def evaluate(self, text: str, *, display: str = "candidate.opl", complete: bool = True,
                 progress: Callable[[str], None] | None = None) -> Evaluation:
        """Evaluate ``text`` on the run's seed and paths; never raises for a bad candidate (it raises
        `opl.runtime.engine.deadline.DeadlinePassed` when `deadline` passes first).

        ``complete=False`` runs only what the objective needs (the sweep and the sensitivities); `complete`
        adds the stress scenarios and the counterfactuals later, for the candidates worth diagnosing.
        """
        return self._evaluate(text, display=display, paths=self.settings.paths, seed=self.settings.seed,
                              sizes=None, complete=complete, progress=progress)

    def complete(self, evaluation: Evaluation, text: str, *, display: str = "candidate.opl",
                 progress: Callable[[str], None] | None = None) -> Evaluation:
        """Add the stress scenarios and the counterfactuals to an evaluation made with ``complete=False``."""
        if evaluation.complete or not evaluation.ok:
            return evaluation
        from opl.runtime.engine.deadline import DeadlinePassed, until
        from opl.simulation.run import SettingsError, SimulationInputError

        started = time.perf_counter()
        note = progress or (lambda stage: None)
        candidate = Candidate(text)
        size = evaluation.size
        self.months.begin()
        with until(self.deadline), sharing(self.months):
            try:
                stress = None
                if candidate.statement("stress", "experiment") is not None:
                    note("stress")
                    # The stresses alone: the base case at this size is the evaluation's already.
                    prepared = self._prepare(candidate.without("sensitivity", "experiment"), display,
                                             paths=self.settings.paths, seed=self.settings.seed,
                                             extra=_at(size, evaluation.run["capital"]))
                    stress = prepared.scenario_jobs(size, kinds=("stress",))
                counterfactuals = self._counterfactual_runs(candidate, display, size, evaluation.run["capital"],
                                                            paths=self.settings.paths, seed=self.settings.seed)
                finished, values = self._side_by_side(stress, counterfactuals, note)
                evaluation.scenarios = self._scenarios(finished[0] if finished else [], size) + [s for s in evaluation.scenarios
                                                                        if s["kind"] != "stress"]
                evaluation.counterfactuals = values
            except (SimulationInputError, SettingsError) as error:
                evaluation.notes.append(f"stress scenarios or counterfactuals could not be run: {error}")
            except DeadlinePassed:
                # The objective is measured; what is missing is the critic's material, said so.
                evaluation.notes.append("stress scenarios or counterfactuals not run: the run's time budget "
                                        "(--minutes) ended during them")
                evaluation.seconds += time.perf_counter() - started
                return evaluation
        evaluation.complete = True
        evaluation.seconds += time.perf_counter() - started
        return evaluation

    def holdout(self, text: str, *, display: str = "candidate.opl", sizes: tuple[float, ...] | None = None,
                progress: Callable[[str], None] | None = None) -> Evaluation:
        """Re-measure ``text`` on the hold-out seed with ``holdout_paths``, sweeping ``sizes`` when given.

        The store of the candidates' months is emptied first: the hold-out's fresh seed reads none of them,
        and its forked workers would inherit them — their memory too, which the C allocator keeps after numpy
        frees it unless told to give it back (`_give_back`).
        """
        self.months = MonthStore(self.months.limit)
        _give_back()
        return self._evaluate(text, display=display, paths=self.settings.holdout_paths,
                              seed=self.settings.effective_holdout_seed, sizes=sizes, complete=True,
                              progress=progress)

    # ------------------------------------------------------------------ passes

    def _evaluate(self, text, *, display, paths, seed, sizes, complete, progress) -> Evaluation:
        from opl.runtime.engine.deadline import until
        from opl.simulation.run import SettingsError, SimulationInputError

        started = time.perf_counter()
        note = progress or (lambda stage: None)
        try:
            candidate = Candidate(text)
        except CandidateError as error:
            return Evaluation(ok=False, error=error.rendered or str(error), seconds=time.perf_counter() - started)
        self.months.begin()  # what the store keeps ahead spares what this evaluation and the one before read
        with until(self.deadline), sharing(self.months):
            try:
                evaluation = self._passes(candidate, display, paths=paths, seed=seed, sizes=sizes,
                                          complete=complete, note=note)
            except SimulationInputError as error:  # located in the candidate as the archive keeps it
                evaluation = Evaluation(ok=False, error=error.render())
            except SettingsError as error:
                where = f"setting `{error.key}`: " if error.key else ""
                evaluation = Evaluation(ok=False, error=f"{display}: {where}{error}")
        if evaluation.simulation is not None:
            evaluation.simulation.notes = self._notes(evaluation.simulation.notes)
        evaluation.seconds = time.perf_counter() - started
        return evaluation

    def _run(self, candidate: Candidate, display: str, *, paths, seed, extra=()):
        """The candidate's text checked in memory as ``display``, and the `opl.simulation.run.RunSettings` of a pass
        on the run's settings (its replays share one seed; the run's data only for the calibrations that use
        them)."""
        from opl.lang.frontend import check_text
        from opl.simulation.run import RunSettings

        method = (candidate.value("calibration", "experiment") or "").strip()
        data = self.data if self.data is not None and method in DATA_CALIBRATIONS else None
        return check_text(candidate.text, display), RunSettings(
            paths=paths, seed=seed, overrides=(*self.settings.overrides, *extra), data=data, files=self.files)

    def _prepare(self, candidate: Candidate, display: str, *, paths, seed, extra=()):
        """`opl.simulation.run.prepare` of ``candidate`` (nothing written)."""
        from opl.simulation.run import prepare

        return prepare(*self._run(candidate, display, paths=paths, seed=seed, extra=extra))

    def _scenarios(self, results, size: float) -> list[dict[str, Any]]:
        """The scenario rows of an evaluation from ``[(plan, RunMetrics)]`` at ``size``."""
        out = []
        for plan, metrics in results:
            values = metrics.target_values()
            out.append({"name": plan.name, "kind": plan.kind, "scenario": plan.text, "size": size,
                        "definition": plan.definition, "holds": self.target.holds(values),
                        "distance": self.target.distance(values), "values": values,
                        "errors": metrics.standard_errors, "attribution": metrics.attribution["percent_of_capital"]})
        return out

    def _counterfactual_runs(self, candidate: Candidate, display: str, size: float, capital: float, *, paths,
                             seed) -> list[tuple[str, str, Any]]:
        """(name, model line, `opl.simulation.run.Prepared` run at ``size``) of each counterfactual."""
        if not self.settings.counterfactuals:
            return []
        bare = candidate.without("stress", "experiment").without("sensitivity", "experiment")
        return [(name, model, self._prepare(bare.with_field("model", model, block="experiment"), display,
                                            paths=paths, seed=seed, extra=_at(size, capital)))
                for name, model in _counterfactual_models(candidate).items()]

    def _side_by_side(self, scenarios, counterfactuals, note, meanwhile=None) -> tuple[tuple | None,
                                                                                         dict[str, dict[str, Any]]]:
        """The scenario jobs (`opl.simulation.run.ScenarioJobs`, or None) and the counterfactuals' runs
        replayed together (`opl.runtime.engine.replay.replay_many`: side by side in a forked pool or on a
        cluster); returns what `opl.simulation.run.ScenarioJobs.finish` gives (None without scenario jobs)
        and the counterfactuals' entries. ``meanwhile``: the caller's work done while the workers replay.

        Each job's metrics are computed as soon as it is complete, while the workers replay the others
        (`replay_many`'s ``finished``), so only the last jobs' wait for the pool's end."""
        from opl.runtime.engine.replay import replay_many

        for name, _, _ in counterfactuals:
            note(name)
        jobs = (scenarios.jobs if scenarios is not None else []) + [run.sweep_job() for _, _, run in counterfactuals]
        split = len(jobs) - len(counterfactuals)
        values: dict[int, dict[str, float]] = {}

        def measured(complete: list) -> None:
            if scenarios is not None and (mine := [(i, result) for i, result in complete if i < split]):
                scenarios.measured(mine)
            for i, result in complete:
                if i >= split:
                    values[i] = counterfactuals[i - split][2].swept(result).base_metrics().target_values()

        passes = replay_many(jobs, meanwhile=meanwhile, finished=measured)
        finished = scenarios.finish(passes[:split]) if scenarios is not None else None
        return finished, {name: {"model": model, "values": values[split + k]}
                          for k, (name, model, _) in enumerate(counterfactuals)}

    def _passes(self, candidate: Candidate, display: str, *, paths, seed, sizes, complete, note) -> Evaluation:
        grid = tuple(sorted(set(sizes or _sizes(candidate))))
        scenario_text = candidate if complete else candidate.without("stress", "experiment")
        kinds = ("stress", "sensitivity") if complete else ("sensitivity",)
        note("sweep")
        # One prepared run for the sweep and the scenarios: the scenarios share the sweep's paths, and the base
        # case at a swept size is the sweep's own replay (a variant does not depend on the others of its pass).
        prepared = self._prepare(scenario_text, display, paths=paths, seed=seed,
                                 extra=[f"experiment.sizes=[{','.join(f'{s:g}' for s in grid)}]",
                                        f"size={grid[0]:g}"])
        # What the scenario pass will make before its workers fork is made while the sweep's workers replay.
        # The sizes' standard errors (most of their metrics' work), which the size pick does not read, wait for
        # the scenario pass's workers (`_scenario_pass`).
        sweep = prepared.sweep(errors=False, meanwhile=lambda: self._ahead(
            candidate, display, prepared, kinds=kinds, complete=complete, paths=paths, seed=seed))
        sweep_run = prepared.result(sweep, [], size=grid[0], reason="")
        rows = [self._row(size, metrics) for size, metrics, _ in sweep.rows]
        # Returns are P&L / capital; without `capital` in the file the simulator derives it from the base
        # size, so every pass is measured against the sweep's capital.
        capital = sweep_run.run["capital"]
        size, recommended = _pick_size(rows, self.target)
        if recommended is None:
            size = _interpolated_size(rows, self.target) or size
        swept = any(r["size"] == size for r in rows)
        scenarios, counterfactuals, simulation = self._scenario_pass(
            candidate, display, prepared, sweep, rows, size, capital, paths=paths, seed=seed, kinds=kinds,
            complete=complete, measure=sizes is not None or not swept, note=note)
        if not swept:  # measured by the scenario pass, on the same paths as the sweep
            rows.append({**self._row(size, simulation.base), "interpolated": True})
            rows.sort(key=lambda r: r["size"])
        best = next(r for r in rows if r["size"] == size)
        sensitivity = [s["distance"] for s in scenarios if s["kind"] == "sensitivity"]
        objective = best["distance"] + (max(sensitivity) if sensitivity else 0.0)
        return Evaluation(
            ok=True, objective=objective, target_met=objective == 0.0, size=size, complete=complete,
            sweep=[{k: v for k, v in r.items() if k != "metrics"} for r in rows], recommended_size=recommended,
            base=best["metrics"].to_dict(), scenarios=scenarios, counterfactuals=counterfactuals,
            run={**sweep_run.run, "size": size, "sizes": list(grid)}, model=sweep_run.model,
            strategy=sweep_run.strategy, notes=self._notes(sweep_run.notes), simulation=simulation)

    def _ahead(self, candidate, display, prepared, *, kinds, complete, paths, seed) -> None:
        """Make the scenario pass's months and marks now (`opl.runtime.engine.replay.made_ahead`: called while
        the sweep's workers replay), not in this process alone once the sweep is in.

        They depend on the model, the seed and the legs, not on the size the sweep will pick, so the jobs
        planned at the sweep's first size name the same months and marks as the pass at the picked size (the
        counterfactuals' runs are prepared again then, at that size). Only for a pass of one chunk's paths: the
        store keeps no longer runs' months (`opl.runtime.engine.passes._months_made_here`).

        A quick evaluation under a store that keeps marks ahead (`MonthStore.ahead`: `opl loop`'s candidates)
        also plans its completion's jobs — the stress scenarios and the counterfactuals, which `complete` replays
        if the loop keeps the candidate — ahead of its sensitivities' (whose marks then come first where room is
        short): a candidate that changes the model or the legs is usually kept, and the completion then finds
        them made instead of making them alone before its pool forks."""
        from opl.runtime.engine.passes import pass_plan
        from opl.runtime.engine.replay import made_ahead
        from opl.simulation.run import SettingsError, SimulationInputError

        if len(pass_plan(prepared.run, 1)) != 1:
            return
        size, capital = prepared.sizes[0], prepared.run.capital
        jobs = prepared.scenario_jobs(size, kinds=kinds).jobs if any(p.kind in kinds for p in prepared.plans) else []
        later = []
        try:
            if not complete and self.months.ahead and candidate.statement("stress", "experiment") is not None:
                stressed = self._prepare(candidate.without("sensitivity", "experiment"), display, paths=paths,
                                         seed=seed, extra=_at(size, capital))
                later += stressed.scenario_jobs(size, kinds=("stress",)).jobs
            if complete or self.months.ahead:
                later += [run.sweep_job() for _, _, run in self._counterfactual_runs(
                    candidate, display, size, capital, paths=paths, seed=seed)]
        except (SimulationInputError, SettingsError):
            pass  # said where the pass that needs them prepares them
        made_ahead(jobs + later if complete else later + jobs)

    def _row(self, size: float, metrics) -> dict[str, Any]:
        """A size's row of the sweep: its distance to the target, whether it holds, its values and errors."""
        values = metrics.target_values()
        return {"size": size, "distance": self.target.distance(values), "holds": self.target.holds(values),
                "values": values, "errors": metrics.standard_errors, "metrics": metrics}

    def _scenario_pass(self, candidate, display, prepared, sweep, rows, size, capital, *, paths, seed, kinds,
                       complete, measure, note) -> tuple[list, dict, Any]:
        """The scenarios (of ``kinds``) and, ``complete``, the counterfactuals at ``size``, replayed side by side;
        returns the scenario rows, the counterfactuals' entries and the simulation at ``size`` (None when nothing
        was replayed). ``measure``: replay the base case too (a size the sweep did not measure)."""
        planned = None
        if any(p.kind in kinds for p in prepared.plans) or measure:
            note("scenarios" if complete else "sensitivities")
            planned = prepared.scenario_jobs(size, sweep=sweep, kinds=kinds)
        # The scenarios and the counterfactuals are independent replays: side by side.
        counterfactuals = self._counterfactual_runs(candidate, display, size, capital, paths=paths, seed=seed) \
            if complete else []
        finished, counterfactuals = self._side_by_side(planned, counterfactuals, note, meanwhile=sweep.add_errors)
        sweep.add_errors()  # (when no worker replayed anything)
        for row, (_, metrics, _) in zip(rows, sweep.rows):  # the swept rows, in the sweep's order
            row["metrics"], row["errors"] = metrics, metrics.standard_errors
        if finished is None:
            return [], counterfactuals, None
        results, base = finished
        # The base case at a swept size is the sweep's own replay, whose metrics the sweep has.
        known = [next(r["metrics"] for r in rows if r["size"] == size)] if base[0] is sweep.replayed else None
        at = prepared.at((size,), (base[0], (base[1],)), metrics=known)
        simulation = prepared.result(at, results, size=size, reason=at.scenario_size()[1])
        return self._scenarios(results, size), counterfactuals, simulation

    def _notes(self, notes: list[str]) -> list[str]:
        """The simulator's notes, with its no-data note replaced when the run has data (the loop, not the
        simulator, fits `calibration historical` to them: the critic writes the fit into the candidate)."""
        if self.data is None:
            return list(notes)
        return [NO_DATA_NOTE_IN_A_RUN_WITH_DATA if n.startswith(NO_DATA_NOTE) else n for n in notes]


def _give_back() -> None:
    """Return the memory freed so far to the system (glibc's ``malloc_trim``; elsewhere nothing is done).

    The candidates' month store is most of this process's memory (up to `MonthStore.limit`): its arrays of a
    few MB each sit in the allocator's heap once it has raised its threshold for mapping blocks of their own,
    and that heap is not returned when they are freed. Kept, it was the hold-out's memory on top of its own,
    in this process and in every worker it forks (the run's largest resident size was the hold-out's)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)


def _at(size: float, capital: float) -> list[str]:
    """Settings of a single-size pass at ``size`` against the sweep's ``capital``."""
    return [f"experiment.sizes=[{size:g}]", f"size={size:g}", f"capital={capital!r}"]


def _sizes(candidate: Candidate) -> tuple[float, ...]:
    from opl.closedloop.candidate import checked

    document = checked(candidate.text).document  # the loop checked this text when it classified it: kept
    exp = document.experiment if document is not None else None
    return tuple(exp.sizes) if exp is not None and exp.sizes else DEFAULT_SIZES


def _interpolated_size(rows: list[dict], target: Target) -> float | None:
    """The whole-lot size between the swept ones where the linearly interpolated distance is smallest.

    Returns and drawdowns are close to linear in size between neighbouring swept sizes, so the balanced
    size of a coarse sweep (``[1, 2, 5, 10, 20]``) is found without sweeping every size; the scenario pass
    then measures it exactly. None when it is a swept size.
    """
    ordered = sorted(rows, key=lambda r: r["size"])
    best, best_key = None, None
    for left, right in zip(ordered, ordered[1:]):
        a, b = left["size"], right["size"]
        for size in range(int(math.ceil(a)), int(math.floor(b)) + 1):
            w = (size - a) / (b - a)
            values = {m: (1 - w) * left["values"][m] + w * right["values"][m]
                      for m in left["values"] if left["values"][m] is not None and right["values"].get(m) is not None}
            key = (target.distance(values), size)
            if best_key is None or key < best_key:
                best, best_key = float(size), key
    if best is None or any(r["size"] == best for r in rows):
        return None
    return best


def _pick_size(rows: list[dict], target: Target) -> tuple[float, dict | None]:
    """The evaluated size and the recommended range (module docstring)."""
    runs, current = [], []
    for row in rows:
        if row["holds"]:
            current.append(row["size"])
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    if runs:
        best = max(runs, key=len)
        return best[0], {"low": best[0], "high": best[-1]}
    return min(rows, key=lambda r: (r["distance"], r["size"]))["size"], None


def _counterfactual_models(candidate: Candidate) -> dict[str, str]:
    """Model lines without jumps and without volatility clustering (component texts kept as written)."""
    model = candidate.statement("model", "experiment")
    if model is None or model.value is None:
        return {}
    terms = plus_terms(model.value)
    texts = [candidate.source(t) for t in terms]
    names = [t.id if hasattr(t, "id") else getattr(t, "func", "") for t in terms]
    out = {}
    if "jump" in names:
        kept = [t for t, n in zip(texts, names) if n != "jump"]
        out["no_jumps"] = " + ".join(kept) if kept else "gbm"
    if "garch" in names or "gjr" in names:
        kept = [t for t, n in zip(texts, names) if n not in ("garch", "gjr", "gbm")]
        out["no_clustering"] = " + ".join(["gbm"] + kept)
    return out
