"""Monte Carlo replay of a monthly-rolled option strategy, vectorised across paths.

Paths are replayed in chunks (10,000 by default) so memory stays bounded whatever the
path count; inside a chunk every array is (variants, paths) — *variants* being position
sizes and cost/margin scenarios that share the same price paths, so a size sweep costs one
path generation. Each chunk draws from its own `numpy.random.SeedSequence` ([seed, chunk]),
so a seed reproduces every number bit for bit.

**The month.** At the open (step 0) the legs' strikes are resolved from the month's price
and levels (`opl.runtime.engine.legspec`), legs blocked by ``avoid_leg_if`` dropped on their paths
(`opl.runtime.engine.guards`), the options sold or bought at their mark (~``tenor`` days to
expiry — a longer leg's own tenor —, American legs by BAW, `opl.runtime.engine.marking`) and the
hedge set; what the month holds is a `opl.runtime.engine.book.Book`. Then, at every step
j = 1 … n, in this order:

1. mark to market: options, the strategy's futures, hedge futures, futures awaiting their
   close, delivered goods (with storage and funding), into the ledger's buckets;
2. what the previous step decided: a forced liquidation (everything closed at market),
   the close of futures from an assignment, the sale of goods whose holding ends;
3. exit triggers under ``exit_mode`` (``first_hit``: any; ``all_required``: all;
   ``machine_decide``: a score, `opl.runtime.engine.scores`), the risk controls' ``stop_loss``
   (the month's loss ≥ stop × capital) and the automatic guard ``days_left < 2d`` — a hit
   closes the options and futures at market; then the adjustment module on the positions
   still open (`opl.runtime.engine.adjust`: a round where ``adjust_when`` turns true);
4. the hedge rule (`opl.runtime.engine.hedging`) on its rebalancing steps;
5. early assignment of short American legs in the holder's exercise region, then the
   assignment policy (`opl.runtime.engine.exercise`);
6. at expiry (j = n): in-the-money options exercised, the rest lapse, series expiring
   later sold back at market, the hedge closed;
7. margin by the rule pack (`opl.runtime.market.margin`): short options by the exchange formula
   at their mark, futures (strategy, hedge, awaiting close, goods held) at the futures
   rate. A *margin call* when equity < requirement; when equity < (1 − margin_buffer) ×
   requirement the call is not met and everything is liquidated at the next step;
   ``warn_if`` alerts counted.

A month opens only when the equity covers the opening margin (a skipped month is
counted); a path whose equity falls to zero stays flat.

**Given months.** With ``RunSpec.source`` the months are not simulated but given, marks
included (`MarkedMonth`: the historical backtest's option cycles, `opl.runtime.engine.historical`):
each has its own number of steps, its calendar (``days_left`` and the step lengths come
from its times to expiry), its option marks and, when the cycle does not end at the
options' expiry (a futures roll or the end of the data), everything is closed at market at
its last step. The order of operations is the same.

**Money.** Equity = capital + every booked P&L. The strategy's *cash* is what its trades
added to or took from the capital: equity − capital − the options' market value (futures
and delivered goods hold no cash: they settle daily, the goods are financed at the
assignment policy's funding rate). It earns the cash rate (``RunSpec.cash_rate``, None:
the strategy's ``rate``, the rate the premiums are discounted at) over each step's
calendar span, compounded step by step, into the ``interest`` bucket: a seller earns
interest on the premium received, a buyer forgoes it on the premium paid, so a fairly
priced, hedged position has mean P&L 0 at any rate. Margin deposits are part of the
capital and earn what it earns: returns are measured over the cash rate, the capital's
own interest being the benchmark that is not counted. A broker that pays a different
rate on the margin it holds (``RunSpec.margin_rate``; 0 for none) adds the difference
on the requirement of the previous step (the opening margin over the first step). A month's return is its P&L
divided by the capital (no compounding: sizes are in lots). The drawdown is measured on
the equity after each step against its running peak.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import operator
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from opl.runtime.engine.adjust import AdjustEngine, Desk, _margin_bound, _once
from opl.runtime.engine.book import Book, Slot, flat_paths, put_paths
from opl.runtime.engine.exercise import Inventory
from opl.runtime.engine.guards import blocked, leg_states, warned, warns_nowhere
from opl.runtime.engine import kernelbase, kernels, margin_kernels, mark_kernels, monthstore
from opl.runtime.engine import adjust_kernels, handover
from opl.runtime.engine.deadline import check as check_deadline, current as current_deadline, until
from opl.runtime.engine.hedging import HedgeSpec, direction, rebalance
from opl.runtime.engine.mark_kernels import mark_series
from opl.runtime.engine.ledger import Costs, Ledger
from opl.runtime.market.margin import futures_margin, options_margin
from opl.runtime.engine.marking import AmericanMarker, SmileRule, _tables, prepare_tables
from opl.runtime.engine.months import MarkedMonth, _base_gammas, _base_marks
from opl.runtime.engine.passmonths import _Shared, _StoredMonths, _family, _months_key
from opl.runtime.engine.runspec import CHUNK, DAYS_PER_YEAR, ReplayResult, RunSpec, StrategySpec, Variant
from opl.runtime.engine.steppack import StepPack
from opl.runtime.engine.triggers import COMPARISONS, TriggerState

# The public names: the entry points below and, re-exported from their homes, the records they take and give
# (`opl.runtime.engine.runspec`) and the months they read; the project imports those from their homes.
__all__ = ["StrategySpec", "Variant", "RunSpec", "ReplayResult", "MarkedMonth", "replay", "replay_many",
           "replay_pass", "pass_plan", "pass_paths", "made_ahead", "REMOTE", "CHUNK"]

PASS_PATHS = 30_000  # the fast engine replays up to this many paths (whole chunks) side by side in a process


def _margin_packs(pack, variants):
    """One pack per variant: ``pack`` itself, or a copy with its margin rates × ``margin_factor`` — each
    rate the pack sets: a futures underlying's futures rate (the option margin builds on it), an ETF's
    or a stock's option rates (`opl.runtime.engine.kernels.MarginRule.RATES`)."""
    packs = []
    for v in variants:
        if v.margin_factor == 1.0:
            packs.append(pack)
        else:
            # Only the rates the pack has: an ETF pack has no futures rate (None) to scale.
            scaled = {name: rate * v.margin_factor for name in kernels.MarginRule.RATES
                      if (rate := getattr(pack.margin, name)) is not None}
            packs.append(pack.model_copy(update={"margin": pack.margin.model_copy(update=scaled)}))
    return packs


