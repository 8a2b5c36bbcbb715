"""A pool's tasks run by forked workers with nothing between them and the parent but two pipes.

A replay's pool (`opl.runtime.engine.passes._pooled`) forks its workers for one batch of tasks, which they
find in memory they inherit (the jobs, their compiled conditions, the month store): what has to travel is a
task's number one way and a small result the other (the arrays go through files, `handover`). A
`concurrent.futures.ProcessPoolExecutor` does that through a manager thread, a feeder thread and a call
queue, so its first worker started its first task 20–30 ms after its fork and the second ~10 ms after its
own (measured over the main job's 54 pools: 45–60 ms from a pool's start to its first task, ~20 ms of it the
fork), two threads were started and joined a pool, and every task was pickled on its way. Here:

* the task numbers are written, 4 bytes each, into a pipe before the first fork, its writing end closed:
  a worker reads the next number when it is free (a read of one record from a pipe whose records all have
  that size is atomic) and stops at the pipe's end, so the first worker starts its first task as soon as it
  is forked, and the tasks go to whichever worker is free, as from a queue;
* each worker writes its results (the task's number, whether it raised, the value or the exception;
  pickled, length first) into a pipe of its own, which the parent reads as they come (`selectors`);
* a worker ends with ``os._exit`` — none of the parent's exit handlers or buffered output runs twice —
  after its last task; it is marked daemonic, as `multiprocessing` marks a pool's children, so that it
  forks no pool of its own. The parent reaps its finished workers at its next pool's start, and at its own
  exit, instead of waiting for them (a worker's exit unmaps its copy of a 1.3 GB parent: ~0.1 s);
* a worker that dies without its results (killed, out of memory) ends the pool with `WorkerLost`; an
  exception a task raises is raised in the parent with its type when it pickles, else as a `RuntimeError`
  with its traceback; a caller that stops early (an exception, a generator closed) leaves the tasks not yet
  started unstarted and waits for the running ones, which stop at the deadline or finish;
* the parent's objects are kept out of the garbage collector's reach while workers hold a copy of them
  (`gc.freeze` before the forks, `gc.unfreeze` when the last open pool closes, as the `gc` module's
  documentation advises for a process that forks without exec): a full collection writes into every
  tracked object's header, so one in the parent during a pool copied every page of its ~350,000 objects
  that a worker still shared, and one in a worker copied them for the worker. Measured on the main job:
  the parent's collections 0.92–0.97 → 0.54 s.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import pickle
import selectors
import struct
import sys
import traceback
from typing import Any, Callable, Iterator

from opl.errors import OplError

__all__ = ["Forked", "WorkerLost", "WorkerTraceback", "start", "run", "reap"]

_TASK = struct.Struct("<I")  # a task's number in the task pipe
_SIZE = struct.Struct("<Q")  # a result's length before it
_MAX_TASKS = 65536 // _TASK.size  # what a pipe's buffer holds written before the first fork (Linux: 64 kB)

_FORKED: list[int] = []  # workers forked by this process and not yet reaped
_OPEN: list["Forked"] = []  # pools of this process not yet closed: the collector's freeze lasts while any is
_THAW: list[bool] = []  # [whether to unfreeze once none is open]: not where someone else had frozen objects


class WorkerLost(OplError, RuntimeError):
    """A forked worker ended without handing back its tasks' results (killed, out of memory, crashed)."""


class WorkerTraceback(OplError):
    """The traceback of a task's error in its worker, as text (the ``__cause__`` of the error raised here)."""


