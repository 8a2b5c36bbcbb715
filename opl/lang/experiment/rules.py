"""The file's rules in the simulator's runtime form: option legs, the guard rules, the exit
mode's score function and the adjustment module (`opl.runtime.engine.guards`, `opl.runtime.engine.scores`,
`opl.runtime.engine.adjust`).

Everything the simulator cannot run is a located `SettingsError` (E105; E106 for an unknown
score function), never a silent drop: a leg added by ``add_leg`` with another tenor than the
month's, ``roll_tenor`` by a non-positive number of days, an ``add_leg`` of several legs, a
leg number the strategy does not have, ``open_interest`` in a condition.
"""

from __future__ import annotations

from dataclasses import replace

from opl.lang import ast
from opl.lang.conditions import quantity
from opl.lang.experiment.settings import SettingsError, SimSettings

__all__ = ["option_leg", "guard_rules", "score_rule", "adjust_spec", "compile_located", "target_verdict"]

_HELP = "supported triggers and variables are listed in grammar/README.md §7 and runtime/engine/triggers.py"


def _text(report, node) -> str:
    span = getattr(node, "span", None)
    return report.source.text[span.start:span.end] if span is not None and span.end > span.start else ""


def target_verdict(target, values: dict[str, float]) -> bool | None:
    """Evaluate the experiment's ``target`` condition (an `opl.lang.ast` value) on metric values in percent
    (here, not in `opl.runtime.results.metrics`: the runtime does not read the language's syntax tree)."""
    if target is None:
        return None
    from opl.lang.conditions import evaluate

    return evaluate(target, values)


def compile_located(value, *, per_leg: bool = False):
    """A condition lowered (`opl.lang.conditionforms`) and compiled (`opl.runtime.engine.triggers.compile_condition`), its
    errors located (E105)."""
    from opl.lang.conditionforms import lower_condition
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
        text = _text(report, guard.condition)
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
                            "the score functions are listed in runtime/engine/scores.py and grammar/README.md §6")
    return SCORES[name]


def _argument(call: ast.Call, index: int, name: str):
    if name in call.keywords:
        return call.keywords[name].value
    return call.positional[index] if index < len(call.positional) else None


def _strip(value):
    while isinstance(value, ast.Paren):
        value = value.value
    return value


def _is_percent(value) -> bool:
    value = _strip(value)
    if isinstance(value, ast.Unary):
        return _is_percent(value.operand)
    return isinstance(value, ast.Percent)


def _number(call: ast.Call, index: int, name: str, default=None, *, what: str = "a number"):
    arg = _argument(call, index, name)
    if arg is None:
        if default is None:
            raise SettingsError(f"`{call.func}` needs `{name}` ({what}) in the simulator", span=call.span,
                                code="E105")
        return default, False
    q = quantity(arg)
    if q is None:
        raise SettingsError(f"`{call.func}`: `{name}` must be {what}", span=getattr(arg, "span", call.span),
                            code="E105")
    return q, _is_percent(arg)


def _leg_number(call: ast.Call, n_legs: int, *, required: bool) -> int | None:
    arg = _argument(call, 0, "leg")
    if arg is None:
        if required:
            raise SettingsError(f"`{call.func}` needs the number of the leg it acts on", span=call.span, code="E105")
        return None
    q = quantity(arg)
    if q is None or q != int(q) or not 1 <= q <= n_legs:
        named = f"names leg {q:g}, but the strategy has {n_legs} legs" if q is not None else "needs a leg number"
        raise SettingsError(f"`{call.func}` {named}", span=getattr(arg, "span", call.span), code="E105",
                            help="legs are numbered from 1 in normalised order (see `opl compile --format table`)")
    return int(q) - 1


