"""The mark kernel's cost per mark against its library floor, its threads and the reference (issue 13).

A mark (`opl.runtime.engine.kernels.marks`) is an American option's value, delta and exercise flag
read from the finite-difference tables: the smile, Black-76 and the bilinear premium. Its costliest
parts are two logs (log(k/s), log of the implied volatility) and two normal CDFs a mark. The C
library's ``log`` and ``erf``/``erfc`` are opaque calls that keep a loop scalar; the kernel makes
them with `opl.runtime.engine.kernels.vecmath` instead (the same algorithms as plain arithmetic, in
loops the compiler vectorises). On one month of ``--paths`` GARCH-t paths (a put 5% below and a
call 5% above the opening price, 30 days, American), timed as CPU seconds of this process (threads
included), the median of ``--repeat`` rounds, alternately:

1. **reference**: `opl.runtime.engine.marking.AmericanMarker.mark` column by column (numpy);
2. **serial**: `SeriesMarks.mark` of the whole month on the kernel's serial twin (a worker
   process's); the two logs and two normal CDFs of every live mark on the same arguments alone,
   once as the C library's calls, each in a scalar loop of its own (what a mark paid before), and
   once as `kernels.vecmath`' vectorised loops (what it pays now);
3. **threads**: the parallel twin (`kernels.base.MARKS_PARALLEL_MIN` lowered), its wall and CPU time:
   a speed-up below 1 means the pool cost more than it saved on this machine at this moment;
4. **re-marks**: `mark_where` as the adjustment module's re-marks call it (five variants, the slot
   held on ``--held`` of the paths, delta and gamma updated in place), and the same call with nothing
   held: the share of a call that is its pass over every (variant, path) (the old marks copied).

With ``--captured PATHS`` it times instead the mark kernel's real calls: every ``--stride``-th call of each of
its twins in a two-month in-process jujube replay (``PATHS`` paths, one worker), cut to the columns each
marks, replayed on the serial twin (CPU ns a mark, the median of ``--repeat`` rounds); with ``--against
FILE`` (an earlier kernels/marks.py, e.g. ``git show main:runtime/engine/kernels/marks.py > /tmp/old.py``:
a copy outside the package, loaded as a module of its own) the two alternately on the same calls, their
marks compared bit for bit.

Usage::

    python benchmarks/bench_marks.py [--paths 30000] [--repeat 5] [--held 0.05]
    python benchmarks/bench_marks.py --captured 30000 [--stride 13] [--against /tmp/old.py]

Only the ratios are meant to be compared across machines.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.marking import AmericanMarker, SmileRule
from opl.runtime.engine.processes import DEFAULTS, PathGenerator, ProcessSpec, RegimeParams

import jujube_calls  # (benchmarks/, this script's folder)

RATE = 0.015
TENOR = 30 / 365


# Cephes' ndtr on the C library's erf/erfc, as the marks made it before kernels.vecmath.
_library_ndtr = kernels.base.njit(cache=False)(kernels.vecmath.ndtr_library)


@kernels.base.njit(cache=False)
def _library_floor(k, s, iv, a1, a2, out):
    # The C library's calls of the marks, on their arguments, each in a loop of its own: log(k/s), log(iv) and
    # the normal CDF of both Black arguments.
    for i in range(k.shape[0]):
        out[i] = math.log(k[i] / s[i])
    for i in range(k.shape[0]):
        out[i] += math.log(iv[i])
    for a in (a1, a2):
        for i in range(a.shape[0]):
            out[i] += _library_ndtr(a[i])


@kernels.base.njit(cache=False, error_model="numpy")
def _vector_math(k, s, iv, a1, a2, out):
    # The same four functions from kernels.vecmath, each in a loop of its own as the kernel runs them (vectorised).
    for i in range(k.shape[0]):
        out[i] = kernels.vecmath.log(k[i] / s[i])
    for i in range(k.shape[0]):
        out[i] += kernels.vecmath.log(iv[i])
    for a in (a1, a2):
        for i in range(a.shape[0]):
            out[i] += kernels.vecmath.ndtr(a[i])


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _month(paths: int):
    spec = ProcessSpec(vol=0.25, garch=DEFAULTS["garch"], jump=DEFAULTS["jump"], regime=RegimeParams(hit_rate=0.6),
                       limit=0.10)
    gen = PathGenerator(spec=spec, paths=paths, price=10_000.0, month_years=TENOR, seed=1, engine="fast")
    mp = gen.next_month()
    n = mp.price.shape[1] - 1
    t = TENOR * (n - np.arange(n + 1)) / n
    legs = [(False, mp.price[:, 0] * 0.95), (True, mp.price[:, 0] * 1.05)]
    return mp, t, legs


def _series(mp, t, is_call: bool, strike: np.ndarray) -> kernels.marks.SeriesMarks:
    return kernels.marks.SeriesMarks(is_call=is_call, american=True, forward=mp.price, vol=mp.vol, strike=strike,
                                     t=t, smile=SmileRule(), rate=RATE, gamma=False)


def _marks_of(mp, t, legs, threshold: int) -> None:
    """Mark every leg's month with the parallel twin from ``threshold`` marks a call."""
    saved = kernels.base.MARKS_PARALLEL_MIN
    kernels.base.MARKS_PARALLEL_MIN = threshold
    try:
        for is_call, strike in legs:
            series = _series(mp, t, is_call, strike)
            for j in range(len(t)):  # a column a call, as the replay marks a month
                series.mark(columns=(j, j + 1), gamma=False)
    finally:
        kernels.base.MARKS_PARALLEL_MIN = saved


