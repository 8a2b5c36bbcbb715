"""What a run writes for people: ``define_metrics.md``, each iteration's ``summary.md``, ``change_log.md`` and
the final ``report.md`` with its plots (``final/progress.png``, ``final/size_sweep.png`` and the hold-out's
simulation plots from `opl.runtime.results.report`).

The final report answers the run's question — can the strategy meet its target, and at what position
size — from the **hold-out** re-measure of the best candidate, never from the seeds the loop searched on.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

from opl.closedloop.critic import Diagnosis
from opl.closedloop.objective import Target

__all__ = ["define_metrics", "iteration_summary", "change_log", "write_final_report", "size_ranges", "progress_figure",
           "no_proposal"]

_LABEL = {"median_monthly_return": "median monthly return", "mean_monthly_return": "mean monthly return",
          "loss_probability": "loss probability", "max_drawdown_p95": "max drawdown p95",
          "max_drawdown_p99": "max drawdown p99", "cvar_95": "CVaR95", "cvar_99": "CVaR99"}


def _label(metric: str) -> str:
    return _LABEL.get(metric, metric.replace("_", " "))


def _diagnosis(data: dict | None) -> Diagnosis | None:
    return None if data is None else Diagnosis(**data)


def define_metrics(target: Target, evaluation, rules) -> str:
    """The run's ``define_metrics.md``: target, objective, evaluation protocol, metrics, acceptance, stops."""
    from opl.closedloop import evaluate, objective
    from opl.runtime.results import metrics

    source = "the file's `target`" if target.source == "file" else "the seed's default (the file has no `target`)"
    lines = ["# Metrics and objective of this run", "",
             f"**Target** ({source}): `{target.text}`", "",
             "| clause | metric | operator | threshold (percent units) |", "|---|---|:---:|---:|"]
    lines += [f"| `{c.text}` | {c.metric} | `{c.op}` | {c.threshold:g} |" for c in target.clauses]
    lines += ["", "## Objective", "", _docstring_body(objective.__doc__), "",
              "## How a candidate is evaluated", "",
              f"Every candidate: {evaluation.paths:,} paths, seed {evaluation.seed} (the same for all candidates); "
              f"the final verdict: {evaluation.holdout_paths:,} paths on the hold-out seed "
              f"{evaluation.effective_holdout_seed}." + (f" Extra settings: {', '.join(evaluation.overrides)}."
                                                          if evaluation.overrides else ""), "",
              _docstring_body(evaluate.__doc__), "",
              "## Metrics", "", "```", _docstring_body(metrics.__doc__), "```", "",
              "## Acceptance", "",
              "A parameter change (legs, hedge, exits, risk controls, sizes) is kept when it lowers the objective. "
              "A design change (price model, signal, scenarios, horizon, calibration) is kept whatever its "
              "objective — it changes the yardstick — unless it makes the test easier (drops a declared risk "
              "component of the model — a fitted equivalent may replace one, and `jump` may go only when the "
              "data's count test rejects the declared jumps, a test the decision names — raises the hit rate above the data's estimate, drops scenarios, shortens the horizon).",
              "", "## Stop conditions in force", "", f"`{rules.describe()}`", ""]
    return "\n".join(lines)


def _docstring_body(doc: str | None) -> str:
    text = (doc or "").strip()
    return text.split("\n\n", 1)[1] if "\n\n" in text else text


def _pct(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _objective(value) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4f}"


def _shown(target: Target) -> list[str]:
    """The metrics a table shows: the target's clauses, then the headline numbers they leave out."""
    from opl.runtime.results.metrics import HEADLINE

    metrics = [c.metric for c in target.clauses]
    return metrics + [key for key, _, _ in HEADLINE if key not in metrics]


def _with_error(row: dict, metric: str) -> str:
    from opl.runtime.results.metrics import value_with_error

    return value_with_error(row["values"].get(metric), (row.get("errors") or {}).get(metric),
                            signed=metric.endswith("monthly_return"))


