"""Replay speed and memory, each against a baseline timed in the same run (issue 13's report).

The task is the jujube support/resistance strangle of ``examples/jujube/strangle.opl``
(GARCH + jumps + regime, American legs marked by BAW, hedged every day with 10% kept along
the signal, take-delivery assignment, margin every step, exit triggers, the adjustment
module — a roll and a gamma hedge behind a margin abort — and the default guards).

1. **bare kernel**: the physical floor in numpy — ``--paths`` GBM paths × 21 steps, Black-76
   price and delta of the two legs at every step, a whole-lot futures hedge and the P&L;
   one month, no rules. Every other time is printed as a multiple of it.
2. **whole simulate**: ``opl simulate examples/jujube/strangle.opl --paths N`` as a separate
   process (12 months, five sizes, four stresses, two sensitivities: everything the file
   asks), its wall time, its ratio to the bare kernel and its peak memory (the PSS of the process and
   its workers, from a second run: sampling the memory slows the run it samples).
3. **first run**: the same at 100 paths with an empty numba cache (``NUMBA_CACHE_DIR``), then
   with the cache warm: the kernels' one-off compile time, reported apart.
4. **fast vs reference**: one month of the replay at ``--paths`` paths with
   ``engine="fast"`` (compiled kernels, `opl.runtime.engine.kernels`) and ``engine="reference"``
   (the numpy replay), and their largest ledger difference.
5. **per path**: the same rules written as a straightforward loop over paths and steps in
   Python, one option at a time (one BAW evaluation per option and step for its value and
   delta, scalar margin), on the first ``--sample`` paths of the same chunk, its time scaled
   to ``--paths``; its P&L against the replay's on those paths (the replay's marks come from
   BAW tables, so they agree to the tables' accuracy, not bit for bit).
6. **memory**: peak memory (tracemalloc, one process) of chunked one-month runs at growing
   path counts (``--memory``, 10⁶ by default), and their time per path (linear in paths).
7. **main job**: the README's ``opl loop examples/jujube/strangle.opl --data synth`` in a
   temporary folder (the loop's default paths), its wall time, CPU time and peak memory (from a second
   run, as 2.), and its timeline (`opl.closedloop.timeline`: the data stage, each iteration, the hold-out, the rest).
8. **check**: ``opl check examples/jujube/strangle.opl`` against a bare Python start, and the
   numeric modules it loaded (none: the checker never loads the engine).

Usage::

    python benchmarks/bench_simulate.py [--paths 50000] [--sample 200] [--memory 50000,1000000]
                                        [--skip check,whole,first,reference,main]

Only the ratios are meant to be compared across machines.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np

from opl.runtime.pricing.american import baw_value_delta_gamma
from opl.runtime.pricing.black import value_delta_gamma
from opl.runtime.engine import kernels
from opl.runtime.market.margin import futures_margin, short_option_margin
from opl.runtime.engine.processes import PathGenerator
from opl.runtime.engine.replay import replay
from opl.runtime.engine.runspec import Variant

JUJUBE = Path(__file__).resolve().parents[1] / "examples" / "jujube" / "strangle.opl"


def _setup(paths: int, size: float):
    """The jujube strategy and run as `opl simulate` builds them, for one month."""
    import opl
    from opl.simulation import run as facade
    from opl.compiler.strategy import compile_checked
    from opl.runtime.engine.runspec import RunSpec
    from opl.runtime.market.rules import load_pack

    checked = opl.check_file(JUJUBE)
    compiled = compile_checked(checked).strategy
    settings, spans = facade.settings_from(checked.document, compiled)
    pack = load_pack(compiled.underlying.rule_pack)
    strategy = replace(facade.runtime_strategy(checked, compiled, settings, []), contract_size=pack.underlying.contract_size)
    process = facade.price_process(settings, compiled, pack, spans, [])
    run = RunSpec(process=process, pack=pack, price=compiled.market.price, capital=settings.capital, paths=paths,
                  months=1, seed=settings.seed, chunk=settings.chunk)
    return strategy, run, (Variant(size=size),)


def _per_path(strategy, run, size: float, sample: int) -> tuple[np.ndarray, float]:
    """The replay's rules, one path and one option at a time; returns each path's month P&L and the time.

    The jujube file's adjustment module is written out as the desk would run it:
    ``adjust_when price_retrace(>-3%) or vega_crush(>20%)`` fires where it turns true, at
    least the cooldown after the last round; before each action ``abort_if
    additional_margin(%) > 15`` compares the action's margin with the margin now (and closes
    the position if so); ``roll_nearest_term()`` re-strikes the legs around the current price,
    ``hedge_gamma(target)`` buys calls at the listed strike at or above the future until the
    short gamma is within the target. The default guards (spec §3.3) are checked as well.
    """
    adjust = strategy.adjust
    assert adjust is not None and [a.kind for a in adjust.playbook] == ["roll_nearest_term", "hedge_gamma"]
    target_gamma = adjust.playbook[1].amount
    gen = PathGenerator(spec=run.process, paths=run.chunk if run.paths > run.chunk else run.paths, price=run.price,
                        month_years=strategy.tenor_days / 365, seed=np.random.SeedSequence([run.seed, 0]))
    month = gen.next_month()
    pack, smile, mult, cs, rate = run.pack, strategy.smile, strategy.multiplier, strategy.contract_size, strategy.rate
    fees_o, fees_f = pack.fees.option, pack.fees.futures
    slip_o, slip_f = run.option_ticks * 1.0 * mult, run.futures_ticks * pack.underlying.tick[0].step * cs
    n = gen.steps
    step_days = strategy.tenor_days / n
    tenor = strategy.tenor_days / 365
    hedge_spec, policy = strategy.hedge, strategy.assignment
    lowest = pack.option.strike_grid[0].step
    start = time.perf_counter()
    out = np.zeros(sample)
    for i in range(sample):
        f, vol, signal = month.price[i], month.vol[i], int(month.signal[i])
        atm = smile.atm(vol)
        support, resistance = strategy.levels.of(f[0])

        def snap(x, mode="nearest"):
            return max(float(pack.snap_strike(max(x, lowest), mode=mode)), lowest)

        def resolve(leg, j, recentre):
            s_, r_ = strategy.levels.of(f[j]) if recentre else (support, resistance)
            iv = float(smile.iv(vol=vol[j], forward=f[j], strike=f[j]))
            raw = leg.strike.resolve(is_call=leg.is_call, price=np.array([f[j]]), support=np.array([s_]),
                                     resistance=np.array([r_]), iv=np.array([iv]), t=max(tenor * (n - j) / n, 1e-9),
                                     rate=rate)
            return snap(float(np.atleast_1d(raw)[0]))

        def quote(is_call, k, j):
            """BAW value and delta, Black gamma (what the vectorised marks carry)."""
            t = tenor * (n - j) / n
            phi = 1.0 if is_call else -1.0
            if t <= 0:
                intrinsic = max(phi * (f[j] - k), 0.0)
                return intrinsic, (phi if intrinsic > 0 else 0.0), 0.0
            iv = float(smile.iv(vol=vol[j], forward=f[j], strike=k))
            value, delta, _ = baw_value_delta_gamma(is_call=is_call, underlying=f[j], strike=k, t=t, vol=iv, rate=rate)
            exercised = phi * (f[j] - k) > 0 and value <= max(phi * (f[j] - k), 0.0) + 1e-9
            gamma = 0.0 if exercised else value_delta_gamma(is_call=is_call, underlying=f[j], strike=k, t=t, vol=iv,
                                                            rate=rate)[2]
            return value, delta, gamma

        def avoided(is_call, k, j):
            """The default avoid_leg_if: days_left < 2d && strike_offset > 10%."""
            otm = k > f[j] if is_call else k < f[j]
            return (n - j) * step_days < 2 and otm and abs(k / f[j] - 1) * 100 > 10

        legs = []
        for leg in strategy.legs:
            k = resolve(leg, 0, False)
            legs.append({"call": leg.is_call, "leg": leg, "k": k, "q": 0.0 if avoided(leg.is_call, k, 0)
                         else leg.signed_qty * size})
        calls = {"call": True, "k": None, "q": 0.0, "v": 0.0, "d": 0.0, "g": 0.0}  # the gamma hedge
        pnl = 0.0
        for e in legs:
            e["v"], e["d"], e["g"] = quote(e["call"], e["k"], 0)
            pnl -= abs(e["q"]) * (fees_o.rate("open", short=e["q"] < 0) + slip_o)
        premium = -sum(e["q"] * e["v"] for e in legs) * mult
        hedge, pending, goods, is_open = 0.0, 0.0, 0.0, True

        def held():
            return legs + [calls]

        def rebalance(hedge, pnl, j):
            other = sum(e["q"] * e["d"] for e in held()) * mult / cs
            lots = sum(max(-e["q"], 0.0) for e in legs)
            target = hedge_spec.keep * signal * lots
            if abs(other + hedge - target) > hedge_spec.band * lots:
                new = float(np.rint(target - other))
                pnl -= abs(new - hedge) * (fees_f.rate("open") + slip_f)
                hedge = new
            return hedge, pnl

        def margin(j, shorts, hedge):
            total = futures_margin(pack=pack, price=f[j], lots=abs(hedge) + abs(pending) + abs(goods))
            for is_call, k, v, q in shorts:
                if q < 0:
                    total += short_option_margin(pack=pack, is_call=is_call, underlying=f[j], strike=k, premium=v,
                                                 lots=-q)
            return total

        def aborts(j, now, after):
            return (after - now) / (now if now > 0 else run.capital) * 100 > 15

        def close_all(pnl, hedge):
            for e in held():
                pnl -= abs(e["q"]) * (fees_o.rate("close") + slip_o)
                e["q"] = 0.0
            return pnl - abs(hedge) * (fees_f.rate("close") + slip_f)

        prev = (f[0] / f[0] - 1) * 100 > -3 or (1 - atm[0] / atm[0]) * 100 > 20
        last = -math.inf
        hedge, pnl = rebalance(hedge, pnl, 0)
        for j in range(1, n + 1):
            df = f[j] - f[j - 1]
            for e in held():
                if e["q"] != 0:
                    v, d, g = quote(e["call"], e["k"], j)
                    pnl += e["q"] * (v - e["v"]) * mult
                    e["v"], e["d"], e["g"] = v, d, g
            pnl += (hedge + pending + goods) * df * cs
            pnl -= goods * cs * (policy.storage_per_day * step_days + f[j] * policy.funding_rate * step_days / 365)
            if pending:
                pnl -= abs(pending) * (fees_f.rate("close") + slip_f)
                pending = 0.0
            days_left = (n - j) * step_days
            if is_open and (pnl / abs(premium) * 100 < -25 or days_left < strategy.guard_days):
                pnl = close_all(pnl, hedge)
                hedge, is_open = 0.0, False
            # The adjustment module.
            if is_open and j < n:
                now = (f[j] / f[0] - 1) * 100 > -3 or (1 - atm[j] / atm[0]) * 100 > 20
                fire = now and not prev and (j - last) * step_days >= adjust.cooldown_days - 1e-9
                prev = now
                if fire:
                    last = j
                    shorts = [(e["call"], e["k"], e["v"], e["q"]) for e in legs]
                    moves = []
                    for e in legs:
                        k = resolve(e["leg"], j, True)
                        if e["q"] != 0 and k != e["k"] and not avoided(e["call"], k, j):
                            moves.append((e, k, quote(e["call"], k, j)))
                    after = [(e["call"], k, mk[0], e["q"]) for e, k, mk in moves] + [
                        x for e, x in zip(legs, shorts) if all(e is not m[0] for m in moves)]
                    if aborts(j, margin(j, shorts, hedge), margin(j, after, hedge)):
                        pnl = close_all(pnl, hedge)
                        hedge, is_open = 0.0, False
                    else:
                        for e, k, (v, d, g) in moves:
                            pnl -= abs(e["q"]) * (fees_o.rate("close") + fees_o.rate("open", short=e["q"] < 0)
                                                  + 2 * slip_o)
                            e["k"], e["v"], e["d"], e["g"] = k, v, d, g
                        # hedge_gamma: buying calls adds no margin, so abort_if cannot stop it.
                        per = f[j] * 0.01 * mult / cs
                        rest = sum(e["q"] * e["g"] for e in legs) * per
                        short = sum(max(-e["q"], 0.0) for e in legs) or sum(abs(e["q"]) for e in legs)
                        if rest + calls["q"] * calls["g"] * per < -target_gamma * short and short > 0:
                            k = snap(f[j], "up")
                            v, d, g = quote(True, k, j)
                            lots = min(max(math.ceil((-rest - target_gamma * short) / (g * per)), 0), short) \
                                if g > 0 else 0.0
                            if lots > calls["q"]:
                                if calls["q"] != 0 and calls["k"] == k:
                                    pnl -= (lots - calls["q"]) * (fees_o.rate("open") + slip_o)
                                    calls["q"] = lots
                                elif not avoided(True, k, j):
                                    pnl -= calls["q"] * (fees_o.rate("close") + slip_o)
                                    pnl -= lots * (fees_o.rate("open") + slip_o)
                                    calls.update(k=k, q=float(lots), v=v, d=d, g=g)
            if is_open and j < n:
                hedge, pnl = rebalance(hedge, pnl, j)
            for e in legs:
                k = e["k"]
                phi = 1.0 if e["call"] else -1.0
                intrinsic = max(phi * (f[j] - k), 0.0)
                # The holder exercises where BAW says the option is worth its intrinsic value.
                if e["q"] < 0 and j < n and intrinsic > 0 and e["v"] <= intrinsic + 1e-9:
                    pnl += -e["q"] * (e["v"] - intrinsic) * mult
                    lots = e["q"] * phi
                    if policy.action == "take_delivery" and lots > 0:
                        goods += lots
                    else:
                        pending += lots
                    e["q"] = 0.0
            margin(j, [(e["call"], e["k"], e["v"], e["q"]) for e in legs], hedge)
        out[i] = pnl
    return out, time.perf_counter() - start


def _best(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bare_kernel(paths: int, steps: int = 21, seed: int = 0) -> float:
    """One month of the bare numpy kernel: GBM, Black-76 price and delta of a put and a call, a futures
    hedge in whole lots and the P&L (returns the mean P&L, so nothing is optimised away)."""
    rng = np.random.default_rng(seed)
    dt, vol, price, rate = 30 / 365 / steps, 0.28, 10_400.0, 0.015
    f = price * np.exp(np.cumsum(-0.5 * vol * vol * dt + vol * np.sqrt(dt) * rng.standard_normal((paths, steps)),
                                 axis=1))
    f = np.concatenate([np.full((paths, 1), price), f], axis=1)
    pnl, hedge, before = np.zeros(paths), np.zeros(paths), np.zeros(paths)
    for j in range(steps + 1):
        t = 30 / 365 * (steps - j) / steps
        value, delta = np.zeros(paths), np.zeros(paths)
        for is_call, strike in ((False, 9_800.0), (True, 11_100.0)):
            v, d, _ = value_delta_gamma(is_call=is_call, underlying=f[:, j], strike=strike, t=t, vol=vol, rate=rate,
                                        with_gamma=False)
            value -= v
            delta -= d
        if j:
            pnl += (value - before) * 5.0 + hedge * (f[:, j] - f[:, j - 1]) * 5.0
        before = value
        hedge = -np.rint(delta)
    return float(pnl.mean())


def _tree_memory(root: int) -> int:
    """Proportional set size (KiB) of a process and all its descendants, from /proc: pages a forked
    worker shares with its parent are counted once (0 where unreadable)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(frontier)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                total += sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
        except (OSError, IndexError, ValueError):
            continue
    return total


