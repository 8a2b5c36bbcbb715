"""The kernels a replay calls on some paths only, loaded once in a pool's parent before it forks.

A forked worker inherits every kernel its parent has loaded, and loads from numba's cache, for itself, every
other kernel it calls (10–20 ms of CPU each, in each worker of each pool, and its copy goes with it). The
parent loads the step kernels' serial twins by replaying a few paths over one month
(`opl.runtime.engine.passes._warm_steps`), but three kernels run only where the paths happen to need them,
which a few paths over one month rarely reach: the exercise and assignment of a slot (`_exercise`: a short
assigned, a long exercised), the release of goods taken on delivery (`_book_sold`) and the copy of a sibling
month's marks (`_copy_known`: a lockstep family's ``hit_rate`` scenario). Traced over a whole
``opl loop examples/jujube/strangle.opl --data synth`` (54 pools, 108 workers), every worker loaded the first
two and 14 the third: ~1.7 s of the workers' CPU, on the pools' critical paths.

`load` calls them here, once a process, on one element through the same wrappers that normalise every
argument to one array type (`opl.runtime.engine.kernels.base._plain`), so the workers find the signature they
will ask for already loaded; the calls book nothing (no element exercised, nothing sold, nothing to copy) and
write only their own scratch arrays. Only what the jobs may call: nothing for another engine, historical paths
or without numba, the goods' release only where the strategy takes delivery, the marks' copy only in a pool of
several jobs (a single job has no sibling months).
"""

from __future__ import annotations

import numpy as np

from opl.runtime.engine.kernels import base, marks, steps

_LOADED: set[str] = set()  # the kernels this process has loaded here (inherited by the workers it forks)


def load(jobs: list[tuple]) -> None:
    """Load here the rarely reached kernels that the replay ``jobs`` ((strategy, run, variants) each) may call.

    Parameters
    ----------
    jobs
        A pool's jobs, as `opl.runtime.engine.replay.replay_many` takes them.
    """
    fast = [(strategy, run) for strategy, run, _ in jobs if run.engine == "fast" and run.source is None]
    if not fast or not base.available():
        return
    _once("exercise", _exercise)
    if any(strategy.assignment.action == "take_delivery" for strategy, _ in fast):
        _once("book_sold", _book_sold)
    if len(jobs) > 1:
        _once("copy_known", _copy_known)


def _once(name: str, call) -> None:
    """``call()`` unless this process has made it already."""
    if name not in _LOADED:
        call()
        _LOADED.add(name)


def _buckets(shape: tuple) -> dict[str, np.ndarray]:
    """A ledger's buckets the step kernels write into (`opl.runtime.engine.ledger.Ledger.buckets`), zeros."""
    return {name: np.zeros(shape) for name in ("assignment", "costs")}


def _exercise() -> None:
    """`kernels.steps.exercise` on one element, nothing hit: the slot's lots, the fees and the buckets unchanged."""
    shape = (1, 1)
    lots = np.ones(shape)
    steps.exercise(qty=lots, hit=np.zeros(shape, dtype=bool), phi=1.0, lots_per_option=1.0,
                          price=np.ones(1), strike=np.ones(1), value=np.zeros(1), mult=1.0,
                          fee_assigned=np.zeros(1), fee_exercised=np.zeros(1), take_delivery=True,
                          buckets=_buckets(shape), equity=np.zeros(shape), month_pnl=np.zeros(shape),
                          assigned=np.zeros(shape, dtype=bool), pending=np.zeros(shape), in_place=True)


def _book_sold() -> None:
    """`kernels.steps.book_sold` on one element, nothing sold."""
    shape = (1, 1)
    steps.book_sold(np.zeros(shape), cs=1.0, basis=1.0, fee=np.zeros(1), buckets=_buckets(shape),
                           equity=np.zeros(shape))


def _copy_known() -> None:
    """`kernels.marks._copy_known` (`SeriesMarks._copied`'s pass over a column) on one path, nothing needed."""
    flags = [np.zeros(1, dtype=bool) for _ in range(3)]
    source = (np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, dtype=bool))
    mine = (np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, dtype=bool))
    marks._copy_known(*flags, False, *source, *mine, np.empty(1, dtype=bool), np.empty(1, dtype=bool))