def _sweep_table(evaluation: dict, target: Target) -> list[str]:
    shown = _shown(target)
    head = "| size | distance | " + " | ".join(f"{_label(m)} %" for m in shown) + " | target |"
    lines = ["Each number ± one Monte Carlo standard error (the path is the independent unit).", "",
             head, "|---:|---:|" + "---:|" * len(shown) + ":---|"]
    for row in evaluation.get("sweep", []):
        mark = "**" if row["size"] == evaluation.get("size") else ""
        lines.append(f"| {mark}{row['size']:g}{mark} | {row['distance']:.4f} | "
                     + " | ".join(_with_error(row, m) for m in shown)
                     + f" | {'holds' if row['holds'] else 'fails'} |")
    return lines


def _scenario_table(evaluation: dict, target: Target) -> list[str]:
    if not evaluation.get("scenarios"):
        return []
    shown = _shown(target)
    lines = [f"Scenarios at size {evaluation['size']:g}:", "",
             "| scenario | kind | distance | " + " | ".join(f"{_label(m)} %" for m in shown)
             + " | target |", "|:---|:---|---:|" + "---:|" * len(shown) + ":---|"]
    for s in evaluation["scenarios"]:
        lines.append(f"| `{s['scenario']}` | {s['kind']} | {s['distance']:.4f} | "
                     + " | ".join(_with_error(s, m) for m in shown)
                     + f" | {'pass' if s['holds'] else 'fail'} |")
    defined = [f"- `{s['scenario']}`: {s['definition']}" for s in evaluation["scenarios"] if s.get("definition")]
    return lines + ([""] + defined if defined else []) + [""]


def iteration_summary(record: dict[str, Any], target: Target) -> str:
    """An iteration's ``summary.md``: versions, change, decision, results, diagnosis."""
    d, p, ev = record["decision"], record["proposal"], record.get("evaluation")
    lines = [f"# Iteration {record['iteration']} — {d['version']} ({d['kind']})", "",
             f"Design version {d['design_version']}, parameter version {d['parameter_version']}"
             + (f"; derived from iteration {record['parent']}." if record.get("parent") is not None else "."), "",
             f"- **change:** {p.get('change') or '—'}", f"- **reason:** {p.get('rationale') or '—'}",
             f"- **risk:** {p.get('risk') or '—'}",
             f"- **decision:** {'accepted' if d['accepted'] else 'rejected'} — {d.get('why') or ''}".rstrip(), ""]
    if p.get("failure"):
        lines += ["Proposer failure:", "", "```", p["failure"].rstrip(), "```", ""]
    if ev is not None:
        lines += ["## Results", ""]
        if ev["ok"]:
            run = ev.get("run", {})
            lines += [f"Objective **{_objective(ev['objective'])}** at size {ev['size']:g} (best so far: "
                      f"{_objective(d['best_objective'])}, iteration {d['best_iteration']}); "
                      f"{run.get('paths', 0):,} paths × {run.get('horizon_months')} months, seed {run.get('seed')}, "
                      f"model `{' + '.join(ev.get('model', {}).get('components', []))}`.", ""]
            lines += _sweep_table(ev, target) + [""] + _scenario_table(ev, target)
        else:
            lines += ["```", (ev.get("error") or "").rstrip(), "```", ""]
    diagnosis = _diagnosis(record.get("diagnosis"))
    if diagnosis is not None:
        lines += ["## Diagnosis", "", diagnosis.summary(), ""]
    return "\n".join(lines)


