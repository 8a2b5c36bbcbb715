"""Where a finished run's wall time went, read back from its folder (no clock of its own).

The archive already holds each phase's duration: ``facts.json``'s ``seconds`` (the data stage: synthetic
data, assumption tests, calibration), each ``iter_k/result.json``'s ``seconds`` (its share of its round's wall
time) and the hold-out evaluation's ``seconds`` in ``final/holdout.json``. The run's start and end are the
modification times of ``run.json`` (written when the run starts) and ``report.md`` (written last), so what the
phases leave of that span is the rest: starting the interpreter is not in it, the final report and the
writes between phases are.

>>> for row in timeline("runs/jujube/strangle-001"):            # doctest: +SKIP
...     print(row["phase"], row["seconds"])

``python -m opl.closedloop.timeline RUN_FOLDER`` prints the table (`format_timeline`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["timeline", "format_timeline"]


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _iteration_row(record: dict[str, Any]) -> dict[str, Any]:
    decision, evaluation = record.get("decision") or {}, record.get("evaluation") or {}
    kind = decision.get("kind", "")
    if not evaluation:
        detail = "not evaluated"
    elif kind == "baseline" or evaluation.get("complete"):
        detail = "complete evaluation"  # the baseline, and a candidate kept (accepted or diagnosed)
    else:
        detail = "quick evaluation"
    return {"phase": f"iteration {record['iteration']}", "kind": kind, "detail": detail,
            "accepted": bool(decision.get("accepted")), "seconds": float(record.get("seconds") or 0.0)}


def timeline(root: str | Path) -> list[dict[str, Any]]:
    """The phases of the run in ``root``, in order: ``{"phase", "kind", "detail", "accepted", "seconds",
    "end"}`` each (``end``: seconds from the run's start), with the rest of the run's span last (``"other"``:
    the final report and the writes between phases) when the run has a report."""
    root = Path(root)
    start = (root / "run.json").stat().st_mtime
    rows = []
    facts = _read(root / "facts.json")
    if facts is not None:
        rows.append({"phase": "data", "kind": "", "detail": "synthetic data, assumption tests, calibration",
                     "accepted": True, "seconds": float(facts.get("seconds") or 0.0)})
    iterations = sorted((p for p in root.glob("iter_*") if p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
    for folder in iterations:
        record = _read(folder / "result.json")
        if record is not None:
            rows.append(_iteration_row(record))
    holdout = _read(root / "final" / "holdout.json")
    if holdout is not None:
        seconds = float((holdout.get("evaluation") or {}).get("seconds") or 0.0)
        rows.append({"phase": "hold-out", "kind": "", "detail": f"iteration {holdout.get('iteration')}",
                     "accepted": True, "seconds": seconds})
    report = root / "report.md"
    if report.is_file():
        rest = report.stat().st_mtime - start - sum(r["seconds"] for r in rows)
        rows.append({"phase": "other", "kind": "", "detail": "final report, writes between phases",
                     "accepted": True, "seconds": max(rest, 0.0)})
    end = 0.0
    for row in rows:
        end += row["seconds"]
        row["end"] = end
    return rows


def format_timeline(rows: list[dict[str, Any]]) -> str:
    """The timeline as a table, then the seconds by kind of phase (data, quick and complete evaluations,
    hold-out, other)."""
    lines = [f"{'phase':<14}{'seconds':>9}{'end':>9}  what"]
    totals: dict[str, list] = {}
    for row in rows:
        what = " ".join(x for x in (row["kind"], row["detail"], "" if row["accepted"] else "(rejected)") if x)
        lines.append(f"{row['phase']:<14}{row['seconds']:>9.1f}{row['end']:>9.1f}  {what}")
        group = row["detail"] if row["phase"].startswith("iteration") else row["phase"]
        totals.setdefault(group, [0, 0.0])
        totals[group][0] += 1
        totals[group][1] += row["seconds"]
    lines.append("by kind: " + "; ".join(f"{group} {n}× {seconds:.1f} s" for group, (n, seconds) in totals.items()))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a convenience for benchmarks and people
    print(format_timeline(timeline(sys.argv[1])))
