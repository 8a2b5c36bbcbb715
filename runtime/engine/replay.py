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

from contextvars import ContextVar
from typing import Callable

from opl.runtime.engine import kernels, passes
from opl.runtime.engine.months import MarkedMonth
from opl.runtime.engine.passes import pass_paths, pass_plan
from opl.runtime.engine.runspec import CHUNK, ReplayResult, RunSpec, StrategySpec, Variant

# The public names: the entry points below and, re-exported from their homes, the records they take and give
# (`opl.runtime.engine.runspec`) and the months they read; the project imports those from their homes.
__all__ = ["StrategySpec", "Variant", "RunSpec", "ReplayResult", "MarkedMonth", "replay", "replay_many",
           "replay_pass", "pass_plan", "pass_paths", "made_ahead", "REMOTE", "CHUNK"]


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
        done = [passes._replay_pass(strategy, run, variants, group, progress, group[0][0] == 0)
                for group in passes._passes(run, passes._chunks(run), 1, True)]
    return passes._assembled(strategy, run, variants, done)


def replay_many(jobs: list[tuple[StrategySpec, RunSpec, tuple[Variant, ...]]],
                progress: Callable[[int], None] | None = None,
                meanwhile: Callable[[], None] | None = None,
                finished: Callable[[list[tuple[int, ReplayResult]]], None] | None = None) -> list[ReplayResult]:
    """`replay` of several independent (strategy, run, variants) jobs, e.g. the scenarios of a simulation
    (every replay without a trace goes through here).

    Every pass of every job is replayed side by side: in this process's forked pool (`passes._replay_jobs`), or on
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
        return passes._replay_jobs([(s, r, tuple(v)) for s, r, v in jobs], progress, meanwhile, finished)
    if meanwhile is not None:
        meanwhile()
    streams = remote([(s, r, tuple(v), False) for s, r, v in jobs], progress)
    results = [passes._assembled(s, r, v, done) for (s, r, v), done in zip(jobs, streams)]
    if finished is not None:
        finished(list(enumerate(results)))
    return results


def made_ahead(jobs: list[tuple[StrategySpec, RunSpec, tuple[Variant, ...]]]) -> None:
    """Make here, now, and put in the current month store the months and marks that `replay_many` of ``jobs``
    would make in this process before forking its workers (`passes._months_made_here`, `passes._marks_made_here`).

    A caller that knows a later pass's jobs calls this while an earlier pass's forked workers replay (`opl loop`'s
    evaluator: the scenarios' and the counterfactuals' months and marks during the sweep), so that this process
    does it beside them instead of alone, both workers gone, before the later pass forks. What is made is what
    that pass would make — the same keys, the same room rules (a job alone is taken as one of several, as the
    jobs are planned at the sweep's size: the pass at the picked size may hold one more) — and read from the
    store it is the numbers made afresh, so the results do not depend on when it is made. Nothing without a store
    that keeps, on a cluster, or where no pool would fork.
    """
    if not jobs or REMOTE.get() is not None or not passes._can_fork() or (jobs[0][1].workers or passes._cores()) < 2:
        return
    jobs = [(s, r, tuple(v)) for s, r, v in jobs]
    plans = passes._job_plans(jobs, 1)
    passes._months_made_here(jobs, plans)
    passes._marks_made_here(jobs, plans)


#: Where chunks are replayed when set (a Dask cluster, `opl.simulation.cluster`): called with a list of jobs
#: ``(strategy, run, variants, trace)`` and ``progress``, it submits every pass of every job at once
#: (`pass_plan`) and returns, per job, an iterable of what `replay_pass` gives for each pass, in chunk order
#: (``trace``: the first chunk's trace kept). Unset, chunks are replayed in this process (or its forked pool).
REMOTE: ContextVar[Callable | None] = ContextVar("opl_remote_chunks", default=None)


def replay_pass(strategy: StrategySpec, run: RunSpec, variants: tuple[Variant, ...], group: tuple,
                trace: bool = False):
    """The chunks of ``group`` exactly as the sequential replay computes them (each its own seed
    [seed, chunk]): the unit of work a pool or a cluster runs. Kernels run on their serial twins: the
    worker processes share the cores."""
    kernels.serial_only()
    return passes._replay_pass(strategy, run, variants, group, None, trace)


