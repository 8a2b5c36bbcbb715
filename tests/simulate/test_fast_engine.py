"""The fast engine (compiled kernels, `opl.runtime.engine.kernels`) against the numpy reference replay.

Every replay `opl simulate` runs is repeated with ``RunSpec.engine="reference"`` and the
two ledgers compared: monthly P&L, every bucket and counter, drawdowns and margin peaks
identical to 1e-9 relative (counters exactly), across the file's rules — exit modes, every
playbook action, guards, assignment policies, margin calls and liquidations, legs of
different tenors, stresses.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import opl.simulation.run as facade
from opl.runtime.engine import kernels
from opl.runtime.engine.marking import AmericanMarker, SmileRule
from opl.runtime.engine.months import _Month
from opl.runtime.engine.passmonths import _StoredMonths, _arrays_of
import opl.runtime.engine.adjustround as round_module
import opl.runtime.engine.passes as passes_module
import opl.runtime.engine.positions as positions_module
import opl.runtime.engine.replay as replay_module
import opl.runtime.engine.step as step_module
from opl.runtime.engine.replay import replay as engine_replay
from opl.runtime.engine.runspec import RunSpec, StrategySpec, Variant

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")

JUJUBE = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"


VARIANTS = (Variant(size=1.0), Variant(size=5.0, fee_factor=2.0))


def _jujube_run(*, paths: int, months: int, seed: int = 7, chunk: int = 10_000):
    """The jujube strangle's runtime strategy and a one-process run of it, as `opl simulate` builds them."""
    import opl
    from opl.compiler.strategy import compile_checked
    from opl.runtime.market.rules import load_pack

    checked = opl.check_file(JUJUBE)
    compiled = compile_checked(checked).strategy
    settings, spans = facade.settings_from(checked.document, compiled)
    pack = load_pack(compiled.underlying.rule_pack)
    strategy = replace(facade.runtime_strategy(checked, compiled, settings, []),
                       contract_size=pack.underlying.contract_size)
    run = RunSpec(process=facade.price_process(settings, compiled, pack, spans, []), pack=pack,
                                price=compiled.market.price, capital=settings.capital, paths=paths, months=months,
                                seed=seed, chunk=chunk, workers=1)
    return strategy, run


def _close(fast, ref, what: str) -> None:
    fast, ref = np.asarray(fast, dtype=float), np.asarray(ref, dtype=float)
    assert fast.shape == ref.shape, what
    scale = np.maximum(np.abs(ref), 1.0)
    worst = float(np.max(np.abs(fast - ref) / scale)) if ref.size else 0.0
    assert worst <= 1e-9, f"{what}: {worst:.3g}"


def assert_same_ledgers(fast, ref) -> None:
    _close(fast.monthly, ref.monthly, "monthly")
    _close(fast.max_drawdown, ref.max_drawdown, "max_drawdown")
    _close(fast.peak_margin, ref.peak_margin, "peak_margin")
    assert fast.buckets.keys() == ref.buckets.keys()
    for name in ref.buckets:
        _close(fast.buckets[name], ref.buckets[name], name)
    assert fast.counters.keys() == ref.counters.keys()
    for name in ref.counters:
        assert np.array_equal(fast.counters[name], ref.counters[name]), name


@pytest.fixture
def compared(monkeypatch):
    """Run `simulate_file` with every replay checked against the reference; returns the paths of each one
    compared (every replay without a trace goes through `replay_many`, whose jobs run side by side)."""
    seen = []
    real = replay_module.replay_many

    def both(jobs, progress=None, **beside):
        fast = real([(s, replace(r, engine="fast"), v) for s, r, v in jobs], progress=progress, **beside)
        ref = real([(s, replace(r, engine="reference"), v) for s, r, v in jobs])
        for (_, run, _), f, r in zip(jobs, fast, ref):
            assert_same_ledgers(f, r)
            seen.append(run.paths)
        return fast

    monkeypatch.setattr(replay_module, "replay_many", both)  # simulate_file imports it at call time
    return seen


PLAYBOOK = ("adjust_playbook [ roll_nearest_term(), roll(1, 60d), roll_tenor(2, 30d), shift_strike(1, -2%), "
            "scale_qty(2, 2), hedge_gamma(target=0.05), delta_neutralise(keep=10%), hedge(delta), "
            "add_leg(long Option(Put, support-300, 30d)), replace_leg(2, short Option(Call, resistance+300, 30d)), "
            "remove_leg(1), close(2), close() ]")

STRANGLE = "S = short Option(Put, support-100, 30d) + short Option(Call, resistance+100, 30d)"
# The loop's four-leg candidate (its iteration 8): a book of nine slots, the legs' four, a roll's per leg and the
# gamma hedge's — more than eight.
WINGS = ("S = short Option(Call, resistance+100, 30d) + short Option(Put, support-100, 30d) + "
         "long Option(Call, resistance+500, 30d) + long Option(Put, support-500, 30d)")

CASES = {
    "jujube": [],
    "every_action_machine_decide_guards": [
        ("adjust_playbook [ roll_nearest_term(), hedge_gamma(target=0.10) ]", PLAYBOOK),
        ("adjust_when price_retrace(>-3%) or vega_crush(>20%)",
         "adjust_when price_retrace(>1%) or price_retrace(<-1%) or structure_destabilised(gamma)"),
        ("exit_mode first_hit", "exit_mode machine_decide(profit_capture)\navoid_leg_if strike_offset > 12%\n"
                                "warn_if leg_pnl < -100%")],
    "all_required_hedge_and_close_skip_abort": [
        ("exit_mode first_hit", "exit_mode all_required"),
        ("on_assignment take_delivery(storage=2/day, funding=3%)", "on_assignment hedge_and_close"),
        ("abort_if additional_margin(%) > 15", "abort_if additional_margin(%) > 1")],
    "margin_calls_and_liquidations": [
        ("capital 1000000", "capital 60000"), ("margin_buffer 20%", "margin_buffer 5%")],
    "calendar": [("S = short Option(Put, support-100, 30d)", "S = long Option(Put, support-100, 60d)")],
    "deep_in_the_money_assignment": [
        ("S = short Option(Put, support-100, 30d) + short Option(Call, resistance+100, 30d)",
         "S = short Option(Put, resistance+400, 30d) + short Option(Call, support-400, 30d)")],
    "wings": [(STRANGLE, WINGS)],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_engine_matches_the_reference(tmp_path, compared, case):
    text = JUJUBE.read_text(encoding="utf-8")
    for old, new in CASES[case]:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{case}.opl"
    path.write_text(text, encoding="utf-8")
    facade.simulate_file(path, paths=120, overrides=["experiment.horizon=2", "experiment.sizes=[1,5]",
                                                      "adjust.cooldown=0", "sim.guard_days=0"]
                         if case == "every_action_machine_decide_guards" else
                         ["experiment.horizon=2", "experiment.sizes=[1,5]"])
    assert len(compared) >= 2  # the base sweep and the scenarios


@pytest.mark.parametrize("american", [True, False])
@pytest.mark.parametrize("is_call", [True, False])
def test_marks_match_the_reference_marker(american, is_call):
    rng = np.random.default_rng(3)
    paths, steps = 400, 22
    forward = 10_400 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (paths, steps)), axis=1))
    vol = 0.25 * np.exp(rng.normal(0.0, 0.5, (paths, steps)))
    strike = np.round(10_400 * np.exp(rng.normal(0.0, 0.1, paths)) / 100) * 100
    t = 30 / 365 * (21 - np.arange(steps)) / 21
    smile = SmileRule()
    marker = AmericanMarker(american=american, rate=0.015)
    iv = smile.iv(vol=vol, forward=forward, strike=strike[:, None])
    ref = [marker.mark(is_call=is_call, forward=forward[:, j], strike=strike, t=t[j], vol=iv[:, j], gamma=True)
           for j in range(steps)]
    value, delta, gamma, exercise = kernels.mark_series(is_call=is_call, american=american, forward=forward, vol=vol,
                                                        strike=strike, t=t, smile=smile, rate=0.015)
    np.testing.assert_allclose(value, np.stack([m.value for m in ref], axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(delta, np.stack([m.delta for m in ref], axis=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gamma, np.stack([m.gamma for m in ref], axis=1), rtol=1e-9, atol=1e-15)
    assert np.array_equal(exercise, np.stack([m.exercise for m in ref], axis=1))
    assert exercise[:, :-1].any() == american  # before expiry: the exercise region of American options


def _quoting_month(rng, paths, steps, *, whole: bool):
    """A `_Month` with random prices and volatilities that can quote (``whole``: with the whole month's
    (steps, paths) columns, as the replay's own month; else as an adjustment round's cut of it)."""
    month = object.__new__(_Month)
    month.price = 10_400 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (paths, steps)), axis=1))
    month.vol = 0.25 * np.exp(rng.normal(0.0, 0.5, (paths, steps)))
    month.by_step = tuple(np.ascontiguousarray(x.T) for x in (month.price, month.vol)) if whole else None
    month.t = 30 / 365 * (21 - np.arange(steps)) / 21
    month.smile, month.rate, month.fast, month.want_gamma = SmileRule(), 0.015, True, True
    month.markers = {flag: AmericanMarker(american=flag, rate=0.015) for flag in (True, False)}
    return month


@pytest.mark.parametrize("american", [True, False])
@pytest.mark.parametrize("agree", [True, False])
@pytest.mark.parametrize("whole", [True, False])
def test_quotes_mark_each_path_once_with_the_numbers_of_a_mark_per_element(monkeypatch, american, agree, whole):
    """The adjustment module's quotes (and the dynamic slots' re-marks) mark each path once when its
    variants hold the same strike, copying the marks to them — every element otherwise: the same
    numbers, bit for bit, as marking every element."""
    rng = np.random.default_rng(5)
    paths, variants, steps = 300, 4, 22
    month = _quoting_month(rng, paths, steps, whole=whole)
    strike = np.broadcast_to(np.round(10_400 * np.exp(rng.normal(0.0, 0.1, paths)) / 100) * 100,
                             (variants, paths)).copy()
    if not agree:
        strike[1, ::7] += 200.0
    where = rng.random((variants, paths)) < 0.5  # half the elements quoted
    counts = []
    real = kernels.marks._mark_where
    monkeypatch.setattr(kernels.marks, "_mark_where", lambda *a: counts.append(real(*a)) or counts[-1])
    got = month.quote(is_call=False, american=american, strike=strike, extra_days=10.0, j=7, where=where)
    vi, pi = np.nonzero(where)
    # A mark per distinct (path, strike): a path's variants holding the same strike share it.
    assert counts == [len(set(zip(pi.tolist(), strike[vi, pi].tolist())))]
    assert counts == [np.unique(pi).size] if agree else np.unique(pi).size < counts[0] < vi.size
    one = kernels.mark_series(is_call=False, american=american, forward=month.price[pi, 7][:, None],
                              vol=month.vol[pi, 7][:, None], strike=strike[vi, pi],
                              t=np.array([month.t[7] + 10.0 / 365.0]), smile=month.smile, rate=0.015)
    for mine, ref in zip(got, one):
        assert mine.shape == where.shape
        assert np.array_equal(mine[vi, pi], ref[:, 0])
        assert not np.any(mine[~where])


@pytest.mark.parametrize("per_path", [True, False])
def test_a_remark_is_the_reference_remarks_selects_bit_for_bit(per_path):
    """A dynamic slot's re-mark on the fast engine (`_Month._remark_held`, one compiled pass) gives what the
    reference's `remark` builds with whole-array selects from per-element marks: new marks where the slot
    holds lots, its old marks (per path or per variant and path) elsewhere, no exercise there."""
    from opl.runtime.engine.book import Slot

    rng = np.random.default_rng(11)
    paths, variants, steps, j = 250, 3, 22, 12
    month = _quoting_month(rng, paths, steps, whole=True)
    qty = np.where(rng.random((variants, paths)) < 0.4, -2.0, 0.0)
    strike = np.round(10_400 * np.exp(rng.normal(0.0, 0.1, (variants, paths))) / 100) * 100
    slot = Slot(is_call=True, american=True, qty=qty, strike=strike[0] if per_path else strike)
    old = [rng.normal(size=(paths,) if per_path else (variants, paths)) for _ in range(3)]
    slot.value, slot.delta, slot.gamma = old
    slot.exercise = np.ones((variants, paths), dtype=bool)
    month.remark(slot, j)
    held = qty != 0
    vi, pi = np.nonzero(held)
    k = np.broadcast_to(strike[0] if per_path else strike, held.shape)[vi, pi]
    ref = kernels.mark_series(is_call=True, american=True, forward=month.price[pi, j][:, None],
                              vol=month.vol[pi, j][:, None], strike=k, t=np.array([month.t[j]]), smile=month.smile,
                              rate=0.015)
    for got, before, marks in zip((slot.value, slot.delta, slot.gamma), old, ref):
        expected = np.array(np.broadcast_to(before, held.shape))
        expected[vi, pi] = marks[:, 0]
        assert np.array_equal(got, expected)
    expected = np.zeros(held.shape, dtype=bool)
    expected[vi, pi] = ref[3][:, 0]
    assert np.array_equal(slot.exercise, expected)


def test_a_remark_writes_in_place_only_into_arrays_nothing_else_refers_to():
    """`_remark_held` updates in place the mark arrays only the slot refers to (their old marks are not
    copied): the same marks as into new arrays, and an array someone else holds (the step's marks before, a
    view) keeps its numbers."""
    from opl.runtime.engine.book import Slot

    rng = np.random.default_rng(12)
    paths, variants, j = 250, 3, 9
    month = _quoting_month(rng, paths, 22, whole=True)
    qty = np.where(rng.random((variants, paths)) < 0.4, -2.0, 0.0)
    strike = np.round(10_400 * np.exp(rng.normal(0.0, 0.1, (variants, paths))) / 100) * 100
    old = [rng.normal(size=(variants, paths)) for _ in range(3)] + [rng.random((variants, paths)) < 0.5]

    def remarked(held_elsewhere: bool):
        slot = Slot(is_call=False, american=True, qty=qty, strike=strike)
        slot.value, slot.delta, slot.gamma, slot.exercise = (x.copy() for x in old)
        arrays = [slot.value, slot.delta, slot.gamma, slot.exercise]
        kept = [a.copy() for a in arrays] if held_elsewhere else None
        ids = [id(a) for a in arrays]  # an array updated in place keeps its identity (the old ones are alive)
        if not held_elsewhere:
            del arrays
        month.remark(slot, j)
        now = [id(a) for a in (slot.value, slot.delta, slot.gamma, slot.exercise)]
        return slot, kept, (arrays if held_elsewhere else [x == y for x, y in zip(ids, now)])

    alone, _, in_place = remarked(False)
    assert all(in_place)  # nothing else held them: every array written in place
    shared, kept, arrays = remarked(True)
    for a, b in zip((alone.value, alone.delta, alone.gamma, alone.exercise),
                    (shared.value, shared.delta, shared.gamma, shared.exercise)):
        assert np.array_equal(a, b)
    for before, now, new in zip(kept, arrays, (shared.value, shared.delta, shared.gamma, shared.exercise)):
        assert np.array_equal(before, now) and new is not now  # held elsewhere: not written into
    assert not np.array_equal(alone.value, old[0])  # the marks did move where held


def test_a_remark_writes_in_place_into_arrays_the_kernels_kept_tuples_read():
    """The views a kept slot tuple holds of a slot's marks (`kernels.base._slot_tuple`) read the array as it is:
    they do not stop a re-mark writing into it, and they see the new marks; a tuple of another array does not
    count, and one of a copy of an array is not kept."""
    from opl.runtime.engine.book import Slot

    rng = np.random.default_rng(13)
    paths, variants, j = 250, 3, 9
    month = _quoting_month(rng, paths, 22, whole=True)
    qty = np.where(rng.random((variants, paths)) < 0.4, -2.0, 0.0)
    strike = np.round(10_400 * np.exp(rng.normal(0.0, 0.1, (variants, paths))) / 100) * 100
    slot = Slot(is_call=False, american=True, qty=qty, strike=strike)
    slot.value, slot.delta, slot.gamma = (rng.normal(size=(variants, paths)) for _ in range(3))
    slot.exercise = rng.random((variants, paths)) < 0.5
    kernels.base.forget_tuples()
    kept = kernels.base._slot_tuple([slot.value, slot.delta])
    assert kernels.base._slot_tuple([slot.value, slot.delta]) is kept  # asked again: the same tuple
    ids = [id(slot.value), id(slot.delta)]
    month.remark(slot, j)
    assert [id(slot.value), id(slot.delta)] == ids  # written in place
    assert np.array_equal(kept[0], slot.value) and np.array_equal(kept[1], slot.delta)
    other = rng.normal(size=(variants, paths))
    assert kernels.base._slot_tuple([other, slot.delta]) is not kept
    whole = np.arange(variants * paths, dtype=np.int64).reshape(variants, paths)  # an int array: copied
    first = kernels.base._slot_tuple([whole])
    whole += 1
    assert np.array_equal(kernels.base._slot_tuple([whole])[0], whole) and not np.array_equal(first[0], whole)
    kernels.base.forget_tuples()


def test_the_held_paths_kernel_is_numpys_any_over_the_variants():
    rng = np.random.default_rng(14)
    for variants, paths, share in ((1, 1, 0.5), (5, 1_000, 0.0), (5, 1_000, 0.02), (3, 777, 0.5)):
        qty = np.where(rng.random((variants, paths)) < share, rng.choice([-3.0, 1.0, -0.0], (variants, paths)), 0.0)
        out = np.ones(paths, dtype=np.bool_)
        count = kernels.marks._held_paths(qty, out)
        assert np.array_equal(out, qty.any(axis=0)) and count == np.count_nonzero(qty.any(axis=0))


def _month_of_marks(paths=3_000, steps=22):
    rng = np.random.default_rng(5)
    forward = 10_400 * np.exp(np.cumsum(rng.normal(0.0, 0.04, (paths, steps)), axis=1))
    vol = 0.25 * np.exp(rng.normal(0.0, 0.6, (paths, steps)))
    strike = np.round(10_400 * np.exp(rng.normal(0.0, 0.15, paths)) / 100) * 100
    t = 30 / 365 * (21 - np.arange(steps)) / 21
    return dict(forward=forward, vol=vol, strike=strike, t=t, smile=SmileRule(), rate=0.015)


