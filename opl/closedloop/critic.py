"""The critic: why a candidate misses its target, as structured fields a proposer can act on.

`diagnose` reads an `Evaluation` (and the facts measured on data, when the run has data) and returns a
`Diagnosis`:

``failures``       each failing target clause at the evaluated size: value, threshold, shortfall;
``scenarios``      each stress/sensitivity scenario that fails, with its failing clauses;
``structure``      what size cannot fix: the loss probability over the swept sizes (sizing scales
                   returns and drawdowns together, not the share of losing months) and the drawdown
                   per unit of median return against the target's ratio;
``tail``           tail-loss attribution — ``jumps`` and ``volatility_clustering`` (the CVaR95 and drawdown
                   p95 removed when the model runs without jumps / without GARCH clustering, the
                   evaluator's counterfactuals), ``hedging`` (hedge P&L and trading costs per month),
                   ``margin`` (margin-call and forced-liquidation probabilities, peak margin),
                   ``assignment_delivery`` (shares and P&L), ``early_exits`` (months closed early);
``defects``        design defects of the experiment, each with the fix when there is one (e.g.
                   ``no_clustering``: "GBM understates the tails: use garch + jump");
``directions``     the suggested directions of change, most promising first, each a `Move` with the
                   reason read off the numbers above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from opl.closedloop.candidate import Candidate, checked
from opl.closedloop.evaluate import NO_DATA_NOTE, Evaluation
from opl.closedloop.objective import Target

__all__ = ["Diagnosis", "Move", "diagnose", "declared_jumps_test", "MOVES", "DEFAULT_STRESS"]

Move = Literal["loosen_exit", "widen_strikes", "narrow_strikes", "add_wings", "widen_wings", "drop_wings",
               "raise_hedge_band", "lower_hedge_band", "hedge_less_often", "keep_more", "keep_less",
               "add_stop_loss", "tighten_stop_loss", "extend_sizes", "refine_sizes"]
MOVES: tuple[str, ...] = Move.__args__  # type: ignore[attr-defined]

DEFAULT_STRESS = "[ vol_up(+50%), gap(-8%), slippage(x3), sr_shift(-3%) ]"

# Thresholds of the rules below, in the metrics' units (percent of months, shares).
EARLY_EXIT_SHARE = 25.0      # months closed early by a trigger: above it, the exit is suspected
TAIL_SHARE = 0.2             # a component removing >= 20% of CVaR95 is a main tail driver
COSTS_OF_PREMIUM = 0.3       # fees + slippage above 30% of the premium: trading too much


@dataclass(kw_only=True)
class Diagnosis:
    """The critic's structured verdict on one evaluated candidate (module docstring)."""

    ok: bool
    target_met: bool
    objective: float | None
    size: float | None
    error: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    structure: dict[str, Any] = field(default_factory=dict)
    tail: dict[str, Any] = field(default_factory=dict)
    defects: list[dict[str, Any]] = field(default_factory=list)
    directions: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from opl.runtime.results.records import json_safe

        return json_safe({"ok": self.ok, "target_met": self.target_met, "objective": self.objective,
                       "size": self.size, "error": self.error, "failures": self.failures,
                       "scenarios": self.scenarios, "structure": self.structure, "tail": self.tail,
                       "defects": self.defects, "directions": self.directions})

    def summary(self) -> str:
        """Markdown bullet points, for ``summary.md`` and people."""
        if not self.ok:
            return "- the candidate could not be evaluated:\n\n```\n" + (self.error or "").rstrip() + "\n```"
        lines = []
        if self.target_met:
            lines.append(f"- the target holds at size {self.size:g}, and under every sensitivity")
        for f in self.failures:
            lines.append(f"- `{f['clause']}` fails at size {self.size:g}: {f['value']:.2f} (off by {f['shortfall']:.2f})")
        for s in self.scenarios:
            clauses = ", ".join(f"`{f['clause']}` {f['value']:.2f}" for f in s["failures"])
            lines.append(f"- {s['kind']} `{s['scenario']}` fails: {clauses}")
        st = self.structure
        if st.get("loss_probability_range"):
            lo, hi = st["loss_probability_range"]
            lines.append(f"- loss probability {lo:.1f}–{hi:.1f}% across the swept sizes: size does not change it")
        if st.get("drawdown_per_return") is not None:
            lines.append(f"- drawdown p95 is {st['drawdown_per_return']:.1f}× the median monthly return; the target "
                         f"allows {st['allowed_drawdown_per_return']:.1f}×")
        for name, t in self.tail.items():
            if t.get("text"):
                lines.append(f"- {name.replace('_', ' ')}: {t['text']}")
        for d in self.defects:
            fix = f" → `{d['fix']['setting']} {d['fix']['value']}`" if d.get("fix") else ""
            lines.append(f"- design: {d['message']}{fix}")
        for d in self.directions:
            lines.append(f"- try `{d['move']}`: {d['why']}")
        return "\n".join(lines)


