"""``opl calibrate --report DIR``: ``calibration.md`` with PNG plots, the JSON and the experiment block.

Plots: realised volatility over time (the three 21-day estimators and the GARCH
conditional volatility), the conditional volatility against the absolute daily moves
with the jump days marked, a QQ plot of the standardised residuals against the fitted
Student-t, the implied-volatility smile of the last day (or, with only a summary file,
the daily implied level), and the implied level against the model's volatility.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_report", "PLOTS"]

PLOTS = {"realised": "realised_vol.png", "garch": "garch_vol.png", "qq": "qq_residuals.png",
         "smile": "iv_smile.png", "implied": "iv_level.png"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _plot_realised(plt, result, path: Path) -> Path:
    roll = result.realised.rolling
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    for col, colour in (("close_to_close", "#4477aa"), ("parkinson", "#66ccee"), ("garman_klass", "#228833")):
        ax.plot(roll.index, roll[col], lw=0.9, color=colour, label=f"{col.replace('_', '-')} (21 days)")
    cond = result.garch.best.conditional_vol
    ax.plot(cond.index, cond, lw=0.9, color="#cc3311", label=f"{result.garch.chosen.upper()} conditional")
    ax.set_ylabel("annual volatility")
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title("Realised volatility (within contracts)")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def _plot_garch(plt, result, path: Path) -> Path:
    fit = result.garch.best
    r = result.returns.returns.dropna()
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    ax.bar(r.index, np.abs(r) * math.sqrt(fit.periods_per_year), width=1.5, color="#bbbbbb",
           label="|daily return| x sqrt(252)")
    ax.plot(fit.conditional_vol.index, fit.conditional_vol, color="#cc3311", lw=1.0, label="conditional vol")
    jumps = result.jumps
    if jumps.count:
        days = pd.DatetimeIndex(pd.to_datetime(jumps.dates))
        ax.scatter(days, np.abs(np.asarray(jumps.sizes)) * math.sqrt(fit.periods_per_year), color="black", s=12,
                   zorder=3, label=f"beyond {jumps.threshold:g} sd")
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title(f"{fit.kind.upper()}(1,1)-t: α {fit.alpha:.3f}, β {fit.beta:.3f}, ν {fit.nu:.1f}")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _plot_qq(plt, result, path: Path) -> Path:
    from scipy import stats

    fit = result.garch.best
    z = np.sort(fit.std_resid.dropna().to_numpy())
    p = (np.arange(1, len(z) + 1) - 0.5) / len(z)
    theory = stats.t.ppf(p, fit.nu) * math.sqrt((fit.nu - 2.0) / fit.nu)
    fig, ax = plt.subplots(figsize=(4.6, 4.4), dpi=110)
    ax.scatter(theory, z, s=6, color="#4477aa")
    lim = max(abs(theory).max(), abs(z).max())
    ax.plot([-lim, lim], [-lim, lim], color="black", lw=0.8)
    ax.set_xlabel(f"Student-t(ν = {fit.nu:.1f}) quantile, unit variance")
    ax.set_ylabel("standardised residual")
    ax.set_title("QQ plot of standardised residuals")
    return _save(fig, path)


def _plot_smile(plt, result, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    if result.surface is not None:
        pts = result.surface.points
        last = pts["trading_date"].max()
        slices = result.surface.slices
        for expiry, g in pts[(pts["trading_date"] == last) & (pts["reason"] == "ok")].groupby("expiry"):
            s = slices[(slices["trading_date"] == last) & (slices["expiry"] == expiry)]
            label = f"{pd.Timestamp(expiry).date()} ({int(g['days'].iloc[0])}d)"
            line = ax.scatter(g["x"], g["iv"], s=10, label=label)
            if len(s):
                row = s.iloc[0]
                x = np.linspace(g["x"].min(), g["x"].max(), 50)
                ax.plot(x, row["atm"] + row["slope"] * x + row["convexity"] * x * x, color=line.get_facecolor()[0],
                        lw=1)
        ax.set_xlabel("ln(K/F)")
        ax.set_title(f"Implied volatility on {pd.Timestamp(last).date()} (points) and the fitted smiles")
    else:
        f = result.iv_summary.frame
        ax.fill_between(f["date"], f["iv_min"], f["iv_max"], color="#dddddd", label="min-max across contracts")
        ax.plot(f["date"], f["iv_mean"], color="#4477aa", lw=1, label="daily mean")
        ax.set_title("Implied volatility of the listed options (no strikes: level only)")
    ax.yaxis.set_major_formatter(_percent())
    ax.legend(fontsize=7)
    return _save(fig, path)


def _plot_implied(plt, result, path: Path) -> Path:
    level = result.surface.history if result.surface is not None else result.iv_summary.level
    model = result.model_vol.reindex(level.index)
    spread = result.implied["spread"]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    ax.plot(level.index, level, color="#4477aa", lw=1, label="implied level")
    ax.plot(model.index, model * (1 + spread), color="#cc3311", lw=1,
            label=f"model volatility x (1 {spread:+.1%})")
    ax.plot(model.index, model, color="#cc3311", lw=0.8, ls=":", label="model volatility")
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title("Implied level against the model's volatility")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _table(rows: list[tuple], head: tuple) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def write_report(result, out_dir: str | os.PathLike) -> Path:
    """Write the report files into ``out_dir`` (created if needed); return ``calibration.md``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    plots = {"realised": _plot_realised(plt, result, out / PLOTS["realised"]),
             "garch": _plot_garch(plt, result, out / PLOTS["garch"]),
             "qq": _plot_qq(plt, result, out / PLOTS["qq"])}
    if result.surface is not None or result.iv_summary is not None:
        plots["smile"] = _plot_smile(plt, result, out / PLOTS["smile"])
    if result.implied is not None and result.implied.get("spread") is not None:
        plots["implied"] = _plot_implied(plt, result, out / PLOTS["implied"])
    result.write_json(out / "calibration.json")
    result.write_block(out / "experiment.opl")
    md = ["# Calibration", "", result._data_line(), ""]
    md += _realised_section(result.realised, plots) + _garch_section(result.garch, plots)
    md += _jumps_section(result.jumps) + _implied_section(result, plots)
    md += ["## Experiment block", "", "What `opl simulate` reads (also in `experiment.opl`):", "", "```",
           *result.experiment_lines(), "```", ""]
    md += [f"- {k}: {v}" for k, v in result.block.sources.items()]
    md += [f"- note: {n}" for n in result.block.notes]
    path = out / "calibration.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return path