class Forked:
    """Workers forked for a batch of tasks (`start`): their results as the tasks finish (`results`), then
    `close`, which every holder calls (a ``with`` block does)."""

    def __init__(self, queue: int, children: dict[int, int], tasks: int):
        self._queue, self._children, self._tasks = queue, children, tasks
        self._received = 0
        self._open = True
        self._stream: Iterator[tuple[int, Any]] | None = None

    def results(self) -> Iterator[tuple[int, Any]]:
        """``(t, result)`` as each task finishes; a task's error raised here. One stream: a second call goes on
        where the first stopped."""
        if self._stream is None:
            self._stream = self._counted()
        return self._stream

    def _counted(self) -> Iterator[tuple[int, Any]]:
        for item in _results(self._children, self._tasks):
            self._received += 1
            yield item

    def close(self) -> None:
        """The tasks not yet started dropped, the running ones waited for unless every result came, the pipes
        closed (once)."""
        if self._open:
            self._open = False
            try:
                _stop(self._queue, self._children, complete=self._received == self._tasks)
            finally:
                _thawed(self)

    def __enter__(self) -> "Forked":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start(function: Callable[[int], Any], tasks: int, workers: int) -> Forked:
    """``function(t)`` for ``t`` in ``range(tasks)`` under way in ``workers`` processes forked now (`Forked`).

    ``function`` and what it reads are inherited through ``fork``; its result must pickle (arrays travel
    better through `handover`).
    """
    if not 0 < tasks <= _MAX_TASKS:
        raise ValueError(f"{tasks} tasks: give 1 to {_MAX_TASKS}")
    reap()
    for stream in (sys.stdout, sys.stderr):  # (nothing buffered here is written again by a worker)
        if stream is not None:
            stream.flush()
    queue, feed = os.pipe()
    _write_all(feed, b"".join(_TASK.pack(t) for t in range(tasks)))
    os.close(feed)  # a worker reading past the last task finds the pipe's end
    children: dict[int, int] = {}  # result pipe -> worker
    _freeze()  # what the workers inherit: no collection here or there touches it while they run
    try:
        for _ in range(min(workers, tasks)):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the worker (its coverage is not collected)
                os.close(read_end)
                for other in children:
                    os.close(other)
                _work(function, queue, write_end)
            os.close(write_end)
            children[read_end] = pid
            _FORKED.append(pid)
    except BaseException:
        try:
            _stop(queue, children, complete=False)
        finally:
            _thaw_if_none_open()
        raise
    forked = Forked(queue, children, tasks)
    _OPEN.append(forked)
    return forked


def _thawed(forked: Forked) -> None:
    """``forked`` closed: once no pool of this process is open, the objects frozen before their forks are the
    collector's again (the oldest generation's)."""
    if forked in _OPEN:
        _OPEN.remove(forked)
        _thaw_if_none_open()


def _freeze() -> None:
    if not _OPEN and not _THAW:
        _THAW.append(gc.get_freeze_count() == 0)
    gc.freeze()


def _thaw_if_none_open() -> None:
    if not _OPEN and _THAW:
        if _THAW.pop():
            gc.unfreeze()


def run(function: Callable[[int], Any], tasks: int, workers: int,
        meanwhile: Callable[[], None] | None = None) -> Iterator[tuple[int, Any]]:
    """`start` ``function`` on ``tasks`` tasks and ``workers`` workers when iterated: ``(t, result)`` as each
    task finishes (in the order they finish); ``meanwhile`` is called once every worker is forked. Stopping the
    iteration early leaves the tasks not yet started unstarted and waits for the running ones.
    """
    with start(function, tasks, workers) as forked:
        if meanwhile is not None:
            meanwhile()
        yield from forked.results()


def _work(function: Callable[[int], Any], queue: int, out: int) -> None:  # pragma: no cover - in the worker
    """A worker's life: the next task from ``queue`` until none is left, each result written to ``out``; never
    returns (``os._exit``), whatever happens."""
    code = 0
    try:
        multiprocessing.current_process().daemon = True  # a pool's child forks no pool (`passes._can_fork`)
        while len(record := os.read(queue, _TASK.size)) == _TASK.size:
            (t,) = _TASK.unpack(record)
            last = False
            try:
                message = _message(t, function(t))
            except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
                message = _message(t, None, error)
                last = isinstance(error, (KeyboardInterrupt, SystemExit))
            _write_all(out, _SIZE.pack(len(message)) + message)
            if last:
                break
    except BaseException:  # noqa: BLE001 - the pipe is gone, or an interrupt: the parent sees the pipe's end
        code = 1
    finally:
        _exit(code)