def diagnose(evaluation: Evaluation, target: Target, candidate: Candidate, *,
             facts: dict[str, Any] | None = None) -> Diagnosis:
    """Diagnose ``evaluation`` of ``candidate`` against ``target``; ``facts`` are the run's data findings
    (``{"assumptions": AssumptionReport.to_dict(), "calibration": {...}}``, either may be absent)."""
    if not evaluation.ok:
        return Diagnosis(ok=False, target_met=False, objective=None, size=None, error=evaluation.error)
    values = evaluation.values
    failures = target.failures(values)
    scenarios = [{"scenario": s["scenario"], "kind": s["kind"], "failures": target.failures(s["values"])}
                 for s in evaluation.scenarios if not s["holds"]]
    structure = _structure(evaluation, target)
    tail = _tail(evaluation)
    defects = _defects(evaluation, candidate, facts or {})
    directions = _directions(evaluation, target, candidate, failures, structure, tail, scenarios)
    return Diagnosis(ok=True, target_met=evaluation.target_met, objective=evaluation.objective,
                     size=evaluation.size, failures=failures, scenarios=scenarios, structure=structure, tail=tail,
                     defects=defects, directions=directions)


def _clause(target: Target, metric: str):
    return next((c for c in target.clauses if c.metric == metric), None)


def _structure(evaluation: Evaluation, target: Target) -> dict[str, Any]:
    sweep = evaluation.sweep
    losses = [r["values"]["loss_probability"] for r in sweep]
    out: dict[str, Any] = {"sizes": [r["size"] for r in sweep],
                           "loss_probability_range": [min(losses), max(losses)] if losses else None,
                           "size_at_edge": None, "drawdown_per_return": None, "allowed_drawdown_per_return": None}
    if sweep:
        sizes = [r["size"] for r in sweep]
        if evaluation.size == max(sizes) and len(sizes) > 1:
            out["size_at_edge"] = "largest"
        elif evaluation.size == min(sizes) and len(sizes) > 1:
            out["size_at_edge"] = "smallest"
    ret, dd = _clause(target, "median_monthly_return"), _clause(target, "max_drawdown_p95")
    v = evaluation.values
    if ret is not None and dd is not None and ret.threshold > 0:
        out["allowed_drawdown_per_return"] = dd.threshold / ret.threshold
        if v.get("median_monthly_return", 0) > 0:
            out["drawdown_per_return"] = v["max_drawdown_p95"] / v["median_monthly_return"]
    return out


def _share(value: float) -> str:
    """A share of a tail measure; within half a percent of zero it is sampling noise, said as such."""
    return "about 0%" if abs(value) < 0.005 else f"{value:.0%}"


