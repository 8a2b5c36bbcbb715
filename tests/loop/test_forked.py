"""`opl.closedloop.forked.beside`: a function run in a forked process while the loop goes on, its result or error
read later; inline where the process may not fork."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from opl.closedloop.forked import beside
from opl.runtime.engine import forkpool

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def test_the_function_runs_in_another_process_and_its_result_comes_back():
    work = beside(lambda x, y: (x + y, os.getpid()), 2, 3)
    total, pid = work.result()
    assert total == 5 and pid != os.getpid()


def test_its_error_is_raised_when_the_result_is_read():
    def fails():
        raise ValueError("no futures.csv")

    work = beside(fails)
    with pytest.raises(ValueError, match="no futures.csv"):
        work.result()
    forkpool.reap(wait=True)
    assert forkpool._FORKED == []


def test_closing_without_reading_leaves_no_process_behind(tmp_path):
    # (The work is dropped if its process had not started it, as a pool's cancelled task; else waited for.)
    import time

    def slow():
        (tmp_path / "started").touch()
        time.sleep(0.3)
        (tmp_path / "done").touch()

    work = beside(slow)
    time.sleep(0.1)
    work.close()
    assert forkpool._FORKED == []
    assert (tmp_path / "done").exists() == (tmp_path / "started").exists()


def test_a_daemonic_process_runs_it_here_at_once(monkeypatch):
    monkeypatch.setattr(multiprocessing.current_process(), "_config",
                        {**multiprocessing.current_process()._config, "daemon": True})
    work = beside(os.getpid)
    assert work.result() == os.getpid()
