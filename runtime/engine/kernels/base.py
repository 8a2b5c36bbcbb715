"""What every compiled kernel module shares: numba, its cache and thread pool, and the argument shapes.

numba is a declared dependency; without it `available()` is False and the replay runs the numpy
reference. Here: the kernel modules' shared cache stamp (`opl.runtime.engine.kernels.stamp`),
numba's threading layer, when a kernel runs on the thread pool (`PARALLEL_MIN`,
`MARKS_PARALLEL_MIN`, `STEP_PARALLEL_MIN`, read at call time, so `serial_only` and a test's
monkeypatch reach every module), the small compiled helpers the stages share, and the Python
functions that hand a kernel its arguments in one shape each (C-ordered, writable, broadcast to
(variants, paths), slot tuples padded), so each kernel compiles to one signature.
"""

from __future__ import annotations

import math
import os

import numpy as np

try:  # numba is a declared dependency; an environment without it runs the numpy reference
    import numba
    from numba import njit, prange
    from numba.core import types
    from numba.core.imputils import impl_ret_borrowed
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = njit = prange = None

if numba is not None:
    from opl.runtime.engine.kernels import stamp

    stamp.install()  # before the first kernel: the kernel modules' caches share one stamp

if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # The replay forks worker processes (opl.runtime.engine.passes); GNU OpenMP, numba's first choice where
    # present, kills a child forked after its threads ran. The built-in work queue does not.
    numba.config.THREADING_LAYER = "workqueue"


__all__ = ["available", "serial_only", "threads_allowed", "writable", "PARALLEL_MIN", "MARKS_PARALLEL_MIN",
           "STEP_PARALLEL_MIN"]

PARALLEL_MIN = 20_000  # elements from which a kernel runs on the thread pool
# Marks from which the mark kernel does (~1 ms of work, against tens of microseconds to wake the pool): a
# step's column of held paths in a one-process run (a 10,000-path chunk) uses both cores.
MARKS_PARALLEL_MIN = 8_192
# Elements from which the step's margin, settle and hedge kernels run on the thread pool. They do a few
# nanoseconds of work an element; measured on the jujube steps (5 variants x 10,000 paths, an idle 2-core
# machine) the pool's launch cost more than it saved (settle 0.35 -> 1.0 ms a call, the requirement 0.93 ->
# 1.1 ms), so only far larger calls use it.
STEP_PARALLEL_MIN = 2**22
_BLOCK = 512  # paths a thread marks per call (amortises the call; many blocks keep both threads busy)


def serial_only() -> None:
    """Run every kernel on its serial twin from now on (a worker process: the processes share the cores)."""
    global PARALLEL_MIN, MARKS_PARALLEL_MIN, STEP_PARALLEL_MIN
    PARALLEL_MIN = MARKS_PARALLEL_MIN = STEP_PARALLEL_MIN = 2**62


def threads_allowed() -> bool:
    """Whether this process may run work on more than one thread (not after `serial_only`)."""
    return PARALLEL_MIN < 2**62


# Constants a kernel passes to another kernel, typed as the run-time values the other callers pass: a bare 0,
# True or False is typed as a literal, and numba compiles the callee once more for each literal argument (and, for
# a counter started at 0, once more for the literal first: its type while the caller is still being typed).
_ZERO, _TRUE, _FALSE = np.int64(0), np.True_, np.False_


def available() -> bool:
    """Whether the compiled kernels can run (numba importable)."""
    return njit is not None


