"""Fixtures shared by every test folder."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="session")
def dask_cluster():
    """A real Dask cluster on 127.0.0.1: a scheduler and two worker processes (one thread each), started on
    first use and shared by the tests that ask for it; ``.scheduler_address`` is its ``tcp://`` address."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                           silence_logs=logging.ERROR)
    try:
        yield cluster
    finally:
        cluster.close()
