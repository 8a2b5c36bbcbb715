"""The backtest shares the simulator's replay: given months replay exactly as simulated ones.

* the simulator's own months handed back through ``RunSpec.source`` reproduce its run bit
  for bit (hedge, triggers, exercise, sizes and cost variants included);
* a simulated path re-marked the way a history is (`mark_cycle`: no settlements, the
  surface's implied volatility) gives the simulator's P&L on that path;
* `mark_cycle` uses a settlement where there is one and reads delta at its implied volatility.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import opl
from opl.runtime.engine.exercise import AssignmentSpec
from opl.runtime.engine.hedging import HedgeSpec
from opl.runtime.engine.historical import GivenMonths, HistoricalMonth, mark_cycle
from opl.runtime.engine.legspec import Levels, OptionLeg, StrikeRule
from opl.runtime.engine.marking import AmericanMarker, SmileRule
from opl.runtime.engine.processes import GarchParams, JumpParams, PathGenerator, ProcessSpec, RegimeParams
from opl.runtime.engine.months import _Month
from opl.runtime.engine.replay import replay
from opl.runtime.engine.runspec import RunSpec, StrategySpec, Variant
from opl.runtime.market.rules import load_pack
from opl.simulation.conditionforms import lower_condition
from opl.runtime.engine.triggers import compile_condition

MONTHS = 6


def _trigger(text: str):
    doc = opl.check(f"opl-lang 1.0\nS = short Option(Put, 100, 30d)\nexit_triggers [ {text} ]\n").document
    return compile_condition(lower_condition(doc.exit.triggers[0]))


def _strategy(american: bool) -> StrategySpec:
    legs = (OptionLeg(is_call=False, side=-1, qty=1, american=american,
                      strike=StrikeRule(kind="relative", anchor="support", value=-100)),
            OptionLeg(is_call=True, side=-1, qty=1, american=american,
                      strike=StrikeRule(kind="relative", anchor="resistance", value=100)))
    return StrategySpec(legs=legs, multiplier=5.0, contract_size=5.0, rate=0.015,
                        hedge=HedgeSpec(every=1, band=0.05, keep=0.1, along="direction"),
                        assignment=AssignmentSpec(action="take_delivery", storage_per_day=2.0, funding_rate=0.03),
                        exit_triggers=(_trigger("pnl_percent(<-25%)"),), guard_days=2.0, margin_buffer=0.2,
                        levels=Levels(support_width=0.05, resistance_width=0.06), smile=SmileRule())


def _run(paths: int = 1, exact: bool = False) -> RunSpec:
    process = ProcessSpec(vol=0.3, garch=GarchParams(), jump=JumpParams(intensity=6.0, std=0.06),
                          regime=RegimeParams(hit_rate=0.9), limit=0.10)
    return RunSpec(process=process, pack=load_pack("czce_cj"), price=10_000.0, capital=200_000.0, paths=paths,
                   months=MONTHS, seed=11, chunk=paths, exact_american=exact)


def _simulated_months(strategy, run) -> list[_Month]:
    gen = PathGenerator(spec=run.process, paths=run.paths, price=run.price, month_years=strategy.tenor_days / 365,
                        days_per_month=run.days_per_month, steps_per_day=run.steps_per_day,
                        seed=np.random.SeedSequence([run.seed, 0]))
    marker = AmericanMarker(american=True, rate=strategy.rate, exact=run.exact_american)
    euro = AmericanMarker(american=False, rate=strategy.rate)
    return [_Month(run, strategy, gen.next_month(), marker, euro) for _ in range(run.months)]


VARIANTS = (Variant(size=1.0), Variant(size=3.0, fee_factor=2.0, slippage_factor=3.0))


def test_the_simulators_own_months_given_back_replay_bit_for_bit():
    strategy, run = _strategy(american=True), _run(paths=40)
    simulated = replay(strategy=strategy, run=run, variants=VARIANTS, trace=True)
    given = replay(strategy=strategy, run=replace(run, process=None, source=GivenMonths.factory(
        _simulated_months(strategy, run))), variants=VARIANTS, trace=True)
    assert np.array_equal(simulated.monthly, given.monthly)
    for key in simulated.buckets:
        assert np.array_equal(simulated.buckets[key], given.buckets[key]), key
    for key in simulated.counters:
        assert np.array_equal(simulated.counters[key], given.counters[key]), key
    assert np.array_equal(simulated.max_drawdown, given.max_drawdown)
    # The run exercised what it should share: hedging, exits and the margin machinery.
    assert simulated.counters["hedge_trades"].sum() > 0 and simulated.counters["exits"].sum() > 0


def _remarked(months: list[_Month], strategy) -> list[HistoricalMonth]:
    """The simulated path marked as a history is: no settlements, the smile's volatility as the surface."""
    out = []
    for mo in months:
        price = mo.price[0]
        surface = [strategy.smile.iv(vol=mo_vol, forward=price, strike=k[0]) for mo_vol, k in
                   zip([mo._vol[0]] * len(strategy.legs), mo.strikes)]
        out.append(mark_cycle(legs=strategy.legs, price=price, t=mo.t, strikes=[k[0] for k in mo.strikes],
                              quotes=[np.full(mo.n + 1, np.nan)] * len(strategy.legs), surface=surface,
                              atm=mo.atm[0], support=mo.support[0], resistance=mo.resistance[0],
                              signal=mo.signal[0], rate=strategy.rate))
    return out