if njit is not None:

    # -- helpers of several stages' kernels ---------------------------------------------------------------------

    @njit(cache=True)
    def _npmax(a, b):
        # numpy.maximum: NaN wins.
        if a != a or b != b:
            return math.nan
        return a if a >= b else b

    @njit(cache=True, inline="always")
    def _row(x, v):
        # Row v of an array broadcast to (variants, paths) (`_grid`): (paths,), or (1,) for a number.
        return x[v if x.shape[0] > 1 else 0]

    @njit(cache=True, inline="always")
    def _el(row, p):
        return row[p if row.shape[0] > 1 else 0]

    @intrinsic
    def _viewed(typingctx, a):
        # An array as its read-only type, the same data: a kernel's own scratch passed where another caller passes
        # `_grid` views, so the callee keeps one signature (a read-only array is a type of its own to numba).
        if not isinstance(a, types.Array):
            return None

        def codegen(context, builder, signature, args):
            return impl_ret_borrowed(context, builder, signature.return_type, args[0])

        return a.copy(readonly=True)(a), codegen

    @njit(cache=True, inline="always")
    def _slot_views(a):
        # The first `BOOK_SLOTS` rows of a (slots, ...) array as the tuple of read-only views the margin takes a
        # book's series in (`_slot_tuple`'s type). Written out: a tuple's length is fixed when it is compiled.
        return (_viewed(a[0]), _viewed(a[1]), _viewed(a[2]), _viewed(a[3]), _viewed(a[4]),
                _viewed(a[5]), _viewed(a[6]), _viewed(a[7]), _viewed(a[8]), _viewed(a[9]),
                _viewed(a[10]), _viewed(a[11]), _viewed(a[12]), _viewed(a[13]), _viewed(a[14]),
                _viewed(a[15]))

    @njit(cache=True, inline="always")
    def _compare(op, x, bound):
        # triggers._OPS by code: <, >, <=, >=, ==, != (EXIT_OPS).
        if op == 0:
            return x < bound
        if op == 1:
            return x > bound
        if op == 2:
            return x <= bound
        if op == 3:
            return x >= bound
        if op == 4:
            return x == bound
        return x != bound


def _plain(x, shape) -> np.ndarray:
    """``x`` as a C-ordered, writable float64 array of ``shape`` (broadcast, copied if need be): one array type
    per kernel argument, so each kernel is compiled once. An array already so is returned as is, checked by
    its flags (most are: np.require's own checks cost more than many of the kernels it feeds)."""
    if type(x) is np.ndarray and x.shape == shape and x.dtype == _FLOAT:  # (`_ready` inline: called at every
        flags = x.flags                                                     # kernel's every argument)
        if flags.c_contiguous and flags.writeable:
            return x
    x = np.asarray(x, dtype=float)
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    return np.require(x, dtype=float, requirements=["C", "W"])


def _input(x, shape) -> np.ndarray:
    """``x`` as a C-ordered, read-only float64 array of ``shape``, for an argument a kernel only reads (a month's
    prices and volatilities, a step's row of them): one compiled type whether ``x`` is a month's own array or
    one the month store keeps read-only (`opl.runtime.engine.monthstore`), which the kernels then read where
    it lies instead of a copy of it (a month's prices and volatilities were copied for every replay reading
    a stored month: 1.7% of the main job's CPU). A writable array is given as a read-only view of itself."""
    if type(x) is np.ndarray and x.shape == shape and x.dtype == _FLOAT:  # (`_ready` inline, as `_plain`)
        flags = x.flags
        if flags.c_contiguous:
            if flags.writeable:
                x = x.view()
                x.setflags(write=False)
            return x
    x = np.array(np.broadcast_to(np.asarray(x, dtype=float), shape), dtype=float, order="C")
    x.setflags(write=False)
    return x


def _ready(x, shape, dtype) -> bool:
    """Whether ``x`` is already a C-ordered, writable array of ``shape`` and ``dtype``."""
    if type(x) is not np.ndarray or x.shape != shape or x.dtype != dtype:
        return False
    flags = x.flags  # (each read of ``x.flags`` makes a new object: a step asks this some thirty times)
    return flags.c_contiguous and flags.writeable


