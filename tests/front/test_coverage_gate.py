"""The front end's error branches stay tested: line coverage of the numpy-free modules
`opl check` runs, measured over tests/front, is at least 95% (issue 15, item 6).

Slow (it reruns tests/front under coverage in a subprocess); run with `pytest -m slow`.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONT = ["opl/lang/parser.py", "opl/lang/lower.py", "opl/lang/fields.py", "opl/lang/templates.py", "opl/lang/normalise.py",
         "opl/lang/legs.py", "opl/lang/document.py", "opl/lang/jsonlegs.py", "opl/lang/conditions.py", "opl/lang/argkinds.py",
         "opl/lang/estimates.py", "opl/lang/checks/*", "opl/lang/diagnostics.py", "opl/lang/render/*", "opl/lang/fmt.py",
         "opl/lang/codes.py", "opl/lang/vocabulary.py", "opl/lang/source.py", "opl/lang/limits.py", "opl/lang/frontend.py",
         "opl/lang/ir.py", "opl/lang/literals.py"]
BAR = 95.0


@pytest.mark.slow
def test_front_end_line_coverage_is_at_least_95_percent(tmp_path):
    import coverage  # in the `test` extra

    data = tmp_path / ".coverage"
    run = subprocess.run(
        [sys.executable, "-m", "coverage", "run", f"--data-file={data}", "--source=opl",
         "-m", "pytest", "tests/front", "-q", "-x", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    measured = coverage.Coverage(data_file=str(data))
    measured.load()
    table = io.StringIO()
    total = measured.report(include=[str(ROOT / pattern) for pattern in FRONT], show_missing=True, file=table)
    print(table.getvalue())  # the per-module figures, for `pytest -m slow -s`
    assert total >= BAR, f"front-end line coverage {total:.1f}% is below {BAR}%:\n{table.getvalue()}"
