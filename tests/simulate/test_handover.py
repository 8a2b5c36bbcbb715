"""A forked worker's result handed over through a file in shared memory (`opl.runtime.engine.handover`)."""

from __future__ import annotations

import mmap
import os

import numpy as np
import pytest

from opl.runtime.engine import handover


def _result():
    rng = np.random.default_rng(3)
    grid = rng.normal(size=(5, 7, 3))
    return [({"monthly": grid, "strided": grid[:, ::2, 1], "counters": {"n": np.arange(11, dtype=np.int64)},
              "empty": np.empty((0, 4)), "flag": np.array([True, False, True])}, None, (3, 4))]


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _memory_of(array) -> str:
    """What holds an array's memory: a mapping (``mmap``) or this process's own (``numpy``)."""
    base = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    while isinstance(base, memoryview):
        base = base.obj
    return "mmap" if isinstance(base, mmap.mmap) else "numpy" if isinstance(base, np.ndarray) else type(base).__name__


@pytest.mark.parametrize("room, memory", [(0, "mmap"), (1 << 62, "numpy")])
def test_a_result_sent_through_a_file_is_the_result_and_the_file_goes(monkeypatch, room, memory):
    # Mapped where the folder has room to spare (`handover.MAP_ROOM`), read into this process where it has not.
    monkeypatch.setattr(handover, "MAP_ROOM", room)
    where = handover.folder()
    if where is None:
        pytest.skip("no /dev/shm here")
    try:
        parcel = handover.sent(_result(), where)
        assert isinstance(parcel, handover.Parcel) and os.path.exists(parcel.path)
        assert len(parcel.head) < 2_000  # the arrays' data went to the file
        back = handover.received(parcel)
        assert _same(back, _result())
        assert not os.path.exists(parcel.path)
        monthly = back[0][0]["monthly"]
        assert _memory_of(monthly) == memory
        assert monthly.flags.writeable and monthly.flags.c_contiguous and monthly.ctypes.data % 64 == 0
        counters = back[0][0]["counters"]["n"]
        assert counters.ctypes.data % 64 == 0
        monthly[0, 0, 0] = 1.0  # an ordinary array: writable, its own (a mapping's page copied on write)
        again = handover.received(handover.sent(_result(), where))
        assert again[0][0]["monthly"][0, 0, 0] == _result()[0][0]["monthly"][0, 0, 0] != 1.0
    finally:
        handover.clear(where)
    assert not os.path.exists(where)


def test_a_short_file_is_an_error_not_a_short_result(tmp_path):
    where = handover.folder()
    if where is None:
        pytest.skip("no /dev/shm here")
    try:
        parcel = handover.sent(_result(), where)
        with open(parcel.path, "r+b") as f:
            f.truncate(parcel.size - 8)
        with pytest.raises(EOFError):
            handover.received(parcel)
        assert not os.path.exists(parcel.path)
    finally:
        handover.clear(where)


def test_without_a_folder_or_a_writable_file_the_result_goes_through_the_pipe(tmp_path):
    result = _result()
    assert handover.sent(result, None) is result
    assert handover.received(result) is result
    assert handover.sent(result, str(tmp_path / "gone")) is result  # the file cannot be made: the pipe