@pytest.mark.parametrize("is_call", [True, False])
def test_marks_are_the_same_bits_on_one_thread_two_threads_and_the_serial_twin(monkeypatch, is_call):
    # prange runs over paths only: a path's marks are the same bits whichever thread, and however many,
    # computed them, and the serial twin (forked workers, small calls) computes the same bits again.
    month = _month_of_marks()
    runs = []
    monkeypatch.setattr(kernels.base, "MARKS_PARALLEL_MIN", 2**62)
    runs.append(kernels.mark_series(is_call=is_call, american=True, **month))
    monkeypatch.setattr(kernels.base, "MARKS_PARALLEL_MIN", 0)
    threads = kernels.base.numba.get_num_threads()
    try:
        for n in sorted({1, min(2, kernels.base.numba.config.NUMBA_NUM_THREADS)}):
            kernels.base.numba.set_num_threads(n)
            runs.append(kernels.mark_series(is_call=is_call, american=True, **month))
    finally:
        kernels.base.numba.set_num_threads(threads)
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert np.array_equal(a, b)


def test_a_steps_column_of_a_one_process_chunk_is_marked_on_the_thread_pool(monkeypatch):
    # A 10,000-path chunk replayed in one process marks a step's column of held paths on both cores; a
    # worker process (serial_only: the processes share the cores) on one.
    month = _month_of_marks(paths=10_000)
    used = []
    for name in ("_mark_parallel", "_mark_serial"):
        real = getattr(kernels.marks, name)
        monkeypatch.setattr(kernels.marks, name, lambda *a, _n=name, _f=real: used.append(_n) or _f(*a))
    series = kernels.marks.SeriesMarks(is_call=False, american=True, **month)
    series.mark(np.arange(10_000) % 10 != 0, (3, 4))
    monkeypatch.setattr(kernels.base, "PARALLEL_MIN", kernels.base.PARALLEL_MIN)
    monkeypatch.setattr(kernels.base, "MARKS_PARALLEL_MIN", kernels.base.MARKS_PARALLEL_MIN)
    monkeypatch.setattr(kernels.base, "STEP_PARALLEL_MIN", kernels.base.STEP_PARALLEL_MIN)
    kernels.serial_only()
    series.mark(np.arange(10_000) % 10 != 0, (4, 5))
    assert used == ["_mark_parallel", "_mark_serial"]


def test_the_mark_twins_have_their_own_cache_entries():
    # numba's cache keys an entry by the function and its signature, not by the parallel flag: one function
    # compiled as both twins shared one entry, so whichever twin a process compiled first was loaded as the
    # other too (the "serial" twin of a forked worker ran the thread pool, or a month's marks ran on one thread).
    parallel, serial = kernels.marks._mark_parallel, kernels.marks._mark_serial
    assert parallel.targetoptions.get("parallel") and not serial.targetoptions.get("parallel")
    assert parallel.py_func is not serial.py_func
    assert parallel._cache._cache_file._index_name != serial._cache._cache_file._index_name


def test_uniform_grid_interpolation_is_numpy_interp_bit_for_bit():
    # Direct indexing on the volatility grid finds the node numpy.interp's binary search finds: the same
    # value to the bit, at random points, at the nodes themselves and next to them, and off the grid.
    from opl.runtime.engine.marking import _LOGV

    rng = np.random.default_rng(2)
    points = np.concatenate([rng.uniform(_LOGV[0] - 0.5, _LOGV[-1] + 0.5, 20_000), _LOGV,
                             np.nextafter(_LOGV, -np.inf), np.nextafter(_LOGV, np.inf)])
    table = np.cumsum(rng.uniform(0.0, 1.0, _LOGV.size))
    x0, dx = _LOGV[0], _LOGV[1] - _LOGV[0]
    got = np.array([kernels.marks._interp_uniform(x, _LOGV, table[None], 0, x0, dx) for x in points])
    assert np.array_equal(got, np.interp(points, _LOGV, table))


@pytest.mark.parametrize("phi", [1.0, -1.0])
def test_a_mark_on_the_near_side_of_the_boundary_edge_is_never_exercised(phi):
    # The mark kernel skips the boundary's interpolation where phi s < phi k edge (`_boundary_edge`): there the
    # full check phi (s - k b) >= 0 must be False for every volatility, at the edge's own neighbours too.
    from opl.runtime.engine.marking import _LOGV

    rng = np.random.default_rng(4)
    x0, dx = _LOGV[0], _LOGV[1] - _LOGV[0]
    rows = [np.sort(rng.uniform(0.3, 1.0, _LOGV.size))[::-1] if phi < 0 else np.sort(rng.uniform(1.0, 3.0, _LOGV.size)),
            np.full(_LOGV.size, 0.9 if phi < 0 else 1.1), np.linspace(0.97, 0.99, _LOGV.size) * (1 if phi < 0 else 1.05)]
    lvs = np.concatenate([rng.uniform(_LOGV[0] - 0.2, _LOGV[-1] + 0.2, 400), _LOGV, np.nextafter(_LOGV, np.inf)])
    for row in rows:
        table = row[None].copy()
        edge = kernels.marks._boundary_edge(phi, table, 0)
        for k in rng.uniform(50.0, 20_000.0, 20):
            closest = k * edge
            prices = [closest * (1 + f) for f in (-1e-3, -1e-9, 0.0, 1e-9, 1e-3)]
            prices += list(np.nextafter(closest, [-np.inf, np.inf])) + [closest]
            near = [s for s in prices if (s > k * edge if phi < 0 else s < k * edge)]
            assert near
            for s in near:
                assert not any(phi * (s - k * kernels.marks._interp_uniform(lv, _LOGV, table, 0, x0, dx)) >= 0
                               for lv in lvs)
    # A row with a NaN or an infinite node has no edge: every mark then checks the boundary.
    for bad in (np.nan, np.inf, -np.inf):
        row = np.full((1, _LOGV.size), 0.9)
        row[0, 7] = bad
        edge = kernels.marks._boundary_edge(phi, row, 0)
        assert not any((s > 100.0 * edge if phi < 0 else s < 100.0 * edge) for s in (1e-300, 1.0, 1e300))


def test_marks_without_gamma_are_the_same_marks_with_gamma_zero():
    month = _month_of_marks(paths=500)
    with_gamma = kernels.mark_series(is_call=False, american=True, **month)
    without = kernels.mark_series(is_call=False, american=True, gamma=False, **month)
    for n in (0, 1, 3):
        assert np.array_equal(with_gamma[n], without[n])
    assert not np.any(without[2]) and np.any(with_gamma[2])


def test_series_marks_column_by_column_on_some_paths_are_the_whole_months_marks_there():
    # A base leg is marked a column at a time on the paths holding it: those elements are the bits of
    # marking the whole month at once, the others are left 0 (False), on the serial and the parallel twin.
    month = _month_of_marks(paths=1_500)
    whole = kernels.mark_series(is_call=True, american=True, **month)
    rng = np.random.default_rng(9)
    for threshold in (2**62, 0):
        series = kernels.SeriesMarks(is_call=True, american=True, **month)
        asked = np.zeros(whole[0].shape, dtype=bool)
        old = kernels.base.MARKS_PARALLEL_MIN
        kernels.base.MARKS_PARALLEL_MIN = threshold
        try:
            for j in range(asked.shape[1]):
                where = rng.random(asked.shape[0]) < 0.6
                series.mark(where, (j, j + 1))
                asked[:, j] = where
        finally:
            kernels.base.MARKS_PARALLEL_MIN = old
        for got, ref in zip((series.value, series.delta, series.gamma, series.exercise), whole):
            assert np.array_equal(got[asked], ref[asked])
            assert not np.any(got[~asked])
            assert got[:, 5].flags.c_contiguous  # a step's column is contiguous for the step's kernels


def test_gamma_owed_by_a_series_is_computed_where_asked_the_same_bits():
    # A base leg is marked without its gamma (`SeriesMarks.mark(gamma=False)`); `gamma_at` computes it where
    # asked, on the serial and the parallel twin: the whole month's marks there, bit for bit, value, delta
    # and exercise unchanged, gamma 0 where still owed, and nothing owed twice.
    month = _month_of_marks(paths=1_500)
    whole = kernels.mark_series(is_call=False, american=True, **month)
    rng = np.random.default_rng(4)
    for threshold in (2**62, 0):
        old = kernels.base.MARKS_PARALLEL_MIN
        kernels.base.MARKS_PARALLEL_MIN = threshold
        try:
            series = kernels.SeriesMarks(is_call=False, american=True, **month)
            held = rng.random(1_500) < 0.7
            series.mark(held, (4, 5), gamma=False)
            assert not np.any(series.gamma[:, 4]) and not series.complete
            asked = rng.random(1_500) < 0.2
            done = series.gamma_at(4, asked)
            assert np.array_equal(done, held & asked)
            assert series.gamma_at(4, asked) is None  # computed once
            everything = series.gamma_at(4)
            assert np.array_equal(everything, held & ~asked)
        finally:
            kernels.base.MARKS_PARALLEL_MIN = old
        for got, ref in zip((series.value, series.delta, series.gamma, series.exercise), whole):
            assert np.array_equal(got[held, 4], ref[held, 4])
            assert not np.any(got[~held, 4])
        assert np.any(series.gamma[held, 4])


def test_a_base_legs_gamma_is_computed_only_where_a_round_reads_it(monkeypatch):
    # The jujube file reads gamma in its adjustment rounds only (hedge_gamma), on the paths where a round
    # fires: the base legs' marks leave it out and compute it there, a few percent of the marks, and the
    # ledgers stay the reference's (which computes every gamma).
    marks, gammas = [], []
    real = kernels.SeriesMarks._run

    def counting(self, need, j0, j1, gamma, count):
        (gammas if gamma else marks).append(count)
        return real(self, need, j0, j1, gamma, count)

    monkeypatch.setattr(kernels.SeriesMarks, "_run", counting)
    strategy, run = _jujube_run(paths=200, months=2)
    assert strategy.greeks
    fast = engine_replay(strategy=strategy, run=replace(run, engine="fast"), variants=VARIANTS)
    assert 0 < sum(gammas) < 0.1 * sum(marks)
    assert_same_ledgers(fast, engine_replay(strategy=strategy, run=replace(run, engine="reference"),
                                            variants=VARIANTS))


def test_a_base_leg_is_marked_only_on_the_paths_holding_it(monkeypatch):
    # The jujube strangle rolls or closes its legs on about half the path-steps of a month: those are not
    # marked, and the ledgers stay the reference's (which marks everything).
    marked, offered = [], []
    real, real_held = kernels.SeriesMarks.mark, kernels.marks._held_paths

    def counting(self, where=None, columns=None, gamma=True, **known):
        if "count" not in known:  # (else `SeriesMarks.mark_held`'s, counted by its `held_paths` below)
            j0, j1 = columns if columns is not None else (0, self.value.shape[1])
            offered.append(self.value.shape[0] * (j1 - j0))
            marked.append((self.value.shape[0] if where is None else int(np.count_nonzero(where))) * (j1 - j0))
        return real(self, where, columns, gamma, **known)

    def held_paths(qty, held):  # `SeriesMarks.mark_held`'s one column, on the paths it finds held
        count = real_held(qty, held)
        assert count == np.count_nonzero(held) and np.array_equal(held, (qty != 0).any(axis=0))
        offered.append(held.size)
        marked.append(count)
        return count

    monkeypatch.setattr(kernels.SeriesMarks, "mark", counting)
    monkeypatch.setattr(kernels.marks, "_held_paths", held_paths)
    strategy, run = _jujube_run(paths=200, months=2)
    fast = engine_replay(strategy=strategy, run=replace(run, engine="fast"), variants=VARIANTS)
    assert 0 < sum(marked) < 0.8 * sum(offered)
    assert_same_ledgers(fast, engine_replay(strategy=strategy, run=replace(run, engine="reference"),
                                            variants=VARIANTS))


def test_chunks_replayed_by_forked_workers_give_the_same_numbers_bit_for_bit(monkeypatch):
    # Three chunks of 40 paths, in this process and in two worker processes: every number of the whole
    # simulate (sizes, scenarios, equity curves) identical, whatever the number of workers.
    ticks = []
    common = ["experiment.horizon=2", "experiment.sizes=[1,5]", "sim.chunk=40"]
    alone = facade.simulate_file(JUJUBE, paths=120, overrides=[*common, "sim.workers=1"])
    pooled = facade.simulate_file(JUJUBE, paths=120, overrides=[*common, "sim.workers=2"],
                                  progress=lambda done, total: ticks.append((done, total)))
    assert alone.to_json() == pooled.to_json()
    assert np.array_equal(alone.equity, pooled.equity)
    assert ticks[-1][0] == ticks[-1][1]  # progress still counts every path-month


@pytest.mark.parametrize("method", ["combination", "per_leg"])
@pytest.mark.parametrize("pack_name", ["czce_cj", "sse_50etf"])
def test_margin_kernel_is_the_reference_margin_bit_for_bit(pack_name, method):
    # Random books (calls and puts, short and long, two expiries, strikes per path or per variant and path)
    # margined by the compiled kernel and by the reference formulas: the same numbers, on all paths and on
    # a subset of them (the adjustment module's proposals).
    from opl.runtime.engine.book import Book
    from opl.runtime.market.margin import with_margin_method
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(11)
    pack = with_margin_method(load_pack(pack_name), method)
    packs = positions_module._margin_packs(pack, (Variant(), Variant(margin_factor=1.5)))
    rule = kernels.MarginRule.of(packs)
    shape = (2, 300)
    level = 10_000.0 if pack.underlying.kind == "future" else 2.5
    price = level * np.exp(rng.normal(0.0, 0.1, shape[1]))
    kept = []  # (result, reference) of every call: the kernel's scratch is reused, its results never are
    for _ in range(25):
        holdings = []
        for _ in range(rng.integers(0, 5)):
            width = shape[1:] if rng.random() < 0.5 else shape
            strike = np.round(price * np.exp(rng.normal(0.0, 0.08, width)), 2)
            qty = rng.integers(-3, 3, shape).astype(float)
            holdings.append((bool(rng.integers(2)), strike, np.abs(rng.normal(0.0, 0.02, shape)) * price,
                             -np.abs(qty) if rng.random() < 0.3 else qty, float(rng.choice([0.0, 30.0]))))
        futures = np.abs(rng.integers(-3, 3, shape)).astype(float)
        for cols in (None, np.array([3, 7, 100])):
            ref = positions_module._margin(packs, Book(shape), None, None, price, legs=holdings, futures_lots=futures,
                                        cols=cols)
            got = kernels.book_margin(rule, holdings, futures, price, shape, cols)
            assert np.array_equal(got, ref)
            kept.append((got, ref))
    assert all(np.array_equal(got, ref) for got, ref in kept)


def test_chunks_replayed_side_by_side_are_each_chunk_alone_bit_for_bit():
    # The fast engine replays consecutive chunks in one pass (their paths side by side); every number
    # of every path is the one its chunk gives alone, ledgers, drawdowns and counters included.
    strategy, run = _jujube_run(paths=90, months=2, seed=5, chunk=30)
    variants = (Variant(size=1.0), Variant(size=5.0, fee_factor=2.0))
    group = ((0, 30), (1, 30), (2, 30))
    assert passes_module._passes(run, list(group), 1, False) == [group]
    joined, _, _ = passes_module._replay_pass(strategy, run, variants, group, None, False)
    alone = [passes_module._replay_chunk(strategy, run, variants, p, c, None, False)[0] for c, p in group]
    for key in ("monthly", "max_drawdown", "peak_margin"):
        assert np.array_equal(joined[key], np.concatenate([a[key] for a in alone], axis=1)), key
    for kind in ("buckets", "counters"):
        for name in joined[kind]:
            assert np.array_equal(joined[kind][name], np.concatenate([a[kind][name] for a in alone], axis=1)), name


def test_passes_share_the_paths_equally_a_chunk_cut_between_two_is_each_chunk_alone_bit_for_bit():
    # Two workers get a pass each of 45 of the 90 paths: chunk 1 is cut between them (each pass draws its
    # whole month and replays its own paths); joined in order, every number is the chunks' alone.
    strategy, run = _jujube_run(paths=90, months=2, seed=5, chunk=30)
    variants = (Variant(size=1.0), Variant(size=5.0, fee_factor=2.0))
    chunks = passes_module._chunks(run)
    passes = passes_module._passes(run, chunks, 2, False)
    assert passes == [((0, 30), (1, 15, 0)), ((1, 15, 15), (2, 30))]
    assert [passes_module.pass_paths(g) for g in passes] == [45, 45]
    # The old grouping by whole chunks gave one process 60 paths and the other 30.
    assert passes_module._passes(replace(run, paths=40_000, chunk=10_000), [(c, 10_000) for c in range(4)], 2,
                                 False) == [((0, 10_000), (1, 10_000)), ((2, 10_000), (3, 10_000))]
    cut = [passes_module._replay_pass(strategy, run, variants, g, None, False)[0] for g in passes]
    alone = [passes_module._replay_chunk(strategy, run, variants, p, c, None, False)[0] for c, p in chunks]
    for key in ("monthly", "max_drawdown", "peak_margin"):
        assert np.array_equal(np.concatenate([a[key] for a in cut], axis=1),
                              np.concatenate([a[key] for a in alone], axis=1)), key
    for kind in ("buckets", "counters"):
        for name in alone[0][kind]:
            assert np.array_equal(np.concatenate([a[kind][name] for a in cut], axis=1),
                                  np.concatenate([a[kind][name] for a in alone], axis=1)), name
    # replay_many with two workers (a forked pool where the platform allows) assembles the same result.
    two = replay_module.replay(strategy=strategy, run=replace(run, workers=2), variants=variants)
    assert np.array_equal(two.monthly, np.concatenate([a["monthly"] for a in alone], axis=1))


