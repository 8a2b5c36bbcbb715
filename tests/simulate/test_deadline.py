"""A simulation stops at its deadline (`opl loop`'s --minutes) within one step of a path chunk, serial or
in forked workers, and returns nothing half-done."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opl.runtime.deadline import DeadlinePassed
from opl.simulate import simulate_file

JUJUBE = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
# A year of the jujube file's sweep and scenarios at 1,000 paths: far past the deadlines below.
LONG = dict(paths=1000, overrides=["experiment.horizon=12", "sim.chunk=500"])


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Compile the kernels and build the daily tables first, so the deadlines below fall in the replay."""
    simulate_file(JUJUBE, paths=1, overrides=["experiment.horizon=1"])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_long_simulation_stops_mid_way_at_its_deadline(workers):
    ticks: list[tuple[int, int]] = []
    deadline = time.monotonic() + 3.0  # a month of the base pass takes about a second
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=LONG["paths"], overrides=LONG["overrides"] + [f"sim.workers={workers}"],
                      deadline=deadline, progress=lambda done, total: ticks.append((done, total)))
    overrun = time.monotonic() - deadline
    assert overrun < 2.0  # a step of a chunk (and stopping the workers), not the minutes the run takes
    if workers == 1:  # stopped mid-way: some months were replayed, not all of them
        assert ticks and 0 < ticks[-1][0] < ticks[-1][1]


def test_building_the_tables_of_a_new_time_grid_stops_at_the_deadline():
    # Hourly steps need hundreds of American-premium tables (tens of seconds) before the first month.
    deadline = time.monotonic() + 1.0
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=50, overrides=["experiment.horizon=1", "experiment.steps_per_day=24"],
                      deadline=deadline)
    assert time.monotonic() - deadline < 2.0


def test_a_deadline_already_passed_stops_before_the_first_month():
    with pytest.raises(DeadlinePassed):
        simulate_file(JUJUBE, paths=50, overrides=["experiment.horizon=1"], deadline=time.monotonic() - 1)


def test_a_run_that_ends_before_its_deadline_is_the_same_run():
    options = dict(paths=60, seed=3, overrides=["experiment.horizon=1"])
    free = simulate_file(JUJUBE, **options).to_dict()
    bounded = simulate_file(JUJUBE, **options, deadline=time.monotonic() + 600).to_dict()
    assert free["base"] == bounded["base"] and free["scenarios"] == bounded["scenarios"]