@pytest.mark.parametrize("american", [False, True])
def test_a_simulated_path_marked_as_history_gives_the_simulators_pnl(monkeypatch, american):
    strategy, run = _strategy(american=american), _run(paths=1, exact=True)
    # Keep each month's model volatility, which the history's surface stands in for.
    original = _Month.__init__

    def keep_vol(self, run_, strat, mp, marker, euro):
        original(self, run_, strat, mp, marker, euro)
        self._vol = mp.vol

    monkeypatch.setattr(_Month, "__init__", keep_vol)
    months = _simulated_months(strategy, run)
    simulated = replay(strategy=strategy, run=run, variants=VARIANTS)
    history = replay(strategy=strategy, run=replace(run, process=None,
                                                    source=GivenMonths.factory(_remarked(months, strategy))),
                     variants=VARIANTS)
    # European legs: the same Black marks; American: BAW exact both ways, the exercise boundary
    # exact in the history and tabulated in the simulator (1e-4 of the strike in value).
    tolerance = 1e-6 if not american else 1e-4 * 10_000 * 5 * 3 * 3
    assert np.allclose(simulated.monthly, history.monthly, rtol=0, atol=tolerance)
    for key in ("assigned_months", "exits", "hedge_trades", "liquidations"):
        assert np.array_equal(simulated.counters[key], history.counters[key]), key


def test_mark_cycle_uses_settlements_and_their_implied_volatility():
    leg = OptionLeg(is_call=True, side=-1, qty=1, american=False, strike=StrikeRule(kind="absolute", value=3.0))
    price = np.array([3.0, 3.05, 2.98, 3.1])
    t = np.array([21, 20, 19, 0]) / 365.0
    from opl.runtime.pricing.black import price as black

    true_iv = 0.23
    quotes = black(is_call=True, underlying=price, strike=3.0, t=t, vol=true_iv, rate=0.02, carry=0.02)
    quotes = np.where(np.arange(4) == 2, np.nan, quotes)  # no settlement on the third session
    surface = np.full(4, 0.40)
    month = mark_cycle(legs=[leg], price=price, t=t, strikes=[3.0], quotes=[quotes], surface=[surface],
                       atm=surface, support=2.8, resistance=3.2, signal=0.0, rate=0.02, carry=0.02)
    value, delta = month.value[0][0], month.delta[0][0]
    assert value[0] == quotes[0] and value[1] == quotes[1]
    assert value[2] == pytest.approx(float(black(is_call=True, underlying=2.98, strike=3.0, t=19 / 365, vol=0.40,
                                                 rate=0.02, carry=0.02)))
    assert value[3] == pytest.approx(0.1)  # at expiry: intrinsic
    from opl.runtime.pricing.black import greeks

    assert delta[0] == pytest.approx(float(greeks(is_call=True, underlying=3.0, strike=3.0, t=21 / 365, vol=true_iv,
                                                  rate=0.02, carry=0.02).delta), abs=1e-8)
    assert month.days_left == pytest.approx([21, 20, 19, 0]) and month.span == pytest.approx([0, 1, 1, 19])
    # A European option is only exercised at expiry, in the money.
    assert month.exercise[0][0].tolist() == [False, False, False, True]