def test_inventory_releases_its_goods_by_step_and_by_mask():
    from opl.runtime.engine.exercise import Inventory

    inv = Inventory((1, 3), 6)
    inv.add(4, np.array([[2.0, 0.0, 1.0]]), release_step=7)
    inv.add(1, np.array([[0.0, 3.0, 0.0]]), release_step=9)
    inv.add(5, np.array([[-1.0, 0.0, 0.0]]), release_step=9)  # short lots are not goods
    assert np.array_equal(inv.total(), [[2.0, 3.0, 1.0]])
    assert np.array_equal(inv.take(step=8), [[0.0, 0.0, 0.0]])
    assert np.array_equal(inv.take(step=7), [[2.0, 0.0, 1.0]])
    assert np.array_equal(inv.take(step=7), [[0.0, 0.0, 0.0]])  # released once
    assert np.array_equal(inv.total(), [[0.0, 3.0, 0.0]])
    inv.add(2, np.array([[4.0, 0.0, 0.0]]), release_step=11)
    assert np.array_equal(inv.take(mask=np.array([[True, True, False]])), [[4.0, 3.0, 0.0]])
    assert np.array_equal(inv.total(), [[0.0, 0.0, 0.0]])
    assert np.array_equal(inv.take(step=9), [[0.0, 0.0, 0.0]])
    assert not inv.holds()


def test_inventory_changes_its_total_in_place_only_where_nobody_else_holds_it():
    from opl.runtime.engine.exercise import Inventory

    inv = Inventory((1, 3), 2)
    assert not inv.holds()
    at = inv.add(0, np.array([[0.0, 2.0, 1.0]]), release_step=3)
    assert np.array_equal(at, [1, 2]) and inv.holds()
    mine = inv.total()
    inv.add(1, np.array([[5.0, 0.0, 0.0]]), release_step=4)
    assert np.array_equal(mine, [[0.0, 2.0, 1.0]]) and np.array_equal(inv.total(), [[5.0, 2.0, 1.0]])
    del mine
    at = inv.add(1, np.array([[0.0, 7.0, 3.0]]), release_step=5, within=np.array([[False, False, True]]))
    assert np.array_equal(at, [2]) and np.array_equal(inv.total(), [[5.0, 2.0, 4.0]])  # only where ``within``
    inv.take(step=5)
    whole = id(inv.total())
    inv.take(step=3)  # nobody holds the total now: changed in place
    assert id(inv.total()) == whole and np.array_equal(inv.total(), [[5.0, 0.0, 0.0]]) and inv.holds()
    inv.take(step=4)
    assert not inv.holds() and not np.any(inv.total())



class _DenseInventory:
    """The inventory as it was written first (every slot and path on every call): the oracle."""

    def __init__(self, shape, slots):
        self.lots = np.zeros((slots, *shape))
        self.release = np.full((slots, *shape), -1)

    def add(self, slot, lots, release_step):
        where = lots > 0
        self.lots[slot] = np.where(where, lots, self.lots[slot])
        self.release[slot] = np.where(where, release_step, self.release[slot])

    def take(self, step=None, mask=None):
        due = ((self.release == step) if step is not None else mask) & (self.lots > 0)
        out = np.where(due, self.lots, 0.0).sum(axis=0)
        self.lots = np.where(due, 0.0, self.lots)
        self.release = np.where(due, -1, self.release)
        return out

    def total(self):
        return self.lots.sum(axis=0)


def test_inventory_matches_the_dense_inventory_on_random_stores_releases_and_liquidations():
    # Stores overwrite earlier goods of the same slot (another release step), liquidations empty positions
    # whose release is still pending, several slots fall due at one step: every release, every total equal.
    from opl.runtime.engine.exercise import Inventory

    rng = np.random.default_rng(8)
    shape, slots = (3, 40), 7
    inv, oracle = Inventory(shape, slots), _DenseInventory(shape, slots)
    released = liquidated = 0.0
    for step in range(1, 120):
        before = inv.total()
        kept = before.copy()
        for slot in rng.choice(slots, rng.integers(0, 3), replace=False):
            lots = np.where(rng.random(shape) < 0.1, rng.integers(-3, 6, shape), 0).astype(float)
            release = step + int(rng.integers(1, 9))
            inv.add(int(slot), lots, release)
            oracle.add(int(slot), lots, release)
        if rng.random() < 0.2:
            mask = rng.random(shape) < 0.3
            sold = inv.take(mask=mask)
            assert np.array_equal(sold, oracle.take(mask=mask))
            liquidated += sold.sum()
        out = inv.take(step=step)
        assert np.array_equal(out, oracle.take(step=step))
        released += out.sum()
        assert np.array_equal(inv.total(), oracle.total())
        assert inv.holds() == bool(np.any(oracle.total()))  # counted, not scanned
        assert np.array_equal(before, kept)  # a total handed out earlier is never changed under its holder
    assert released > 100 and liquidated > 10  # releases and liquidations were exercised, not only empty steps


def test_inventory_holds_memory_only_for_the_slots_holding_goods():
    # A run's inventory has a slot per (month, leg); dense, its lots and release steps took 16 bytes per slot,
    # variant and path from the start (370 MB in a 16-size, 30,000-path pass), whatever was ever delivered.
    import tracemalloc

    from opl.runtime.engine.exercise import Inventory

    shape = (4, 10_000)
    tracemalloc.start()
    try:
        inv = Inventory(shape, 48)
        made = tracemalloc.get_traced_memory()[0]
        inv.add(5, np.where(np.arange(shape[1]) % 7 == 0, 2.0, 0.0)[None, :], release_step=9)
        inv.add(6, np.where(np.arange(shape[1]) % 5 == 0, 1.0, 0.0)[None, :], release_step=12)
        assert inv.blocks() == 2
        inv.take(mask=np.arange(shape[1]) % 2 == 0)  # sold, but slot 5's release step is still pending
        assert inv.blocks() == 2
        assert inv.take(step=9).sum() == 4 * len(range(7, shape[1], 14)) * 2.0  # the odd multiples of 7
        assert inv.blocks() == 1
        inv.take(step=12)
        assert inv.blocks() == 0 and not np.any(inv.total())
    finally:
        tracemalloc.stop()
    assert made < 4 * 8 * np.prod(shape)  # the total and its shared zeros, not 48 slots of (variants, paths)


def test_inventory_step_with_nothing_due_allocates_nothing():
    from opl.runtime.engine.exercise import Inventory

    inv = Inventory((2, 5), 3)
    first, again = inv.take(step=1), inv.take(step=2)
    assert first is again and not first.flags.writeable and not np.any(first)


def _step_books(pack_name: str, rng_seed: int, fused: bool = False, paths: int = 50, fast_costs: bool = True):
    """A step's interest, marks and previous decisions (`step._Pass._interest`, `_mark`,
    `_previous_decisions`; ``fused``: `_Pass._settle`, one kernel) on a random book: a base slot marked per
    path, a dynamic slot per variant and path, the strategy's futures, the hedge, futures from exercise
    (closed) and delivered goods; the cash rate apart from the deposit's; a liquidation decided before the
    second step on some paths; ``fast_costs`` False: the fused step leaves the close of the futures from
    exercise to `_previous_decisions`, as a traced replay does. Returns the ledger, equity, P&L and the futures
    from exercise left."""
    from types import SimpleNamespace

    from opl.runtime.engine.book import Book
    from opl.runtime.engine.exercise import AssignmentSpec
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(rng_seed)
    shape, n = (3, paths), 4
    leg = OptionLeg(is_call=False, side=-1, qty=1, american=False, strike=StrikeRule(kind="relative",
                                                                                  anchor="price", value=0))
    strat = StrategySpec(legs=(leg,), multiplier=10.0, contract_size=5.0, rate=0.02,
                                       assignment=AssignmentSpec(action="take_delivery", storage_per_day=2.0,
                                                                 funding_rate=0.03))
    run = RunSpec(process=None, pack=load_pack(pack_name), price=100.0, capital=50_000.0,
                                paths=shape[1], months=1, cash_rate=0.02, margin_rate=0.005)
    account = step_module._Pass(strat, run, tuple(Variant(size=s) for s in (1.0, 2.0, 5.0)),
                                  shape, False)
    account.fast, account.cost.fast = fused, fused and fast_costs
    price = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (shape[1], n + 1)), axis=1))
    table = np.abs(rng.normal(3.0, 1.0, (shape[1], n + 1)))
    dynamic_marks = np.abs(rng.normal(2.0, 1.0, shape))

    def remark(slot, j):
        slot.value = slot.value + dynamic_marks * j

    mo = SimpleNamespace(price=price, span=np.full(n + 1, 1.4), value=[table], delta=[table * 0.01],
                         exercise=[table > 9], gamma=None, remark=remark, n=n)
    book = Book(shape)
    base = book.slots[book.add_slot(book.add_group(leg), is_call=False, american=False, strike=np.full(shape[1], 100.0),
                                    base=0, qty=-rng.integers(0, 3, shape).astype(float))]
    base.value = table[:, 0]
    moved = book.slots[book.add_slot(book.add_group(leg), is_call=True, american=False, strike=np.full(shape, 105.0),
                                     qty=rng.integers(-2, 3, shape).astype(float))]
    moved.value = dynamic_marks.copy()
    book.futures, book.futures_index = [rng.integers(-2, 3, shape).astype(float)], [1]
    account.pending = rng.integers(-3, 4, shape).astype(float)
    account.inventory.add(0, rng.integers(0, 3, shape).astype(float), release_step=9)
    account.margin_held = np.abs(rng.normal(5_000.0, 1_000.0, shape))
    o = step_module._Open(m=0, mo=mo, book=book, d=np.ones(shape[1]), hedge=rng.integers(-4, 5, shape) * 1.0,
                            is_open=np.ones(shape, dtype=bool), month_pnl=rng.normal(0.0, 100.0, shape),
                            denominator=np.ones(shape), open_margin=np.ones(shape), month_start=account.equity.copy(),
                            alerted=np.zeros(shape, dtype=bool), assigned=np.zeros(shape, dtype=bool),
                            delivered=np.zeros(shape, dtype=bool))
    account.equity += rng.normal(0.0, 1_000.0, shape)
    liquidate = rng.random(shape) < 0.2
    for j in (1, 2):
        account.absolute_step = j
        if fused:
            account._settle(o, j)
        else:
            account._interest(o, j)
            account._mark(o, j)
            account._previous_decisions(o)
        account.pending = account.pending + rng.integers(-2, 3, shape)  # the step's exercise
        account.liquidate_next = liquidate
    return account.ledger, account.equity, o.month_pnl, account.pending


@pytest.mark.parametrize("pack_name", ["czce_cj", "sse_50etf"])
def test_step_bookings_of_the_fast_engine_are_the_references_bit_for_bit(pack_name):
    # The fused step (kernels.settle: the interest, the marks booked, the carry and the close of the futures from
    # exercise in one pass) against the numpy reference's stages on every term: an ETF's units paid for
    # (sse_50etf), a deposit rate apart from the cash rate; and with the close left to the reference's stage
    # (a traced replay books its costs stage by stage: cost.fast False).
    ref = _step_books(pack_name, 5)
    for fast in (_step_books(pack_name, 5, fused=True), _step_books(pack_name, 5, fused=True, fast_costs=False)):
        for kind in ("buckets", "counters"):
            for name in getattr(ref[0], kind):
                assert np.array_equal(getattr(fast[0], kind)[name], getattr(ref[0], kind)[name]), name
        assert all(np.array_equal(a, b) for a, b in zip(fast[1:], ref[1:]))
    assert all(np.any(ref[0].buckets[name]) for name in ("premium", "hedge", "assignment", "funding", "interest"))
    assert np.any(ref[0].counters["liquidations"]) and np.any(ref[0].counters["futures_lots"])


def test_the_fused_step_kernels_give_the_same_bits_on_the_thread_pool(monkeypatch):
    # kernels.settle and kernels.hedge_step run on blocks of paths on the thread pool from
    # kernels.base.STEP_PARALLEL_MIN elements: on paths spanning several blocks (the last one short), the
    # reference's numbers (settle) and the serial twin's (hedge_step), bit for bit.
    paths = 2 * kernels.base._BLOCK + 77
    ref = _step_books("sse_50etf", 6, paths=paths)
    monkeypatch.setattr(kernels.base, "STEP_PARALLEL_MIN", 0)
    fast = _step_books("sse_50etf", 6, fused=True, paths=paths)
    for kind in ("buckets", "counters"):
        for name in getattr(ref[0], kind):
            assert np.array_equal(getattr(fast[0], kind)[name], getattr(ref[0], kind)[name]), name
    assert all(np.array_equal(a, b) for a, b in zip(fast[1:], ref[1:]))
    rng = np.random.default_rng(3)
    shape = (3, paths)
    book, hedge = _random_book(rng, shape, 3)
    held = book.held()
    inputs = dict(qtys=[s.qty for s in held], deltas=[s.delta for s in held], static=book.static, hedge=hedge,
                  d=np.sign(rng.normal(size=paths)), active=rng.random(shape) < 0.9, keep=0.1, band=0.05,
                  lots_per_option=1.0, fee=np.array([1.0, 2.0, 3.0]))
    twins = []
    for parallel_min in (2**62, 0):
        monkeypatch.setattr(kernels.base, "STEP_PARALLEL_MIN", parallel_min)
        books = [np.zeros(shape), np.full(shape, 1e6), np.zeros(shape), np.zeros(shape, dtype=np.int64),
                 np.zeros(shape, dtype=np.int64)]
        new = kernels.hedge_step(**inputs, costs=books[0], equity=books[1], month_pnl=books[2],
                                 lots_traded=books[3], trades=books[4])
        twins.append([new, *books])
    assert all(np.array_equal(a, b) for a, b in zip(*twins)) and np.any(twins[0][4])


def _playbook_action(kind: str):
    from opl.runtime.engine.adjust import Action
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule

    put = OptionLeg(is_call=False, side=1, qty=1, american=True, strike=StrikeRule(kind="relative", value=-300.0))
    call = OptionLeg(is_call=True, side=-1, qty=1, american=True, strike=StrikeRule(kind="relative", value=500.0))
    return {"roll_nearest_term": Action(kind="roll_nearest_term", text=kind),
            "roll": Action(kind="roll", text=kind, leg=0, amount=60.0),
            "roll_tenor": Action(kind="roll_tenor", text=kind, leg=1, amount=30.0),
            "shift_strike": Action(kind="shift_strike", text=kind, leg=0, amount=-2.0, percent=True),
            "scale_qty": Action(kind="scale_qty", text=kind, leg=1, amount=2.0),
            "remove_leg": Action(kind="remove_leg", text=kind, leg=0),
            "close_leg": Action(kind="close", text=kind, leg=1),
            "close": Action(kind="close", text=kind),
            "add_leg": Action(kind="add_leg", text=kind, new_leg=put),
            "replace_leg": Action(kind="replace_leg", text=kind, leg=1, new_leg=call),
            "hedge_gamma": Action(kind="hedge_gamma", text=kind, amount=0.02),
            "delta_neutralise": Action(kind="delta_neutralise", text=kind, amount=0.1),
            "hedge_delta": Action(kind="hedge", text=kind, greek="delta"),
            "hedge_gamma_greek": Action(kind="hedge", text=kind, greek="gamma")}[kind]


@pytest.mark.parametrize("abort", [None, "additional_margin(%) > 3"])
@pytest.mark.parametrize("kind", ["roll_nearest_term", "roll", "roll_tenor", "shift_strike", "scale_qty", "remove_leg",
                                  "close_leg", "close", "add_leg", "replace_leg", "hedge_gamma", "delta_neutralise",
                                  "hedge_delta", "hedge_gamma_greek"])
def test_every_playbook_action_alone_and_its_abort_check_match_the_reference(sim, cj, kind, abort):
    """Each action (then a roll after it: the second action's margin before it is the first's after it on
    the fast engine) played on rounds of a few paths by the fast engine, against the reference on every path."""
    from opl.runtime.engine.adjust import Action, AdjustSpec
    from opl.runtime.engine.processes import ProcessSpec
    from opl.runtime.engine.triggers import compile_condition
    from opl.simulation.conditionforms import lower_condition
    import opl

    def condition(text):
        doc = opl.check(f"opl-lang 1.0\nS = short Option(Call, 100, 30d)\nadjust_when {text}\n").document
        return compile_condition(lower_condition(doc.adjust.when))

    # Lopsided and near the money, so that the hedges find delta and gamma to trade.
    legs = [sim.option(call=True, offset=100.0, qty=4, american=True),
            sim.option(call=False, offset=-100.0, qty=2, american=True)]
    spec = AdjustSpec(when=condition("price_retrace(>1%) or price_retrace(<-1%)"), cooldown_days=0.0,
                      playbook=(_playbook_action(kind), Action(kind="roll_nearest_term", text="roll_nearest_term()")),
                      abort_if=condition(abort) if abort else None)
    strat = sim.strategy(legs, adjust=spec, greeks=True, leg_numbers=(0, 1), guard_days=2.0)
    run = sim.run(ProcessSpec(vol=0.3), cj, paths=150, months=2, capital=2e5, option_ticks=1.0, futures_ticks=1.0)
    variants = (Variant(size=1), Variant(size=3), Variant(size=1, fee_factor=2.0, margin_factor=1.5))
    fast = engine_replay(strategy=strat, run=replace(run, engine="fast"), variants=variants)
    ref = engine_replay(strategy=strat, run=replace(run, engine="reference"), variants=variants)
    assert_same_ledgers(fast, ref)
    decided = ref.counters["adjust_done_0"].sum() + (ref.counters["adjust_aborted_0"].sum() if abort else 0)
    assert decided > 0, kind  # the action traded (or, with the check, was refused) somewhere


