"""Scale-out on a Dask cluster: ``--scheduler ADDRESS`` (or ``OPL_SCHEDULER``) and ``--workers N``.

>>> with session(workers=2) as cluster:                       # doctest: +SKIP
...     result = simulate_file("examples/jujube/strangle.opl")  # the same numbers as without the cluster

Inside `session` a simulation's path chunks are Dask tasks (`opl.runtime.engine.replay.REMOTE`),
grouped in passes of consecutive chunks as the fast engine replays them in one process (at least one
pass a worker, at most 30,000 paths each): each chunk is replayed on a worker exactly as in this
process — its own seed ``[seed, chunk]``, the same code, the kernels' serial twins — and the per-path
results come back and are joined in chunk order before any metric is computed, so the JSON is bit for
bit the in-process one whatever the number of workers or where a chunk ran. The passes of a
simulation's scenarios are submitted together (`opl.runtime.engine.replay.replay_many`), each pass with
its work as its priority (`pass_work`: the longest first). `opl loop` evaluates a round's candidates in
threads of this process (`Cluster.pooled`), their replays' passes one pool of tasks on the workers. A
worker that dies mid-run loses only its tasks:
the scheduler recomputes them elsewhere, from their inputs, with the same result. Each worker keeps a
month store from task to task (`worker_store`) for the loop's evaluations, which results do not depend on. A deadline in force
(`opl.runtime.engine.deadline`, the loop's ``--minutes``) travels as the seconds left, less the time a
task waited before it started (`time_left`, `worker_deadline`): a worker's clock is not this one.

**What travels.** A job (strategy, run settings and variants, pickled once per replay and sent as one
task that the pass tasks depend on), then per pass its chunks' numbers and path counts; back come the
chunks' per-path arrays (monthly P&L, ledger buckets, counters, drawdown and margin peaks, float64). For the
loop's warm-up (`Cluster.warm`), the file as written and the evaluator (target, seeds, paths, the run's
overrides and folder names). Never a data file the tasks do not read, never the proposer or its API key:
the proposer, and the candidates' texts, stay in this process. Workers must run the same versions of ``opl`` and its numeric packages as this
process (checked at connection: a mismatch could change the numbers).

Without ``--scheduler``/``OPL_SCHEDULER``/``--workers`` nothing here imports Dask: runs stay in-process.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from opl.errors import EXIT_USAGE, OplError

__all__ = ["SchedulerError", "Cluster", "PooledCall", "pass_work", "session", "local_cluster", "worker_environment", "scheduler_address",
           "connect_seconds", "time_left", "worker_deadline", "worker_store", "SCHEDULER_ENV", "TIMEOUT_ENV", "CONNECT_SECONDS"]

#: The environment variable that names a scheduler when ``--scheduler`` is not given.
SCHEDULER_ENV = "OPL_SCHEDULER"
#: How long to wait for the scheduler to answer, and for it to have a worker (``OPL_SCHEDULER_TIMEOUT``
#: seconds replaces it).
CONNECT_SECONDS = 10.0
TIMEOUT_ENV = "OPL_SCHEDULER_TIMEOUT"
#: Secrets of this process that the local workers (`--workers N`) must not inherit.
WITHHELD_ENV = ("OPENAI_API_KEY",)
#: The Dask setting that exports ``MALLOC_TRIM_THRESHOLD_`` to the workers a nanny spawns (unset for `--workers N`).
TRIM_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
#: Task threads of a `--workers N` worker process; its numba thread pool is sized to them (``NUMBA_NUM_THREADS``).
WORKER_THREADS = 1


class SchedulerError(OplError, RuntimeError):
    """The cluster cannot be reached or started, or its workers cannot run this version: nothing was run
    (a usage error: exit 2)."""

    exit_code = EXIT_USAGE


def connect_seconds() -> float:
    """`CONNECT_SECONDS`, or ``OPL_SCHEDULER_TIMEOUT`` when it is a positive number of seconds."""
    import math

    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        seconds = float(text) if text else CONNECT_SECONDS
    except ValueError:
        raise SchedulerError(f"{TIMEOUT_ENV}={text!r}: give a number of seconds") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise SchedulerError(f"{TIMEOUT_ENV}={text!r}: give a positive number of seconds")
    return seconds


def scheduler_address(option: str | None) -> str | None:
    """``--scheduler``, else ``OPL_SCHEDULER``, else None (an empty value counts as none)."""
    address = option if option is not None else os.environ.get(SCHEDULER_ENV)
    return address.strip() or None if address is not None else None


def local_cluster(workers: int):
    """A `distributed.LocalCluster` of ``workers`` worker processes (`WORKER_THREADS` each) on 127.0.0.1, without
    a dashboard. The workers inherit this environment, an API key in it blanked (`WITHHELD_ENV`), but not Dask's
    default ``MALLOC_TRIM_THRESHOLD_``: set, it fixes glibc's mmap threshold, so every array a replay frees
    is given back to the kernel and the next one faulted in again — twice a pass's CPU time. Their numba
    thread pool has as many threads as they have task threads (`worker_environment`)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({TRIM_SETTING: None}):
        return LocalCluster(n_workers=workers, threads_per_worker=WORKER_THREADS, processes=True, host="127.0.0.1",
                            dashboard_address=None, silence_logs=logging.ERROR,
                            # no dashboard; its HTTP server (health checks) on a free local port
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                            env=worker_environment(WORKER_THREADS))


