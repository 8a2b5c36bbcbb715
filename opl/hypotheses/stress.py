"""The fourth assumption of the plan: the strategy meets its target under the stress scenarios.

:func:`stress_test` runs the strategy file with :func:`opl.simulation.run.simulate` — the
base case and every ``stress`` and ``sensitivity`` scenario of its experiment block, on
the same seed, at the size the simulator evaluates scenarios at (the low end of the
recommended size, else the base size) — and states, for each scenario, whether the
file's ``target`` holds, which of its clauses fail, and how the key figures moved from
the base case at that size. When the file's calibration is ``historical`` (the default)
and a calibration is given, the price model is the one fitted to the same data the other
assumption tests use.

**Verdict** (over the ``stress`` scenarios only; sensitivities are reported beside them):
``holds`` when the target holds in every stress scenario, ``fails`` when it fails in any,
``no target`` when the file states none, ``no stress`` when it lists no stress scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["StressReport", "ScenarioVerdict", "stress_test"]

_FIGURES = (("median_monthly_return", "median monthly return", "{:+.2f}%"),
            ("loss_probability", "loss probability", "{:.1f}%"),
            ("max_drawdown_p95", "p95 drawdown", "{:.2f}%"),
            ("forced_liquidation_probability", "forced liquidation", "{:.2f}%"))


@dataclass
class ScenarioVerdict:
    """One scenario against the target, with the base case at the same size."""

    name: str
    kind: str
    text: str
    size: float
    holds: bool | None
    failing: list[str]
    values: dict[str, float]
    base: dict[str, float]
    definition: str = ""  # exactly what the scenario does (opl.simulation.scenarios)

    @property
    def verdict(self) -> str:
        return "no target" if self.holds is None else "holds" if self.holds else "fails"

    @property
    def plain(self) -> str:
        moves = ", ".join(f"{label} {fmt.format(self.values[key])} (base {fmt.format(self.base[key])})"
                          for key, label, fmt in _FIGURES)
        if self.holds is None:
            return f"Under `{self.text}` at size {self.size:g}: {moves}."
        head = "the target holds" if self.holds else "the target fails"
        tail = f"; failing: `{'`, `'.join(self.failing)}`" if self.failing else ""
        return f"Under `{self.text}` at size {self.size:g} {head}: {moves}{tail}."

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "scenario": self.text, "size": self.size, "holds": self.holds,
                "verdict": self.verdict, "failing": self.failing, "values": self.values, "base": self.base,
                "plain": self.plain, "definition": self.definition}


@dataclass
class StressReport:
    """The strategy's stress and sensitivity scenarios with a verdict."""

    file: str
    target: str | None
    verdict: str
    scenarios: list[ScenarioVerdict]
    run: dict
    calibration: dict | None
    notes: list[str] = field(default_factory=list)

    @property
    def plain(self) -> str:
        stress = [s for s in self.scenarios if s.kind == "stress"]
        if self.verdict == "no stress":
            return f"{self.file} lists no stress scenario: nothing to test."
        if self.verdict == "no target":
            return f"{self.file} states no target, so no scenario can pass or fail; the figures are reported."
        failed = [s for s in stress if s.holds is False]
        if not failed:
            return (f"The target `{self.target}` holds in all {len(stress)} stress scenarios "
                    f"({', '.join(f'`{s.text}`' for s in stress)}).")
        return (f"The target `{self.target}` fails in {len(failed)} of {len(stress)} stress scenarios: "
                + "; ".join(f"`{s.text}` (`{'`, `'.join(s.failing)}`)" for s in failed) + ".")

    @property
    def implication(self) -> str:
        if self.verdict == "fails":
            return ("the strategy does not survive the stresses its own file names at this size: reduce the size, "
                    "widen the strikes, or add protection, and re-run (opl simulate shows the size sweep)")
        if self.verdict == "holds":
            return ("the target survives every stress scenario the file names; the scenarios are the file's, so "
                    "a stress it does not list is not covered")
        return "no verdict on the target under stress"

    def to_dict(self) -> dict:
        return {"status": "run", "file": self.file, "target": self.target, "verdict": self.verdict,
                "plain": self.plain, "implication": self.implication, "run": self.run,
                "calibration": self.calibration, "scenarios": [s.to_dict() for s in self.scenarios],
                "notes": self.notes}

    def summary(self) -> str:
        lines = [f"Strategy under stress ({self.file}, {self.run['paths']:,} paths x {self.run['horizon_months']} "
                 f"months, seed {self.run['seed']}): {self.verdict}", f"  {self.plain}"]
        for s in self.scenarios:
            lines += [f"  [{s.kind}] {s.plain}"] + ([f"      `{s.text}`: {s.definition}"] if s.definition else [])
        return "\n".join(lines)


def _values(metrics) -> dict[str, float]:
    values = metrics.target_values()
    return {key: float(values[key]) for key, _, _ in _FIGURES}


def stress_test(path, *, paths: int | None = None, seed: int | None = None, overrides=(),
                calibration=None) -> StressReport:
    """Run the file's scenarios with the simulator and judge each against its target.

    Parameters
    ----------
    path
        The ``.opl`` strategy file, or the front end's result for it (`opl.lang.frontend.CheckResult`).
    paths, seed, overrides
        As for :func:`opl.simulation.run.simulate_file`.
    calibration
        An :class:`opl.calibration.CalibrationResult` or a data directory, used when the
        file's calibration is ``historical``.

    Raises
    ------
    opl.simulation.run.SimulationInputError, opl.simulation.run.SettingsError, OSError
        As :func:`opl.simulation.run.simulate_file` raises them.
    """
    from opl.lang.frontend import check_path
    from opl.simulation.rules import target_verdict
    from opl.simulation.run import RunSettings, simulate, source_text, target_clauses

    checked = path if hasattr(path, "report") else check_path(path)
    path = checked.report.path
    result = simulate(checked, RunSettings(paths=paths, seed=seed, overrides=tuple(overrides), data=calibration))
    exp = checked.document.experiment
    target = exp.target if exp is not None else None
    clauses = target_clauses(target, checked.report) if target is not None else []
    by_size = {size: metrics for size, metrics, _ in result.sizes}
    scenarios = []
    for s in result.scenarios:
        values = s.metrics.target_values()
        failing = [source_text(checked.report, c.span) for c in clauses if target_verdict(c, values) is False]
        base = by_size.get(s.size, result.base)
        scenarios.append(ScenarioVerdict(name=s.name, kind=s.kind, text=s.text, size=s.size, holds=s.holds,
                                         failing=failing, values=_values(s.metrics), base=_values(base),
                                         definition=s.definition))
    stress = [s for s in scenarios if s.kind == "stress"]
    if not stress:
        verdict = "no stress"
    elif target is None:
        verdict = "no target"
    else:
        verdict = "fails" if any(s.holds is False for s in stress) else "holds"
    run = {k: result.run[k] for k in ("paths", "seed", "horizon_months", "size", "capital", "currency")}
    run["components"] = list(result.model["components"])
    return StressReport(file=str(path), target=result.target, verdict=verdict, scenarios=scenarios, run=run,
                        calibration=result.model.get("calibration"), notes=list(result.notes))
