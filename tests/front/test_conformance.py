"""Conformance: every spec example and every shipped strategy checks as documented.

Each fixture under tests/fixtures/spec/ has a golden `<name>.expected` file listing its
diagnostics as `line:column: CODE message`. Set OPL_UPDATE_SNAPSHOTS=1 to rewrite them
after an intended change, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opl.lang.frontend import check_path

ROOT = Path(__file__).resolve().parents[2]
SPEC = sorted(p for p in (ROOT / "tests" / "fixtures" / "spec").iterdir() if p.suffix in (".opl", ".json"))
STRATEGIES = sorted((ROOT / "strategies").glob("*.opl"))
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.opl") if p.name != "bad.opl")  # the tour's broken file


def _lines(path: Path) -> str:
    report = check_path(path).report
    return "".join(f"{d.span.line}:{d.span.column}: {d.code} {d.message}\n" for d in report.sorted())


@pytest.mark.parametrize("path", SPEC, ids=lambda p: p.name)
def test_spec_example_checks_as_documented(path: Path):
    expected_path = path.with_name(path.name + ".expected")
    actual = _lines(path)
    if os.environ.get("OPL_UPDATE_SNAPSHOTS") == "1":
        expected_path.write_text(actual)
    assert expected_path.exists(), f"no golden file for {path.name}; run with OPL_UPDATE_SNAPSHOTS=1"
    assert actual == expected_path.read_text()


@pytest.mark.parametrize("path", SPEC, ids=lambda p: p.name)
def test_spec_examples_have_no_errors(path: Path):
    report = check_path(path).report
    assert not report.has_errors, [(d.code, d.message) for d in report.diagnostics]


@pytest.mark.parametrize("path", STRATEGIES + EXAMPLES, ids=lambda p: p.name)
def test_library_strategies_check_clean(path: Path):
    report = check_path(path).report
    problems = [(d.code, d.span.line, d.message) for d in report.diagnostics if d.severity != "note"]
    assert problems == []


def test_library_is_large_enough():
    assert len(STRATEGIES) >= 15


@pytest.mark.parametrize("path", STRATEGIES + EXAMPLES, ids=lambda p: p.name)
def test_shipped_files_are_in_canonical_form(path: Path):
    from opl.lang.fmt import format_text

    result = format_text(path.read_text(encoding="utf-8"), str(path))
    assert not result.changed, f"run `opl fmt --write {path.relative_to(ROOT)}`"