def _impact(record: dict[str, Any], parent: dict[str, Any] | None, target: Target) -> str:
    ev = record.get("evaluation")
    if ev is None or not ev.get("ok"):
        return "not evaluated"
    values = ev["base"]["target_metrics"]
    if parent is None or not (parent.get("evaluation") or {}).get("ok"):
        return f"objective {_objective(ev['objective'])} at size {ev['size']:g}"
    pe = parent["evaluation"]
    before = pe["base"]["target_metrics"]
    parts = [f"objective {_objective(pe['objective'])} → {_objective(ev['objective'])}"]
    parts += [f"{_label(c.metric)} {_pct(before.get(c.metric))} → {_pct(values.get(c.metric))}" for c in target.clauses]
    parts.append(f"size {pe['size']:g} → {ev['size']:g}")
    return "; ".join(parts)


def change_log(records: list[dict[str, Any]], target: Target) -> str:
    """``change_log.md``: one row per iteration — change, reason, metric impact, risk note, decision."""
    lines = ["# Change log", "", f"Target: `{target.text}`. Objective: distance to the target, 0 when met "
             "(define_metrics.md). Metric impact compares each candidate with the best candidate it was derived "
             "from, each at its own evaluated size.", "",
             "| iter | version | kind | change | reason | metric impact | risk note | decision |",
             "|---:|:---|:---|:---|:---|:---|:---|:---|"]
    for r in records:
        d, p = r["decision"], r["proposal"]
        parent = records[r["parent"]] if r.get("parent") is not None else None
        cells = [str(r["iteration"]), d["version"], d["kind"], p.get("change") or p.get("failure") or "—",
                 p.get("rationale") or "—", _impact(r, parent, target), p.get("risk") or "—",
                 ("**accepted**" if d["accepted"] else "rejected") + (f": {d['why']}" if d.get("why") else "")]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def size_ranges(evaluation: dict, target: Target) -> list[str]:
    """For each clause, the swept sizes where it holds, in words."""
    out = []
    sweep = evaluation.get("sweep", [])
    for c in target.clauses:
        ok = [r["size"] for r in sweep if c.holds(r["values"].get(c.metric))]
        values = [r["values"].get(c.metric) for r in sweep]
        if not sweep:
            continue
        if len(ok) == len(sweep):
            out.append(f"`{c.text}` holds at every swept size ({sweep[0]['size']:g}–{sweep[-1]['size']:g})")
        elif not ok:
            lo, hi = min(v for v in values if v is not None), max(v for v in values if v is not None)
            out.append(f"`{c.text}` holds at no swept size ({_label(c.metric)} {lo:.2f}–{hi:.2f}% across "
                       f"sizes {sweep[0]['size']:g}–{sweep[-1]['size']:g})")
        else:
            out.append(f"`{c.text}` holds at sizes {_ranges(ok)}")
    return out


def _ranges(sizes: list[float]) -> str:
    return f"{sizes[0]:g}–{sizes[-1]:g}" if len(sizes) > 1 else f"{sizes[0]:g}"


def no_proposal(records: list) -> bool:
    """Whether the loop asked for proposals and never obtained a file (every call failed or was refused)."""
    return len(records) > 1 and all(r.get("candidate_sha") is None and (r.get("proposal") or {}).get("failure")
                                    for r in records[1:])


def _no_proposal_answer(records: list) -> str:
    n = len(records) - 1
    last = (records[-1]["proposal"].get("failure") or "").strip().splitlines()
    return (f"**No answer:** no proposal could be obtained — the proposer failed on all {n} "
            f"iteration{'s' if n != 1 else ''} after the baseline (last: {last[0] if last else 'no file'}), so "
            "nothing was searched; the numbers below are the file as written.")


def _untested_lines(facts: dict) -> str:
    """What the run's data could not test, said before the answer (it qualifies every number in it)."""
    items = (facts or {}).get("untested") or []
    return "".join(f"**Not tested on data:** {item}.\n" for item in items) + ("\n" if items else "")


