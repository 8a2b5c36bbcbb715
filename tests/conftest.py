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
