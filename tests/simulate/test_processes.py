"""Price processes: Black-76 convergence, GARCH unconditional variance, regime hit rate,
price limit, jumps, determinism and parameter validation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from opl.runtime.pricing import black as pricing
from opl.runtime.engine.processes import (
    GarchParams,
    JumpParams,
    ModelError,
    PathGenerator,
    ProcessSpec,
    RegimeParams,
    Surprise,
    process_spec,
    simulate,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

T = 30 / 365


@pytest.mark.parametrize("is_call,strike", [(True, 10400.0), (False, 9800.0), (True, 11200.0)])
def test_gbm_european_value_converges_to_black76(is_call, strike):
    paths = simulate(spec=ProcessSpec(vol=0.28), paths=200_000, months=1, price=10400.0, seed=3)
    f_t = paths.price[:, -1]
    payoff = np.maximum((f_t - strike) if is_call else (strike - f_t), 0.0)
    rate = 0.015
    mc = np.exp(-rate * T) * payoff
    black = pricing.price(is_call=is_call, underlying=10400.0, strike=strike, t=T, vol=0.28, rate=rate)
    se = mc.std(ddof=1) / np.sqrt(mc.size)
    assert abs(mc.mean() - black) < 3 * se


def test_gbm_is_a_martingale_with_the_stated_variance():
    paths = simulate(spec=ProcessSpec(vol=0.3), paths=100_000, months=1, price=100.0, steps_per_day=2, seed=1)
    log_ret = np.log(paths.price[:, -1] / 100.0)
    assert abs(paths.price[:, -1].mean() - 100.0) < 3 * paths.price[:, -1].std() / np.sqrt(100_000)
    assert log_ret.var() == pytest.approx(0.3**2 * T, rel=0.02)


@pytest.mark.parametrize("garch", [GarchParams(alpha=0.06, beta=0.9, nu=None),
                                   GarchParams(alpha=0.03, gamma=0.06, beta=0.9, nu=8.0)])
def test_garch_reproduces_its_unconditional_variance(garch):
    spec = ProcessSpec(vol=0.25, garch=garch)
    gen = PathGenerator(spec=spec, paths=4000, price=100.0, month_years=T, seed=11)
    rets = np.concatenate([np.diff(np.log(gen.next_month().price), axis=1) for _ in range(25)], axis=1)
    day_var = 0.25**2 * T / 21
    # The mean of the squared daily return is h-bar plus the (tiny) squared drift of -h/2.
    assert np.mean(rets**2) == pytest.approx(day_var, rel=0.05)


def test_garch_volatility_clusters():
    spec = ProcessSpec(vol=0.25, garch=GarchParams(alpha=0.1, beta=0.85, nu=None))
    paths = simulate(spec=spec, paths=2000, months=10, price=100.0, seed=5)
    sq = np.diff(np.log(paths.price), axis=1) ** 2
    a, b = sq[:, :-1].ravel(), sq[:, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.05  # squared returns are autocorrelated
    assert paths.vol.std() > 0  # and implied-vol input moves with them


def test_regime_hit_rate_and_drift_sign():
    spec = ProcessSpec(vol=0.2, regime=RegimeParams(hit_rate=0.9, drift=0.05))
    paths = simulate(spec=spec, paths=20_000, months=3, price=100.0, seed=2)
    hit = np.mean(paths.signal == paths.realised)
    assert hit == pytest.approx(0.9, abs=0.01)
    counts = [np.mean(paths.signal == s) for s in (1, -1, 0)]
    assert counts == pytest.approx([0.4, 0.4, 0.2], abs=0.01)
    # The realised month's drift shows in the month's return: up months rise on average.
    month_ret = np.log(paths.price[:, 21] / paths.price[:, 0])
    up, down = paths.realised[:, 0] == 1, paths.realised[:, 0] == -1
    assert month_ret[up].mean() == pytest.approx(0.05 - 0.5 * 0.04 * T, abs=0.003)
    assert month_ret[down].mean() == pytest.approx(-0.05 - 0.5 * 0.04 * T, abs=0.003)


def test_jumps_are_compensated_and_add_variance():
    spec = ProcessSpec(vol=0.2, jump=JumpParams(intensity=12.0, mean=-0.05, std=0.05))
    paths = simulate(spec=spec, paths=100_000, months=1, price=100.0, seed=4)
    f_t = paths.price[:, -1]
    assert abs(f_t.mean() - 100.0) < 3 * f_t.std() / np.sqrt(f_t.size)
    expected = (0.04 + 12.0 * (0.05**2 + 0.05**2)) * T
    assert np.log(f_t / 100).var() == pytest.approx(expected, rel=0.05)
    assert paths.vol[0, 0] == pytest.approx(np.sqrt(0.04 + 12.0 * 0.005))


def test_daily_limit_holds_and_carries_the_excess():
    spec = ProcessSpec(vol=0.6, jump=JumpParams(intensity=50.0, mean=0.0, std=0.15), limit=0.10)
    paths = simulate(spec=spec, paths=2000, months=2, price=100.0, seed=6)
    moves = np.abs(np.diff(np.log(paths.price), axis=1))
    assert moves.max() <= np.log1p(0.10) + 1e-12
    assert np.mean(moves > np.log1p(0.10) - 1e-9) > 0.001  # the limit binds


def test_gap_scenario_moves_one_day_per_month_and_keeps_other_draws():
    base = ProcessSpec(vol=0.2)
    a = simulate(spec=base, paths=500, months=2, price=100.0, seed=9)
    b = simulate(spec=replace(base, gap=-0.08), paths=500, months=2, price=100.0, seed=9)
    diff = np.diff(np.log(b.price), axis=1) - np.diff(np.log(a.price), axis=1)
    gaps = np.isclose(diff, np.log(0.92))
    assert np.all(gaps.sum(axis=1) == 2)
    assert np.allclose(diff[~gaps], 0.0)


def test_same_seed_bit_identical_other_seed_differs():
    spec = process_spec(components=[("gjr", {}), ("jump", {}), ("regime", {})], vol=0.25, hit_rate=0.9)
    a = simulate(spec=spec, paths=300, months=2, price=100.0, seed=7)
    b = simulate(spec=spec, paths=300, months=2, price=100.0, seed=7)
    c = simulate(spec=spec, paths=300, months=2, price=100.0, seed=8)
    assert np.array_equal(a.price, b.price) and np.array_equal(a.signal, b.signal)
    assert not np.array_equal(a.price, c.price)


@pytest.mark.parametrize("components,message", [
    ([("garch", {"alpha": 0.2, "beta": 0.85})], "not stationary"),
    ([("garch", {"alpha": 1.5})], "between 0 and 1"),
    ([("garch", {"omega": 1.0})], "no parameter `omega`"),
    ([("garch", {}), ("gjr", {})], "one of `garch` and `gjr`"),
    ([("regime", {})], "needs a hit rate"),
    ([("regime", {"up": 0.7, "down": 0.6})], "sum to"),
    ([("jump", {"intensity": -1.0})], "between 0 and 365"),
    ([("heston", {})], "unknown price model"),
])
def test_bad_model_settings_are_clear_errors(components, message):
    hit = None if components == [("regime", {})] else 0.9
    with pytest.raises(ModelError, match=message):
        process_spec(components=components, vol=0.25, hit_rate=hit)


def test_garch_variance_is_capped():
    spec = ProcessSpec(vol=0.3, garch=GarchParams(alpha=0.3, beta=0.69, nu=2.5, cap=0.9))
    paths = simulate(spec=spec, paths=2000, months=6, price=100.0, seed=12)
    assert paths.vol.max() <= 0.9 + 1e-9
    assert paths.vol.max() > 0.85  # the cap binds with these shocks


def test_nu_zero_means_normal_shocks():
    assert process_spec(components=[("garch", {"nu": 0.0})], vol=0.2, hit_rate=None).garch.nu is None
    assert process_spec(components=[("gjr", {"nu": 6.0})], vol=0.2, hit_rate=None).garch.nu == 6.0
    with pytest.raises(ModelError, match="between 2.05"):
        process_spec(components=[("garch", {"nu": 1.0})], vol=0.2, hit_rate=None)


@pytest.mark.parametrize("engine", ["reference", "fast"])
@pytest.mark.parametrize("spd", [1, 4])
def test_volatility_at_a_step_uses_only_the_shocks_known_at_that_step(monkeypatch, spd, engine):
    # Change the shocks after step k: the volatility forecast at steps 0..k must not move
    # (with 4 steps a day it did: the day's closing variance was written to every step of the day).
    spec = ProcessSpec(vol=0.25, garch=GarchParams(alpha=0.05, gamma=0.1, beta=0.85, nu=None))
    base = np.random.default_rng(5).standard_normal((50, 21 * spd))

    def month_vols(z):
        # Normal shocks: the compiled month reads them as drawn, the reference after a unit scale.
        monkeypatch.setattr(PathGenerator, "_shocks", lambda self, shape: z.copy())
        monkeypatch.setattr(PathGenerator, "_raw_shocks", lambda self, shape: z.copy())
        gen = PathGenerator(spec=spec, paths=50, price=100.0, month_years=T, steps_per_day=spd, seed=0, engine=engine)
        return gen.next_month().vol

    reference = month_vols(base)
    for k in range(21 * spd):
        later = base.copy()
        later[:, k:] *= 3.0  # shocks of steps k+1 ... (column k is the move into step k+1)
        vols = month_vols(later)
        assert np.array_equal(vols[:, :k + 1], reference[:, :k + 1]), f"step {k} sees later shocks"
        assert not np.array_equal(vols, reference)


def test_gap_lands_at_the_open_of_a_trading_day():
    # Overnight: with 4 steps a day the gap is the move into the first step of a day, never an intraday one.
    base = ProcessSpec(vol=0.2)
    a = simulate(spec=base, paths=300, months=1, price=100.0, steps_per_day=4, seed=2)
    b = simulate(spec=replace(base, gap=-0.08), paths=300, months=1, price=100.0, steps_per_day=4, seed=2)
    diff = np.diff(np.log(b.price), axis=1) - np.diff(np.log(a.price), axis=1)
    rows, cols = np.nonzero(np.isclose(diff, np.log(0.92)))
    assert np.array_equal(rows, np.arange(300)) and np.all(cols % 4 == 0)


_SPECS = {
    "gbm": ProcessSpec(vol=0.3),
    "garch normal": ProcessSpec(vol=0.25, garch=GarchParams(nu=None)),
    "garch t": ProcessSpec(vol=0.25, garch=GarchParams(nu=4.0)),
    "gjr t, capped": ProcessSpec(vol=0.6, garch=GarchParams(alpha=0.2, gamma=0.15, beta=0.7, nu=2.5, cap=0.8)),
    "jumps": ProcessSpec(vol=0.25, garch=GarchParams(), jump=JumpParams(intensity=40.0, mean=-0.02, std=0.05)),
    "regime and drifts": ProcessSpec(vol=0.25, jump=JumpParams(), regime=RegimeParams(hit_rate=0.7),
                                     drift_against=0.01, drift=0.003),
    "limit and gap": ProcessSpec(vol=0.9, garch=GarchParams(), jump=JumpParams(intensity=30.0, std=0.08),
                                 limit=0.04, gap=0.06),
    "vol surprise": ProcessSpec(vol=0.25, garch=GarchParams(), jump=JumpParams(), surprise=Surprise(vol=1.6)),
    "jump surprise": ProcessSpec(vol=0.25, jump=JumpParams(), surprise=Surprise(jump=JumpParams(intensity=12.0))),
    "zero intensity": ProcessSpec(vol=0.25, jump=JumpParams(intensity=0.0), limit=0.1),
}


@pytest.mark.parametrize("spd", [1, 3, 10])
@pytest.mark.parametrize("name", list(_SPECS))
def test_compiled_month_is_the_reference_month(name, spd):
    # The fast engine's kernel takes the same draws from the same generators: whole months (and the state
    # carried into the next one) equal the numpy reference up to rounding, bit for bit where no sum is pairwise.
    make = {e: PathGenerator(spec=_SPECS[name], paths=300, price=10400.0, month_years=T, steps_per_day=spd, seed=4,
                             engine=e) for e in ("reference", "fast")}
    for _ in range(3):
        ref, fast = make["reference"].next_month(), make["fast"].next_month()
        np.testing.assert_allclose(fast.price, ref.price, rtol=1e-12, atol=0)
        np.testing.assert_allclose(fast.vol, ref.vol, rtol=1e-12, atol=0)
        assert np.array_equal(fast.signal, ref.signal) and np.array_equal(fast.realised, ref.realised)
        if spd < 3:
            assert np.array_equal(fast.price, ref.price) and np.array_equal(fast.vol, ref.vol)
    state = {e: g._state for e, g in make.items()}
    for key in ("log_f", "h"):
        np.testing.assert_allclose(state["fast"][key], state["reference"][key], rtol=1e-12, atol=0)
    # The limit's carry is a log move: where nothing is carried numpy's pairwise day sum leaves ~1e-17.
    np.testing.assert_allclose(state["fast"]["carry"], state["reference"]["carry"], rtol=1e-12, atol=1e-15)


def test_compiled_month_is_bit_identical_on_one_thread_or_many(monkeypatch):
    from opl.runtime.engine import kernels

    spec = _SPECS["limit and gap"]

    def months(parallel_min):
        monkeypatch.setattr(kernels.base, "PARALLEL_MIN", parallel_min)
        paths = simulate(spec=spec, paths=1500, months=2, price=100.0, steps_per_day=2, seed=3, engine="fast")
        return paths.price, paths.vol

    serial, threaded = months(2**62), months(0)
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded))


def test_compiled_month_twins_are_two_functions_with_their_own_cache_entries():
    # One function compiled serial and parallel shares one numba cache entry: a process could run one twin as both.
    from opl.runtime.engine import kernels

    parallel, serial = kernels.paths._month_parallel, kernels.paths._month_serial
    assert parallel.targetoptions.get("parallel") and not serial.targetoptions.get("parallel")
    assert parallel.py_func is not serial.py_func
    assert parallel._cache._cache_file._index_name != serial._cache._cache_file._index_name


def _months_of(ahead: bool, *, months: int | None, asked: int):
    """``asked`` months of a gjr + jump + regime + gap chunk from one shared `Draws` (``ahead`` or not) read
    by two generators with other shock parameters, and the draws each month's generators got."""
    from opl.runtime.engine.processes import Draws, PathGenerator

    spec = process_spec(components=[("gjr", {}), ("jump", {}), ("regime", {})], vol=0.25, hit_rate=0.9)
    other = replace(spec, gap=-0.08, garch=replace(spec.garch, nu=6.0))
    draws = Draws(np.random.SeedSequence([7, 0]), ahead=ahead, months=months)
    gens = [PathGenerator(spec=s, paths=300, price=100.0, month_years=T, seed=0, engine="fast", draws=draws)
            for s in (spec, other)]
    out = [[g.next_month() for g in gens] for _ in range(asked)]
    return out, draws