def _answer(target: Target, holdout: dict | None, best: dict, records: list, diagnosis: Diagnosis | None) -> str:
    if no_proposal(records):
        return _no_proposal_answer(records) + (" " + _headline(holdout) if holdout and holdout.get("ok") else "")
    n = len(records) - 1
    searched = f"{n} proposal{'s' if n != 1 else ''} after the baseline"
    if holdout is None or not holdout.get("ok"):
        return ("**No answer:** the best candidate could not be re-measured on hold-out seeds"
                + (f" ({holdout.get('error', '').strip().splitlines()[0]})" if holdout and holdout.get("error") else "")
                + ".")
    size = holdout["size"]
    v = holdout["base"]["target_metrics"]
    numbers = ", ".join(f"{_label(c.metric)} {v.get(c.metric, float('nan')):.2f}%" for c in target.clauses)
    return _verdict(target, holdout, best, searched, diagnosis, size, numbers) + " " + _headline(holdout)


def _headline(evaluation: dict) -> str:
    """What the account earns at the evaluated size, every headline number with its Monte Carlo error."""
    from opl.runtime.results.metrics import headline

    run = evaluation.get("run") or {}
    base = evaluation["base"]
    return (f"At {evaluation['size']:g} lots on the hold-out paths (± one Monte Carlo standard error): "
            + headline(base["target_metrics"], base.get("standard_errors") or {}, capital=run.get("capital"),
                       currency=run.get("currency", "")) + ".")


def _verdict(target, holdout, best, searched, diagnosis, size, numbers) -> str:
    if holdout["target_met"]:
        rec = holdout.get("recommended_size") or {"low": size, "high": size}
        return (f"**Yes.** On fresh hold-out seeds the best candidate (iteration {best['iteration']}) meets "
                f"`{target.text}` at sizes **{rec['low']:g}–{rec['high']:g} lots**, and at {size:g} lots still "
                f"under every sensitivity: {numbers}.")
    if best["evaluation"]["target_met"]:
        return (f"**Not confirmed.** The best candidate (iteration {best['iteration']}) met the target on the "
                f"search seeds, but not on the hold-out seeds: at size {size:g}, {numbers}. The search "
                "overfitted its paths; treat it as not reachable at this confidence.")
    failing = diagnosis.failures if diagnosis is not None else []
    why = "; ".join(f"`{f['clause']}` is {f['value']:.2f}" for f in failing) or \
          "a sensitivity scenario fails"
    return (f"**No.** In {searched}, no candidate meets `{target.text}`. The closest (iteration "
            f"{best['iteration']}), re-measured on hold-out seeds, comes nearest at size {size:g} lots: {numbers} — "
            f"{why}.{_within_limits(holdout, target)}")


def _within_limits(evaluation: dict, target: Target) -> str:
    """What the size-scaled reward clauses reach at the sizes where every size-scaled risk limit holds."""
    from opl.closedloop.objective import SIZE_SCALED

    risks = [c for c in target.clauses if c.metric in SIZE_SCALED and c.op in ("<=", "<")]
    rewards = [c for c in target.clauses if c.metric in SIZE_SCALED and c.op in (">=", ">")]
    sweep = evaluation.get("sweep", [])
    if not risks or not rewards or not sweep:
        return ""
    inside = [r for r in sweep if all(c.holds(r["values"].get(c.metric)) for c in risks)]
    limits = " and ".join(f"`{c.text}`" for c in risks)
    if not inside:
        return f" No swept size keeps {limits}."
    best = {c.metric: max(r["values"].get(c.metric, float("-inf")) for r in inside) for c in rewards}
    reach = ", ".join(f"{_label(m)} at most {v:.2f}%" for m, v in best.items())
    return (f" Within {limits} (sizes {_ranges([r['size'] for r in inside])} lots) the strategy reaches "
            f"{reach}.")


#: Hedge trades a month below which a declared hedge is reported as practically switched off.
_IDLE_HEDGE = 0.05


