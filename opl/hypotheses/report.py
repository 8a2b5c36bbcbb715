"""Run the assumption tests on loaded data and report them as JSON, markdown and plots.

The JSON (``opl assumptions --json``) always has ``random_walk.verdict`` and
``hit_rate.{estimate, wilson, clopper_pearson, n}`` (DESIGN.md, "Contracts");
without signals the hit-rate fields are null and ``n`` is 0. NaN is written as
null so the file is strict JSON.

The fourth assumption of the plan — the strategy meets its target under the stress
scenarios — runs when a strategy file is given (:mod:`opl.hypotheses.stress`, the
simulator's own scenarios); otherwise ``stress.status`` is ``"not run"``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opl.hypotheses.factors import FactorResult, factor_tests
from opl.hypotheses.hit_rate import HitRateResult, hit_rate
from opl.hypotheses.random_walk import RandomWalkResult, random_walk_tests
from opl.hypotheses.stress import StressReport
from opl.data.loaders import LoadResult
from opl.data.rolls import ContractReturns, require_moves, within_contract_returns
from opl.runtime.results.records import json_safe, package_versions

__all__ = ["AssumptionReport", "run_assumptions", "PLOTS"]

PLOTS = {"acf": "acf.png", "variance_ratio": "variance_ratio.png", "hit_rate": "hit_rate.png",
         "factors": "factors_oos.png", "stress": "stress.png"}


@dataclass
class AssumptionReport:
    """All assumption-test results for one dataset."""

    random_walk: RandomWalkResult
    hit_rate: HitRateResult
    factors: FactorResult | None
    returns: ContractReturns
    data: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    stress: StressReport | None = None

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (NaN and infinities become None)."""
        out = {
            "opl_version": package_versions(("opl",))["opl"],
            "versions": package_versions(),
            "settings": self.settings,
            "data": self.data,
            "random_walk": self.random_walk.to_dict(),
            "hit_rate": self.hit_rate.to_dict(),
            "factors": None if self.factors is None else self.factors.to_dict(),
            "stress": self.stress.to_dict() if self.stress is not None else
            {"status": "not run", "reason": "no strategy file given (opl assumptions --strategy FILE)"},
        }
        return json_safe(out)

    def write_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def summary(self) -> str:
        signals = self.hit_rate.summary() if self.data.get("signals") else "Direction hit rate: no signals given."
        parts = [self._data_line(), self.random_walk.summary(), signals]
        parts.append(self.factors.summary() if self.factors is not None else "Supply/demand factors: not given.")
        parts.append(self.stress.summary() if self.stress is not None else
                     "Strategy under stress: not run (give the strategy with --strategy FILE).")
        return "\n\n".join(parts)

    def _data_line(self) -> str:
        d = self.data
        line = (f"Data: {d['futures']['file']}: {d['futures']['rows']} days {d['futures']['first']} … "
                f"{d['futures']['last']}; {d['rolls']['count']} rolls ({d['rolls']['method']}), "
                f"{d['rolls']['excluded_returns']} roll-day returns excluded")
        repairs = sum(len(v.get("repairs", [])) for v in d.values() if isinstance(v, dict))
        return line + (f"; {repairs} repairs (listed in the JSON)" if repairs else "")

    def plot(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Save the ACF, variance-ratio, hit-rate and (with factors) out-of-sample plots as PNG."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        paths["acf"] = _plot_acf(plt, self.random_walk, out / PLOTS["acf"])
        paths["variance_ratio"] = _plot_vr(plt, self.random_walk, out / PLOTS["variance_ratio"])
        if self.hit_rate.n:
            paths["hit_rate"] = _plot_hit_rate(plt, self.hit_rate, out / PLOTS["hit_rate"])
        if self.factors is not None and self.factors.series is not None:
            paths["factors"] = _plot_factors(plt, self.factors, out / PLOTS["factors"])
        if self.stress is not None and self.stress.scenarios:
            paths["stress"] = _plot_stress(plt, self.stress, out / PLOTS["stress"])
        return paths

    def write_markdown(self, out_dir: str | os.PathLike) -> Path:
        """Write ``assumptions.md`` with the plots beside it; return its path."""
        out = Path(out_dir)
        plots = self.plot(out)
        md = ["# Assumption tests", "", self._data_line(), ""]
        md += _random_walk_markdown(self.random_walk, plots) + _factors_markdown(self.factors, plots)
        md += _hit_rate_markdown(self.hit_rate, plots, given=bool(self.data.get("signals")))
        md += ["## 4. Strategy under stress", ""] + _stress_markdown(self.stress, plots)
        path = out / "assumptions.md"
        path.write_text("\n".join(md), encoding="utf-8")
        return path


def _random_walk_markdown(rw, plots: dict) -> list[str]:
    """Section 1: the random-walk tests' verdict, a row a test, the classical Ljung–Box and the plots."""
    md = ["## 1. Short-term random walk (1–21 trading days)", "",
          f"**Verdict: {rw.verdict}** at α = {rw.alpha:g}, {rw.correction.title()} correction over "
          f"{len(rw.tests)} tests, n = {rw.n} daily returns of the close within contracts.", "",
          rw.plain, "", f"*What it means for the model:* {rw.implication}", "",
          "| test | horizon (days: h lags, q aggregated) | statistic | p | adjusted p | reject |",
          "|---|---:|---:|---:|---:|---|"]
    for t in rw.tests:
        md.append(f"| {t.name} | {t.label} | {t.statistic:.3f} | {t.pvalue:.4f} | "
                  f"{t.adjusted_pvalue:.4f} | {'yes' if t.reject else 'no'} |")
    return md + ["", "The portmanteau is the heteroskedasticity-robust Ljung–Box; the classical statsmodels "
                 "statistic (not in the verdict, as it over-rejects under volatility clustering): "
                 + ", ".join(f"lag {lag}: p = {row.lb_pvalue:.4f}" for lag, row in rw.ljung_box_classical.iterrows())
                 + ".", "", f"![ACF]({plots['acf'].name})", "",
                 f"![Variance ratios]({plots['variance_ratio'].name})", ""]


def _factors_markdown(fx, plots: dict) -> list[str]:
    """Section 2: the supply/demand factors' verdict, their HAC regression and the forecasts' plot."""
    md = ["## 2. Long-term supply/demand factors", ""]
    if fx is None:
        return md + ["No factor file given.", ""]
    md += [f"**Verdict: {fx.verdict}**.", "", fx.plain, "", f"*What it means for the model:* {fx.implication}", ""]
    if fx.ols:
        md += ["| term | coefficient | HAC se | p |", "|---|---:|---:|---:|"]
        md += [f"| {k} | {c['estimate']:.4f} | {c['se']:.4f} | {c['pvalue']:.4f} |" for k, c in fx.ols["coef"].items()]
        md.append("")
    if "factors" in plots:
        md += [f"![Out-of-sample forecasts]({plots['factors'].name})", ""]
    return md


def _hit_rate_markdown(hr, plots: dict, *, given: bool) -> list[str]:
    """Section 3: the direction signal's hit rate against its claim, its intervals, the sample sizes a claim
    needs and the plot (``given``: a signals file was given)."""
    md = ["## 3. Direction signal hit rate", ""]
    if not given:
        return md + ["No signals file given.", ""]
    if hr.n == 0:
        return md + [hr.plain, ""]
    md += [f"**Verdict for ≥ {hr.claim:.0%}: {hr.verdict}**. Horizon {hr.horizon} trading days, flat "
           f"band ±{hr.flat_band:.1%} (log move).", "", hr.plain, "",
           f"*What it means for the model:* {hr.implication}", "",
           f"- estimate {hr.estimate:.3f} ({hr.hits}/{hr.n}); Wilson [{hr.wilson[0]:.3f}, {hr.wilson[1]:.3f}]; "
           f"Clopper–Pearson [{hr.clopper_pearson[0]:.3f}, {hr.clopper_pearson[1]:.3f}]",
           f"- unresolved views {len(hr.unresolved)}; windows containing a roll {hr.n_rolls_inside}; "
           f"overlapping windows {hr.n_overlapping} (the intervals assume independent outcomes)", ""]
    md += ["| true rate | views needed (exact) | normal approx. |", "|---:|---:|---:|"]
    md += [f"| {s['true_rate']:.3f} | {s['exact']} | {s['normal']} |" for s in hr.sample_sizes]
    return md + ["", f"![Hit rate]({plots['hit_rate'].name})", ""]


def run_assumptions(*, futures: LoadResult, signals: LoadResult | None = None, factors: LoadResult | None = None,
                    alpha: float = 0.05, horizon: int = 21, flat_band: float = 0.03, claim: float = 0.90,
                    power: float = 0.80, limit: float | None = None, tick: float = 0.0,
                    correction: str = "holm", stress: StressReport | None = None) -> AssumptionReport:
    """Run every assumption test that the given data allow.

    Parameters
    ----------
    futures : LoadResult
        Validated futures bars (a continuous series or one contract).
    signals, factors : LoadResult, optional
    alpha : float
        Level of every verdict.
    horizon, flat_band, claim, power
        The hit-rate definitions (:mod:`opl.hypotheses.hit_rate`).
    limit, tick : float
        Daily limit and tick for the roll jump rule when there is no symbol column.
    correction : {"holm", "bonferroni"}
        Multiplicity correction of the random-walk family.
    stress : StressReport, optional
        The strategy's scenarios (:func:`opl.hypotheses.stress.stress_test`), reported as the fourth assumption.
    """
    returns = within_contract_returns(futures.frame, price="close", limit=limit, tick=tick)
    require_moves(returns, file=futures.file, lines=futures.lines)
    rw = random_walk_tests(returns, alpha=alpha, correction=correction)
    hr = hit_rate(signals=None if signals is None else signals.frame, returns=returns, horizon=horizon,
                  flat_band=flat_band, alpha=alpha, claim=claim, power=power)
    fx = None if factors is None else factor_tests(factors=factors.frame, returns=returns, alpha=alpha)
    rolls = returns.rolls
    data = {
        **{kind: None if loaded is None else loaded.describe()
           for kind, loaded in (("futures", futures), ("signals", signals), ("factors", factors))},
        "rolls": {"method": rolls.method, "count": rolls.count, "excluded_returns": returns.n_excluded,
                  "threshold": None if rolls.method == "symbol" else [rolls.threshold_low, rolls.threshold_high],
                  "largest_unflagged": rolls.largest_unflagged,
                  "dates": [str(pd.Timestamp(d).date()) for d in rolls.table["trading_date"]],
                  "jumps": [float(j) for j in rolls.table["jump"]]},
    }
    settings = {"alpha": alpha, "horizon": horizon, "flat_band": flat_band, "claim": claim, "power": power,
                "limit": limit, "tick": tick, "correction": correction, "price": "close"}
    return AssumptionReport(random_walk=rw, hit_rate=hr, factors=fx, returns=returns, data=data, settings=settings,
                            stress=stress)


def _plot_acf(plt, rw: RandomWalkResult, path: Path) -> Path:
    lags = np.arange(1, len(rw.acf) + 1)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    band = 1.96 * rw.acf_se_robust
    # The band differs by lag under heteroskedasticity, so it is drawn per lag behind each bar.
    ax.bar(lags, 2 * band, bottom=-band, width=0.9, color="#dddddd", zorder=1,
           label="95% band (heteroskedasticity-robust)")
    ax.bar(lags, rw.acf, color="#4477aa", width=0.5, zorder=2, label="sample autocorrelation")
    iid = 1.96 / np.sqrt(rw.n)
    ax.axhline(iid, color="#999999", ls=":", lw=1, label="95% band (i.i.d.)")
    ax.axhline(-iid, color="#999999", ls=":", lw=1)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("lag (trading days)")
    ax.set_ylabel("autocorrelation")
    ax.set_title(f"ACF of daily log returns within contracts (n = {rw.n})")
    ax.set_xticks(lags[::2] if len(lags) > 12 else lags)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_vr(plt, rw: RandomWalkResult, path: Path) -> Path:
    table = rw.variance_ratios()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    pos = np.arange(len(table))
    ax.errorbar(pos, table["vr"], yerr=1.96 * table["se"], fmt="o", color="#4477aa", capsize=4,
                label="VR(q) ± 1.96 robust se")
    ax.axhline(1.0, color="black", lw=0.8, ls="--", label="random walk")
    ax.set_xticks(pos)
    ax.set_xticklabels([str(q) for q in table["q"]])
    ax.set_xlim(-0.5, len(table) - 0.5)
    ax.set_xlabel("q (days aggregated)")
    ax.set_ylabel("variance ratio")
    ax.set_title(f"Lo–MacKinlay variance ratios (battery verdict: {rw.verdict})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_hit_rate(plt, hr: HitRateResult, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 2.8), dpi=110)
    for y, (name, (lo, hi)) in enumerate((("Wilson", hr.wilson), ("Clopper–Pearson", hr.clopper_pearson))):
        ax.plot([lo, hi], [y, y], color="#4477aa", lw=4, solid_capstyle="butt")
        ax.plot([hr.estimate], [y], "o", color="black")
        ax.text(hi + 0.01, y, f"[{lo:.2f}, {hi:.2f}]", va="center", fontsize=8)
    ax.axvline(hr.claim, color="#cc3311", ls="--", label=f"claim {hr.claim:.0%}")
    ax.set_yticks([0, 1])
    ax.set_yticklabels(["Wilson", "Clopper–Pearson"])
    ax.set_ylim(-0.7, 1.7)
    ax.set_xlim(max(0.0, min(hr.wilson[0], hr.clopper_pearson[0]) - 0.08), 1.08)
    ax.set_xlabel("direction hit rate")
    ax.set_title(f"Hit rate {hr.hits}/{hr.n} = {hr.estimate:.1%} ({1 - hr.alpha:.0%} intervals)")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_factors(plt, fx: FactorResult, path: Path) -> Path:
    s = fx.series
    x = pd.PeriodIndex(s["month"], freq="M").to_timestamp()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.bar(x, s["realised"], width=20, color="#bbbbbb", label="realised next-month return")
    ax.plot(x, s["forecast"], color="#4477aa", lw=1.5, label="factor forecast (expanding OLS)")
    ax.plot(x, s["benchmark"], color="#cc3311", lw=1, ls="--", label="historical mean")
    ax.axhline(0, color="black", lw=0.8)
    r2 = fx.oos.get("r2")
    ax.set_title(f"Out-of-sample forecasts, R² = {r2:+.3f}" if r2 is not None else "Out-of-sample forecasts")
    ax.set_ylabel("log return")
    ax.set_xlabel("factor month (the return is the following month's)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

def _stress_markdown(stress: StressReport | None, plots: dict) -> list[str]:
    if stress is None:
        return ["Not run: give the strategy file with `--strategy FILE` to run its stress scenarios with the "
                "simulator.", ""]
    run = stress.run
    md = [f"**Verdict: {stress.verdict}** — `{stress.file}`, {run['paths']:,} paths x {run['horizon_months']} "
          f"months, seed {run['seed']}, model {' + '.join(run['components'])}"
          + (" fitted to the futures above" if stress.calibration else "") + ".", "", stress.plain, "",
          f"*What it means:* {stress.implication}.", "",
          "| scenario | kind | size | median monthly return | loss probability | p95 drawdown | target | failing |",
          "|---|---|---:|---:|---:|---:|---|---|"]
    for s in stress.scenarios:
        v, b = s.values, s.base
        md.append(f"| `{s.text}` | {s.kind} | {s.size:g} | {v['median_monthly_return']:+.2f}% "
                  f"(base {b['median_monthly_return']:+.2f}%) | {v['loss_probability']:.1f}% "
                  f"(base {b['loss_probability']:.1f}%) | {v['max_drawdown_p95']:.2f}% "
                  f"(base {b['max_drawdown_p95']:.2f}%) | {s.verdict} | {', '.join(f'`{f}`' for f in s.failing)} |")
    md.append("")
    if "stress" in plots:
        md += [f"![Stress scenarios]({plots['stress'].name})", ""]
    return md


def _plot_stress(plt, stress: StressReport, path: Path) -> Path:
    names = [s.text for s in stress.scenarios]
    colours = ["#228833" if s.holds else "#cc3311" if s.holds is False else "#999999" for s in stress.scenarios]
    pos = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * len(names) + 1.6), dpi=110, sharey=True)
    for ax, key, label in ((axes[0], "median_monthly_return", "median monthly return (%)"),
                           (axes[1], "loss_probability", "loss probability (%)")):
        ax.barh(pos, [s.values[key] for s in stress.scenarios], color=colours)
        ax.scatter([s.base[key] for s in stress.scenarios], pos, color="black", marker="|", s=200, zorder=3,
                   label="base case at the same size")
        ax.set_xlabel(label)
        ax.axvline(0, color="black", lw=0.6)
    axes[0].set_yticks(pos)
    axes[0].set_yticklabels(names, fontsize=8)
    axes[0].invert_yaxis()
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Scenarios against the target (green holds, red fails): {stress.verdict}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
