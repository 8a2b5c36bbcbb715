"""Stress scenarios are surprises that hurt as a trader means them: the options are opened at
the unshocked market's prices, then the market does the scenario's thing."""

from __future__ import annotations

import numpy as np
import pytest

from opl.runtime.engine.hedging import HedgeSpec
from opl.runtime.engine.processes import JumpParams, PathGenerator, ProcessSpec, RegimeParams
from opl.runtime.engine.replay import replay
from opl.simulation.scenarios import HANDLERS, plan_scenario
from opl.lang.experiment.settings import SettingsError
from opl.lang.vocabulary import SCENARIOS

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

GBM = ProcessSpec(vol=0.25)


def _plan(name, value, form="percent", process=GBM, strategy=None):
    return plan_scenario(name=name, kind="stress", value=value, form=form, text=f"{name}(...)", process=process,
                         strategy=strategy)


def _hedged_strangle(sim):
    # Sold at implied = realised volatility (flat smile, no spread), hedged to zero delta every day.
    legs = [sim.option(call=False, offset=-600.0, qty=10), sim.option(call=True, offset=600.0, qty=10)]
    return sim.strategy(legs, hedge=HedgeSpec(every=1, band=0.0, keep=0.0, along="none"))


def _drop(sim, free_cj, strategy, name, value, process=GBM):
    """Mean monthly P&L of the base run and of the scenario, and the SE of the paired difference."""
    run = sim.run(process, free_cj, paths=3_000, months=1, seed=11)
    base = replay(strategy=strategy, run=run).monthly[0, :, 0]
    plan = _plan(name, value, process=process, strategy=strategy)
    shocked = replay(strategy=plan.strategy, run=run.__class__(**{**run.__dict__, "process": plan.process}))
    shocked = shocked.monthly[0, :, 0]
    diff = shocked - base
    se = np.hypot(base.std(ddof=1), shocked.std(ddof=1)) / np.sqrt(base.size)
    return base.mean(), shocked.mean(), diff.mean(), se


@pytest.mark.parametrize("name,value", [("vol_up", 0.5), ("gap", -0.08)])
def test_stresses_lower_the_mean_of_a_hedged_short_strangle(sim, free_cj, name, value):
    base, shocked, drop, se = _drop(sim, free_cj, _hedged_strangle(sim), name, value)
    assert abs(base) < 3 * se  # fairly priced and hedged: the base earns 0
    assert drop < -3 * se, f"{name}: mean {base:.0f} -> {shocked:.0f} (SE {se:.0f})"


def test_more_frequent_jumps_hurt_a_hedged_short_strangle(sim, free_cj):
    process = ProcessSpec(vol=0.25, jump=JumpParams(intensity=4.0, std=0.05))
    _, _, drop, se = _drop(sim, free_cj, _hedged_strangle(sim), "jump_intensity", 4.0, process)
    assert drop < -3 * se


def test_sr_shift_moves_the_market_away_from_the_levels_the_strikes_were_set_on(sim, free_cj):
    legs = [sim.option(call=False, anchor="support", qty=10), sim.option(call=True, anchor="resistance", qty=10)]
    _, _, drop, se = _drop(sim, free_cj, sim.strategy(legs), "sr_shift", -0.05)
    assert drop < -3 * se


def test_vol_up_is_a_surprise_the_open_is_priced_before_it():
    plan = _plan("vol_up", 0.5)
    gen = {k: PathGenerator(spec=p, paths=200, price=100.0, month_years=30 / 365, seed=3)
           for k, p in (("base", GBM), ("up", plan.process))}
    base, up = gen["base"].next_month(), gen["up"].next_month()
    assert np.array_equal(up.vol[:, 0], base.vol[:, 0])  # the month opens at the model's volatility
    assert np.allclose(up.vol[:, 1:], 1.5 * base.vol[:, 1:])  # then the marks follow the realised volatility
    realised = np.diff(np.log(up.price), axis=1).std() / np.diff(np.log(base.price), axis=1).std()
    assert realised == pytest.approx(1.5, rel=0.01)
    # The next month opens at the model's volatility again: a fresh surprise.
    assert np.array_equal(gen["up"].next_month().vol[:, 0], gen["base"].next_month().vol[:, 0])