def worker_environment(threads: int) -> dict[str, str]:
    """What a local worker process of ``threads`` task threads gets on top of this environment: the secrets of
    `WITHHELD_ENV` blanked, and ``NUMBA_NUM_THREADS`` = ``threads`` — Dask's one compute thread per task thread
    (as it sets ``OMP_NUM_THREADS``). Numba would otherwise size its pool to every core of the machine in each
    worker; the tasks' kernels run on their serial twins anyway (`opl.runtime.engine.kernels.serial_only`),
    so this is the guard for any parallel kernel that one day runs there, not a speed-up."""
    env = {name: "" for name in WITHHELD_ENV if name in os.environ}
    env["NUMBA_NUM_THREADS"] = str(threads)
    return env


@dataclass
class Cluster:
    """A connected Dask client and, for ``--workers N``, the local cluster it started."""

    client: Any
    local: Any = None
    address: str = ""

    @classmethod
    def connect(cls, address: str | None = None, workers: int | None = None, *,
                timeout: float = CONNECT_SECONDS) -> "Cluster":
        """Connect to the scheduler at ``address``, or start ``workers`` local worker processes on 127.0.0.1.

        Raises
        ------
        SchedulerError
            The scheduler does not answer within ``timeout`` seconds, has no worker by then, or its workers
            run other versions of the packages that make the numbers.
        """
        try:
            from distributed import Client
        except ImportError as error:  # pragma: no cover - the [dask] extra is not installed
            raise SchedulerError(f"running on a cluster needs the `distributed` package (pip install "
                                 f"'opl[dask]'): {error}") from None
        local = None
        try:
            if address is None:
                local = local_cluster(workers)
                address = local.scheduler_address
                client = Client(local, timeout=timeout, set_as_default=False)
            else:
                client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            if local is not None:
                local.close()
            where = f"the Dask scheduler at {address}" if local is None else "a local Dask cluster"
            raise SchedulerError(f"cannot reach {where}: {error}") from None
        cluster = cls(client=client, local=local, address=address)
        try:
            cluster._check_workers(timeout)
        except SchedulerError:
            cluster.close()
            raise
        return cluster

    def _check_workers(self, timeout: float) -> None:
        from opl.runtime.results.records import package_versions

        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            raise SchedulerError(f"the Dask scheduler at {self.address} has no worker after {timeout:g} s: "
                                 "start one (`dask worker ADDRESS`)") from None
        mine = package_versions()
        try:
            theirs = self.client.run(_worker_versions)
        except Exception as error:  # noqa: BLE001 - a worker without opl answers with its ImportError
            raise SchedulerError(f"the workers of {self.address} cannot run opl: {error!r}") from None
        for worker, versions in sorted(theirs.items()):
            if versions != mine:
                diff = ", ".join(f"{k} {versions.get(k)} (here {v})" for k, v in sorted(mine.items())
                                 if versions.get(k) != v)
                raise SchedulerError(f"worker {worker} runs other versions than this process ({diff}): the "
                                     "numbers could differ; install the same versions on every worker")

    @property
    def workers(self) -> int:
        """The number of workers the scheduler has now."""
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def close(self) -> None:
        self.client.close()
        if self.local is not None:
            self.local.close()

    # ------------------------------------------------------------------ work

    def replay_passes(self, jobs: Sequence[tuple], progress: Callable[[int], None] | None = None) -> list[Iterator]:
        """`opl.runtime.engine.replay.REMOTE`: submit every pass of chunks of every job now (at least one pass a
        worker, `opl.runtime.engine.passes.pass_plan`); per job, its passes' results in chunk order. Each job is
        pickled once, as a task of its own that its pass tasks depend on."""
        import cloudpickle

        from opl.runtime.engine.passes import pass_paths, pass_plan

        tag = uuid.uuid4().hex[:12]
        workers = max(1, self.workers)
        from opl.runtime.engine import deadline, monthstore

        left = time_left(deadline.current())
        shared = monthstore.current() is not None  # the loop's evaluations: the workers keep months too
        call = _POOLED.get()
        streams = []
        for number, (strategy, run, variants, trace) in enumerate(jobs):
            payload = cloudpickle.dumps((strategy, run, variants))
            job = self.client.submit(_unpickled, payload, key=f"opl-job-{tag}-{number}", pure=False)
            passes = pass_plan(run, workers, trace)
            # Keyed by the pass's place: two passes may begin in the same chunk (each a piece of it).
            futures = [self.client.submit(_pass, job, group, trace and group[0][0] == 0, left, shared,
                                          key=f"opl-chunk-{tag}-{number}-{k}", pure=False,
                                          priority=pass_work(run, variants, group))
                       for k, group in enumerate(passes)]
            if call is not None:
                call.track([job, *futures], self.client)
            streams.append(_in_order(futures, [pass_paths(group) * run.months for group in passes],
                                     progress, call, job))
        return streams

    def pooled(self, function: Callable, item, *, name: str = "opl-pooled") -> "PooledCall":
        """``function(item)`` run now in a thread of this process, its replays tasks of this cluster
        (`replay_passes`): the calls of a loop round, started together, put their replays' passes in one pool
        of tasks, which the scheduler runs on whichever worker is free, the longest first (`pass_work`), while
        the calls' own work — preparing a run, its metrics, the critic — runs here meanwhile. Returns a
        `concurrent.futures.Future` (`as_done` waits for it, ``.result()`` reads it); `cancel` stops it."""
        call = PooledCall()
        context = contextvars.copy_context()  # the session's `REMOTE` and whatever else is in force here

        def run() -> None:
            if not call.set_running_or_notify_cancel():
                return
            try:
                result = context.run(_pooled_call, call, function, item)
            except BaseException as error:  # noqa: BLE001 - handed to whoever reads the result
                call.set_exception(error)
            else:
                call.set_result(result)

        threading.Thread(target=run, name=f"{name}-{uuid.uuid4().hex[:6]}", daemon=True).start()
        return call

    def warm(self, function: Callable, item, *, name: str = "opl-warm") -> list:
        """Start ``function(item)`` on every worker now, one task each, and return their futures (hold them until
        the warm-up has run; their results are not read). A worker process loads its modules, the parser, its
        compiled kernels and a run's tables on its first task: a warm-up paid while this process is busy
        elsewhere spares the first round's passes that cost — seconds a worker."""
        tag = uuid.uuid4().hex[:12]
        # A restricted task runs on its worker; loose, so that a worker lost meanwhile does not leave it waiting.
        return [self.client.submit(_serial_call, function, item, key=f"{name}-{tag}-{n}", workers=[worker],
                                   allow_other_workers=True, pure=False)
                for n, worker in enumerate(sorted(self.client.scheduler_info(n_workers=-1)["workers"]))]

    def as_done(self, futures: Sequence) -> Iterator:
        """``futures`` (tasks, or calls of `pooled`) one by one as they finish."""
        from distributed import as_completed

        futures = list(futures)
        if all(isinstance(f, concurrent.futures.Future) for f in futures):
            return concurrent.futures.as_completed(futures)
        # The loop named: `as_completed` would otherwise look for a default client, which this one is not.
        return iter(as_completed(futures, loop=self.client.loop))

    def cancel(self, futures: Sequence) -> None:
        """Drop ``futures``: tasks (running ones are stopped where Dask can) or calls of `pooled` (stopped with
        their tasks); their results are never read."""
        tasks = [f for f in futures if not isinstance(f, PooledCall)]
        for call in futures:
            if isinstance(call, PooledCall):
                call.stop()
        if tasks:
            self.client.cancel(tasks)


