"""The American marking tables against direct BAW, the smile rule and the exercise boundary."""

from __future__ import annotations

import numpy as np
import pytest

from opl.runtime.pricing.american_fd import fd_marks, fd_price
from opl.runtime.engine.marking import AmericanMarker, SmileRule

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("days", [30.0, 7.0, 1.0])
def test_tables_match_the_exact_marks(is_call, days):
    # The tables against the same finite-difference method element by element (``exact=True``); both are
    # checked against QuantLib in tests/runtime/test_american_fd.py. (Before the tables were finite
    # differences this compared them with direct BAW, at the same tolerances.)
    rng = np.random.default_rng(0)
    f = 10_400 * np.exp(rng.normal(0.0, 0.12, 1_000))
    k = rng.choice([9_000.0, 9_800.0, 10_400.0, 11_200.0, 12_000.0], f.size)
    vol = rng.uniform(0.1, 0.9, f.size)
    t = days / 365
    marks = AmericanMarker(american=True, rate=0.015).mark(is_call=is_call, forward=f, strike=k, t=t, vol=vol)
    exact = AmericanMarker(american=True, rate=0.015, exact=True).mark(is_call=is_call, forward=f, strike=k, t=t,
                                                                       vol=vol, gamma=True)
    assert np.max(np.abs(marks.value - exact.value) / k) < 1e-4
    assert np.max(np.abs(marks.delta - exact.delta)) < 5e-3
    # In the exercise region the option is worth its intrinsic value exactly.
    phi = 1 if is_call else -1
    ex = marks.exercise
    assert np.any(ex)
    assert np.allclose(marks.value[ex], np.maximum(phi * (f[ex] - k[ex]), 0.0))
    assert np.allclose(exact.value[ex], marks.value[ex], rtol=0, atol=1e-6 * 12_000)
    # The two mark the same options exercised, but for those within the tables' σ interpolation of the boundary.
    assert np.mean(exact.exercise != marks.exercise) < 0.01


def test_exact_marks_greeks_are_the_derivatives_of_the_value():
    # fd_marks' delta and gamma (the premium interpolant's derivatives plus Black's) against bumped values.
    kw = dict(is_call=False, strike=100.0, t=0.3, vol=0.35, rate=0.04)
    s = np.array([70.0, 85.0, 100.0, 120.0])
    value, delta, gamma, _ = fd_marks(underlying=s, **kw)
    h = 1e-2
    up, down = fd_price(underlying=s + h, **kw), fd_price(underlying=s - h, **kw)
    np.testing.assert_allclose(delta, (up - down) / (2 * h), rtol=0, atol=2e-4)
    np.testing.assert_allclose(gamma, (up - 2 * value + down) / h**2, rtol=0, atol=2e-3)
    assert np.all(np.diff(delta) > 0)  # a put's delta rises from -1 towards 0


def test_european_never_exercises_and_expiry_is_intrinsic():
    m = AmericanMarker(american=False, rate=0.02)
    marks = m.mark(is_call=False, forward=np.array([5_000.0, 12_000.0]), strike=10_000.0, t=0.1, vol=0.3)
    assert not marks.exercise.any()
    at_expiry = AmericanMarker(american=True, rate=0.02).mark(is_call=False, forward=np.array([9_000.0, 11_000.0]),
                                                              strike=10_000.0, t=0.0, vol=0.3)
    assert at_expiry.value.tolist() == [1_000.0, 0.0]
    assert at_expiry.exercise.tolist() == [True, False]


def test_zero_rate_american_is_never_exercised_early():
    marks = AmericanMarker(american=True, rate=0.0).mark(is_call=False, forward=np.array([2_000.0]),
                                                         strike=10_000.0, t=0.05, vol=0.3)
    assert not marks.exercise.any()


def test_smile_rule():
    rule = SmileRule(spread=0.1, floor=0.12, skew=-0.2, curvature=2.0)
    assert rule.atm(np.array([0.2, 0.05])).tolist() == pytest.approx([0.22, 0.12])
    f = np.array([100.0, 100.0, 100.0])
    iv = rule.iv(vol=np.full(3, 0.2), forward=f, strike=np.array([90.0, 100.0, 110.0]))
    assert iv[1] == pytest.approx(0.22)
    assert iv[0] > iv[1] and iv[2] < iv[0]  # puts dearer than calls