def caveats(evaluation: dict | None, target: Target, text: str) -> list[str]:
    """What the answer's target does not see about the best candidate on the hold-out paths.

    A target on the median month cannot tell a strategy that earns steadily from one that earns a little in
    most months and gives it back in the tail; nor does it know the file asked for a hedge. The loop may drift
    towards either (a wider band trades less and lifts the median while the mean falls), so the answer says so
    when the hold-out shows it: the mean month negative by more than two standard errors while the median is
    positive, and a declared delta hedge that practically never trades.
    """
    if not evaluation or not evaluation.get("ok"):
        return []
    base = evaluation["base"]
    metrics, errors = base.get("target_metrics") or {}, base.get("standard_errors") or {}
    found = []
    mean, median = metrics.get("mean_monthly_return"), metrics.get("median_monthly_return")
    reads_median = any(c.metric == "median_monthly_return" for c in target.clauses)
    se = errors.get("mean_monthly_return") or 0.0
    if reads_median and mean is not None and median is not None and median > 0 and mean + 2 * se < 0:
        found.append(f"the median month earns {median:+.3f}% of capital but the mean month {mean:+.3f}% ± {se:.3f}%: "
                     "most months earn a little and the losing tail gives it back, so the account does not grow on "
                     "average; a target on the median does not see that (add a `mean_monthly_return` clause to "
                     "require it).")
    trades = (base.get("trades") or {}).get("hedge_trades_per_month")
    rule = _declared_hedge(text)
    if rule is not None and trades is not None and trades < _IDLE_HEDGE:
        found.append(f"the candidate declares a delta hedge (band {rule.band:g}, keep {rule.keep:.0%}) but it "
                     f"practically never trades on the hold-out paths ({trades:.2f} hedge trades a month): its "
                     "numbers are those of an unhedged position.")
    return found


def _declared_hedge(text: str):
    """The candidate's delta hedge rule with a band (None when it declares none or cannot be read)."""
    from opl.lang.frontend import check_text

    document = check_text(text).document
    rule = getattr(document, "hedge", None) if document is not None else None
    return rule if rule is not None and rule.greek == "delta" and rule.band is not None else None


def _why_not(diagnosis: Diagnosis | None, holdout: dict, target: Target) -> list[str]:
    if diagnosis is None or diagnosis.target_met:
        return []
    lines = ["## Why not", ""]
    lines += [f"- {s}" for s in size_ranges(holdout, target)]
    st = diagnosis.structure
    if st.get("loss_probability_range") and any(f["metric"] == "loss_probability" for f in diagnosis.failures):
        lo, hi = st["loss_probability_range"]
        lines.append(f"- the share of losing months is {lo:.1f}–{hi:.1f}% at every size: sizing scales returns "
                     "and drawdowns, not the share of months that lose")
    if st.get("drawdown_per_return") is not None and st["drawdown_per_return"] > (st.get("allowed_drawdown_per_return")
                                                                                  or math.inf):
        lines.append(f"- drawdown p95 is {st['drawdown_per_return']:.1f}× the median monthly return, and both grow "
                     f"with size; the target allows at most {st['allowed_drawdown_per_return']:.1f}×, so no size "
                     "meets both")
    for name in ("jumps", "volatility_clustering", "hedging", "margin", "assignment_delivery", "early_exits"):
        t = diagnosis.tail.get(name)
        if t and t.get("text"):
            lines.append(f"- {name.replace('_', ' ')}: {t['text']}")
    for d in diagnosis.defects:
        lines.append(f"- design: {d['message']}")
    return lines + [""]