def _realised_section(rv, plots: dict) -> list[str]:
    """The report's realised volatility: the estimators over the whole sample and the recent windows."""
    md = ["## Realised volatility", "",
          f"Annualised with {rv.periods_per_year:g} trading days; close-to-close on {rv.n_returns} returns within "
          f"contracts ({rv.n_excluded} roll-day returns excluded).", ""]
    rows = [("whole sample", f"{rv.close_to_close:.1%}", f"{rv.parkinson:.1%}", f"{rv.garman_klass:.1%}")]
    rows += [(f"last {k}", f"{v['close_to_close']:.1%}", f"{v['parkinson']:.1%}", f"{v['garman_klass']:.1%}")
             for k, v in rv.recent.items()]
    md += _table(rows, ("window", "close-to-close", "Parkinson", "Garman-Klass"))
    return md + ["", f"![Realised volatility]({plots['realised'].name})", ""]


def _garch_section(sel, plots: dict) -> list[str]:
    """The report's GARCH: the criterion's choice, a row a fit with its residual tests, the plots."""
    md = ["## GARCH", "", f"{sel.criterion.upper()} chooses **{sel.chosen}** ({sel.reason}).", ""]
    rows = []
    for kind, f in sel.fits.items():
        lb = f.ljung_box
        rows.append((kind, f"{f.alpha:.4f}", f"{f.gamma:.4f}", f"{f.beta:.4f}", f"{f.nu:.2f}", f"{f.persistence:.4f}",
                     "∞" if f.integrated else f"{f.half_life:.0f}",
                     "∞" if f.integrated else f"{f.unconditional_vol:.1%}", f"{f.bic:.1f}",
                     f"{lb['resid']['10']:.3f}", f"{lb['squared']['10']:.3f}"))
    md += _table(rows, ("model", "α", "γ", "β", "ν", "persistence", "half-life (days)", "unconditional vol", "BIC",
                        "LB(10) p", "LB²(10) p"))
    return md + ["", "Ljung–Box p-values of the standardised residuals and of their squares: small values on the "
                 "squares mean volatility clustering the model has not captured.", "",
                 f"![Conditional volatility]({plots['garch'].name})", "", f"![QQ]({plots['qq'].name})", ""]


def _jumps_section(jumps) -> list[str]:
    """The report's jumps: the test's summary, its method and the jump days."""
    md = ["## Jumps", "", jumps.summary() + ".", "",
          f"Method: a day is a jump day when |r − μ| > {jumps.threshold:g} × the conditional sd; the count is "
          "compared with what the Student-t diffusion alone would put there (opl/calibration/jumps.py).", ""]
    if jumps.count:
        md += _table([(d, f"{s:+.2%}") for d, s in zip(jumps.dates, jumps.sizes)], ("day", "log return"))
        md.append("")
    return md


def _implied_section(result, plots: dict) -> list[str]:
    """The report's implied volatility: the surface's term structure or the summary, the plots and the
    spread over the model's volatility."""
    md = ["## Implied volatility", ""]
    if result.surface is not None:
        md += [result.surface.summary().replace("\n  ", "; "), ""]
        md += _table([(t["expiry"], t["days"], f"{t['atm']:.1%}", f"{t['skew']:+.3f}", f"{t['curvature']:.3f}",
                       "–" if t["rr25"] is None else f"{t['rr25']:+.2%}", "–" if t["bf25"] is None else
                       f"{t['bf25']:+.2%}") for t in result.surface.term],
                     ("expiry", "days", "ATM", "skew", "curvature", "RR25", "BF25"))
        md.append("")
    if result.iv_summary is not None:
        md += [result.iv_summary.summary(), ""]
    md += [f"![{title}]({plots[key].name})\n" for key, title in (("smile", "Smile"), ("implied", "Implied level"))
           if key in plots]
    if "implied" in plots:
        i = result.implied
        md += [f"Spread of the implied level over the model's volatility: **{i['spread']:+.1%}** (least squares on "
               f"{i['days']} days, {i['source']}); floor {i['floor']:.1%}.", ""]
    else:
        md += ["No implied volatility on the futures' days: the spread and floor keep the simulator's defaults.", ""]
    return md