def _exit(code: int) -> None:  # pragma: no cover - in the worker
    """A worker's end: none of the parent's exit handlers, finalizers or buffered output (a test waits here)."""
    os._exit(code)


def _message(t: int, value: Any, error: BaseException | None = None) -> bytes:
    """Task ``t``'s result or error (with its traceback's text), pickled; an error that does not pickle travels
    as a `RuntimeError` with its traceback, a result that does not pickle as the `RuntimeError` saying so."""
    text = None if error is None else "".join(traceback.format_exception(error)).rstrip()
    try:
        return pickle.dumps((t, value, error, text), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as problem:  # noqa: BLE001 - whatever pickling raises
        failure = RuntimeError(text if error is not None else
                               f"the result of a forked worker's task does not pickle: {problem!r}")
        return pickle.dumps((t, None, failure, text), protocol=pickle.HIGHEST_PROTOCOL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _results(children: dict[int, int], tasks: int) -> Iterator[tuple[int, Any]]:
    """Each task's result as its worker's pipe brings it; a task's error raised here."""
    pending = {fd: bytearray() for fd in children}
    left = tasks
    with selectors.DefaultSelector() as selector:
        for fd in children:
            selector.register(fd, selectors.EVENT_READ)
        while left:
            if not selector.get_map():
                raise WorkerLost(f"a forked worker ended without the results of {left} of {tasks} tasks "
                                 f"({_how_they_ended(children)}): killed, or out of memory?")
            for key, _ in selector.select():
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = pending[key.fd]
                buffer += chunk
                while len(buffer) >= _SIZE.size and len(buffer) >= _SIZE.size + (size := _SIZE.unpack_from(buffer)[0]):
                    t, value, error, text = _unpickled(bytes(buffer[_SIZE.size:_SIZE.size + size]))
                    del buffer[:_SIZE.size + size]
                    left -= 1
                    if error is not None:
                        raise error from (WorkerTraceback(text) if text else None)
                    yield t, value


def _unpickled(message: bytes) -> tuple[int, Any, BaseException | None, str | None]:
    """A worker's message; an error that pickles but does not unpickle (a constructor of keyword-only
    arguments) as a `RuntimeError` naming it."""
    try:
        return pickle.loads(message)
    except Exception as problem:  # noqa: BLE001 - whatever unpickling raises
        return -1, None, RuntimeError(f"a forked worker's task failed with an error that does not unpickle: "
                                      f"{problem!r}"), None


def _how_they_ended(children: dict[int, int]) -> str:
    """How the workers ended (their exit codes or signals), once every pipe is at its end: each has closed its
    own only by exiting, so waiting for them is short."""
    ends = []
    for pid in children.values():
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # (reaped already)
            continue
        _FORKED.remove(pid)
        ends.append(f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else
                    f"exit code {os.WEXITSTATUS(status)}")
    return ", ".join(ends) or "ended"


def _stop(queue: int, children: dict[int, int], *, complete: bool) -> None:
    """The pool's end: the tasks not yet started dropped (their records read out of the pipe), the pipes
    closed; unless every result came (``complete``), the workers waited for (they finish or stop at the
    deadline their running task); those that have ended reaped."""
    os.set_blocking(queue, False)
    try:
        while os.read(queue, 1 << 16):
            pass
    except BlockingIOError:
        pass
    os.close(queue)
    for fd in children:
        os.close(fd)
    if not complete:
        for pid in children.values():
            _wait(pid)
    reap()


def _wait(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    if pid in _FORKED:
        _FORKED.remove(pid)


def reap(wait: bool = False) -> None:
    """Collect the workers that have ended (all of them, waiting, with ``wait``): a forked worker is left to
    exit on its own, not waited for, and collected here at the next pool or at this process's exit."""
    for pid in list(_FORKED):
        try:
            done, _ = os.waitpid(pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _FORKED.remove(pid)


atexit.register(reap, True)