def test_historical_month_rejects_a_bad_calendar():
    with pytest.raises(ValueError, match="non-increasing"):
        HistoricalMonth(price=np.ones(3), t=np.array([0.01, 0.02, 0.0]), strikes=[], value=[], delta=[],
                        exercise=[], atm=np.ones(3), support=0.9, resistance=1.1, signal=0.0)
    with pytest.raises(ValueError, match="two sessions"):
        HistoricalMonth(price=np.ones(1), t=np.array([0.0]), strikes=[], value=[], delta=[], exercise=[],
                        atm=np.ones(1), support=0.9, resistance=1.1, signal=0.0)


class _Quotes:
    """Settlements of the 3.0 call only; the surface flat at 25%."""

    def __init__(self, settle):
        self.settle = settle

    def settlement(self, j, is_call, strikes, extra_days):
        strikes = np.asarray(strikes, dtype=float)
        hit = is_call & np.isclose(strikes, 3.0) & (extra_days == 0)
        return np.where(hit, self.settle[j], np.nan)

    def iv(self, j, strikes, extra_days):
        return np.full(np.shape(strikes), 0.25)


def test_a_month_with_quotes_prices_other_series_for_the_adjustment_module():
    from opl.runtime.pricing.black import price as black

    leg = OptionLeg(is_call=True, side=-1, qty=1, american=False, strike=StrikeRule(kind="relative", value=0.0))
    price = np.array([3.0, 3.02, 3.05])
    t = np.array([20, 19, 18]) / 365.0
    settle = black(is_call=True, underlying=price, strike=3.0, t=t, vol=0.2, rate=0.02, carry=0.02)
    kwargs = dict(legs=[leg], price=price, t=t, strikes=[3.0], quotes=[settle], surface=[np.full(3, 0.25)],
                  atm=np.full(3, 0.25), support=2.8, resistance=3.2, signal=0.0, rate=0.02, carry=0.02)
    plain = mark_cycle(**kwargs)
    assert not hasattr(plain, "quote")  # the replay's test for a month the adjustment module can use
    month = mark_cycle(**kwargs, gamma=True, other=_Quotes(settle), pack=load_pack("sse_50etf"), levels=Levels())
    where = np.array([[True], [True]])  # two variants of the one path
    value, delta, gamma, exercise = month.quote(is_call=True, american=False, strike=np.array([[3.0], [3.1]]),
                                                extra_days=0.0, j=1, where=where)
    assert value[0, 0] == settle[1]  # listed: the settlement
    assert value[1, 0] == pytest.approx(float(black(is_call=True, underlying=3.02, strike=3.1, t=19 / 365, vol=0.25,
                                                    rate=0.02, carry=0.02)))  # not listed: the surface
    assert gamma.min() > 0 and not exercise.any() and 0 < delta.min() < delta.max() < 1
    later = month.quote(is_call=True, american=False, strike=np.array([[3.0], [3.0]]), extra_days=30.0, j=1,
                        where=np.array([[True], [False]]))
    assert later[0][1, 0] == 0.0 and later[0][0, 0] > value[0, 0]  # a later expiry: the surface, worth more
    assert month.gamma is not None and month.gamma[0].shape == (1, 3)
    # The SSE grid: 0.05 up to 3 CNY, 0.1 above.
    assert month.strike_for(leg, 0, recentre=True, extra_days=0.0).tolist() == [3.0]
    assert month.snap_up(np.array([2.93, 3.01])).tolist() == [2.95, 3.1]
