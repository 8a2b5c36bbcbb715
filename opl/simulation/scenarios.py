"""The stress and sensitivity scenarios of `opl simulate`: one handler per scenario name.

A scenario is what a trader means by it: a *surprise*. The month's options are sold or
bought at the prices of the unshocked market — the model's implied volatility, the spot
team's levels, the signal as given — and then the market does the scenario's thing
(`opl.runtime.engine.processes.Surprise`). A scenario that also moved the prices the options
are opened at (as ``vol_up`` once did, scaling implied volatility with realised) would
pay a short-volatility book more premium for the risk it stresses.

Each handler reads the scenario's value as written — ``+50%`` (form ``percent``), ``x3``
(``factor``) or a bare number — checks it, and returns a `ScenarioPlan`: the changed
price model or strategy (a *market* scenario, replayed on its own pass with the base
seed) or the cost and margin multipliers (replayed as variants on the base paths), and
``definition``, the exact sentence `opl simulate` prints for it. The one-line meaning of
every name is the language vocabulary's (`opl.lang.vocabulary.SCENARIOS`, the same names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

from opl.lang.experiment.settings import SettingsError

__all__ = ["ScenarioPlan", "HANDLERS", "scenario_plans", "plan_scenario"]

Form = Literal["percent", "factor", "number"]


@dataclass(frozen=True)
class ScenarioPlan:
    """One scenario ready to run: ``process``/``strategy`` for a market scenario, ``factors``
    (`opl.runtime.engine.runspec.Variant` fields) for a cost or margin one."""

    name: str
    kind: str  # "stress" | "sensitivity"
    text: str
    definition: str
    market: bool
    process: object = None
    strategy: object = None
    factors: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Input:
    """A scenario as written, with the base model and strategy it shocks."""

    name: str
    value: float
    form: Form
    text: str
    span: object
    process: object  # opl.runtime.engine.processes.ProcessSpec
    strategy: object  # opl.runtime.engine.runspec.StrategySpec

    def fail(self, why: str) -> SettingsError:
        return SettingsError(f"`{self.text}` {why}", span=self.span)

    def multiplier(self, *, bare: Literal["factor", "change"], sign: int = 1) -> float:
        """The value as a factor: ``+50%`` → 1.5 (``sign`` −1: 0.5), ``x3`` → 3; a bare number is read
        as a factor or as a change like a percent (``bare``)."""
        if self.form == "factor" or (self.form == "number" and bare == "factor"):
            return self.value
        return 1.0 + sign * self.value

    def change(self) -> float:
        """The value as a change (``-8%`` → −0.08); a factor (``x2``) is refused."""
        if self.form == "factor":
            raise self.fail(f"takes a change, not a factor: write it like `{self.name}(-5%)`")
        return self.value


def _vol(sc: _Input, sign: int) -> tuple:
    from opl.runtime.engine.processes import Surprise

    k = sc.multiplier(bare="change", sign=sign)
    if k <= 0:
        raise sc.fail("leaves no volatility")
    p = sc.process
    jumps = (f"; jump sizes × {k:g} (N({p.jump.mean * k:.2%}, {p.jump.std * k:.2%}²))" if p.jump is not None
             else "")
    definition = (f"each month's options are opened at the model's implied volatility; from the first step the "
                  f"realised diffusive volatility is × {k:g} (σ {p.vol:.1%} → {p.vol * k:.1%}){jumps}, and the "
                  "implied volatility of the marks and the hedge's delta follow it; unannounced, every month")
    return replace(p, surprise=Surprise(vol=k)), sc.strategy, definition


def _jump_intensity(sc: _Input) -> tuple:
    from opl.runtime.engine.processes import JumpParams, Surprise

    k = sc.multiplier(bare="factor")
    if k < 0:
        raise sc.fail("must not be negative")
    p = sc.process
    jump = p.jump or JumpParams()
    realised = replace(jump, intensity=jump.intensity * k)
    priced = (f"the model's {jump.intensity:g} jumps a year" if p.jump is not None
              else "a model without jumps (the scenario adds the default jumps)")
    definition = (f"each month's options are opened at {priced}; from the first step jumps of "
                  f"N({jump.mean:.2%}, {jump.std:.2%}²) arrive {realised.intensity:g} times a year (× {k:g}), and the "
                  "implied volatility of the marks follows; unannounced, every month")
    return replace(p, surprise=Surprise(jump=realised)), sc.strategy, definition


def _gap(sc: _Input) -> tuple:
    v = sc.change()
    if v <= -1:
        raise sc.fail("must be above -100%")
    limit = f" (the daily limit of {sc.process.limit:.0%} caps the day's close; the excess opens the next day)" \
        if sc.process.limit is not None else ""
    definition = (f"the futures open {v:+.1%} from the previous close on one random trading day of every month and "
                  f"path{limit}, after the month's options are sold at prices that do not know it; the gap does not "
                  "feed the GARCH variance")
    return replace(sc.process, gap=v), sc.strategy, definition


def _sr_shift(sc: _Input) -> tuple:
    v = sc.change()
    if v <= -1:
        raise sc.fail("must be above -100%")
    definition = (f"the strikes are set on the spot team's support and resistance as given, then the market moves to "
                  f"levels {v:+.1%} away: a drift of ln(1 {'+' if v >= 0 else '−'} {abs(v):.1%}) spread over every "
                  "month, not in the options' prices")
    return replace(sc.process, drift=math.log1p(v)), sc.strategy, definition


def _hit_rate(sc: _Input, lowered: bool) -> tuple:
    regime = sc.process.regime
    if regime is None:
        raise sc.fail("needs a direction signal: add `signal direction hit_rate 0.9`")
    rate = regime.hit_rate - sc.change() if lowered else sc.change()
    if not 0.0 <= rate <= 1.0:
        raise sc.fail(f"gives a hit rate of {rate:g}, outside [0, 1]")
    definition = (f"the direction signal is right in {rate:.0%} of months instead of {regime.hit_rate:.0%}; the hedge "
                  f"still keeps its exposure along the signal and the options' prices do not know the drift "
                  f"(±{regime.drift:.1%} a month)")
    return replace(sc.process, regime=replace(regime, hit_rate=rate)), sc.strategy, definition


def _drift(sc: _Input) -> tuple:
    v = sc.change()
    definition = (f"a log drift of {v:.1%} a month against the signal (an Up month drifts down, a Down month up; "
                  "none in a Flat month), not in the options' prices")
    return replace(sc.process, drift_against=v), sc.strategy, definition


def _cost(sc: _Input, field_: str, what: str) -> tuple:
    k = sc.multiplier(bare="factor")
    if k < 0:
        raise sc.fail("must not be negative")
    return {field_: k}, f"{what} × {k:g} on every trade, on the base paths"


def _margin_up(sc: _Input) -> tuple:
    k = sc.multiplier(bare="change")
    if k <= 0:
        raise sc.fail("must leave a positive margin")
    return {"margin_factor": k}, (f"the exchange's futures margin rate × {k:g} — and with it the short options' "
                                  "margin, which the exchange formula builds on it — at the open and at every step, "
                                  "on the base paths")


_Market = Callable[[_Input], tuple]  # -> (process, strategy, definition)
_Cost = Callable[[_Input], tuple]  # -> (variant factors, definition)

#: name → (market handler, None) or (None, cost handler).
HANDLERS: dict[str, tuple[_Market | None, _Cost | None]] = {
    "vol_up": (lambda sc: _vol(sc, +1), None),
    "vol_down": (lambda sc: _vol(sc, -1), None),
    "gap": (_gap, None),
    "jump_intensity": (_jump_intensity, None),
    "slippage": (None, lambda sc: _cost(sc, "slippage_factor", "option and futures slippage (ticks a lot)")),
    "fees_up": (None, lambda sc: _cost(sc, "fee_factor", "exchange fees")),
    "sr_shift": (_sr_shift, None),
    "hit_rate": (lambda sc: _hit_rate(sc, False), None),
    "hit_rate_down": (lambda sc: _hit_rate(sc, True), None),
    "margin_up": (None, _margin_up),
    "drift": (_drift, None),
}

def plan_scenario(*, name: str, kind: str, value: float, form: Form, text: str, process, strategy,
                  span=None) -> ScenarioPlan:
    """The `ScenarioPlan` of one scenario (a `SettingsError` at ``span`` for a bad value)."""
    market, cost = HANDLERS[name]
    sc = _Input(name, value, form, text, span, process, strategy)
    if market is not None:
        p, s, definition = market(sc)
        return ScenarioPlan(name, kind, text, definition, True, process=p, strategy=s)
    factors, definition = cost(sc)
    return ScenarioPlan(name, kind, text, definition, False, factors=factors)


def scenario_plans(doc, report, process, strategy) -> list[ScenarioPlan]:
    """Every ``stress`` and ``sensitivity`` scenario of the file's experiment block, in order."""
    plans = []
    exp = doc.experiment
    if exp is None:
        return plans
    for kind, scenarios in (("stress", exp.stress), ("sensitivity", exp.sensitivity)):
        for sc in scenarios:
            text = report.source.excerpt(sc.span) or sc.name
            if sc.value is None:
                raise SettingsError(f"scenario `{sc.name}` needs a value, e.g. `{sc.name}(+50%)`", span=sc.span,
                                    code="E103")
            if sc.name not in HANDLERS:  # pragma: no cover - the vocabulary and the table are kept in step by a test
                raise SettingsError(f"scenario `{sc.name}` is not supported by the simulator yet", span=sc.span,
                                    code="E105")
            plans.append(plan_scenario(name=sc.name, kind=kind, value=sc.value, form=sc.form, text=text,
                                       process=process, strategy=strategy, span=sc.span))
    return plans
