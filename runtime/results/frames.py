"""A simulation's results as pandas DataFrames and as HTML, for notebooks (`SimulationResult`'s
``to_frame``, ``frames`` and ``_repr_html_`` call these).

Units are the JSON's: returns, CVaR and margin in % of capital, drawdowns in % of peak equity,
probabilities in % (of months for the loss probability, of paths for margin calls and liquidation);
every metric with a Monte Carlo standard error has it beside it in a ``*_se`` column.
"""

from __future__ import annotations

import html

__all__ = ["metrics_row", "by_size", "scenarios", "monthly_returns", "attribution", "frames", "html_summary"]

#: The target metrics of a row, each followed by its standard error when it has one.
_METRICS = ("mean_monthly_return", "median_monthly_return", "loss_probability", "max_drawdown_p95",
            "max_drawdown_p99", "cvar_95", "cvar_99", "margin_call_probability", "forced_liquidation_probability",
            "peak_margin_p95")


def metrics_row(metrics) -> dict:
    """One `opl.runtime.results.metrics.RunMetrics` as a flat row: the target metrics with their ``*_se``, the p5 and
    p95 month and the assignment share."""
    values, errors = metrics.target_values(), metrics.standard_errors
    row = {}
    for name in _METRICS:
        row[name] = values[name]
        if name in errors:
            row[f"{name}_se"] = errors[name]
    row["p5_monthly_return"] = metrics.monthly_return["p5"]
    row["p95_monthly_return"] = metrics.monthly_return["p95"]
    row["assignment_share"] = metrics.exercise["assignment_share"]
    return row


def by_size(result):
    """One row per swept size (index ``size``): ``holds`` (the target's verdict, None without a target) and the
    metrics of `metrics_row`."""
    import pandas as pd

    rows = [{"size": size, "holds": holds, **metrics_row(m)} for size, m, holds in result.sizes]
    return pd.DataFrame(rows).set_index("size")


def scenarios(result):
    """One row per stress or sensitivity scenario (index ``scenario``, as written): kind, size, verdict,
    metrics, definition."""
    import pandas as pd

    rows = [{"scenario": s.text, "name": s.name, "kind": s.kind, "size": s.size, "holds": s.holds,
             **metrics_row(s.metrics), "definition": s.definition} for s in result.scenarios]
    columns = ["scenario", "name", "kind", "size", "holds", "definition"]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
    return frame.set_index("scenario")


def monthly_returns(result):
    """Monthly returns in % of capital, one row per path and one column per month (1…horizon), at the plotted
    size (``result.plot_size``)."""
    import pandas as pd

    values = result.monthly_returns * 100.0
    frame = pd.DataFrame(values, columns=pd.RangeIndex(1, values.shape[1] + 1, name="month"))
    frame.index.name = "path"
    return frame


def attribution(result):
    """Mean P&L a month by source at the base size: currency and % of capital (index ``source``)."""
    import pandas as pd

    att = result.base.attribution
    return pd.DataFrame({"per_month": att["per_month"], "percent_of_capital": att["percent_of_capital"]}).rename_axis(
        "source")


def frames(result) -> dict:
    """Every named frame: ``by_size``, ``scenarios``, ``monthly_returns``, ``attribution``."""
    return {"by_size": by_size(result), "scenarios": scenarios(result), "monthly_returns": monthly_returns(result),
            "attribution": attribution(result)}


def _verdict(holds) -> str:
    return {True: "holds", False: "fails", None: "—"}[holds]


def html_summary(result) -> str:
    """The verdict, the table by size and the scenarios as HTML (Jupyter's rich display)."""
    run, b = result.run, result.base
    head = (f"<p><b>{html.escape(str(result.file))}</b>: {run['paths']:,} paths × {run['horizon_months']} months, "
            f"seed {run['seed']}, model {html.escape(' + '.join(result.model['components']))}, capital "
            f"{run['capital']:,.0f} {html.escape(str(run['currency']))}</p>")
    if result.target is not None:
        verdict = (f"<p>target <code>{html.escape(result.target)}</code> <b>{_verdict(result.base_holds)}</b> "
                   f"at size {b.size:g}; ")
    else:
        verdict = "<p>no target; "
    if result.recommended_size is not None:
        verdict += (f"recommended size <b>{result.recommended_size['low']:g} to "
                    f"{result.recommended_size['high']:g}</b> lots</p>")
    else:
        verdict += f"recommended size: none ({html.escape(result.recommended_reason or '')})</p>"
    table = by_size(result).to_html(float_format=lambda v: f"{v:.3f}", na_rep="—")
    parts = [head, verdict, "<p>by size (± columns: one Monte Carlo standard error)</p>", table]
    if result.scenarios:
        frame = scenarios(result)[["kind", "size", "holds", "mean_monthly_return", "median_monthly_return",
                                   "loss_probability", "max_drawdown_p95", "cvar_95"]]
        parts += [f"<p>scenarios at size {result.scenarios[0].size:g}</p>",
                  frame.to_html(float_format=lambda v: f"{v:.3f}", na_rep="—")]
    return "\n".join(parts)
