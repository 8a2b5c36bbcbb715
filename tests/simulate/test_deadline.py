"""A simulation stops at its deadline (`opl loop`'s --minutes) within one step of a path chunk, serial or
in forked workers, or within one table of a new time grid, and returns nothing half-done.

The engine's checks are counted on a fake clock (one tick per check), so where a run stops does not depend
on how loaded the machine is; one test keeps the real clock."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from opl.runtime.engine import deadline as deadlines
from opl.runtime.engine.deadline import DeadlinePassed
from opl.simulation.run import simulate_file

JUJUBE = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
# A year of the jujube file's sweep and scenarios: many thousands of steps.
LONG = dict(paths=200, overrides=["experiment.horizon=12", "sim.chunk=100"])


@pytest.fixture
def ticks(monkeypatch):
    """A clock that advances by one at every check: a deadline of N stops the run at its Nth check."""
    counter = itertools.count(1)
    monkeypatch.setattr(deadlines, "clock", lambda: next(counter))


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Compile the kernels and build the daily tables first, so the checks counted below are the replay's."""
    simulate_file(JUJUBE, paths=1, overrides=["experiment.horizon=1"])


def test_a_long_simulation_stops_mid_way_at_its_deadline(ticks):
    progress: list[tuple[int, int]] = []
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=LONG["paths"], overrides=LONG["overrides"] + ["sim.workers=1"], deadline=100,
                      progress=lambda done, total: progress.append((done, total)))
    # About four months of 21 steps were replayed (a check a step and a month), not the whole run.
    assert progress and 0 < progress[-1][0] < progress[-1][1]


def test_forked_workers_stop_at_the_deadline_too(ticks):
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=LONG["paths"], overrides=LONG["overrides"] + ["sim.workers=2"], deadline=100)
    assert time.monotonic() - started < 120  # the whole run would replay every month of every pass


def test_building_the_tables_of_a_new_time_grid_stops_at_the_deadline(ticks):
    # Hourly steps need hundreds of American-premium tables (tens of seconds) before the first month:
    # the run stops after the tenth.
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=50, overrides=["experiment.horizon=1", "experiment.steps_per_day=24"],
                      deadline=10)
    assert time.monotonic() - started < 20


def test_the_real_clock_stops_a_long_run():
    # 20,000 paths for a year: several seconds on the fastest machine this ran on (2,000 paths took 0.6 s there,
    # inside the deadline), minutes on a slow one.
    deadline = time.monotonic() + 1.0
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=20_000, overrides=["experiment.horizon=12"], deadline=deadline)
    assert time.monotonic() - deadline < 15  # a step of a pass


def test_a_deadline_already_passed_stops_before_the_first_month():
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=50, overrides=["experiment.horizon=1"], deadline=time.monotonic() - 1)


def test_a_run_that_ends_before_its_deadline_is_the_same_run():
    options = dict(paths=60, seed=3, overrides=["experiment.horizon=1"])
    free = simulate_file(JUJUBE, **options).to_dict()
    bounded = simulate_file(JUJUBE, **options, deadline=time.monotonic() + 600).to_dict()
    assert free["base"] == bounded["base"] and free["scenarios"] == bounded["scenarios"]


def test_a_simulation_told_to_stop_stops_mid_way():
    """`unless`: the engine asks at each deadline check whether its result is still wanted (a cluster task
    that was cancelled, `opl.simulation.cluster._stoppable_call`) and stops there when it is not."""
    asked = itertools.count(1)
    progress: list[tuple[int, int]] = []
    with deadlines.unless(lambda: next(asked) > 100), pytest.raises(DeadlinePassed, match="no longer wanted"):
        simulate_file(JUJUBE, paths=LONG["paths"], overrides=LONG["overrides"] + ["sim.workers=1"],
                      progress=lambda done, total: progress.append((done, total)))
    assert progress and 0 < progress[-1][0] < progress[-1][1]
    deadlines.check()  # outside: nothing to stop