def test_tables_solved_on_threads_are_the_tables_solved_one_after_the_other(monkeypatch):
    from opl.runtime.engine import kernels, marking

    times, key = (5 / 365, 12 / 365, 26 / 365), (0.031, 0.0)
    monkeypatch.setenv("OPL_TABLES_DIR", "")  # solved both times, not read from disk the second
    marking.prepare_tables(False, times, *key)  # where threads are allowed (this process): side by side
    threaded = [marking._CACHE.pop((False, t, *key)) for t in times]
    calls = []
    monkeypatch.setattr(kernels.base, "threads_allowed", lambda: calls.append(1) or False)
    marking.prepare_tables(False, times, *key)
    assert calls  # the serial path was taken
    for t, tables in zip(times, threaded):
        for a, b in zip(tables, marking._tables(False, t, *key)):
            assert a.tobytes() == b.tobytes()


def _dropped(is_call, times, key):
    from opl.runtime.engine import marking

    for t in times:
        marking._CACHE.pop((is_call, t, *key), None)


def test_tables_kept_on_disk_are_read_by_the_next_process_bit_for_bit(tmp_path, monkeypatch):
    from opl.runtime.engine import marking

    monkeypatch.setenv("OPL_TABLES_DIR", str(tmp_path))
    times, key = (3 / 365, 9 / 365, 17 / 365), (0.027, 0.0)
    for is_call in (False, True):
        _dropped(is_call, times, key)
        marking.prepare_tables(is_call, times, *key)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # a file a call solving tables: the put's, the call's
    solved = {(c, t): [a.tobytes() for a in marking._tables(c, t, *key)] for c in (False, True) for t in times}
    for is_call in (False, True):
        _dropped(is_call, times, key)  # as a new process: nothing in memory
    monkeypatch.setattr(marking, "_solved", lambda *args: pytest.fail("solved again"))
    for is_call in (False, True):
        marking.prepare_tables(is_call, times, *key)
    for (is_call, t), arrays in solved.items():
        read = marking._tables(is_call, t, *key)
        assert [a.tobytes() for a in read] == arrays
        assert not any(a.flags.writeable for a in read)


def test_other_tables_or_an_unreadable_file_are_solved_and_nothing_is_kept_without_a_folder(tmp_path, monkeypatch):
    from opl.runtime.engine import marking

    monkeypatch.setenv("OPL_TABLES_DIR", str(tmp_path))
    times, key = (4 / 365, 11 / 365), (0.033, 0.0)
    _dropped(False, times, key)
    marking.prepare_tables(False, times, *key)
    [kept] = tmp_path.glob("*.npy")
    solved = [a.tobytes() for a in marking._tables(False, times[1], *key)]
    solves = []
    real = marking._solved
    monkeypatch.setattr(marking, "_solved", lambda *args: solves.append(args[1]) or real(*args))
    _dropped(False, times, key)
    marking.prepare_tables(False, times[1:], *key)  # other times: another file
    assert solves == [[times[1]]] and len(list(tmp_path.glob("*.npy"))) == 2
    assert [a.tobytes() for a in marking._tables(False, times[1], *key)] == solved
    _dropped(False, times, key)
    kept.write_bytes(kept.read_bytes()[:1000])  # cut short: solved again, and kept whole again
    marking.prepare_tables(False, times, *key)
    assert solves == [[times[1]], list(times)]
    assert kept.stat().st_size > 1000
    monkeypatch.setenv("OPL_TABLES_DIR", "")
    _dropped(False, times, key)
    for path in tmp_path.iterdir():
        path.unlink()
    marking.prepare_tables(False, times, *key)
    assert len(solves) == 3 and not list(tmp_path.iterdir())


def test_the_folder_keeps_the_most_recently_read_files(tmp_path, monkeypatch):
    import os

    from opl.runtime.engine import tablestore

    monkeypatch.setenv("OPL_TABLES_DIR", str(tmp_path))
    monkeypatch.setattr(tablestore, "KEPT", 2)
    arrays = (np.zeros((1, 3, 2)), np.ones((1, 3, 2)), np.zeros((1, 2)))
    first, second, third = (tablestore._path(tmp_path, False, [0.1], rate, 0.0) for rate in (0.01, 0.02, 0.03))
    tablestore.save(False, [0.1], 0.01, 0.0, arrays)
    tablestore.save(False, [0.1], 0.02, 0.0, arrays)
    os.utime(first, (1, 1))  # written long ago, but read now: the newest
    os.utime(second, (2, 2))
    assert tablestore.load(False, [0.1], 0.01, 0.0) is not None
    tablestore.save(False, [0.1], 0.03, 0.0, arrays)
    assert sorted(tmp_path.iterdir()) == sorted([first, third])
    assert [a.tobytes() for a in tablestore.load(False, [0.1], 0.01, 0.0)] == [a.tobytes() for a in arrays]
