"""The fast engine's compiled kernels (numba), each the fused twin of a numpy reference: their public face.

The replay's numpy code (`opl.runtime.engine.marking`, the step's stages in `opl.runtime.engine.step` and
`opl.runtime.engine.positions`, the adjustment round in `opl.runtime.engine.adjust`) stays the
**reference implementation**; a kernel computes the same formulas in the same order
in one pass over its elements, without the temporaries and the per-call overhead of
dozens of whole-array numpy operations. Differences from the reference are rounding only
(the marks' normal CDF, ``exp`` and ``log`` are `opl.runtime.engine.kernels.vecmath`' bit-level
versions, within an ulp or two of scipy's and numpy's), which
``tests/simulate/test_fast_engine.py`` bounds at 1e-9 relative on whole ledgers.

Rules every kernel keeps:

* ``@njit(cache=True)``: compiled once per machine, the machine code cached beside its
  file (``__pycache__``), so later processes load it in a fraction of a second; an edit of
  any kernel module recompiles them all (`opl.runtime.engine.kernels.stamp`: a kernel's cache
  entry holds the kernels of other modules it calls);
* no ``fastmath``: IEEE arithmetic, no reassociation, so results do not depend on the
  vector width;
* ``parallel=True`` only over independent elements (paths): each element's arithmetic is
  the same whatever thread runs it, so a seed gives bit-identical results with 1 or N
  threads;
* no array assigned to a slice (``a[:] = b``): numba compiles its shape-mismatch error for
  it, a message formatted from the shapes (numba's string formatting: ~5 s of a fresh
  cache's compile, once per number of dimensions); a loop copies instead (a number
  assigned to a slice, ``a[:] = 0.0``, raises nothing).

`available()` says whether numba is installed; without it the replay runs the reference.

The kernels live in this package, one module per stage of a step, each the twin of its numpy reference:

* `opl.runtime.engine.kernels.base` — numba, its cache and thread pool (`serial_only`, the
  ``*_PARALLEL_MIN`` thresholds, read there at call time), the argument shapes every kernel takes;
* `opl.runtime.engine.kernels.stamp` — the kernel modules' shared numba cache stamp;
* `opl.runtime.engine.kernels.vecmath` — log, exp and the normal CDF as vectorisable arithmetic;
* `opl.runtime.engine.kernels.marks` — the marks (`SeriesMarks`, `mark_series`, `mark_where`);
* `opl.runtime.engine.kernels.margin` — the margin requirement and the account after a step
  (`book_margin`, `requirement_account`, `account`);
* `opl.runtime.engine.kernels.steps` — the step's bookings, exits, closes, exercise and hedge
  (`settle`, `exits_close`, `close_book`, `hedge_step`, …);
* `opl.runtime.engine.kernels.steppack` — the step kernels with a pass's constant arguments made once
  (`StepPack`; Python only, outside the stamp);
* `opl.runtime.engine.kernels.paths` — the month of price paths;
* `opl.runtime.engine.kernels.adjust` — the adjustment module's round.

The package re-exports the marks', margin's and steps' public functions, so the replay reads
``kernels.settle``, and imports every stage module but `steppack`, so a caller that imports the package reads
``kernels.adjust.round_pass`` or ``kernels.base.BOOK_SLOTS`` (patch a threshold there: it is read at call time).
"""

from __future__ import annotations

from opl.runtime.engine.kernels import adjust, base, margin, marks, paths, stamp, steps, vecmath
from opl.runtime.engine.kernels.base import available, serial_only, threads_allowed, writable
from opl.runtime.engine.kernels.margin import MarginRule, account, book_margin, requirement_account
from opl.runtime.engine.kernels.marks import SeriesMarks, mark_series, mark_where
from opl.runtime.engine.kernels.steps import (EXIT_OPS, any_short_exercised, book_sold, close_book, exercise,
                                              exits_close, futures_lots, hedge_step, settle, shorts_exercised)

__all__ = ["available", "serial_only", "threads_allowed", "writable", "SeriesMarks", "mark_series", "mark_where",
           "MarginRule", "book_margin", "requirement_account", "account", "any_short_exercised", "futures_lots",
           "exercise", "settle",
           "close_book", "hedge_step", "exits_close", "EXIT_OPS", "book_sold", "shorts_exercised"]