def _child(command: list[str], env: dict | None = None, cwd: str | None = None, *,
           sample: bool = False) -> tuple[float, float, float | None]:
    """Wall time, CPU time (user + system, workers included: what a busy shared machine does not inflate) and,
    ``sample``, peak memory in MiB (proportional set size) of a child process and its workers together, read
    every 0.2 s; else None. The times of a sampled run are not reported: reading a 1.4 GB process's page
    tables five times a second takes its memory lock under its page faults (the 50,000-path simulate
    8.2–8.9 s sampled against 7.7–8.2 s, three pairs)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    peak = 0
    while sample and proc.poll() is None:
        if os.path.isdir("/proc"):
            peak = max(peak, _tree_memory(proc.pid))
        time.sleep(0.2)
    stderr = proc.stderr.read()
    proc.wait()
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: the target fails, a verdict, not an error
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, peak / 1024.0 if sample else None


def _largest_difference(a, b) -> float:
    pairs = [(a.monthly, b.monthly), (a.max_drawdown, b.max_drawdown), (a.peak_margin, b.peak_margin)]
    pairs += [(a.buckets[k], b.buckets[k]) for k in a.buckets] + [(a.counters[k], b.counters[k]) for k in a.counters]
    return max(float(np.max(np.abs(np.asarray(x, float) - np.asarray(y, float))
                            / np.maximum(np.abs(np.asarray(y, float)), 1.0))) for x, y in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=50_000)
    parser.add_argument("--sample", type=int, default=200, help="paths replayed by the per-path baseline")
    parser.add_argument("--size", type=float, default=10.0, help="position size (lots per leg)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", default="50000,1000000",
                        help="path counts for the chunked peak-memory runs (comma separated, empty: skip)")
    parser.add_argument("--skip", default="", help="comma separated: check, whole, first, reference, main")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    opl = [sys.executable, "-c", "from opl.cli import run; run()"]  # the console script (`opl.cli.allocator`)

    print(f"{os.cpu_count()} cores; the replay's chunks run on {len(os.sched_getaffinity(0))} worker processes")
    bare_kernel(1000)
    bare = _best(lambda: bare_kernel(args.paths), args.repeat)
    print(f"bare numpy kernel (GBM + Black-76 price and delta of two legs + futures hedge), {args.paths:,} x 21: "
          f"{bare:.3f} s")

    if "check" not in skip:
        startup = min(_child([sys.executable, "-c", "pass"])[0] for _ in range(args.repeat))
        check = min(_child([*opl, "check", str(JUJUBE)])[0] for _ in range(args.repeat))
        probe = ("import sys\nfrom opl.cli import main\nsys.argv = ['opl', 'check', sys.argv[1]]\ntry:\n    main()\n"
                 "except SystemExit:\n    pass\nprint(sorted(m for m in ('numpy', 'scipy', 'pandas', 'numba') if m in "
                 "sys.modules))")
        loaded = subprocess.run([sys.executable, "-c", probe, str(JUJUBE)], capture_output=True, text=True).stdout
        print(f"opl check {JUJUBE.name}: {check:.2f} s wall (goal < 0.5 s) = {check / startup:.1f}x a bare Python "
              f"start ({startup:.2f} s); numeric modules loaded: {loaded.strip().splitlines()[-1]}")
    if "whole" not in skip:
        whole = [*opl, "simulate", str(JUJUBE), "--paths", str(args.paths)]
        seconds, cpu, _ = _child(whole)
        peak = _child(whole, sample=True)[2]  # a second run: sampling slows the one it samples
        print(f"whole simulate, {JUJUBE.name} at {args.paths:,} paths (12 months, sizes, stresses, sensitivities): "
              f"{seconds:.1f} s wall ({cpu:.1f} s CPU), peak memory {peak:,.0f} MiB (PSS, with its workers) = {seconds / bare:,.0f}x the bare "
              f"kernel")
    if "first" not in skip:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            cold, cold_cpu, _ = _child([*opl, "simulate", str(JUJUBE), "--paths", "100"], env=env)
            warm, warm_cpu, _ = _child([*opl, "simulate", str(JUJUBE), "--paths", "100"], env=env)
        print(f"first run (empty numba cache) at 100 paths: {cold:.1f} s ({cold_cpu:.1f} s CPU); with the cache warm: "
              f"{warm:.1f} s ({warm_cpu:.1f} s CPU); one-off compile time {max(cold - warm, 0.0):.1f} s")

    strategy, run, variants = _setup(args.paths, args.size)
    replay(strategy=strategy, run=replace(run, paths=1000), variants=variants)  # tables built, kernels loaded
    fast_run = replace(run, engine="fast")
    vector = _best(lambda: replay(strategy=strategy, run=fast_run, variants=variants), args.repeat)
    print(f"fast engine ({'numba kernels' if kernels.available() else 'numba missing: the reference'}): one month, "
          f"{args.paths:,} paths x 21 steps, size {args.size:g}: {vector:.3f} s ({vector / args.paths * 1e6:.2f} us "
          f"per path) = {vector / bare:.1f}x the bare kernel")
    if "reference" not in skip:
        ref_run = replace(run, engine="reference")
        reference = _best(lambda: replay(strategy=strategy, run=ref_run, variants=variants), args.repeat)
        difference = _largest_difference(replay(strategy=strategy, run=fast_run, variants=variants),
                                         replay(strategy=strategy, run=ref_run, variants=variants))
        print(f"reference replay (numpy): {reference:.3f} s; ratio: the fast engine is {reference / vector:.2f}x "
              f"faster, largest ledger difference {difference:.1e} (relative)")

    sample = min(args.sample, args.paths, run.chunk)
    pnl, loop = _per_path(strategy, run, args.size, sample)
    scaled = loop / sample * args.paths
    print(f"per-path Python replay: {sample} paths in {loop:.2f} s, scaled to {args.paths:,} paths: {scaled:.1f} s")
    print(f"ratio: vectorised is {scaled / vector:,.0f}x faster per path")
    check = replay(strategy=strategy, run=replace(run, paths=min(run.chunk, args.paths)), variants=variants)
    diff = np.abs(check.monthly[0, :sample, 0] - pnl)
    print(f"agreement on the {sample} sample paths: median |difference| {np.median(diff):.2f}, "
          f"90% within {np.percentile(diff, 90):.2f}, max {diff.max():.2f} {run.pack.currency} (month P&L std "
          f"{check.monthly[0, :, 0].std():,.0f})")

    counts = [int(c) for c in args.memory.split(",") if c.strip()]
    per_path = {}
    for count in counts:
        tracemalloc.start()
        start = time.perf_counter()
        # One process (tracemalloc sees no child): with W workers each holds one chunk's working set more.
        replay(strategy=strategy, run=replace(run, paths=count, workers=1), variants=variants)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        per_path[count] = seconds / count
        print(f"peak memory, {count:,} paths in chunks of {run.chunk:,}, one process: {peak / 2**30:,.2f} GiB "
              f"({seconds:.1f} s under tracemalloc, {seconds / count * 1e6:.1f} us per path)")
    if len(per_path) > 1:
        low, high = min(per_path), max(per_path)
        print(f"linearity: time per path at {high:,} paths / at {low:,} paths = {per_path[high] / per_path[low]:.2f} "
              "(1.00: time linear in paths)")

    if "main" not in skip:
        job = [*opl, "loop", str(JUJUBE), "--data", "synth", "--runs", "runs/jujube"]
        with tempfile.TemporaryDirectory() as folder:
            seconds, cpu, _ = _child(job, cwd=folder)
            from opl.closedloop.timeline import format_timeline, timeline

            # Where its wall time went, from the run folder's own record of each phase.
            print(format_timeline(timeline(Path(folder) / "runs" / "jujube" / f"{JUJUBE.stem}-001")))
        with tempfile.TemporaryDirectory() as folder:
            peak = _child(job, cwd=folder, sample=True)[2]  # a second run: sampling slows the one it samples
        print(f"main job (opl loop {JUJUBE.name} --data synth --runs runs/jujube, its default paths): {seconds:.1f} s "
              f"wall ({cpu:.1f} s CPU), peak memory {peak:,.0f} MiB (PSS, with its workers) = {seconds / bare:,.0f}x "
              "the bare kernel")


if __name__ == "__main__":
    main()
