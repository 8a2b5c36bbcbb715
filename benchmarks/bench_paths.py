"""One month of price paths: the fast engine's compiled month against the numpy reference (issue 13).

Both generators draw the same numbers (`opl.runtime.engine.processes.PathGenerator`,
``engine="reference"`` and ``engine="fast"``), so the difference is the arithmetic; the
draws alone are timed too, since the compiled month cannot make them cheaper. Months are
timed alternately, reference then fast, and reported as CPU seconds of this process
(threads included) — the median of ``--months`` months each — so a busy machine slows
both alike; the ratio is the result, not the milliseconds.

Usage::

    python benchmarks/bench_paths.py [--paths 10000] [--months 30] [--model garch+jump+regime+limit]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.processes import DEFAULTS, PathGenerator, ProcessSpec, RegimeParams

MODELS = {
    "gbm": ProcessSpec(vol=0.25),
    "garch+jump+regime+limit": ProcessSpec(vol=0.25, garch=DEFAULTS["garch"], jump=DEFAULTS["jump"],
                                           regime=RegimeParams(hit_rate=0.6), limit=0.10),
}


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=10_000, help="paths of the chunk (sim.chunk's default)")
    parser.add_argument("--months", type=int, default=30)
    parser.add_argument("--model", choices=list(MODELS), default="garch+jump+regime+limit")
    parser.add_argument("--serial", action="store_true", help="the kernel's serial twin (a worker process's)")
    args = parser.parse_args()
    if args.serial:
        kernels.serial_only()
    spec = MODELS[args.model]
    gens = {e: PathGenerator(spec=spec, paths=args.paths, price=10_000.0, month_years=30 / 365, seed=1, engine=e)
            for e in ("reference", "fast")}
    for gen in gens.values():
        gen.next_month()  # the first fast month loads (or compiles) the kernel
    times = {e: [] for e in gens}
    draws = []
    for _ in range(args.months):
        for engine, gen in gens.items():
            times[engine].append(_cpu(gen.next_month))
        draws.append(_cpu(lambda: (gens["fast"]._raw_shocks((args.paths, 21)), gens["fast"]._jump_draws(21))))
    ref, fast, drawn = (float(np.median(t)) for t in (times["reference"], times["fast"], draws))
    print(f"next_month, {args.model}, {args.paths:,} paths x 21 steps, {'serial' if args.serial else 'threaded'}: "
          f"reference {ref * 1e3:.1f} ms CPU, fast {fast * 1e3:.1f} ms CPU ({ref / fast:.2f}x faster); "
          f"the draws alone {drawn * 1e3:.1f} ms ({drawn / fast:.0%} of the fast month)")


if __name__ == "__main__":
    main()