def progress_figure(records: list, target: Target):
    """``final/progress.png``: the objective and the target metrics by iteration, and the size each was
    measured at.

    Each candidate is measured at its own evaluated size, and returns and drawdowns scale with size, so a
    change of size moves the metric panels without the strategy improving: the last panel plots the
    evaluated size and every metric point is labelled with it. None when no iteration was evaluated.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    evaluated = [r for r in records if r.get("evaluation") and r["evaluation"].get("ok")]
    if not evaluated:
        return None
    rows = 2 + len(target.clauses)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.2 * rows + 0.6), dpi=110, sharex=True)
    ax = axes[0]
    xs = [r["iteration"] for r in records]
    best = [r["decision"]["best_objective"] for r in records]
    ax.step(xs, [b if b is not None and math.isfinite(b) else float("nan") for b in best], where="post",
            color="#2d6a3e", label="best so far")
    for kind, style in (("accepted", dict(color="#2d6a3e", marker="o")), ("rejected", dict(color="grey", marker="x")),
                        ("design", dict(color="#4c72b0", marker="D"))):
        pts = [(r["iteration"], r["evaluation"]["objective"]) for r in evaluated
               if (kind == "design" and r["decision"]["kind"] == "design")
               or (kind != "design" and r["decision"]["kind"] != "design"
                   and r["decision"]["accepted"] == (kind == "accepted"))]
        if pts:
            ax.scatter(*zip(*pts), label=kind if kind != "design" else "design change", zorder=3, **style)
    ax.set_ylabel("objective\n(distance to target)")
    ax.set_title("Progress of the loop (search seeds; each candidate at its own size)")
    ax.legend(fontsize=8, loc="upper right")
    sizes = [r["evaluation"]["size"] for r in evaluated]
    for ax, c in zip(axes[1:-1], target.clauses):
        pts = [(r["iteration"], r["evaluation"]["base"]["target_metrics"].get(c.metric)) for r in evaluated]
        ax.plot(*zip(*pts), marker=".", color="#8172b2")
        for (x, y), size in zip(pts, sizes):
            if y is not None and math.isfinite(y):
                ax.annotate(f"{size:g}", (x, y), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=6,
                            color="#555555")
        ax.axhline(c.threshold, color="#c44e52", linestyle="--", label=f"`{c.text}`")
        ax.set_ylabel(f"{_label(c.metric)} %")
        ax.legend(fontsize=8, loc="best")
    axes[-1].plot([r["iteration"] for r in evaluated], sizes, marker="o", color="#dd8452")
    axes[-1].set_ylabel("evaluated size\n(lots per leg)")
    axes[-1].set_xlabel("iteration (point labels above: the size each candidate was measured at)")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def size_sweep_figure(sweep: list[dict], target: Target):
    """The hold-out's size sweep, one panel a target clause; the sizes where the whole target holds are
    green points (named in the legend only when there are some)."""
    import matplotlib.pyplot as plt

    sizes = [r["size"] for r in sweep]
    holding = [r for r in sweep if r["holds"]]
    fig, axes = plt.subplots(len(target.clauses), 1, figsize=(8, 2.2 * len(target.clauses) + 0.6), dpi=110,
                             sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], target.clauses):
        ax.plot(sizes, [r["values"].get(c.metric) for r in sweep], marker="o", color="#4c72b0", label="measured")
        if holding:
            ax.plot([r["size"] for r in holding], [r["values"].get(c.metric) for r in holding], "o",
                    color="#55a868", ms=9, zorder=3, label="the whole target holds")
        ax.axhline(c.threshold, color="#c44e52", linestyle="--", label=f"`{c.text}`")
        ax.set_ylabel(f"{_label(c.metric)} %")
        ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("position size (lots per leg)")
    axes[0, 0].set_title("Hold-out size sweep of the best candidate"
                         + ("" if holding else ": the target holds at no size"))
    fig.tight_layout()
    return fig


def _plots(out: Path, records: list, target: Target, holdout: dict | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure = progress_figure(records, target)
    if figure is not None:
        figure.savefig(out / "progress.png")
        plt.close(figure)
        written.append("progress.png")
    if holdout and holdout.get("ok") and holdout.get("sweep"):
        fig = size_sweep_figure(holdout["sweep"], target)
        fig.savefig(out / "size_sweep.png")
        plt.close(fig)
        written.append("size_sweep.png")
    return written


def write_final_report(archive, records: list, target: Target, stop, holdout, facts: dict) -> tuple[Path, str]:
    """Write ``report.md``, ``best.opl`` and ``final/`` (hold-out JSON, plots); return the path and the answer."""
    from opl.closedloop.candidate import Candidate

    best_k = records[-1]["decision"]["best_iteration"]
    best = records[best_k]
    best_text = archive.candidate(best_k)
    archive.write_text("best.opl", best_text)
    hold, diagnosis, plots, sim_plots = _final_folder(archive, records, target, stop, holdout, facts, best_k,
                                                      best_text)
    answer = _untested_lines(facts) + _answer(target, hold, best, records, diagnosis)
    answer += "".join(f"\n\n**Caution:** {c}" for c in caveats(hold, target, best_text))
    initial = archive.path("initial.opl").read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(Candidate(initial).text.splitlines(keepends=True),
                                        Candidate(best_text).text.splitlines(keepends=True),
                                        "initial.opl", f"iter_{best_k}/candidate.opl"))
    settings = archive.settings()
    lines = [f"# `opl loop` report — {archive.root.name}", "", f"**Question:** can `{settings['file']}` meet "
             f"`{target.text}` (and still meet it under its sensitivities), and at what position size?", "",
             answer, "", f"**Stop:** {stop.kind.replace('_', ' ')} — {stop.reason}.", ""]
    if hold is not None and hold.get("ok"):
        lines += _holdout_section(hold, target, diagnosis, best_k, best, settings)
    lines += _search_section(records, plots)
    lines += ["## Best candidate", "", f"[best.opl](best.opl) (iteration {best_k}); its change from the file:", "",
              "```diff", diff.rstrip() or "(unchanged)", "```", ""]
    lines += _data_section(facts)
    if sim_plots:
        lines += ["## Hold-out simulation plots", "", "Base case at the evaluated size "
                  "([final/report.md](final/report.md) has the simulator's full report):", ""]
        lines += [f"![{p[:-4]}](final/{p})" for p in sim_plots] + [""]
    if hold is not None and hold.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in hold["notes"]] + [""]
    path = archive.write_text("report.md", "\n".join(lines))
    return path, answer


def _final_folder(archive, records, target, stop, holdout, facts, best_k, best_text):
    """``final/``: the hold-out's JSON with its diagnosis, the loop's plots and the simulator's report of the
    hold-out; returns the hold-out as a dict (or None), its diagnosis, the loop's plots and the simulator's."""
    from opl.closedloop.candidate import Candidate
    from opl.closedloop.critic import diagnose
    from opl.closedloop.forked import beside
    from opl.runtime.results.records import json_safe

    out = archive.path("final")
    out.mkdir(parents=True, exist_ok=True)
    sim_plots, drawing = [], None
    if holdout is not None and holdout.simulation is not None:
        from opl.runtime.results.report import PLOTS, write_report

        # The simulator's report of the hold-out (four plots) is drawn in a forked process while this one
        # writes the rest: the report was a core's work after the hold-out's, the other core idle.
        drawing = beside(write_report, holdout.simulation, out)
        sim_plots = list(PLOTS)
    try:
        hold = holdout.to_dict() if holdout is not None else None
        diagnosis = diagnose(holdout, target, Candidate(best_text), facts=facts) if holdout is not None else None
        archive.write_json("final/holdout.json", json_safe({"iteration": best_k, "stop": stop.to_dict(),
                                                         "evaluation": hold,
                                                         "diagnosis": diagnosis.to_dict() if diagnosis else None}))
        plots = _plots(out, records, target, hold)
        if drawing is not None:
            drawing.result()
    finally:
        if drawing is not None:
            drawing.close()
    return hold, diagnosis, plots, sim_plots


def _holdout_section(hold: dict, target: Target, diagnosis, best_k: int, best: dict, settings: dict) -> list[str]:
    """The report's "Hold-out re-measure" section: the run, the size ranges, the sweep and scenario tables and
    why the target is not met."""
    run = hold["run"]
    lines = ["## Hold-out re-measure of the best candidate", "",
             f"Iteration {best_k} ({best['decision']['version']}), {run['paths']:,} fresh paths × "
             f"{run['horizon_months']} months on seed {run['seed']} (the search used seed "
             f"{settings['evaluation']['seed']}), capital {run['capital']:,.0f} {run.get('currency', '')}.", ""]
    lines += [f"- {s}" for s in size_ranges(hold, target)] + [""]
    lines += _sweep_table(hold, target) + [""] + _scenario_table(hold, target)
    return lines + _why_not(diagnosis, hold, target)


def _search_section(records: list, plots: list[str]) -> list[str]:
    """The report's "The search" section: the counts, a row an iteration, the model components the data
    removed and the loop's plots."""
    accepted = [r for r in records[1:] if r["decision"]["accepted"]]
    lines = ["## The search", "",
             f"{len(records) - 1} proposals after the baseline; {len(accepted)} accepted "
             f"({sum(1 for r in accepted if r['decision']['kind'] == 'design')} "
             "design changes). Every step with its reason, metric impact and risk: [change_log.md](change_log.md).",
             "", "| iter | version | change | objective | best | decision |", "|---:|:---|:---|---:|---:|:---|"]
    for r in records:
        d = r["decision"]
        lines.append(f"| {r['iteration']} | {d['version']} | {(r['proposal'].get('change') or '—').replace('|', '/')} | "
                     f"{_objective(d.get('objective'))} | {_objective(d['best_objective'])} | "
                     f"{'accepted' if d['accepted'] else 'rejected'} |")
    dropped = [(r["iteration"], d) for r in records if r["decision"]["accepted"]
               for d in r["decision"].get("dropped", ())]
    if dropped:
        lines += ["", "Risk components removed from the model, each because a data test rejects it:", ""]
        lines += [f"- iteration {k}: `{d['component']}` — {d['test']}" for k, d in dropped]
    return lines + [""] + [f"![{p[:-4]}](final/{p})" for p in plots] + [""]


