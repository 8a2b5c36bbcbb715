"""The step's margin and account kernel per (variant, path) against the numpy reference (issue 13).

Stage 7 of a step (`opl.runtime.engine.step._Pass._requirement`) is the book's exchange requirement
(the pack's single-leg formula and the combination pairings over the series held on each path), the
margin calls, the liquidation decision, the margin peak and the drawdown. The fast engine does it in one
compiled call (`kernels.requirement_account`, `kernels.margin._requirement_account` on a worker's serial
twin). On books shaped as a jujube run's (CZCE margin with its combinations; a short strangle of two
series, and two more after a roll: ``--held`` of the paths hold one of the two strangles, the rest
nothing; 1, 2 and 5 variants, the first two series one row for all variants, as a book's base legs),
timed as CPU seconds of this process, the best of ``--repeat`` rounds, alternately:

1. **kernel**: the serial twin on the step's arguments (what a step's call runs, without its Python glue);
2. **reference**: `positions._margin` (the combinations of `opl.runtime.market.combinations`, numpy) and
   the account's numpy lines of `_Pass._requirement`, the same inputs: the requirement, calls, peaks and
   drawdown must come out the same bits.

Usage::

    python benchmarks/bench_margin.py [--paths 30000] [--repeat 5] [--held 0.65]

Only the ratios are meant to be compared across machines.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine import positions
from opl.runtime.engine.book import Book
from opl.runtime.engine.runspec import Variant
from opl.runtime.market.rules import load_pack

CAPITAL, BUFFER = 1e6, 0.2


def _book(rng, variants: int, paths: int, series: int, held: float) -> tuple[list, np.ndarray]:
    """``series`` option series (call, put, call, put: a strangle and its rolled twin) as `_holdings` tuples,
    and the hedge futures lots. A path holds one strangle (short, 1-20 lots a variant) with probability
    ``held``, the first or the second alike; the first strangle's strikes and marks are one row for every
    variant, the second's per variant."""
    level = 10_000.0
    pick = rng.random(paths)
    holds = [(pick < held / 2), (pick >= held / 2) & (pick < held)]
    sizes = np.array([1.0, 2.0, 5.0, 10.0, 20.0])[:variants, None]
    holdings = []
    for i in range(series):
        call, strangle = i % 2 == 0, i // 2
        rows = 1 if strangle == 0 else variants
        strike = np.round(level * np.exp(rng.normal(0.08 if call else -0.08, 0.03, (rows, paths))), -2)
        premium = np.abs(rng.normal(120.0, 60.0, (rows, paths)))
        lots = -sizes * holds[strangle][None, :]
        holdings.append((call, strike if rows > 1 else strike[0], premium if rows > 1 else premium[0],
                         np.ascontiguousarray(np.broadcast_to(lots, (variants, paths))), 0.0))
    return holdings, rng.integers(-3, 4, (variants, paths)).astype(float)


def _account_state(rng, shape):
    equity = CAPITAL * (1.0 + rng.normal(0.0, 0.05, shape))
    return [equity, np.zeros(shape, dtype=np.int64), np.zeros(shape), equity * 1.02, np.zeros(shape)]


def _reference(packs, holdings, hedge, price, state) -> np.ndarray:
    equity, calls, peak_margin, peak, max_dd = state
    requirement = positions._margin(packs, Book(equity.shape), None, None, price, legs=holdings,
                                        futures_lots=np.abs(hedge))
    call = (equity < requirement) & (requirement > 0)
    calls += call
    np.maximum(peak_margin, requirement / CAPITAL, out=peak_margin)
    np.maximum(peak, equity, out=peak)
    np.maximum(max_dd, (peak - equity) / peak, out=max_dd)
    return requirement


def _kernel_arguments(rule, holdings, hedge, price, state) -> tuple:
    equity, calls, peak_margin, peak, max_dd = state
    shape = equity.shape
    return kernels.margin._requirement_arguments(
        rule, holdings, static=0.0, hedge=hedge, other=np.zeros(shape), price=price, equity=equity, capital=CAPITAL,
        margin_buffer=BUFFER, calls=calls, liquidate=np.empty(shape, dtype=np.bool_), peak_margin=peak_margin,
        peak=peak, max_dd=max_dd, out=np.empty(shape))


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--held", type=float, default=0.65, help="share of paths holding a strangle")
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    pack = load_pack("czce_cj")
    price = 10_000.0 * np.exp(rng.normal(0.0, 0.05, args.paths))
    print(f"{args.paths:,} paths, CZCE margin with combinations, {args.held:.0%} of paths holding a strangle; "
          "CPU ns per (variant, path), best of", args.repeat)
    print(f"{'series':>6} {'variants':>8} {'kernel':>8} {'reference':>10} {'ratio':>7}")
    for series in (0, 2, 4):
        for variants in (1, 2, 5):
            packs = positions._margin_packs(pack, tuple(Variant() for _ in range(variants)))
            rule = kernels.MarginRule.of(packs)
            holdings, hedge = _book(rng, variants, args.paths, series, args.held)
            state = _account_state(rng, (variants, args.paths))
            ours, theirs = [x.copy() for x in state], [x.copy() for x in state]
            call = _kernel_arguments(rule, holdings, hedge, price, ours)
            kernels.margin._requirement_account(*call)  # compiled (or loaded) before the clock starts
            requirement = _reference(packs, holdings, hedge, price, theirs)
            same = np.array_equal(call[-1], requirement) and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
            if not same:
                raise SystemExit(f"the kernel's numbers differ from the reference's ({series} series, {variants} "
                                 "variants)")
            elements = variants * args.paths
            kernel = _best(lambda: kernels.margin._requirement_account(*call), args.repeat)
            reference = _best(lambda: _reference(packs, holdings, hedge, price, theirs), args.repeat)
            print(f"{series:>6} {variants:>8} {1e9 * kernel / elements:>8.1f} {1e9 * reference / elements:>10.1f} "
                  f"{reference / kernel:>6.1f}x")


if __name__ == "__main__":
    main()
