"""The simulation's plots as matplotlib `Figure` objects: what ``opl simulate --report`` saves as PNGs and what a
notebook shows (`opl.runtime.results.metrics.SimulationResult`'s ``plot_*`` methods call these).

Every function returns a new `matplotlib.figure.Figure` built without pyplot, so nothing is drawn on a global
figure, a notebook shows each figure once, and a script may save it (``fig.savefig(path)``) or drop it.

``returns``   histogram of monthly returns (all paths and months pooled), median and p5 marked;
``drawdowns`` histogram of each path's maximum drawdown, p95 and p99 marked;
``equity``    equity fan chart by month: median, 50% and 90% bands, five sample paths;
``margin``    distribution of each path's peak margin / capital;
``size_sweep`` a target metric by size, ± one Monte Carlo standard error, the sizes where the target holds marked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["returns", "drawdowns", "equity", "margin", "size_sweep", "FIGURES"]


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=110)
    return fig, fig.subplots()


def _title(result) -> str:
    size = result.plot_size["size"] if result.plot_size else result.base.size
    return f"{Path(result.file).name}, size {size:g}"


def returns(result):
    """Histogram of the monthly returns in % of capital, median and p5 marked."""
    r = result.monthly_returns.ravel() * 100
    fig, ax = _figure()
    lo, hi = np.percentile(r, [0.5, 99.5])
    ax.hist(r, bins=80, range=(lo, hi), color="#4c72b0", alpha=0.85)
    for q, style, label in ((np.median(r), "-", "median"), (np.percentile(r, 5), "--", "p5")):
        ax.axvline(q, color="#c44e52", linestyle=style, label=f"{label} {q:+.2f}%")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("monthly return, % of capital (p0.5 to p99.5 shown)")
    ax.set_ylabel("path-months")
    ax.set_title(f"Monthly returns — {_title(result)}")
    ax.legend()
    fig.tight_layout()
    return fig


def drawdowns(result):
    """Histogram of each path's maximum drawdown in % of peak equity, p95 and p99 marked."""
    dd = result.drawdowns * 100
    fig, ax = _figure()
    ax.hist(dd, bins=80, color="#8172b2", alpha=0.85)
    for q, style in ((95, "--"), (99, ":")):
        v = np.percentile(dd, q)
        ax.axvline(v, color="#c44e52", linestyle=style, label=f"p{q} {v:.2f}%")
    ax.set_xlabel(f"maximum drawdown over {result.run['horizon_months']} months, % of peak equity")
    ax.set_ylabel("paths")
    ax.set_title(f"Maximum drawdown — {_title(result)}")
    ax.legend()
    fig.tight_layout()
    return fig


def equity(result):
    """Equity fan by month in % of capital: median, 25–75% and 5–95% bands, five sample paths."""
    eq = result.equity / result.run["capital"] * 100
    months = np.arange(eq.shape[1])
    fig, ax = _figure()
    q = np.percentile(eq, [5, 25, 50, 75, 95], axis=0)
    ax.fill_between(months, q[0], q[4], color="#55a868", alpha=0.2, label="5–95%")
    ax.fill_between(months, q[1], q[3], color="#55a868", alpha=0.4, label="25–75%")
    ax.plot(months, q[2], color="#2d6a3e", linewidth=2, label="median")
    for i in range(min(5, eq.shape[0])):
        ax.plot(months, eq[i], color="grey", linewidth=0.7, alpha=0.7)
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_xlabel("month")
    ax.set_ylabel("equity, % of capital")
    ax.set_title(f"Equity fan — {_title(result)}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def margin(result):
    """Distribution of each path's peak exchange margin in % of capital, p95 marked."""
    util = result.peak_margin * 100
    fig, ax = _figure()
    ax.hist(util, bins=80, color="#dd8452", alpha=0.85)
    v = np.percentile(util, 95)
    ax.axvline(v, color="#c44e52", linestyle="--", label=f"p95 {v:.1f}%")
    ax.set_xlabel("peak exchange margin over the horizon, % of capital")
    ax.set_ylabel("paths")
    ax.set_title(f"Peak margin utilisation — {_title(result)}")
    ax.legend()
    fig.tight_layout()
    return fig


def size_sweep(result, metric: str = "median_monthly_return"):
    """``metric`` (a target metric, `RunMetrics.target_values`) at every swept size with ± one Monte Carlo
    standard error; sizes where the target holds in green, where it fails in red, grey without a target."""
    rows = result.sizes
    if not rows or metric not in rows[0][1].target_values():
        known = ", ".join(rows[0][1].target_values()) if rows else ""
        raise ValueError(f"unknown metric {metric!r}: one of {known}")
    sizes = np.array([s for s, _, _ in rows], dtype=float)
    values = np.array([m.target_values()[metric] for _, m, _ in rows], dtype=float)
    errors = np.array([m.standard_errors.get(metric, np.nan) for _, m, _ in rows], dtype=float)
    fig, ax = _figure()
    ax.errorbar(sizes, values, yerr=np.nan_to_num(errors), color="#4c72b0", marker="o", capsize=3,
                label=f"{metric.replace('_', ' ')} ± 1 SE")
    colours = {True: "#55a868", False: "#c44e52", None: "grey"}
    for verdict, label in ((True, "target holds"), (False, "target fails")):
        picked = [i for i, (_, _, h) in enumerate(rows) if h is verdict]
        if picked:
            ax.scatter(sizes[picked], values[picked], color=colours[verdict], zorder=3, s=50, label=label)
    ax.set_xlabel("size (lots per leg unit)")
    ax.set_ylabel(f"{metric.replace('_', ' ')}, %")
    ax.set_title(f"Size sweep — {Path(result.file).name}")
    ax.legend()
    fig.tight_layout()
    return fig


#: The report's PNG files and the figure each one is.
FIGURES = {"returns.png": returns, "drawdown.png": drawdowns, "equity.png": equity, "margin.png": margin}
