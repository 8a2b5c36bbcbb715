"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same examples on every run (`.ci/run` sets HYPOTHESIS_PROFILE=ci): a submission's verdict
# must not depend on the draw. Local runs keep hypothesis' random search, which is how it finds new cases;
# a case it finds is then written into the test as an explicit @example.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Test folders whose tests never run the simulation engine. They run first: in CI, while they run on one
# core, `.ci/run` compiles the engine's kernels on the other (a clean clone's numba cache is empty), so the
# engine's first test finds them built. A stable sort: each folder keeps its order, each module its tests.
ENGINE_FREE = frozenset({"front", "lsp", "compile", "runtime"})
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    def engine_free(item) -> bool:
        parts = Path(item.path).resolve().relative_to(TESTS).parts
        return len(parts) > 1 and parts[0] in ENGINE_FREE

    items.sort(key=lambda item: not engine_free(item))


@pytest.fixture(scope="session", autouse=True)
def _american_tables_kept_for_the_session(tmp_path_factory):
    """The American tables the session solves are kept in a folder of its own (`opl.runtime.engine.tablestore`),
    not beside the sources: every session solves them afresh once, and its command-line subprocesses read them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPL_TABLES_DIR", str(tmp_path_factory.mktemp("american-tables")))
        yield


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