def _new_leg(checked, call: ast.Call, value, tenor_days: float, american: bool):
    """The one leg ``add_leg``/``replace_leg`` opens: an option leg, or signed futures lots."""
    from opl.lang.diagnostics import DiagnosticSink
    from opl.lang.legs import DaysTenor
    from opl.lang.lower import Lowerer
    from opl.lang.normalise import normalise

    doc = checked.document
    lowerer = Lowerer(checked.report.source)
    lowerer.doc = doc
    sink = DiagnosticSink()
    lowerer.sink = sink
    expr = lowerer.legs(value)
    linear = doc.underlying.kind if doc.underlying is not None else "stock"
    legs = normalise(expr, {n: d.expr for n, d in doc.definitions.items()}, sink, lowerer=lowerer,
                     linear_kind=linear).legs if expr is not None else ()
    if len(legs) != 1:
        raise SettingsError(f"`{call.func}` opens one leg in the simulator (found {len(legs)})",
                            span=getattr(value, "span", call.span), code="E105",
                            help="write one leg per action, e.g. `add_leg(long Option(Put, support-300, 30d))`")
    leg = legs[0]
    if leg.kind == "future":
        return None, leg.signed_qty
    if not leg.is_option:
        raise SettingsError(f"`{call.func}`: a `{leg.kind}` leg is not simulated", span=getattr(value, "span", None),
                            code="E105")
    days = leg.tenor.days if isinstance(leg.tenor, DaysTenor) else None
    if days is None or days < tenor_days - 1e-9:
        raise SettingsError(f"`{call.func}`: the simulator adds legs expiring with the month ({tenor_days:g}d) or "
                            f"later, written in days; this leg's tenor is {leg.tenor}",
                            span=getattr(value, "span", call.span), code="E105",
                            help=f"give it a tenor of {tenor_days:g}d or more")
    return replace(option_leg(leg, american=american, span=getattr(value, "span", None)),
                   extra_days=days - tenor_days), 0


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
        kind, text = call.func, _text(report, call) or call.func
        if kind == "roll_nearest_term":
            actions.append(Action(kind=kind, text=text))
        elif kind == "roll":
            leg = _leg_number(call, n_legs, required=False)
            to, _ = _number(call, 1, "to", 2 * tenor_days, what="a tenor such as 60d")
            if to <= tenor_days:
                raise SettingsError(f"`{text}`: the simulator rolls to an expiry after the month's "
                                    f"({tenor_days:g}d from the open)", span=call.span, code="E105",
                                    help=f"write e.g. `roll({(leg or 0) + 1}, {2 * tenor_days:g}d)`, or use "
                                         "`roll_nearest_term()` to re-strike on the month's expiry")
            actions.append(Action(kind=kind, text=text, leg=leg, amount=to - tenor_days))
        elif kind == "roll_tenor":
            leg = _leg_number(call, n_legs, required=True)
            by, _ = _number(call, 1, "by", what="a number of days such as 30d")
            if by <= 0:
                raise SettingsError(f"`{text}`: the simulator moves expiries out (by > 0 days), not in", span=call.span,
                                    code="E105", help="close the leg (`close(leg)`) to end it earlier")
            actions.append(Action(kind=kind, text=text, leg=leg, amount=by))
        elif kind == "shift_strike":
            leg = _leg_number(call, n_legs, required=True)
            by, percent = _number(call, 1, "by", what="a price or a percent")
            actions.append(Action(kind=kind, text=text, leg=leg, amount=by, percent=percent))
        elif kind == "scale_qty":
            leg = _leg_number(call, n_legs, required=True)
            factor, _ = _number(call, 1, "factor", what="a positive factor")
            if factor <= 0:
                raise SettingsError(f"`{text}`: the factor must be positive", span=call.span, code="E105",
                                    help="use `remove_leg` or `close` to drop a leg")
            actions.append(Action(kind=kind, text=text, leg=leg, amount=factor))
        elif kind in ("remove_leg", "close"):
            actions.append(Action(kind=kind, text=text, leg=_leg_number(call, n_legs, required=kind == "remove_leg")))
        elif kind in ("add_leg", "replace_leg"):
            leg = _leg_number(call, n_legs, required=True) if kind == "replace_leg" else None
            value = _argument(call, 1 if kind == "replace_leg" else 0, "with" if kind == "replace_leg" else "leg")
            if value is None:
                raise SettingsError(f"`{text}` needs the leg to open", span=call.span, code="E105")
            new_leg, futures = _new_leg(checked, call, value, tenor_days, american)
            actions.append(Action(kind=kind, text=text, leg=leg, new_leg=new_leg, new_futures=futures))
        elif kind == "hedge_gamma":
            target, _ = _number(call, 0, "target", 0.10, what="a number of delta lots per 1% move per lot")
            if target < 0:
                raise SettingsError(f"`{text}`: the target must not be negative", span=call.span, code="E105")
            actions.append(Action(kind=kind, text=text, amount=target))
        elif kind == "delta_neutralise":
            keep, percent = _number(call, 0, "keep", 0.0, what="a share such as 10%")
            actions.append(Action(kind=kind, text=text, amount=keep / 100.0 if percent else keep))
        elif kind == "hedge":
            arg = _argument(call, 0, "greek")
            greek = _strip(arg).id if isinstance(_strip(arg), ast.Name) else ("delta" if arg is None else None)
            if greek not in ("delta", "gamma"):
                raise SettingsError(f"`{text}`: the simulator hedges `delta` or `gamma`", span=call.span, code="E105")
            actions.append(Action(kind=kind, text=text, greek=greek))
        else:  # pragma: no cover - opl.lang.vocabulary.ACTIONS and this dispatch are kept in step by a test
            raise SettingsError(f"action `{kind}` is not simulated", span=call.span, code="E105")
    return AdjustSpec(when=compile_located(adjust.when), playbook=tuple(actions),
                      abort_if=compile_located(adjust.abort_if) if adjust.abort_if is not None else None,
                      cooldown_days=settings.adjust_cooldown, on_abort=settings.adjust_on_abort)