def _rows_c(x, shape) -> np.ndarray:
    """`_rows` as a C-ordered float64 array (a strided or broadcast slot attribute copied)."""
    if type(x) is np.ndarray and x.ndim == 2 and x.dtype == _FLOAT and x.flags.c_contiguous:
        return x  # most: a slot's marks or strikes per variant and path as they are
    x = _rows(x, shape)
    return x if x.dtype == np.float64 and x.flags.c_contiguous else np.ascontiguousarray(x, dtype=float)


_FLOAT, _BOOL = np.dtype(np.float64), np.dtype(np.bool_)
_ONE = np.zeros((1, 1))  # a dummy series (no series held) and a zero broadcast anywhere, read-only as `_grid`'s
_ONE.flags.writeable = False


def _grid(x) -> np.ndarray:
    """``x`` as a kernel reads an array broadcast to (variants, paths) (``_at``, ``_row``): C-ordered floats of shape
    (1 or variants, 1 or paths) — a number (1, 1), per path (1, paths), per variant and path as it is —,
    without a copy where it already is so.

    A read-only view: the kernels take these in tuples indexed at run time, whose arrays must all have one
    type, and a month's marks shared by a store are read-only (a writable copy would cost a copy).
    """
    view = _grid_view(x)
    if view is not None:
        return view
    x = np.asarray(x, dtype=float)
    if x.ndim < 2:
        x = x.reshape(1, -1)
    x = np.ascontiguousarray(x).view()
    x.flags.writeable = False
    return x


def _grid_view(x) -> np.ndarray | None:
    """`_grid` of the usual arguments, which need no copy (a view of ``x``, or the shared zero for a number 0),
    else None."""
    # A step makes some forty of these: the usual arguments take a short way (and ``setflags``, which costs two
    # thirds of ``flags.writeable =``).
    if type(x) is np.ndarray:
        if x.dtype == _FLOAT:
            flags = x.flags
            if flags.c_contiguous:
                ndim = x.ndim
                if ndim == 2:  # most: a slot's lots or marks as they are
                    if not flags.writeable:
                        return x  # read-only already: its view would be the same array
                    x = x.view()
                    x.setflags(write=False)
                    return x
                if ndim == 1:  # a base slot's marks (a column of the month's), a strike per path
                    x = x.reshape(1, x.shape[0])
                    x.setflags(write=False)
                    return x
    elif x.__class__ is float and x == 0.0 and math.copysign(1.0, x) > 0.0:
        return _ONE  # no futures held (`positions._static`): the read-only (1, 1) zero
    return None


def _plain_bool(x, shape) -> np.ndarray:
    """`_plain` for flags (bool)."""
    if type(x) is np.ndarray and x.shape == shape and x.dtype == _BOOL:  # (`_ready` inline)
        flags = x.flags
        if flags.c_contiguous and flags.writeable:
            return x
    x = np.asarray(x, dtype=np.bool_)
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    return np.require(x, dtype=np.bool_, requirements=["C", "W"])


