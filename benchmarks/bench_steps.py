"""The step's compiled bookings per (variant, path): settle, the hedge step and the exits (issue 13).

`opl.runtime.engine.kernels.steps`' serial kernels `_settle` (interest, the slots' moves, the carry and
the close of the futures from exercise), `_hedge_step` (the held slots' sums and the hedge rule) and
`_exits_in_place` (the exit triggers and the close) run at every step of the replay on every variant
and path. This script replays the jujube strangle in-process (``--paths``, one worker, two months),
keeps every ``--stride``-th call of each kernel with copies of its real arguments, then times the
kept calls — CPU seconds of this process, each call on fresh copies of its arguments, the median of
``--repeat`` rounds, alternately:

1. each kernel as the replay calls it: ns a (variant, path);
2. the baseline for settle and the hedge: their stage-by-stage block (`_settle_block`,
   `_hedge_step_block` over every path from a literal 0, a pass per slot and stage: what the
   serial kernels ran before their one pass a variant, now without gathers, called through a
   star-args wrapper), on the same calls;
3. the memory floor: numpy summing once every array the call reads (each kernel must read them).

The ledgers of 1 and 2 are compared bit for bit. Usage::

    python benchmarks/bench_steps.py [--paths 30000] [--stride 11] [--repeat 5]

Only the ratios are meant to be compared across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from opl.runtime.engine import kernels

import jujube_calls  # (benchmarks/, this script's folder)

KERNELS = ("_settle", "_hedge_step", "_exits_in_place")
_SHAPE_OF = {"_settle": 0, "_hedge_step": 4, "_exits_in_place": 0}  # the argument of shape (variants, paths)


def _copy(x, memo: dict):
    """A kernel's argument copied (arrays, tuples of arrays), the same array copied once (arguments may alias),
    read-only arrays kept read-only (another type to numba)."""
    if isinstance(x, np.ndarray):
        if id(x) not in memo:
            c = x.copy()
            c.setflags(write=x.flags.writeable)
            memo[id(x)] = c
        return memo[id(x)]
    if isinstance(x, tuple):
        return tuple(_copy(y, memo) for y in x)
    return x


def capture(paths: int, stride: int) -> dict[str, list[tuple]]:
    """Every ``stride``-th call of each kernel in a two-month jujube replay (`jujube_calls.captured`), its
    arguments copied."""
    kept: dict[str, list[tuple]] = {name: [] for name in KERNELS}
    jujube_calls.captured(kernels.steps, KERNELS, lambda name, args: kept[name].append(_copy(args, {})),
                          paths=paths, stride=stride)
    return kept


@kernels.base.njit(cache=False)
def _settle_blocks(*args):
    # The serial `_settle` before its one pass a variant: the block over every path from a literal 0.
    kernels.steps._settle_block(0, args[0].shape[1], *args)


@kernels.base.njit(cache=False)
def _hedge_blocks(*args):
    kernels.steps._hedge_step_block(0, args[4].shape[1], *args)


def _floor(*args):
    # Every array the call reads, summed once by numpy.
    for x in args:
        for y in (x if isinstance(x, tuple) else (x,)):
            if isinstance(y, np.ndarray) and y.size > 1:
                y.sum()


def _cpu(kernel, calls) -> float:
    """CPU seconds of ``kernel`` on fresh copies of every call's arguments."""
    spent = 0.0
    for args in calls:
        fresh = _copy(args, {})
        start = time.process_time()
        kernel(*fresh)
        spent += time.process_time() - start
    return spent


def _same_ledgers(kernel, baseline, calls) -> bool:
    for args in calls:
        a, b = _copy(args, {}), _copy(args, {})
        kernel(*a)
        baseline(*b)
        for x, y in zip(a, b):
            for u, w in zip(*((x, y) if isinstance(x, tuple) else ((x,), (y,)))):
                if isinstance(u, np.ndarray) and u.tobytes() != w.tobytes():
                    return False
    return True


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=30_000)
    parser.add_argument("--stride", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    jujube_calls.warm()
    kept = capture(args.paths, args.stride)
    baselines = {"_settle": _settle_blocks, "_hedge_step": _hedge_blocks, "_exits_in_place": None}
    print(f"jujube strangle, {args.paths:,} paths, 2 months, one call in {args.stride}; CPU ns a (variant, path), "
          f"median of {args.repeat}")
    for name in KERNELS:
        calls, kernel, baseline = kept[name], getattr(kernels.steps, name), baselines[name]
        elements = sum(c[_SHAPE_OF[name]].size for c in calls)
        runners = {"kernel": kernel, "floor": _floor, **({"blocks": baseline} if baseline else {})}
        for run in runners.values():  # compiled and warm
            _cpu(run, calls[:1])
        times: dict[str, list[float]] = {key: [] for key in runners}
        for _ in range(args.repeat):
            for key, run in runners.items():
                times[key].append(_cpu(run, calls))
        ns = {key: statistics.median(t) / elements * 1e9 for key, t in times.items()}
        line = f"{name:16s} {len(calls):3d} calls  kernel {ns['kernel']:6.2f} ns  floor {ns['floor']:6.2f} ns " \
               f"(kernel/floor {ns['kernel'] / ns['floor']:.2f})"
        if baseline:
            same = _same_ledgers(kernel, baseline, calls)
            line += f"  blocks {ns['blocks']:6.2f} ns (the kernel {ns['blocks'] / ns['kernel']:.2f}x faster, " \
                    f"{'the same bits' if same else 'LEDGERS DIFFER'})"
        print(line)


if __name__ == "__main__":
    main()