def _same_result(a, b) -> bool:
    """Whether two replay results are equal bit for bit: every per-path array of every variant."""
    arrays = [(a.monthly, b.monthly), (a.max_drawdown, b.max_drawdown), (a.peak_margin, b.peak_margin)]
    arrays += [(a.buckets[k], b.buckets[k]) for k in a.buckets] + [(a.counters[k], b.counters[k]) for k in a.counters]
    return a.buckets.keys() == b.buckets.keys() and a.counters.keys() == b.counters.keys() \
        and a.signal_hits == b.signal_hits and all(np.array_equal(x, y) for x, y in arrays)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_job_pickled_and_unpickled_replays_the_same_numbers(tmp_path, case):
    # A strategy's exits, guards and adjustment conditions pickle as the typed rules they test and compile again
    # where they are unpickled (`triggers.CompiledCondition`): every job of every case travels whole — to a
    # worker that outlives a pool, to a cluster — and replays there bit for bit as here.
    import pickle

    from opl.lang.frontend import check_path
    from opl.runtime.engine.triggers import CompiledCondition

    text = JUJUBE.read_text(encoding="utf-8")
    for old, new in CASES[case]:
        text = text.replace(old, new)
    path = tmp_path / f"{case}.opl"
    path.write_text(text, encoding="utf-8")
    prepared = facade.prepare(check_path(path), facade.RunSettings(
        paths=40, overrides=("experiment.horizon=2", "experiment.sizes=[1,5]", "adjust.cooldown=0",
                             "sim.guard_days=0", "sim.workers=1")))
    jobs = [prepared.sweep_job(), *prepared.scenario_jobs(5.0).jobs]
    for strategy, run, variants in jobs:
        copy = pickle.loads(pickle.dumps((strategy, run, variants)))
        conditions = [*strategy.exit_triggers, *(g.test for g in strategy.guards)]
        conditions += [strategy.adjust.when] if strategy.adjust is not None else []
        assert conditions and all(isinstance(c, CompiledCondition) for c in conditions)
        assert _same_result(replay_module.replay(strategy=copy[0], run=copy[1], variants=copy[2]),
                            replay_module.replay(strategy=strategy, run=run, variants=variants))


def test_jobs_replayed_side_by_side_by_forked_workers_are_each_job_alone_bit_for_bit(monkeypatch):
    # The sweep and the scenarios of the jujube file as independent jobs: two forked workers replay them side
    # by side, in whatever order they finish; every number is the one each job gives alone in this process.
    from opl.lang.frontend import check_path

    prepared = facade.prepare(check_path(JUJUBE), facade.RunSettings(
        paths=60, overrides=("experiment.horizon=2", "experiment.sizes=[1,5]", "sim.workers=2")))
    jobs = [prepared.sweep_job(), *prepared.scenario_jobs(5.0).jobs]
    assert len(jobs) == 6  # the sweep, the cost pass, four market scenarios
    pools = []
    real = passes_module._pooled
    monkeypatch.setattr(passes_module, "_pooled", lambda jobs, tasks, workers, progress, *beside:
                        pools.append(workers) or real(jobs, tasks, workers, progress, *beside))
    ticks = []
    together = replay_module.replay_many(jobs, progress=ticks.append)
    assert pools == [2] and sum(ticks) == 6 * 60 * 2  # every path-month of every job counted
    for (strategy, run, variants), pooled in zip(jobs, together):
        alone = replay_module.replay(strategy=strategy, run=replace(run, workers=1), variants=variants)
        assert _same_result(pooled, alone)


@pytest.mark.parametrize("workers", [1, 2])
def test_months_and_marks_read_from_the_store_give_the_numbers_made_afresh(workers):
    # The jujube file (the adjustment module re-marks and trades other series): a replay whose months and marks
    # come from the store (made by the same replay before; inherited by forked workers) is the replay without
    # a store, bit for bit — nothing the replay does writes into what the store holds.
    from opl.lang.frontend import check_path
    from opl.runtime.engine.monthstore import MonthStore, sharing

    prepared = facade.prepare(check_path(JUJUBE), facade.RunSettings(
        paths=60, overrides=("experiment.horizon=2", "experiment.sizes=[1,5]", f"sim.workers={workers}")))
    jobs = [prepared.sweep_job(), *prepared.scenario_jobs(5.0).jobs]
    fresh = replay_module.replay_many(jobs)
    store = MonthStore()
    with sharing(store):
        replay_module.replay(strategy=jobs[0][0], run=jobs[0][1], variants=jobs[0][2])  # fills the store here
        assert store.misses and not store.hits
        stored = replay_module.replay_many(jobs)
    if workers == 1:  # (forked workers count their reads in their own copy)
        assert store.hits >= 2 * 2  # the sweep's and the cost pass's months and marks, at least
    assert all(_same_result(a, b) for a, b in zip(fresh, stored))


def test_a_stored_month_s_prices_and_volatilities_are_read_where_they_lie():
    # Every replay reading a stored month copied its prices and volatilities (read-only in the store, and the
    # kernels took writable arrays): 1.7% of the main job's CPU. The kernels now take them read-only.
    from opl.lang.frontend import check_path
    from opl.runtime.engine.monthstore import MonthStore, sharing

    prepared = facade.prepare(check_path(JUJUBE), facade.RunSettings(
        paths=40, overrides=("experiment.horizon=2", "experiment.sizes=[1]")))
    strategy, run, variants = prepared.sweep_job()
    [group] = passes_module._passes(run, passes_module._chunks(run), 1, False)
    store = MonthStore()
    with sharing(store):
        months = _StoredMonths(run, strategy, group)
        for _ in range(run.months):
            months.next_month()
        again = _StoredMonths(run, strategy, group)
        mp = again.next_month()
    assert again.stored and not mp.price.flags.writeable
    marker = AmericanMarker(american=True, rate=strategy.rate, exact=run.exact_american)
    euro = AmericanMarker(american=False, rate=strategy.rate)
    month = _Month(run, strategy, mp, marker, euro)
    assert np.shares_memory(month.by_step[0], mp.price) and np.shares_memory(month.by_step[1], mp.vol)
    for series in month.series:
        assert all(np.shares_memory(x, y) for x, y in zip(series.inputs, (mp.price, mp.vol)))
    assert np.shares_memory(step_module._price_rows(month), mp.price)
    # and they mark what a month of writable copies marks, bit for bit
    copied = _Month(run, strategy, type(mp)(*(np.array(x) for x in mp)), marker, euro)
    month.mark_all()
    copied.mark_all()
    for a, b in zip(month.series, copied.series):
        for name in ("value", "delta", "gamma", "exercise"):
            assert np.array_equal(getattr(a, name), getattr(b, name))


def test_every_kernel_takes_a_month_s_prices_and_volatilities_read_only(monkeypatch):
    # One compiled type per argument: where a round's or a quote's prices reached the kernels writable while a
    # stored month's were read-only, a fresh cache compiled the marks' and the margin's inner kernels twice
    # (the adjustment round's compile 17 -> 37 s).
    import opl.runtime.engine.adjustround as adjustround
    from opl.lang.frontend import check_path

    seen = []
    real_round = kernels.adjust.round_pass

    def round_pass(**kw):
        seen.append((kw["price"].flags.writeable, kw["vol"].flags.writeable))
        return real_round(**kw)

    monkeypatch.setattr(kernels.adjust, "round_pass", round_pass)
    prepared = facade.prepare(check_path(JUJUBE), facade.RunSettings(
        paths=300, overrides=("experiment.horizon=4", "experiment.sizes=[1]", "sim.workers=1")))
    strategy, run, variants = prepared.sweep_job()
    replay_module.replay_many([(strategy, run, variants)])
    assert seen and all(flags == (False, False) for flags in seen)
    # the proposals' quotes, on a month's own (writable) arrays
    [group] = passes_module._passes(run, passes_module._chunks(run), 1, False)
    mp = _StoredMonths(run, strategy, group).next_month()
    assert mp.price.flags.writeable
    month = _Month(run, strategy, mp, AmericanMarker(american=True, rate=strategy.rate),
                   AmericanMarker(american=False, rate=strategy.rate))
    quote = adjustround._quote_inputs(month, 3)(True, True, 0.0)
    assert not quote[0].flags.writeable and not quote[1].flags.writeable
    assert np.array_equal(quote[0], mp.price[:, 3]) and np.array_equal(quote[1], mp.vol[:, 3])


def test_a_kernel_s_input_is_read_only_without_a_copy_and_leaves_the_callers_array_alone():
    from opl.runtime.engine.kernels.base import _input

    x = np.arange(6.0).reshape(2, 3)
    view = _input(x, (2, 3))
    assert np.shares_memory(view, x) and not view.flags.writeable and x.flags.writeable
    frozen = x.copy()
    frozen.flags.writeable = False
    assert _input(frozen, (2, 3)) is frozen
    column = _input(x[:, 1], (2,))  # strided: copied, C-ordered, read-only
    assert column.flags.c_contiguous and not column.flags.writeable and column.tolist() == [1.0, 4.0]
    assert _input(2.5, (3,)).tolist() == [2.5, 2.5, 2.5]


def _resident_pages(x: np.ndarray) -> tuple[int, int]:
    """(pages of ``x``'s buffer in memory, pages in all), by ``mincore``."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    start = x.ctypes.data // page * page
    pages = (x.ctypes.data + x.nbytes - start + page - 1) // page
    vec = (ctypes.c_ubyte * pages)()
    assert libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(pages * page), vec) == 0, ctypes.get_errno()
    return sum(v & 1 for v in vec), pages


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="mincore: Linux")
def test_the_ledger_s_counters_are_zeros_written_not_pages_left_to_the_first_write():
    # A kernel's masked store into a page never written (numpy.zeros of a large array maps none) takes a
    # microcode assist even where its mask is all false: the step's requirement counted margin calls so.
    from opl.runtime.engine.ledger import Ledger, resident_zeros

    lazy = np.zeros((5, 1_200_000), dtype=np.int64)  # 48 MB: above glibc's largest threshold, mapped untouched
    assert _resident_pages(lazy)[0] <= 1  # (the allocator's header is written on the first)
    written = resident_zeros((5, 1_200_000), np.int64)
    assert written.dtype == np.int64 and not written.any()
    resident, pages = _resident_pages(written)
    assert resident == pages
    ledger = Ledger((3, 700_000), 2, extra=("rolls",))
    for name, counter in ledger.counters.items():
        resident, pages = _resident_pages(counter)
        assert resident == pages, name


def test_the_ledger_and_its_numpy_only_importers_load_no_numba():
    # The metrics (every report), the backtest's market and the data import read the ledger's buckets and tick
    # sizes; importing numba there (~0.3 s) moved it out of the loop's data stage, where it overlaps the tests.
    import subprocess
    import sys

    code = ("import sys, opl.runtime.engine.ledger, opl.runtime.results.metrics, opl.backtesting.market; "
            "print('numba' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_a_pass_keeps_its_months_only_for_a_store_that_keeps_them():
    # Without a store (opl simulate) or with a forked worker's reader, a pass's months were kept to its end
    # for nothing: ~130 MB of prices and volatilities at 30,000 paths and twelve months.
    from opl.lang.frontend import check_path
    from opl.runtime.engine.monthstore import MonthStore, sharing

    prepared = facade.prepare(check_path(JUJUBE), facade.RunSettings(
        paths=40, overrides=("experiment.horizon=3", "experiment.sizes=[1]")))
    strategy, run, _ = prepared.sweep_job()
    [group] = passes_module._passes(run, passes_module._chunks(run), 1, False)

    def read(store):
        with sharing(store):
            months = _StoredMonths(run, strategy, group)
            drawn = [months.next_month() for _ in range(run.months)]
        return months, drawn

    alone, drawn = read(None)
    store = MonthStore()
    kept, stored = read(store)
    reader, _ = read(MonthStore().reader())
    assert alone.months == [] and reader.months == [] and len(store) == 1
    again, read_back = read(store)
    assert again.stored and all(np.array_equal(a, b) for x, y, z in zip(drawn, stored, read_back)
                                for a, b in ((x.price, y.price), (x.price, z.price), (x.vol, z.vol)))


_LOADED_KERNELS = """
import os, sys
from opl.lang.frontend import check_path
from opl.runtime.engine import kernels, passes
from opl.simulation.run import RunSettings, prepare

def loaded():  # the kernels with a compiled signature (one per argument types: tuples of n series are n types)
    modules = (kernels.base, kernels.marks, kernels.margin, kernels.steps, kernels.adjust, kernels.paths)
    return len({id(v) for m in modules for v in vars(m).values()  # a kernel imported elsewhere counted once
                if hasattr(v, "signatures") and hasattr(v, "py_func") and v.signatures})

prepared = prepare(check_path(sys.argv[1]), RunSettings(paths=60, overrides=("experiment.horizon=2",)))
strategy, run, variants = prepared.sweep_job()
passes._warm_steps(strategy, run, variants)
warm = loaded()
read, write = os.pipe()
if os.fork() == 0:  # a pool's worker: serial twins on a pass of the run
    kernels.base.serial_only()
    [group] = passes._passes(run, passes._chunks(run), 1, False)
    passes._replay_pass(strategy, run, variants, group, None, False)
    os.write(write, str(loaded()).encode())
    os._exit(0)
os.wait()
print(warm, os.read(read, 64).decode())
"""


def test_forked_workers_inherit_the_step_kernels_loaded_once_in_the_parent():
    # Each pool's workers loaded every step kernel's serial twin from numba's cache themselves; the parent now
    # loads them once (a replay of a few paths) before its first pool, and the workers inherit them.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _LOADED_KERNELS, str(JUJUBE)], capture_output=True, text=True,
                          check=True)
    warm, in_worker = map(int, done.stdout.split())
    assert warm > 10 and in_worker == warm


_RARE_KERNELS = """
import collections, os, sys
from opl.lang.frontend import check_path
from opl.runtime.engine import kernels, passes, rarekernels
from opl.simulation.run import RunSettings, prepare

RARE = {"_exercise": kernels.steps, "_book_sold": kernels.steps, "_copy_known": kernels.marks}
compiled = {name: getattr(module, name) for name, module in RARE.items()}
calls = collections.Counter()

def counted(name):
    def call(*args):
        calls[name] += 1
        return compiled[name](*args)
    return call

def signatures():
    return sum(len(kernel.signatures) for kernel in compiled.values())

def worker():  # a pool's worker: serial twins on the scenarios' lockstep passes (a short assigned, goods sold,
    read, write = os.pipe()  # a hit_rate month copying its sibling's marks); how many signatures it ends with
    if os.fork() == 0:
        kernels.base.serial_only()
        plans = passes._job_plans(jobs, 1)
        for indices, group in passes._lockstep_tasks(jobs, plans, 1):
            passes._replay_lockstep([jobs[i] for i in indices], group, None)
        os.write(write, f"{signatures()},{min(calls[name] for name in RARE)}".encode())
        os._exit(0)
    os.wait()
    return os.read(read, 64).decode()

for name, module in RARE.items():
    setattr(module, name, counted(name))