@pytest.mark.parametrize("months", [3, None])
def test_draws_made_ahead_on_a_thread_are_the_draws_made_when_asked(months):
    # The next month's draws of each generator are drawn on another thread while the month runs: the
    # same numbers in the same order, whatever the thread; none drawn past the months asked for.
    from opl.runtime.engine.processes import _Ahead

    now, plain = _months_of(False, months=months, asked=3)
    later, ahead = _months_of(True, months=months, asked=3)
    for a, b in zip(now, later):
        for x, y in zip(a, b):
            assert all(np.array_equal(u, v) for u, v in zip(x, y))
    assert not plain._ahead
    # Four generators (two Student-t's, the jumps, the signal, the gap): each has its next draw under way,
    # unless the month was the last one asked for.
    assert len(ahead._ahead) == (0 if months == 3 else 5)
    _Ahead.finish_all()  # what a fork does first: no draw under way, no drawing thread left
    assert not _Ahead.running and _Ahead._thread is None
    assert not any(t.name.startswith("opl-draws-ahead") for t in __import__("threading").enumerate())


def test_draws_are_made_ahead_only_where_threads_are_allowed(monkeypatch):
    # A forked worker shares the cores with the others (kernels.serial_only): no second thread there.
    from opl.runtime.engine import kernels
    from opl.runtime.engine.processes import Draws

    assert Draws(np.random.SeedSequence(1)).ahead == kernels.base.available()
    monkeypatch.setattr(kernels.base, "PARALLEL_MIN", 2**62)
    assert not Draws(np.random.SeedSequence(1)).ahead


