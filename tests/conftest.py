"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dask_cluster():
    """A real Dask cluster on 127.0.0.1: a scheduler and two worker processes (one thread each), started on
    first use and shared by the tests that ask for it; ``.scheduler_address`` is its ``tcp://`` address."""
    from opl.simulation.cluster import local_cluster

    cluster = local_cluster(2)  # as `--workers 2` starts it
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def kill_busy_worker():
    """``kill(client, thread, prefix)``: SIGKILL a worker process that is running a task whose key starts with
    ``prefix`` while ``thread`` (the run) is alive, and return its address (its nanny starts a new one)."""
    import os
    import signal
    import time

    def kill(client, thread, prefix: str) -> str:
        pids = client.run(os.getpid)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and thread.is_alive():
            busy = sorted(worker for worker, keys in client.processing().items()
                          if any(str(k).startswith(prefix) for k in keys))
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                return busy[0]
            time.sleep(0.02)
        raise AssertionError(f"the run never had a {prefix} task in flight")

    return kill