def _tail(evaluation: Evaluation) -> dict[str, Any]:
    base = evaluation.base
    v = evaluation.values
    out: dict[str, Any] = {}
    for name, label in (("no_jumps", "jumps"), ("no_clustering", "volatility_clustering")):
        cf = evaluation.counterfactuals.get(name)
        if not evaluation.complete:
            out[label] = {"measured": False, "text": "not measured (a quick evaluation: the loop did not keep this "
                                                     "candidate)"}
            continue
        if cf is None:
            out[label] = {"modelled": False, "text": f"not in the model ({label.replace('_', ' ')} not simulated)"}
            continue
        with_, without = v["cvar_95"], cf["values"]["cvar_95"]
        share = (with_ - without) / with_ if with_ > 0 else 0.0
        dd_share = ((v["max_drawdown_p95"] - cf["values"]["max_drawdown_p95"]) / v["max_drawdown_p95"]
                    if v["max_drawdown_p95"] > 0 else 0.0)
        out[label] = {"modelled": True, "cvar95": with_, "cvar95_without": without, "share_of_cvar95": share,
                      "share_of_drawdown_p95": dd_share,
                      "text": f"{_share(share)} of CVaR95 and {_share(dd_share)} of drawdown p95 (CVaR95 {with_:.2f}% "
                              f"→ {without:.2f}% without them)"}
    pct = base.get("attribution", {}).get("percent_of_capital", {})
    per = base.get("attribution", {}).get("per_month", {})
    trades = base.get("trades", {})
    premium = per.get("premium", 0.0)
    costs_share = -per.get("costs", 0.0) / premium if premium > 0 else None
    out["hedging"] = {"hedge_pnl_pct": pct.get("hedge"), "costs_pct": pct.get("costs"), "premium_pct": pct.get("premium"),
                      "costs_of_premium": costs_share, "hedge_trades_per_month": trades.get("hedge_trades_per_month"),
                      "text": f"hedge P&L {pct.get('hedge', 0):+.3f}% and costs {pct.get('costs', 0):+.3f}% of capital a "
                              f"month against the options' {pct.get('premium', 0):+.3f}% "
                              f"({trades.get('hedge_trades_per_month', 0):.1f} hedge trades a month; means over all months)"}
    margin = base.get("margin", {})
    out["margin"] = {"margin_call_probability": margin.get("margin_call_probability"),
                     "forced_liquidation_probability": margin.get("forced_liquidation_probability"),
                     "peak_p95": margin.get("peak_utilisation", {}).get("p95"),
                     "text": f"margin call on {margin.get('margin_call_probability', 0):.2f}% of paths, forced "
                             f"liquidation on {margin.get('forced_liquidation_probability', 0):.2f}%, peak margin p95 "
                             f"{margin.get('peak_utilisation', {}).get('p95', 0):.1f}% of capital"}
    ex = base.get("exercise", {})
    out["assignment_delivery"] = {
        "assignment_share": ex.get("assignment_share"), "delivery_share": ex.get("delivery_share"),
        "pnl_pct": (pct.get("assignment", 0.0) or 0.0) + (pct.get("funding", 0.0) or 0.0),
        "text": f"assigned in {ex.get('assignment_share', 0):.2f}% of months, delivered in "
                f"{ex.get('delivery_share', 0):.2f}%, {(pct.get('assignment', 0) or 0) + (pct.get('funding', 0) or 0):+.3f}% "
                "of capital a month"}
    early = trades.get("early_exit_share", 0.0)
    out["early_exits"] = {"share": early, "text": f"{early:.1f}% of months closed early by an exit trigger or the stop loss"}
    return out


def _scenario_items(candidate: Candidate, name: str) -> list[str]:
    statement = candidate.statement(name, "experiment")
    if statement is None or statement.value is None:
        return []
    from opl.lang import ast

    value = statement.value
    items = value.items if isinstance(value, ast.ListValue) else (value,)
    return [candidate.source(i) for i in items]


def _defects(evaluation: Evaluation, candidate: Candidate, facts: dict[str, Any]) -> list[dict[str, Any]]:
    """What the critic finds wrong with the candidate's design, each check of `_DEFECT_CHECKS` in turn."""
    doc = checked(candidate.text).document
    exp = doc.experiment if doc is not None else None
    ctx = _Design(evaluation, candidate, facts, exp, [c.name for c in exp.model] if exp is not None else [],
                  [candidate.source(t) for t in _model_terms(candidate)], facts.get("calibration") or {},
                  facts.get("assumptions") or {})
    return [defect for check in _DEFECT_CHECKS for defect in check(ctx)]


@dataclass(frozen=True)
class _Design:
    """One candidate as the critic's checks read it: its evaluation, its experiment block (``exp``), its model's
    component ``names`` and terms as written, and the data's calibration and assumption tests (``facts``)."""

    evaluation: Evaluation
    candidate: Candidate
    facts: dict
    exp: Any
    names: list[str]
    model_terms: list[str]
    calibration: dict
    assumptions: dict


