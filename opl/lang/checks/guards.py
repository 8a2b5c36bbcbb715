"""Guard rules (spec §3.3) and the further W4xx guards: W401, W402, W404, W405, W408, W411.

The two rules of §3.3 are on by default and evaluated per leg where the file gives
enough to know the variables; the file's own ``avoid_leg_if`` rules report W401 and
its ``warn_if`` rules W402. Variables a leg cannot know (``leg_pnl`` without
``entry_price``) leave the rule undecided and silent: the simulator evaluates every
rule at every step.
"""

from __future__ import annotations

from opl.lang import ir
from opl.lang.checks.context import CheckContext
from opl.lang.conditions import evaluate, variables
from opl.lang.estimates import Market, black_price
from opl.lang.legs import Leg
from opl.lang.source import UNKNOWN_SPAN


def _builtin(kind: str, text: str, left, op, right, left2, op2, right2) -> tuple[str, str, ir.Condition]:
    condition = ir.BoolOp("and", ir.Compare(op, ir.Variable(left), right), ir.Compare(op2, ir.Variable(left2), right2))
    return kind, text, condition


BUILTIN_GUARDS = (
    _builtin("avoid_leg_if", "days_left < 2d && strike_offset > 10%", "days_left", "<", ir.Quantity(2, "days"),
             "strike_offset", ">", ir.Quantity(10.0, "percent")),
    _builtin("warn_if", "days_left > 30d && leg_pnl > +25%", "days_left", ">", ir.Quantity(30, "days"),
             "leg_pnl", ">", ir.Quantity(25.0, "percent")),
)


GUARD_CODE = {"avoid_leg_if": "W401", "warn_if": "W402"}  # the code each kind of rule reports


def leg_variables(leg: Leg, market: Market, open_interest: float | None) -> dict[str, float]:
    """The guard variables of one leg that the file's inputs determine."""
    env: dict[str, float] = {"qty": float(leg.qty)}
    if open_interest is not None:
        env["open_interest"] = open_interest
    if market.iv is not None:
        env["iv"] = market.iv * 100
    if not leg.is_option:
        return env
    years = market.years(leg)
    if years is not None:
        env["days_left"] = years * 365
    k, s = market.strike(leg), market.price
    if k is not None and s is not None and s > 0:
        env["moneyness"] = (k / s - 1) * 100
        out_of_money = k > s if leg.option_type == "call" else k < s
        env["strike_offset"] = abs(k / s - 1) * 100 if out_of_money else 0.0
    entry = market.entry
    if entry is not None and years is not None and k is not None and market.iv is not None and s is not None:
        then = black_price(is_call=leg.option_type == "call", s=entry, k=k, t=years, sigma=market.iv,
                           r=market.rate, b=market.carry)
        now = market.premium(leg)
        if then > 0 and now is not None:
            env["leg_pnl"] = leg.side * (now - then) / then * 100
    return env


def guard_rules(ctx: CheckContext) -> None:
    doc = ctx.document
    market = Market.of(doc)
    rules = [(kind, text, condition, None) for kind, text, condition in BUILTIN_GUARDS
             if GUARD_CODE[kind] not in ctx.options.no_guards]
    for guard in doc.guards:
        text = ctx.source.text[guard.condition.span.start:guard.condition.span.end]
        if any(text == builtin_text for _, builtin_text, _ in BUILTIN_GUARDS):
            continue  # restating a default rule changes nothing (spec §3.3)
        rules.append((guard.kind, text, guard.condition, guard.span))
    for leg in ctx.legs:
        env = leg_variables(leg, market, doc.market.open_interest)
        for kind, text, condition, span in rules:
            if evaluate(condition, env) is not True:
                continue
            where = (f"guard on line {span.line}" if span is not None else "default guard (spec §3.3)")
            if kind == "avoid_leg_if":
                ctx.sink.emit("W401", f"leg `{leg}` matches `avoid_leg_if {text}`", leg.span, "leg blocked",
                              help="choose a nearer strike or a later expiry; the runtime will not open this leg",
                              notes=(f"{where}; {_describe(env, condition)}",))
            else:
                ctx.sink.emit("W402", f"leg `{leg}` matches `warn_if {text}`", leg.span, "consider a roll or close",
                              help="take the gain (`close`) or roll the leg (`roll_tenor`)",
                              notes=(f"{where}; {_describe(env, condition)}",))


def _describe(env: dict[str, float], condition: ir.Condition) -> str:
    names = sorted(v for v in variables(condition) if v in env)
    return ", ".join(f"{name} = {env[name]:.4g}" for name in names)