def _reference(mp, t, legs) -> None:
    marker, smile = AmericanMarker(american=True, rate=RATE), SmileRule()
    for is_call, strike in legs:
        for j in range(len(t)):
            iv = smile.iv(vol=mp.vol[:, j], forward=mp.price[:, j], strike=strike)
            marker.mark(is_call=is_call, forward=mp.price[:, j], strike=strike, t=float(t[j]), vol=iv)


def _floor_arguments(mp, t, legs) -> list[tuple]:
    """The library calls' arguments of every live column's marks, as the kernel computes them."""
    smile, args = SmileRule(), []
    for is_call, strike in legs:
        phi = 1.0 if is_call else -1.0
        for j in range(len(t) - 1):  # the expiry column is the intrinsic value: no library call
            s, v = mp.price[:, j], mp.vol[:, j]
            x = np.log(strike / s)
            iv = smile.iv(vol=v, forward=s, strike=strike)
            sd = iv * math.sqrt(t[j])
            d1 = (-x + 0.0) / sd + 0.5 * sd
            args.append((np.ascontiguousarray(strike), np.ascontiguousarray(s), iv, phi * d1, phi * (d1 - sd),
                         np.empty(len(s))))
    return args


def _remarks(mp, t, held: float, repeat: int) -> tuple[float, float, int]:
    """CPU seconds of a re-mark call (median) with the slot held on ``held`` of the paths and with none held,
    and the marks the first computes."""
    rng = np.random.default_rng(7)
    paths, j = mp.price.shape[0], 5
    where = np.broadcast_to(rng.random(paths) < held, (5, paths)).copy()
    strike = np.broadcast_to(mp.price[:, 0] * 1.05, (5, paths)).copy()
    price, vol = np.ascontiguousarray(mp.price[:, j]), np.ascontiguousarray(mp.vol[:, j])

    # The old marks as a slot holds them: the value's array is the step's marks before (a new one is made),
    # delta's and gamma's are updated in place (`months._Month._remark_held`); a call again gives the same.
    old = (rng.random((5, paths)), rng.random((5, paths)), rng.random((5, paths)))

    def call(flags):
        return lambda: kernels.marks.mark_where(is_call=True, american=True, where=flags, strike=strike, price=price,
                                                vol=vol, t=float(t[j]), smile=SmileRule(), rate=RATE, old=old,
                                                into=(None, old[1], old[2], None))

    call(where)()  # loads (or compiles) the kernel
    none = np.zeros_like(where)
    some, empty = [], []
    for _ in range(repeat * 5):
        some.append(_cpu(call(where)))
        empty.append(_cpu(call(none)))
    return float(np.median(some)), float(np.median(empty)), int(np.count_nonzero(where[0]))


def capture(paths: int, stride: int) -> list[tuple]:
    """Every ``stride``-th call of each of the mark kernel's twins in a two-month jujube replay
    (`jujube_calls.captured`) as a call of the serial twin on the columns it marks: (arguments with the
    month's arrays cut to those columns, the outputs' columns as they were before the call)."""
    kept = []

    def keep(_name: str, a: tuple) -> None:
        j0, j1 = a[1], a[2]

        def cut(x):
            return np.ascontiguousarray(x[j0:j1]).copy()

        args = (a[0].copy(), 0, j1 - j0, *a[3:6], cut(a[6]), cut(a[7]), a[8].copy(), cut(a[9]), cut(a[10]),
                np.ascontiguousarray(a[11][:, j0:j1]), *a[12:21])
        kept.append((args, tuple(cut(x) for x in a[21:25])))

    jujube_calls.captured(kernels.marks, ("_mark_parallel", "_mark_serial"), keep, paths=paths, stride=stride)
    return kept


def _module_of(path: str):
    """An earlier kernels/marks.py loaded as a module of its own (numba caches its kernels beside that file)."""
    if os.path.realpath(path) == os.path.realpath(kernels.marks.__file__):
        raise SystemExit("--against: a copy of an earlier version, not the package's own file (numba's cache of it "
                         "would be keyed to another module's name)")
    name = "bench_marks_against"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _replayed(module, calls) -> tuple[float, list]:
    """CPU seconds of ``module``'s serial twin on ``calls`` (fresh outputs, copied before the clock), and the
    outputs."""
    outs = [tuple(x.copy() for x in before) for _, before in calls]
    start = time.process_time()
    for (args, _), out in zip(calls, outs):
        module._mark_serial(*args, *out)
    return time.process_time() - start, outs