def _data_section(facts: dict) -> list[str]:
    if not facts:
        return ["## Data", "", "The run had no data (`--data`): the design's assumptions were not tested against a "
                "market history.", ""]
    origin = facts.get("origin", {})
    lines = ["## Data, assumption tests and calibration", "",
             "Data: " + ("the synthetic jujube dataset (`opl.data.synth`, seed "
                         f"{origin.get('seed')}, {origin.get('years')} years) in [data/](data/)"
                         if origin.get("kind") == "synth" else
                         f"raw files from `{origin.get('source')}`, imported into [data/](data/) (every mapping, "
                         "derivation and repair: [data/import_log.md](data/import_log.md))"
                         if origin.get("kind") == "imported" else f"`{origin.get('folder')}`")
             + "; contracts in [data_contracts.md](data_contracts.md).", ""]
    a = facts.get("assumptions") or {}
    for key, title in (("random_walk", "Random walk"), ("hit_rate", "Direction hit rate"), ("factors", "Factors")):
        part = a.get(key) or {}
        if part.get("plain"):
            lines.append(f"- **{title}** ({part.get('verdict')}): {part['plain']} *{part.get('implication', '')}*")
    lines += ["", "Full report: [assumptions/assumptions.md](assumptions/assumptions.md).", ""]
    cal = facts.get("calibration")
    if cal and cal.get("experiment_lines"):
        lines += ["Calibration (`opl.calibration`), applied by the critic as a design fix:", "", "```"]
        lines += list(cal["experiment_lines"]) + ["```", "", "[calibration/calibration.md](calibration/calibration.md)", ""]
    elif cal and cal.get("error"):
        lines += [f"Calibration failed: {cal['error']}", ""]
    else:
        lines += ["Calibration: not run (`opl.calibration` is not available); the price model keeps the file's "
                  "parameters or the simulator's documented defaults.", ""]
    return lines
