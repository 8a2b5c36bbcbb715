"""The adjustment round's dispatch: what a call of `kernels.adjust._round` costs before its work (issue 13).

numba unboxes every argument of a compiled call, a tuple of arrays array by array; the jujube replay
calls the round ~1,080 times, on a few paths each, so a call's arguments can cost more than its
work. The round takes the inputs that stay over a pass's step and a month as two structrefs
(`kernels.adjust.RoundStep`, `RoundOwn`: one pointer each). This script replays the jujube strangle
in-process (``--paths``, small: the work negligible, one worker, two months), keeps every
``--stride``-th round's arguments (copied), then times, in CPU microseconds a call, the median of
``--repeat`` rounds, alternately:

1. the round as the replay calls it, each call on fresh copies of its arguments;
2. its arguments alone: an empty compiled function taking them (the dispatch, nothing run);
3. the same arguments with the two structrefs' fields passed as the tuples they hold (the 166 arrays
   the call carried before them): the dispatch they save.

Usage::

    python benchmarks/bench_round.py [--paths 100] [--stride 7] [--repeat 5]

Only the ratios are meant to be compared across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from opl.runtime.engine import kernels

import jujube_calls  # (benchmarks/, this script's folder)
from bench_steps import _copy


# Each structref field's getter (a proxy has no Python attributes of its own).
_FIELDS = {name: kernels.base.njit(cache=False)(eval(f"lambda s: s.{name}"))
           for name in (*kernels.adjust._STEP_FIELDS, *kernels.adjust._OWN_FIELDS)}


def _fresh(args: tuple) -> tuple:
    """A round's arguments copied (`bench_steps._copy`), its `RoundOwn` made anew of copies (the round writes it)."""
    memo: dict = {}
    out = []
    for x in args:
        if isinstance(x, kernels.adjust.RoundOwn):
            x = kernels.adjust.round_own(*[_copy(_FIELDS[name](x), memo) for name in kernels.adjust._OWN_FIELDS])
        out.append(_copy(x, memo))
    return tuple(out)


def _unpacked(args: tuple) -> tuple:
    """The round's arguments with its structrefs' fields in their place, as tuples (what the call carried before)."""
    out = []
    for x in args:
        if isinstance(x, kernels.adjust.RoundStep):
            out.extend(_FIELDS[name](x) for name in kernels.adjust._STEP_FIELDS)
        elif isinstance(x, kernels.adjust.RoundOwn):
            out.extend(_FIELDS[name](x) for name in kernels.adjust._OWN_FIELDS)
        else:
            out.append(x)
    return tuple(out)


def _arrive(count: int):
    """A compiled function of ``count`` arguments that only unboxes them (its own arguments, not ``*args``: a
    structref in a star-args call costs ~60 us more to dispatch)."""
    names = ", ".join(f"a{i}" for i in range(count))
    return kernels.base.njit(cache=False)(eval(f"lambda {names}: 0"))


def _arrays(x) -> int:
    if isinstance(x, np.ndarray):
        return 1
    return sum(_arrays(y) for y in x) if isinstance(x, tuple) else 0


def _cpu(run, calls: list[tuple], fresh: bool) -> float:
    """CPU seconds of ``run`` on every call (on fresh copies of its arguments if ``fresh``)."""
    spent = 0.0
    for args in calls:
        args = _fresh(args) if fresh else args
        start = time.process_time()
        for _ in range(20):  # (a call is microseconds: twenty a reading)
            run(*args)
        spent += (time.process_time() - start) / 20
    return spent


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--stride", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    jujube_calls.warm()
    calls: list[tuple] = []
    jujube_calls.captured(kernels.adjust, ("_round",), lambda name, a: calls.append(_fresh(a)), paths=args.paths,
                          stride=args.stride)
    unpacked = [_unpacked(c) for c in calls]
    runs = {"round": (kernels.adjust._round, calls, True), "arguments": (_arrive(len(calls[0])), calls, False),
            "as tuples": (_arrive(len(unpacked[0])), unpacked, False)}
    for run, kept, fresh in runs.values():  # compiled and warm
        _cpu(run, kept[:1], fresh)
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(args.repeat):
        for key, (run, kept, fresh) in runs.items():
            times[key].append(_cpu(run, kept, fresh))
    us = {key: statistics.median(t) / len(calls) * 1e6 for key, t in times.items()}
    print(f"jujube strangle, {args.paths:,} paths, 2 months, {len(calls)} rounds (one in {args.stride}); CPU us a "
          f"call, median of {args.repeat}")
    print(f"round {us['round']:6.1f} us; its arguments alone {us['arguments']:5.1f} us ({_arrays(calls[0])} arrays "
          f"and two structrefs); as tuples {us['as tuples']:5.1f} us ({_arrays(unpacked[0])} arrays): "
          f"{us['as tuples'] / us['arguments']:.2f}x the dispatch, {us['as tuples'] - us['arguments']:.1f} us a call "
          f"saved")


if __name__ == "__main__":
    main()