def captured(paths: int, stride: int, repeat: int, against: str | None) -> None:
    """The ``--captured`` report."""
    jujube_calls.warm()
    calls = capture(paths, stride)
    marks = sum(int(args[0].sum()) * args[2] for args, _ in calls)
    modules = {"this": kernels.marks}
    if against:
        modules["against"] = _module_of(against)
    outputs = {tag: _replayed(m, calls)[1] for tag, m in modules.items()}  # (loads or compiles the twins)
    if against:
        same = all(x.tobytes() == y.tobytes() for mine, theirs in zip(outputs["this"], outputs["against"])
                   for x, y in zip(mine, theirs))
        print(f"marks of this file and of {against}: {'the same bits' if same else 'DIFFERENT'}")
    runs = {tag: [] for tag in modules}
    for _ in range(repeat):
        for tag, m in modules.items():
            runs[tag].append(_replayed(m, calls)[0])
    print(f"{len(calls)} captured calls (one in {stride}) of a 2-month jujube replay at {paths:,} paths, "
          f"{marks:,} marks, serial twin, CPU per mark (median of {repeat}):")
    for tag, spent in runs.items():
        print(f"  {tag}: {float(np.median(spent)) / marks * 1e9:.1f} ns")
    if against:
        print(f"  this / against: {float(np.median(runs['this'])) / float(np.median(runs['against'])):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=30_000, help="paths of the month (the 30k profile's pass)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--held", type=float, default=0.05, help="share of paths holding the re-marked slot")
    parser.add_argument("--captured", type=int, default=0, metavar="PATHS",
                        help="time the kernel's calls captured from a jujube replay of PATHS paths instead")
    parser.add_argument("--stride", type=int, default=13, help="--captured: keep one call in STRIDE")
    parser.add_argument("--against", help="--captured: an earlier kernels/marks.py to time alternately")
    args = parser.parse_args()
    if args.captured:
        captured(args.captured, args.stride, args.repeat, args.against)
        return
    mp, t, legs = _month(args.paths)
    marks = 2 * args.paths * len(t)
    floor_args = _floor_arguments(mp, t, legs)
    floor_marks = sum(len(a[0]) for a in floor_args)
    for threshold in (2**62, 0):
        _marks_of(mp, t, legs, threshold)  # loads (or compiles) both twins
    _library_floor(*floor_args[0])
    _vector_math(*floor_args[0])
    runs = {"reference": [], "serial": [], "floor": [], "vector": [], "threads": [], "threads_wall": []}
    for _ in range(args.repeat):
        runs["reference"].append(_cpu(lambda: _reference(mp, t, legs)))
        runs["serial"].append(_cpu(lambda: _marks_of(mp, t, legs, 2**62)))
        runs["floor"].append(_cpu(lambda: [_library_floor(*a) for a in floor_args]))
        runs["vector"].append(_cpu(lambda: [_vector_math(*a) for a in floor_args]))
        wall, cpu = _timed(lambda: _marks_of(mp, t, legs, 0))
        runs["threads"].append(cpu)
        runs["threads_wall"].append(wall)
    ref, serial, floor, vector, threads, wall = (float(np.median(runs[k])) for k in
                                                 ("reference", "serial", "floor", "vector", "threads", "threads_wall"))
    ns = 1e9 / marks
    print(f"marks, 2 American legs x {args.paths:,} paths x {len(t)} steps ({marks:,} marks), CPU per mark:")
    print(f"  reference (numpy) {ref * ns:.0f} ns, fast serial twin {serial * ns:.0f} ns ({ref / serial:.1f}x faster)")
    print(f"  2 log + 2 ndtr of a live mark, same arguments: C library {floor / floor_marks * 1e9:.1f} ns "
          f"({floor / serial:.0%} of the fast twin's month), "
          f"kernels.vecmath vectorised {vector / floor_marks * 1e9:.1f} ns "
          f"({vector / serial:.0%}; {floor / vector:.1f}x faster) (the expiry's marks are intrinsic values: none)")
    print(f"  parallel twin: {threads * ns:.0f} ns CPU, {wall * ns:.0f} ns wall ({serial / wall:.2f}x faster than "
          f"serial in wall time, {threads / serial:.2f}x its CPU)")
    some, empty, held = _remarks(mp, t, args.held, args.repeat)
    print(f"re-marks (mark_where), 5 variants x {args.paths:,} paths, held on {held:,} paths: "
          f"{some * 1e6:.0f} us a call, "
          f"{empty * 1e6:.0f} us with none held ({empty / some:.0%} of the call: the pass over every element), "
          f"{(some - empty) / max(held, 1) * 1e9:.0f} ns a mark")


if __name__ == "__main__":
    main()