#: The `pooled` call the current thread runs (None: none): its replays' tasks are tracked, to stop them with it.
_POOLED: contextvars.ContextVar["PooledCall | None"] = contextvars.ContextVar("opl_pooled_call", default=None)


class PooledCall(concurrent.futures.Future):
    """A call of `Cluster.pooled`: its result, and the tasks of its replays, cancelled when it is stopped."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._tasks: list = []
        self._client = None
        self.stopped = threading.Event()

    def track(self, tasks: list, client) -> None:
        """Keep ``tasks`` (Dask futures the call submitted) to cancel if it is stopped; stopped already, they
        are cancelled now and the call stops (`opl.runtime.engine.deadline.DeadlinePassed`)."""
        from opl.runtime.engine.deadline import DeadlinePassed

        with self._lock:
            self._client = client
            if not self.stopped.is_set():
                self._tasks += tasks
                return
        client.cancel(tasks)
        raise DeadlinePassed("the simulation was stopped: its result is no longer wanted")

    def untrack(self, tasks: list) -> None:
        """Forget ``tasks`` (their results are read): a task held here would keep its result on its worker."""
        with self._lock:
            gone = {id(task) for task in tasks}
            self._tasks = [task for task in self._tasks if id(task) not in gone]

    def stop(self) -> None:
        """Stop the call: its tasks are cancelled (running ones stop at the engine's next deadline check,
        `_pass`), and the call itself at its next check (`opl.runtime.engine.deadline.unless`) or when it
        reads a cancelled task's result."""
        with self._lock:
            self.stopped.set()
            tasks, self._tasks = self._tasks, []
        if tasks:
            self._client.cancel(tasks)