@pytest.mark.parametrize("name,value,form,field,factor", [
    ("fees_up", 0.5, "percent", "fee_factor", 1.5),  # +50% raised fees by half (it halved them)
    ("fees_up", 2.0, "factor", "fee_factor", 2.0),
    ("fees_up", 2.0, "number", "fee_factor", 2.0),
    ("slippage", 3.0, "factor", "slippage_factor", 3.0),
    ("slippage", 1.0, "percent", "slippage_factor", 2.0),
    ("margin_up", 0.5, "percent", "margin_factor", 1.5),
    ("margin_up", 2.0, "factor", "margin_factor", 2.0),  # x2 doubles (it tripled)
])
def test_cost_scenarios_read_percent_and_factor_alike(name, value, form, field, factor):
    plan = _plan(name, value, form)
    assert not plan.market and plan.factors == {field: pytest.approx(factor)}
    assert f"× {factor:g}" in plan.definition


def test_vol_and_jump_factors_read_percent_and_factor_alike():
    assert _plan("vol_up", 1.5, "factor").process.surprise.vol == pytest.approx(1.5)
    assert _plan("vol_down", 0.3).process.surprise.vol == pytest.approx(0.7)
    jumps = ProcessSpec(vol=0.2, jump=JumpParams(intensity=2.0))
    assert _plan("jump_intensity", 0.5, process=jumps).process.realised_jump.intensity == pytest.approx(3.0)
    assert _plan("jump_intensity", 3.0, "factor", process=jumps).process.realised_jump.intensity == 6.0


@pytest.mark.parametrize("name,value,form,message", [
    ("vol_down", 1.0, "percent", "leaves no volatility"),
    ("gap", 2.0, "factor", "takes a change, not a factor"),
    ("gap", -1.0, "percent", "above -100%"),
    ("fees_up", -2.0, "factor", "must not be negative"),
    ("hit_rate", 0.7, "number", "needs a direction signal"),
])
def test_bad_scenario_values_are_clear_errors(name, value, form, message):
    with pytest.raises(SettingsError, match=message):
        _plan(name, value, form)


def test_every_scenario_has_a_handler_and_a_definition():
    assert set(HANDLERS) == set(SCENARIOS)
    regime = ProcessSpec(vol=0.25, jump=JumpParams(), regime=RegimeParams(hit_rate=0.9), limit=0.1)
    for name in SCENARIOS:
        plan = _plan(name, 0.05 if name != "hit_rate" else 0.7, process=regime)
        assert plan.definition and plan.name == name


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_margin_up_on_an_etf_pack_scales_the_option_rates_it_has(engine):
    # The SSE 50ETF pack has no futures margin rate (None): margin_up scaled it and raised a TypeError
    # (None * factor). It scales the rates the pack sets instead (rate, min_rate), so a short straddle's
    # margin under margin_up(x2) is larger than the base's, on the reference formulas and the kernel alike.
    from opl.runtime.engine import kernels
    from opl.runtime.engine.book import Book
    from opl.runtime.engine.positions import _margin, _margin_packs
    from opl.runtime.engine.runspec import Variant
    from opl.runtime.market.rules import load_pack

    pack = load_pack("sse_50etf")
    assert pack.margin.futures_rate is None
    factor = _plan("margin_up", 2.0, "factor").factors["margin_factor"]
    packs = _margin_packs(pack, (Variant(), Variant(margin_factor=factor)))
    assert (packs[1].margin.rate, packs[1].margin.min_rate) == (2 * pack.margin.rate, 2 * pack.margin.min_rate)
    shape = (2, 3)
    price = np.array([2.5, 2.9, 3.3])
    straddle = [(is_call, 2.9, np.full(shape, 0.08), np.full(shape, -1.0), 0.0) for is_call in (True, False)]
    none = np.zeros(shape)
    if engine == "fast":
        margin = kernels.book_margin(kernels.MarginRule.of(packs), straddle, none, price, shape)
    else:
        margin = _margin(packs, Book(shape), None, None, price, legs=straddle, futures_lots=none)
    assert np.all(margin[0] > 0) and np.all(margin[1] > margin[0])
