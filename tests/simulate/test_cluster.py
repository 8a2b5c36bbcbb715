"""`opl simulate` on a real Dask cluster (tests/conftest.py: a scheduler and two worker processes on
127.0.0.1) prints the in-process JSON byte for byte; a worker killed mid-run only costs time; an
unreachable scheduler stops the command before any work, and without a cluster nothing imports Dask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cloudpickle  # Dask's (a test dependency: the [test] extra pulls in [dask])
import pytest
from click.testing import CliRunner

from opl.cli import main

# A helper these tests run on a worker (`_spinning_months`) travels by value: under pytest's importlib mode this
# module is not importable by the name it has here, so by reference a worker could not load it.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "examples" / "jujube" / "strangle.opl"
# Small and quick, yet several chunks per pass and every kind of pass (sizes, cost and market scenarios).
OPL = [sys.executable, "-c", "from opl.cli import main; main()"]
ARGS = ["--paths", "240", "--set", "sim.chunk=80", "--set", "experiment.horizon=1", "--json", "-", "--quiet"]


@pytest.fixture(scope="module")
def in_process() -> str:
    result = CliRunner().invoke(main, ["simulate", str(FILE), *ARGS], env={"OPL_SCHEDULER": ""})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_scheduler_gives_the_in_process_json_byte_for_byte(dask_cluster, in_process):
    env = {**os.environ, "OPL_SCHEDULER": ""}
    done = subprocess.run([*OPL, "simulate", str(FILE), *ARGS, "--scheduler",
                           dask_cluster.scheduler_address], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == in_process
    assert json.loads(in_process)["scenarios"]  # the scenario passes ran as tasks too


def test_opl_scheduler_names_the_cluster(dask_cluster, in_process, monkeypatch):
    from distributed import Client

    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        before = client.run_on_scheduler(_chunk_tasks_seen)
        result = CliRunner().invoke(main, ["simulate", str(FILE), *ARGS],
                                    env={"OPL_SCHEDULER": dask_cluster.scheduler_address})
        assert result.exit_code == 0, result.output
        assert result.stdout == in_process
        ran = client.run_on_scheduler(_chunk_tasks_seen) - before
    assert len(ran) == 2 * 6  # a pass of chunks a worker in each of the six replays, each computed once


def _chunk_tasks_seen(dask_scheduler=None) -> set:
    """On the scheduler: the `opl-chunk` tasks its transition log has seen finish."""
    return {key for key, start, finish, *_ in dask_scheduler.transition_log
            if str(key).startswith("opl-chunk") and finish == "memory"}


def test_a_worker_killed_mid_run_costs_time_not_numbers(dask_cluster, kill_busy_worker, tmp_path):
    from distributed import Client

    from opl.simulation.cluster import session
    from opl.simulation.run import simulate_file

    # No scenarios: one replay, a pass of chunks on each worker, so the kill lands mid-replay.
    text = "\n".join(line for line in FILE.read_text().splitlines()
                     if not line.strip().startswith(("stress", "sensitivity")))
    path = tmp_path / "base.opl"
    path.write_text(text)
    settings = dict(paths=600, overrides=["sim.chunk=20", "experiment.horizon=1", "experiment.sizes=[1]"])
    reference = simulate_file(path, **settings)
    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        out: dict = {}

        def run() -> None:
            try:
                with session(dask_cluster.scheduler_address):
                    out["result"] = simulate_file(path, **settings)
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                out["error"] = error

        thread = threading.Thread(target=run)
        thread.start()
        victim = kill_busy_worker(client, thread, "opl-chunk")
        thread.join(timeout=300)
        assert not thread.is_alive()
        assert "error" not in out, out.get("error")
        assert victim not in client.run(os.getpid)  # it really died (its nanny started a new one)
    assert _json(out["result"]) == _json(reference)


def test_local_workers_keep_the_allocators_own_trim_threshold(dask_cluster):
    """Dask exports MALLOC_TRIM_THRESHOLD_ to the workers it spawns; glibc then keeps a fixed mmap threshold and
    faults in every array a replay allocates: a pass took twice its in-process CPU time. `--workers N` (and this
    fixture, `local_cluster`) start workers without it."""
    from distributed import Client

    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        # (A lambda: `os.environ.get` itself would pickle this process's environment by value.)
        assert set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()) == {None}


def test_local_workers_size_numbas_pool_to_their_task_thread_and_never_start_it(dask_cluster, in_process):
    """Dask runs one task per worker thread; numba would size its pool to every core in each worker (two
    workers on two cores: four compute threads). `local_cluster` gives its workers ``NUMBA_NUM_THREADS`` = their
    task threads, and a simulation on them never starts numba's pool (its kernels run their serial twins)."""
    from distributed import Client

    from opl.simulation.cluster import WORKER_THREADS

    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        result = CliRunner().invoke(main, ["simulate", str(FILE), *ARGS],
                                    env={"OPL_SCHEDULER": dask_cluster.scheduler_address})
        assert result.exit_code == 0, result.output
        assert result.stdout == in_process
        threads = client.run(_numba_threads)
        assert {n for n, _ in client.nthreads().items()} == set(threads)
        assert set(client.nthreads().values()) == {WORKER_THREADS}
    assert set(threads.values()) == {(WORKER_THREADS, WORKER_THREADS, False)}


