"""The adjustment module, the guard rules, machine_decide, structure_destabilised and leg-level
variables on constructed paths (a 1%-volatility future with one gap a month)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import opl
from opl.runtime.engine.adjust import Action, AdjustSpec
from opl.runtime.engine.guards import GuardRule
from opl.runtime.engine.hedging import HedgeSpec
from opl.runtime.market.margin import short_option_margin
from opl.runtime.pricing.black import price
from opl.runtime.engine.processes import ProcessSpec
from opl.runtime.engine.replay import replay
from opl.runtime.engine.runspec import Variant
from opl.runtime.engine.scores import SCORES
from opl.simulation.conditionforms import lower_condition
from opl.runtime.engine.triggers import compile_condition

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _condition(text: str, *, per_leg: bool = False):
    doc = opl.check(f"opl-lang 1.0\nS = short Option(Call, 100, 30d)\nadjust_when {text}\n").document
    assert doc.adjust.when is not None, text
    return compile_condition(lower_condition(doc.adjust.when), per_leg=per_leg)


def _gap(gap: float, vol: float = 0.01) -> ProcessSpec:
    return ProcessSpec(vol=vol, gap=gap)


def _adjust(when: str, *actions: Action, abort: str | None = None, **changes) -> AdjustSpec:
    return AdjustSpec(when=_condition(when), playbook=actions, abort_if=_condition(abort) if abort else None,
                      **changes)


def _ledger_adds_up(res) -> None:
    assert np.allclose(sum(res.buckets.values()), res.monthly.sum(axis=-1))


def test_roll_after_a_gap_fires_once_and_pays_two_trades_per_lot(sim, cj):
    call = sim.option(call=True, offset=300.0)
    adjust = _adjust("price_retrace(>2%)", Action(kind="roll_nearest_term", text="roll_nearest_term()"))
    strat = sim.strategy([call], adjust=adjust, greeks=True)
    res = replay(strategy=strat, run=sim.run(_gap(0.05), cj, paths=200), variants=(Variant(size=3),), trace=True)
    # The condition turns true at the gap and stays true: one round per path, never at the open — unless
    # the gap comes at the last step (21 of 21), the options' expiry.
    fired = res.trace["adjusted"][0]
    price = res.trace["price"][0]
    step = np.argmax(price > 10_000 * 1.02, axis=1) + 1
    rolled = step < 21
    assert 150 < rolled.sum() < 200
    assert np.array_equal(res.counters["adjust_rounds"][0], rolled.astype(int))
    assert np.array_equal(res.counters["adjust_done_0"][0], rolled.astype(int))
    assert np.array_equal(np.argmax(fired, axis=1)[rolled] + 1, step[rolled])
    # Close 3 lots and sell 3 again: fees of both trades in the adjustments bucket, nothing else.
    fees = cj.fees.option
    expected = np.where(rolled, -3 * (fees.rate("close") + fees.rate("open", short=True)), 0.0)
    assert np.allclose(res.buckets["adjustments"][0], expected)
    # Open, roll (close + open); the options then expire (no guard here), which is no trade.
    assert np.array_equal(res.counters["option_lots"][0], np.where(rolled, 3 + 6, 3))
    _ledger_adds_up(res)


def test_roll_restrikes_around_the_new_price(sim, free_cj):
    call = sim.option(call=True, offset=300.0)
    adjust = _adjust("price_retrace(>2%)", Action(kind="roll_nearest_term", text="roll_nearest_term()"))
    rolled = replay(strategy=sim.strategy([call], adjust=adjust), run=sim.run(_gap(0.05), free_cj, paths=100),
                    trace=True)
    kept = replay(strategy=sim.strategy([call]), run=sim.run(_gap(0.05), free_cj, paths=100))
    # After a 5% gap the call struck at 10,400 is deep in the money (delta ~1); re-struck 300 above the
    # new price it is out of the money (delta ~0). With 1% volatility the kept call then loses what the
    # future gains after the roll, the rolled one nothing: the difference is the future's move since the
    # roll times the multiplier (and the small premium sold again).
    fired = rolled.trace["adjusted"][0]
    hit = fired.any(axis=1)
    price = rolled.trace["price"][0]
    move = price[:, -1] - price[np.arange(100), np.argmax(fired, axis=1)]
    gain = (rolled.monthly - kept.monthly)[0, :, 0]
    assert np.all(gain[~hit] == 0.0)
    assert np.corrcoef(gain[hit], move[hit])[0, 1] > 0.95
    assert np.all(np.abs(gain[hit] - 5 * move[hit]) < 10_000 * 0.01 * 5)


def test_cooldown_and_edges(sim, free_cj):
    call = sim.option(call=True, offset=300.0)
    adjust = _adjust("price_retrace(>0%)", Action(kind="delta_neutralise", text="delta_neutralise()"),
                     cooldown_days=5.0)
    res = replay(strategy=sim.strategy([call], adjust=adjust), run=sim.run(ProcessSpec(vol=0.3), free_cj, paths=300),
                 trace=True)
    fired = res.trace["adjusted"][0]
    price = res.trace["price"][0]
    up = price > 10_000
    previous = np.concatenate([np.zeros((up.shape[0], 1), dtype=bool), up[:, :-1]], axis=1)
    assert np.all(~fired | (up & ~previous))  # fires only where the condition turns true
    step_days = 30 / 21
    for row in fired:
        steps = np.flatnonzero(row)
        assert np.all(np.diff(steps) * step_days >= 5.0 - 1e-9)
    assert fired.sum() > 100  # a random walk crosses its start often enough to see the cooldown at work


def test_abort_if_prices_the_action_s_extra_margin(sim, cj):
    put = sim.option(call=False, offset=-1000.0)
    shift = Action(kind="shift_strike", text="shift_strike(1, +5%)", leg=0, amount=5.0, percent=True)
    process = _gap(-0.05)
    aborting = _adjust("price_retrace(<-2%)", shift, abort="additional_margin(%) > 15")
    res = replay(strategy=sim.strategy([put], adjust=aborting), run=sim.run(process, cj, paths=100), trace=True)
    fired = res.trace["adjusted"][0]
    hit = fired.any(axis=1)
    assert hit.sum() > 80  # every gap but one on the last step
    rows = np.flatnonzero(hit)
    step = np.argmax(fired, axis=1)[rows]
    # 9000 -> 9500 (5% up, on the grid) with the future at ~9500: the OTM amount vanishes and the premium
    # grows, so the requirement rises far more than 15%: every round is aborted and hands over to the exit.
    assert np.array_equal(res.counters["adjust_aborted_0"][0], hit.astype(int))
    assert np.all(res.counters["adjust_done_0"] == 0)
    assert np.array_equal(res.counters["adjust_exits"][0], hit.astype(int))
    # Early when more than the guard's 2 days were left (steps 1-19 of 21).
    assert np.array_equal(res.counters["early_exits"][0], (hit & (np.argmax(fired, axis=1) < 19)).astype(int))
    assert np.all(res.trace["margin"][0][rows, step] == 0.0)  # closed at the step of the round
    skipping = replace(aborting, on_abort="skip")
    kept = replay(strategy=sim.strategy([put], adjust=skipping), run=sim.run(process, cj, paths=100))
    assert np.all(kept.counters["adjust_exits"] == 0) and np.all(kept.counters["exits"] == 0)
    assert np.array_equal(kept.counters["adjust_aborted_0"][0], hit.astype(int))
    generous = _adjust("price_retrace(<-2%)", shift, abort="additional_margin(%) > 1000")
    done = replay(strategy=sim.strategy([put], adjust=generous), run=sim.run(process, cj, paths=100), trace=True)
    assert np.array_equal(done.counters["adjust_done_0"][0], hit.astype(int))
    assert np.all(done.counters["adjust_aborted_0"] == 0)
    # The book then carries the put at 9500: its margin, by the exchange formula, is what the replay books.
    f = done.trace["price"][0][rows, step]
    after = done.trace["margin"][0][rows, step]
    before = short_option_margin(pack=cj, is_call=False, underlying=f, strike=9_000.0, premium=0.0, lots=1)
    assert np.all(after > before * 1.15)
    _ledger_adds_up(done)


def test_hedge_gamma_buys_calls_until_the_target(sim, free_cj):
    legs = [sim.option(call=True, qty=10), sim.option(call=False, qty=10)]
    target = 0.05
    adjust = _adjust("days_left(<12d)", Action(kind="hedge_gamma", text=f"hedge_gamma({target})", amount=target))
    res = replay(strategy=sim.strategy(legs, adjust=adjust, greeks=True),
                 run=sim.run(ProcessSpec(vol=0.2), free_cj, paths=200), trace=True)
    fired = res.trace["adjusted"][0]
    assert fired.any(axis=1).all()
    step = np.argmax(fired, axis=1)
    gamma = res.trace["gamma"][0][np.arange(200), step]
    # Short a straddle near the money: gamma short by far more than 5% of 20 lots per 1% before the
    # hedge; after it, within the target (whole lots bought until it is met).
    assert np.all(gamma >= -target * 20 - 1e-9)
    done = res.counters["adjust_done_0"][0] == 1
    assert done.sum() > 100
    assert np.all(res.counters["option_lots"][0][done] > 20)  # calls were bought


@pytest.mark.parametrize("action,lots", [
    (Action(kind="scale_qty", text="scale_qty(1, 2)", leg=0, amount=2.0), 2 + 2),  # then expire: no trade
    (Action(kind="remove_leg", text="remove_leg(1)", leg=0), 2 + 2),
    (Action(kind="close", text="close()"), 2 + 2),
    # Out one month: closed and sold again, then sold back at market when the month ends.
    (Action(kind="roll_tenor", text="roll_tenor(1, 30d)", leg=0, amount=30.0), 2 + 4 + 2),
])
def test_leg_actions_trade_what_they_say(sim, free_cj, action, lots):
    call = sim.option(call=True, offset=300.0, qty=2)
    adjust = _adjust("price_retrace(>2%)", action)
    res = replay(strategy=sim.strategy([call], adjust=adjust), run=sim.run(_gap(0.05), free_cj, paths=50), trace=True)
    hit = res.trace["adjusted"][0].any(axis=1)
    assert hit.sum() > 40
    assert np.array_equal(res.counters["adjust_done_0"][0], hit.astype(int))
    assert np.array_equal(res.counters["option_lots"][0], np.where(hit, lots, 2))
    if action.kind == "close":
        assert np.array_equal(res.counters["adjust_exits"][0], hit.astype(int))
    _ledger_adds_up(res)


def test_add_and_replace_leg(sim, free_cj):
    from opl.runtime.engine.legspec import StrikeRule, OptionLeg

    put = OptionLeg(is_call=False, side=1, qty=1, american=False, strike=StrikeRule(kind="relative", value=-5.0,
                                                                                   percent=True))
    call = sim.option(call=True, offset=300.0)
    add = _adjust("price_retrace(>2%)", Action(kind="add_leg", text="add_leg(long put)", new_leg=put))
    res = replay(strategy=sim.strategy([call], adjust=add, guard_days=2.0), run=sim.run(_gap(0.05), free_cj, paths=50),
                 variants=(Variant(size=2),), trace=True)
    hit = res.trace["adjusted"][0].any(axis=1)
    assert hit.sum() > 40
    # Open 2 calls, add 2 puts, close all 4 at the days_left guard.
    assert np.array_equal(res.counters["option_lots"][0], np.where(hit, 2 + 2 + 4, 2 + 2))
    swap = _adjust("price_retrace(>2%)", Action(kind="replace_leg", text="replace_leg(1, long put)", leg=0,
                                                new_leg=put))
    res = replay(strategy=sim.strategy([call], adjust=swap, guard_days=2.0), run=sim.run(_gap(0.05), free_cj,
                                                                                       paths=50), trace=True)
    hit = res.trace["adjusted"][0].any(axis=1)
    # Open the call; close it and buy the put; close the put at the guard.
    assert np.array_equal(res.counters["option_lots"][0], np.where(hit, 1 + 2 + 1, 1 + 1))
    _ledger_adds_up(res)


def test_avoid_leg_if_blocks_the_leg_and_warn_if_changes_nothing(sim, free_cj):
    near, far = sim.option(call=True, offset=300.0), sim.option(call=False, offset=-1_200.0)
    avoid = GuardRule(kind="avoid_leg_if", text="strike_offset > 8%", test=_condition("strike_offset > 8%",
                                                                                      per_leg=True))
    res = replay(strategy=sim.strategy([near, far], guards=(avoid,)), run=sim.run(_gap(0.0), free_cj, paths=40,
                                                                                 months=2))
    assert np.all(res.counters["avoided_legs"] == 2)  # the far put, every month
    assert np.all(res.counters["option_lots"] == 2)  # only the call, opened each month (then it expires)
    warn = GuardRule(kind="warn_if", text="leg_pnl > 30%", test=_condition("leg_pnl > 30%", per_leg=True))
    process = ProcessSpec(vol=0.25)
    plain = replay(strategy=sim.strategy([near, far]), run=sim.run(process, free_cj, paths=300, months=2))
    warned = replay(strategy=sim.strategy([near, far], guards=(warn,)), run=sim.run(process, free_cj, paths=300,
                                                                                    months=2))
    assert np.array_equal(plain.monthly, warned.monthly)  # alerts have no trading effect
    assert warned.counters["alerts"].sum() > 0
    assert np.all(warned.counters["alerts"] <= 2 * 2)  # at most one alert a leg a month (it turns true once)


def test_machine_decide_trigger_vote_matches_first_hit_and_all_required(sim, free_cj):
    triggers = (_condition("pnl_percent(>40%)"), _condition("price_retrace(>3%)"))
    process = ProcessSpec(vol=0.3)
    legs = [sim.option(call=True, offset=300.0)]
    first = replay(strategy=sim.strategy(legs, exit_triggers=triggers), run=sim.run(process, free_cj, paths=300))
    vote = replay(strategy=sim.strategy(legs, exit_triggers=triggers, exit_mode="machine_decide",
                                        score=SCORES["trigger_vote"]), run=sim.run(process, free_cj, paths=300))
    assert np.array_equal(first.monthly, vote.monthly)  # 1 of 2 is a 0.5 share
    both = replay(strategy=sim.strategy(legs, exit_triggers=triggers, exit_mode="all_required"),
                  run=sim.run(process, free_cj, paths=300))
    unanimous = replay(strategy=sim.strategy(legs, exit_triggers=triggers, exit_mode="machine_decide",
                                             score=SCORES["trigger_vote"], score_threshold=1.0),
                       run=sim.run(process, free_cj, paths=300))
    assert np.array_equal(both.monthly, unanimous.monthly)
    capture = replay(strategy=sim.strategy(legs, exit_mode="machine_decide", score=SCORES["profit_capture"]),
                     run=sim.run(process, free_cj, paths=300))
    assert 0 < capture.counters["early_exits"].sum() < 300
    greeks = replay(strategy=sim.strategy(legs, exit_mode="machine_decide", score=SCORES["pnl_greeks_time"],
                                          greeks=True, guard_days=2.0), run=sim.run(process, free_cj, paths=300))
    assert greeks.counters["early_exits"].sum() > 0
    never = replay(strategy=sim.strategy(legs, exit_mode="machine_decide", score=SCORES["pnl_greeks_time"],
                                         greeks=True, guard_days=2.0, score_threshold=1e6),
                   run=sim.run(process, free_cj, paths=300))
    assert never.counters["early_exits"].sum() == 0


def test_structure_destabilised_and_leg_variables_equal_their_spelled_out_conditions(sim, free_cj):
    process = ProcessSpec(vol=0.3)
    legs = [sim.option(call=True, offset=400.0)]  # one short lot at 10,400 (on the grid), N = 1

    def run(condition):
        return replay(strategy=sim.strategy(legs, exit_triggers=(_condition(condition),), greeks=True),
                      run=sim.run(process, free_cj, paths=300))

    assert np.array_equal(run("structure_destabilised(delta)").monthly, run("delta > 0.25 or delta < -0.25").monthly)
    # strike_offset < 2% for a call at K: in the money, or within 2% below K.
    k = 10_400.0
    near = run("strike_offset < 2%")
    assert np.array_equal(near.monthly, run(f"price_outside(0, {k / 1.02})").monthly)
    assert 0 < near.counters["early_exits"].sum() < 300
    assert np.array_equal(run("moneyness < 3%").monthly, run(f"price_outside(0, {k / 1.03})").monthly)


def test_peak_margin_is_the_largest_requirement_over_capital_open_included(sim, cj):
    call = sim.option(call=True, offset=600.0)
    capital = 200_000.0
    res = replay(strategy=sim.strategy([call]), run=sim.run(_gap(-0.05), cj, paths=50, capital=capital),
                 trace=True)
    # A 5% fall: the call's requirement (futures margin less half its OTM amount) is largest at the open.
    margin = res.trace["margin"][0]
    premium = price(is_call=True, underlying=10_000.0, strike=10_600.0, t=30 / 365, vol=0.01, rate=0.0)
    opening = short_option_margin(pack=cj, is_call=True, underlying=10_000.0, strike=10_600.0, premium=premium,
                                  lots=1)
    steps = margin.max(axis=1)
    assert np.allclose(res.peak_margin[0], np.maximum(steps, opening) / capital, rtol=1e-12)
    # Where the fall came first the opening requirement is the peak: it is counted.
    assert np.sum(opening > steps) > 5 and np.allclose(res.peak_margin[0][opening > steps], opening / capital)
    # Without the fall the requirement rises with the future: the peak is then a step's, not the open's.
    flat = replay(strategy=sim.strategy([call]), run=sim.run(_gap(0.05), cj, paths=50, capital=capital), trace=True)
    assert np.allclose(flat.peak_margin[0], np.maximum(flat.trace["margin"][0].max(axis=1), opening) / capital)


def test_score_registry_matches_the_vocabulary_and_the_checker_warns_of_unknown_ones():
    from opl.lang.vocabulary import SCORE_FUNCTIONS

    assert tuple(SCORE_FUNCTIONS) == tuple(SCORES)
    # The spec leaves score functions open (its own example writes `score_fn`): a warning in the checker,
    # a located error in `opl simulate` (tests/simulate/test_cli.py).
    report = opl.check("opl-lang 1.0\nS = short Option(Call, 100, 30d)\nexit_mode machine_decide(vote)\n").report
    found = [d for d in report.diagnostics if d.code == "W410"]
    assert len(found) == 1 and "unknown score function `vote`" in found[0].message and found[0].span.column == 26
    assert not report.has_errors
    ok = opl.check("opl-lang 1.0\nS = short Option(Call, 100, 30d)\nexit_mode machine_decide(trigger_vote)\n")
    assert not [d for d in ok.report.diagnostics if d.severity == "error"]
    assert ok.document.exit.score_fn == "trigger_vote"


def test_a_roll_that_would_not_change_the_strike_trades_nothing(sim, cj):
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule

    fixed = OptionLeg(is_call=True, side=-1, qty=1, american=False, strike=StrikeRule(kind="absolute", value=10_400.0))
    adjust = _adjust("price_retrace(>2%)", Action(kind="roll_nearest_term", text="roll_nearest_term()"))
    res = replay(strategy=sim.strategy([fixed], adjust=adjust), run=sim.run(_gap(0.05), cj, paths=50), trace=True)
    assert res.counters["adjust_rounds"].sum() > 40
    assert np.all(res.counters["adjust_done_0"] == 0) and np.all(res.buckets["adjustments"] == 0.0)


def test_a_calendar_spread_is_fairly_priced_and_its_far_leg_sold_back(sim, free_cj):
    from dataclasses import replace as change

    near = sim.option(call=True, offset=200.0)
    far = change(sim.option(call=True, side=1, offset=200.0), extra_days=30.0)
    res = replay(strategy=sim.strategy([near, far]), run=sim.run(ProcessSpec(vol=0.3), free_cj, paths=20_000))
    # Flat smile, rate 0: both legs are marked at Black-76 with the realised volatility, the far one with
    # 30 days left when the month ends — a martingale, so the month's P&L has mean 0.
    pnl = res.monthly.ravel()
    assert abs(pnl.mean()) < 3 * pnl.std(ddof=1) / np.sqrt(pnl.size)
    # The near call expires (exercised when in the money, no trade), the far call is sold back at market,
    # never exercised: 1 + 1 + 1 lots on every path.
    assert np.all(res.counters["option_lots"] == 3)


def test_a_round_s_columns_write_back_into_the_book_and_leave_the_month_s_tables_alone():
    """`Book.put_columns` (the adjustment round's write-back) writes the book's own arrays in place; a mark
    shared with the month's tables is copied first, and whether a slot holds lots follows its lots."""
    from opl.runtime.engine.book import Book
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule

    table = np.arange(12.0).reshape(4, 3)  # a month's marks of one leg: (paths, steps)
    book = Book((2, 4))
    g = book.add_group(OptionLeg(is_call=True, side=-1, qty=1, american=True,
                                 strike=StrikeRule(kind="absolute", value=100.0)))
    base = book.slots[book.add_slot(g, is_call=True, american=True, strike=np.full(4, 100.0), base=0,
                                    qty=np.array([[-1.0, 0.0, -1.0, 0.0], [-2.0, 0.0, -2.0, 0.0]]))]
    base.value = table[:, 1]
    moved = book.slots[book.add_slot(g, is_call=True, american=True, strike=None)]
    own = moved.value
    cols = np.array([0, 2])
    sub = book.columns(cols)
    sub.slots[0].qty = np.zeros((2, 2))
    sub.slots[0].value = np.full(2, 99.0)
    sub.slots[1].qty = np.array([[-1.0, -1.0], [-2.0, -2.0]])
    sub.slots[1].value = np.full((2, 2), 7.0)
    book.put_columns(sub, cols)
    assert np.array_equal(table, np.arange(12.0).reshape(4, 3))  # the month's table untouched
    assert np.array_equal(base.value, [[99.0, 4.0, 99.0, 10.0]] * 2)
    assert not base.held() and moved.held()
    assert moved.value is own and np.array_equal(own, [[7.0, 0.0, 7.0, 0.0]] * 2)  # in place


def test_a_round_s_book_cuts_a_slot_s_marks_when_first_read_and_writes_back_only_those_set():
    """`Book.columns` (`book._CutSlot`): the lots are cut at once, a mark when the round first reads it
    (the values of the whole book's on those paths); a mark read but not set is not written back."""
    from opl.runtime.engine.book import Book
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule

    book = Book((2, 5))
    g = book.add_group(OptionLeg(is_call=False, side=-1, qty=1, american=True,
                                 strike=StrikeRule(kind="absolute", value=100.0)))
    slot = book.slots[book.add_slot(g, is_call=False, american=True, strike=None, qty=-np.ones((2, 5)))]
    slot.value = np.arange(10.0).reshape(2, 5)
    slot.delta = np.arange(5.0)  # a mark per path
    value, delta, gamma = slot.value, slot.delta, slot.gamma
    cols = np.array([1, 3])
    sub = book.columns(cols)
    t = sub.slots[0]
    assert not {"value", "delta", "gamma", "strike"} & set(vars(t))  # nothing cut yet
    assert np.array_equal(t.qty, -np.ones((2, 2))) and t.held()
    assert np.array_equal(t.value, [[1.0, 3.0], [6.0, 8.0]]) and np.array_equal(t.delta, [1.0, 3.0])
    assert "value" in vars(t) and "gamma" not in vars(t)
    # C-ordered, as the round's kernels take them without a copy (x[:, cols] is Fortran-ordered)
    assert t.qty.flags.c_contiguous and t.value.flags.c_contiguous
    from opl.runtime.engine.ledger import Ledger

    gathered = Ledger((2, 5), 1, ("adjust_rounds",)).columns(cols)
    assert gathered.buckets["adjustments"].flags.c_contiguous and gathered.counters["adjust_rounds"].flags.c_contiguous
    t.gamma = np.full((2, 2), 5.0)
    with pytest.raises(AttributeError):
        t.not_a_mark
    book.put_columns(sub, cols)
    assert slot.value is value and slot.delta is delta  # read, not set: not written
    assert slot.gamma is gamma and np.array_equal(gamma, [[0.0, 5.0, 0.0, 5.0, 0.0]] * 2)


def test_a_rolls_strikes_share_the_steps_levels_and_volatility_and_match_each_leg_resolved_alone():
    """`_Month.strike_for` keeps the step's price, re-centred levels and ATM volatility for the next leg
    (`_Month._strike_inputs`): every leg, step, recentring and cut month gets the strike it gets alone."""
    from opl.runtime.engine.legspec import Levels, OptionLeg, StrikeRule
    from opl.runtime.engine.marking import SmileRule
    from opl.runtime.engine.months import _Month
    from opl.runtime.market.rules import load_pack

    rng = np.random.default_rng(5)

    def month(price, vol):
        mo = _Month.__new__(_Month)
        mo.price, mo.vol, mo.t, mo.rate, mo.pack = price, vol, np.linspace(30, 0, 5) / 365, 0.01, load_pack("czce_cj")
        mo.levels, mo.smile = Levels(support_width=0.04, resistance_width=0.06), SmileRule()
        mo.support, mo.resistance = price[:, 0] * 0.95, price[:, 0] * 1.05
        return mo

    price, vol = rng.uniform(9_000, 11_000, (6, 5)), rng.uniform(0.2, 0.4, (6, 5))
    legs = [OptionLeg(is_call=False, side=-1, qty=1, american=True, strike=StrikeRule(kind="relative", value=-100.0,
                                                                       anchor="support")),
            OptionLeg(is_call=True, side=-1, qty=1, american=True, strike=StrikeRule(kind="delta", value=0.25))]
    shared = month(price, vol)
    for j, recentre, leg in [(1, True, legs[0]), (1, True, legs[1]), (1, False, legs[1]), (3, True, legs[0]),
                             (3, True, legs[1])]:
        alone = month(price, vol).strike_for(leg, j, recentre=recentre, extra_days=0.0)
        assert np.array_equal(shared.strike_for(leg, j, recentre=recentre, extra_days=0.0), alone)
    cut = month(price[[1, 4]], vol[[1, 4]])
    vars(cut)["_strike_kept"] = shared._strike_kept  # what a `columns` copy of the month carries over
    assert np.array_equal(cut.strike_for(legs[1], 3, recentre=True, extra_days=0.0),
                          month(price[[1, 4]], vol[[1, 4]]).strike_for(legs[1], 3, recentre=True, extra_days=0.0))


def test_a_round_s_cut_book_and_month_let_go_of_the_whole_month_once_written_back():
    """A round's objects are cyclic (the desk's closures) and freed by the collector, late: once written back,
    its cut book holds no whole slot and its cut month none of the whole month's kept columns — else every
    past month's book and prices stayed alive until a full collection (+50 MB over four months at 20,000
    paths × 5 sizes)."""
    import gc
    import weakref

    from opl.runtime.engine.book import Book
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule
    from opl.runtime.engine.months import _Month
    from opl.runtime.engine.stepstate import _columns_at

    cols = np.array([0, 2])
    gc.disable()
    try:
        book = Book((2, 4))
        g = book.add_group(OptionLeg(is_call=True, side=-1, qty=1, american=True,
                                     strike=StrikeRule(kind="absolute", value=100.0)))
        book.add_slot(g, is_call=True, american=True, strike=None, qty=-np.ones((2, 4)))
        whole = weakref.ref(book.slots[0])
        sub = book.columns(cols)
        sub.slots[0].value = sub.slots[0].value + 1.0
        round_objects = [sub]
        round_objects.append(round_objects)  # a cycle, as a round's desk is
        book.put_columns(sub, cols)
        del book, sub
        assert whole() is None
    finally:
        gc.enable()
    mo = _Month.__new__(_Month)
    mo.price, mo.vol, mo.atm = np.ones((4, 3)), np.ones((4, 3)), np.ones((4, 3))
    mo.support, mo.resistance, mo.signal = np.ones(4), np.ones(4), np.ones(4)
    _columns_at(mo, 1)
    assert "_step_columns" in vars(mo) and "_step_columns" not in vars(mo.columns(cols))


def test_a_round_s_write_back_by_flat_indices_is_numpy_s_column_assignment():
    """`book.put_paths` (a round's write-back: the book's slots, the ledger's buckets, the equity) writes what
    ``full[:, cols] = part`` writes, for C-ordered wholes and parts and for the other layouts it hands on."""
    from opl.runtime.engine.book import flat_paths, put_paths

    rng = np.random.default_rng(9)
    for variants, paths in ((1, 7), (3, 50), (5, 400)):
        cols = np.sort(rng.choice(paths, rng.integers(1, paths), replace=False))
        flat = flat_paths((variants, paths), cols)
        for part in (rng.normal(size=(variants, cols.size)), rng.normal(size=(cols.size, variants)).T,
                     rng.normal(size=cols.size), rng.random((variants, cols.size)) < 0.5):
            for full in (rng.normal(size=(variants, paths)), np.asfortranarray(rng.normal(size=(variants, paths)))):
                want = full.copy()
                want[:, cols] = part
                put_paths(full, cols, flat, part)
                assert np.array_equal(full, want)


def test_a_lone_additional_margin_abort_is_recognised_and_nothing_else():
    """`adjust._margin_bound`: the fast engine tests ``abort_if`` without the step's state only for a lone
    additional-margin comparison (as the file writes it, or the trigger); any other rule gets the state."""
    from opl.runtime.engine import conditionspec as spec
    from opl.runtime.engine.adjust import _margin_bound

    def rule(text):
        return getattr(_condition(text), "rule", None)

    assert _margin_bound(rule("additional_margin(%) > 15")) == (">", 15.0)
    assert _margin_bound(spec.Trigger(measure="additional_margin", op="<=", bound=2.0)) == ("<=", 2.0)
    for other in ("additional_margin(%) > 15 or days_left < 3d", "pnl < -5", "margin_utilisation(>15%)",
                  "pnl_percent(<-25%)"):
        assert _margin_bound(rule(other)) is None, other


def test_a_count_of_nothing_adds_nothing_and_cuts_no_counter():
    """`Ledger.count`: a mask holding nowhere (most of a step's counts: alerts, an adjustment's aborts) adds
    nothing and, on a round's cut ledger, does not cut the counter; other masks count per element, broadcast,
    amounts rounded to whole numbers."""
    from opl.runtime.engine.ledger import Ledger

    ledger = Ledger((2, 5), 1, ("adjust_rounds",))
    cols = np.array([1, 3])
    sub = ledger.columns(cols)
    sub.count("alerts", np.zeros((2, 2), dtype=bool))
    sub.count("option_lots", np.zeros(2, dtype=bool), np.full((2, 2), 3.0))
    assert "alerts" not in sub.counters and "option_lots" not in sub.counters
    sub.count("alerts", np.array([True, False]))  # per path: every variant
    sub.count("option_lots", np.array([[True, False], [False, False]]), np.full((2, 2), 2.6))
    ledger.put_columns(sub, cols)
    ledger.count("adjust_rounds", np.True_)
    assert ledger.counters["alerts"].tolist() == [[0, 1, 0, 0, 0]] * 2
    assert ledger.counters["option_lots"].tolist() == [[0, 3, 0, 0, 0], [0] * 5]
    assert ledger.counters["adjust_rounds"].tolist() == [[1] * 5] * 2


def test_warn_if_decided_by_the_legs_days_left_makes_no_held_mask():
    """`guards.warned` on `guards.leg_states`: a rule a leg's days_left decides (the default ``warn_if``, most
    steps) never makes the held slots' masks; one that reads the leg holds where the leg is held only."""
    from types import SimpleNamespace

    from opl.runtime.engine.book import Book
    from opl.runtime.engine.guards import leg_states, warned
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule

    rule = GuardRule(kind="warn_if", text="t", test=_condition("days_left > 30d && leg_pnl > 25%", per_leg=True))
    book = Book((2, 3))
    g = book.add_group(OptionLeg(is_call=True, side=1, qty=1, american=True,
                                 strike=StrikeRule(kind="absolute", value=100.0)))
    slot = book.slots[book.add_slot(g, is_call=True, american=True, strike=None,
                                    qty=np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 2.0]]))]
    slot.value, slot.entry = np.full((2, 3), 2.0), np.ones((2, 3))  # +100% on every element
    book.add_slot(g, is_call=True, american=True, strike=None)  # never held
    price = np.full(3, 100.0)
    for days_left, expected in ((10.0, None), (40.0, slot.qty != 0)):  # None: no rule holds on any path
        legs = leg_states(book, price, days_left)
        state = SimpleNamespace(shape=(2, 3), days_left=days_left, price=price, leg=None)
        got = warned((rule,), state, legs)
        assert got is None if expected is None else np.array_equal(got, expected)
        assert (legs[0]._mask is None) == (days_left < 30) and legs[1].held is False
