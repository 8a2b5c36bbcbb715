"""The run's timeline read back from its folder (`opl.closedloop.timeline`)."""

from __future__ import annotations

import json
import os

from opl.closedloop.timeline import format_timeline, timeline


def _write(path, data, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def test_the_phases_come_from_the_archive_and_the_rest_from_its_first_and_last_files(tmp_path):
    _write(tmp_path / "run.json", {"schema": "opl.loop.run/1"}, 1000.0)
    _write(tmp_path / "facts.json", {"seconds": 6.5}, 1006.5)
    records = [(0, "baseline", True, True, 10.0), (1, "parameter", False, False, 3.0),
               (2, "parameter", True, True, 7.0), (10, "parameter", False, False, 4.0)]
    for k, kind, accepted, complete, seconds in records:
        _write(tmp_path / f"iter_{k}" / "result.json",
               {"iteration": k, "seconds": seconds, "decision": {"kind": kind, "accepted": accepted},
                "evaluation": {"complete": complete}}, 1100.0)
    _write(tmp_path / "final" / "holdout.json", {"iteration": 2, "evaluation": {"seconds": 30.0}}, 1100.0)
    _write(tmp_path / "report.md", "# report\n", 1000.0 + 6.5 + 24.0 + 30.0 + 2.5)
    rows = timeline(tmp_path)
    assert [r["phase"] for r in rows] == ["data", "iteration 0", "iteration 1", "iteration 2", "iteration 10",
                                          "hold-out", "other"]
    assert [r["detail"] for r in rows[1:5]] == ["complete evaluation", "quick evaluation", "complete evaluation",
                                                "quick evaluation"]
    assert rows[-1]["seconds"] == 2.5 and rows[-1]["end"] == 63.0
    text = format_timeline(rows)
    assert "quick evaluation 2× 7.0 s" in text and "complete evaluation 2× 17.0 s" in text and "(rejected)" in text


def test_a_run_without_data_or_report_has_only_its_iterations(tmp_path):
    _write(tmp_path / "run.json", {}, 50.0)
    _write(tmp_path / "iter_0" / "result.json", {"iteration": 0, "seconds": 1.25, "evaluation": None,
                                                 "decision": {"kind": "baseline", "accepted": False}}, 60.0)
    [row] = timeline(tmp_path)
    assert (row["phase"], row["detail"], row["end"]) == ("iteration 0", "not evaluated", 1.25)