def _rows(x, shape) -> np.ndarray:
    """A slot's marks as rows: (1, paths) when per path or one number, (variants, paths) when per variant.
    A month's marks are a strided column of its (paths, steps) tables, read in place: a copy would pay the
    same cache misses and an allocation."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        return x
    return x[None, :] if x.ndim == 1 else np.full((1, shape[1]), float(x))


def _slot_tuple(arrays, least: int = 8) -> tuple:
    """Slot arrays as the fused kernels read them: a tuple of `_grid` views, padded (`_padded`).

    Kept by the arrays' identities (`_TUPLES`) when every entry is a view: a step's kernels ask for the same
    slots' lots, strikes and marks again and again (the lots and strikes all month, a step's marks at the
    next step's settle and at its margin), and each tuple cost a `_grid` an entry. A view reads the array's
    current elements, so an array written in place needs no new tuple; an array replaced is another key.
    A tuple made anew takes each array's view from `_VIEWS` where an earlier tuple made it (a step's marks are
    in the settle's, the hedge's and the margin's tuples, each with other arrays beside them).
    """
    arrays = tuple(arrays)
    key = (least, *map(id, arrays))
    kept = _TUPLES.get(key)
    if kept is not None:  # the arrays kept alive with it: their ids name these very arrays
        return kept[1]
    if len(_TUPLES) >= _TUPLES_KEPT:
        forget_tuples()  # (first: the views about to be made are counted in `_KEPT_REFS`)
    # (Operators, not calls, where they will do — ``in``, subscripts, a comprehension —: this runs some ten times a
    # step, most arrays' views made already.)
    ids, refs = key[1:], _KEPT_REFS
    views = [_VIEWS[i][1] if i in _VIEWS else None for i in ids]  # (``x`` kept alive there: its id names it)
    for k, x in enumerate(arrays):
        if views[k] is not None:
            continue
        i = ids[k]
        if i in _VIEWS:  # an array twice in the tuple: its view made just now
            views[k] = _VIEWS[i][1]
            continue
        view = _grid_view(x)
        if view is None:  # copied: a copy does not follow its array, so the tuple is not kept
            return _padded(tuple([_grid(x) for x in arrays]), _ONE, least)
        views[k] = view
        if view is not x:  # a view made (``x`` writable, or a column): kept with ``x`` for the next tuples
            _VIEWS[i] = (x, view)  # (a number 0 too: the shared zero, `_grid_view`)
            if type(x) is np.ndarray and x.base is None:  # the entry's reference and the view's (its base)
                refs[i] = refs[i] + 2 if i in refs else 2
    n = len(views)
    out = (*views, *_PADS[:least - n]) if n <= least <= 16 else _padded(tuple(views), _ONE, least)
    _TUPLES[key] = (arrays, out)
    for x, i, view in zip(arrays, ids, views):
        if type(x) is np.ndarray and x.base is None:  # the entry's reference, and its view's when ``x`` is it
            refs[i] = (refs[i] if i in refs else 0) + (2 if view is x else 1)
    return out


def kept_own(arrays: tuple):
    """What `keep_own` kept for exactly these ``arrays`` (the same objects, in order), or None."""
    kept = _TUPLES.get(("own", *map(id, arrays)))
    return None if kept is None else kept[1]


def keep_own(arrays: tuple, made) -> None:
    """Keep ``made`` — tuples of ``arrays`` themselves (no views), which a kernel writes in place — by the arrays'
    identities, as `_slot_tuple` keeps its tuples (its references to each array counted: `kept_references`), so
    that an array the kernel writes is still written in place, not copied, by `months._unshared`'s test."""
    if len(_TUPLES) >= _TUPLES_KEPT:
        forget_tuples()
    _TUPLES[("own", *map(id, arrays))] = (arrays, made)
    for x in arrays:
        if type(x) is np.ndarray and x.base is None:
            _KEPT_REFS[id(x)] = _KEPT_REFS.get(id(x), 0) + 2


# `_slot_tuple`'s tuples by (least, the arrays' ids), each with its arrays (alive, so no other object takes an id
# while the entry lasts). Emptied when full and at each month's open (`forget_tuples`): a month's entries would
# keep its marks alive.
_TUPLES: dict[tuple, tuple] = {}
_TUPLES_KEPT = 64
_PADS = (_ONE,) * 16  # `_padded`'s dummies up to `BOOK_SLOTS`, by a slice
# The read-only views `_slot_tuple` made, by the id of their array, each with its array (alive); emptied with
# `_TUPLES` (so at most its tuples' entries, and the arrays of a tuple not kept).
_VIEWS: dict[int, tuple] = {}
# The references the kept tuples and views hold to each array owning its data, by id (`kept_references`): a view
# kept, two (the entry's, and the view's: its base); a tuple, one an entry (its arrays), two where the array is
# its own view (read-only: it is in the tuple too).
_KEPT_REFS: dict[int, int] = {}


def forget_tuples() -> None:
    """Drop `_slot_tuple`'s kept tuples and views (a month's open: their arrays are not asked for again)."""
    _TUPLES.clear()
    _VIEWS.clear()
    _KEPT_REFS.clear()


