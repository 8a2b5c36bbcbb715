"""The kernel modules' numba caches share one stamp (opl.runtime.engine.kernelcache): no stale callee."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opl.runtime.engine import kernelcache, kernels, mark_kernels, step_kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")

ENGINE = Path(kernelcache.__file__).resolve().parent


def test_the_stamp_moves_with_any_file(tmp_path):
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    for f in files:
        f.write_text("x = 1\n")
    before = kernelcache.stamp_of(files)
    assert kernelcache.stamp_of(files) == before
    files[1].write_text("x = 2\n")
    assert kernelcache.stamp_of(files) != before


def test_every_engine_module_with_cached_kernels_is_listed():
    # The engine's kernel modules call each other's kernels: each must share the stamp, and each listed one exists.
    compiling = {path.name for path in ENGINE.glob("*.py")
                 if re.search(r"^\s*@njit\(cache=True", path.read_text(), re.MULTILINE)}
    assert compiling == set(kernelcache.MODULES)


def test_kernels_are_cached_under_the_shared_stamp():
    from opl.runtime.engine import adjust_kernels, path_kernels

    expected = kernelcache.stamp_of(ENGINE / name for name in kernelcache.MODULES)
    for dispatcher in (step_kernels._settle, mark_kernels._mark_row, path_kernels._month_serial, adjust_kernels._round):
        locator = dispatcher._cache._impl._locator
        assert isinstance(locator, kernelcache.SharedStamp)
        assert locator.get_source_stamp() == expected


def test_other_files_keep_numbas_locator():
    from opl.runtime.pricing import american_fd

    dispatchers = [value for value in vars(american_fd).values() if hasattr(value, "_cache")]
    assert dispatchers
    for dispatcher in dispatchers:
        assert not isinstance(dispatcher._cache._impl._locator, kernelcache.SharedStamp)