def _numba_threads() -> tuple[int, int, bool]:
    """On a worker: numba's configured threads, its threads for this thread, and whether its pool started."""
    import numba
    from numba.np.ufunc import parallel

    started = bool(parallel._is_initialized)  # read first: `get_num_threads` starts the pool
    return numba.config.NUMBA_NUM_THREADS, numba.get_num_threads(), started


def test_a_stopped_pooled_call_stops_its_passes_on_the_workers(dask_cluster):
    """Dask cannot interrupt a running task it cancels: the task holds its worker's thread to its end. A call of
    `Cluster.pooled` (the loop's guess evaluated ahead) that is stopped cancels its replays' passes, and a
    running pass stops at the engine's next deadline check, freeing its worker; the call ends too."""
    import time

    from opl.simulation.cluster import session

    with session(dask_cluster.scheduler_address) as cluster:
        cluster.client.wait_for_workers(2, timeout=60)
        cluster.client.run(_spinning_months, 300.0)
        try:
            call = cluster.pooled(_simulated, str(FILE), name="opl-test-call")
            deadline = time.monotonic() + 120
            while not any(_running(cluster).values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert any(_running(cluster).values()), "no pass of the call ever ran"
            time.sleep(0.5)  # running, checking
            cluster.cancel([call])
            assert call.exception(timeout=120) is not None  # it ended without a result
            # Each pass would spin for 300 s a month; stopped, the workers' threads are free long before.
            while any(_running(cluster).values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(_running(cluster).values())
        finally:
            cluster.client.run(_spinning_months, None)


def _simulated(path: str):
    """A `Cluster.pooled` call: a small simulation of ``path`` (its replays the cluster's tasks)."""
    from opl.simulation.run import simulate_file

    return simulate_file(path, paths=40, overrides=["experiment.horizon=1", "sim.chunk=20"])


def _running(cluster) -> dict:
    """The pass tasks each worker's threads are running now (cancelled ones included, until they return)."""
    return cluster.client.run(_running_here)


def _running_here(dask_worker=None) -> list:
    return sorted(str(k) for k in dask_worker.active_threads.values() if str(k).startswith("opl-chunk"))


def _spinning_months(seconds: float | None, dask_worker=None) -> None:
    """On a worker: every month a replay reads first spins ``seconds``, checking the deadline (None: the
    engine's own speed again)."""
    import time

    import opl.runtime.engine.passmonths as passmonths
    from opl.runtime.engine.deadline import check

    own = getattr(passmonths._StoredMonths, "_own_next_month", passmonths._StoredMonths.next_month)
    passmonths._StoredMonths._own_next_month = own

    def spinning(self):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            check()
            time.sleep(0.01)
        return own(self)

    passmonths._StoredMonths.next_month = own if seconds is None else spinning


def test_passes_go_to_the_scheduler_with_their_work_as_priority():
    """Dask runs the ready task of higher priority first: a pool of passes (a loop round's candidates) runs the
    longest first, its path-months times its variants (`pass_work`), and ends on short ones."""
    from types import SimpleNamespace

    from opl.simulation.cluster import Cluster

    class Client:  # records what would be submitted
        submitted: list = []

        def submit(self, function, *args, key, pure, priority=0):
            self.submitted.append((key, priority))
            return SimpleNamespace(key=key)

        def scheduler_info(self, n_workers=-1):
            return {"workers": {"tcp://a": {}, "tcp://b": {}}}

    def run(paths):
        return SimpleNamespace(engine="fast", source=None, paths=paths, chunk=10_000, months=2)

    client = Client()
    Cluster(client=client).replay_passes([(None, run(2_000), ("v",) * 3, False), (None, run(10_000), ("v",), False),
                                          (None, run(10_000), ("v",) * 3, False)])
    assert [p for key, p in client.submitted if key.startswith("opl-chunk")] == [2_000 * 2 * 3, 10_000 * 2, 10_000 * 2 * 3]


def test_a_tasks_deadline_counts_the_time_it_waited_to_start():
    import time

    from opl.simulation.cluster import time_left, worker_deadline

    seconds, sent = time_left(time.monotonic() + 10.0)
    assert 9.0 < seconds <= 10.0 and abs(sent - time.time()) < 1.0
    assert time_left(None) is None and worker_deadline(None) is None
    waited = worker_deadline((10.0, time.time() - 4.0)) - time.monotonic()  # sent 4 s ago: 6 s left
    assert 5.0 < waited <= 6.0
    assert 9.0 < worker_deadline((10.0, time.time() + 100.0)) - time.monotonic() <= 10.0  # a clock behind
    assert worker_deadline((10.0, time.time() - 100.0)) - time.monotonic() <= 0.0  # the time is up


def _json(result) -> str:
    from opl.runtime.results.records import json_safe

    return json.dumps(json_safe(result.to_dict()), sort_keys=True, allow_nan=False)


def test_an_unreachable_scheduler_is_a_clear_error_before_any_work(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out.json"
    env = {**os.environ, "OPL_SCHEDULER": "", "OPL_SCHEDULER_TIMEOUT": "1"}
    done = subprocess.run([*OPL, "simulate", str(FILE), "--json", str(out),
                           "--scheduler", f"tcp://127.0.0.1:{port}"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_without_a_cluster_nothing_imports_dask(tmp_path):
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from opl.cli import main\n"
        f"r = CliRunner().invoke(main, ['simulate', {str(FILE)!r}, '--paths', '60', '--set', 'experiment.horizon=1',"
        " '--json', '-', '--quiet'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(main, ['loop', {str(FILE)!r}, '--max-iter', '1', '--paths', '50', '--holdout-paths',"
        f" '50', '--set', 'experiment.horizon=1', '--runs', {str(tmp_path / 'runs')!r}, '--quiet'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n")
    env = {**os.environ, "OPL_SCHEDULER": ""}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_python_facade_takes_a_scheduler(dask_cluster, monkeypatch):
    import socket

    import opl

    settings = dict(paths=120, set={"sim.chunk": 40, "experiment.horizon": 1, "experiment.sizes": "[1]"})
    assert _json(opl.simulate(FILE, scheduler=dask_cluster.scheduler_address, **settings)) == \
        _json(opl.simulate(FILE, **settings))
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OPL_SCHEDULER_TIMEOUT", "1")
    with pytest.raises(opl.OplError) as caught:
        opl.simulate(FILE, scheduler=f"tcp://127.0.0.1:{port}", **settings)
    assert caught.value.exit_code == 2 and "cannot reach the Dask scheduler" in str(caught.value)