def _pooled_call(call: PooledCall, function: Callable, item):
    """``function(item)`` as ``call``: its replays tracked (`_POOLED`), stopped once ``call`` is."""
    from opl.runtime.engine.deadline import unless

    _POOLED.set(call)  # in the thread's own copy of the context
    with unless(call.stopped.is_set):
        return function(item)


def pass_work(run, variants: Sequence, group: tuple) -> int:
    """A pass's work, for the scheduler's order (Dask runs the higher priority first): its path-months times
    its variants — the longest first, so that a pool of passes ends on short ones, not with one worker
    replaying a long pass while the others wait."""
    from opl.runtime.engine.passes import pass_paths

    return pass_paths(group) * run.months * max(1, len(variants))


def _in_order(futures, sizes, progress, call: "PooledCall | None" = None, job=None):
    try:
        for future, size in zip(futures, sizes):
            result = future.result()
            if progress is not None:
                progress(size)
            yield result
    finally:
        if call is not None:  # read or dropped: nothing left to stop, nor to hold on the workers
            call.untrack([job, *futures])
        for future in futures:
            future.release()


def _unpickled(payload: bytes):
    import pickle

    return pickle.loads(payload)


def time_left(deadline: float | None) -> tuple[float, float] | None:
    """What a task carries of ``deadline`` (a `time.monotonic` time of this process, None: none): the seconds
    left and this machine's wall clock now. A worker's monotonic clock is not this one, and a task may wait in
    a worker's queue before it starts: `worker_deadline` takes that wait off by the wall clocks."""
    import time

    return None if deadline is None else (deadline - time.monotonic(), time.time())


