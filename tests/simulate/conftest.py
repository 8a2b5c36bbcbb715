"""Builders shared by the simulator tests: a fee-free CZCE jujube pack and small strategies."""

from __future__ import annotations

import pytest

from opl.runtime.engine.legspec import Levels, OptionLeg, StrikeRule
from opl.runtime.engine.marking import SmileRule
from opl.runtime.engine.runspec import RunSpec, StrategySpec
from opl.runtime.market.rules import FeeSchedule, FeesSpec, load_pack

FLAT_SMILE = SmileRule(spread=0.0, floor=0.0, skew=0.0, curvature=0.0)


@pytest.fixture(scope="session")
def cj():
    return load_pack("czce_cj")


@pytest.fixture(scope="session")
def free_cj(cj):
    """The jujube pack without fees, so P&L tests see the pricing alone."""
    return cj.model_copy(update={"fees": FeesSpec(option=FeeSchedule(), futures=FeeSchedule())})


def option(*, call: bool, side: int = -1, qty: int = 1, anchor: str = "price", offset: float = 0.0,
           american: bool = False) -> OptionLeg:
    return OptionLeg(is_call=call, side=side, qty=qty, american=american,
                     strike=StrikeRule(kind="relative", anchor=anchor, value=offset))


def strategy(legs, **changes) -> StrategySpec:
    base = dict(legs=tuple(legs), multiplier=5.0, contract_size=5.0, guard_days=None, smile=FLAT_SMILE, rate=0.0,
                levels=Levels())
    base.update(changes)
    return StrategySpec(**base)


def run(process, pack, **changes) -> RunSpec:
    base = dict(process=process, pack=pack, price=10_000.0, capital=1e9, paths=2_000, months=1, seed=1,
                option_ticks=0.0, futures_ticks=0.0)
    base.update(changes)
    return RunSpec(**base)


@pytest.fixture(scope="session")
def sim():
    """The builders above (test modules cannot import conftest under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(option=option, strategy=strategy, run=run)