def _model_defects(ctx: _Design) -> list[dict]:
    # With a calibrated model line, the data's fit decides which components the model has (`_calibrated`).
    if any(line.startswith("model ") for line in ctx.calibration.get("experiment_lines") or []):
        return []
    names = ctx.names
    if "garch" not in names and "gjr" not in names:
        terms = [t for t, n in zip(ctx.model_terms, names) if n != "gbm"]
        new = " + ".join(["garch"] + terms + ([] if "jump" in names else ["jump"]))
        return [{"code": "no_clustering", "message": "GBM understates the tails (no volatility clustering): "
                 "use garch + jump", "fix": {"setting": "model", "value": new}}]
    if "jump" not in names:
        return [{"code": "no_jumps", "message": "the model has no jumps, so gaps like jujube's limit moves "
                 "are missing from the tails: add jump", "fix": {"setting": "model",
                                                                  "value": " + ".join(ctx.model_terms + ["jump"])}}]
    return []


def _hit_rate_defects(ctx: _Design) -> list[dict]:
    hr = ctx.assumptions.get("hit_rate") or {}
    design_rate = ctx.exp.hit_rate if ctx.exp is not None else None
    sensitivity = _scenario_items(ctx.candidate, "sensitivity")
    out = []
    if design_rate is not None and hr.get("estimate") is not None and hr.get("n"):
        est, (low, high) = hr["estimate"], hr["wilson"]
        if design_rate > est + 0.02:
            word = "contradicted by" if design_rate > high else "above"
            out.append({"code": "hit_rate_unsupported",
                        "message": f"the design assumes a {design_rate:.0%} hit rate, {word} the data's "
                                   f"{est:.0%} (95% Wilson {low:.0%}–{high:.0%}, n = {hr['n']})",
                        "fix": {"setting": "signal", "value": f"direction hit_rate {est:.2f}"}})
        kept = [s for s in sensitivity if not s.startswith("hit_rate(")]
        wanted = f"hit_rate({low:.2f})"
        if wanted not in sensitivity:
            out.append({"code": "hit_rate_sensitivity",
                        "message": f"test the signal at the lower end of the data's interval, {low:.0%}",
                        "fix": {"setting": "sensitivity", "value": "[ " + ", ".join(kept + [wanted]) + " ]"}})
    elif design_rate is not None and not any(s.startswith(("hit_rate(", "hit_rate_down(")) for s in sensitivity):
        low = max(0.0, design_rate - 0.2)
        out.append({"code": "hit_rate_sensitivity", "message": f"the signal's {design_rate:.0%} hit rate is never "
                    f"tested lower: add a hit-rate sensitivity at {low:.0%}",
                    "fix": {"setting": "sensitivity",
                            "value": "[ " + ", ".join(sensitivity + [f"hit_rate({low:.2f})"]) + " ]"}})
    return out


def _stress_defects(ctx: _Design) -> list[dict]:
    if _scenario_items(ctx.candidate, "stress"):
        return []
    return [{"code": "no_stress", "message": "no stress scenarios: the tails are never pushed",
             "fix": {"setting": "stress", "value": DEFAULT_STRESS}}]


def _calibrated(ctx: _Design) -> list[dict]:
    # `implied`, `hybrid` and `file` candidates are calibrated by the simulator itself; writing the
    # historical fit into them would override the level their method takes from the options.
    candidate = ctx.candidate
    method = (candidate.value("calibration", "experiment") or "historical").strip()
    out = []
    for line in (ctx.calibration.get("experiment_lines", []) or []) if method == "historical" else []:
        name, _, value = line.strip().partition(" ")
        why = ""
        if name == "model":
            test = declared_jumps_test(candidate, ctx.facts)
            fitted = value.strip()
            value = _merged_model(fitted, ctx.model_terms, ctx.names, keep_jump=test is None or not test["rejected"])
            if test is not None and "jump" not in fitted:
                why = (f" (the declared `jump` stays: {test['text']})" if not test["rejected"] else
                       f" (the declared `jump` goes: {test['text']})")
        if name and candidate.value(name, "experiment") != value.strip():
            out.append({"code": "calibrated", "message": f"the data calibrate `{name}` to `{value.strip()}`{why}",
                        "fix": {"setting": name, "value": value.strip()}})
    return out