def kept_references(x: np.ndarray) -> int:
    """The references `_slot_tuple`'s kept tuples hold to ``x`` (an array owning its data): readers of its current
    elements only, which a write into it in place leaves right (`opl.runtime.engine.months._unshared`)."""
    return _KEPT_REFS.get(id(x), 0)


# Entries the margin's tuples of a book's series are padded to at least (`_padded`): the step's and the adjustment
# round's, which may price every slot of its book — the legs', a dynamic slot per leg a roll moves and the gamma
# hedge's: nine for a four-leg candidate of the loop (one more than 8) —, so that both compile one signature.
BOOK_SLOTS = 16  # (`_slot_views` writes its views out: change both together)


def _padded(arrays: tuple, dummy, least: int = 8) -> tuple:
    """``arrays`` padded with ``dummy`` to ``least`` entries (a power of two: 8, or `BOOK_SLOTS`), then 2·least, ….

    A tuple's length is part of a compiled kernel's signature, and the kernels take the count of real entries as
    an argument of its own (or read it from an array of one entry per slot): unpadded, every step kernel was
    compiled once for each number of slots a run's books held (two and four, and one for none, in the jujube
    file: each of a fresh clone's first runs compiled them three times over). From 8, not 4: the loop's
    candidates hold books of five or six series too, and a fresh machine's main job compiled every step kernel
    again when the first appeared (~55 s of CPU); four more dummy entries cost a call microseconds (their
    unboxing), not a compile.
    """
    n = len(arrays)
    width = least if n <= least else 1 << (n - 1).bit_length()
    return arrays + (dummy,) * (width - n) if width > n else arrays


def writable(x, shape, dtype=np.float64) -> np.ndarray:
    """``x`` itself when a kernel may write it in place (C-ordered, writable, of ``shape`` and ``dtype``), else
    a copy."""
    if isinstance(x, np.ndarray) and x.shape == shape and x.dtype == dtype:
        flags = x.flags
        if flags.c_contiguous and flags.writeable:
            return x
    return np.array(np.broadcast_to(x, shape), dtype=dtype)


_SCRATCH = np.zeros((1, 1))  # a writable dummy position where a tuple of positions written in place is empty


_NO_FLAGS = np.zeros((1, 1), dtype=np.bool_)  # a dummy slot's flags, read-only as `_flag_grid`'s
_NO_FLAGS.flags.writeable = False


def _flag_view(x) -> np.ndarray:
    """`_flag_grid` of a slot's exercise flags, kept in `_VIEWS` as `_slot_tuple` keeps its views (its references
    counted likewise) where it is a view of ``x`` itself (C-ordered flags): a dynamic slot's flags are written in
    place by its re-marks, so the next step's exercise scan reads the same view."""
    i = id(x)
    if i in _VIEWS:  # (``x`` kept alive there: its id names this very array)
        return _VIEWS[i][1]
    view = _flag_grid(x)
    if type(x) is np.ndarray and x.dtype == _BOOL and x.flags.c_contiguous:  # (no copy: a view of ``x``)
        _VIEWS[i] = (x, view)
        if x.base is None:  # the entry's reference and the view's (its base)
            _KEPT_REFS[i] = _KEPT_REFS[i] + 2 if i in _KEPT_REFS else 2
    return view


def _flag_grid(x) -> np.ndarray:
    """`_grid` for flags (bool)."""
    if type(x) is np.ndarray and x.dtype == np.bool_ and x.ndim == 1 and x.flags.c_contiguous:
        x = x.reshape(1, x.shape[0])  # most: a base slot's exercise flags, a column of the month's
        x.setflags(write=False)
        return x
    x = np.asarray(x, dtype=np.bool_)
    if x.ndim < 2:
        x = x.reshape(1, -1)
    x = np.ascontiguousarray(x).view()
    x.flags.writeable = False
    return x
