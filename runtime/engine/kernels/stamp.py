"""One numba cache stamp for all the fast engine's kernel modules: editing one recompiles them all.

numba keys a cached kernel by the text of its own source file only. A kernel that calls a kernel of
another module (`opl.runtime.engine.kernels.adjust` calls `opl.runtime.engine.kernels.marks._mark_row`, for
one) has the callee's machine code linked into its own cache entry, so after an edit of the callee's
module the caller's entry still loads — and silently runs the old callee, until its own file changes.
That is a stale result nobody asked for, in a test comparing the fast engine with the reference or in a
benchmark. `install` registers cache locators, tried before numba's own, that give every kernel of
`MODULES` one stamp: the hash of all their texts. Where they live stays numba's choice
(``NUMBA_CACHE_DIR``, else the ``__pycache__`` beside the source, else the user-wide cache); functions
of other files keep numba's behaviour.

The cost: an edit of any kernel module recompiles every kernel (a few minutes of CPU on a fresh
clone, as anyway). An installed package's files do not change, so users never pay it twice.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

# The modules whose compiled kernels call each other's: the shared helpers, the marks' log/exp/ndtr, the marks,
# the margin, the step, the month of paths, the adjustment round.
MODULES = ("base.py", "vecmath.py", "marks.py", "margin.py", "steps.py", "paths.py", "adjust.py")
_HERE = Path(__file__).resolve().parent


def stamp_of(files) -> bytes:
    """The SHA-256 of the files' names and texts, in the order given."""
    digest = hashlib.sha256()
    for path in files:
        path = Path(path)
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.digest()


@lru_cache(maxsize=1)
def _stamp() -> bytes:
    # Once a process: a kernel module edited while a process runs is not reloaded by it either.
    return stamp_of(_HERE / name for name in MODULES)


_FILES = frozenset(os.path.realpath(_HERE / name) for name in MODULES)


class SharedStamp:
    """Mixin for numba's source-file-backed locators: `MODULES`' functions only, with the shared stamp."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.realpath(py_file) not in _FILES:
            return None  # any other function: the next locator (numba's own) takes it
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return _stamp()


def install() -> None:
    """Put the shared-stamp locators first in numba's list (once a process; before any kernel is defined)."""
    from numba.core import caching

    classes = caching.CacheImpl._locator_classes
    if any(issubclass(k, SharedStamp) for k in classes):
        return
    bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
    classes[:0] = [type(f"Shared{base.__name__}", (SharedStamp, base), {}) for base in bases]