def _random_walk_defects(ctx: _Design) -> list[dict]:
    if (ctx.assumptions.get("random_walk") or {}).get("verdict") != "rejected":
        return []
    return [{"code": "not_random_walk", "message": "the data reject the random walk; the price models have "
             "no autocorrelation, so trends or reversals in the data are not simulated", "fix": None}]


def _uncalibrated(ctx: _Design) -> list[dict]:
    # With data, the `calibrated` fixes apply the fit; without, say once per note that the defaults ran.
    return [{"code": "uncalibrated", "message": "the price model runs on documented defaults, not on "
             "data: give the loop `--data DIR` (or `--data synth`) to fit it", "fix": None}
            for note in (ctx.evaluation.notes if not ctx.facts else ()) if note.startswith(NO_DATA_NOTE)]


#: The critic's design checks, in the order their defects are listed.
_DEFECT_CHECKS = (_model_defects, _hit_rate_defects, _stress_defects, _calibrated, _random_walk_defects,
                  _uncalibrated)


def _merged_model(calibrated: str, terms: list[str], names: list[str], *, keep_jump: bool) -> str:
    """The calibrated model line plus the current model's terms the calibration does not fit (``regime``).

    A declared ``jump`` the fit leaves out (its Student-t tails absorbed the extreme days) stays as written
    unless ``keep_jump`` is False — the data reject it (`declared_jumps_test`): a fit may replace a risk
    component by a fitted equivalent, never remove it on its own.
    """
    fitted = {"gbm", "garch", "gjr", "jump"}
    has_jump = any(t.strip().startswith("jump") for t in calibrated.split("+"))
    kept = [t for t, n in zip(terms, names) if n not in fitted or (n == "jump" and keep_jump and not has_jump)]
    return " + ".join([calibrated] + kept)


def declared_jumps_test(candidate: Candidate, facts: dict[str, Any]) -> dict[str, Any] | None:
    """The data's test of the candidate's declared ``jump`` (`opl.calibration.jumps.declared_jumps_test`).

    None when the candidate declares no jumps or the run has no calibrated data: then no data test rejects
    the jumps, and they stay.
    """
    from opl.calibration.block import SIM_DAYS_PER_YEAR
    from opl.calibration.jumps import declared_jumps_test as test
    from opl.runtime.engine.processes import DEFAULTS

    doc = checked(candidate.text).document
    exp = doc.experiment if doc is not None else None
    declared = next((c for c in exp.model if c.name == "jump"), None) if exp is not None else None
    result = ((facts.get("calibration") or {}).get("result") or {})
    found = (result.get("jumps") or {}).get("jumps")
    vol = (result.get("block") or {}).get("vol")
    if declared is None or not found or vol is None:
        return None
    params = {**DEFAULTS["jump"].__dict__, **declared.params}
    return test(count=int(found["count"]), n=int(found["n"]), threshold=float(found["threshold"]),
                expected_diffusion=float(found["expected_false_detections"]), intensity=params["intensity"],
                mean=params["mean"], std=params["std"], daily_vol=float(vol) / SIM_DAYS_PER_YEAR ** 0.5,
                alpha=float(found.get("alpha", 0.05)), days_per_year=SIM_DAYS_PER_YEAR)


def _model_terms(candidate: Candidate):
    from opl.lang.fields import plus_terms

    statement = candidate.statement("model", "experiment")
    return [] if statement is None or statement.value is None else plus_terms(statement.value)


@dataclass(frozen=True)
class _Case:
    """What the critic's direction rules read of an evaluated candidate (`_directions`)."""

    failing: frozenset
    values: dict
    size: float
    structure: dict
    scenarios: list
    keep: float
    along: str | None
    has_wings: bool
    stop: Any
    early: float
    costs: float | None
    jumps: float

    @property
    def costly(self) -> bool:
        """Fees and slippage take more of the options' P&L than a hedge should cost."""
        return self.costs is not None and self.costs > COSTS_OF_PREMIUM