def worker_deadline(left: tuple[float, float] | None) -> float | None:
    """The `time.monotonic` deadline, in the process running a task, of what `time_left` sent: the seconds left
    less the time since they were sent (by the wall clocks, which a cluster keeps in step; a clock behind
    counts no wait, and the wait never counts more than the seconds left)."""
    import time

    if left is None:
        return None
    seconds, sent = left
    waited = min(max(time.time() - sent, 0.0), max(seconds, 0.0))
    return time.monotonic() + seconds - waited


def _pass(job, group: tuple, trace: bool, left: tuple[float, float] | None, shared: bool = False):
    """A pass of chunks on a worker; ``shared``: read and keep months in the worker's `worker_store`. Stopped at
    the engine's next deadline check once cancelled (`_dropped`: a stopped `PooledCall`'s)."""
    from opl.runtime.engine import monthstore
    from opl.runtime.engine.deadline import unless, until
    from opl.runtime.engine.replay import replay_pass

    strategy, run, variants = job
    with until(worker_deadline(left)), monthstore.sharing(worker_store() if shared else None), \
            unless(_dropped()):
        return replay_pass(strategy, run, variants, group, trace)


_WORKER_STORE = None  # `worker_store`'s


def worker_store():
    """This worker process's own `opl.runtime.engine.monthstore.MonthStore`, kept from task to task: the
    loop's candidates (one seed, one model), evaluated here one after the other, share their simulated months
    and marks as they do in one process (a store does not travel: the evaluator's arrives empty). Results
    do not depend on it (the store's keys hold every input of what it keeps)."""
    global _WORKER_STORE
    if _WORKER_STORE is None:
        from opl.runtime.engine.monthstore import MonthStore

        _WORKER_STORE = MonthStore()
    return _WORKER_STORE


def _serial_call(function: Callable, item):
    from opl.runtime.engine import kernels

    kernels.serial_only()  # one task a worker process: numba's thread pool would only contend for the cores
    return function(item)


def _dropped() -> Callable[[], bool]:
    """Whether the task this worker thread runs was dropped (cancelled: its result will never be read), as a
    test for `opl.runtime.engine.deadline.unless`."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()

    def dropped() -> bool:
        task = worker.state.tasks.get(key)  # read only; the worker's event loop changes it
        return task is None or task.state == "cancelled"

    return dropped


def _worker_versions() -> dict:
    from opl.runtime.results.records import package_versions

    return package_versions()


@contextmanager
def session(scheduler: str | None = None, workers: int | None = None, *,
            timeout: float | None = None) -> Iterator[Cluster | None]:
    """Within the block, simulations run their chunks on the cluster; yields the `Cluster`, or None (and
    imports nothing) when neither ``scheduler`` nor ``workers`` is given. ``timeout``: seconds to wait for
    the scheduler and a worker (default `connect_seconds`).

    Raises
    ------
    SchedulerError
        Before any work, when the cluster cannot be reached or started (`Cluster.connect`).
    ValueError
        Both ``scheduler`` and ``workers`` given.
    """
    if scheduler is None and not workers:
        yield None
        return
    if scheduler is not None and workers:
        raise ValueError("give a scheduler address or a number of local workers, not both")
    from opl.runtime.engine.replay import REMOTE

    cluster = Cluster.connect(scheduler, workers, timeout=connect_seconds() if timeout is None else timeout)
    token = REMOTE.set(cluster.replay_passes)
    try:
        yield cluster
    finally:
        REMOTE.reset(token)
        cluster.close()