def _zeroed(x: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``np.where(where, 0.0, x)``: into ``x`` itself when it is an array of its own of ``where``'s shape."""
    flags = x.flags
    if not (x.shape == where.shape and x.dtype == _FLOAT and flags.owndata and flags.writeable):
        return np.where(where, 0.0, x)
    np.copyto(x, 0.0, where=where)
    return x


def _filled(x, shape) -> np.ndarray:
    """``x * np.ones(shape)`` (x times 1.0 is x, bit for bit) without the ones."""
    out = np.empty(shape)
    out[...] = x
    return out


def _open_book(strat, mo, sizes, shape) -> Book:
    """The month's book at the open: a base slot per option leg, the strategy's futures."""
    book = Book(shape)
    for li, leg in enumerate(strat.legs):
        number = strat.leg_numbers[li] if strat.leg_numbers else li
        g = book.add_group(leg, file_index=number)
        slot = book.slots[book.add_slot(g, is_call=leg.is_call, american=leg.american, strike=mo.strikes[li], base=li,
                                        qty=_filled(leg.signed_qty * sizes, shape), extra_days=leg.extra_days)]
        _base_marks(slot, mo, 0)
        slot.entry = slot.value
    for number, lots in (strat.futures_legs or ((None, strat.futures),) if strat.futures else ()):
        book.futures.append(_filled(lots * sizes, shape))
        book.futures_index.append(number)
    return book


def replay(*, strategy: StrategySpec, run: RunSpec, variants: tuple[Variant, ...] = (Variant(),),
           progress: Callable[[int], None] | None = None, trace: bool = False) -> ReplayResult:
    """Replay ``strategy`` over ``run.paths`` simulated paths for every variant.

    Parameters
    ----------
    strategy, run
        What to trade and how the market and the account behave.
    variants
        Sizes and cost/margin multipliers replayed on the same paths.
    progress
        Called with the number of path-months finished, after each chunk-month.
    trace
        Keep step-by-step arrays of the first chunk (for tests and diagnostics).

    Under a deadline (`opl.runtime.engine.deadline.until`) the replay stops within one step of the chunks being
    replayed, or one table of a new time grid, and raises `opl.runtime.engine.deadline.DeadlinePassed`.
    """
    if not trace:
        return replay_many([(strategy, run, tuple(variants))], progress=progress)[0]
    remote = REMOTE.get()
    if remote is not None:
        [done] = remote([(strategy, run, tuple(variants), trace)], progress)
    else:  # the trace is the first chunk's, replayed here chunk by chunk
        done = [_replay_pass(strategy, run, variants, group, progress, group[0][0] == 0)
                for group in _passes(run, _chunks(run), 1, True)]
    return _assembled(strategy, run, variants, done)


def replay_many(jobs: list[tuple[StrategySpec, RunSpec, tuple[Variant, ...]]],
                progress: Callable[[int], None] | None = None,
                meanwhile: Callable[[], None] | None = None,
                finished: Callable[[list[tuple[int, ReplayResult]]], None] | None = None) -> list[ReplayResult]:
    """`replay` of several independent (strategy, run, variants) jobs, e.g. the scenarios of a simulation
    (every replay without a trace goes through here).

    Every pass of every job is replayed side by side: in this process's forked pool (`_replay_jobs`), or on
    a cluster (`REMOTE`), where every chunk of every job is submitted at once. The results are the same
    either way, bit for bit, and the same as replaying the jobs one after the other.

    ``meanwhile``: the caller's own work, called once here while forked workers replay the jobs (this process
    waits for them: a simulation's sweep metrics' standard errors), else before the jobs are replayed.
    ``finished``: called here with ``(job, its result)`` of every job once, as soon as it is complete (those a
    forked worker's pass completes together: a list) — with forked workers while they still replay the other
    jobs (a simulation's scenarios' metrics).
    """
    remote = REMOTE.get()
    if remote is None:
        return _replay_jobs([(s, r, tuple(v)) for s, r, v in jobs], progress, meanwhile, finished)
    if meanwhile is not None:
        meanwhile()
    streams = remote([(s, r, tuple(v), False) for s, r, v in jobs], progress)
    results = [_assembled(s, r, v, done) for (s, r, v), done in zip(jobs, streams)]
    if finished is not None:
        finished(list(enumerate(results)))
    return results


def _replay_jobs(jobs: list[tuple], progress, meanwhile: Callable[[], None] | None = None,
                 finished: Callable[[list[tuple[int, ReplayResult]]], None] | None = None) -> list[ReplayResult]:
    """The jobs' passes (`_passes`) replayed side by side by forked workers when there are several passes
    and this process may fork, else here one after the other; each job assembled in chunk order as soon as
    its passes are in. ``meanwhile``, ``finished``: `replay_many`'s.

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


def made_ahead(jobs: list[tuple[StrategySpec, RunSpec, tuple[Variant, ...]]]) -> None:
    """Make here, now, and put in the current month store the months and marks that `replay_many` of ``jobs``
    would make in this process before forking its workers (`_months_made_here`, `_marks_made_here`).

    A caller that knows a later pass's jobs calls this while an earlier pass's forked workers replay (`opl loop`'s
    evaluator: the scenarios' and the counterfactuals' months and marks during the sweep), so that this process
    does it beside them instead of alone, both workers gone, before the later pass forks. What is made is what
    that pass would make — the same keys, the same room rules (a job alone is taken as one of several, as the
    jobs are planned at the sweep's size: the pass at the picked size may hold one more) — and read from the
    store it is the numbers made afresh, so the results do not depend on when it is made. Nothing without a store
    that keeps, on a cluster, or where no pool would fork.
    """
    if not jobs or REMOTE.get() is not None or not _can_fork() or (jobs[0][1].workers or _cores()) < 2:
        return
    jobs = [(s, r, tuple(v)) for s, r, v in jobs]
    plans = _job_plans(jobs, 1)
    _months_made_here(jobs, plans)
    _marks_made_here(jobs, plans)


def _lockstep_tasks(jobs: list[tuple], plans: list[list[tuple]], workers: int) -> list[tuple]:
    """The jobs' passes as tasks ``(job indices, group)``, each replayed in lockstep (`_replay_lockstep`), in
    every job's chunk order.

    Jobs of the same passes and seed on simulated paths (a simulation's sweep or its scenarios) are replayed
    together, so a chunk-month's draws are made once for them; they are cut into as many runs of
    consecutive jobs as give ``workers`` processes two tasks each (a pass of every job at once would leave
    a worker idle while the other replays the larger pass). The runs' lengths differ by one at most, the
    longer first: six jobs for two workers are runs of 2, 2, 1 and 1 (cut by threes, 2, 2 and 2, one worker
    replayed two runs while the other replayed one). Other jobs keep a task per pass.

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
        runs = min(len(members), 1 if workers <= 1 else math.ceil(2 * workers / len(plan)))
        if workers > 1 and _months_stored(jobs, plans, members):
            runs = len(members)
        for group in plan:
            tasks += [(run, group) for run in _even_runs(members, runs)]
    return tasks


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


#: Where chunks are replayed when set (a Dask cluster, `opl.simulation.cluster`): called with a list of jobs
#: ``(strategy, run, variants, trace)`` and ``progress``, it submits every pass of every job at once
#: (`pass_plan`) and returns, per job, an iterable of what `replay_pass` gives for each pass, in chunk order
#: (``trace``: the first chunk's trace kept). Unset, chunks are replayed in this process (or its forked pool).
REMOTE: ContextVar[Callable | None] = ContextVar("opl_remote_chunks", default=None)


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
    (16 bytes: the stored ones are read-only, `_Month`)."""
    elements = pass_paths(group) * (run.days_per_month * run.steps_per_day + 1)
    return elements * (25 * len(strategy.legs) + 16)


def replay_pass(strategy: StrategySpec, run: RunSpec, variants: tuple[Variant, ...], group: tuple,
                trace: bool = False):
    """The chunks of ``group`` exactly as the sequential replay computes them (each its own seed
    [seed, chunk]): the unit of work a pool or a cluster runs. Kernels run on their serial twins: the
    worker processes share the cores."""
    kernels.serial_only()
    return _replay_pass(strategy, run, variants, group, None, trace)


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


_JOBS: tuple | None = None  # what the forked workers replay (inherited, so closures need no pickling)


def _pass_job(task: tuple):
    """Pass ``group`` of the jobs ``indices`` in lockstep in a forked worker (``task`` = (indices, group))."""
    indices, group = task
    jobs, deadline, store, outbox = _JOBS
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
    sequential replay's whatever the number of workers or the order the passes finish. The strategy's
    compiled conditions are closures, which do not pickle: the children inherit them through ``fork``.
    """
    global _JOBS
    for strategy, run, _ in jobs:
        _warm(strategy, run)
    _warm_steps(*jobs[0])
    store = monthstore.current()
    # The passes' results come back through files in shared memory, not the pool's pipe (`handover`).
    outbox = handover.folder()
    _JOBS = (tuple(jobs), current_deadline(), store.reader() if store is not None else None, outbox)
    places, count = [], [0] * len(jobs)  # each task's place in the pass lists of its jobs (chunk order)
    for indices, _ in tasks:
        places.append([count[i] for i in indices])
        for i in indices:
            count[i] += 1
    done: list[list] = [[None] * n for n in count]
    left, left_tasks = list(count), len(tasks)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    try:
        futures = {pool.submit(_pass_job, task): t for t, task in enumerate(tasks)}
        if meanwhile is not None:  # the first submit forked every worker (the fork start method)
            meanwhile()
        for future in as_completed(futures):
            t = futures[future]
            indices, group = tasks[t]
            complete = []
            for i, place, result in zip(indices, places[t], handover.received(future.result())):
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
    except BaseException:
        # Passes not started are dropped; running ones stop at the deadline (or finish) on their own.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        _JOBS = None
        handover.clear(outbox)
    # Every result is in: the workers exit (each unmaps its copy of this process, ~0.1 s) while the caller goes
    # on — with its next pool's workers, or its serial work — instead of waiting for them; the pool's own
    # thread reaps them.
    pool.shutdown(wait=False)
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


@dataclass(eq=False)
class _Open:
    """What one month holds over (variants, paths) while its steps run (`_Pass.month`)."""

    m: int
    mo: MarkedMonth
    book: Book
    d: np.ndarray  # the month's hedge direction per path
    hedge: np.ndarray
    is_open: np.ndarray
    month_pnl: np.ndarray
    denominator: np.ndarray  # pnl_percent's base: the premium, or the opening margin
    open_margin: np.ndarray
    month_start: np.ndarray
    alerted: np.ndarray
    assigned: np.ndarray
    delivered: np.ndarray
    by_step: np.ndarray | None = None  # `prices`, made when first read
    # How many (variant, path) positions are open (`_Pass._open_anywhere`), None when ``is_open`` changed since it
    # was counted: the adjustment round, the hedge and the alerts each asked numpy to scan the whole array at every
    # step. The compiled exits, which close a few positions at most steps, take their count off it (no new scan).
    open_count: int | None = None
    read_only: tuple | None = None  # `steps_read_only`, made when first read
    # Per base leg and step, the marks' columns the step gives the slot and the kernels' views of them, or None
    # (`_Pass._base_columns`).
    base_cols: list | None = None

    @property
    def prices(self) -> np.ndarray:
        """The month's prices by step, (n + 1, paths) C-ordered (`_price_rows`): a step's row without a copy."""
        if self.by_step is None:
            self.by_step = _price_rows(self.mo)
        return self.by_step


def _steps_read_only(o: _Open, by_step: tuple) -> tuple:
    """The month's prices and volatilities by step as read-only views (the arrays themselves where they are
    read-only), made once a month: `adjust_kernels.when_verdict` takes read-only rows, and made a view of each
    row at every step."""
    rows = o.read_only
    if rows is None or rows[0] is not by_step[0]:
        views = []
        for x in by_step[:2]:
            if x.flags.writeable:
                x = x.view()
                x.setflags(write=False)
            views.append(x)
        rows = o.read_only = (by_step[0], *views)
    return rows[1:]


def _price_rows(mo: MarkedMonth) -> np.ndarray:
    """The month's prices (n + 1, paths), a step's prices a contiguous row: the kernels read a step's prices
    whole, and a column of the (paths, n + 1) table was copied at each of a step's four or five kernel calls
    (a strided gather of the whole column each). A simulated month keeps the transpose (`_Month.by_step`);
    a shared month's is read-only, and the kernels take writable arrays (one compiled type an argument): copied
    then, once a month."""
    by_step = getattr(mo, "by_step", None)
    rows = by_step[0] if by_step is not None else np.ascontiguousarray(np.asarray(mo.price, dtype=float).T)
    # (C-ordered, writable floats: the step kernels read its rows as they are, `StepPack`)
    flags = rows.flags
    return rows if flags.writeable and flags.c_contiguous and rows.dtype == np.float64 else \
        np.array(rows, dtype=float, order="C")


class _Pass:
    """A pass of chunks replayed over (variants, paths): the run's constants, the running account
    (ledger, equity, peaks, futures from exercise, goods, the liquidation decided) and the month's steps
    in the order of the module docstring, one method each."""

    def __init__(self, strat: StrategySpec, run: RunSpec, variants, shape: tuple[int, int], want_trace: bool):
        self.strat, self.run, self.shape = strat, run, shape
        self.sizes = np.array([v.size for v in variants])[:, None]
        self.band_k = np.array([v.band_k for v in variants])[:, None]
        self.fast = run.engine == "fast" and kernels.available()
        self.margins = _Margins(_margin_packs(run.pack, variants), self.fast)
        self.hedger = _hedge_compiled if self.fast and not want_trace else _hedge
        # Option ticks are looked up at 1% of the price, where the premiums of monthly options sit.
        premium_level = max(run.price * 0.01, 1e-9)
        costs = [Costs.from_pack(run.pack, price=run.price, premium=premium_level, option_ticks=run.option_ticks,
                                 futures_ticks=run.futures_ticks, fee_factor=v.fee_factor,
                                 slippage_factor=v.slippage_factor) for v in variants]
        self.cost = _CostArrays(costs)
        self.cost.fast = self.fast and not want_trace
        self.exit_rules = _exit_rules(strat) if self.cost.fast else None
        self.mult, self.cs = strat.multiplier, strat.contract_size
        self.lots_per_option = self.mult / self.cs  # futures lots of delta per option lot per unit of delta
        self.cash_rate = strat.rate if run.cash_rate is None else run.cash_rate
        self.margin_rate = self.cash_rate if run.margin_rate is None else run.margin_rate
        self.futures_underlying = run.pack.underlying.kind == "future"
        nl = len(strat.legs)
        numbers = strat.leg_numbers or tuple(range(nl))
        self.engine = AdjustEngine(strat.adjust, shape, numbers) if strat.adjust is not None else None
        self.slots_per_month = nl + (self.engine.extra_slots(strat.legs) if self.engine is not None else 0)
        self.ledger = Ledger(shape, run.months, strat.adjust.counters() if strat.adjust is not None else ())
        self.equity = np.full(shape, run.capital)
        self.peak = self.equity.copy()
        self.max_dd = np.zeros(shape)
        self.peak_margin = np.zeros(shape)
        self.margin_held = np.zeros(shape)  # the requirement over the coming step (for margin_rate)
        self.pending = np.zeros(shape)  # futures lots from exercise, closed at the next step
        self.pending_zero = False  # `pending` known to be zeros (closed at this step's start, no exercise since)
        self.inventory = Inventory(shape, run.months * self.slots_per_month)
        self.liquidate_next = np.zeros(shape, dtype=bool)
        self.ruined = np.zeros(shape, dtype=bool)
        self.no_alerts = np.zeros(shape, dtype=bool)  # `_Open.alerted` where no warn_if rule holds (read only)
        self.no_alerts.flags.writeable = False
        self._paths = np.zeros(shape[1], dtype=bool)  # `_adjust`'s paths of a round (all False between rounds)
        self.warns = any(g.kind == "warn_if" for g in strat.guards)  # asked at every step: the rules do not change
        self._quiet: dict[tuple, bool] = {}  # `_warns_nowhere`'s answers
        self._growths: dict = {}  # `_growth`'s answers
        self._verdicts: dict[tuple, tuple] = {}  # `_exit_verdicts`' answers
        self.absolute_step = 0
        self.tr: dict[str, list] | None = {k: [] for k in (
            "net_delta", "target", "hedge", "equity", "margin", "hedged", "price", "assigned", "unit_delta", "band",
            "exit", "open", "adjusted", "gamma")} if want_trace else None
        # The step kernels with what holds all pass made once (`StepPack`): the fast engine's settle, and where the
        # costs are compiled (untraced) its exits and hedge.
        self.pack = StepPack(
            shape=shape, equity=self.equity, buckets=self.ledger.buckets, counters=self.ledger.counters,
            capital=run.capital, mult=self.mult, cs=self.cs, storage=strat.assignment.storage_per_day,
            funding=strat.assignment.funding_rate, year_days=DAYS_PER_YEAR, option_close_fee=self.cost.option_close_fee,
            futures_close_fee=self.cost.futures_close_fee, futures_open_fee=self.cost.futures_open_fee,
            exit_rules=self.exit_rules[0] if self.exit_rules is not None else None,
            all_required=strat.exit_mode == "all_required",
            stop_level=None if strat.stop_loss is None else -strat.stop_loss * run.capital,
            hedge=(strat.hedge.keep, strat.hedge.band, self.lots_per_option) if strat.hedge is not None else None,
        ) if self.fast else None

    # -- the pass's results ----------------------------------------------------------------------------
    def result(self) -> dict:
        ledger = self.ledger
        return {"monthly": ledger.monthly, "max_drawdown": self.max_dd, "peak_margin": self.peak_margin,
                "buckets": ledger.buckets, "counters": ledger.counters}

    def trace(self) -> dict[str, np.ndarray] | None:
        return {k: np.stack(v, axis=-1) for k, v in self.tr.items()} if self.tr is not None else None

    # -- a month ---------------------------------------------------------------------------------------
    def month(self, m: int, mo: MarkedMonth) -> None:
        """Month ``m``: the open, its steps, its P&L into the ledger."""
        kernelbase.forget_tuples()  # the last month's kept kernel tuples would keep its marks alive
        o = self._open(m, mo)
        for j in range(1, mo.n + 1):
            check_deadline()  # a step of a chunk is the longest the replay runs past its deadline
            self._step(o, j)
        self.ledger.monthly[..., m] = self.equity - o.month_start
        self.ledger.count("assigned_months", o.assigned)
        self.ledger.count("delivered_months", o.delivered)
        self.ruined |= self.equity <= 0

    def state(self, o: _Open, j: int, hedge=None, month_pnl=None, denominator=None, open_margin=None) -> TriggerState:
        """What the triggers read at step ``j`` (the month's own hedge, P&L and bases unless given)."""
        book, sizes, lots_per_option = o.book, self.sizes, self.lots_per_option
        return _trigger_state(o.mo, j, book, o.hedge if hedge is None else hedge,
                              o.month_pnl if month_pnl is None else month_pnl,
                              o.denominator if denominator is None else denominator, self.equity, self.peak,
                              self.run.capital, o.open_margin if open_margin is None else open_margin,
                              self.margins, o.mo.days_left[j], lots_per_option, self.pending, self.inventory,
                              lambda: (book.option_delta(lots_per_option) + book.static) / sizes, self.band_k,
                              self.strat, o.d)

    def _open(self, m: int, mo: MarkedMonth) -> _Open:
        """Step 0: the legs resolved, guarded, margined, sold or bought; the hedge set."""
        strat, shape, ledger, cost, equity = self.strat, self.shape, self.ledger, self.cost, self.equity
        f = mo.price
        d = direction(strat.hedge, mo.signal) if strat.hedge is not None else np.zeros(shape[1])
        book = _open_book(strat, mo, self.sizes, shape)
        if self.engine is not None:
            if not hasattr(mo, "quote"):
                raise ValueError("the adjustment module needs simulated months (their options can be re-marked)")
            self.engine.open_month(book)
        zero = np.zeros(shape)  # (read only until replaced below; the base of pnl_percent read by the guards only)
        o = _Open(m=m, mo=mo, book=book, d=d, hedge=zero, is_open=np.zeros(shape, dtype=bool), month_pnl=zero,
                  denominator=np.ones(shape) if strat.guards else zero, open_margin=zero, month_start=equity.copy(),
                  alerted=np.zeros(shape, dtype=bool), assigned=np.zeros(shape, dtype=bool),
                  delivered=np.zeros(shape, dtype=bool))
        if self.fast:
            o.base_cols = self._base_columns(mo)
        if strat.guards:
            # avoid_leg_if: a leg whose rule holds at the open is not opened on that path.
            at_open = self.state(o, 0)
            for s, hit in zip(book.slots, blocked(strat.guards, at_open, leg_states(book, f[:, 0], mo.days_left[0]))):
                if np.any(hit):
                    ledger.count("avoided_legs", hit & ~self.ruined & ~self.liquidate_next)
                    s.qty = np.where(hit, 0.0, s.qty)
        open_margin = self.margins(book, zero, zero, f[:, 0])
        # A liquidation decided at the last step of a month runs at the next step; nothing opens before it.
        can_open = ~self.ruined & ~self.liquidate_next & (equity >= open_margin)
        ledger.count("skipped_months", ~self.ruined & ~can_open)
        # The adjustment module's slots hold nothing yet: their lots, costs and counts are zeros (skipped).
        opened = [s for s in book.slots if s.held()]
        closed = ~can_open
        for s in opened:  # (the lots `_open_book` made: the slot's own array, zeroed in place where not opened)
            _lots_set(s, _zeroed(s._qty, closed))
        book.futures = [np.where(can_open, fut, 0.0) for fut in book.futures]
        is_open = can_open & book.any_open()
        margin = np.where(is_open, open_margin, 0.0)
        self.margin_held = self.margin_held + margin
        month_pnl = np.zeros(shape)
        for s in opened:
            lots = np.abs(s._qty)
            ledger.pay(cost.open_options(s._qty, lots), equity, month_pnl)
            ledger.count("option_lots", is_open, lots)
        for fut in book.futures:
            ledger.cost(cost.futures(fut, closing=False), equity, month_pnl)
        # (The slots not opened hold no lots: their terms, ±0, change no |sum|.)
        premium = np.abs(-sum(s._qty * s.value for s in opened) * self.mult)
        o.denominator = np.where(premium > 0, premium, np.maximum(open_margin, 1e-9))
        o.is_open, o.month_pnl, o.open_margin, o.hedge = is_open, month_pnl, open_margin, np.zeros(shape)
        if strat.hedge is not None:
            o.hedge = self.hedger(strat, book, o.hedge, d, is_open, self.lots_per_option, cost, ledger, equity,
                                  month_pnl, self.tr)
        margin /= self.run.capital
        np.maximum(self.peak_margin, margin, out=self.peak_margin)
        if self.engine is not None:
            when = self._when(o, 0)
            self.engine.start(self.state(o, 0) if when is None else None, is_open, when=when)
        return o

    @staticmethod
    def _base_columns(mo) -> list | None:
        """`_Open.base_cols` of a fast month (its marks stored (steps, paths), `SeriesMarks`), else None: per base
        leg, per step ``j``, (value, delta, exercise, gamma) — the columns ``[:, j]`` of the month's tables, gamma
        0.0 without greeks — and the value's, delta's and exercise flags' read-only (1, paths) views the kernels
        read, all made here at once.

        A step gave each base slot its columns by four subscripts, and every tuple of them the step's kernels take
        (the settle's, the hedge's, the margin's, the exercise scan's) made its read-only view again
        (`kernelbase._grid_view`: a reshape and a flag set); the step now takes them from these lists and puts the
        views in `kernelbase._VIEWS` for those tuples (`_settle`)."""
        if getattr(mo, "series", None) is None:
            return None
        gammas = mo.gamma
        legs = []
        for b, tables in enumerate(zip(mo.value, mo.delta, mo.exercise)):
            columns, rows = [], []
            for x in tables:
                x = x.T  # (steps, paths)
                if not x.flags.c_contiguous:
                    return None
                columns.append(list(x))  # x[j] is the column ``[:, j]`` of the (paths, steps) table, the same view
                x = x.reshape(x.shape[0], 1, x.shape[1])
                x.setflags(write=False)
                rows.append(list(x))
            steps = len(columns[0])
            columns.append(list(gammas[b].T) if gammas is not None else [0.0] * steps)
            legs.append(list(zip(*columns, *rows)))
        return legs

    # -- a step ----------------------------------------------------------------------------------------
    def _step(self, o: _Open, j: int) -> None:
        """Step ``j`` of the month, in the module docstring's order."""
        self.absolute_step += 1
        if self.fast:
            self._settle(o, j)
        else:
            self._interest(o, j)
            self._mark(o, j)
            self._previous_decisions(o)
        self._exits(o, j)
        fired = self._adjust(o, j)
        may = self._exercisable(o, j)
        self._rebalance(o, j)
        assigned = self._assign(o, j, may)
        if j == o.mo.n:
            self._expire(o)
        requirement = self._requirement(o, j)
        self._alerts(o, j)
        if self.tr is not None:
            self._trace_step(o, j, requirement, assigned, fired)

    def _interest(self, o: _Open, j: int) -> None:
        """Interest on the cash held over the step (before this step's marks and trades)."""
        cash_rate, margin_rate = self.cash_rate, self.margin_rate
        if not (cash_rate or margin_rate != cash_rate):
            return
        book, f = o.book, o.mo.price
        years = o.mo.span[j] / DAYS_PER_YEAR
        # Units of an ETF or a stock held were paid for; futures settle daily and hold no cash.
        cash = self.equity - self.run.capital - book.option_value(self.mult)
        if not self.futures_underlying:
            cash = cash - (book.static + o.hedge + self.pending + self.inventory.total()) * f[:, j - 1] * self.cs
        amount = cash * np.expm1(cash_rate * years)
        if margin_rate != cash_rate:  # the deposit earns the margin rate instead of the cash rate
            amount += self.margin_held * (np.expm1(margin_rate * years) - np.expm1(cash_rate * years))
        self.ledger.book("interest", amount, self.equity, o.month_pnl)

    def _interest_terms(self, o: _Open, j: int) -> tuple | None:
        """The step's interest as the compiled kernels take it — (units of an ETF or a stock held, or None;
        the cash's growth; the deposit; the deposit's own growth, or None) —, None when nothing accrues."""
        cash_rate, margin_rate = self.cash_rate, self.margin_rate
        if not (cash_rate or margin_rate != cash_rate):
            return None
        units = None
        if not self.futures_underlying:
            units = o.book.static + o.hedge + self.pending + self.inventory.total()
        growth, margin_growth = self._growth(o.mo.span[j])
        return units, growth, self.margin_held, margin_growth

    def _growth(self, span) -> tuple:
        """The cash's and the deposit's own growth over a step of ``span`` days (`_interest_terms`), kept per span:
        a month's steps have one or two spans, and these were three numpy scalar expressions a step."""
        known = self._growths.get(span)
        if known is None:
            cash_rate, margin_rate = self.cash_rate, self.margin_rate
            years = span / DAYS_PER_YEAR
            known = self._growths[span] = (
                np.expm1(cash_rate * years),
                np.expm1(margin_rate * years) - np.expm1(cash_rate * years) if margin_rate != cash_rate else None)
        return known

    def _settle(self, o: _Open, j: int) -> None:
        """1.–2. on the fast engine, one compiled pass (`opl.runtime.engine.kernels.settle`): the interest,
        the marks booked, the carry and the close of the futures from exercise, the numbers of `_interest`,
        `_mark` and `_previous_decisions` bit for bit. After a margin call not met, the liquidation comes
        before that close (`_previous_decisions` does both, as the reference orders them); so it does when the
        costs are booked stage by stage (a traced replay: ``cost.fast`` is False)."""
        mo = o.mo
        interest = self._interest_terms(o, j)
        # The slots moved to step j's marks (base slots, dynamic ones where held), in the book's order
        # (`_marked_slots`: marking changes no slot's lots), as the kernel takes them, in one loop.
        cols, views = o.base_cols, kernelbase._VIEWS
        qtys, befores, afters, valued = [], [], [], []
        for s in o.book.slots:
            b = s.base
            if b is None:
                if not s._held:
                    continue
                befores.append(s.value)
                mo.remark(s, j)
            else:
                befores.append(s.value)
                if cols is None:
                    _base_marks(s, mo, j)
                else:
                    marks = mo.series[b]
                    if not marks.complete:  # (a store's month is marked whole already)
                        _base_marks(s, mo, j)
                    value, s.delta, s.exercise, s.gamma, value_row, delta_row, flag_row = cols[b][j]
                    s.value = value
                    views[id(value)] = (value, value_row)  # the columns' kernel views, for the step's tuples
                    views[id(s.delta)] = (s.delta, delta_row)
                    views[id(s.exercise)] = (s.exercise, flag_row)
            qtys.append(s._qty)
            afters.append(s.value)
            valued.append(s._held)
        closing = self.cost.fast and not _any(self.liquidate_next, axis=None)
        self.pending = pending = kernels.writable(self.pending, self.shape)
        prices = o.prices
        self.pack.settle(interest=interest, qtys=qtys, befores=befores, afters=afters, valued=tuple(valued),
                         static=_static(o.book), hedge=o.hedge, pending=pending,
                         # (no name kept for the total: the step's releases change it in place, `Inventory`)
                         goods=self.inventory.total() if self.inventory.holds() else None,
                         previous=prices[j - 1],
                         price=prices[j], span=mo.span[j], close=closing, month_pnl=o.month_pnl)
        self._previous_decisions(o, pending_closed=closing)

    def _mark(self, o: _Open, j: int) -> None:
        """1. Mark to market: options, the strategy's futures, the hedge, futures awaiting their close, goods."""
        ledger, equity, month_pnl, mo, cs = self.ledger, self.equity, o.month_pnl, o.mo, self.cs
        for s, before in self._marked_slots(o, j):
            ledger.book("premium", s.qty * (s.value - before) * self.mult, equity, month_pnl)
        held = self.inventory.total()
        goods = held if np.any(held) else None
        f, terms = mo.price, self.strat.assignment
        df = f[:, j] - f[:, j - 1]
        ledger.book("premium", o.book.static * df * cs, equity, month_pnl)
        ledger.book("hedge", o.hedge * df * cs, equity, month_pnl)
        ledger.book("assignment", self.pending * df * cs, equity)
        if goods is not None:
            ledger.book("assignment", held * df * cs, equity)
            ledger.book("assignment", -held * cs * terms.storage_per_day * mo.span[j], equity)
            ledger.book("funding", -held * cs * f[:, j] * terms.funding_rate * mo.span[j] / DAYS_PER_YEAR, equity)

    def _marked_slots(self, o: _Open, j: int) -> list[tuple[Slot, np.ndarray]]:
        """The option slots moved to step ``j``'s marks (base slots, dynamic ones where held), in the book's
        order, each with its marks before."""
        moved = []
        for s in o.book.slots:
            before = s.value
            if s.base is not None:
                _base_marks(s, o.mo, j)
            elif s._held:
                o.mo.remark(s, j)
            else:
                continue
            moved.append((s, before))
        return moved

    def _previous_decisions(self, o: _Open, pending_closed: bool = False) -> None:
        """2. What the previous step decided: a liquidation, the close of futures from exercise (unless
        ``pending_closed``: `_settle` did, which it does only where no liquidation was decided), goods sold."""
        ledger, equity, cost = self.ledger, self.equity, self.cost
        liquidate = self.liquidate_next
        if not pending_closed and np.any(liquidate):
            ledger.count("liquidations", liquidate)
            _close_all(o.book, o.hedge, liquidate, cost, ledger, equity, o.month_pnl)
            o.is_open &= ~liquidate
            o.open_count = None
            sold = self.inventory.take(mask=liquidate)
            ledger.cost(cost.futures(sold, closing=True), equity)
            self.pending = _close_pending(self.pending, liquidate, cost, ledger, equity)
            self.liquidate_next = np.zeros(self.shape, dtype=bool)
        if not pending_closed:
            self.pending = _close_pending(self.pending, self.pending != 0, cost, ledger, equity)
        self.pending_zero = True  # every lot closed, by `_settle` or just above, wherever it was not 0
        if not self.inventory.due(self.absolute_step):
            return  # most steps: nothing is released (no array of zeros scanned)
        sold = self.inventory.take(step=self.absolute_step)
        if self.cost.fast:
            kernels.book_sold(sold, cs=self.cs, basis=self.strat.assignment.basis, fee=cost.futures_close_fee,
                              buckets=ledger.buckets, equity=equity)  # one pass, not seven whole-array operations
        elif np.any(sold):
            ledger.book("assignment", sold * self.cs * self.strat.assignment.basis, equity)
            ledger.cost(cost.futures(sold, closing=True), equity)

    def _exit_flags(self, o: _Open, j: int) -> np.ndarray:
        """Where the exit triggers, the stop loss, the guard or the cycle's end close the position now."""
        strat, shape, mo = self.strat, self.shape, o.mo
        exit_now = np.zeros(shape, dtype=bool)
        if strat.exit_triggers or strat.score is not None:
            state = self.state(o, j)
            flags = [np.broadcast_to(t(state), shape) for t in strat.exit_triggers]
            if strat.score is not None:
                threshold = strat.score.threshold if strat.score_threshold is None else strat.score_threshold
                exit_now |= np.broadcast_to(strat.score.score(state, flags), shape) >= threshold
            else:  # pairwise, not np.any/np.all over the list: those first stack the flags into a new array
                combine = np.logical_and if strat.exit_mode == "all_required" else np.logical_or
                exit_now |= functools.reduce(combine, flags)
        if strat.stop_loss is not None:
            exit_now |= o.month_pnl <= -strat.stop_loss * self.run.capital
        if strat.guard_days is not None and mo.days_left[j] < strat.guard_days:
            exit_now[:] = True
        if j == mo.n and not mo.expires:  # a cycle cut at a roll or at the data's end: close at market
            exit_now[:] = True
        exit_now &= o.is_open
        return exit_now

    def _exits(self, o: _Open, j: int) -> None:
        """3. Exit triggers under the exit mode, the stop loss and the guard: a hit closes at market."""
        if self.exit_rules is not None:
            self._exits_compiled(o, j)
            return
        strat, mo, tr = self.strat, o.mo, self.tr
        exit_now = self._exit_flags(o, j)
        if tr is not None:
            unit_delta = (o.book.option_delta(self.lots_per_option) + o.book.static) / self.sizes
            tr["unit_delta"].append(np.where(o.is_open, unit_delta, np.nan))
            tr["band"].append(np.broadcast_to(self.band_k * mo.band[1][j], self.shape).copy() if mo.band is not None
                              else np.full(self.shape, np.nan))
            tr["exit"].append(exit_now.copy())
        if np.any(exit_now):
            self.ledger.count("exits", exit_now)
            cut = j == mo.n and not mo.expires
            if mo.days_left[j] >= (strat.guard_days or 2.0) and not cut:
                # Closed before the last days: a stop or a take-profit, what the critic wants to see.
                self.ledger.count("early_exits", exit_now)
            _close_all(o.book, o.hedge, exit_now, self.cost, self.ledger, self.equity, o.month_pnl)
            o.is_open &= ~exit_now
            o.open_count = None

    def _exits_compiled(self, o: _Open, j: int) -> None:
        """`_exits` for pnl_percent and days_left triggers in one compiled pass (`opl.runtime.engine.kernels.
        exits_close`): the flags, the stop loss, the guard, the counts and the close, the same numbers. The lots
        are closed in place (a slot's and the futures' arrays made their own first): most steps close a few
        positions, and new arrays for every slot, each rescanned for `Slot.held`, cost more than the exits.
        Where nothing is open (known: `_open_anywhere`) nothing can exit, and the step skips the call."""
        mo, shape = o.mo, self.shape
        if not self._open_anywhere(o):
            return
        start, force, early = self._exit_verdicts(mo.days_left[j], j == mo.n and not mo.expires)
        o.is_open = kernels.writable(o.is_open, shape, np.bool_)
        held, qtys = [], []
        for s in o.book.slots:  # the held slots and their lots, each the slot's own writable array (`writable` inline)
            if not s._held:
                continue
            q = s._qty
            if not (type(q) is np.ndarray and q.shape == shape and q.dtype == _FLOAT and (flags := q.flags).c_contiguous
                    and flags.writeable):
                s._qty = q = kernels.writable(q, shape)  # the same lots: `Slot.held` stays
            held.append(s)
            qtys.append(q)
        futures = o.book.futures
        own = [kernels.writable(f, shape) for f in (*futures, o.hedge)] if futures else [kernels.writable(o.hedge, shape)]
        still = self.pack.exits(month_pnl=o.month_pnl, denominator=o.denominator, start=start, force=force,
                                is_open=o.is_open, early=early, qtys=qtys, futures=own)
        if still is None:
            return  # nothing exited: nothing was written
        o.open_count -= self.pack.exited  # (each exit closed an open position: counted by `_open_anywhere` above)
        for s, h in zip(held, still):
            s._held = h
        o.hedge = own[-1]
        for f, w in zip(o.book.futures, own):
            if w is not f:
                f[...] = w  # a view or another type: written back, as the reference's close writes in place

    def _exit_verdicts(self, days_left, cut: bool) -> tuple[bool, bool, bool]:
        """`_exits_compiled`'s verdicts for every path at a step ``days_left`` days from expiry (``cut``: the last
        step of a cycle cut at a roll or the data's end): the days_left triggers combined (``start``: the
        pnl_percent ones still to test), the guard or the cut closing everything, an exit counted as early.
        Kept per (days_left, cut): a month's steps ask the same numbers every month."""
        known = self._verdicts.get((days_left, cut))
        if known is None:
            strat = self.strat
            pnl_rules, day_rules = self.exit_rules
            days = [COMPARISONS[op](days_left, bound) for op, bound in day_rules]  # one verdict for every path
            start = bool(all(days) if strat.exit_mode == "all_required" else any(days)) if (days or pnl_rules) \
                else False
            force = bool(strat.guard_days is not None and days_left < strat.guard_days) or cut
            early = bool(days_left >= (strat.guard_days or 2.0)) and not cut
            known = self._verdicts[(days_left, cut)] = (start, force, early)
        return known

    def _adjust(self, o: _Open, j: int) -> np.ndarray:
        """3b. The adjustment module on the positions still open; returns where a round fired."""
        engine, shape, mo = self.engine, self.shape, o.mo
        if engine is None or j >= mo.n or not self._open_anywhere(o):
            return self.no_alerts  # (nothing fired: the pass's read-only False, which only a trace reads)
        strat, run, book, ledger, equity = self.strat, self.run, o.book, self.ledger, self.equity
        if self.fast and hasattr(mo, "columns"):
            # The fast engine plays a round on the few paths where it fires (a few percent of them).
            when = self._when(o, j)
            state = _once(lambda: self.state(o, j))  # (the compiled condition and round do not read it)
            fire = engine.decide(state() if when is None else None, o.is_open, j, mo.step_days,
                                 compiled=kernels.available(), when=when)
            cols = engine.fired_paths if engine.fired_paths is not None else np.flatnonzero(fire.any(axis=0))
            closed = None
            if strat.greeks and cols.size:  # (cols: the paths where an element fires, in order)
                paths = self._paths
                paths[cols] = True  # fire.any(axis=0), without a scan of the whole fire
                _base_gammas(book, mo, j, paths)  # what the round reads (its gamma hedge, conditions)
                paths[cols] = False  # (all False again for the next round: no new array a step)
            compiled = self._compiled_round(o)
            if compiled is not None and cols.size and compiled.covers(o, j, state):
                if compiled.play(o, fire, j, cols):  # its exits counted and closed there
                    o.open_count = None
            elif cols.size:
                o.hedge, closed = _play_on_paths(
                    engine, fire, strat, book, o.hedge, mo, j, o.d, self.sizes, self.lots_per_option, run, self.cost,
                    ledger, equity, o.month_pnl, self.margins, self.pending, self.inventory, self.peak,
                    o.denominator, o.open_margin, self.band_k)
        else:
            _base_gammas(book, mo, j)
            desk = _desk(strat, book, o.hedge, mo, j, o.d, self.sizes, self.lots_per_option, run, self.cost, ledger,
                         equity, o.month_pnl, self.margins, self.pending, self.inventory,
                         lambda: self.state(o, j, hedge=desk.hedge))
            closed = engine.step(desk, o.is_open, mo.step_days)
            o.hedge = desk.hedge
        if closed is not None and np.any(closed):
            ledger.count("exits", closed)
            if mo.days_left[j] >= (strat.guard_days or 2.0):
                ledger.count("early_exits", closed)
            o.is_open &= ~closed
            o.open_count = None
        return engine.fired

    @staticmethod
    def _open_anywhere(o: _Open) -> bool:
        """Whether a position of ``o`` is open on any path: counted once after each change of ``is_open`` but the
        compiled exits' (`_Open.open_count`)."""
        if o.open_count is None:
            o.open_count = int(np.count_nonzero(o.is_open))
        return o.open_count > 0

    def _when(self, o: _Open, j: int) -> np.ndarray | None:
        """``adjust_when``'s verdict per path at step ``j`` of ``o`` in one compiled pass
        (`opl.runtime.engine.adjust_kernels.when_verdict`: a condition of price and volatility triggers on a
        fast month with the stock smile), or None: the numpy test then reads the step's trigger state."""
        program, mo = self.engine.when_program, o.mo
        by_step = getattr(mo, "by_step", None)
        if program is None or not self.fast or by_step is None or type(mo.smile) is not SmileRule:
            return None
        price, vol = _steps_read_only(o, by_step)
        return adjust_kernels.when_verdict(program, price=price[j], open_price=price[0], vol=vol[j], open_vol=vol[0],
                                           floor=mo.smile.floor, spread=mo.smile.spread)

    def _compiled_round(self, o: _Open) -> "_Round | None":
        """The pass's compiled round (`_Round`: every month's book has the same slots), made at its first round;
        None where it does not cover them."""
        kept = getattr(self, "_round", None)
        if kept is None:
            kept = self._round = (_Round.of(self.engine, self, o.book, o.mo) if _ROUNDS_COMPILED else None,)
        return kept[0]

    def _rebalance(self, o: _Open, j: int) -> None:
        """4. The hedge rule on its rebalancing steps."""
        strat, tr = self.strat, self.tr
        if strat.hedge is not None and j < o.mo.n and j % strat.hedge.every == 0:
            if self.hedger is _hedge_compiled:
                self._hedge_packed(o)
                return
            o.hedge = self.hedger(strat, o.book, o.hedge, o.d, o.is_open, self.lots_per_option, self.cost, self.ledger,
                                  self.equity, o.month_pnl, tr)
        elif tr is not None:
            tr["hedged"].append(np.zeros(self.shape, dtype=bool))
            for key in ("net_delta", "target"):
                tr[key].append(np.full(self.shape, np.nan))

    def _hedge_packed(self, o: _Open) -> None:
        """`_hedge_compiled` at a rebalancing step by the pass's `StepPack`, told whether anything is open (known:
        no scan of ``is_open``), the same numbers."""
        hedge, book = o.hedge, o.book
        # The month's own hedge is rebalanced in place (`_hedge_compiled`); a view or a shared array gets a new one.
        flags = hedge.flags
        own = hedge.shape == self.shape and hedge.dtype == _FLOAT and flags.c_contiguous and flags.writeable \
            and flags.owndata
        if not self._open_anywhere(o):  # nothing trades: the hedge kept, the same array or a copy
            if not own:
                o.hedge = np.array(hedge, dtype=float)
            return
        qtys, deltas = [], []
        for s in book.slots:  # (the held slots' lots and deltas in one loop)
            if s._held:
                qtys.append(s._qty)
                deltas.append(s.delta)
        o.hedge = self.pack.hedge(qtys=qtys, deltas=deltas, static=_static(book), hedge=hedge, d=o.d,
                                  active=o.is_open, month_pnl=o.month_pnl, in_place=own)

    def _exercisable(self, o: _Open, j: int) -> set[int] | None:
        """Before expiry on the fast engine, the slots that may be exercised at step ``j``: the held American
        ones with a short lot in the exercise region, all found in one compiled call
        (`opl.runtime.engine.kernels.shorts_exercised`); None (every slot asks `_exercised`) otherwise."""
        if not self.fast or j >= o.mo.n:
            return None
        index, qtys, flags = [], [], []
        for si, s in enumerate(o.book.slots):  # (the held American slots' places, lots and flags in one loop)
            if s._held and s.american:
                index.append(si)
                qtys.append(s._qty)
                flags.append(s.exercise)
        if not index:
            return set()
        return {si for si, hit in zip(index, self.pack.shorts(qtys, flags)) if hit}

    def _exercised(self, s: Slot, j: int, mo, found: bool = False) -> np.ndarray | None:
        """Where slot ``s`` is exercised at step ``j`` — short American lots in the holder's exercise region
        before expiry, lots in the money at expiry —, or None where nowhere (an empty slot, a European one
        before expiry, a series expiring after the month: it is closed at market at the month's end).
        ``found``: `_exercisable` found the slot short in its exercise region before expiry (not asked again)."""
        option = self.run.pack.option
        if not s.held():
            return None
        if j < mo.n or s.extra_days > 0:
            if not (s.american and j < mo.n):
                return None
            if found:  # (one temporary: the flags and-ed into the comparison's own array)
                hit = s._qty < 0
                if type(hit) is not np.ndarray or hit.shape != self.shape:
                    return hit & s.exercise
                hit &= s.exercise
                return hit
            if self.fast and not kernels.any_short_exercised(s.qty, s.exercise):
                return None  # the usual step: found in one pass, without the masks below
            hit = (s.qty < 0) & s.exercise
        elif option.auto_exercise_itm:
            hit = (s.qty != 0) & (s.phi * (mo.price[:, mo.n] - s.strike) > option.auto_exercise_threshold)
        else:
            return None
        return hit if np.any(hit) else None

    def _assign(self, o: _Open, j: int, may: set[int] | None = None) -> np.ndarray | None:
        """5./6. Early assignment of short American legs, exercise at expiry; returns where a short was assigned
        at this step for the trace (None untraced on the fast engine: its kernel marks the month's ``assigned``
        in place, no step's array made and or-ed in). ``may``: `_exercisable`'s answer at this step, if asked
        already (the hedge changes no lots or flags)."""
        direct = self.fast and self.tr is None
        if direct and may is not None and not may:
            return None  # before expiry, no slot short in its exercise region (most steps): nothing to book
        strat, mo, ledger, equity, cost = self.strat, o.mo, self.ledger, self.equity, self.cost
        f, mult = mo.price, self.mult
        assigned_now = o.assigned if direct else np.zeros(self.shape, dtype=bool)
        may = self._exercisable(o, j) if may is None else may
        for si, s in enumerate(o.book.slots):
            hit = self._exercised(s, j, mo, found=may is not None) if may is None or si in may else None
            if hit is None:
                continue
            if self.fast:
                self._exercise_compiled(o, si, s, hit, j, assigned_now)
                continue
            q = s.qty
            lots_f = np.where(hit, q * s.phi * self.lots_per_option, 0.0)
            intrinsic = np.maximum(s.phi * (f[:, j] - s.strike), 0.0)
            ledger.book("assignment", np.where(hit, -q * (s.value - intrinsic) * mult, 0.0), equity, o.month_pnl)
            ledger.cost(np.where(q < 0, cost.option_assignment, cost.option_exercise) * np.abs(
                np.where(hit, q, 0.0)), equity, o.month_pnl)
            short = hit & (q < 0)
            assigned_now |= short
            if strat.assignment.action == "take_delivery":
                goods = np.where(short & (lots_f > 0), lots_f, 0.0)
                hold = int(np.ceil(strat.assignment.hold_days / mo.step_days))
                self.inventory.add(o.m * self.slots_per_month + si, goods, self.absolute_step + max(hold, 1))
                o.delivered |= goods > 0
                lots_f = lots_f - goods
            self.pending = self.pending + lots_f
            self.pending_zero = False
            s.qty = np.where(hit, 0.0, q)
        if direct:
            return None
        o.assigned |= assigned_now
        return assigned_now

    def _exercise_compiled(self, o: _Open, si: int, s: Slot, hit: np.ndarray, j: int, assigned_now) -> None:
        """`_assign`'s bookings for slot ``s`` in one compiled pass (`opl.runtime.engine.kernels.exercise`)."""
        terms, cost, mo = self.strat.assignment, self.cost, o.mo
        shape = self.shape
        s._qty, self.pending = kernels.writable(s._qty, shape), kernels.writable(self.pending, shape)
        self.pending_zero = False
        qty, self.pending, goods = kernels.exercise(
            qty=s.qty, hit=hit, phi=s.phi, lots_per_option=self.lots_per_option, price=o.prices[j], strike=s.strike,
            value=s.value, mult=self.mult, fee_assigned=cost.option_assignment[:, 0],
            fee_exercised=cost.option_exercise[:, 0], take_delivery=terms.action == "take_delivery",
            buckets=self.ledger.buckets, equity=self.equity, month_pnl=o.month_pnl, assigned=assigned_now,
            pending=self.pending, in_place=True)  # the slot's and the pass's own arrays: no new ones a call
        _lots_set(s, qty)
        if terms.action == "take_delivery":
            hold = int(np.ceil(terms.hold_days / mo.step_days))
            at = self.inventory.add(o.m * self.slots_per_month + si, goods, self.absolute_step + max(hold, 1),
                                    within=hit)  # (goods only where an exercise hit)
            if at.size:  # ``goods > 0`` at the positions stored: ``delivered |= goods > 0`` without a scan
                o.delivered.reshape(-1)[at] = True

    def _expire(self, o: _Open) -> None:
        """6. At expiry what was not exercised lapses (its mark is already 0); series expiring later are sold
        back at market with the hedge and the futures."""
        book = o.book
        for s in book.slots:
            if s.extra_days == 0 and s._held:  # (a slot holding nothing holds zeros already)
                s.qty = np.zeros(self.shape)
        expiring = o.is_open | (o.hedge != 0) | (_static(book) != 0)  # (no array of zeros made for no futures)
        _close_all(book, o.hedge, expiring, self.cost, self.ledger, self.equity, o.month_pnl)
        o.is_open[:] = False
        o.open_count = 0

    def _requirement(self, o: _Open, j: int) -> np.ndarray:
        """7. Margin by the rule pack, margin calls, the liquidation decided for the next step, peaks and
        drawdown; returns the requirement."""
        strat, run, ledger, equity = self.strat, self.run, self.ledger, self.equity
        if self.fast and self.margins.rule is not None:
            # The margin and the account in one compiled pass (kernels.requirement_account), the same numbers.
            # (By the pass's `StepPack`, of the pass's equity and capital.)
            self.margin_held, self.liquidate_next = self.pack.requirement(
                self.margins.rule, [s for s in o.book.slots if s._held], static=_static(o.book), hedge=o.hedge,
                other=self._other_futures(), price=o.prices[j], margin_buffer=strat.margin_buffer,
                calls=ledger.counters["margin_calls"], peak_margin=self.peak_margin, peak=self.peak, max_dd=self.max_dd,
                into=self._account_arrays())
            return self.margin_held
        requirement = self.margins(o.book, o.hedge, self.pending + self.inventory.total(), o.mo.price[:, j])
        self.margin_held = requirement
        if self.fast:
            self.liquidate_next = kernels.account(equity=equity, requirement=requirement, capital=run.capital,
                                                  margin_buffer=strat.margin_buffer,
                                                  calls=ledger.counters["margin_calls"], peak_margin=self.peak_margin,
                                                  peak=self.peak, max_dd=self.max_dd)
        else:
            call = (equity < requirement) & (requirement > 0)
            ledger.count("margin_calls", call)
            self.liquidate_next = call & (equity < (1.0 - strat.margin_buffer) * requirement)
            np.maximum(self.peak_margin, requirement / run.capital, out=self.peak_margin)
            np.maximum(self.peak, equity, out=self.peak)
            np.maximum(self.max_dd, (self.peak - equity) / self.peak, out=self.max_dd)
        return requirement

    def _account_arrays(self) -> tuple | None:
        """The last requirement's and liquidation's arrays for this step's to be written into (each read before:
        the interest over the step, the liquidation at its start), or None for new ones: a traced step keeps its
        requirement, and an array shared or not the pass's own is not written."""
        if self.tr is not None:
            return None
        held, liquidate = self.margin_held, self.liquidate_next
        for x, dtype in ((held, np.float64), (liquidate, np.bool_)):
            flags = x.flags
            if not (x.shape == self.shape and x.dtype == dtype and flags.c_contiguous and flags.writeable
                    and flags.owndata):
                return None
        return held, liquidate

    def _other_futures(self) -> np.ndarray:
        """The futures lots from exercise and the goods held, as the margin counts them (|lots|): the futures alone
        while no goods are held (the inventory's total is then exact zeros), the goods alone while the futures are
        zeros (closed at the step's start, none exercised since: |0 + x| is |x|), no sum made at most steps."""
        if not self.inventory.blocks():
            return self.pending
        return self.inventory.total() if self.pending_zero else self.pending + self.inventory.total()

    def _alerts(self, o: _Open, j: int) -> None:
        """warn_if: an alert when a rule starts to hold on a path; no trading effect."""
        strat = self.strat
        if self.warns and j < o.mo.n and self._open_anywhere(o):
            days_left = o.mo.days_left[j]
            if self._warns_nowhere(days_left, tuple([s.extra_days for s in o.book.slots if s._held])):
                hit = None  # decided by the days to expiry alone (most steps): no state, no legs made
            else:
                hit = warned(strat.guards, self.state(o, j), leg_states(o.book, o.mo.price[:, j], days_left))
            if hit is None:  # no rule holds anywhere (most steps): no alert, and none holds now
                o.alerted = self.no_alerts
                return
            now = hit & o.is_open
            self.ledger.count("alerts", now & ~o.alerted)
            o.alerted = now

    def _warns_nowhere(self, days_left, extra_days: tuple) -> bool:
        """`warns_nowhere` of the strategy's rules, kept per (days to expiry, held legs' extra days): its answer
        reads those numbers only, and a month's steps ask about the same few at every month."""
        known = self._quiet.get((days_left, extra_days))
        if known is None:
            known = self._quiet[(days_left, extra_days)] = warns_nowhere(self.strat.guards, days_left, extra_days)
        return known

    def _trace_step(self, o: _Open, j: int, requirement, assigned, fired) -> None:
        tr, shape, f = self.tr, self.shape, o.mo.price
        tr["equity"].append(self.equity.copy())
        tr["margin"].append(requirement)
        tr["hedge"].append(o.hedge.copy())
        tr["price"].append(np.broadcast_to(f[:, j], shape).copy())
        tr["assigned"].append(assigned)
        tr["open"].append(o.is_open.copy())
        tr["adjusted"].append(fired)
        _base_gammas(o.book, o.mo, j)
        tr["gamma"].append(o.book.gamma(self.lots_per_option) * f[:, j] * 0.01 if self.strat.greeks
                           else np.full(shape, np.nan))


class _CostArrays:
    """Per-variant costs as (V, 1) columns, so they broadcast over paths (``fast``: the compiled engine's)."""

    fast = False

    def __init__(self, costs: list[Costs]):
        for name in Costs.__dataclass_fields__:
            setattr(self, name, np.array([getattr(c, name) for c in costs])[:, None])

    # A lot's fee per variant, (variants,), as the compiled kernels take it: made once, not at every step.
    @functools.cached_property
    def option_close_fee(self) -> np.ndarray:
        return (self.option_close + self.option_slippage)[:, 0]

    @functools.cached_property
    def futures_close_fee(self) -> np.ndarray:
        return (self.futures_close + self.futures_slippage)[:, 0]

    @functools.cached_property
    def futures_open_fee(self) -> np.ndarray:
        return (self.futures_open + self.futures_slippage)[:, 0]

    def open_options(self, lots, size=None):
        """The cost of opening ``lots`` (|lots| times the fee and the slippage; ``size``: |lots| if at hand), a new
        array."""
        fee = np.where(lots < 0, self.option_open_short, self.option_open_long)  # (the result's array: its own)
        fee += self.option_slippage
        fee *= np.abs(lots) if size is None else size
        return fee

    def close_options(self, lots):
        return np.abs(lots) * (self.option_close + self.option_slippage)

    def futures(self, lots, *, closing: bool):
        return np.abs(lots) * ((self.futures_close if closing else self.futures_open) + self.futures_slippage)


def _close_all(book: Book, hedge, mask, cost, ledger, equity, month_pnl, bucket: str = "costs") -> None:
    """Close options, the strategy's futures and the hedge where ``mask`` (in place)."""
    if getattr(cost, "fast", False):
        _close_all_compiled(book, hedge, mask, cost, ledger, equity, month_pnl, bucket)
        return
    for s in book.slots:
        closing = np.where(mask, s.qty, 0.0)
        ledger.book(bucket, -cost.close_options(closing), equity, month_pnl)
        ledger.count("option_lots", mask, np.abs(closing))
        s.qty = np.where(mask, 0.0, s.qty)
    for fut in (*book.futures, hedge):
        closing = np.where(mask, fut, 0.0)
        ledger.book(bucket, -cost.futures(closing, closing=True), equity, month_pnl)
        ledger.count("futures_lots", mask, np.abs(closing))
        fut[mask] = 0.0


def _close_all_compiled(book: Book, hedge, mask, cost, ledger, equity, month_pnl, bucket: str) -> None:
    """`_close_all` by `opl.runtime.engine.kernels.close_book`: the same bookings, one pass for every position."""
    held = book.held()
    left = kernels.close_book([s._qty for s in held], [*book.futures, hedge], mask,
                              cost.option_close_fee, cost.futures_close_fee, bucket=ledger.buckets[bucket],
                              equity=equity, month_pnl=month_pnl, option_lots=ledger.counters["option_lots"],
                              futures_lots=ledger.counters["futures_lots"])
    for s, qty in zip(held, left):
        s.qty = qty  # (often closed everywhere, at expiry: numpy's whole scan is then the faster answer)


def _lots_set(s: Slot, qty) -> None:
    """``s.qty = qty`` after a compiled exercise or the open, `Slot.held` found by `adjust_kernels._any_lots`: the
    lots are held near the start of the array, where it stops (numpy's ``any`` reads every element: ~49 against ~2 us
    at 5 x 30,000; on lots of zeros it is the slower, ~97 against ~56 us)."""
    if type(qty) is np.ndarray and qty.ndim == 2 and qty.dtype == _FLOAT and qty.flags.c_contiguous \
            and qty.flags.writeable and kernels.available():  # (the round's kernels' type: no compile of its own)
        s._qty, s._held = qty, bool(adjust_kernels._any_lots(qty))
    else:
        s.qty = qty


def _close_pending(pending, mask, cost, ledger, equity):
    closing = np.where(mask, pending, 0.0)
    if np.any(closing):
        ledger.cost(cost.futures(closing, closing=True), equity)
        ledger.count("futures_lots", mask, np.abs(closing))
    return np.where(mask, 0.0, pending)


def _hedge(strat, book: Book, hedge, d, is_open, lots_per_option, cost, ledger, equity, month_pnl, tr,
           keep: float | None = None, bucket: str = "costs"):
    """The hedge rule at a rebalancing step (``keep`` set: trade to that target now, whatever the band)."""
    other = book.option_delta(lots_per_option) + book.static
    size = book.short_lots()
    spec = strat.hedge if keep is None else HedgeSpec(every=1, band=0.0, keep=keep,
                                                      along=strat.hedge.along if strat.hedge else "direction")
    new = rebalance(spec=spec, other_delta=other, hedge=hedge, size=size, d=d, active=is_open)
    trade = new - hedge
    traded = trade != 0
    if np.any(traded):
        ledger.book(bucket, -cost.futures(trade, closing=False), equity, month_pnl)
        ledger.count("futures_lots", traded, np.abs(trade))
        ledger.count("hedge_trades", traded)
    if tr is not None and keep is None:
        tr["hedged"].append(is_open.copy())
        tr["net_delta"].append(other + new)
        tr["target"].append(spec.keep * d * size)
    return new


def _hedge_compiled(strat, book: Book, hedge, d, is_open, lots_per_option, cost, ledger, equity, month_pnl, tr,
                    anywhere: bool | None = None):
    """`_hedge` at a rebalancing step in one compiled pass (`opl.runtime.engine.kernels.hedge_step`), the same numbers.
    ``anywhere``: whether a position is open anywhere, when known (False: nothing trades; None: asked of
    ``is_open``)."""
    # The month's own hedge is rebalanced in place (a new array a step cost its allocation and page faults), as the
    # exits and the rounds close it in place; a view or a shared array gets a new one.
    flags = hedge.flags
    own = hedge.shape == book.shape and hedge.dtype == np.float64 and flags.c_contiguous and flags.writeable \
        and flags.owndata
    if anywhere is False:  # `kernels.hedge_step` with nothing active: the hedge kept, the same array or a copy
        return hedge if own else np.array(hedge, dtype=float)
    held = book.held()
    return kernels.hedge_step(qtys=[s._qty for s in held], deltas=[s.delta for s in held], static=_static(book),
                              hedge=hedge, d=d, active=is_open, keep=strat.hedge.keep, band=strat.hedge.band,
                              lots_per_option=lots_per_option, fee=cost.futures_open_fee,
                              costs=ledger.buckets["costs"], equity=equity, month_pnl=month_pnl,
                              lots_traded=ledger.counters["futures_lots"], trades=ledger.counters["hedge_trades"],
                              in_place=own, anywhere=anywhere)


def _exit_rules(strat: StrategySpec) -> tuple | None:
    """The exit triggers as the compiled step tests them (`_Pass._exits_compiled`): the (comparison, bound) pairs
    of the pnl_percent triggers and of the days_left ones; None where a trigger is of another kind or a score
    decides (the stages' path then)."""
    if strat.score is not None or strat.exit_mode not in ("first_hit", "all_required"):
        return None
    rules: dict[str, list] = {"pnl_percent": [], "days_left": []}
    for test in strat.exit_triggers:
        rule = getattr(test, "rule", None)  # set on a trigger's compiled test (opl.runtime.engine.triggers)
        if rule is None or rule.measure not in rules:
            return None
        rules[rule.measure].append((rule.op, rule.bound))
    return tuple(rules["pnl_percent"]), tuple(rules["days_left"])


def _static(book: Book):
    """The strategy's own futures lots for a compiled step, or 0.0 when it holds none (the kernels broadcast
    it: no array of zeros made at each call, as `Book.static` makes one)."""
    return book.static if book.futures else 0.0


def _holdings(book: Book) -> list[tuple]:
    """(is_call, strike, premium, signed lots, expiry) of every slot holding lots: the margin's view of the book."""
    return [(s.is_call, s.strike, s.value, s._qty, s.extra_days) for s in book.slots if s._held]


class _Margins:
    """The chunk's margin calculator: `_margin`'s reference formulas, or the compiled kernel
    (`opl.runtime.engine.kernels.book_margin`, the same numbers) on the fast engine."""

    def __init__(self, packs, fast: bool):
        self.packs = packs
        self.rule = kernels.MarginRule.of(packs) if fast else None

    def __call__(self, book: Book, hedge, other_futures, price, legs=None, futures_lots=None, cols=None):
        if self.rule is None:
            return _margin(self.packs, book, hedge, other_futures, price, legs, futures_lots, cols)
        if futures_lots is None:
            futures_lots = kernels.futures_lots(book.static, hedge, other_futures)
        holdings = _holdings(book) if legs is None else legs
        return kernels.book_margin(self.rule, holdings, futures_lots, price, book.shape, cols)


def _margin(packs, book: Book, hedge, other_futures, price, legs=None, futures_lots=None, cols=None) -> np.ndarray:
    """Exchange margin of everything held, (V, P); variants sharing a pack are computed together.

    Options are margined by `opl.runtime.market.margin.options_margin`: the pack's combinations
    (a short strangle as one position) unless the run margins leg by leg. ``legs`` and
    ``futures_lots`` replace the book's options (``_holdings`` tuples) and futures lots (an
    adjustment's proposal, `opl.runtime.engine.adjust`); ``cols`` computes only those paths, (V, len(cols)).
    """
    if futures_lots is None:
        futures_lots = np.abs(book.static) + np.abs(hedge) + np.abs(other_futures)
    legs = list(_holdings(book) if legs is None else legs)
    if cols is not None:
        futures_lots, price = np.broadcast_to(futures_lots, book.shape)[:, cols], np.asarray(price)[cols]
        legs = [(is_call, np.asarray(strike)[..., cols], np.asarray(premium)[..., cols],
                 np.broadcast_to(qty, book.shape)[:, cols], expiry) for is_call, strike, premium, qty, expiry in legs]
    out = np.zeros(futures_lots.shape)
    groups: dict[int, list[int]] = {}
    for v, pack in enumerate(packs):
        groups.setdefault(id(pack), []).append(v)

    def rows_of(x, sel):
        return x[sel] if np.ndim(x) == 2 else x

    for rows in groups.values():
        pack = packs[rows[0]]
        sel = slice(rows[0], rows[-1] + 1) if rows == list(range(rows[0], rows[-1] + 1)) else rows
        if pack.underlying.kind == "future":
            total = futures_margin(pack=pack, price=price, lots=futures_lots[sel])
        else:
            # Units of an ETF or a stock held after an exercise are paid for in full.
            total = price * pack.underlying.contract_size * futures_lots[sel]
        held = [(is_call, rows_of(strike, sel), rows_of(premium, sel), qty[sel], expiry)
                for is_call, strike, premium, qty, expiry in legs if np.any(qty[sel])]
        if held:
            total = total + options_margin(pack=pack, holdings=held, underlying=price)
        out[sel] = total
    return out


class _Held:
    """Delivered goods as `_desk` reads them (their total only), on a subset of paths."""

    def __init__(self, total: np.ndarray):
        self._total = total

    def total(self) -> np.ndarray:
        return self._total


def _play_on_paths(engine: AdjustEngine, fire, strat, book: Book, hedge, mo, j, d, sizes, lots_per_option, run,
                   cost, ledger: Ledger, equity, month_pnl, margins, pending, inventory, peak, denominator,
                   open_margin, band_k):
    """The adjustment round on the paths where it fires only, written back: the numbers of a round on every
    path (each path's arithmetic is its own), at the cost of the few. Returns the hedge and where it closed
    (None: nowhere)."""
    cols = np.flatnonzero(fire.any(axis=0))
    sub_book, sub_mo, sub_ledger = book.columns(cols), mo.columns(cols), ledger.columns(cols)

    def cut(x):  # take, not x[:, cols]: that is Fortran-ordered, and every kernel given it would first copy it
        return x.take(cols, axis=1)

    sub_equity, sub_pnl, sub_pending, held = cut(equity), cut(month_pnl), cut(pending), _Held(cut(inventory.total()))
    sub_peak, sub_denominator, sub_open, sub_d = cut(peak), cut(denominator), cut(open_margin), d[cols]

    def state():
        return _trigger_state(sub_mo, j, sub_book, desk.hedge, sub_pnl, sub_denominator, sub_equity, sub_peak,
                              run.capital, sub_open, margins, sub_mo.days_left[j], lots_per_option, sub_pending, held,
                              lambda: (sub_book.option_delta(lots_per_option) + sub_book.static) / sizes, band_k,
                              strat, sub_d)

    desk = _desk(strat, sub_book, cut(hedge), sub_mo, j, sub_d, sizes, lots_per_option, run, cost, sub_ledger,
                 sub_equity, sub_pnl, margins, sub_pending, held, state)
    desk.reuse_margin = True  # the reference prices every action's margin before it afresh; here it is known
    if kernels.available():
        desk.trade_slot = _slot_trader(cost, sub_ledger, sub_equity, sub_pnl)
        if getattr(sub_mo, "fast", False):  # the compiled proposals quote as the month's compiled marks do
            desk.quotes = _quote_inputs(sub_mo, j)
    closed_cols = engine.play(desk, cut(fire))
    book.put_columns(sub_book, cols)
    ledger.put_columns(sub_ledger, cols)
    flat = flat_paths(equity.shape, cols)
    put_paths(equity, cols, flat, sub_equity)
    put_paths(month_pnl, cols, flat, sub_pnl)
    if not (hedge.flags.writeable and hedge.flags.owndata):
        hedge = hedge.copy()  # a view or a shared array; the step's own hedge is written in place (as closes do)
    put_paths(hedge, cols, flat, desk.hedge)
    if not closed_cols.any():
        return hedge, None
    closed = np.zeros(book.shape, dtype=bool)
    closed[:, cols] = closed_cols
    return hedge, closed


_ROUNDS_COMPILED = True  # `_Round` plays the rounds it covers (tests switch it off to compare)


class _Round:
    """The common adjustment round in one compiled pass (`opl.runtime.engine.adjust_kernels.round_pass`) on one
    month's book: rolls and gamma hedges, with at most a lone ``additional_margin`` abort, on a fast month and a
    book without futures legs, the margin compiled — what `_play_on_paths` plays with the numpy proposals,
    the same numbers bit for bit (tests/simulate/test_fast_engine.py), without its Python around each action.
    `of` returns None for a round it does not cover; `covers` says whether a step's guards let it play. Made
    for a pass's first month: the playbook gives every month's book the same slots, in the same order.
    """

    def __init__(self, engine: AdjustEngine, plan: tuple, bound: tuple | None, pass_: "_Pass", book: Book):
        kinds, targets, rolls = plan
        self.engine, self.pass_ = engine, pass_
        self.kinds, self.amounts = np.array(kinds, dtype=np.int64), np.array(targets, dtype=float)
        self.rolls = rolls
        self.entries = np.array([(a, g, t) for a, g, t, _, _ in rolls], dtype=np.int64).reshape(-1, 3)
        width = max(len(group.slots) for group in book.groups)
        self.members = np.array([group.slots + [-1] * (width - len(group.slots)) for group in book.groups],
                                dtype=np.int64)
        self.gamma_slot = book.groups[engine.gamma_group].slots[0] if engine.gamma_group is not None else 0
        slots = book.slots
        # Each slot's entry in the base slots' tuples or in the dynamic slots' (`play`).
        place = np.zeros(len(slots), dtype=np.int64)
        for kind in (False, True):
            at = [i for i, s in enumerate(slots) if s.dynamic == kind]
            place[at] = np.arange(len(at))
        self.slots = (np.array([s.is_call for s in slots], dtype=np.bool_),
                      np.array([s.american for s in slots], dtype=np.bool_),
                      np.array([s.extra_days for s in slots], dtype=float),
                      np.array([s.dynamic for s in slots], dtype=np.bool_), place)
        # The series a step may quote: the rolls' targets and the gamma hedge's calls (the month's expiry).
        self.quoted = sorted({slots[t].extra_days for _, _, t, _, _ in rolls} | ({0.0} if 1 in kinds else set()))
        self.abort = (-1, 0.0, False, float(pass_.run.capital)) if bound is None else (
            kernels.EXIT_OPS.index(bound[0]), float(bound[1]), engine.spec.on_abort == "exit",
            float(pass_.run.capital))
        self.rule = _rule_tuple(pass_.margins.rule, pass_.shape[0])
        cost = pass_.cost
        close_fee, short_fee, long_fee = _slot_fees(cost)
        self.fees = (close_fee, short_fee, long_fee,
                     kernelbase._plain((cost.futures_close + cost.futures_slippage)[:, 0], (pass_.shape[0],)))
        self.guarded = any(g.kind == "avoid_leg_if" for g in pass_.strat.guards)
        self._tables: dict[float, tuple] = {}
        self._steps: dict[float, tuple] = {}  # `_step`'s: the step's time to expiry -> (its market, its RoundStep)
        self._market_kept: tuple | None = None  # `_market`'s
        self.hedges = bool(self.amounts.size and 1 in self.kinds)  # a gamma hedge's strikes are snapped up
        # The ledger's counters the round adds to, in the kernel's order (each action's done and aborted last), as
        # a getter of the ledger's dict: one call a round.
        self.counters = operator.itemgetter(
            "option_lots", "futures_lots", "adjust_rounds", "adjust_exits", "exits", "early_exits",
            *pass_.strat.adjust.counters()[2:])

    def __getstate__(self) -> dict:
        # Copied or pickled without `_step`'s structrefs (numba's, which neither copies nor pickles): a copy makes
        # its own from its own arrays.
        return {**self.__dict__, "_steps": {}}

    @classmethod
    def of(cls, engine: AdjustEngine, pass_: "_Pass", book: Book, mo) -> "_Round | None":
        """The compiled round of ``book``'s month, or None where it does not cover the round (class docstring)."""
        spec = engine.spec
        bound = None
        if spec.abort_if is not None:
            bound = _margin_bound(getattr(spec.abort_if, "rule", None))
            if bound is None or pass_.margins.rule is None:
                return None
        if not (kernels.available() and getattr(mo, "fast", False) and pass_.cost.fast and not book.futures
                and len(book.slots) <= kernelbase.BOOK_SLOTS):  # (the round's margin takes that many series)
            return None
        plan = engine.round_plan(book)
        return None if plan is None else cls(engine, plan, bound, pass_, book)

    def covers(self, o: "_Open", j: int, state: Callable[[], TriggerState]) -> bool:
        """Whether no ``avoid_leg_if`` rule can block a series the round would open at step ``j`` of ``o``."""
        return not self.guarded or all(self.engine.never_blocked(self.pass_.strat.guards, state, o.mo, j, extra)
                                       for extra in self.quoted)

    def play(self, o: "_Open", fire: np.ndarray, j: int, cols: np.ndarray) -> int:
        """The round on the elements ``fire`` at step ``j`` (on the paths ``cols``, in order), written into the
        book, the ledger and ``o``; returns how many elements it closed."""
        p, mo, book = self.pass_, o.mo, o.book
        shape = p.shape
        assert len(book.slots) == self.slots[0].size  # the playbook's layout, every month
        by_step = mo.by_step
        price = by_step[0][j].take(cols) if by_step is not None else np.ascontiguousarray(mo.price[cols, j])
        vol = by_step[1][j].take(cols) if by_step is not None else np.ascontiguousarray(mo.vol[cols, j])
        rows = np.empty((len(self.rolls) + 1, cols.size))
        _round_strikes(mo, j, price, vol, self.rolls, rows)
        if self.hedges:
            rows[-1] = mo.snap_up(price)
        base, own, dynamic_values = self._own(book, shape)
        hedge = o.hedge
        if not (hedge.flags.writeable and hedge.flags.owndata and hedge.flags.c_contiguous):
            o.hedge = np.array(hedge, dtype=float)  # a view or a shared array: the round writes its own
        o.is_open = kernels.writable(o.is_open, shape, np.bool_)
        p.equity = kernels.writable(p.equity, shape)
        o.month_pnl = kernels.writable(o.month_pnl, shape)
        ledger = p.ledger
        padded = kernelbase._slot_tuple
        held = np.array([s._held for s in book.slots], dtype=np.bool_)
        closed = adjust_kernels.round_pass(
            cols=cols, fire=kernelbase._plain_bool(fire, shape), step=self._step(book, mo, j), own=own,
            strike_rows=rows, strikes=padded([s.strike for s in base]), values=padded([s.value for s in base]),
            gammas=padded([s.gamma for s in base]), dynamic_values=dynamic_values, price=price, vol=vol,
            account=(o.hedge, kernelbase._plain(p.pending, shape), kernelbase._plain(p.inventory.total(), shape)),
            ledger=(ledger.buckets["adjustments"], ledger.buckets["costs"], p.equity, o.month_pnl, o.is_open),
            counters=kernelbase._padded(self.counters(ledger.counters), _NO_COUNTS, _ROUND_COUNTERS),
            early=bool(mo.days_left[j] >= (p.strat.guard_days or 2.0)),
            held=held)
        for s, h in zip(book.slots, held.tolist()):
            s._held = h
        return closed

    def _own(self, book: Book, shape: tuple) -> tuple:
        """The base slots, and the arrays the round writes in place as the kernel takes them: the slots' lots (the
        base slots' and the dynamic slots' tuples) with the dynamic slots' strikes and marks but their values (a
        tuple a mark, `_written_marks`') in an `adjust_kernels.RoundOwn`, and the dynamic slots' values, each made
        the slot's own (C-ordered, writable, (variants, paths)) first.

        The slot tuples, the base slots' and the dynamic slots' apart, are each padded with dummies of its types
        to eight (`kernelbase._padded`): a tuple's length is part of the kernel's signature, and the loop's
        candidates hold books of a few slots to nine (four legs, a roll's slot per leg and the gamma hedge's).
        Tuples of every slot padded to sixteen compiled the round's kernels ~9 s of CPU longer. Kept while the
        arrays are the same objects (`kernelbase.keep_own`; a month's rounds after its first find them so, but the
        values, whose tuple is made every round): checking and padding them again cost a round more than its
        kernel's work at 1,000 paths."""
        slots = book.slots
        base, dynamic = [s for s in slots if not s.dynamic], [s for s in slots if s.dynamic]
        values = []  # (the values apart: a re-mark makes a new one every step, while the step's bookings read the old)
        for s in dynamic:
            x = s.__dict__["value"]
            if not (type(x) is np.ndarray and x.shape == shape and x.dtype == _FLOAT and x.flags.c_contiguous
                    and x.flags.writeable):
                s.value = x = kernels.writable(x, shape)
            values.append(x)
        own = kernelbase.kept_own(_kept_arrays(slots, dynamic)) or self._made_own(slots, base, dynamic, shape)
        return base, own, kernelbase._padded(tuple(values), _DUMMY[0])

    @staticmethod
    def _made_own(slots: list, base: list, dynamic: list, shape: tuple):
        """`_own`'s `adjust_kernels.RoundOwn`, kept (`kernelbase.keep_own`: it holds one reference to each array, as
        the tuples it replaced did, which `kernelbase.kept_references` counts for `_unshared`)."""
        for s in slots:
            q = s._qty  # (`kernels.writable` inline: most are the slot's own already)
            if not (type(q) is np.ndarray and q.shape == shape and q.dtype == _FLOAT and q.flags.c_contiguous
                    and q.flags.writeable):
                s._qty = kernels.writable(q, shape)
        written = tuple(zip(*kernelbase._padded(tuple([_written_marks(s, shape) for s in dynamic]), _BASE_WRITTEN)))
        lots = kernelbase._padded
        qtys = (lots(tuple([s._qty for s in base]), kernelbase._SCRATCH),
                lots(tuple([s._qty for s in dynamic]), kernelbase._SCRATCH))
        made = adjust_kernels.round_own(qtys, written[0], *written[2:])
        kernelbase.keep_own(_kept_arrays(slots, dynamic), made)
        return made

    def _market(self, mo) -> tuple:
        """The month's gamma switch, the marks' grids and its smile as the round's quotes read them, kept while the
        months' smile and switch are these (every month of a pass)."""
        kept = self._market_kept
        if kept is None or kept[0] is not mo.smile or kept[1] != mo.want_gamma:
            smile = mo.smile
            x_grid, logv_grid = mark_kernels._grids()
            kept = self._market_kept = (smile, mo.want_gamma, (
                bool(mo.want_gamma), x_grid, logv_grid, float(smile.spread), float(smile.floor), float(smile.skew),
                float(smile.curvature)))
        return kept[2]

    def _step(self, book: Book, mo, j: int):
        """The round's `adjust_kernels.RoundStep` at step ``j`` of ``mo``: its fixed inputs, the step's tables
        (`_tables_at`) and the month's market (`_market`), kept by the step's time to expiry while the market is
        the same."""
        key, market = float(mo.t[j]), self._market(mo)
        kept = self._steps.get(key)
        if kept is None or kept[0] is not market:
            kept = self._steps[key] = (market, adjust_kernels.round_step(
                kinds=self.kinds, amounts=self.amounts, members=self.members, entries=self.entries,
                gamma_slot=self.gamma_slot, slots=self.slots, tables=self._tables_at(book, mo, j), market=market,
                lots_per_option=float(self.pass_.lots_per_option), abort=self.abort, rule=self.rule, fees=self.fees))
        return kept[1]

    def _tables_at(self, book: Book, mo, j: int) -> tuple:
        """Each slot's quote tables at step ``j`` of ``mo`` as `_quote_inputs` makes them (a base slot, never quoted
        by a round, gets empty ones), kept by the step's time to expiry."""
        key = float(mo.t[j])
        made = self._tables.get(key)
        if made is None:
            slots = book.slots
            n = len(slots)
            phi, tt, const = np.zeros(n), np.zeros(n), np.zeros((4, n))
            eeps, d_eeps, boundaries = [], [], []  # the dynamic slots' (a base slot is never quoted)
            empty_eep, empty_boundary = mark_kernels._no_tables()
            for i, s in enumerate(slots):
                phi[i] = 1.0 if s.is_call else -1.0
                if not s.dynamic:
                    continue
                tt[i] = float(mo.t[j] + s.extra_days / DAYS_PER_YEAR)
                tables = mark_kernels._series_tables(bool(s.is_call), bool(s.american), (tt[i],), float(mo.rate),
                                                float(mo.markers[s.american].carry))
                const[:, i] = tables.const[:, 0]
                eeps.append(tables.eep), d_eeps.append(tables.d_eep), boundaries.append(tables.boundary)
            pad = kernelbase._padded  # (`play`'s dynamic slot tuples)
            made = self._tables[key] = (phi, self.slots[1], tt, const, pad(tuple(eeps), empty_eep),
                                        pad(tuple(d_eeps), empty_eep), pad(tuple(boundaries), empty_boundary),
                                        self.slots[4])
        return made


def _round_strikes(mo, j: int, price: np.ndarray, vol: np.ndarray, rolls: list, out: np.ndarray) -> None:
    """The rolls' new strikes on a round's paths (``price`` and ``vol`` there at step ``j``) into the rows of ``out``:
    `_Month.strike_for` with ``recentre``, each leg's rule against levels of the month's widths around the price."""
    support, resistance = mo.levels.of(price)
    # The at-the-money volatility only a delta rule reads (a round's few paths: its numpy calls cost more than the
    # arithmetic); the other rules never look at it.
    iv = mo.smile.iv(vol=vol, forward=price, strike=price) if any(r.strike.kind == "delta" for _, _, _, r, _ in rolls) \
        else None
    for row, (_, _, _, rule, extra) in enumerate(rolls):
        t = max(mo.t[j] + extra / DAYS_PER_YEAR, 1e-9)
        out[row] = rule.strike.resolve(is_call=rule.is_call, price=price, support=support, resistance=resistance,
                                       iv=iv, t=t, rate=mo.rate)
    if rolls:  # every row snapped in one call (`_Month.snap` of a fast month, element by element)
        out[:len(rolls)] = adjust_kernels.snap(mo.pack.option.strike_grid, out[:len(rolls)])


_FLOAT = np.dtype(np.float64)
# ``x.any()`` as one call (the method's Python wrapper and its reduction are three in numpy 2; a step asks a few):
# whether any element is nonzero, NaN counting as nonzero.
_any = np.logical_or.reduce
# The round's counters tuple (six, then two per playbook action) padded to this many with a dummy never written: a
# tuple's length is part of the kernel's signature, and a candidate of the loop with another number of actions
# compiled `_round` again (~25 s of a fresh cache's CPU).
_ROUND_COUNTERS = 16
_NO_COUNTS = np.zeros((1, 1), dtype=np.int64)

_DUMMY = (np.zeros((1, 1)), np.zeros((1, 1), dtype=np.bool_))  # a base slot's place in the marks a round writes
_BASE_WRITTEN = (_DUMMY[0],) * 4 + (_DUMMY[1], _DUMMY[0])
_WRITTEN = tuple((name, np.dtype(np.bool_ if name == "exercise" else np.float64))
                 for name in ("strike", "value", "delta", "gamma", "exercise", "entry"))
_KEPT_NAMES = ("strike", "delta", "gamma", "exercise", "entry")  # `_written_marks`' but the value (`_Round._own`)


def _kept_arrays(slots: list, dynamic: list) -> tuple:
    """The arrays `_Round._own` keeps its tuples by: every slot's lots, the dynamic slots' marks but their values."""
    return (*[s._qty for s in slots], *[s.__dict__[name] for s in dynamic for name in _KEPT_NAMES])


def _written_marks(s: Slot, shape: tuple) -> tuple:
    """A dynamic slot's strike, value, delta, gamma, exercise and entry as arrays a round writes in place (each
    made the slot's own first if it is not: C-ordered, writable, (variants, paths)); a base slot's dummies."""
    if s.base is not None:
        return _BASE_WRITTEN
    marks = s.__dict__  # (read as the slot's own attributes: a round asks for each of its slots' six)
    out = [marks[name] if name in marks else getattr(s, name) for name, _ in _WRITTEN]
    for i in range(6):
        x = out[i]
        name, dtype = _WRITTEN[i]
        # `kernels.writable` inline: a round's 18 calls of it, most answering the array itself (made own before).
        if not (type(x) is np.ndarray and x.shape == shape and x.dtype == dtype and x.flags.c_contiguous
                and x.flags.writeable):
            out[i] = x = kernels.writable(x, shape, dtype)
            setattr(s, name, x)
    return tuple(out)


def _slot_fees(cost) -> tuple:
    """A lot's fee plus slippage to close, to sell and to buy an option, per variant (`adjust_kernels.fees_of`):
    made for the pass's first round (its costs do not change)."""
    fees = getattr(cost, "adjust_fees", None)
    if fees is None:
        slippage = cost.option_slippage[:, 0]
        fees = cost.adjust_fees = dict(zip(("close_fee", "short_fee", "long_fee"), adjust_kernels.fees_of(
            cost.option_close[:, 0] + slippage, cost.option_open_short[:, 0] + slippage,
            cost.option_open_long[:, 0] + slippage, len(slippage))))
    return fees["close_fee"], fees["short_fee"], fees["long_fee"]


def _rule_tuple(rule, variants: int) -> tuple:
    """A `kernels.MarginRule` as `adjust_kernels.round_pass` reads it (a dummy of the same types without one: the
    round then prices no margin)."""
    if rule is None:
        zero = np.zeros(variants)
        return (zero, False, 0.0, 0.0, zero, zero, False, 0.0, 0.0, False, False, False, False, margin_kernels._WIDE_BIT,
                kernelbase._ONE)
    return (rule.futures_rate, bool(rule.czce), rule.otm_weight, rule.floor_weight, rule.rate, rule.min_rate,
            bool(rule.put_cap), rule.unit, rule.contract_size, bool(rule.futures_underlying), bool(rule.spread),
            bool(rule.straddle), bool(rule.strangle), margin_kernels._WIDE_BIT, kernelbase._ONE)


def _quote_inputs(mo: _Month, j: int) -> Callable:
    """``quotes(is_call, american, extra_days)``: the arguments `kernels.mark_where` gives the mark of one element
    (``_mark_row``) for a series at step ``j`` of the fast month ``mo`` (a round's `_Month.columns` cut) — what
    `opl.runtime.engine.adjust_kernels`' proposals quote with, so their quotes are `_Month.quote`'s to the bit."""
    price, vol = np.ascontiguousarray(mo.price[:, j]), np.ascontiguousarray(mo.vol[:, j])
    x_grid, logv_grid = mark_kernels._grids()
    smile = mo.smile
    made: dict[tuple, tuple] = {}

    def quotes(is_call: bool, american: bool, extra_days: float) -> tuple:
        key = (is_call, american, extra_days)
        if key not in made:
            made[key] = quote(is_call, american, extra_days)
        return made[key]

    def quote(is_call: bool, american: bool, extra_days: float) -> tuple:
        t = float(mo.t[j] + extra_days / DAYS_PER_YEAR)
        tables = mark_kernels._series_tables(bool(is_call), bool(american), (t,), float(mo.rate),
                                        float(mo.markers[american].carry))
        return (price, vol, 1.0 if is_call else -1.0, bool(american), bool(mo.want_gamma), t, tables.const,
                tables.eep, tables.d_eep, tables.boundary, x_grid, logv_grid, float(smile.spread),
                float(smile.floor), float(smile.skew), float(smile.curvature))

    return quotes


def _slot_trader(cost, ledger: Ledger, equity, month_pnl) -> Callable:
    """`opl.runtime.engine.adjust_kernels.trade_slot` on a round's ledger: an action's change of one slot
    traded, paid into ``adjustments`` and counted, as the desk's ``trade_options`` would."""
    fees = dict(zip(("close_fee", "short_fee", "long_fee"), _slot_fees(cost)))

    def trade(old, proposed, go, restruck):
        return adjust_kernels.trade_slot(old, proposed, go, restruck, bucket=ledger.buckets["adjustments"],
                                         equity=equity, month_pnl=month_pnl,
                                         counter=ledger.counters["option_lots"], **fees)

    return trade


def _desk(strat, book, hedge, mo, j, d, sizes, lots_per_option, run, cost, ledger, equity, month_pnl, margins, pending,
          inventory, state) -> Desk:
    """The step as `opl.runtime.engine.adjust` sees it; its trades pay into the ``adjustments`` bucket."""
    f = mo.price[:, j]
    held = []  # futures from exercise and goods, as the margin reads them: summed at the first margin asked

    def margin(legs, futures_lots, cols=None):
        if not held:  # (nothing in a round trades them; most steps of the reference ask no margin)
            other = pending + inventory.total()
            held.extend((other, np.abs(other)))
        lots = None if futures_lots is None else futures_lots + held[1]
        return margins(book, desk.hedge, held[0], f, legs=legs, futures_lots=lots, cols=cols)

    def trade_options(lots, *, closing: bool) -> None:
        if np.any(lots):
            ledger.book("adjustments", -(cost.close_options(lots) if closing else cost.open_options(lots)), equity,
                        month_pnl)
            ledger.count("option_lots", lots != 0, np.abs(lots))

    def trade_futures(lots) -> None:
        if np.any(lots):
            ledger.book("adjustments", -cost.futures(lots, closing=False), equity, month_pnl)
            ledger.count("futures_lots", lots != 0, np.abs(lots))

    def avoid(legs):
        return blocked(strat.guards, desk.state(), legs)

    guarded = any(g.kind == "avoid_leg_if" for g in strat.guards)

    def count(name, mask, amount=1):
        if mask.any():  # a round's counts are mostly of nothing: its ledger's counters are then never copied
            ledger.count(name, mask, amount)

    desk = Desk(book=book, hedge=hedge, mo=mo, j=j, d=d, sizes=sizes, lots_per_option=lots_per_option,
                capital=run.capital, tenor_days=strat.tenor_days, margin=margin, trade_options=trade_options,
                trade_futures=trade_futures,
                close_all=lambda mask: _close_all(book, desk.hedge, mask, cost, ledger, equity, month_pnl),
                state=state, avoid=avoid if guarded else None, count=count,
                hedge_keep=strat.hedge.keep if strat.hedge is not None else 0.0, guards=strat.guards)
    return desk


def _trigger_state(mo, j, book: Book, hedge, month_pnl, denominator, equity, peak, capital, open_margin, margins,
                   days_left, lots_per_option, pending, inventory, unit_delta, band_k, strat=None,
                   d=None) -> TriggerState:
    def requirement():
        return margins(book, hedge, pending + inventory.total(), price)

    price, open_price, iv_now, open_iv = _columns_at(mo, j)

    def lots():
        short = book.short_lots()
        return np.where(short > 0, short, book.option_lots())

    def target_delta():
        return keep * (d if d is not None else 0.0) * book.short_lots()

    def gamma_lots():
        _base_gammas(book, mo, j)
        return book.gamma(lots_per_option) * price * 0.01

    def vega_points():
        return sum((s.qty * mo.vega(s, j) for s in book.held()), np.zeros(book.shape)) * book_multiplier / 100.0

    book_multiplier = strat.multiplier if strat is not None else 1.0
    keep = strat.hedge.keep if strat is not None and strat.hedge is not None else 0.0
    extras = {}
    if strat is not None:
        extras = dict(lots=lots, target_delta=target_delta, gamma_lots=gamma_lots,
                      vega_points=vega_points if hasattr(mo, "vega") else None, bands=strat.bands,
                      legs=lambda: leg_states(book, price, days_left), tenor_days=strat.tenor_days)

    # The P&L and drawdown are computed when a condition reads them (TriggerState.measured): the state is
    # read as soon as it is built, before the account moves again, and most conditions never read them.
    return TriggerState(
        shape=np.shape(month_pnl), pnl_percent=lambda: month_pnl / denominator * 100.0,
        pnl_capital=lambda: month_pnl / capital * 100.0,
        days_left=days_left, expired=j == mo.n, price=price, open_price=open_price,
        iv=iv_now, open_iv=open_iv, drawdown=lambda: np.maximum(peak - equity, 0.0) / peak * 100.0,
        requirement=requirement, capital=capital, open_margin=open_margin,
        support=mo.support, resistance=mo.resistance,
        delta=lambda: book.option_delta(lots_per_option) + book.static + hedge, unit_delta=unit_delta,
        band_centre=None if mo.band is None else mo.band[0][j],
        band_width=None if mo.band is None else band_k * mo.band[1][j], **extras)


def _columns_at(mo, j: int) -> tuple[np.ndarray, np.ndarray, Callable[[], np.ndarray], Callable[[], np.ndarray]]:
    """The price at step ``j`` and at the open, each (P,) and contiguous, and the at-the-money volatility's
    there, each made when first called (most steps' conditions do not read it: the ``warn_if`` rules' state).

    A month's arrays are (paths, steps), so a step's column is strided, and a state's conditions read
    it anew in each expression (``adjust_when`` at every step: ``price_retrace`` and ``vega_crush`` read
    four columns). They are copied once per step and kept on the month (keyed by its price array, so a
    round's `_Month.columns` cut does not read the whole month's) for the step's other states.
    """
    kept = getattr(mo, "_step_columns", None)
    if kept is None or kept[0] is not mo.price or kept[1] != j:
        by_step = getattr(mo, "by_step", None)  # the fast month's prices by step: a step's row is contiguous
        price_at = (lambda i: by_step[0][i]) if by_step is not None else (
            lambda i: np.ascontiguousarray(mo.price[:, i]))
        if kept is None or kept[0] is not mo.price:
            kept = [mo.price, -1, price_at(0), None]
        kept = [*kept[:1], j, *kept[2:4], price_at(j), None]  # [price array, j, open, open iv, price, iv]
        mo._step_columns = kept

    def iv(at: int) -> Callable[[], np.ndarray]:
        def column() -> np.ndarray:
            if kept[at] is None:
                step = 0 if at == 3 else j
                atm_column = getattr(mo, "atm_column", None)
                kept[at] = atm_column(step) if atm_column is not None else np.ascontiguousarray(mo.atm[:, step])
            return kept[at]

        return column

    return kept[4], kept[2], iv(5), iv(3)