def _directions(evaluation, target, candidate, failures, structure, tail, scenarios) -> list[dict[str, str]]:
    """The moves worth trying, in the rules' order, each once with its first reason."""
    result = checked(candidate.text)
    doc = result.document
    hedge = doc.hedge if doc is not None else None
    case = _Case(failing=frozenset(f["metric"] for f in failures), values=evaluation.values, size=evaluation.size,
                 structure=structure, scenarios=scenarios, keep=hedge.keep if hedge is not None else 0.0,
                 along=hedge.along if hedge is not None else None,
                 has_wings=any(leg.side > 0 for leg in result.legs if leg.is_option),
                 stop=doc.risk.stop_loss if doc is not None else None, early=tail["early_exits"]["share"],
                 costs=tail["hedging"]["costs_of_premium"],
                 jumps=tail.get("jumps", {}).get("share_of_cvar95", 0.0) or 0.0)
    out: list[dict[str, str]] = []
    for rule in _DIRECTION_RULES:
        for move, why in rule(case):
            if move not in (d["move"] for d in out):
                out.append({"move": move, "why": why})
    return out


def _size_moves(c: _Case):
    # The evaluated size balances return against drawdown; at the edge of the sweep the balance may lie
    # beyond it, so measuring there comes first (cheap, and it makes every later comparison fairer).
    if c.failing and c.structure.get("size_at_edge") == "largest":
        yield "extend_sizes", ("the evaluated size is the largest swept: the balance of return and drawdown may lie "
                               "beyond it")
    elif c.failing and c.structure.get("size_at_edge") == "smallest" and c.size > 1:
        yield "refine_sizes", "the evaluated size is the smallest swept: sweep smaller sizes"


def _loss_moves(c: _Case):
    if "loss_probability" not in c.failing:
        return
    lo, hi = c.structure["loss_probability_range"]
    if c.early > EARLY_EXIT_SHARE:
        yield "loosen_exit", (f"{c.early:.0f}% of months are closed early by an exit trigger: an early close turns a "
                              "loss that would have recovered by expiry into a realised one")
    yield "widen_strikes", (f"loss probability {c.values['loss_probability']:.1f}% (and {lo:.1f}–{hi:.1f}% at every "
                            "size): more months must finish inside the strikes")
    if c.costly:
        yield "raise_hedge_band", f"fees and slippage take {c.costs:.0%} of the options' P&L: hedge less often"


def _median_moves(c: _Case):
    if "median_monthly_return" not in c.failing:
        return
    if c.costly:
        yield "raise_hedge_band", f"fees and slippage take {c.costs:.0%} of the options' P&L"
        yield "hedge_less_often", f"fees and slippage take {c.costs:.0%} of the options' P&L"
    if "loss_probability" not in c.failing:
        yield "narrow_strikes", "strikes nearer the money collect more premium; the loss probability has room"
    if c.along == "direction" and c.keep < 0.3:
        yield "keep_more", f"the hedge keeps only {c.keep:.0%} along the direction signal, which earns its drift"


def _drawdown_moves(c: _Case):
    if "max_drawdown_p95" not in c.failing:
        return
    if not c.has_wings:
        yield "add_wings", f"long wings cap the loss of a gap month (jumps make {c.jumps:.0%} of CVaR95)"
    else:
        yield "widen_wings" if c.jumps < TAIL_SHARE else "add_wings", "the wings decide the worst months"
    yield "add_stop_loss" if c.stop is None else "tighten_stop_loss", "a monthly stop bounds each month's loss"
    if c.keep > 0:
        yield "keep_less", f"the kept {c.keep:.0%} exposure adds directional drawdown"


def _trade_off_moves(c: _Case):
    signal_only = [f["metric"] for s in c.scenarios if s["scenario"].startswith(("hit_rate", "drift"))
                   for f in s["failures"] if f["metric"] not in c.failing]
    if signal_only and c.keep > 0:
        yield "keep_less", f"`{signal_only[0]}` fails only when the signal is right less often: rely on it less"
    if "median_monthly_return" in c.failing and "max_drawdown_p95" in c.failing:
        yield "refine_sizes", "return and drawdown trade off across sizes: sweep the sizes between them"
    if c.has_wings and "median_monthly_return" in c.failing:
        yield "drop_wings", "the wings cost premium every month"
    if "loss_probability" in c.failing and "max_drawdown_p95" not in c.failing and not (c.costs and c.costly):
        yield "lower_hedge_band", "a tighter hedge keeps more months near zero P&L"


# The critic's direction rules, in the order their moves are listed (a move keeps its first reason).
_DIRECTION_RULES = (_size_moves, _loss_moves, _median_moves, _drawdown_moves, _trade_off_moves)
