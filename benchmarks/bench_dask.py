"""Scale-out on a Dask cluster (issue 18): the speed-up of 1 and 2 local worker processes against the
in-process run of the same job timed in the same run, what one task costs, and an extrapolation to
100 workers × 10⁷ paths × 50 candidates.

1. **simulate**: `opl.simulation.run.simulate_file` of ``examples/jujube/strangle.opl`` (its sizes, stresses and
   sensitivities) at ``--paths`` paths and ``--months`` months: in this process on one core
   (``sim.workers=1``, the baseline), then on a `distributed.LocalCluster` of 1 and of 2 worker processes
   (127.0.0.1, one thread each, `opl.simulation.cluster.session`); wall times as ratios to the baseline, the
   results compared bit for bit (JSON).
2. **task sizes**: the pickled job (strategy, run settings, variants: sent once per replay), the bytes a
   pass sends back per path (its per-path arrays), the compute seconds per path-month of a replay.
3. **scheduler overhead**: ``--tasks`` empty tasks submitted and gathered on the 2-worker cluster; the
   wall time per task.
4. **loop**: ``opl loop`` rounds on 2 local workers with ``--batch 1`` and ``--batch 2`` (``--iterations``
   candidates each, at the loop's default 10,000 paths; ``--repeat`` runs of each, in alternation, each on
   a fresh cluster warmed by an untimed run on another seed, so that neither reads the months and marks the
   other made): candidates per minute of the rounds' wall time, and their ratio; beside it the CPU seconds
   of the rounds (from the first proposal to the last iteration written) of this process's main thread
   (proposing, deciding, archiving), of all its threads (with the candidates' evaluations, which run here
   in threads while their replays are the workers' tasks, the Dask client and the LocalCluster's scheduler),
   and of the workers — which the machine's load does not inflate as it does wall time. On a saturated
   machine the rates follow the total CPU, which batching does not cut. Where the workers idle (the
   scheduler's task stream): no task anywhere, between rounds or within one, or a worker idle while another
   computes; and the ceiling 1 / (the workers' busy share) that no batching can pass on those workers.
   ``--one-worker`` adds ``--batch 1`` runs on a single worker (the scale-out proper: ``--batch 2`` on 2
   workers against it).
5. **extrapolation**: 100 workers × 10⁷ paths × 50 candidates from the numbers above (printed with its
   formula): compute, tasks and their scheduler time, bytes back to the client.

Usage::

    python benchmarks/bench_dask.py [--paths 20000] [--months 1] [--tasks 500] [--iterations 8]
                                    [--loop-paths 10000] [--repeat 1] [--skip simulate,loop]
                                    [--one-worker] [--loop-file examples/jujube/strangle.opl --loop-data synth]

The machine is shared: the load average is printed beside the ratios (on 2 cores, ratios near 2 need a
load below ~1). Only the ratios are meant to be compared across machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUJUBE = ROOT / "examples" / "jujube" / "strangle.opl"
STRANGLE_HEAD = (ROOT / "tests" / "fixtures" / "loop" / "strangle_head.opl").read_text()
LOOP_FILE = STRANGLE_HEAD + """\
experiment {
  model garch + jump
  seed 7
  horizon 2
  sizes [ 5, 10, 20 ]
  target median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%
}
"""
WARM_SEED = 8  # the untimed warm-up run's seed: not LOOP_FILE's (7, the timed runs'), nor jujube's


def _json(result) -> str:
    from opl.runtime.results.records import json_safe

    return json.dumps(json_safe(result.to_dict()), sort_keys=True, allow_nan=False)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _simulate(args, overrides, totals=None):
    from opl.simulation.run import simulate_file

    started = time.perf_counter()
    result = simulate_file(JUJUBE, paths=args.paths, overrides=overrides,
                           progress=None if totals is None else lambda done, total: totals.append(total))
    return result, time.perf_counter() - started


def bench_simulate(args) -> dict:
    from opl.simulation.cluster import session

    overrides = [f"experiment.horizon={args.months}"]
    _simulate(argparse.Namespace(paths=200, months=1), overrides)  # compile and load once, untimed
    totals: list[int] = []
    base, t0 = _simulate(args, overrides + ["sim.workers=1"], totals)
    print(f"simulate {JUJUBE.name}: {args.paths:,} paths x {args.months} month(s); {_load()}")
    print(f"  in this process, one core      {t0:8.2f} s  (baseline)")
    out = {"baseline": t0, "result": base, "path_months": totals[-1]}
    for workers in (1, 2):
        with session(workers=workers) as cluster:
            _simulate(argparse.Namespace(paths=200, months=1), overrides)  # the workers compile once, untimed
            before = cluster.client.run_on_scheduler(_pass_tasks)
            with _Sent() as sent:
                result, seconds = _simulate(args, overrides)
            same = _json(result) == _json(base)
            print(f"  LocalCluster, {workers} worker{'s' if workers > 1 else ' '}       {seconds:8.2f} s  "
                  f"{t0 / seconds:5.2f}x faster than the baseline; results bit-identical: {same}")
            out[workers] = seconds
            if workers == 2:
                tasks = len(cluster.client.run_on_scheduler(_pass_tasks) - before)
                out["task_bytes"] = sent.bytes / max(1, tasks)
                print(f"  {tasks} pass tasks (and a job task per replay); this process serialised {sent.bytes:,} "
                      f"bytes meanwhile: {out['task_bytes']:,.0f} a pass task (an upper bound: the LocalCluster's "
                      "scheduler runs here, so the results it forwards to the client are counted too)")
                out.update(task_sizes(args, t0, totals[-1]))
                out["overhead"] = scheduler_overhead(cluster, args.tasks)
    return out


class _Sent:
    """Counts the bytes this process serialises for the cluster (distributed.protocol.dumps: every message
    of the client, and of the LocalCluster's scheduler, which runs in this process)."""

    def __enter__(self):
        import distributed.protocol

        self.bytes = 0
        self._dumps = distributed.protocol.dumps

        def counted(*a, **k):
            frames = self._dumps(*a, **k)
            self.bytes += sum(len(memoryview(f).cast("B")) for f in frames)
            return frames

        distributed.protocol.dumps = counted
        return self

    def __exit__(self, *exc):
        import distributed.protocol

        distributed.protocol.dumps = self._dumps
        return False


def _pass_tasks(dask_scheduler=None) -> set:
    return {key for key, start, finish, *_ in dask_scheduler.transition_log
            if str(key).startswith("opl-chunk") and finish == "memory"}


def task_sizes(args, baseline: float, path_months: int) -> dict:
    """Bytes of a job and of a pass's result per path; compute seconds per path-month of a replay."""
    from dataclasses import replace

    import cloudpickle

    from opl.runtime.engine.replay import REMOTE, replay_pass

    captured = []

    def spy(jobs, progress=None):  # records the jobs a cluster would get, computes nothing
        captured.extend(jobs)
        raise _Captured

    token = REMOTE.set(spy)
    try:
        _simulate(args, [f"experiment.horizon={args.months}"])
    except _Captured:
        pass
    finally:
        REMOTE.reset(token)
    strategy, run, variants, _ = captured[0]
    job_bytes = len(cloudpickle.dumps((strategy, run, variants)))
    paths = 500
    part = replay_pass(strategy, replace(run, paths=paths, chunk=paths), variants, ((0, paths),))
    result_bytes = len(cloudpickle.dumps(part)) / paths
    per_path_month = baseline / path_months
    print(f"  a job (strategy, run, {len(variants)} variants) pickles to {job_bytes:,} bytes, sent once per replay")
    print(f"  a pass sends back {result_bytes:,.0f} bytes per path ({len(variants)} variants x {args.months} "
          f"month(s): P&L, ledger buckets, counters, drawdown and margin peaks, float64)")
    print(f"  compute: {per_path_month * 1e6:,.1f} us per path-month (baseline / {path_months:,} path-months of "
          f"all its replays)")
    return {"job_bytes": job_bytes, "result_bytes_per_path": result_bytes, "per_path_month": per_path_month,
            "replays": path_months // (args.paths * args.months)}


class _Captured(Exception):
    """Raised by the capturing hook once it has the first job."""


def scheduler_overhead(cluster, tasks: int) -> float:
    """Wall seconds per empty task, submitted and gathered one batch at a time."""
    client = cluster.client
    client.gather(client.map(_noop, range(20), pure=False))  # warm
    started = time.perf_counter()
    client.gather(client.map(_noop, range(tasks), pure=False))
    per_task = (time.perf_counter() - started) / tasks
    print(f"  scheduler overhead: {per_task * 1e3:.2f} ms per task ({tasks} empty tasks on 2 workers)")
    return per_task


def _noop(x):
    return x


#: The loop runs `bench_loop` times: name → (workers, --batch).
LOOP_RUNS = {"--batch 1": (2, 1), "--batch 2": (2, 2), "--workers 1 --batch 1": (1, 1)}


def bench_loop(args) -> dict:
    """`--batch 1` against `--batch 2` (and the optional runs of `LOOP_RUNS`), ``args.repeat`` times in
    alternation, each run on a cluster of its own (the workers' month stores start alike: a run never reads
    the months and marks another one made). Returns each run's median rate (candidates a minute)."""
    import statistics

    names = ["--batch 1", "--batch 2"] + (["--workers 1 --batch 1"] if args.one_worker else [])
    rates: dict[str, list[float]] = {name: [] for name in names}
    print(f"loop: {args.iterations} candidates at {args.loop_paths:,} paths; {_load()}")
    for _ in range(args.repeat):
        for name in names:
            workers, batch = LOOP_RUNS[name]
            rates[name].append(_loop_rate(args, batch, workers=workers))
    for name, base in (("--batch 2", "--batch 1"), ("--batch 2", "--workers 1 --batch 1")):
        ratios = [two / one for one, two in zip(rates.get(base, []), rates.get(name, []))]
        if ratios:
            print(f"  {name} runs {statistics.median(ratios):.2f}x faster (candidates per minute) than {base} "
                  f"(median of {len(ratios)}: {', '.join(f'{r:.2f}' for r in ratios)}); {_load()}")
    return {name: statistics.median(r) for name, r in rates.items() if r}


def _loop_rate(args, batch: int, *, workers: int = 2) -> float:
    """Candidates per minute of the rounds of one run with ``--batch batch`` on a fresh cluster of ``workers``,
    warmed by an untimed run on another seed (modules, kernels and tables loaded; none of its months read)."""
    from distributed import get_task_stream

    from opl.simulation.cluster import session
    from opl.closedloop.builtin import BuiltinProposer
    from opl.closedloop.run import LoopSettings, run_loop, start_run

    with tempfile.TemporaryDirectory() as tmp, session(workers=workers) as cluster:
        source = Path(tmp) / "loop.opl"
        source.write_text(Path(args.loop_file).read_text(encoding="utf-8") if args.loop_file else LOOP_FILE,
                          encoding="utf-8")
        warm = LoopSettings(paths=args.loop_paths, holdout_paths=args.loop_paths, batch=2, seed=WARM_SEED,
                            data=args.loop_data)
        run_loop(start_run(source, Path(tmp) / "warm", warm, proposer_config={"proposer": "builtin"},
                           rules_flags={"max_iterations": 2}), BuiltinProposer(), cluster=cluster)  # untimed
        settings = LoopSettings(paths=args.loop_paths, holdout_paths=args.loop_paths, batch=batch,
                                data=args.loop_data)
        archive = start_run(source, Path(tmp) / "runs", settings, proposer_config={"proposer": "builtin"},
                            rules_flags={"max_iterations": args.iterations, "converge_rounds": 1000, "min_gain": 0.0})
        rounds = _RoundsCPU(cluster)
        with get_task_stream(client=cluster.client) as stream:
            outcome = run_loop(archive, BuiltinProposer(), cluster=cluster, on_event=rounds)
        busy = rounds.busy(stream.data, workers=workers)
        idle = rounds.idle(stream.data, workers=workers)
    searched = outcome.records[1:]
    seconds = sum(r["seconds"] for r in searched)
    rate = 60 * len(searched) / seconds if seconds else float("nan")
    main, process, on_workers = rounds.spent
    print(f"  {workers} worker{'s' if workers > 1 else ''}, --batch {batch}: {len(searched)} candidates in {seconds:7.1f} s of rounds = {rate:6.2f} candidates a "
          f"minute; CPU of the rounds: {main:5.1f} s this process's main thread ({process:5.1f} s all its threads), "
          f"{on_workers:5.1f} s the workers ({(process + on_workers) / max(len(searched), 1):.2f} s a candidate: K "
          f"changes the proposals, so two settings may evaluate candidates of other costs); the workers computing "
          f"{busy:.0%} of the rounds' wall time; {_load()}")
    print(f"    where the workers idle (share of {workers} x the rounds' wall time): {idle['none']:.0%} no task running "
          f"anywhere — {idle['between']:.0%} between rounds (this process: the last candidate's metrics and "
          f"diagnosis, deciding, archiving, proposing, preparing the next runs) and {idle['within']:.0%} within a "
          f"round (a candidate's stages wait for each other and for this process: sweep, then sensitivities, then "
          f"its completion) — and {idle['some']:.0%} a worker idle while another computes (too "
          f"few tasks: a one-task stage, a round's last candidate); busy {busy:.0%}, so no batching of this file can "
          f"run more than {1 / busy:.2f}x the rate of this run on these workers; this machine's {os.cpu_count()} "
          f"cores, running the rounds' {process + on_workers:.1f} s of CPU with none idle, "
          f"{os.cpu_count() * seconds / max(process + on_workers, 1e-9):.2f}x")
    return rate


class _RoundsCPU:
    """A loop's event hook that takes the CPU seconds spent from the first proposal to the last iteration
    written (the rounds: not the baseline, the hold-out or the report): this process's main thread (proposing,
    deciding, archiving; with ``--batch 1`` the candidate's evaluation too), all of its threads (with the
    candidates' evaluations of ``--batch 2``, the Dask client's and the LocalCluster scheduler's), and the
    workers. Unlike wall time, the machine's load inflates them little (in a virtual machine, some)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.start: tuple | None = None
        self.end: tuple | None = None
        self.starts: list[float] = []  # wall clock of each round's first proposal
        self._last = "iteration"

    def _now(self) -> tuple:
        times = os.times()
        return time.thread_time(), times.user + times.system, self.cluster.client.run(_cpu_seconds), time.time()

    def busy(self, stream: list[dict], workers: int) -> float:
        """The share of the rounds' wall time the ``workers`` spent computing tasks (the scheduler's task
        stream, `distributed.get_task_stream`): what the rounds leave idle — while this process proposes and
        decides, and while one worker waits for the other's task. Load inflates it (a task's wall time)."""
        start, end = self.start[3], self.end[3]
        computing = sum(max(0.0, min(part["stop"], end) - max(part["start"], start))
                        for task in stream for part in task["startstops"] if part["action"] == "compute")
        return computing / (workers * (end - start))

    def idle(self, stream: list[dict], workers: int) -> dict[str, float]:
        """Where the rounds leave the ``workers`` idle, as shares of ``workers`` × the rounds' wall time (the
        task stream's compute intervals): ``none``, no task computing anywhere — ``between`` rounds (from a
        round's last task to the next one's first: proposing, deciding and archiving in this process) or
        ``within`` one (a candidate's stages waiting for each other, or for this process's work between
        them) — and ``some``, a worker idle while another computes (fewer tasks ready than workers)."""
        start, end = self.start[3], self.end[3]
        edges = []  # (time, +1 a task starts computing / -1 it stops)
        for task in stream:
            for part in task["startstops"]:
                a, b = max(part["start"], start), min(part["stop"], end)
                if part["action"] == "compute" and b > a:
                    edges += [(a, 1), (b, -1)]
        edges.sort()
        spans = []  # (from, to, workers computing)
        running, at = 0, start
        for t, step in edges + [(end, 0)]:
            if t > at:
                spans.append((at, t, running))
            running, at = running + step, max(at, t)
        first = [min((a for a, _, n in spans if n and a >= s), default=s) for s in self.starts]
        last = [max((b for a, b, n in spans if n and s <= a < e), default=s)
                for s, e in zip(self.starts, self.starts[1:] + [end])]
        inside = list(zip(first, last))
        total = workers * (end - start)
        none = [(a, b) for a, b, n in spans if n == 0]
        within = sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in none for lo, hi in inside)
        idle_none = sum(b - a for a, b in none)
        some = sum((b - a) * (workers - min(n, workers)) for a, b, n in spans if n)
        return {"none": workers * idle_none / total, "within": workers * within / total,
                "between": workers * (idle_none - within) / total, "some": some / total}

    def __call__(self, kind: str, payload: dict) -> None:
        if kind == "proposing" and self._last == "iteration":  # a round's first proposal
            self.starts.append(time.time())
        if kind in ("proposing", "iteration"):
            self._last = kind
        if kind == "proposing" and self.start is None:
            self.start = self._now()
        elif kind == "iteration" and self.start is not None:
            self.end = self._now()

    @property
    def spent(self) -> tuple[float, float, float]:
        """(main thread, this process, workers) CPU seconds of the rounds."""
        (m0, p0, w0, _), (m1, p1, w1, _) = self.start, self.end
        return m1 - m0, p1 - p0, sum(n - w0.get(w, 0.0) for w, n in w1.items())


def _cpu_seconds() -> float:
    """The CPU seconds (user and system) of the process it runs in (a worker, through ``Client.run``)."""
    times = os.times()
    return times.user + times.system


def extrapolate(measured: dict, workers: int = 100, paths: int = 10_000_000, candidates: int = 50,
                months: int = 12, replays: int = 7, pass_paths: int = 30_000) -> None:
    """Print the extrapolation to ``workers`` × ``paths`` × ``candidates`` (formulas beside the numbers)."""
    c, per_task = measured["per_path_month"], measured["overhead"]
    path_months = candidates * replays * paths * months
    compute = path_months * c
    tasks = candidates * replays * math.ceil(paths / pass_paths)
    scheduler = tasks * per_task
    back = candidates * replays * paths * measured["result_bytes_per_path"] * months / max(1, measured["months"])
    sent = tasks * measured["task_bytes"]
    print(f"extrapolation: {workers} workers x {paths:.0e} paths x {candidates} candidates ({replays} replays a "
          f"candidate: sweep, cost pass, market scenarios; {months} months)")
    print(f"  compute   {path_months:.2e} path-months x {c * 1e6:.1f} us = {compute / 3600:,.0f} core-hours; "
          f"/ {workers} workers = {compute / workers / 3600:,.1f} h wall at perfect scaling")
    print(f"  tasks     {candidates} x {replays} x ceil({paths:.0e} / {pass_paths:,} paths a pass) = {tasks:,} tasks; "
          f"x {per_task * 1e3:.2f} ms scheduler overhead = {scheduler / 60:,.1f} min "
          f"({100 * scheduler / max(compute / workers, 1e-9):.2f}% of the wall time)")
    print(f"  network   to the cluster at most {tasks:,} x {measured['task_bytes']:,.0f} B = {sent / 1e6:,.1f} MB "
          f"(the bound measured above; the jobs themselves are {candidates * replays * measured['job_bytes'] / 1e6:,.1f}"
          f" MB); back to the client "
          f"{back / 1e12:,.2f} TB of per-path arrays ({back / candidates / replays / 1e9:,.1f} GB a replay, which "
          "the client must hold to compute exact quantiles: its memory and link are the bound, not the workers)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--loop-paths", dest="loop_paths", type=int, default=10_000)
    parser.add_argument("--loop-file", dest="loop_file", default=None,
                        help="the loop's .opl file (default: a small strangle, LOOP_FILE)")
    parser.add_argument("--loop-data", dest="loop_data", default=None, help="the loop's --data (e.g. synth)")
    parser.add_argument("--repeat", type=int, default=1, help="loop runs of each --batch, in alternation")
    parser.add_argument("--skip", default="", help="comma-separated: simulate, loop")
    parser.add_argument("--one-worker", dest="one_worker", action="store_true",
                        help="also run --batch 1 on a single worker (the scale-out proper)")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if "simulate" not in skip:
        measured = bench_simulate(args)
        measured["months"] = args.months
    if "loop" not in skip:
        bench_loop(args)
    if "simulate" not in skip:
        extrapolate(measured, replays=measured["replays"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
