"""The forked workers' pool (`opl.runtime.engine.forkpool`): every task once, its result or its error back,
a lost worker said, an early stop that starts nothing more, no worker left behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from opl.runtime.engine import forkpool, passes

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


class _Located(ValueError):
    def __init__(self, message: str, *, where: str):  # keyword-only: does not unpickle
        super().__init__(message)
        self.where = where


def _left_running() -> list[int]:
    return list(forkpool._FORKED)


def test_every_task_runs_once_in_a_worker_and_its_result_comes_back():
    parent = os.getpid()
    results = dict(forkpool.run(lambda t: (t * t, os.getpid()), 7, 2))
    assert sorted(results) == list(range(7))
    assert all(value == t * t for t, (value, _) in results.items())
    pids = {pid for _, pid in results.values()}
    assert parent not in pids and 1 <= len(pids) <= 2
    forkpool.reap(wait=True)
    assert _left_running() == []


def test_meanwhile_runs_here_once_the_workers_are_forked():
    seen = []
    out = list(forkpool.run(lambda t: t, 3, 2, meanwhile=lambda: seen.append(len(forkpool._FORKED))))
    assert sorted(out) == [(0, 0), (1, 1), (2, 2)]
    assert seen and seen[0] >= 2


def test_fewer_tasks_than_workers_fork_one_worker_a_task():
    forkpool.reap(wait=True)
    forked = []
    list(forkpool.run(lambda t: t, 1, 4, meanwhile=lambda: forked.append(len(forkpool._FORKED))))
    assert forked == [1]


def test_a_task_s_error_is_raised_here_with_its_type_and_the_worker_s_traceback():
    def task(t):
        if t == 2:
            raise KeyError("no such leg")
        return t

    with pytest.raises(KeyError, match="no such leg") as caught:
        list(forkpool.run(task, 4, 2))
    assert isinstance(caught.value.__cause__, forkpool.WorkerTraceback)
    assert "raise KeyError" in str(caught.value.__cause__)
    forkpool.reap(wait=True)
    assert _left_running() == []


def test_an_error_that_does_not_unpickle_and_a_result_that_does_not_pickle_are_runtime_errors(monkeypatch):
    import copyreg

    # A Dask cluster started earlier in this process (tests/simulate/test_cluster.py) registers a reducer for
    # every exception class then defined (tblib's), which rebuilds one without its constructor.
    monkeypatch.delitem(copyreg.dispatch_table, _Located, raising=False)
    with pytest.raises(RuntimeError, match="does not unpickle"):
        list(forkpool.run(lambda t: (_ for _ in ()).throw(_Located("bad", where="x")), 1, 1))
    with pytest.raises(RuntimeError, match="does not pickle"):
        list(forkpool.run(lambda t: (lambda: t), 1, 1))


def test_a_worker_killed_mid_task_is_a_located_error_not_a_hang():
    def task(t):
        if t == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return t

    with pytest.raises(forkpool.WorkerLost, match=r"without the results of \d+ of 3 tasks \(signal 9\)"):
        list(forkpool.run(task, 3, 1))
    forkpool.reap(wait=True)
    assert _left_running() == []


def test_a_caller_that_stops_early_starts_no_more_tasks_and_waits_for_the_running_ones(tmp_path):
    def task(t):
        (tmp_path / f"started-{t}").touch()
        time.sleep(0.2)
        (tmp_path / f"ended-{t}").touch()
        return t

    results = forkpool.run(task, 20, 2)
    next(results)
    results.close()
    started = sorted(p.name for p in tmp_path.glob("started-*"))
    ended = sorted(p.name for p in tmp_path.glob("ended-*"))
    assert len(started) < 20  # the rest were never started
    assert [s.replace("started", "ended") for s in started] == ended  # the running ones finished first
    time.sleep(0.5)
    assert sorted(p.name for p in tmp_path.glob("started-*")) == started
    forkpool.reap(wait=True)
    assert _left_running() == []


def test_a_worker_forks_no_pool_of_its_own_and_writes_no_buffered_output_twice(capfd):
    print("before the pool", end="")  # buffered here; a worker's exit must not write it again
    assert dict(forkpool.run(lambda t: passes._can_fork(), 2, 2)) == {0: False, 1: False}
    assert passes._can_fork()
    assert capfd.readouterr().out.count("before the pool") == 1


def test_a_number_of_tasks_the_task_pipe_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="tasks"):
        list(forkpool.run(lambda t: t, forkpool._MAX_TASKS + 1, 2))
    with pytest.raises(ValueError, match="tasks"):
        list(forkpool.run(lambda t: t, 0, 2))


def test_results_larger_than_a_pipe_s_buffer_come_whole_from_workers_writing_at_once():
    # Where there is no /dev/shm a pass's arrays come through its worker's pipe (`handover.sent` gives them
    # back as they are): megabytes a result, both workers writing while this process reads.
    import numpy as np

    def task(t):
        return np.arange(400_000, dtype=np.float64) * (t + 1)

    results = dict(forkpool.run(task, 6, 2, meanwhile=lambda: time.sleep(0.2)))
    assert sorted(results) == list(range(6))
    for t, value in results.items():
        assert np.array_equal(value, np.arange(400_000, dtype=np.float64) * (t + 1))


def test_replays_without_shared_memory_give_the_numbers_of_one_process(monkeypatch):
    from dataclasses import replace
    from pathlib import Path

    from opl.lang.frontend import check_path
    from opl.runtime.engine import handover, replay
    from opl.simulation import run as facade

    jujube = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
    prepared = facade.prepare(check_path(jujube), facade.RunSettings(
        paths=60, overrides=("experiment.horizon=1", "experiment.sizes=[1,5]", "sim.workers=2")))
    jobs = [prepared.sweep_job(), *prepared.scenario_jobs(5.0).jobs[:2]]
    monkeypatch.setattr(handover, "folder", lambda: None)
    pools = []
    real = forkpool.run
    monkeypatch.setattr(forkpool, "run", lambda *a, **k: pools.append(a[1:3]) or real(*a, **k))
    together = replay.replay_many(jobs)
    assert pools == [(3, 2)]  # three jobs, two workers: the pool's pipes carried every pass's arrays
    for (strategy, run, variants), pooled in zip(jobs, together):
        alone = replay.replay(strategy=strategy, run=replace(run, workers=1), variants=variants)
        assert pooled.monthly.tobytes() == alone.monthly.tobytes()
        assert all(pooled.buckets[k].tobytes() == alone.buckets[k].tobytes() for k in alone.buckets)


def test_the_parent_s_objects_are_frozen_while_a_pool_is_open_and_thawed_when_the_last_closes():
    import gc

    assert gc.get_freeze_count() == 0
    # Collected in the worker: nothing the parent had when it forked is in the worker's generations.
    first = forkpool.start(lambda t: gc.get_freeze_count() > 0, 1, 1)
    second = forkpool.start(lambda t: t, 1, 1)
    assert gc.get_freeze_count() > 0
    assert dict(first.results()) == {0: True}
    first.close()
    assert gc.get_freeze_count() > 0  # the second pool's workers still share the parent's pages
    assert dict(second.results()) == {0: 0}
    second.close()
    second.close()
    assert gc.get_freeze_count() == 0


def test_a_pool_that_fails_to_start_thaws_what_it_froze(monkeypatch):
    import gc

    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(forkpool.os, "fork", no_fork)
    with pytest.raises(OSError):
        forkpool.start(lambda t: t, 2, 2)
    assert gc.get_freeze_count() == 0


def test_objects_someone_else_froze_stay_frozen():
    import gc

    gc.freeze()
    try:
        before = gc.get_freeze_count()
        assert dict(forkpool.run(lambda t: t, 1, 1)) == {0: 0}
        assert gc.get_freeze_count() >= before
    finally:
        gc.unfreeze()
