"""The kernel modules' numba caches share one stamp (opl.runtime.engine.kernels.stamp): no stale callee."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opl.runtime.engine import kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")

KERNELS = Path(kernels.stamp.__file__).resolve().parent


def test_the_stamp_moves_with_any_file(tmp_path):
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    for f in files:
        f.write_text("x = 1\n")
    before = kernels.stamp.stamp_of(files)
    assert kernels.stamp.stamp_of(files) == before
    files[1].write_text("x = 2\n")
    assert kernels.stamp.stamp_of(files) != before


def test_every_engine_module_with_cached_kernels_is_listed():
    # The engine's kernel modules call each other's kernels: each must share the stamp, each listed one exists, and
    # none lives outside the kernels package (the stamp covers that folder only).
    compiling = {path.relative_to(KERNELS.parent) for path in KERNELS.parent.rglob("*.py")
                 if re.search(r"^\s*@njit\(cache=True", path.read_text(), re.MULTILINE)}
    assert compiling == {Path(KERNELS.name) / name for name in kernels.stamp.MODULES}


def test_kernels_are_cached_under_the_shared_stamp():
    expected = kernels.stamp.stamp_of(KERNELS / name for name in kernels.stamp.MODULES)
    for dispatcher in (kernels.steps._settle, kernels.marks._mark_row, kernels.paths._month_serial,
                       kernels.adjust._round):
        locator = dispatcher._cache._impl._locator
        assert isinstance(locator, kernels.stamp.SharedStamp)
        assert locator.get_source_stamp() == expected


def test_other_files_keep_numbas_locator():
    from opl.runtime.pricing import american_fd

    dispatchers = [value for value in vars(american_fd).values() if hasattr(value, "_cache")]
    assert dispatchers
    for dispatcher in dispatchers:
        assert not isinstance(dispatcher._cache._impl._locator, kernels.stamp.SharedStamp)