def exit_module(ctx: CheckContext) -> None:
    doc = ctx.document
    if doc.exit.declared or (doc.strategy is None and not doc.definitions):
        return
    span = doc.strategy.name_span if doc.strategy is not None else doc.spans.get("opl-lang", UNKNOWN_SPAN)
    ctx.sink.emit("W404", "no exit module: the default `exit_triggers [ expiry_passed() ]` applies", span,
                  "no exit declared", help="add e.g. `exit_mode first_hit` and "
                  "`exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]`")


def naked_short_calls(ctx: CheckContext) -> None:
    doc = ctx.document
    short_calls = [leg for leg in ctx.legs if leg.is_option and leg.option_type == "call" and leg.side < 0]
    if not short_calls:
        return
    cover = sum(leg.qty for leg in ctx.legs if leg.side > 0 and (
        (leg.is_option and leg.option_type == "call") or leg.kind not in ("option", "cash")))
    short = sum(leg.qty for leg in short_calls)
    stop = doc.risk.stop_loss is not None or any(_is_stop(t) for t in doc.exit.triggers + doc.exit.appended)
    if short <= cover or doc.hedge is not None or stop:
        return
    ctx.sink.emit("W405", f"{short - cover:g} short call lot(s) are not covered: the loss is unbounded as the "
                  "price rises", short_calls[-1].span, "naked short call",
                  help="buy a call further out (a wing), hold the underlying, add a futures hedge rule "
                  "(`hedge delta with Future every 1d`) or a stop (`exit_triggers [ pnl_percent(<-25%) ]`)")


def _is_stop(trigger: ir.Condition) -> bool:
    """A trigger that stops losses: ``pnl_percent(<...)`` or any ``drawdown(...)``."""
    for node in ir.walk(trigger):
        if isinstance(node, ir.Call) and node.name == "drawdown":
            return True
        if isinstance(node, ir.Call) and node.name == "pnl_percent":
            bound = node.get("condition")
            if isinstance(bound, ir.Bound) and bound.op in ("<", "<="):
                return True
    return False


def liquidity(ctx: CheckContext) -> None:
    doc = ctx.document
    floor, interest = doc.constraints.liquidity_floor, doc.market.open_interest
    if floor is None or interest is None or interest >= floor:
        return
    ctx.sink.emit("W408", f"open interest {interest:,.0f} is below `liquidity_floor` {floor:,.0f}",
                  doc.spans.get("open_interest", UNKNOWN_SPAN), "thin market",
                  help="trade a more liquid contract (nearer expiry, strikes closer to the money)",
                  notes=(f"`liquidity_floor` is set on line {doc.spans.get('liquidity_floor', UNKNOWN_SPAN).line}",))


def inverted_shorts(ctx: CheckContext) -> None:
    """W411: `support` above `resistance`, or a short put struck above a short call.

    Between the call's and the put's strike both short options are in the money, so the
    position loses in the very range a seller of a strangle means to collect in.
    """
    doc = ctx.document
    market = Market.of(doc)
    notes = []
    levels_inverted = market.support is not None and market.resistance is not None and \
        market.support > market.resistance
    if levels_inverted:
        notes.append(f"`support` {market.support:,.6g} is above `resistance` {market.resistance:,.6g}")
    shorts = [(leg, market.strike(leg)) for leg in ctx.legs if leg.is_option and leg.side < 0]
    puts = [(leg, k) for leg, k in shorts if leg.option_type == "put" and k is not None]
    calls = [(leg, k) for leg, k in shorts if leg.option_type == "call" and k is not None]
    crossed = [(p, c) for p in puts for c in calls if p[1] > c[1]]
    if crossed:
        (put, kp), (call, kc) = max(crossed, key=lambda pc: pc[0][1] - pc[1][1])
        message = (f"the short put at {kp:,.6g} is struck above the short call at {kc:,.6g}: both are in the money "
                   f"between {kc:,.6g} and {kp:,.6g}")
        span = put.span if put.span.start > call.span.start else call.span
    elif levels_inverted:
        message = notes.pop()
        span = doc.spans.get("support", UNKNOWN_SPAN)
    else:
        return
    ctx.sink.emit("W411", message, span, "short strikes crossed" if crossed else "levels inverted",
                  help="swap `support` and `resistance`, or strike the put below the call", notes=tuple(notes))


PASSES = (guard_rules, exit_module, naked_short_calls, liquidity, inverted_shorts)