prepared = prepare(check_path(sys.argv[1]), RunSettings(paths=200, overrides=("experiment.horizon=2",)))
jobs = prepared.scenario_jobs(1.0).jobs
alone = worker()
before = signatures()
rarekernels.load(jobs)
print(alone, before, signatures(), worker())
"""


def test_forked_workers_inherit_the_kernels_a_few_paths_rarely_reach_loaded_once_in_the_parent():
    # The main job's every worker loaded the slot's exercise and the goods' release kernels itself (and some the
    # marks' copy between sibling months): `_warm_steps`' few paths do not reach them. `rarekernels.load` loads
    # them in the parent; a worker forked before it loads the three itself, one forked after loads none.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _RARE_KERNELS, str(JUJUBE)], capture_output=True, text=True,
                          check=True)
    alone, before, loaded, inherited = done.stdout.split()
    (own, reached), (kept, reached_too) = (map(int, worker.split(",")) for worker in (alone, inherited))
    assert own == 3 and reached > 0  # each kernel called: the worker alone loaded all three itself
    assert (int(before), int(loaded)) == (0, 3)
    assert kept == 3 and reached_too > 0  # called again, and not one signature more than the parent's


def test_the_rare_kernels_are_loaded_once_and_only_for_jobs_that_may_call_them(monkeypatch):
    from opl.runtime.engine import rarekernels
    from opl.runtime.engine.exercise import AssignmentSpec

    made = []
    monkeypatch.setattr(rarekernels, "_LOADED", set())
    for name in ("_exercise", "_book_sold", "_copy_known"):
        monkeypatch.setattr(rarekernels, name, lambda name=name: made.append(name))
    strategy, run = _jujube_run(paths=60, months=1)
    assert strategy.assignment.action == "take_delivery"
    job = (strategy, run, VARIANTS)
    rarekernels.load([(strategy, replace(run, engine="reference"), VARIANTS)] * 2)
    assert made == []  # the reference engine calls no kernel
    rarekernels.load([(replace(strategy, assignment=AssignmentSpec()), run, VARIANTS)])
    assert made == ["_exercise"]  # nothing taken on delivery, one job: no goods sold, no sibling months
    rarekernels.load([job])
    assert made == ["_exercise", "_book_sold"]
    rarekernels.load([job, job])
    rarekernels.load([job, job])
    assert made == ["_exercise", "_book_sold", "_copy_known"]


def test_the_steps_small_kernels_are_their_numpy_formulas():
    # The early-assignment test and the margin's futures lots (step._Pass._exercised, _Margins) on random
    # books: exercise flags per path (a month's column, strided) or per variant and path.
    rng = np.random.default_rng(2)
    shape = (3, 40)
    for _ in range(30):
        qty = rng.integers(-2, 3, shape).astype(float)
        table = rng.random((shape[1], 5)) < 0.05
        cases = (table[:, 2], rng.random(shape) < 0.05, np.zeros(shape[1], dtype=bool), np.bool_(True))
        for flags in cases:
            assert kernels.any_short_exercised(qty, flags) == bool(np.any((qty < 0) & flags))
        # Several slots in one call (_Pass._exercisable): each slot's answer.
        lots = [qty, -np.abs(qty), np.abs(qty), qty]
        assert list(kernels.shorts_exercised(lots, cases)) == [bool(np.any((q < 0) & f)) for q, f in zip(lots, cases)]
        assert kernels.shorts_exercised([], []).shape == (0,)
        static, hedge, other = (rng.integers(-3, 4, shape).astype(float) for _ in range(3))
        assert np.array_equal(kernels.futures_lots(static, hedge, other),
                              np.abs(static) + np.abs(hedge) + np.abs(other))


def test_goods_sold_at_their_release_are_booked_as_the_stages_book_them():
    # kernels.book_sold (the goods released at a step, _Pass._previous_decisions on the fast engine) against the
    # ledger's numpy bookings it replaces: their value into assignment, the futures' close into costs, both into
    # the equity, bit for bit; nothing sold books nothing.
    from opl.runtime.engine.ledger import Costs, Ledger
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(11)
    shape = (3, 50)
    pack = load_pack("czce_cj")
    cost = positions_module._CostArrays([Costs.from_pack(pack, price=10_000.0, premium=100.0, fee_factor=f,
                                                      slippage_factor=f) for f in (1.0, 2.0, 3.0)])
    for sold in (np.where(rng.random(shape) < 0.2, rng.integers(1, 4, shape), 0).astype(float), np.zeros(shape)):
        start = 1e6 + rng.normal(0.0, 1e4, shape)
        books = []
        for compiled in (False, True):
            ledger, equity = Ledger(shape, 1), start.copy()
            ledger.buckets["assignment"][:] = rng.normal(0.0, 100.0, shape) if not books else books[0][2]
            before = ledger.buckets["assignment"].copy()
            if compiled:
                kernels.book_sold(sold, cs=5.0, basis=-20.0, fee=cost.futures_close_fee, buckets=ledger.buckets,
                                  equity=equity)
            else:
                ledger.book("assignment", sold * 5.0 * -20.0, equity)
                ledger.cost(cost.futures(sold, closing=True), equity)
            books.append((equity, ledger.buckets["costs"], before, ledger.buckets["assignment"]))
        (e0, c0, _, a0), (e1, c1, _, a1) = books
        assert np.array_equal(e0, e1) and np.array_equal(c0, c1) and np.array_equal(a0, a1)
        assert np.any(e1 != start) == bool(np.any(sold))


def test_the_requirement_and_the_exercise_write_into_the_arrays_given():
    # The step's requirement into the last step's arrays (_Pass._account_arrays) and an exercise into the slot's
    # lots and the pass's futures from exercise (in_place): the numbers of new arrays, in the arrays given.
    rng = np.random.default_rng(12)
    shape = (2, 30)
    book, hedge = _random_book(rng, shape, 3, futures=1)
    from opl.runtime.market.rules import load_pack

    rule = kernels.MarginRule.of([load_pack("czce_cj")] * 2)
    price = 10_000.0 * np.exp(rng.normal(0.0, 0.05, shape[1]))
    runs, start = [], 1e6 - 9.9e5 * (rng.random(shape) < 0.3)
    for into in (None, (np.full(shape, np.nan), np.ones(shape, dtype=bool))):
        equity = start.copy()
        calls, peak_margin, peak, max_dd = np.zeros(shape, np.int64), np.zeros(shape), np.full(shape, 1e6), np.zeros(shape)
        out = kernels.requirement_account(rule, positions_module._holdings(book), static=book.static, hedge=hedge,
                                          other=np.zeros(shape), price=price, equity=equity, capital=1e6,
                                          margin_buffer=0.2, calls=calls, peak_margin=peak_margin, peak=peak,
                                          max_dd=max_dd, into=into)
        if into is not None:
            assert out[0] is into[0] and out[1] is into[1]
        runs.append(out)
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][1].any() and not runs[0][1].all()
    s = book.slots[0]
    hit = rng.random(shape) < 0.4
    results, waiting = [], rng.integers(-2, 3, shape).astype(float)
    for in_place in (False, True):
        qty, pending = s.qty.copy(), waiting.copy()
        buckets = {"assignment": np.zeros(shape), "costs": np.zeros(shape)}
        equity, pnl, assigned = np.full(shape, 1e6), np.zeros(shape), np.zeros(shape, dtype=bool)
        left, futures, goods = kernels.exercise(
            qty=qty, hit=hit, phi=s.phi, lots_per_option=1.0, price=price, strike=s.strike, value=s.value, mult=5.0,
            fee_assigned=np.ones(2), fee_exercised=np.full(2, 2.0), take_delivery=True, buckets=buckets, equity=equity,
            month_pnl=pnl, assigned=assigned, pending=pending, in_place=in_place)
        if in_place:
            assert left is qty and futures is pending
        results.append([left, futures, goods, equity, pnl, assigned, *buckets.values()])
    assert all(np.array_equal(a, b) for a, b in zip(*results))


def test_a_slot_s_compiled_trade_is_the_reference_s_bit_for_bit():
    """`kernels.adjust.trade_slot` against `AdjustEngine._trade_slot` on random lots, proposals and restrikes
    with fees that differ by variant and side: the same lots, bookings and counts, bit for bit."""
    from types import SimpleNamespace

    from opl.runtime.engine.adjust import AdjustEngine
    from opl.runtime.engine.ledger import Ledger

    rng = np.random.default_rng(11)
    shape = (3, 400)
    old = rng.integers(-4, 5, shape).astype(float)
    proposed = np.where(rng.random(shape) < 0.3, old, rng.integers(-6, 7, shape).astype(float))
    go = rng.random(shape) < 0.7
    restruck = go & (rng.random(shape) < 0.3)
    fees = {name: rng.uniform(1.0, 9.0, (3, 1)) for name in ("option_close", "option_open_short", "option_open_long",
                                                              "option_slippage")}
    cost = positions_module._CostArrays.__new__(positions_module._CostArrays)
    vars(cost).update(fees)
    start = rng.normal(0.0, 1e4, shape)
    ref_ledger, ref_equity, ref_pnl = Ledger(shape, 1), start.copy(), start * 0.5
    desk = round_module._desk(SimpleNamespace(guards=(), hedge=None, tenor_days=30.0), None, np.zeros(shape),
                               SimpleNamespace(price=np.zeros((shape[1], 1))), 0, None, None, 1.0,
                               SimpleNamespace(capital=1e6), cost, ref_ledger, ref_equity, ref_pnl, None,
                               np.zeros(shape), SimpleNamespace(total=lambda: np.zeros(shape)), None)
    ref = AdjustEngine._trade_slot(desk, old, np.where(go, proposed, old), restruck)
    ledger, equity, pnl = Ledger(shape, 1), start.copy(), start * 0.5
    got = round_module._slot_trader(cost, ledger, equity, pnl)(old, proposed, go, restruck)
    assert np.array_equal(got, ref)
    assert np.array_equal(ledger.buckets["adjustments"], ref_ledger.buckets["adjustments"])
    assert np.array_equal(equity, ref_equity) and np.array_equal(pnl, ref_pnl)
    assert np.array_equal(ledger.counters["option_lots"], ref_ledger.counters["option_lots"])
    assert ref_ledger.counters["option_lots"].sum() > 0


def _assigned_books(fast: bool, policy: str):
    """`step._Pass._assign` before and at expiry on a random book of American legs (a base slot marked per
    path, a dynamic slot per variant and path): the ledger, equity, P&L, futures from exercise, goods, lots."""
    from types import SimpleNamespace

    from opl.runtime.engine.book import Book
    from opl.runtime.engine.exercise import AssignmentSpec
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(9)
    shape, n = (3, 60), 3
    leg = OptionLeg(is_call=False, side=-1, qty=1, american=True, strike=StrikeRule(kind="relative",
                                                                                 anchor="price", value=0))
    strat = StrategySpec(legs=(leg,), multiplier=10.0, contract_size=5.0, rate=0.02,
                                       assignment=AssignmentSpec(action=policy, storage_per_day=2.0))
    run = RunSpec(process=None, pack=load_pack("czce_cj"), price=100.0, capital=50_000.0,
                                paths=shape[1], months=1)
    account = step_module._Pass(strat, run, tuple(Variant(size=s, fee_factor=s)
                                                    for s in (1.0, 2.0, 5.0)), shape, False)
    account.fast = account.cost.fast = fast
    price = 100.0 * np.exp(rng.normal(0.0, 0.05, (shape[1], n + 1)))
    mo = SimpleNamespace(price=price, n=n, step_days=1.0)
    book = Book(shape)
    for is_call, strike in ((False, np.full(shape[1], 100.0)), (True, rng.choice([95.0, 100.0, 105.0], shape))):
        slot = book.slots[book.add_slot(book.add_group(leg), is_call=is_call, american=True, strike=strike,
                                        base=0 if not is_call else None,
                                        qty=rng.integers(-3, 3, shape).astype(float))]
        slot.value = np.abs(rng.normal(5.0, 2.0, shape[1] if not is_call else shape))
        slot.exercise = rng.random(shape[1] if not is_call else shape) < 0.3
    account.pending = rng.integers(-2, 3, shape).astype(float)
    o = step_module._Open(m=0, mo=mo, book=book, d=np.ones(shape[1]), hedge=np.zeros(shape),
                            is_open=np.ones(shape, dtype=bool), month_pnl=np.zeros(shape),
                            denominator=np.ones(shape), open_margin=np.ones(shape), month_start=account.equity.copy(),
                            alerted=np.zeros(shape, dtype=bool), assigned=np.zeros(shape, dtype=bool),
                            delivered=np.zeros(shape, dtype=bool))
    for j in (1, n):
        account.absolute_step += 1
        account._assign(o, j)
    return (account.ledger.buckets, account.equity, o.month_pnl, account.pending, account.inventory.total(),
            o.assigned, o.delivered, [s.qty for s in book.slots])


@pytest.mark.parametrize("policy", ["take_delivery", "hedge_and_close"])
def test_exercise_and_assignment_of_the_fast_engine_are_the_references_bit_for_bit(policy):
    fast, ref = _assigned_books(True, policy), _assigned_books(False, policy)
    for name in ref[0]:
        assert np.array_equal(fast[0][name], ref[0][name]), name
    for got, want in zip(fast[1:], ref[1:]):
        assert all(np.array_equal(g, w) for g, w in zip(got, want)) if isinstance(want, list) else \
            np.array_equal(got, want)
    assert np.any(ref[0]["assignment"]) and np.any(ref[5]) and (policy != "take_delivery" or np.any(ref[4]))




def test_a_lone_sweep_under_a_store_is_split_by_paths_and_gives_the_whole_bit_for_bit(monkeypatch):
    # A loop candidate's sweep (one pass of paths, several sizes): under a month store its months and marks
    # are made here once and two forked workers replay every size on half the paths each, reading their
    # paths of the stored months and marks; the same numbers as one process.
    from opl.lang.frontend import check_path
    from opl.runtime.engine.monthstore import MonthStore, sharing

    prepared = facade.prepare(check_path(JUJUBE), facade.RunSettings(
        paths=60, overrides=("experiment.horizon=2", "experiment.sizes=[1,2,5,10,20]", "sim.workers=2")))
    strategy, run, variants = prepared.sweep_job()
    whole = replay_module.replay(strategy=strategy, run=replace(run, workers=1), variants=variants)
    tasks = []
    real_pooled = passes_module._pooled
    monkeypatch.setattr(passes_module, "_pooled", lambda jobs, t, *a: tasks.extend(t) or real_pooled(jobs, t, *a))
    store, ticks = MonthStore(), []
    with sharing(store):
        split = replay_module.replay(strategy=strategy, run=run, variants=variants, progress=ticks.append)
    assert [group for _, group in tasks] == [((0, 30, 0),), ((0, 30, 30),)]
    assert len(store) == 1 + 2  # the months and each month's marks, made here; the pieces keep nothing
    assert sum(ticks) == 60 * 2  # every path-month counted once
    assert split.variants == variants and _same_result(split, whole)
    # What a worker's piece reads: its paths of the stored months, and their marks copied, every one made.
    marker = AmericanMarker(american=True, rate=strategy.rate)
    euro = AmericanMarker(american=False, rate=strategy.rate)
    with sharing(store.reader()):
        chunk = _StoredMonths(run, strategy, ((0, 60),))
        piece = _StoredMonths(run, strategy, ((0, 30, 30),))
        assert chunk.stored and piece.stored and piece.cut is not None
        for m in range(run.months):
            mine, theirs = piece.next_month(), chunk.next_month()
            assert np.array_equal(mine.price, theirs.price[30:]) and np.array_equal(mine.signal, theirs.signal[30:])
            cut, full = piece.marked(m, mine, marker, euro), chunk.marked(m, theirs, marker, euro)
            assert all(s.complete for s in cut.series)
            for a, b in zip(cut.series, full.series):
                assert all(np.array_equal(getattr(a, n), getattr(b, n)[30:]) for n in ("value", "delta", "gamma",
                                                                                        "exercise"))
def _given_months_replay(engine: str, pack_name: str):
    """A replay of given months (the backtest's way in: `RunSpec.source`), the last one cut before expiry: a
    short American strangle, hedged, assigned into goods, stopped out, with interest and a deposit rate."""
    from opl.runtime.engine.exercise import AssignmentSpec
    from opl.runtime.engine.hedging import HedgeSpec
    from opl.runtime.engine.historical import GivenMonths
    from opl.runtime.engine.legspec import Levels, OptionLeg, StrikeRule
    from opl.runtime.engine.processes import JumpParams, PathGenerator, ProcessSpec, RegimeParams
    from opl.runtime.market.rules import load_pack
    from opl.runtime.engine.triggers import compile_condition
    from opl.simulation.conditionforms import lower_condition
    import opl

    doc = opl.check("opl-lang 1.0\nS = short Option(Put, 100, 30d)\nexit_triggers [ pnl_percent(<-40%) ]\n").document
    legs = tuple(OptionLeg(is_call=is_call, side=-1, qty=1, american=True,
                           strike=StrikeRule(kind="relative", anchor=anchor, value=0))
                 for is_call, anchor in ((False, "support"), (True, "resistance")))
    pack = load_pack(pack_name)
    price = 10_000.0 if pack.underlying.kind == "future" else 3.0
    strat = StrategySpec(
        legs=legs, multiplier=pack.option.multiplier, contract_size=pack.underlying.contract_size, rate=0.02,
        hedge=HedgeSpec(every=1, band=0.05, keep=0.1, along="direction"),
        assignment=AssignmentSpec(action="take_delivery", storage_per_day=0.001 * price, funding_rate=0.03),
        exit_triggers=(compile_condition(lower_condition(doc.exit.triggers[0])),), margin_buffer=0.2,
        levels=Levels(support_width=0.03, resistance_width=0.03))
    process = ProcessSpec(vol=0.35, jump=JumpParams(intensity=8.0, std=0.08), regime=RegimeParams(hit_rate=0.9))
    run = RunSpec(process=process, pack=pack, price=price,
                                capital=200.0 * price * pack.underlying.contract_size, paths=30, months=3, seed=4,
                                chunk=30, engine="reference", cash_rate=0.02, margin_rate=0.01)
    gen = PathGenerator(spec=process, paths=run.paths, price=price, month_years=strat.tenor_days / 365,
                        days_per_month=run.days_per_month, steps_per_day=1, seed=np.random.SeedSequence([4, 0]))
    marker = AmericanMarker(american=True, rate=strat.rate)
    euro = AmericanMarker(american=False, rate=strat.rate)
    months = [_Month(run, strat, gen.next_month(), marker, euro) for _ in range(run.months)]
    months[-1].expires = False
    given = replace(run, process=None, source=GivenMonths.factory(months), engine=engine)
    return engine_replay(strategy=strat, run=given, variants=(Variant(size=1.0),
                                                               Variant(size=20.0, fee_factor=2.0)))


def test_a_fast_month_reads_its_steps_contiguous_and_is_counted_once():
    """A fast `_Month`'s (paths, steps) prices, volatilities and at-the-money volatilities are views of step-major
    arrays (its compiled series read the same memory): a step's column is contiguous for every kernel of the step,
    none gathers it. A month store counts that memory once, not once per view."""
    from opl.runtime.engine.legspec import Levels, OptionLeg, StrikeRule
    from opl.runtime.engine.processes import PathGenerator, ProcessSpec
    from opl.runtime.market.rules import load_pack

    legs = tuple(OptionLeg(is_call=is_call, side=-1, qty=1, american=True,
                           strike=StrikeRule(kind="relative", anchor=anchor, value=0))
                 for is_call, anchor in ((False, "support"), (True, "resistance")))
    jujube = StrategySpec(legs=legs, multiplier=10.0, contract_size=10.0, rate=0.015,
                                        levels=Levels(support_width=0.05, resistance_width=0.05))
    process = ProcessSpec(vol=0.3)
    run = RunSpec(process=process, pack=load_pack("czce_cj"), price=10400.0, capital=1e6, paths=50,
                                months=1, seed=1, chunk=50, engine="fast")
    for engine in ("fast", "reference"):  # a path-major month (the reference generator's) is laid out here
        gen = PathGenerator(spec=process, paths=50, price=10400.0, month_years=jujube.tenor_days / 365, seed=2,
                            engine=engine)
        marker = AmericanMarker(american=True, rate=jujube.rate)
        euro = AmericanMarker(american=False, rate=jujube.rate)
        mp = gen.next_month()
        mo = _Month(run, jujube, mp, marker, euro)
        for name, by_step in (("price", mo.by_step[0]), ("vol", mo.by_step[1]), ("atm", None)):
            x = getattr(mo, name)
            assert x.T.flags.c_contiguous and x[:, 3].flags.c_contiguous, name
            assert by_step is None or np.shares_memory(x, by_step), name
            assert np.array_equal(x, getattr(mp, name) if name != "atm" else jujube.smile.atm(mp.vol)), name
        arrays = _arrays_of(mo)
        assert len({id(a) for a in arrays}) < len(arrays) and all(a.base is None for a in arrays)
        # An adjustment round's cut of the month: the same numbers, laid out the same way.
        cols = np.array([3, 7, 8, 40])
        sub = mo.columns(cols)
        for name in ("price", "vol", "atm", "support", "resistance", "signal"):
            assert np.array_equal(getattr(sub, name), getattr(mo, name)[cols]), name
        assert sub.price[:, 3].flags.c_contiguous and sub.atm[:, 3].flags.c_contiguous


@pytest.mark.parametrize("pack_name", ["czce_cj", "sse_50etf"])
def test_fast_engine_matches_the_reference_on_given_months(pack_name):
    fast, ref = _given_months_replay("fast", pack_name), _given_months_replay("reference", pack_name)
    assert_same_ledgers(fast, ref)
    for name in ("hedge_trades", "exits", "assigned_months"):
        assert ref.counters[name].sum() > 0, name
    assert np.any(ref.buckets["interest"]) and np.any(ref.buckets["assignment"])


def _pair_books(rng, width: int):
    """Books of two series of every kind (call or put each, one expiry or two, strikes equal, above, below), each
    (variant, path) element holding short, long or no lots of each; then a book of six series whose elements
    hold none, one, two or more of them."""
    lots = np.array([-2.0, -1.0, 0.0, 1.0, 3.0])
    qa, qb = (np.resize(np.repeat(lots, r), width) for r in (1, 5))
    shift = np.resize(np.array([0.0, 300.0, -300.0]), width)  # the second strike against the first
    for call_a in (True, False):
        for call_b in (True, False):
            for second_expiry in (0.0, 30.0):
                strike = np.round(10_000.0 * np.exp(rng.normal(0.0, 0.05, width)), -2)
                yield [(call_a, strike, np.abs(rng.normal(150.0, 80.0, (2, width))), np.stack([qa, -qa]), 0.0),
                       (call_b, strike + shift, np.abs(rng.normal(150.0, 80.0, width)), np.stack([qb, qa]),
                        second_expiry)]
    wide = []
    for i in range(6):
        held = rng.random((2, width)) < 0.3
        wide.append((bool(i % 2), np.round(10_000.0 * np.exp(rng.normal(0.0, 0.05, width)), -2),
                     np.abs(rng.normal(150.0, 80.0, width)), rng.integers(-3, 3, (2, width)) * held * 1.0,
                     float(i % 3 == 0) * 30.0))
    yield wide


@pytest.mark.parametrize("wide_bit", [kernels.margin._WIDE_BIT, 2])
@pytest.mark.parametrize("pack_name", ["czce_cj", "sse_50etf"])
def test_margin_kernel_pairs_one_two_and_many_series_as_the_reference(monkeypatch, pack_name, wide_bit):
    # The kernel pairs an element's one series or its call and put in vectorised passes, two series of one type on
    # numbers and more gathered (kernels.margin._margin_blocks, _pair_rest): each way against the reference
    # formulas, on every kind of pair, over several blocks of paths; the step's requirement
    # (kernels.requirement_account) the same bits on its serial twin and on the thread pool. With
    # kernels.margin._WIDE_BIT at 2 (62 in a run), an element holding the third series or a later one is paired
    # the general way, as one holding the 63rd is in a run.
    from opl.runtime.engine.book import Book
    from opl.runtime.market.rules import load_pack

    monkeypatch.setattr(kernels.margin, "_WIDE_BIT", wide_bit)
    rng = np.random.default_rng(5)
    pack = load_pack(pack_name)
    packs = positions_module._margin_packs(pack, (Variant(), Variant(margin_factor=1.5)))
    rule = kernels.MarginRule.of(packs)
    width = 2 * kernels.margin._MARGIN_BLOCK + 75  # three blocks, the last one short
    shape = (2, width)
    level = 10_000.0 if pack.underlying.kind == "future" else 1.0
    price = level * np.exp(rng.normal(0.0, 0.05, width))
    for holdings in _pair_books(rng, width):
        holdings = [(c, k * level / 10_000.0, p * level / 10_000.0, q, e) for c, k, p, q, e in holdings]
        futures = np.abs(rng.integers(-3, 3, shape)).astype(float)
        ref = positions_module._margin(packs, Book(shape), None, None, price, legs=holdings, futures_lots=futures)
        assert np.array_equal(kernels.book_margin(rule, holdings, futures, price, shape), ref)
        cols = np.array([5, 300, width - 1])
        assert np.array_equal(kernels.book_margin(rule, holdings, futures, price, shape, cols), ref[:, cols])
        twins = _requirement_twins(monkeypatch, rule, holdings, futures, price, ref * rng.uniform(0.5, 1.5, shape))
        assert np.array_equal(twins[0][0], ref) and np.any(twins[0][1])  # (some accounts short of their margin)
        assert all(np.array_equal(a, b) for a, b in zip(*twins))


def _requirement_twins(monkeypatch, rule, holdings, futures, price, equity) -> list[list[np.ndarray]]:
    """kernels.requirement_account of ``holdings`` on its serial twin and on the thread pool: each one's
    requirement, liquidations, equity, calls, peak margin, peak and drawdown."""
    shape = equity.shape
    twins = []
    for parallel_min in (2**62, 0):
        monkeypatch.setattr(kernels.base, "STEP_PARALLEL_MIN", parallel_min)
        account = [equity.copy(), np.zeros(shape, dtype=np.int64), np.zeros(shape), equity.max() * np.ones(shape),
                   np.zeros(shape)]
        req, liquidate = kernels.requirement_account(
            rule, holdings, static=0.0, hedge=futures, other=np.zeros(shape), price=price, equity=account[0],
            capital=1e6, margin_buffer=0.2, calls=account[1], peak_margin=account[2], peak=account[3],
            max_dd=account[4])
        twins.append([req, liquidate, *account])
    return twins


@pytest.mark.parametrize("density", [(0.0, 0.02, 0.055, 0.07, 0.7), (0.7, 0.07, 0.055, 0.02, 0.0)])
@pytest.mark.parametrize("pack_name", ["czce_cj", "sse_50etf"])
def test_margin_kernel_margins_a_series_held_on_few_elements_where_held_as_the_reference(monkeypatch, pack_name,
                                                                                       density):
    # A series whose strikes or premiums are per variant (an adjustment's new series) and that few elements hold
    # is margined where held only (kernels.margin._series_sparse), as the first block of the first variant tells
    # (_sparse_series: held there on less than a sixteenth); else by the loops over every element. Blocks of each
    # density — none, a few, just under and just over a sixteenth, most —, sparse first or dense first, beside a
    # strangle held almost everywhere: the reference's numbers, on the serial twin and the thread pool.
    from opl.runtime.engine.book import Book
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(17)
    pack = load_pack(pack_name)
    packs = positions_module._margin_packs(pack, (Variant(), Variant(margin_factor=1.5), Variant(size=3.0)))
    rule = kernels.MarginRule.of(packs)
    block = kernels.margin._MARGIN_BLOCK
    width = block * len(density)
    shape = (3, width)
    level = 10_000.0 if pack.underlying.kind == "future" else 1.0
    price = level * np.exp(rng.normal(0.0, 0.05, width))
    share = np.repeat(density, block)
    holdings = []
    for is_call, ratio in ((True, 1.05), (False, 0.95)):  # the strangle: strikes and premiums per path
        holdings.append((is_call, np.round(price * ratio, 2), np.abs(rng.normal(0.015, 0.005, width)) * level,
                         -1.0 * (rng.random(shape) < 0.97), 0.0))
    for is_call, ratio, days in ((True, 1.1, 30.0), (False, 0.9, 30.0), (True, 1.0, 0.0)):  # per variant, sparse
        held = rng.random(shape) < share
        lots = rng.integers(-3, 3, shape).astype(float) * held
        holdings.append((is_call, np.round(price * ratio * np.exp(rng.normal(0.0, 0.02, shape)), 2),
                         np.abs(rng.normal(0.02, 0.01, shape)) * level, lots, days))
    futures = np.abs(rng.integers(-3, 3, shape)).astype(float)
    ref = positions_module._margin(packs, Book(shape), None, None, price, legs=holdings, futures_lots=futures)
    assert np.array_equal(kernels.book_margin(rule, holdings, futures, price, shape), ref)
    twins = _requirement_twins(monkeypatch, rule, holdings, futures, price, ref * rng.uniform(0.5, 1.5, shape))
    assert np.array_equal(twins[0][0], ref)
    assert all(np.array_equal(a, b) for a, b in zip(*twins))


def test_margin_kernel_takes_read_only_and_writable_series_together_under_one_signature():
    # A month's marks read from a store are read-only, an adjusted slot's are the book's own: the kernel
    # reads both kinds in one call, with the reference's numbers, and compiles once per number of series,
    # not once per mix of kinds (a compile costs seconds).
    from opl.runtime.engine.book import Book
    from opl.runtime.market.rules import load_pack

    packs = positions_module._margin_packs(load_pack("czce_cj"), (Variant(),))
    rule = kernels.MarginRule.of(packs)
    shape = (1, 4)
    price = np.array([10_000.0, 10_400.0, 9_800.0, 11_000.0])
    frozen = np.array([120.0, 80.0, 200.0, 15.0])
    frozen.flags.writeable = False
    compiled = []
    for premium in (frozen.copy(), frozen):
        holdings = [(False, np.full(4, 9_900.0), premium, -np.ones(shape), 0.0),
                    (True, np.full(shape, 11_000.0), np.full(shape, 90.0), -np.ones(shape), 0.0)]
        ref = positions_module._margin(packs, Book(shape), None, None, price, legs=holdings,
                                    futures_lots=np.zeros(shape))
        assert np.array_equal(kernels.book_margin(rule, holdings, np.zeros(shape), price, shape), ref)
        compiled.append(len(kernels.margin._book_margin.signatures))
    # The read-only call adds no signature to those the writable one left (other tests in this process may
    # have compiled signatures of their own before, so the count itself is not fixed).
    assert compiled[1] == compiled[0]


def test_the_step_packs_requirement_is_the_margin_wrappers_bit_for_bit():
    # StepPack.requirement (the held slots' lists made in one loop, the rule's numbers bound once a pass) against
    # kernels.requirement_account of the same book's holdings: the same requirement, liquidations, calls, peaks and
    # drawdown, bit for bit. And a step's marks' tuple (kernels.steppack._marks_tuple, from the views made already)
    # holds `_slot_tuple`'s very views, or its numbers where none was made.
    from opl.runtime.engine.kernels.steppack import StepPack, _marks_tuple
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(21)
    shape = (3, 40)
    rule = kernels.MarginRule.of([load_pack("czce_cj")] * 3)
    liquidated = 0
    for trial in range(4):
        book, hedge = _random_book(rng, shape, 2 + trial, futures=trial % 2)
        price = 10_000.0 * np.exp(rng.normal(0.0, 0.05, shape[1]))
        other, start = rng.integers(0, 3, shape).astype(float), 1e6 - 9.9e5 * (rng.random(shape) < 0.3)
        runs = []
        for packed in (False, True):
            equity = start.copy()
            calls, peak_margin, peak, max_dd = np.zeros(shape, np.int64), np.zeros(shape), np.full(shape, 1e6), \
                np.zeros(shape)
            if packed:
                pack = StepPack(shape=shape, equity=equity, buckets={}, counters={}, capital=1e6, mult=10.0, cs=10.0,
                                storage=0.0, funding=0.0, year_days=365.0, option_close_fee=np.ones(3),
                                futures_close_fee=np.ones(3), futures_open_fee=np.ones(3))
                out = pack.requirement(rule, [s for s in book.slots if s._held], static=positions_module._static(book),
                                       hedge=hedge, other=other, price=price, margin_buffer=0.2, calls=calls,
                                       peak_margin=peak_margin, peak=peak, max_dd=max_dd, into=None)
            else:
                out = kernels.requirement_account(rule, positions_module._holdings(book), static=positions_module._static(book),
                                                  hedge=hedge, other=other, price=price, equity=equity, capital=1e6,
                                                  margin_buffer=0.2, calls=calls, peak_margin=peak_margin, peak=peak,
                                                  max_dd=max_dd)
            runs.append((*out, equity, calls, peak_margin, peak, max_dd))
        assert all(np.array_equal(a, b) for a, b in zip(*runs))
        liquidated += int(runs[1][1].sum())
        marks = [s.value for s in book.slots]
        kernels.base.forget_tuples()
        fresh = _marks_tuple(marks)  # (no view made yet: `_slot_tuple`'s own)
        assert len(fresh) == 8 and all(np.array_equal(a, b) for a, b in zip(fresh, kernels.base._slot_tuple(marks)))
        kept = kernels.base._slot_tuple(marks, 16)
        assert all(a is b for a, b in zip(_marks_tuple(marks, 16), kept)) and len(kept) == 16
    assert liquidated > 0


def _random_book(rng, shape, slots: int, futures: int = 2):
    """A book of ``slots`` option slots (base ones with marks per path, dynamic ones per variant and path;
    calls and puts, short and long, some empty), ``futures`` futures legs; and a hedge."""
    from opl.runtime.engine.book import Book
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule

    book = Book(shape)
    for i in range(slots):
        per_path = rng.random() < 0.5
        is_call = bool(rng.integers(2))
        leg = OptionLeg(is_call=is_call, side=-1, qty=1, american=True, strike=StrikeRule(kind="relative", value=0))
        width = shape[1:] if per_path else shape
        qty = rng.integers(-3, 3, shape).astype(float) * (rng.random() < 0.8)
        slot = book.slots[book.add_slot(book.add_group(leg), is_call=is_call, american=True,
                                        strike=np.round(10_000.0 * np.exp(rng.normal(0.0, 0.08, width)), -2),
                                        base=i if per_path else None, qty=qty,
                                        extra_days=float(rng.choice([0.0, 30.0])))]
        slot.value = np.abs(rng.normal(150.0, 80.0, width))
        slot.delta = rng.uniform(-1.0, 1.0, width)
    book.futures = [rng.integers(-2, 3, shape).astype(float) for _ in range(futures)]
    book.futures_index = list(range(futures))
    return book, rng.integers(-4, 5, shape).astype(float)


def test_the_fused_close_hedge_and_margin_kernels_are_the_references_bit_for_bit():
    # kernels.close_book (every position closed where a mask holds, one pass), kernels.hedge_step (the
    # options' sums and the hedge rule) and kernels.requirement_account (margin and account) against the
    # numpy reference (positions._close_all, _hedge, _margin and _requirement's formulas) on random books:
    # the same positions, ledgers, requirements and account, bit for bit.
    import copy as copying

    from opl.runtime.engine.hedging import HedgeSpec
    from opl.runtime.engine.ledger import Costs, Ledger
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(8)
    shape = (3, 60)
    pack = load_pack("czce_cj")
    variants = (Variant(), Variant(size=2.0, fee_factor=2.0),
                Variant(margin_factor=1.5, slippage_factor=3.0))
    packs = positions_module._margin_packs(pack, variants)
    costs = [Costs.from_pack(pack, price=10_000.0, premium=100.0, fee_factor=v.fee_factor,
                             slippage_factor=v.slippage_factor) for v in variants]
    strat = StrategySpec(legs=(), multiplier=5.0, contract_size=5.0,
                                       hedge=HedgeSpec(band=0.05, keep=0.1, along="direction"))
    price = 10_000.0 * np.exp(rng.normal(0.0, 0.05, shape[1]))
    for trial in range(12):
        book, hedge = _random_book(rng, shape, trial % 5, futures=trial % 3)  # none: the kernels' 0.0
        active, mask = rng.random(shape) < 0.9, rng.random(shape) < 0.5
        d, other = np.sign(price - 10_000.0), rng.integers(0, 3, shape).astype(float)
        start = 1e6 - 9.9e5 * (rng.random(shape) < 0.3)  # some accounts short of their margin
        runs = {}
        for fast in (False, True):
            cost = positions_module._CostArrays(costs)
            cost.fast = fast
            b, h, ledger, equity, pnl = copying.deepcopy(book), hedge.copy(), Ledger(shape, 1), start.copy(), \
                np.zeros(shape)
            hedger = positions_module._hedge_compiled if fast else positions_module._hedge
            h = hedger(strat, b, h, d, active, 1.0, cost, ledger, equity, pnl, None)
            positions_module._close_all(b, h, mask, cost, ledger, equity, pnl)
            peak, peak_margin, max_dd = np.full(shape, 1e6), np.zeros(shape), np.zeros(shape)
            calls = np.zeros(shape, dtype=np.int64)
            if fast:
                req, liquidate = kernels.requirement_account(
                    kernels.MarginRule.of(packs), positions_module._holdings(b), static=b.static, hedge=h, other=other,
                    price=price, equity=equity, capital=1e6, margin_buffer=0.2, calls=calls, peak_margin=peak_margin,
                    peak=peak, max_dd=max_dd)
            else:  # step._Pass._requirement's reference formulas
                req = positions_module._margin(packs, b, h, other, price)
                call = (equity < req) & (req > 0)
                calls += call
                liquidate = call & (equity < 0.8 * req)
                np.maximum(peak_margin, req / 1e6, out=peak_margin)
                np.maximum(peak, equity, out=peak)
                np.maximum(max_dd, (peak - equity) / peak, out=max_dd)
            runs[fast] = [*(s.qty for s in b.slots), *b.futures, h, equity, pnl, req, liquidate, calls, peak,
                          peak_margin, max_dd, *ledger.buckets.values(), *ledger.counters.values()]
        assert all(np.array_equal(a, r) for a, r in zip(runs[True], runs[False]))
        counters = dict(zip(Ledger.COUNTERS, runs[False][-len(Ledger.COUNTERS):]))
        assert np.any(counters["hedge_trades"]) and np.any(counters["futures_lots"])
        assert np.any(runs[False][-len(Ledger.COUNTERS) - len(Ledger(shape, 1).buckets) - 4])  # margin calls


@pytest.mark.parametrize("mode", ["first_hit", "all_required"])
def test_compiled_exits_are_the_stages_exits_bit_for_bit(mode):
    # kernels.exits_close (pnl_percent and days_left triggers, the stop loss, the guard, a cut cycle: flags,
    # counts and the close in one pass) against _Pass._exits' per-stage path on random books and P&L.
    import copy
    from types import SimpleNamespace

    from opl.runtime.engine import conditionspec as spec
    from opl.runtime.engine.triggers import compile_condition
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(4)
    shape, n = (3, 80), 5
    exited = set()  # steps where some position exits (a close) and steps where none does (nothing closed)
    rule_sets = [(), (("pnl_percent", "<", -25.0),), (("pnl_percent", "<", -25.0), ("days_left", "<", 2.0)),
                 (("days_left", ">=", 3.0), ("pnl_percent", ">", 10.0), ("pnl_percent", "<=", -5.0)),
                 (("days_left", "<", 9.0),)]
    for trial in range(20):
        rules = rule_sets[trial % len(rule_sets)]
        triggers = tuple(compile_condition(spec.Trigger(measure=m, op=op, bound=b)) for m, op, b in rules)
        strat = StrategySpec(legs=(), multiplier=5.0, contract_size=5.0, exit_mode=mode,
                                           exit_triggers=triggers, stop_loss=(None, 0.02)[trial % 2],
                                           guard_days=(2.0, None)[trial % 3 == 2])
        run = RunSpec(process=None, pack=load_pack("czce_cj"), price=10_000.0, capital=1e6,
                                    paths=shape[1])
        book, hedge = _random_book(rng, shape, trial % 4, futures=trial % 2)
        j = int(rng.integers(1, n + 1))
        price = 10_000.0 * np.exp(rng.normal(0.0, 0.02, (shape[1], n + 1)))
        mo = SimpleNamespace(n=n, days_left=np.linspace(7.0, 0.0, n + 1), expires=trial % 4 != 1, band=None,
                             price=price, atm=np.full(price.shape, 0.3), support=price[:, 0] * 0.95,
                             resistance=price[:, 0] * 1.05)
        pnl = rng.normal(0.0, 30_000.0, shape)
        denominator = np.abs(rng.normal(100_000.0, 20_000.0, shape))
        is_open = rng.random(shape) < 0.8
        runs = []
        for compiled in (False, True):
            account = step_module._Pass(strat, run, tuple(Variant(size=s) for s in (1.0, 2.0, 3.0)),
                                          shape, False)
            assert (account.exit_rules is not None) and account.cost.fast
            if not compiled:
                account.exit_rules = None
            b = copy.deepcopy(book)
            o = step_module._Open(m=0, mo=mo, book=b, d=np.ones(shape[1]), hedge=hedge.copy(),
                                    is_open=is_open.copy(), month_pnl=pnl.copy(), denominator=denominator,
                                    open_margin=np.ones(shape), month_start=account.equity.copy(),
                                    alerted=np.zeros(shape, dtype=bool), assigned=np.zeros(shape, dtype=bool),
                                    delivered=np.zeros(shape, dtype=bool))
            account._exits(o, j)
            assert [s.held() for s in b.slots] == [bool(s.qty.any()) for s in b.slots]
            runs.append([o.is_open, o.month_pnl, o.hedge, account.equity, *(s.qty for s in b.slots), *b.futures,
                         *account.ledger.buckets.values(), *account.ledger.counters.values()])
        assert all(np.array_equal(a, r) for a, r in zip(*runs))
        assert len(runs[0]) == len(runs[1])
        exited.add(bool(np.any(runs[1][0] != is_open)))
    assert exited == {True, False}


def test_compiled_exits_close_in_place_and_a_slot_closed_everywhere_is_no_longer_held():
    # kernels.exits_close writes the lots it closes into the slots' and the futures' own arrays (no new array a
    # slot a step, each rescanned) and says which slots still hold lots: a slot whose every lot exits is no
    # longer held (`Slot.held`, which every later sum of the step reads), the others keep their arrays.
    import copy
    from types import SimpleNamespace

    from opl.runtime.engine import conditionspec as spec
    from opl.runtime.engine.triggers import compile_condition
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(5)
    shape, n = (2, 50), 5
    strat = StrategySpec(legs=(), multiplier=5.0, contract_size=5.0, exit_triggers=(
        compile_condition(spec.Trigger(measure="pnl_percent", op="<", bound=-25.0)),), guard_days=None)
    run = RunSpec(process=None, pack=load_pack("czce_cj"), price=10_000.0, capital=1e6,
                                paths=shape[1])
    book, hedge = _random_book(rng, shape, 2, futures=1)
    exiting = rng.random(shape) < 0.3
    book.slots[0].qty = np.where(exiting, -1.0, 0.0)  # lots only where the position exits
    book.slots[1].qty = np.full(shape, -2.0)
    pnl = np.where(exiting, -50_000.0, 1_000.0)
    price = np.full((shape[1], n + 1), 10_000.0)
    mo = SimpleNamespace(n=n, days_left=np.linspace(7.0, 0.0, n + 1), expires=True, band=None, price=price,
                         atm=np.full(price.shape, 0.3), support=price[:, 0] * 0.95, resistance=price[:, 0] * 1.05)
    runs = []
    for compiled in (False, True):
        account = step_module._Pass(strat, run, (Variant(), Variant(size=2.0)), shape,
                                      False)
        if not compiled:
            account.exit_rules = None
        b = copy.deepcopy(book)
        arrays = [s.qty for s in b.slots] + b.futures
        o = step_module._Open(m=0, mo=mo, book=b, d=np.ones(shape[1]), hedge=hedge.copy(),
                                is_open=np.ones(shape, dtype=bool), month_pnl=pnl.copy(),
                                denominator=np.full(shape, 100_000.0), open_margin=np.ones(shape),
                                month_start=account.equity.copy(), alerted=np.zeros(shape, dtype=bool),
                                assigned=np.zeros(shape, dtype=bool), delivered=np.zeros(shape, dtype=bool))
        account._exits(o, 2)
        runs.append([*(s.qty for s in b.slots), *b.futures, o.hedge, account.equity, o.is_open,
                     *account.ledger.buckets.values(), *account.ledger.counters.values()])
        assert [s.held() for s in b.slots] == [False, True]
        if compiled:
            assert all(x is y for x, y in zip(arrays, [s.qty for s in b.slots] + b.futures))
    assert all(np.array_equal(a, r) for a, r in zip(*runs))


def _round_desk(rng, *, variants=3, paths=200, j=7, guards=(), quotes=True):
    """A fired round's desk on a random book: a put and a call leg (base slots) with their dynamic slots (the
    month's expiry, and 60 days out for ``roll(1, +60d)``) and the gamma hedge's calls, lots and strikes drawn
    at random (zeros included) — the numpy proposals (``quotes=False``) or the compiled ones."""
    from types import SimpleNamespace

    from opl.runtime.engine.adjust import Action, AdjustEngine, AdjustSpec, Desk
    from opl.runtime.engine.book import Book
    from opl.runtime.engine.guards import blocked
    from opl.runtime.engine.legspec import Levels, OptionLeg, StrikeRule
    from opl.runtime.market.rules import load_pack

    shape = (variants, paths)
    mo = _quoting_month(rng, paths, 22, whole=False)
    mo.price[: paths // 10] = 0.5  # collapsed paths: strikes and calls at the lowest listed strike
    mo.pack, mo.levels, mo.n = load_pack("czce_cj"), Levels(support_width=0.05, resistance_width=0.06), 21
    mo.support, mo.resistance = mo.levels.of(mo.price[:, 0])
    mo.atm, mo.days_left = mo.vol, 30.0 * (21 - np.arange(22)) / 21
    legs = [OptionLeg(is_call=False, side=-1, qty=1, american=True, strike=StrikeRule(kind="relative", value=-100.0,
                                                                                    anchor="support")),
            OptionLeg(is_call=True, side=-1, qty=1, american=True, strike=StrikeRule(kind="delta", value=0.25))]
    playbook = (Action(kind="roll_nearest_term", text="r"), Action(kind="roll", text="r", leg=0, amount=60.0),
                Action(kind="hedge_gamma", text="h", amount=0.02), Action(kind="hedge_gamma", text="h"),
                Action(kind="hedge_gamma", text="h", amount=50.0))
    engine = AdjustEngine(AdjustSpec(when=lambda s: True, playbook=playbook), shape, (0, 1))
    book = Book(shape)
    for li, leg in enumerate(legs):
        g = book.add_group(leg, file_index=li)
        base = book.slots[book.add_slot(g, is_call=leg.is_call, american=True, base=li, strike=mo.snap(
            mo.price[:, 0] * (0.95 if li == 0 else 1.05)), qty=-rng.integers(0, 3, shape).astype(float))]
        base.value, base.delta, base.gamma = (rng.uniform(0.0, x, paths) for x in (300.0, 0.5, 0.004))
    engine.open_month(book)
    for s in book.slots[2:]:  # the dynamic slots: lots on some elements, at the roll's strike on some of them
        s.qty = np.where(rng.random(shape) < 0.3, rng.integers(-3, 4, shape), 0.0)
        s.strike = np.where(rng.random(shape) < 0.5, mo.snap(mo.price[:, j] * rng.uniform(0.9, 1.1, shape)),
                            mo.snap_up(mo.price[:, j]))
        s.gamma = rng.uniform(0.0, 0.004, shape)
    counted = {}
    state = SimpleNamespace(shape=shape, days_left=float(mo.days_left[j]), price=mo.price[:, j], leg=None)
    desk = Desk(book=book, hedge=np.zeros(shape), mo=mo, j=j, d=np.zeros(paths), sizes=np.ones((variants, 1)),
                lots_per_option=1.0, capital=1e6, tenor_days=30.0, margin=None, trade_options=None,
                trade_futures=None, close_all=None, state=lambda: state,
                avoid=(lambda legs: blocked(guards, state, legs)) if guards else None,
                count=lambda name, mask: mask.any() and counted.__setitem__(name, counted.get(name, 0) + mask.sum()),
                guards=guards, quotes=round_module._quote_inputs(mo, j) if quotes else None)
    return engine, desk, counted


@pytest.mark.parametrize("guarded", [None, "decided", "undecided"])
def test_compiled_proposals_are_the_numpy_proposals_bit_for_bit(monkeypatch, guarded):
    """`kernels.adjust.move_group`, ``gamma_need`` and ``gamma_buy`` (the fast engine's roll_nearest_term, roll
    and hedge_gamma proposals) against the numpy `AdjustEngine` proposals on random fired sets: rolls into the
    month's expiry and across terms, lots already at the new strike, empty groups, paths below the strike grid,
    hedges topped up, re-struck, clipped or not needed — the same changes (lots, series, quotes) and trades, bit
    for bit. With an ``avoid_leg_if`` rule the compiled pass runs where the step decides the rule for every
    series (its days_left: "decided") and the numpy proposal where it does not ("undecided")."""
    from opl.runtime.engine.guards import GuardRule
    from opl.runtime.engine.triggers import compile_condition
    from opl.simulation.conditionforms import lower_condition
    import opl

    guards = ()
    if guarded:
        days = {"decided": "2d", "undecided": "100d"}[guarded]
        doc = opl.check("opl-lang 1.0\nS = short Option(Call, 100, 30d)\n"
                        f"adjust_when days_left < {days} && strike_offset > 3%\n").document
        guards = (GuardRule(kind="avoid_leg_if", text="t",
                            test=compile_condition(lower_condition(doc.adjust.when), per_leg=True)),)
    calls = []
    for name in ("move_group", "gamma_need"):
        real = getattr(kernels.adjust, name)
        monkeypatch.setattr(kernels.adjust, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    seen = set()
    for seed in range(12):
        plans = []
        for quotes in (False, True):
            engine, desk, counted = _round_desk(np.random.default_rng(seed), guards=guards, quotes=quotes)
            active = np.random.default_rng(100 + seed).random(desk.book.shape) < 0.6
            plans.append(([engine._propose(a, i, desk, active) for i, a in enumerate(engine.spec.playbook)],
                          counted))
        (numpy_plans, numpy_counts), (compiled_plans, compiled_counts) = plans
        assert numpy_counts == compiled_counts
        for a, b in zip(numpy_plans, compiled_plans):
            assert np.array_equal(a.trades, b.trades) and a.changes.keys() == b.changes.keys()
            seen.add((len(a.changes), bool(a.trades.any())))
            for si, x in a.changes.items():
                y = b.changes[si]
                assert np.array_equal(x.qty, y.qty) and np.array_equal(x.restruck, y.restruck)
                assert (x.strike is None) == (y.strike is None) and (x.marks is None) == (y.marks is None)
                if x.strike is not None:
                    assert np.array_equal(np.broadcast_to(x.strike, x.qty.shape), np.broadcast_to(y.strike, y.qty.shape))
                    assert all(np.array_equal(m, n) for m, n in zip(x.marks, y.marks))
    assert {(0, False), (1, True)} <= seen and any(n >= 2 for n, _ in seen)  # nothing, hedges and moves
    assert set(calls) == (set() if guarded == "undecided" else {"move_group", "gamma_need"})
    if guarded == "undecided":
        assert numpy_counts["avoided_legs"] > 0


def test_a_guard_is_decided_for_every_series_only_by_a_0d_false_verdict():
    """`guards.never_blocks`: True only where every ``avoid_leg_if`` verdict on the probe leg is a 0-d False (it
    read numbers the same for all series); a verdict reading the series (an array) or a 0-d True is False."""
    from types import SimpleNamespace

    from opl.runtime.engine.guards import GuardRule, never_blocks
    from opl.runtime.engine.triggers import compile_condition
    from opl.simulation.conditionforms import lower_condition
    import opl

    def rule(text, kind="avoid_leg_if"):
        doc = opl.check(f"opl-lang 1.0\nS = short Option(Call, 100, 30d)\nadjust_when {text}\n").document
        return GuardRule(kind=kind, text=text, test=compile_condition(lower_condition(doc.adjust.when), per_leg=True))

    state = SimpleNamespace(shape=(2, 3), days_left=10.0, price=np.array([1.0, 2.0, 3.0]), leg=None)
    default = rule("days_left < 2d && strike_offset > 10%")
    assert never_blocks((default,), state, 20.0) and not never_blocks((default,), state, 1.0)
    assert not never_blocks((rule("qty > 5"),), state, 20.0)  # the lots: an array whatever they are
    assert not never_blocks((rule("strike_offset > 10% && days_left < 2d"),), state, 20.0)
    assert not never_blocks((rule("days_left < 30d"),), state, 20.0)  # 0-d True: blocked everywhere
    assert never_blocks((rule("days_left < 2d", kind="warn_if"), default), state, 20.0)
    assert state.leg is None


def test_warn_rules_are_decided_without_a_state_only_by_0d_false_verdicts_on_the_days():
    """`guards.warns_nowhere`: True only where every ``warn_if`` verdict on every held leg's days is a 0-d False
    reading nothing but the days (`_Pass._alerts` then builds no state and no legs); a rule that reads a path's
    variable or holds everywhere is left to `warned`, whose answer on a whole state agrees where it decides."""
    from opl.runtime.engine.book import Book
    from opl.runtime.engine.guards import GuardRule, leg_states, warned, warns_nowhere
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule
    from types import SimpleNamespace

    from opl.runtime.engine.triggers import compile_condition
    from opl.simulation.conditionforms import lower_condition
    import opl

    def rule(text, kind="warn_if"):
        doc = opl.check(f"opl-lang 1.0\nS = short Option(Call, 100, 30d)\nadjust_when {text}\n").document
        return GuardRule(kind=kind, text=text, test=compile_condition(lower_condition(doc.adjust.when), per_leg=True))

    default = rule("days_left > 30d && leg_pnl > +25%")
    assert warns_nowhere((default,), 20.0, [0.0]) and warns_nowhere((default,), 20.0, [])
    assert not warns_nowhere((default,), 20.0, [0.0, 30.0])  # a leg 50 days out: its P&L decides
    assert not warns_nowhere((rule("pnl < -10%"),), 20.0, [0.0])  # the position's P&L: a path's variable
    assert not warns_nowhere((rule("days_left < 30d"),), 20.0, [0.0])  # 0-d True: it holds everywhere
    assert warns_nowhere((rule("days_left < 30d", kind="avoid_leg_if"), default), 20.0, [0.0])
    shape = (2, 3)
    book = Book(shape)
    leg = OptionLeg(is_call=True, side=-1, qty=1, american=True, strike=StrikeRule(kind="relative", value=0))
    slot = book.slots[book.add_slot(book.add_group(leg), is_call=True, american=True, strike=np.full(shape, 100.0),
                                    qty=-np.ones(shape))]
    slot.value, slot.entry = np.full(shape, 5.0), np.full(shape, 1.0)  # leg_pnl far above 25% everywhere
    price = np.array([100.0, 101.0, 99.0])
    for days_left, rules in ((20.0, (default,)), (40.0, (default,)), (20.0, (rule("days_left < 30d"),))):
        state = SimpleNamespace(shape=shape, days_left=days_left, price=price, leg=None)
        hit = warned(rules, state, leg_states(book, price, days_left))
        assert warns_nowhere(rules, days_left, [0.0]) == (hit is None)


@pytest.mark.parametrize("pack_name", ["czce_cj", "sse_50etf"])
def test_compiled_strike_snaps_are_the_packs_bit_for_bit(pack_name):
    """`kernels.adjust.snap` (a round's new strikes on the fast engine: `_Month.snap`, ``snap_up``) against the
    pack's `snap_strike` floored at the lowest listed strike, on random levels, band edges and their
    neighbours, the grid itself, levels below the grid and NaN."""
    from opl.runtime.market.rules import load_pack

    pack = load_pack(pack_name)
    grid = pack.option.strike_grid
    lowest, top = grid[0].step, 2.0 * max(b.upto for b in grid[:-1])
    rng = np.random.default_rng(3)
    edges = np.array([b.upto for b in grid[:-1]])
    raw = np.concatenate([rng.uniform(-0.1 * top, top, 20_000), edges, edges + 1e-9, edges - 1e-9,
                          np.arange(0.0, top, lowest), [np.nan, 0.0, -5.0, 1e-12]])
    for up in (False, True):
        ref = np.maximum(np.asarray(pack.snap_strike(np.maximum(raw, lowest), mode="up" if up else "nearest"),
                                    dtype=float), lowest)
        assert np.array_equal(kernels.adjust.snap(grid, raw, up=up), ref, equal_nan=True)


def test_the_compiled_adjust_decision_is_the_numpy_decision():
    """`AdjustEngine.decide` with ``compiled`` (`kernels.adjust.decide`) against the numpy decision over a month of
    random steps: verdicts per path, per variant and path or one for all, positions opening and closing, the
    cooldown — the same rounds, edges and last rounds at every step."""
    from types import SimpleNamespace

    from opl.runtime.engine.adjust import AdjustEngine, AdjustSpec

    rng = np.random.default_rng(8)
    shape = (3, 500)
    verdicts = iter([])
    spec = AdjustSpec(when=lambda state: next(verdicts), playbook=(), cooldown_days=3.0)
    engines = [AdjustEngine(spec, shape, ()), AdjustEngine(spec, shape, ())]
    kinds = [lambda: rng.random(shape[1]) < 0.3, lambda: rng.random(shape) < 0.3, lambda: np.bool_(rng.random() < 0.5)]
    is_open = rng.random(shape) < 0.9
    start = rng.random(shape[1]) < 0.2
    for engine in engines:
        verdicts = iter([start])
        engine.start(SimpleNamespace(), is_open)
    fired = 0
    for j in range(1, 40):
        verdict = kinds[j % 3]()
        is_open &= rng.random(shape) < 0.98
        got = []
        for engine, compiled in zip(engines, (False, True)):
            verdicts = iter([verdict])
            got.append(engine.decide(SimpleNamespace(), is_open, j, 1.4, compiled=compiled))
        assert np.array_equal(got[0], got[1]) and got[1].dtype == bool
        assert np.array_equal(engines[0].prev, engines[1].prev) and np.array_equal(engines[0].last, engines[1].last)
        assert engines[0].fired_paths is None  # the compiled decision also says where: the paths firing, in order
        assert np.array_equal(engines[1].fired_paths, np.flatnonzero(got[0].any(axis=0)))
        fired += got[0].sum()
    assert fired > 100 and np.isfinite(engines[1].last).any() and not np.isfinite(engines[1].last).all()


@pytest.mark.parametrize("text", [
    "price_retrace(>-3%) or vega_crush(>20%)",
    "price_retrace(>1%) and !(iv_change(<=-5%) or vega_crush(>=10%))",
    "!price_retrace(<0%) and (iv_change(>0%) or price_retrace(==0%)) or vega_crush(!=0%)",
])
def test_the_compiled_adjust_condition_is_the_numpy_condition(text):
    """`kernels.adjust.when_verdict` (the fast engine's ``adjust_when`` of price and volatility triggers) against
    the condition's numpy test on the trigger state the replay builds (`stepstate._trigger_state`: the month's
    prices and its smile's at-the-money volatility), on random prices and volatilities with ties, zeros, the
    smile's floor and NaN — the same verdict on every path, at the open and later; a condition with another
    trigger is not compiled."""
    from opl.runtime.engine.triggers import compile_condition
    from opl.simulation.conditionforms import lower_condition
    import opl

    def condition(text):
        doc = opl.check(f"opl-lang 1.0\nS = short Option(Call, 100, 30d)\nadjust_when {text}\n").document
        return compile_condition(lower_condition(doc.adjust.when))

    rng = np.random.default_rng(3)
    paths, smile = 400, SmileRule(spread=0.08, floor=0.12)
    price = 100.0 * np.exp(rng.normal(0.0, 0.03, (2, paths)))
    vol = rng.uniform(0.05, 0.4, (2, paths))
    price[1, :40], vol[1, 40:80], vol[:, 80:90] = price[0, :40], vol[0, 40:80], 0.01  # no move; below the floor
    price[1, 90:95], vol[1, 95:100], price[0, 100] = np.nan, np.nan, 0.0
    test = condition(text)
    program = kernels.adjust.condition_program(test.condition)
    assert program is not None
    held = 0
    for j in (0, 1):
        state = SimpleNamespace(price=price[j], open_price=price[0], iv=smile.atm(vol[j]), open_iv=smile.atm(vol[0]))
        state.measured = lambda name, state=state: getattr(state, name)  # (TriggerState.measured of arrays)
        with np.errstate(divide="ignore", invalid="ignore"):
            want = np.broadcast_to(test(state), paths)
            got = kernels.adjust.when_verdict(program, price=price[j], open_price=price[0], vol=vol[j],
                                              open_vol=vol[0], floor=smile.floor, spread=smile.spread)
        assert np.array_equal(got, want)
        held += want.sum()
    assert 0 < held < 2 * paths
    assert kernels.adjust.condition_program(condition("price_retrace(>1%) or pnl_percent(<-5%)").condition) is None


ROUND_CASES = {  # playbook, abort_if, on_abort, avoid_leg_if
    "roll_then_gamma": (("roll_nearest_term", "hedge_gamma"), None, "exit", None),
    "abort_exits": (("roll_nearest_term", "hedge_gamma"), "additional_margin(%) > 2", "exit", None),
    "across_terms_abort_skips": (("roll", "roll_nearest_term"), "additional_margin(%) > 1", "skip", None),
    "gamma_first_guarded": (("hedge_gamma_greek", "roll_nearest_term"), "additional_margin(%) >= 0", "exit",
                            ("days_left < 2d && strike_offset > 3%", "days_left < 12d && strike_offset > 4%")),
}


def _shuffled_book(rng, p, o, j: int) -> None:
    """The book's lots redrawn at step ``j`` where the position is open (the same draws for both rounds): base
    legs kept, closed or doubled, the dynamic slots (the rolls' series, the gamma hedge's calls) holding a few
    lots on some elements, at the strike a roll or a hedge would pick on some of them (nothing to do there) or at
    the lowest listed strike; zero lots included. The hedge and the futures from exercise (which the margin
    counts) redrawn too."""
    shape = o.is_open.shape
    o.hedge = np.where(o.is_open & (rng.random(shape) < 0.5), rng.integers(-3, 4, shape), o.hedge)
    p.pending = np.where(rng.random(shape) < 0.2, rng.integers(-2, 3, shape), p.pending)
    price = o.mo.price[:, j]
    for s in o.book.slots:
        if s.base is not None:
            s.qty = np.where(o.is_open & (rng.random(shape) < 0.3), s.qty * rng.integers(0, 3, shape), s.qty)
            continue
        held = o.is_open & (rng.random(shape) < 0.25)
        s.qty = np.where(held, rng.integers(-3, 4, shape), 0.0)
        pick = rng.random(shape)
        s.strike = np.where(pick < 0.3, o.mo.snap_up(price), np.where(
            pick < 0.4, o.mo.pack.option.strike_grid[0].step, o.mo.snap(price * rng.uniform(0.9, 1.1, shape))))
        s.value, s.delta, s.gamma, s.entry = (rng.uniform(0.0, x, shape) for x in (400.0, 1.0, 0.004, 400.0))
        s.exercise = np.zeros(shape, dtype=bool)


@pytest.mark.parametrize("case", sorted(ROUND_CASES))
def test_the_compiled_round_is_the_numpy_round_bit_for_bit(monkeypatch, sim, cj, case):
    """`adjustround._Round` (the common round in one compiled pass, `kernels.adjust.round_pass`) against the numpy
    proposals' round (`adjustround._play_on_paths`) at every fired step of a replay, on books redrawn before each
    round (`_shuffled_book`): rolls into the month's expiry and across terms, gamma hedges topped up, re-struck
    or not needed, lots already at the new strike, zero lots, strikes at the lowest listed one, aborts that
    close or skip, guards that leave the round compiled on some steps and not on others — the same book, hedge,
    ledger, equity, P&L and open positions after every round, bit for bit."""
    import copy

    from opl.runtime.engine.adjust import Action, AdjustSpec
    from opl.runtime.engine.guards import GuardRule
    from opl.runtime.engine.processes import ProcessSpec
    from opl.runtime.engine.triggers import compile_condition
    from opl.simulation.conditionforms import lower_condition
    import opl

    kinds, abort, on_abort, avoid = ROUND_CASES[case]

    def condition(text, **kw):
        doc = opl.check(f"opl-lang 1.0\nS = short Option(Call, 100, 30d)\nadjust_when {text}\n").document
        return compile_condition(lower_condition(doc.adjust.when), **kw)

    legs = [sim.option(call=True, offset=100.0, qty=4, american=True),
            sim.option(call=False, offset=-100.0, qty=2, american=True)]
    spec = AdjustSpec(when=condition("price_retrace(>0.5%) or price_retrace(<-0.5%)"), cooldown_days=0.0,
                      playbook=tuple(_playbook_action(k) for k in kinds),
                      abort_if=condition(abort) if abort else None, on_abort=on_abort)
    guards = tuple(GuardRule(kind="avoid_leg_if", text=t, test=condition(t, per_leg=True)) for t in avoid or ())
    strat = sim.strategy(legs, adjust=spec, greeks=True, leg_numbers=(0, 1), guard_days=2.0, guards=guards)
    run = sim.run(ProcessSpec(vol=0.3), cj, paths=120, months=2, capital=2e5, option_ticks=1.0, futures_ticks=1.0,
                  engine="fast")
    # Fees that are not whole numbers: an element's trades booked in another order would round otherwise.
    variants = (Variant(size=1, fee_factor=1.37), Variant(size=3), Variant(size=1, fee_factor=2.9, margin_factor=1.5))
    played = {"compiled": 0, "numpy": 0}
    real_pass, real_adjust = kernels.adjust.round_pass, step_module._Pass._adjust
    monkeypatch.setattr(kernels.adjust, "round_pass", lambda **kw: played.__setitem__(
        "compiled", played["compiled"] + 1) or real_pass(**kw))

    def both(self, o, j):
        if self.engine is None or j >= o.mo.n:
            return real_adjust(self, o, j)
        _shuffled_book(np.random.default_rng(100 * o.m + j), self, o, j)
        twin, twin_o = copy.deepcopy((self, o))
        twin._round = (None,)  # the numpy proposals' round
        before = played["compiled"]
        fired = real_adjust(self, o, j)
        assert np.array_equal(real_adjust(twin, twin_o, j), fired)
        played["numpy"] += played["compiled"] == before and bool(fired.any())
        for a, b in ((self.equity, twin.equity), (o.month_pnl, twin_o.month_pnl), (o.hedge, twin_o.hedge),
                     (o.is_open, twin_o.is_open), *((self.ledger.buckets[k], twin.ledger.buckets[k])
                                                     for k in self.ledger.buckets),
                     *((self.ledger.counters[k], twin.ledger.counters[k]) for k in self.ledger.counters)):
            assert np.array_equal(a, b)
        for s, t in zip(o.book.slots, twin_o.book.slots):
            assert s.held() == t.held() == bool(np.any(s.qty))
            assert np.array_equal(s.qty, t.qty)
            for name in ("strike", "value", "delta", "gamma", "exercise", "entry"):
                x, y = np.broadcast_to(getattr(s, name), s.qty.shape), np.broadcast_to(getattr(t, name), t.qty.shape)
                assert np.array_equal(x, y) if s.dynamic or name == "strike" else np.array_equal(
                    np.where(s.qty != 0, x, 0), np.where(t.qty != 0, y, 0)), name
        return fired

    monkeypatch.setattr(step_module._Pass, "_adjust", both)
    result = engine_replay(strategy=strat, run=run, variants=variants)
    assert played["compiled"] >= 5 and (played["numpy"] > 0) == (case == "gamma_first_guarded")
    counters = result.counters
    assert counters["adjust_done_0"].sum() > 0 and counters["adjust_done_1"].sum() > 0
    if abort:
        assert counters["adjust_aborted_0"].sum() + counters["adjust_aborted_1"].sum() > 0
        assert (counters["adjust_exits"].sum() > 0) == (on_abort == "exit")


def test_a_round_on_a_book_of_nine_slots_compiles_no_signature_of_its_own(tmp_path, monkeypatch):
    """The round's kernels take the base slots' arrays and the dynamic slots' in tuples of their own, each padded to
    eight, and the count of slots from the round's facts: the four-leg candidate's nine slots (four and five) are
    played by the signatures the jujube file's five (two and three) were (a fresh clone's main job compiled the
    round a second time for them, ~27 s of CPU)."""

    played = []
    real = kernels.adjust.round_step
    monkeypatch.setattr(kernels.adjust, "round_step",
                        lambda **kw: played.append(kw["slots"][0].size) or real(**kw))
    wings = tmp_path / "wings.opl"
    wings.write_text(JUJUBE.read_text(encoding="utf-8").replace(STRANGLE, WINGS), encoding="utf-8")
    compiled = [kernels.adjust._round, kernels.adjust._gather, kernels.adjust._scatter, kernels.adjust._quote_into,
                kernels.adjust._propose_move, kernels.adjust._propose_gamma, kernels.adjust._new_step,
                kernels.adjust._new_own]
    counts = []
    for path in (JUJUBE, wings):
        facade.simulate_file(path, paths=60, overrides=["experiment.horizon=2", "experiment.sizes=[1,5]",
                                                        "sim.workers=1"])
        counts.append([len(k.signatures) for k in compiled])
    assert set(played) == {5, 9}
    # (Other tests in this process may have compiled signatures of their own before: the count is not fixed.)
    assert counts[1] == counts[0]



def test_a_round_of_another_number_of_actions_compiles_no_signature_of_its_own(tmp_path, monkeypatch):
    """The round's counters (six, then two per playbook action) come in a tuple padded to `adjustround._ROUND_COUNTERS`:
    a playbook of one action is played by the signatures the jujube file's two were (a fresh clone's main job
    compiled the round again for a candidate with another number of actions)."""

    played = []
    real = kernels.adjust.round_step
    monkeypatch.setattr(kernels.adjust, "round_step", lambda **kw: played.append(kw["kinds"].size) or real(**kw))
    lone = tmp_path / "lone.opl"
    playbook = "adjust_playbook [ roll_nearest_term(), hedge_gamma(target=0.10) ]"
    text = JUJUBE.read_text(encoding="utf-8")
    assert playbook in text
    lone.write_text(text.replace(playbook, "adjust_playbook [ roll_nearest_term() ]"), encoding="utf-8")
    compiled = [kernels.adjust._round, kernels.adjust._propose_move, kernels.adjust._propose_gamma,
                kernels.adjust._round_margin, kernels.margin._book_margin, kernels.adjust._new_step]
    counts = []
    for path in (JUJUBE, lone):
        facade.simulate_file(path, paths=60, overrides=["experiment.horizon=2", "experiment.sizes=[1,5]",
                                                        "sim.workers=1"])
        counts.append([len(k.signatures) for k in compiled])
    assert set(played) == {2, 1}
    # (Other tests in this process may have compiled signatures of their own before: the count is not fixed.)
    assert counts[1] == counts[0]


def test_the_rounds_margin_takes_its_series_as_the_steps_margin_does():
    """The round prices its margin before and after an action by `kernels.margin._book_margin`, its (series,
    variants, paths) scratch passed as the step's margin passes a book's series (`kernels.base._slot_views`: the
    tuple of read-only rows `kernels.base._slot_tuple` makes): `_margin_blocks`, the margin's bulk, has no signature
    of its own for the round (it had one for 3-D arrays: ~15 s of a fresh cache's CPU)."""
    import numba

    rows = np.arange(kernels.base.BOOK_SLOTS * 2 * 3, dtype=float).reshape(kernels.base.BOOK_SLOTS, 2, 3)
    views = kernels.base._slot_views(rows)
    assert numba.typeof(views) == numba.typeof(kernels.base._slot_tuple([rows[0]], kernels.base.BOOK_SLOTS))
    assert len(views) == len(rows) and all(np.array_equal(v, r) for v, r in zip(views, rows))


def test_the_jujube_round_is_played_in_one_compiled_pass_and_other_playbooks_are_not(monkeypatch, sim):
    """The jujube file's rounds (roll_nearest_term, hedge_gamma, abort_if additional_margin(%) > 15) go through
    `kernels.adjust.round_pass`, never the numpy proposals; a playbook with another action, or an abort_if that
    is not a lone additional_margin test, is left to them (`AdjustEngine.round_plan`, `adjustround._Round.of`)."""
    from opl.runtime.engine.adjust import Action, AdjustEngine, AdjustSpec, _margin_bound
    from opl.runtime.engine.book import Book

    played = []
    real = kernels.adjust.round_pass
    monkeypatch.setattr(kernels.adjust, "round_pass", lambda **kw: played.append(1) or real(**kw))
    monkeypatch.setattr(step_module, "_play_on_paths", lambda *a, **k: pytest.fail("the numpy round played"))
    facade.simulate_file(JUJUBE, paths=60, overrides=["experiment.horizon=2", "experiment.sizes=[1,5]"])
    assert len(played) > 10

    legs = [sim.option(call=True, offset=100.0), sim.option(call=False, offset=-100.0)]
    shape = (2, 5)
    for kinds, covered in ((("roll_nearest_term", "hedge_gamma"), True), (("roll", "hedge_gamma_greek"), True),
                           (("roll_nearest_term", "scale_qty"), False), (("delta_neutralise",), False)):
        engine = AdjustEngine(AdjustSpec(when=lambda s: True, playbook=tuple(_playbook_action(k) for k in kinds)),
                              shape, (0, 1))
        book = Book(shape)
        for li, leg in enumerate(legs):
            book.add_slot(book.add_group(leg, file_index=li), is_call=leg.is_call, american=False, strike=100.0,
                          base=li)
        engine.open_month(book)
        plan = engine.round_plan(book)
        assert (plan is not None) == covered, kinds
        if covered:
            rolled = [g for a, g, t, rule, extra in plan[2] if book.slots[t].dynamic and rule is book.groups[g].rule]
            assert len(rolled) == len(plan[2]) > 0
    assert _margin_bound(None) is None



def test_a_pool_does_not_wait_for_its_workers_to_exit(monkeypatch):
    # Every result is in when the workers find no task left; each then unmaps its copy of the loop's process
    # (~0.1 s, a pool per evaluation stage): the caller goes on meanwhile. Here a worker's exit waits for the
    # test's word: a caller that waited for it would be back only once the worker is gone.
    import multiprocessing

    from opl.lang.frontend import check_path
    from opl.runtime.engine import forkpool

    prepared = facade.prepare(check_path(JUJUBE), facade.RunSettings(
        paths=60, overrides=("experiment.horizon=1", "experiment.sizes=[1,5]", "sim.workers=2")))
    jobs = [prepared.sweep_job(), *prepared.scenario_jobs(5.0).jobs[:1]]
    context = multiprocessing.get_context("fork")
    release, started = context.Event(), context.Queue()

    def slow_exit(code):  # in the worker, inherited through fork
        started.put(os.getpid())
        release.wait(20)
        os._exit(code)

    monkeypatch.setattr(forkpool, "_exit", slow_exit)
    try:
        together = replay_module.replay_many(jobs)
        os.kill(started.get(timeout=60), 0)  # a worker in its exit, still there: no ProcessLookupError
    finally:
        release.set()
    for (strategy, run, variants), pooled in zip(jobs, together):
        alone = replay_module.replay(strategy=strategy, run=replace(run, workers=1), variants=variants)
        assert _same_result(pooled, alone)
