"""The replay against known answers: Black-76 value, delta-hedging error, the hedge's kept
exposure, assignment on constructed paths, margin calls and forced liquidation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from opl.runtime.engine.exercise import AssignmentSpec
from opl.runtime.engine.hedging import HedgeSpec
from opl.runtime.engine.legspec import Levels, StrikeRule
from opl.runtime.results.metrics import run_metrics
from opl.runtime.engine.processes import ProcessSpec, RegimeParams
from opl.runtime.engine.replay import replay
from opl.runtime.engine.runspec import Variant

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

GBM = ProcessSpec(vol=0.3)


def _mean_and_se(x: np.ndarray) -> tuple[float, float]:
    x = np.ravel(x)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


@pytest.mark.parametrize("call,offset", [(True, 0.0), (False, -500.0), (True, 800.0)])
def test_unhedged_short_european_is_fairly_priced(sim, free_cj, call, offset):
    # Rate 0 and implied = realised volatility: the premium is the Black-76 value, so the
    # seller's P&L (premium - payoff) has mean 0 within Monte Carlo error.
    res = replay(strategy=sim.strategy([sim.option(call=call, offset=offset)]), run=sim.run(GBM, free_cj, paths=40_000))
    mean, se = _mean_and_se(res.monthly)
    assert abs(mean) < 3 * se
    assert res.buckets["premium"].std() > 0


def test_delta_hedging_error_has_mean_zero_and_shrinks_with_frequency(sim, free_cj):
    legs = [sim.option(call=True, qty=100)]
    spreads = []
    for every, spd in ((5, 1), (1, 1), (1, 4)):
        strat = sim.strategy(legs, hedge=HedgeSpec(every=every, band=0.0, keep=0.0, along="none"))
        res = replay(strategy=strat, run=sim.run(GBM, free_cj, paths=3_000, steps_per_day=spd, seed=4))
        mean, se = _mean_and_se(res.monthly)
        assert abs(mean) < 3 * se
        spreads.append(res.monthly.std())
    unhedged = replay(strategy=sim.strategy(legs), run=sim.run(GBM, free_cj, paths=3_000, seed=4)).monthly.std()
    assert unhedged > spreads[0] > spreads[1] > spreads[2]
    # Hedging error scales about like 1/sqrt(rebalances): 4x as many hedges, about half the error.
    assert spreads[2] / spreads[1] == pytest.approx(0.5, abs=0.12)


@pytest.mark.parametrize("band", [0.0, 0.05])
def test_hedge_keeps_net_delta_at_keep_times_direction_times_size(sim, cj, band):
    process = ProcessSpec(vol=0.25, regime=RegimeParams(hit_rate=0.9, drift=0.03))
    legs = [sim.option(call=False, anchor="support", offset=-100, american=True),
            sim.option(call=True, anchor="resistance", offset=100, american=True)]
    strat = sim.strategy(legs, hedge=HedgeSpec(every=1, band=band, keep=0.1, along="direction"),
                     levels=Levels(support_width=0.05, resistance_width=0.05), rate=0.015)
    res = replay(strategy=strat, run=sim.run(process, cj, paths=300, months=2), variants=(Variant(size=50),),
                 trace=True)
    tr = res.trace
    hedged = tr["hedged"][0]
    net, target = tr["net_delta"][0][hedged], tr["target"][0][hedged]
    size = 100  # 50 puts + 50 calls
    assert np.max(np.abs(net - target)) <= band * size + 0.5 + 1e-9
    # Up months keep +10 lots, down months -10, flat months none (±5 once one leg is assigned).
    assert set(np.unique(target[np.abs(target) > 0]).round(6)) <= {-10.0, -5.0, 5.0, 10.0}
    assert np.mean(np.abs(target) == 10.0) > 0.5
    assert np.any(target > 0) and np.any(target < 0) and np.any(target == 0)


def _crash(gap: float, **changes) -> ProcessSpec:
    return ProcessSpec(vol=0.01, gap=gap, **changes)


def test_assignment_when_and_only_when_the_path_demands_it(sim, free_cj):
    # 10% out of the money: with 1% volatility only the gap can put it in the money.
    put = sim.option(call=False, american=True, offset=-1000.0)
    strat = sim.strategy([put], rate=0.05)
    crash = replay(strategy=strat, run=sim.run(_crash(-0.4), free_cj, paths=200), trace=True)
    assigned = crash.trace["assigned"][0]
    assert assigned.any(axis=1).all()  # every path is assigned once the put is deep in the money
    assert np.all(assigned.sum(axis=1) == 1)
    # The step of the assignment is the step after the gap, when the put became deep ITM.
    price = crash.trace["price"][0]
    first_deep = np.argmax(price < 9_000, axis=1)
    assert np.array_equal(np.argmax(assigned, axis=1), first_deep)
    assert crash.counters["assigned_months"].sum() == 200

    rally = replay(strategy=strat, run=sim.run(_crash(+0.4), free_cj, paths=200), trace=True)
    assert not rally.trace["assigned"].any()
    european = replay(strategy=sim.strategy([sim.option(call=False, american=False, offset=-1000.0)], rate=0.05),
                      run=sim.run(_crash(-0.4), free_cj, paths=200), trace=True)
    assert not european.trace["assigned"][0][:, :-1].any()  # no early assignment
    assert european.trace["assigned"][0][:, -1].all()  # exercised at expiry, in the money
    # A call with rate 0 (b = r = 0) is never worth exercising early.
    zero = replay(strategy=sim.strategy([sim.option(call=True, american=True)], rate=0.0),
                  run=sim.run(_crash(+0.4), free_cj, paths=50), trace=True)
    assert not zero.trace["assigned"][0][:, :-1].any()


def test_assignment_policies(sim, cj):
    put = sim.option(call=False, american=True)
    close = replay(strategy=sim.strategy([put], rate=0.05), run=sim.run(_crash(-0.4), cj, paths=50, months=2))
    deliver = replay(strategy=sim.strategy([put], rate=0.05, assignment=AssignmentSpec(
        action="take_delivery", storage_per_day=2.0, funding_rate=0.03, hold_days=10)),
        run=sim.run(_crash(-0.4), cj, paths=50, months=2))
    assert close.counters["delivered_months"].sum() == 0
    assert deliver.counters["delivered_months"].sum() == 100
    assert np.all(deliver.buckets["funding"] < 0)
    # Hedge-and-close leaves no delivery exposure: its assignment bucket is the forfeited time value only.
    assert np.all(np.abs(close.buckets["assignment"]) < np.abs(deliver.buckets["assignment"]) + 1e9)


def test_margin_call_and_forced_liquidation_on_a_crash(sim, cj):
    put = sim.option(call=False, american=False)
    strat = sim.strategy([put], margin_buffer=0.0)
    # Capital just above the opening margin (about 0.12 x 10000 x 5 plus the premium).
    res = replay(strategy=strat, run=sim.run(_crash(-0.09), cj, paths=100, months=2, capital=8_000.0), trace=True)
    assert np.all(res.counters["margin_calls"] > 0)
    assert np.all(res.counters["liquidations"] == 1)
    margin = res.trace["margin"][0]
    called = np.argmax(res.trace["equity"][0] < margin, axis=1)
    # Liquidated at the next step: nothing is held afterwards (the account is too small to reopen).
    for i, step in enumerate(called):
        assert np.all(margin[i, step + 1:] == 0.0)
    assert np.all(res.counters["skipped_months"] == 1)
    m = run_metrics(res, 0)
    assert m.margin["margin_call_probability"] == 100.0
    assert m.margin["forced_liquidation_probability"] == 100.0
    # With a 100% buffer the call is met (equity stays positive): calls but no liquidation.
    buffered = replay(strategy=replace(strat, margin_buffer=1.0), run=sim.run(_crash(-0.09), cj, paths=100,
                                                                             months=2, capital=8_000.0))
    assert np.all(buffered.counters["margin_calls"] > 0)
    assert np.all(buffered.counters["liquidations"] == 0)


def test_exit_trigger_and_guard_close_the_position(sim, cj):
    import opl

    doc = opl.check("opl-lang 1.0\nS = short Option(Call, 100, 30d)\nexit_triggers [ price_retrace(>3%) ]\n").document
    from opl.simulation.conditionforms import lower_condition
    from opl.runtime.engine.triggers import compile_condition

    trig = tuple(compile_condition(lower_condition(t)) for t in doc.exit.triggers)
    strat = sim.strategy([sim.option(call=True)], exit_triggers=trig)
    res = replay(strategy=strat, run=sim.run(_crash(+0.05), cj, paths=20), trace=True)
    assert np.all(res.counters["exits"] == 1)
    guarded = replay(strategy=replace(sim.strategy([sim.option(call=True)]), guard_days=2.0),
                     run=sim.run(_crash(-0.01), cj, paths=20), trace=True)
    assert np.all(guarded.counters["exits"] == 1)
    assert np.all(guarded.trace["margin"][0][:, -2:] == 0.0)  # closed with less than 2 days left


def test_same_seed_bit_identical(sim, cj):
    process = ProcessSpec(vol=0.25, regime=RegimeParams(hit_rate=0.9))
    strat = sim.strategy([sim.option(call=True, american=True), sim.option(call=False, american=True)],
                     hedge=HedgeSpec(every=1, band=0.05, keep=0.1, along="direction"), rate=0.015)
    a = replay(strategy=strat, run=sim.run(process, cj, paths=700, months=2, chunk=300))
    b = replay(strategy=strat, run=sim.run(process, cj, paths=700, months=2, chunk=300))
    assert np.array_equal(a.monthly, b.monthly)
    assert all(np.array_equal(a.buckets[k], b.buckets[k]) for k in a.buckets)
    c = replay(strategy=strat, run=sim.run(process, cj, paths=700, months=2, chunk=300, seed=2))
    assert not np.array_equal(a.monthly, c.monthly)


def test_ledger_adds_up_to_the_monthly_pnl(sim, cj):
    process = ProcessSpec(vol=0.3, regime=RegimeParams(hit_rate=0.9))
    strat = sim.strategy([sim.option(call=True, american=True), sim.option(call=False, american=True)],
                     hedge=HedgeSpec(every=1, band=0.0, keep=0.1, along="direction"), rate=0.015,
                     assignment=AssignmentSpec(action="take_delivery", storage_per_day=2, funding_rate=0.03))
    res = replay(strategy=strat, run=sim.run(process, cj, paths=500, months=3, option_ticks=1, futures_ticks=1),
                 variants=(Variant(size=1), Variant(size=10, fee_factor=2)))
    total = sum(res.buckets.values())
    assert np.allclose(total, res.monthly.sum(axis=-1))
    assert np.all(res.buckets["costs"] <= 0)
    assert res.buckets["costs"][1].mean() < 10 * res.buckets["costs"][0].mean()


def test_vectorised_strikes_match_the_scalar_resolver(sim):
    import datetime as dt

    from opl.lang.estimates import Market
    from opl.lang.legs import DaysTenor, DeltaStrike, Leg, RelativeStrike

    market = Market(10_400.0, 0.28, 0.015, dt.date(2026, 1, 5), 9_900.0, 11_000.0, True)
    for spec, rule in ((RelativeStrike("support", -100.0, False), StrikeRule(kind="relative", anchor="support",
                                                                             value=-100.0)),
                       (RelativeStrike("resistance", 2.0, True), StrikeRule(kind="relative", anchor="resistance",
                                                                            value=2.0, percent=True)),
                       (RelativeStrike("price", 5.0, True), StrikeRule(kind="relative", value=5.0, percent=True)),
                       (DeltaStrike(0.25), StrikeRule(kind="delta", value=0.25))):
        for call in (True, False):
            leg = Leg(kind="option", side=-1, qty=1, option_type="call" if call else "put", strike=spec,
                      tenor=DaysTenor(30.0))
            vector = rule.resolve(is_call=call, price=np.array([10_400.0]), support=np.array([9_900.0]),
                                  resistance=np.array([11_000.0]), iv=np.array([0.28]), t=30 / 365, rate=0.015)
            assert vector[0] == pytest.approx(market.strike(leg), rel=1e-6)


def test_intraday_hedging_earns_what_daily_hedging_earns_under_gjr(sim, free_cj):
    # Any non-anticipating hedge of a martingale earns 0 on average, so hedging a short
    # out-of-the-money call every 6 hours and every day must agree within Monte Carlo error
    # on the same GJR paths (the intraday marks used the day's closing variance: z ≈ -11).
    from opl.runtime.engine.processes import GarchParams

    gjr = ProcessSpec(vol=0.25, garch=GarchParams(alpha=0.02, gamma=0.03, beta=0.955))
    legs = [sim.option(call=True, offset=1000.0, qty=10)]
    hedge_buckets = []
    for every in (1, 4):
        strat = sim.strategy(legs, hedge=HedgeSpec(every=every, band=0.0, keep=0.0, along="none"))
        res = replay(strategy=strat, run=sim.run(gjr, free_cj, paths=4_000, steps_per_day=4, seed=7))
        hedge_buckets.append(res.buckets["hedge"][0])
    diff = hedge_buckets[0] - hedge_buckets[1]
    mean, se = _mean_and_se(diff)
    assert abs(mean) < 3 * se, f"6-hourly minus daily hedge P&L {mean:.1f} ± {se:.1f}"


def test_short_strangle_is_margined_as_a_combination_at_every_step(sim, cj):
    # A 1%-volatility future gapping 5% up once a month; strikes 600 either side of 10,000. At 1% volatility
    # the out-of-the-money legs are worth (almost) nothing, so a leg's margin is its risk part
    # R = max(FM - 0.5 x OTM x 5, 0.5 x FM), FM = 12% x F x 5, and the strangle saves the smaller leg's R
    # (max(m_call, m_put) + p_other x 5 instead of m_call + m_put) at every step it is held.
    from opl.runtime.market.margin import with_margin_method

    legs = [sim.option(call=False, offset=-600.0), sim.option(call=True, offset=600.0)]
    process = ProcessSpec(vol=0.01, gap=0.05)
    runs = {method: replay(strategy=sim.strategy(legs), run=sim.run(process, with_margin_method(cj, method), paths=50),
                           variants=(Variant(size=20),), trace=True)
            for method in ("combination", "per_leg")}
    combo, per_leg = (runs[m].trace["margin"][0] for m in ("combination", "per_leg"))
    f, held = runs["combination"].trace["price"][0], runs["combination"].trace["open"][0]
    fm = 0.12 * f * 5
    risk = [np.maximum(fm - 0.5 * np.maximum(k - f, 0) * 5 if call else fm - 0.5 * np.maximum(f - k, 0) * 5, 0.5 * fm)
            for call, k in ((True, 10_600.0), (False, 9_400.0))]
    assert held[:, :-1].all() and held.sum() > 0
    assert np.allclose((per_leg - combo)[held], 20 * np.minimum(*risk)[held], rtol=1e-6)
    # Opening margin 20 x 4,500 (both legs 600 out of the money at 10,000: 6,000 - 1,500): the open is
    # gated by the combination too (a capital between the two requirements opens only as a combination).
    small = sim.run(process, cj, paths=50, capital=120_000.0)
    assert replay(strategy=sim.strategy(legs), run=small, variants=(Variant(size=20),)).counters[
        "skipped_months"].sum() == 0
    per_leg_small = replace(small, pack=with_margin_method(cj, "per_leg"))
    assert np.all(replay(strategy=sim.strategy(legs), run=per_leg_small, variants=(Variant(size=20),)).counters[
        "skipped_months"] == 1)


@pytest.mark.parametrize("side", [1, -1])
def test_cash_earns_interest_so_a_fair_hedged_option_earns_zero_at_any_rate(sim, free_cj, side):
    # At r = 5% an in-the-money call bought (sold) at its discounted Black-76 value and hedged
    # every day: the buyer forgoes interest on the premium, the seller earns it; without
    # interest on cash the buyer showed +24 SE, the seller -24 SE.
    legs = [sim.option(call=True, side=side, qty=100, offset=-1000.0)]
    strat = sim.strategy(legs, rate=0.05, hedge=HedgeSpec(every=1, band=0.0, keep=0.0, along="none"))
    res = replay(strategy=strat, run=sim.run(GBM, free_cj, paths=20_000, seed=4))
    mean, se = _mean_and_se(res.monthly)
    assert abs(mean) < 3 * se
    interest = res.buckets["interest"][0]
    assert np.sign(interest.mean()) == -side and abs(interest.mean()) > 10 * se
    # A documented cash rate replaces the file's; 0 leaves the premium's interest out (the old bias).
    no_interest = replay(strategy=strat, run=sim.run(GBM, free_cj, paths=20_000, seed=4, cash_rate=0.0))
    assert not np.any(no_interest.buckets["interest"])
    assert side * _mean_and_se(no_interest.monthly)[0] > 5 * se


def test_a_premium_earns_the_cash_rate_and_a_flat_account_nothing(sim, free_cj):
    # An unhedged short call's cash is the premium received (the capital's own interest is the
    # benchmark, not counted), so over the month it earns premium × (e^{r·T} − 1) exactly.
    from opl.runtime.pricing import black as pricing

    strat = sim.strategy([sim.option(call=True, qty=10)], rate=0.05)
    res = replay(strategy=strat, run=sim.run(GBM, free_cj, paths=50, capital=1e6))
    t = 30 / 365
    premium = pricing.price(is_call=True, underlying=10_000.0, strike=10_000.0, t=t, vol=0.3, rate=0.05) * 5.0 * 10
    assert np.allclose(res.buckets["interest"][0], premium * np.expm1(0.05 * t), rtol=1e-9)
    never = replay(strategy=strat, run=sim.run(GBM, free_cj, paths=50, capital=1.0))  # the margin is never covered
    assert np.all(never.counters["skipped_months"] == 1) and not np.any(never.buckets["interest"])


def test_margin_deposits_earn_the_margin_rate_when_the_broker_pays_another(sim, free_cj):
    # A broker paying nothing on margin (margin_rate 0) costs the cash rate on the margin posted: the
    # difference to the default (margin earns the cash rate) is the requirement of each previous step —
    # the opening margin over the first — times the step's growth g = e^{r·dt} − 1, each amount then earning
    # the cash rate to the month's end.
    strat = sim.strategy([sim.option(call=True, qty=10)], rate=0.05)
    runs = {m: replay(strategy=strat, run=sim.run(GBM, free_cj, paths=40, capital=1e6, margin_rate=m), trace=True)
            for m in (None, 0.0)}
    growth = np.expm1(0.05 * 30 / 365 / 21)
    requirement = runs[0.0].trace["margin"][0]  # (paths, steps) after each step
    opening = np.full((requirement.shape[0], 1), _opening_margin(free_cj))
    held = np.concatenate([opening, requirement[:, :-1]], axis=1)
    compounding = (1 + growth) ** np.arange(held.shape[1] - 1, -1, -1)
    carry = runs[0.0].buckets["interest"][0] - runs[None].buckets["interest"][0]
    assert np.allclose(carry, -growth * (held * compounding).sum(axis=1), rtol=1e-9)
    assert np.all(carry < 0)


def _opening_margin(pack) -> float:
    from opl.runtime.pricing import black as pricing
    from opl.runtime.market.margin import short_option_margin

    value = pricing.price(is_call=True, underlying=10_000.0, strike=10_000.0, t=30 / 365, vol=0.3, rate=0.05)
    return float(short_option_margin(pack=pack, is_call=True, underlying=10_000.0, strike=10_000.0, premium=value,
                                     lots=10))


def test_the_trigger_states_pnl_and_drawdown_are_computed_when_a_condition_reads_them():
    # Most steps' conditions (adjust_when price_retrace, vega_crush) never read the P&L or the drawdown: the
    # state computes them on first read (TriggerState.measured), the numbers the eager formulas gave.
    from types import SimpleNamespace

    from opl.runtime.engine.book import Book
    from opl.runtime.engine.stepstate import _trigger_state

    shape = (2, 3)
    month_pnl, denominator = np.array([[10.0, -5.0, 0.0], [1.0, 2.0, 3.0]]), np.full(shape, 200.0)
    equity, peak = np.array([[90.0, 100.0, 80.0], [100.0] * 3]), np.full(shape, 100.0)
    mo = SimpleNamespace(price=np.ones((3, 2)), atm=np.ones((3, 2)), n=1, support=1.0, resistance=1.0, band=None)
    state = _trigger_state(mo, 1, Book(shape), np.zeros(shape), month_pnl, denominator, equity, peak, 1_000.0,
                           np.ones(shape), None, 1.0, 1.0, np.zeros(shape), None, None, 1.0)
    assert state.shape == shape
    assert all(callable(getattr(state, name)) for name in ("pnl_percent", "pnl_capital", "drawdown"))
    assert np.array_equal(state.measured("pnl_percent"), month_pnl / denominator * 100.0)
    assert np.array_equal(state.measured("pnl_capital"), month_pnl / 1_000.0 * 100.0)
    assert np.array_equal(state.measured("drawdown"), np.maximum(peak - equity, 0.0) / peak * 100.0)
    assert not callable(state.pnl_percent)  # kept once read


def test_a_steps_states_read_the_months_columns_copied_once_per_step():
    # A month's price and ATM volatility are (paths, steps): a state's conditions read the step's and the
    # open's columns, copied contiguous once per step and month (a round's cut month has its own).
    from types import SimpleNamespace

    from opl.runtime.engine.book import Book
    from opl.runtime.engine.stepstate import _trigger_state

    shape = (2, 3)
    rng = np.random.default_rng(3)
    month = SimpleNamespace(price=rng.uniform(90, 110, (3, 4)), atm=rng.uniform(0.1, 0.4, (3, 4)), n=3,
                            support=1.0, resistance=1.0, band=None)
    cut = SimpleNamespace(**{**vars(month), "price": month.price[[0, 2]], "atm": month.atm[[0, 2]]})

    def state(mo, j):
        return _trigger_state(mo, j, Book((2, mo.price.shape[0])), 0.0, np.zeros(shape), np.ones(shape), 0.0,
                              np.ones(shape), 1.0, np.ones(shape), None, 1.0, 1.0, 0.0, None, None, 1.0)

    first, again = state(month, 1), state(month, 1)
    for name, column in (("price", month.price[:, 1]), ("open_price", month.price[:, 0]), ("iv", month.atm[:, 1]),
                         ("open_iv", month.atm[:, 0])):
        assert np.array_equal(first.measured(name), column) and first.measured(name).flags.c_contiguous
        assert again.measured(name) is first.measured(name)  # the step's copy, not another
    assert np.array_equal(state(month, 2).price, month.price[:, 2])
    assert np.array_equal(state(cut, 2).price, month.price[[0, 2], 2])
    assert np.array_equal(state(month, 2).measured("open_iv"), month.atm[:, 0])
    assert callable(state(month, 3).iv)  # the volatility's columns are made when a condition reads them


def test_conditions_short_circuit_on_numpys_any_and_all():
    # `and`/`or` skip their right side by np.any/np.all of the left's verdict, read without numpy's dispatch
    # (triggers._any, _all): the same answers for numpy bools, Python bools, 0-d, empty and 2-d arrays.
    from opl.runtime.engine.triggers import _all, _any

    for x in (np.bool_(True), np.bool_(False), True, False, np.array(True), np.array(False), np.array([True, False]),
              np.zeros((2, 3), dtype=bool), np.ones((2, 3), dtype=bool), np.array([], dtype=bool)):
        assert _any(x) is bool(np.any(x)) and _all(x) is bool(np.all(x)), x
