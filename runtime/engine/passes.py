"""The scheduling of a replay's work: chunks grouped into passes, jobs and passes spread over processes.

A run's paths are chunks, each drawing from its own seed (`_chunks`); the fast engine replays consecutive
chunks side by side in one pass, the passes holding equal shares of the paths (`_passes`: pieces of a chunk
at their ends). Jobs that share draws, months and marks (a simulation's sweep and scenarios, a loop
candidate's evaluations) are replayed in lockstep (`_replay_lockstep`, `_JobReplay`), their passes are tasks
for forked workers (`_lockstep_tasks`, `_pooled`) and the results are joined in chunk order (`_assembled`).
What every worker would make is made once here before they fork (`_warm`, `_warm_steps`, `_made_here`,
`_months_made_here`, `_marks_made_here`).

The numbers never depend on the schedule: every chunk gets what it gets replayed alone, bit for bit. Apart
from the entry points (`opl.runtime.engine.replay`) and from what a pass computes
(`opl.runtime.engine.step`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import replace
from typing import Callable

import numpy as np

from opl.runtime.engine import forkpool, handover, kernels, monthstore, rarekernels
from opl.runtime.engine.deadline import check as check_deadline, current as current_deadline, until
from opl.runtime.engine.kernels.marks import mark_series
from opl.runtime.engine.marking import AmericanMarker, _tables, prepare_tables
from opl.runtime.engine.months import MarkedMonth
from opl.runtime.engine.passmonths import _Shared, _StoredMonths, _family, _months_key
from opl.runtime.engine.runspec import DAYS_PER_YEAR, ReplayResult, RunSpec, StrategySpec
from opl.runtime.engine.step import _Pass


PASS_PATHS = 30_000  # the fast engine replays up to this many paths (whole chunks) side by side in a process


def _replay_jobs(jobs: list[tuple], progress, meanwhile: Callable[[], None] | None = None,
                 finished: Callable[[list[tuple[int, ReplayResult]]], None] | None = None) -> list[ReplayResult]:
    """The jobs' passes (`_passes`) replayed side by side by forked workers when there are several passes
    and this process may fork, else here one after the other; each job assembled in chunk order as soon as
    its passes are in. ``meanwhile``, ``finished``: `replay.replay_many`'s.

    A single job is split into passes for the workers (its chunks side by side); several jobs keep their
    own passes whole, as the jobs alone already keep the workers busy.
    """
    if not jobs:
        if meanwhile is not None:
            meanwhile()
        return []
    cores = jobs[0][1].workers or _cores()
    if len(jobs) == 1 and (parts := _path_parts(*jobs[0], cores)) > 1:
        strategy, run, variants = jobs[0]
        _made_here(strategy, run)
        tasks = [((0,), group) for group in _passes(run, _chunks(run), parts, False, cut=True)]
        result = _assembled(strategy, run, variants, _pooled(jobs, tasks, parts, progress, meanwhile)[0])
        if finished is not None:
            finished([(0, result)])
        return [result]
    plans = _job_plans(jobs, cores)
    workers = min(cores, sum(map(len, plans))) if _can_fork() else 1
    tasks = _lockstep_tasks(jobs, plans, workers)
    assembled: dict[int, ReplayResult] = {}

    def whole(complete: list[tuple[int, list]]) -> None:
        done = [i for i, _ in complete]
        for i in done:  # taken out of ``complete``: each job's passes go once assembled (the memory's peak)
            assembled[i] = _assembled(*jobs[i], complete.pop(0)[1])
        if finished is not None and done:
            finished([(i, assembled[i]) for i in done])

    if workers > 1:
        _months_made_here(jobs, plans)
        _marks_made_here(jobs, plans)
        done = _pooled(jobs, tasks, workers, progress, meanwhile, whole)
        last = [(i, passes) for i, passes in enumerate(done) if passes is not None]
        del done
        whole(last)
    else:
        if meanwhile is not None:
            meanwhile()
        done = [[] for _ in jobs]
        for indices, group in tasks:
            for i, result in zip(indices, _replay_lockstep([jobs[i] for i in indices], group, progress)):
                done[i].append(result)
        whole(list(enumerate(done)))
    return [assembled[i] for i in range(len(jobs))]


def _job_plans(jobs: list[tuple], cores: int) -> list[list[tuple]]:
    """Each job's passes (`_passes`): a single job is split into passes for the ``cores`` workers (its chunks
    side by side); several jobs keep their own passes whole, as the jobs alone already keep the workers busy."""
    split = cores if len(jobs) == 1 else 1
    return [_passes(run, _chunks(run), split, False) for _, run, _ in jobs]


def _lockstep_tasks(jobs: list[tuple], plans: list[list[tuple]], workers: int) -> list[tuple]:
    """The jobs' passes as tasks ``(job indices, group)``, each replayed in lockstep (`_replay_lockstep`), in
    every job's chunk order.

    Jobs of the same passes and seed on simulated paths (a simulation's sweep or its scenarios) are replayed
    together, so a chunk-month's draws are made once for them. Where their passes are equal and as many
    as the workers (or a multiple), each pass of every job at once is a task (`_runs`); else they are cut
    into as many runs of consecutive jobs as give ``workers`` processes two tasks each (a pass of every job
    at once would leave a worker idle while the other replays the larger pass). The runs' lengths differ by
    one at most, the longer first: six jobs for two workers are runs of 2, 2, 1 and 1 (cut by threes, 2, 2
    and 2, one worker replayed two runs while the other replayed one). Other jobs keep a task per pass.

    When a month store holds the months of every pass of a family's jobs (`opl loop`'s candidates:
    `_months_made_here` put them there before the workers fork), the jobs share nothing a run would make once
    — their draws are not drawn, their months are read, and the marks they read (their legs' on the base
    paths, which a ``hit_rate`` scenario copies) are the store's — so each job is a task of its own: the
    workers take the next job as they finish one, instead of one replaying the two longest jobs of a
    completion while the other waits (0.3–0.6 s of each completion's pool on the jujube file).
    """
    families: dict[tuple, list[int]] = {}
    for i, ((_, run, _), plan) in enumerate(zip(jobs, plans)):
        alone = run.source is not None or run.engine != "fast"
        families.setdefault((i,) if alone else (tuple(plan), run.seed), []).append(i)
    tasks = []
    for members in families.values():
        members = _family_first(jobs, members)
        plan = plans[members[0]]
        runs = min(len(members), _runs(plan, workers))
        if workers > 1 and _months_stored(jobs, plans, members):
            runs = len(members)
        for group in plan:
            tasks += [(run, group) for run in _even_runs(members, runs)]
    return tasks


def _runs(plan: list[tuple], workers: int) -> int:
    """How many runs of jobs a family of passes ``plan`` is cut into for ``workers`` processes: one where its
    passes are equal and share out evenly (a 50,000-path simulation's two halves), else enough for two tasks a
    worker. Measured on the jujube file's 50,000-path simulate (its scenario jobs in lockstep on each half,
    their draws made once a chunk instead of once a run; three interleaved pairs): 8.0–8.6 → 7.3–8.0 s, user
    time 13.6 → 12.2–13.0 s; the main job's hold-out 12.0–12.6 → 11.4–12.3 s."""
    if workers <= 1:
        return 1
    if len(plan) % workers == 0 and len({pass_paths(group) for group in plan}) == 1:
        return 1
    return math.ceil(2 * workers / len(plan))


def _months_stored(jobs: list[tuple], plans: list[list[tuple]], members: list[int]) -> bool:
    """Whether the current month store holds the months of every pass of the jobs ``members``."""
    store = monthstore.current()
    return store is not None and all(store.holds(_months_key(jobs[i][1], jobs[i][0], group))
                                     for i in members for group in plans[i])


def _family_first(jobs: list[tuple], members: list[int]) -> list[int]:
    """``members`` with the jobs whose processes are of a family (`_family`) next to each other, in the order of
    their first: cut into runs (`_lockstep_tasks`), a run holds them together, and a later one copies the marks
    of an earlier one with the same legs where their paths agree (`_StoredMonths._siblings`; the ``hit_rate``
    scenario and the cost pass, five jobs apart)."""
    order: dict = {}
    for i in members:
        order.setdefault(_family(jobs[i][1].process), []).append(i)
    return [i for group in order.values() for i in group]


def _even_runs(members: list[int], runs: int) -> list[tuple[int, ...]]:
    """``members`` cut into ``runs`` runs of consecutive members whose lengths differ by one at most, the
    longer first."""
    size, longer = divmod(len(members), runs)
    starts = [k * size + min(k, longer) for k in range(runs + 1)]
    return [tuple(members[a:b]) for a, b in zip(starts, starts[1:])]


def _chunks(run: RunSpec) -> list[tuple[int, int]]:
    """(chunk number, paths) of every chunk: chunk c draws from ``SeedSequence([seed, c])``."""
    return [(c, min(run.chunk, run.paths - start)) for c, start in enumerate(range(0, run.paths, run.chunk))]


def pass_plan(run: RunSpec, workers: int, trace: bool = False) -> list[tuple]:
    """The chunks of ``run`` grouped into passes for ``workers`` processes: ((chunk, paths), ...) each."""
    return _passes(run, _chunks(run), workers, trace)


def _path_parts(strategy: StrategySpec, run: RunSpec, variants: tuple, cores: int) -> int:
    """Into how many pieces of its paths a lone job is split (1: not split).

    A job of one pass (a loop candidate's sweep: 10,000 paths, five sizes) would run in one process; its
    paths do not depend on each other, so pieces of them are replayed side by side, bit for bit the numbers
    of the whole. Only under a `opl.runtime.engine.monthstore` store, where the chunk's months and their
    marks are made once, here, and every piece reads its paths of them (`_made_here`, `_StoredMonths`).
    Pieces of paths, not groups of sizes: five sizes in two groups were three against two, and the worker
    replaying two waited for the other (~0.25 s a candidate); each piece is every size on half the paths.
    """
    store = monthstore.current()
    # A store of incomplete marks (`_StoredMonths._made`) would leave each piece to mark the months itself.
    if store is None or not store.complete_marks or run.source is not None or not _can_fork() or cores < 2 \
            or len(_passes(run, _chunks(run), cores, False)) > 1:
        return 1
    return min(cores, run.paths)


def _made_here(strategy: StrategySpec, run: RunSpec) -> None:
    """Put the months of ``run``'s one pass and their marks in the current store (compiled marks use every
    core here), so that forked workers read them instead of each making them."""
    [group] = _passes(run, _chunks(run), 1, False)
    months = _StoredMonths(run, strategy, group)
    marker = AmericanMarker(american=True, rate=strategy.rate, exact=run.exact_american)
    euro = AmericanMarker(american=False, rate=strategy.rate)
    for m in range(run.months):
        check_deadline()
        months.marked(m, months.next_month(), marker, euro)


def _months_made_here(jobs: list[tuple], plans: list[list[tuple]]) -> None:
    """Under a month store that keeps, make here and put there the months of the one-pass jobs on simulated
    paths that it lacks (their draws shared, as in a lockstep pass), before the workers fork.

    Forked workers keep nothing they make (`_pooled`), so the months of a loop candidate's market scenarios
    and counterfactuals (one pass each: 10,000 paths) were made again for every candidate, although they
    depend on the model and the run's seed only; made here, the workers read them and so do the next
    candidates' (about 0.3 s CPU and 30 MB a job at 10,000 paths). Their marks depend on the legs too, and a
    set is ~175 MB: `_marks_made_here` keeps those that fit.
    """
    store = monthstore.current()
    if store is None or not store.keeps:
        return
    shared, made = _Shared(), {}
    for (strategy, run, _), plan in zip(jobs, plans):
        if run.source is None and len(plan) == 1:
            key = _months_key(run, strategy, plan[0])
            if key not in made and not store.recent(key):
                made[key] = _StoredMonths(run, strategy, plan[0], shared)
    for m in range(max((months.run.months for months in made.values()), default=0)):
        for months in made.values():
            if m < months.run.months:
                check_deadline()
                months.next_month()


def _marks_made_here(jobs: list[tuple], plans: list[list[tuple]]) -> None:
    """Under a month store of complete marks kept ahead (`MonthStore.ahead`: `opl loop`'s candidates'), make
    here and put there the marks of the one-pass jobs whose months it holds (`_months_made_here`) but not
    their marks, as far as `MonthStore.room` allows, before the workers fork.

    `opl loop`'s candidates mostly keep the model and the legs (a parameter change: exits, sizes, the hedge),
    so the marks of a completion's market scenarios and counterfactuals, and of a quick evaluation's
    ``hit_rate`` sensitivity, are the previous candidate's; made in a forked worker, they were made again
    for each candidate (a third of a jujube run's marks: 130M of 400M). Made here, whole, they are read by the
    workers and the next candidates. A set is ~175 MB at 10,000 paths, so only what fits beside what the last
    two evaluations read is kept: the jobs last in the list first (a completion's counterfactuals, whose
    positions live as long as the base's: of a job's marks made where held, theirs are the most).
    """
    store = monthstore.current()
    if store is None or not store.keeps or not store.complete_marks or not store.ahead:
        return
    for (strategy, run, _), plan in reversed(list(zip(jobs, plans))):
        if run.source is not None or len(plan) != 1 or run.engine != "fast" or not kernels.available() \
                or run.exact_american:
            continue
        months = _StoredMonths(run, strategy, plan[0])
        if not months.stored:
            continue
        marker = AmericanMarker(american=True, rate=strategy.rate, exact=run.exact_american)
        euro = AmericanMarker(american=False, rate=strategy.rate)
        missing = [m for m in range(run.months) if not store.recent(months.month_key(m, marker, euro))]
        if not missing or not store.room(len(missing) * _marks_bytes(strategy, run, plan[0])):
            continue
        for m in range(run.months):
            check_deadline()
            mp = months.next_month()
            if m in missing:
                months.marked(m, mp, marker, euro)


def _marks_bytes(strategy: StrategySpec, run: RunSpec, group: tuple) -> int:
    """What a month's complete marks of a pass add to a store holding its months: per leg and element a value,
    a delta, a gamma and an exercise flag (25 bytes), and the month's prices and volatilities copied once
    (16 bytes: the stored ones are read-only, `months._Month`)."""
    elements = pass_paths(group) * (run.days_per_month * run.steps_per_day + 1)
    return elements * (25 * len(strategy.legs) + 16)


def _assembled(strategy: StrategySpec, run: RunSpec, variants, done) -> ReplayResult:
    """The chunks' results (in chunk order) joined along the path axis."""
    nv, months = len(variants), run.months
    parts, hits = [], [0, 0]
    traced = None
    for part, chunk_trace, chunk_hits in done:
        parts.append(part)
        hits[0] += chunk_hits[0]
        hits[1] += chunk_hits[1]
        traced = traced or chunk_trace
    cat = {key: _along_paths([part[key] for part in parts]) for key in parts[0] if key != "buckets"
           and key != "counters"}
    buckets = {k: _along_paths([part["buckets"][k] for part in parts]) for k in parts[0]["buckets"]}
    counters = {k: _along_paths([part["counters"][k] for part in parts]) for k in parts[0]["counters"]}
    assert cat["monthly"].shape == (nv, run.paths, months)
    return ReplayResult(variants=tuple(variants), capital=run.capital, monthly=cat["monthly"], buckets=buckets,
                        counters=counters, max_drawdown=cat["max_drawdown"], peak_margin=cat["peak_margin"],
                        signal_hits=(hits[0], hits[1]), trace=traced,
                        actions=tuple(a.text for a in strategy.adjust.playbook) if strategy.adjust else ())


def _along_paths(arrays: list[np.ndarray]) -> np.ndarray:
    """The passes' (variants, paths, ...) arrays joined along the paths. A lone pass's C-ordered array is the
    join already (a loop candidate's every job is one pass): not copied — a copy is laid out alike, so every
    reduction over it gives the same bits (~0.05 s a job at 10,000 paths)."""
    if len(arrays) == 1 and arrays[0].flags.c_contiguous:
        return arrays[0]
    return np.concatenate(arrays, axis=1)


def _can_fork() -> bool:
    """Whether this process may fork a pool: not where fork is missing, nor in a daemonic process (a Dask
    worker, a pool's child), which may not have children."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


_JOBS: tuple | None = None  # what the forked workers replay (inherited: nothing is pickled on the way)


def _pass_job(t: int):
    """Task ``t`` of the pool in a forked worker: pass ``group`` of the jobs ``indices`` in lockstep (the
    task is ``(indices, group)``)."""
    jobs, tasks, deadline, store, outbox = _JOBS
    indices, group = tasks[t]
    # Serial kernels: the processes use the cores; a forked child never wakes numba's thread pool.
    kernels.serial_only()
    with until(deadline), monthstore.sharing(store):
        return handover.sent(_replay_lockstep([jobs[i] for i in indices], group, None), outbox)


def _warm(strat: StrategySpec, run: RunSpec) -> None:
    """Build the month's American tables and load the serial mark kernel here, once, so that every forked worker
    inherits them instead of building its own."""
    if run.source is not None:
        return
    n = run.days_per_month * run.steps_per_day
    grid = strat.tenor_days / DAYS_PER_YEAR * (n - np.arange(n + 1)) / n
    for leg in strat.legs:
        t = grid + leg.extra_days / DAYS_PER_YEAR
        if leg.american and not run.exact_american:
            prepare_tables(leg.is_call, t[t > 0], float(strat.rate), 0.0)
            for x in t[t > 0]:
                check_deadline()
                _tables(leg.is_call, float(x), float(strat.rate), 0.0)
        if run.engine == "fast" and kernels.available() and not run.exact_american:
            mark_series(is_call=leg.is_call, american=leg.american, forward=np.full((1, n + 1), run.price),
                        vol=np.full((1, n + 1), 0.2), strike=np.array([run.price]), t=t, smile=strat.smile,
                        rate=strat.rate)
            kernels.mark_where(is_call=leg.is_call, american=leg.american, where=np.ones((1, 1), dtype=bool),
                               strike=np.array([run.price]), price=np.array([run.price]), vol=np.array([0.2]),
                               t=float(t[0]), smile=strat.smile, rate=strat.rate)


_STEPS_WARM = False  # whether this process has loaded the step kernels' serial twins (`_warm_steps`)


def _warm_steps(strategy: StrategySpec, run: RunSpec, variants: tuple) -> None:
    """Load the serial twins of the step kernels here, once a process, so that the workers of every pool
    forked later inherit them instead of each loading them from numba's cache (~0.1 s CPU a worker and a
    pool; the loop forks ~60 pools).

    A replay of a few paths over one month does it: its arrays are below every parallel threshold, so it
    calls the serial twins, with the argument types of the real passes. Kernels only another strategy uses
    are still loaded by the workers that need them. Nothing is read from or put in a month store.
    """
    global _STEPS_WARM
    if _STEPS_WARM or run.engine != "fast" or run.source is not None or not kernels.available():
        return
    _STEPS_WARM = True
    few = 32
    with monthstore.suspended():
        _replay_pass(strategy, replace(run, paths=few, months=1, chunk=few, workers=1), variants,
                     ((0, few),), None, False)


def _pooled(jobs: list[tuple], tasks: list[tuple], workers: int, progress,
            meanwhile: Callable[[], None] | None = None,
            whole: Callable[[list[tuple[int, list]]], None] | None = None) -> list[list]:
    """The ``tasks`` ((jobs, pass of chunks) pairs, `_lockstep_tasks`) replayed by ``workers`` forked
    processes; returns each job's pass results in chunk order. ``meanwhile`` is called once the workers are
    forked (the caller's work beside theirs: its threads, if any, start after the fork); ``whole`` with the
    ``(job, its passes)`` of the jobs a task completes while others still run — the results are read as the
    passes finish —, so that what the caller does with them overlaps the passes still being replayed (their
    pass lists are then dropped here: None in what is returned; the last task's jobs are returned).

    Each chunk is computed exactly as in this process (its own seed, the same code; the kernels'
    serial twins give the same numbers as their parallel ones), so results are bit for bit the
    sequential replay's whatever the number of workers or the order the passes finish. The children inherit
    the jobs, the month store and the loaded kernels through ``fork``: nothing is pickled on the way.
    """
    global _JOBS
    for strategy, run, _ in jobs:
        _warm(strategy, run)
    _warm_steps(*jobs[0])
    rarekernels.load(jobs)  # (the kernels a few paths rarely reach)
    store = monthstore.current()
    # The passes' results come back through files in shared memory, not the pool's pipe (`handover`).
    outbox = handover.folder()
    _JOBS = (tuple(jobs), tuple(tasks), current_deadline(), store.reader() if store is not None else None, outbox)
    places, count = [], [0] * len(jobs)  # each task's place in the pass lists of its jobs (chunk order)
    for indices, _ in tasks:
        places.append([count[i] for i in indices])
        for i in indices:
            count[i] += 1
    done: list[list] = [[None] * n for n in count]
    left, left_tasks = list(count), len(tasks)
    # The workers fork in `forkpool.run` (and exit on their own once every result is in: each unmaps its copy
    # of this process, ~0.1 s, while the caller goes on — with its next pool's workers, or its serial work).
    results = forkpool.run(_pass_job, len(tasks), workers, meanwhile)
    try:
        for t, parcel in results:
            indices, group = tasks[t]
            complete = []
            for i, place, result in zip(indices, places[t], handover.received(parcel)):
                done[i][place] = result
                left[i] -= 1
                if progress is not None:
                    progress(pass_paths(group) * jobs[i][1].months)
                if not left[i]:
                    complete.append((i, done[i]))
            left_tasks -= 1
            # The last task's jobs are left to the caller, after this pool and the results it holds are gone.
            if complete and whole is not None and left_tasks:
                for i, _ in complete:  # handed over: the passes go with the caller's assembly
                    done[i] = None
                whole(complete)
    finally:
        # (An early end: the passes not started are dropped; running ones stop at the deadline or finish.)
        results.close()
        _JOBS = None
        handover.clear(outbox)
    return done


def _passes(run: RunSpec, chunks: list[tuple[int, int]], workers: int, trace: bool, *,
            cut: bool = False) -> list[tuple]:
    """The chunks grouped into passes, each replayed side by side in one process.

    Every number of a path depends on that path alone, so a pass of several chunks gives each chunk the
    numbers it gets alone, bit for bit; what a pass saves is the per-step cost of the Python around the
    kernels, paid once for all its paths. The reference, given months and traces replay chunk by chunk.

    The passes hold equal shares of the paths (one process would otherwise wait for the other: 50,000
    paths in chunks of 10,000 were passes of 30,000 and 20,000), so a chunk may be cut between two passes:
    a piece ``(chunk, paths, start)`` is the chunk's paths ``start`` to ``start + paths``, each pass
    generating the whole chunk's months (its draws are one stream) and replaying its own paths only.
    ``cut``: a single chunk is cut too (`_path_parts`: its pieces read the chunk's stored months).
    """
    if run.engine != "fast" or run.source is not None or trace or (len(chunks) == 1 and not cut):
        return [(chunk,) for chunk in chunks]
    count = max(workers, math.ceil(run.paths / max(PASS_PATHS, run.chunk)))
    total = sum(n for _, n in chunks)
    cuts = [total * k // count for k in range(count + 1)]
    return [_pieces(chunks, lo, hi) for lo, hi in zip(cuts, cuts[1:]) if hi > lo]


def _pieces(chunks: list[tuple[int, int]], lo: int, hi: int) -> tuple:
    """The chunks' paths ``lo`` to ``hi`` (counted over the chunks in order): whole chunks ``(chunk, paths)``
    and, at either end, a piece ``(chunk, paths, start)`` of one (`_passes`)."""
    out, first = [], 0
    for chunk, n in chunks:
        start, stop = max(lo, first) - first, min(hi, first + n) - first
        if stop > start:
            out.append((chunk, n) if (start, stop) == (0, n) else (chunk, stop - start, start))
        first += n
    return tuple(out)


def pass_paths(group: tuple) -> int:
    """The paths a pass replays (its chunks' and pieces' together)."""
    return sum(piece[1] for piece in group)


def _replay_chunk(strat: StrategySpec, run: RunSpec, variants, p: int, chunk: int, progress, want_trace: bool):
    """Chunk number ``chunk`` (``p`` paths, seed [run.seed, chunk])."""
    return _replay_pass(strat, run, variants, ((chunk, p),), progress, want_trace)


def _replay_pass(strat: StrategySpec, run: RunSpec, variants, group: tuple, progress, want_trace: bool):
    """The chunks of ``group`` ((chunk, paths) pairs, consecutive) side by side (`_passes`)."""
    [done] = _replay_lockstep([(strat, run, variants)], group, progress, want_trace)
    return done


def _replay_lockstep(jobs: list[tuple], group: tuple, progress, want_trace: bool = False) -> list[tuple]:
    """The chunks of ``group`` of several jobs ((strategy, run, variants), runs of the same chunks) side by
    side month by month: month ``m`` of every job, then month ``m + 1``. Each job gets what `_replay_pass`
    gives it alone, bit for bit; what they share is made once (`_Shared`: a chunk's draws, the months of
    jobs on the same paths, their marks with the same legs), and only the current month's is held.

    Returns, per job, (its pass's results, its trace, its signal hits).
    """
    shared = _Shared() if len(jobs) > 1 else None
    p = pass_paths(group)
    replays = [_JobReplay(strat, run, variants, group, p, shared, want_trace) for strat, run, variants in jobs]
    for m in range(max(run.months for _, run, _ in jobs)):
        for job in replays:
            if m < job.run.months:
                check_deadline()
                job.month(m)
                if progress is not None:
                    progress(p)
    return [(job.account.result(), job.account.trace(), job.hits) for job in replays]


class _JobReplay:
    """One job of a lockstep pass (`_replay_lockstep`): its months, its marks and its running account."""

    def __init__(self, strat: StrategySpec, run: RunSpec, variants, group: tuple, p: int, shared: _Shared | None,
                 want_trace: bool):
        self.run, self.p = run, p
        if run.source is not None:
            [(chunk, _)] = group  # given months come chunk by chunk
            self.gen = run.source(chunk, p)
        else:
            self.gen = _StoredMonths(run, strat, group, shared)
        self.marker = AmericanMarker(american=True, rate=strat.rate, exact=run.exact_american)
        self.euro = AmericanMarker(american=False, rate=strat.rate)
        self.account = _Pass(strat, run, variants, (len(variants), p), want_trace)
        self.hits = [0, 0]

    def month(self, m: int) -> None:
        """Month ``m``: its paths (made, stored or shared), the signal's hits, its marks, its steps."""
        mp = self.gen.next_month()
        run = self.run
        if run.process is not None and run.process.regime is not None:
            self.hits[0] += int(np.sum(mp.signal == mp.realised))
            self.hits[1] += self.p
        self.account.month(m, mp if isinstance(mp, MarkedMonth) else self.gen.marked(m, mp, self.marker, self.euro))
