"""A forked worker's result handed to its parent through a file in shared memory rather than the pool's pipe.

A pass's result is tens of MB of arrays (each half of the 50,000-path sweep of the jujube file: 39 MB). Pickled
through a `concurrent.futures.ProcessPoolExecutor`'s pipe, 64 kB at a time, it took 0.17–0.25 s on the project's
two-core machine; the sweep's two passes finish together, so the parent waited for both, one after the other,
between the sweep and the scenarios while the cores idled. Here the worker pickles it with protocol 5, whose
buffers (the arrays' data) go out of band into a file of the run's folder in ``/dev/shm`` (memory, not a disk),
and only the rest (a few kB) goes through the pipe; the parent maps the file privately (`received`), and the
arrays are views of the mapping: the same arrays, bit for bit, as writable as unpickled ones.

Where there is no ``/dev/shm``, or the file cannot be written (a full or small one), the result goes through the
pipe as before. A file lives from its worker's write to its parent's read; the folder goes with the pool
(`clear`).
"""

from __future__ import annotations

import mmap
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

__all__ = ["MAP_ROOM", "Parcel", "folder", "sent", "received", "clear"]

_SHM = "/dev/shm"
_ALIGN = 64  # each buffer starts on a cache line (numpy needs its item size; the kernels like vectors aligned)


@dataclass(frozen=True)
class Parcel:
    """What goes through the pipe for a result sent through a file: its pickle without the buffers, the buffers'
    sizes and offsets in the file, and the file."""

    head: bytes
    spans: tuple[tuple[int, int], ...]
    size: int
    path: str


def folder() -> str | None:
    """A new folder for a pool's results in shared memory, or None where there is none (the pipe is used)."""
    if not os.path.isdir(_SHM) or not os.access(_SHM, os.W_OK):
        return None
    try:
        return tempfile.mkdtemp(prefix="opl-passes-", dir=_SHM)
    except OSError:
        return None


def sent(result, where: str | None):
    """``result`` as the worker returns it: a `Parcel` whose buffers are in a file of ``where``, or the result
    itself (through the pipe) when ``where`` is None or the file cannot be written."""
    if where is None:
        return result
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(result, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return result
    spans, offset = [], 0
    for buffer in buffers:
        size = buffer.raw().nbytes
        spans.append((offset, size))
        offset += -(-size // _ALIGN) * _ALIGN
    path = None
    try:
        fd, path = tempfile.mkstemp(dir=where)
        with os.fdopen(fd, "wb") as f:
            for (start, _), buffer in zip(spans, buffers):
                f.seek(start)
                f.write(buffer.raw())
            f.truncate(offset)
    except OSError:
        if path is not None:
            _unlink(path)
        return result
    return Parcel(head=head, spans=tuple(spans), size=offset, path=path)


#: Free space the shared-memory folder must keep beside a file for its result to stay mapped (`received`): a
#: mapped result holds the file's memory there until its arrays go, which a small ``/dev/shm`` (64 MB in a
#: default container) needs for the next workers' files.
MAP_ROOM = 1 << 30


def received(item):
    """The result a worker `sent`: its file mapped (then removed) when it is a `Parcel`, else ``item``.

    The arrays are views of a private mapping of the file, not of a copy read into this process: the parent
    neither zeroes nor copies their pages (the main job's 155 results, ~1 GB, were a tenth of
    its parent's page faults), and a page it writes becomes its own (copy on write), so they are as writable
    as unpickled ones. Unlinked at once, the file's memory goes when the last array on it goes. Where the
    folder has less than `MAP_ROOM` free beside the file, the file is read into this process's memory instead
    and its memory goes at once.
    """
    if not isinstance(item, Parcel):
        return item
    try:
        with open(item.path, "rb", buffering=0) as f:
            found = os.fstat(f.fileno()).st_size
            if found < item.size:
                raise EOFError(f"{item.path}: {found} of {item.size} bytes")
            data = _mapped(f.fileno(), item.size) if _room(f.fileno()) >= MAP_ROOM else _read(f, item.size)
    finally:
        _unlink(item.path)
    return pickle.loads(item.head, buffers=[data[start:start + size] for start, size in item.spans])


def _room(fd: int) -> int:
    """Bytes free on the file system of ``fd`` (0 where it cannot be told)."""
    try:
        st = os.fstatvfs(fd)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _mapped(fd: int, size: int) -> memoryview:
    """``size`` bytes of file ``fd`` mapped privately (a page-aligned start: the buffers keep their alignment);
    an empty file is an empty buffer (nothing to map)."""
    if size == 0:
        return memoryview(bytearray())
    return memoryview(mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE))


def _read(f, size: int) -> memoryview:
    """``size`` bytes of file ``f`` read into one buffer of this process, aligned as in the file."""
    block = np.empty(size + _ALIGN, dtype=np.uint8)
    shift = -block.ctypes.data % _ALIGN
    data = memoryview(block)[shift:shift + size]
    done = 0
    while done < size:
        n = f.readinto(data[done:])
        if not n:
            raise EOFError(f"{f.name}: {done} of {size} bytes")
        done += n
    return data


def clear(where: str | None) -> None:
    """Remove a pool's folder and whatever results it still holds (those of passes given up)."""
    if where is not None:
        shutil.rmtree(where, ignore_errors=True)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