def test_an_error_drawing_ahead_is_raised_where_the_draws_are_asked_for():
    from opl.runtime.engine.processes import Draws

    draws = Draws(np.random.SeedSequence(1), ahead=True, shared=False)
    calls = []

    def draw(rng):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("no room for the draws")
        return rng.random(3)

    draws.take(0, "shocks", (3,), draw)
    with pytest.raises(MemoryError, match="no room"):
        draws.take(1, "shocks", (3,), draw)


def _two_months_ahead(queue) -> None:
    from opl.runtime.engine.processes import Draws

    draws = Draws(np.random.SeedSequence(3), ahead=True, shared=False)
    got = [draws.take(m, "shocks", (4,), lambda rng: rng.random(4)) for m in range(2)]
    queue.put(np.concatenate(got).tolist())


def test_a_forked_child_draws_ahead_on_a_thread_of_its_own():
    # The parent's drawing thread does not run in a forked child: the child starts its own (else it would
    # wait for ever on draws handed to a thread that is not there).
    import multiprocessing

    from opl.runtime.engine.processes import Draws

    parent = Draws(np.random.SeedSequence(3), ahead=True, shared=False)
    mine = [parent.take(m, "shocks", (4,), lambda rng: rng.random(4)) for m in range(2)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_two_months_ahead, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert got == np.concatenate(mine).tolist()


def test_compiled_month_is_step_major_and_chunks_join_so():
    """The fast generator's month holds (paths, steps) views of step-major arrays, and chunks and pieces of
    chunks replayed side by side join the same way: a step's column, which the replay reads step by step, is
    contiguous (a path-major month made every step's kernels gather it), and the numbers are the same."""
    from opl.runtime.engine.passmonths import _SideBySide

    spec = _SPECS["limit and gap"]

    def gen(seed, engine="fast"):
        return PathGenerator(spec=spec, paths=40, price=100.0, month_years=T, seed=seed, engine=engine)

    fast = gen(3).next_month()
    assert fast.price.T.flags.c_contiguous and fast.vol.T.flags.c_contiguous
    assert fast.price[:, 5].flags.c_contiguous
    joined = _SideBySide([gen(3), gen(4)], [slice(None), slice(10, 30)]).next_month()
    assert joined.price.T.flags.c_contiguous and joined.vol.T.flags.c_contiguous
    parts = (fast, gen(4).next_month())
    for name in ("price", "vol", "signal", "realised"):
        expected = np.concatenate([getattr(parts[0], name), getattr(parts[1], name)[10:30]])
        assert np.array_equal(getattr(joined, name), expected), name
    # The reference generator's months stay as numpy makes them (path-major), and so does a chunk replayed alone.
    assert _SideBySide([gen(3, "reference")]).next_month().price.flags.c_contiguous


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_whole_chunks_side_by_side_write_into_one_month(engine):
    """Whole chunks replayed side by side write their paths into their columns of the month's step-major arrays
    (`_SideBySide`, `PathGenerator.next_month`'s ``out``): month after month the numbers of each chunk alone,
    bit for bit, the month step-major as the replay reads it."""
    from opl.runtime.engine.passmonths import _SideBySide

    spec = _SPECS["limit and gap"]

    def gen(seed, paths):
        return PathGenerator(spec=spec, paths=paths, price=100.0, month_years=T, seed=seed, engine=engine)

    side, alone = _SideBySide([gen(3, 40), gen(4, 25), gen(5, 7)]), [gen(3, 40), gen(4, 25), gen(5, 7)]
    for _ in range(2):
        joined, parts = side.next_month(), [g.next_month() for g in alone]
        assert joined.price.T.flags.c_contiguous and joined.vol.T.flags.c_contiguous
        for name in ("price", "vol", "signal", "realised"):
            assert np.array_equal(getattr(joined, name), np.concatenate([getattr(p, name) for p in parts])), name
