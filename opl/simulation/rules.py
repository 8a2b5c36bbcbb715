"""The file's rules in the simulator's runtime form: option legs, the guard rules, the exit
mode's score function and the adjustment module (`opl.runtime.engine.guards`, `opl.runtime.engine.scores`,
`opl.runtime.engine.adjust`).

Everything the simulator cannot run is a located `SettingsError` (E105; E106 for an unknown
score function), never a silent drop: a leg added by ``add_leg`` with another tenor than the
month's, ``roll_tenor`` by a non-positive number of days, an ``add_leg`` of several legs, a
leg number the strategy does not have, ``open_interest`` in a condition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from opl.lang import ir
from opl.lang.experiment.settings import SettingsError, SimSettings

__all__ = ["option_leg", "guard_rules", "score_rule", "adjust_spec", "compile_located", "target_verdict"]

_HELP = "supported triggers and variables are listed in grammar/README.md §7 and opl/runtime/triggers.py"


def target_verdict(target, values: dict[str, float]) -> bool | None:
    """Evaluate the experiment's ``target`` condition (an `opl.lang.ir` condition) on metric values in percent
    (here, not in `opl.runtime.results.metrics`: the runtime does not read the language's syntax tree)."""
    if target is None:
        return None
    from opl.lang.conditions import evaluate

    return evaluate(target, values)


def compile_located(value, *, per_leg: bool = False):
    """A condition lowered (`opl.simulation.conditionforms`) and compiled (`opl.runtime.engine.triggers.compile_condition`), its
    errors located (E105)."""
    from opl.simulation.conditionforms import lower_condition
    from opl.runtime.engine.triggers import UnsupportedCondition, compile_condition

    try:
        return compile_condition(lower_condition(value), per_leg=per_leg)
    except UnsupportedCondition as error:
        raise SettingsError(str(error), span=error.span or getattr(value, "span", None), code="E105",
                            help=_HELP) from None


def option_leg(leg, *, american: bool, span=None):
    """A checked option leg (`opl.lang.legs.Leg`) as the replay trades it (`opl.runtime.engine.legspec.OptionLeg`)."""
    from opl.lang.legs import AbsoluteStrike, DeltaStrike, RelativeStrike
    from opl.runtime.engine.legspec import OptionLeg, StrikeRule

    spec = leg.strike
    if isinstance(spec, AbsoluteStrike):
        rule = StrikeRule(kind="absolute", value=spec.value)
    elif isinstance(spec, RelativeStrike):
        rule = StrikeRule(kind="relative", value=spec.offset, anchor=spec.anchor, percent=spec.percent)
    elif isinstance(spec, DeltaStrike):
        rule = StrikeRule(kind="delta", value=spec.delta)
    else:  # pragma: no cover - the checker knows no other strike form
        raise SettingsError(f"strike `{spec}` cannot be simulated", span=span or leg.span, code="E105")
    return OptionLeg(is_call=leg.option_type == "call", side=leg.side, qty=leg.qty, strike=rule, american=american)


def guard_rules(doc, report) -> tuple:
    """The §3.3 default rules, then the file's own (a restated default counts once)."""
    from opl.lang.checks.guards import BUILTIN_GUARDS
    from opl.runtime.engine.guards import GuardRule

    rules = [GuardRule(kind=kind, text=text, test=compile_located(condition, per_leg=True))
             for kind, text, condition in BUILTIN_GUARDS]
    defaults = {text for _, text, _ in BUILTIN_GUARDS}
    for guard in doc.guards:
        text = report.source.excerpt(guard.condition.span)
        if text in defaults:
            continue
        rules.append(GuardRule(kind=guard.kind, text=text, test=compile_located(guard.condition, per_leg=True)))
    return tuple(rules)


def score_rule(doc):
    """``exit_mode machine_decide(score_fn)``: the registry's function, or None for the other modes."""
    from opl.runtime.engine.scores import SCORES

    if doc.exit.mode != "machine_decide":
        return None
    name = doc.exit.score_fn
    if name not in SCORES:
        from opl.lang.diagnostics import did_you_mean

        guess = did_you_mean(name or "", list(SCORES))
        raise SettingsError(f"unknown score function `{name}` for `machine_decide` (known: {', '.join(SCORES)})",
                            span=doc.spans.get("exit_mode"), code="E106",
                            help=f"did you mean `{guess}`?" if guess else
                            "the score functions are listed in opl/runtime/scores.py and grammar/README.md §6")
    return SCORES[name]


def _number(call: ir.Call, name: str, default=None, *, what: str = "a number") -> tuple[float, bool]:
    """(value, written as a percentage) of the argument ``name``; ``default`` when it is not written."""
    arg = call.get(name)
    if arg is None:
        if default is None:
            raise SettingsError(f"`{call.name}` needs `{name}` ({what}) in the simulator", span=call.span,
                                code="E105")
        return default, False
    if not isinstance(arg, ir.Quantity) or arg.unit == "factor":
        raise SettingsError(f"`{call.name}`: `{name}` must be {what}", span=arg.span, code="E105")
    return arg.value, arg.percent


def _leg_number(call: ir.Call, n_legs: int, *, required: bool) -> int | None:
    arg = call.get("leg")
    if arg is None:
        if required:
            raise SettingsError(f"`{call.name}` needs the number of the leg it acts on", span=call.span, code="E105")
        return None
    q = arg.value if isinstance(arg, ir.Quantity) else None
    if q is None or q != int(q) or not 1 <= q <= n_legs:
        named = f"names leg {q:g}, but the strategy has {n_legs} legs" if q is not None else "needs a leg number"
        raise SettingsError(f"`{call.name}` {named}", span=arg.span, code="E105",
                            help="legs are numbered from 1 in normalised order (see `opl compile --format table`)")
    return int(q) - 1


def _new_leg(checked, call: ir.Call, value: ir.LegArgument, tenor_days: float, american: bool):
    """The one leg ``add_leg``/``replace_leg`` opens: an option leg, or signed futures lots."""
    from opl.lang.diagnostics import DiagnosticSink
    from opl.lang.legs import DaysTenor
    from opl.lang.normalise import normalise

    doc = checked.document
    linear = doc.underlying.kind if doc.underlying is not None else "stock"
    legs = normalise(value.expr, {n: d.expr for n, d in doc.definitions.items()}, DiagnosticSink(),
                     linear_kind=linear).legs
    if len(legs) != 1:
        raise SettingsError(f"`{call.name}` opens one leg in the simulator (found {len(legs)})",
                            span=value.span, code="E105",
                            help="write one leg per action, e.g. `add_leg(long Option(Put, support-300, 30d))`")
    leg = legs[0]
    if leg.kind == "future":
        return None, leg.signed_qty
    if not leg.is_option:
        raise SettingsError(f"`{call.name}`: a `{leg.kind}` leg is not simulated", span=value.span, code="E105")
    days = leg.tenor.days if isinstance(leg.tenor, DaysTenor) else None
    if days is None or days < tenor_days - 1e-9:
        raise SettingsError(f"`{call.name}`: the simulator adds legs expiring with the month ({tenor_days:g}d) or "
                            f"later, written in days; this leg's tenor is {leg.tenor}",
                            span=value.span, code="E105", help=f"give it a tenor of {tenor_days:g}d or more")
    return replace(option_leg(leg, american=american, span=value.span), extra_days=days - tenor_days), 0


@dataclass(frozen=True)
class _ActionInput:
    """What an action builder sees: the lowered call, its source text and the month it acts in."""

    call: ir.Call
    text: str
    checked: object
    n_legs: int
    tenor_days: float
    american: bool


def _roll_nearest_term(a: _ActionInput):
    return dict()


def _roll(a: _ActionInput):
    leg = _leg_number(a.call, a.n_legs, required=False)
    to, _ = _number(a.call, "to", 2 * a.tenor_days, what="a tenor such as 60d")
    if to <= a.tenor_days:
        raise SettingsError(f"`{a.text}`: the simulator rolls to an expiry after the month's "
                            f"({a.tenor_days:g}d from the open)", span=a.call.span, code="E105",
                            help=f"write e.g. `roll({(leg or 0) + 1}, {2 * a.tenor_days:g}d)`, or use "
                                 "`roll_nearest_term()` to re-strike on the month's expiry")
    return dict(leg=leg, amount=to - a.tenor_days)


def _roll_tenor(a: _ActionInput):
    leg = _leg_number(a.call, a.n_legs, required=True)
    by, _ = _number(a.call, "by", what="a number of days such as 30d")
    if by <= 0:
        raise SettingsError(f"`{a.text}`: the simulator moves expiries out (by > 0 days), not in", span=a.call.span,
                            code="E105", help="close the leg (`close(leg)`) to end it earlier")
    return dict(leg=leg, amount=by)


def _shift_strike(a: _ActionInput):
    leg = _leg_number(a.call, a.n_legs, required=True)
    by, percent = _number(a.call, "by", what="a price or a percent")
    return dict(leg=leg, amount=by, percent=percent)


def _scale_qty(a: _ActionInput):
    leg = _leg_number(a.call, a.n_legs, required=True)
    factor, _ = _number(a.call, "factor", what="a positive factor")
    if factor <= 0:
        raise SettingsError(f"`{a.text}`: the factor must be positive", span=a.call.span, code="E105",
                            help="use `remove_leg` or `close` to drop a leg")
    return dict(leg=leg, amount=factor)


def _leg_only(required: bool):
    def build(a: _ActionInput):
        return dict(leg=_leg_number(a.call, a.n_legs, required=required))
    return build


def _opening(replaces: bool):
    def build(a: _ActionInput):
        leg = _leg_number(a.call, a.n_legs, required=True) if replaces else None
        value = a.call.get("with" if replaces else "leg")
        if not isinstance(value, ir.LegArgument):
            raise SettingsError(f"`{a.text}` needs the leg to open", span=a.call.span, code="E105")
        new_leg, futures = _new_leg(a.checked, a.call, value, a.tenor_days, a.american)
        return dict(leg=leg, new_leg=new_leg, new_futures=futures)
    return build


def _hedge_gamma(a: _ActionInput):
    target, _ = _number(a.call, "target", 0.10, what="a number of delta lots per 1% move per lot")
    if target < 0:
        raise SettingsError(f"`{a.text}`: the target must not be negative", span=a.call.span, code="E105")
    return dict(amount=target)


def _delta_neutralise(a: _ActionInput):
    keep, percent = _number(a.call, "keep", 0.0, what="a share such as 10%")
    return dict(amount=keep / 100.0 if percent else keep)


def _hedge(a: _ActionInput):
    arg = a.call.get("greek")
    greek = arg.name if isinstance(arg, ir.Word) else ("delta" if arg is None else None)
    if greek not in ("delta", "gamma"):
        raise SettingsError(f"`{a.text}`: the simulator hedges `delta` or `gamma`", span=a.call.span, code="E105")
    return dict(greek=greek)


# action → its builder: the fields of `opl.runtime.engine.adjust.Action` beyond kind and text, or a
# located SettingsError for what the simulator cannot do. Every action of
# `opl.lang.vocabulary.ACTIONS` has one (tests/simulate/test_vocabulary_tables.py).
ACTION_BUILDERS: dict[str, Callable[[_ActionInput], dict]] = {
    "roll_nearest_term": _roll_nearest_term,
    "roll": _roll,
    "roll_tenor": _roll_tenor,
    "shift_strike": _shift_strike,
    "scale_qty": _scale_qty,
    "remove_leg": _leg_only(required=True),
    "close": _leg_only(required=False),
    "add_leg": _opening(replaces=False),
    "replace_leg": _opening(replaces=True),
    "hedge_gamma": _hedge_gamma,
    "delta_neutralise": _delta_neutralise,
    "hedge": _hedge,
}


def adjust_spec(checked, settings: SimSettings, *, tenor_days: float, american: bool):
    """The adjustment module in runtime form, or None when the file has none."""
    from opl.runtime.engine.adjust import Action, AdjustSpec

    doc, report = checked.document, checked.report
    adjust = doc.adjust
    if adjust.when is None or not adjust.playbook:
        return None  # an incomplete module never runs (W412 at opl check says so)
    n_legs = len(checked.legs)
    actions = []
    for call in adjust.playbook:
        text = report.source.excerpt(call.span) or call.name
        given = _ActionInput(call, text, checked, n_legs, tenor_days, american)
        actions.append(Action(kind=call.name, text=text, **ACTION_BUILDERS[call.name](given)))
    return AdjustSpec(when=compile_located(adjust.when), playbook=tuple(actions),
                      abort_if=compile_located(adjust.abort_if) if adjust.abort_if is not None else None,
                      cooldown_days=settings.adjust_cooldown, on_abort=settings.adjust_on_abort)
