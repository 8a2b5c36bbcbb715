"""Resource and constraint checks: E301/I301 capital, E302/I302 max_risk, E303, E304/E305.

Estimates use the file's own market inputs (``price``, ``iv``, ``rate``, ``time``, the
levels) and, when the file names its ``exchange``, the contract multiplier, the margin
formula and rates and the combinations of that exchange's rule pack (the formulas of
`opl.runtime.market.margin`, the combinations by `opl.runtime.market.combinations` itself, which is
numpy-free); ``granularity`` overrides the multiplier. Without a pack the short-option
margin is the CBOE-style premium + max(20% × S − OTM, 10% × S), leg by leg. `opl
compile` recomputes all of it with the full rule pack.
"""

from __future__ import annotations

from dataclasses import dataclass

from opl.lang.checks.context import CheckContext
from opl.lang.estimates import DEFAULT_MULTIPLIER, Market, black_price
from opl.lang.legs import Leg
from opl.lang.source import UNKNOWN_SPAN

GENERIC_FUTURES_RATE = 0.10  # margin of a futures leg when no rule pack is known
GENERIC_RATE, GENERIC_MIN_RATE = 0.20, 0.10  # the CBOE-style short option margin without a rule pack
GRID_POINTS = 400


@dataclass(frozen=True)
class Contract:
    multiplier: float
    formula: str
    futures_rate: float
    otm_weight: float = 0.5
    floor_weight: float = 0.5
    source: str = "generic margin (no rule pack)"
    rate: float = GENERIC_RATE
    min_rate: float = GENERIC_MIN_RATE
    put_cap_at_strike: bool = False
    combinations: tuple[str, ...] = ()


def contract(ctx: CheckContext) -> Contract:
    doc = ctx.document
    facts = None
    underlying = doc.underlying
    if underlying is not None and underlying.exchange:
        from opl.runtime.market.packfiles import pack_facts  # numpy-free by design

        facts = pack_facts(underlying.exchange, underlying.symbol)
    multiplier = float(doc.constraints.granularity or (facts.multiplier if facts else DEFAULT_MULTIPLIER))
    if facts is None:
        return Contract(multiplier, "generic", GENERIC_FUTURES_RATE)
    rates = (facts.rate, facts.min_rate) if facts.margin_formula != "czce_dce" and facts.rate else \
        (GENERIC_RATE, GENERIC_MIN_RATE)
    return Contract(multiplier, facts.margin_formula, facts.futures_rate or GENERIC_FUTURES_RATE,
                    facts.otm_weight, facts.floor_weight, f"margin of rule pack `{facts.name}`", *rates,
                    facts.put_cap_at_strike, facts.combinations)


def _otm(leg: Leg, s: float, k: float) -> float:
    return max(k - s, 0.0) if leg.option_type == "call" else max(s - k, 0.0)


def leg_capital(leg: Leg, market: Market, terms: Contract) -> float | None:
    """Capital one unit of the leg ties up (premium or margin), in price units."""
    s = market.price
    if s is None:
        return None
    if leg.kind == "cash":
        return 0.0
    if leg.kind == "future":
        return terms.futures_rate * s
    if not leg.is_option:
        return s
    premium, k = market.premium(leg), market.strike(leg)
    if premium is None or k is None:
        return None
    if leg.side > 0:
        return premium
    if terms.formula == "czce_dce":
        margin = terms.futures_rate * s
        return premium + max(margin - terms.otm_weight * _otm(leg, s, k), terms.floor_weight * margin)
    # the pack's formula (opl.runtime.market.margin): SSE/SZSE floor puts at min_rate x K and may cap them at K
    floor = terms.min_rate * (k if leg.option_type == "put" and terms.formula != "generic" else s)
    margin = premium + max(terms.rate * s - _otm(leg, s, k), floor)
    return min(margin, k) if terms.put_cap_at_strike and leg.option_type == "put" else margin


def capital_limit(ctx: CheckContext) -> None:
    doc = ctx.document
    limit = doc.constraints.capital_limit
    if limit is None or not ctx.legs:
        return
    span = doc.spans.get("capital_limit", UNKNOWN_SPAN)
    market, terms = Market.of(doc), contract(ctx)
    parts = [leg_capital(leg, market, terms) for leg in ctx.legs]
    if any(p is None for p in parts):
        missing = "`price` and `iv`" if market.price is None or market.iv is None else "the strike levels"
        ctx.sink.emit("I301", f"`capital_limit` not checked: the file does not give {missing}", span,
                      "not checked", help="add `price` and `iv` (or run `opl compile --market price=...,iv=...`)")
        return
    need = position_capital(ctx.legs, parts, market, terms)
    if need > limit:
        combined = f", short legs paired as the pack's combinations ({', '.join(terms.combinations)})" \
            if terms.combinations else ""
        ctx.sink.emit("E301", f"the position needs about {need:,.0f} of capital, above `capital_limit` "
                      f"{limit:,.0f}", span, "limit exceeded",
                      help="reduce quantities, add protective legs, or raise `capital_limit`",
                      notes=(f"estimated with multiplier {terms.multiplier:g} and the {terms.source}{combined}; "
                             "`opl compile` uses the full rule pack",))


def position_capital(legs, parts: list[float], market: Market, terms: Contract) -> float:
    """Capital of the legs: premiums paid, futures margin and the options' margin with the pack's combinations.

    The combinations are `opl.runtime.market.combinations` — numpy-free, the same code the simulator runs.
    """
    from opl.runtime.market.combinations import Holding, combination_margin

    holdings, other = [], 0.0
    for part, leg in zip(parts, legs):
        if leg.is_option and leg.side < 0:
            holdings.append(Holding(is_call=leg.option_type == "call", strike=market.strike(leg),
                                    premium=market.premium(leg), qty=-float(leg.qty), margin=part * terms.multiplier,
                                    expiry=market.years(leg)))
            continue
        if leg.is_option:
            holdings.append(Holding(is_call=leg.option_type == "call", strike=market.strike(leg),
                                    premium=market.premium(leg), qty=float(leg.qty), expiry=market.years(leg)))
        other += part * leg.qty * terms.multiplier  # a long option's premium, a futures margin, a stock
    return other + combination_margin(holdings, combinations=terms.combinations, unit=terms.multiplier)


def _upward_slope(legs: tuple[Leg, ...]) -> float:
    """d(value)/dS of the position as S → ∞ (options count as calls only)."""
    slope = 0.0
    for leg in legs:
        if leg.is_option:
            slope += leg.signed_qty if leg.option_type == "call" else 0.0
        else:
            slope += leg.signed_qty * leg.linear_delta
    return slope


def worst_loss(legs: tuple[Leg, ...], market: Market) -> tuple[float, float] | None:
    """(worst loss per unit multiplier, price where it occurs) at the first expiry, or None.

    Options expiring later are valued with the Black formula at their remaining time.
    """
    s0 = market.price
    if s0 is None or market.iv is None:
        return None
    horizon = [market.years(leg) for leg in legs if leg.is_option]
    if any(t is None for t in horizon):
        return None
    first = min(horizon) if horizon else 0.0
    strikes, premiums = [], []
    for leg in legs:
        if leg.is_option:
            k, p = market.strike(leg), market.premium(leg)
            if k is None or p is None:
                return None
            strikes.append(k)
            premiums.append(p)
        else:
            strikes.append(None)
            premiums.append(s0 if leg.kind != "cash" else 0.0)
    top = 4 * max([s0] + [k for k in strikes if k])
    grid = sorted({top * i / GRID_POINTS for i in range(GRID_POINTS + 1)} | {k for k in strikes if k} | {s0})
    worst, at = float("inf"), s0
    for s in grid:
        pnl = 0.0
        for leg, k, p in zip(legs, strikes, premiums):
            if leg.is_option:
                remaining = market.years(leg) - first
                value = black_price(is_call=leg.option_type == "call", s=s, k=k, t=max(remaining, 0.0),
                                    sigma=market.iv, r=market.rate, b=market.carry) if s > 0 else (
                    k if leg.option_type == "put" else 0.0)
            elif leg.kind == "cash":
                value = 0.0
            else:
                value = s0 + leg.linear_delta * (s - s0)
            pnl += leg.signed_qty * (value - p)
        if pnl < worst - 1e-9 or (pnl <= worst + 1e-9 and abs(s - s0) < abs(at - s0)):
            worst, at = min(pnl, worst), s  # of equal losses, report the price nearest today's
    return -worst, at


def max_risk(ctx: CheckContext) -> None:
    doc = ctx.document
    limit = doc.constraints.max_risk
    if limit is None or not ctx.legs:
        return
    span = doc.strategy.expr.span if doc.strategy is not None else doc.spans.get("max_risk", UNKNOWN_SPAN)
    field_line = doc.spans.get("max_risk", UNKNOWN_SPAN).line
    slope = _upward_slope(ctx.legs)
    if slope < 0:
        ctx.sink.emit("E302", f"the loss is unbounded as the price rises (net short {-slope:g} calls), "
                      f"above `max_risk` {limit:,.0f}", span, "unbounded loss",
                      help="buy a call above the short strike (a wing) or add a long underlying leg",
                      notes=(f"`max_risk` is set on line {field_line}",))
        return
    market, terms = Market.of(doc), contract(ctx)
    result = worst_loss(ctx.legs, market)
    if result is None:
        ctx.sink.emit("I302", "`max_risk` not checked: strikes or premiums cannot be resolved without "
                      "`price` and `iv`", doc.spans.get("max_risk", UNKNOWN_SPAN), "not checked",
                      help="add `price` and `iv`, or run `opl compile --market price=...,iv=...`")
        return
    loss, at = result
    loss *= terms.multiplier
    if loss > limit * (1 + 1e-9):
        ctx.sink.emit("E302", f"worst loss at expiry is about {loss:,.0f} (at a price of {at:,.4g}), above "
                      f"`max_risk` {limit:,.0f}", span, "too much risk",
                      help="add protective wings (buy further out-of-the-money options) or reduce quantity",
                      notes=(f"`max_risk` is set on line {field_line}; multiplier {terms.multiplier:g}",))


def premium_offset(ctx: CheckContext) -> None:
    doc = ctx.document
    share = doc.constraints.premium_offset
    if share is None or not ctx.legs:
        return
    market = Market.of(doc)
    premiums = [market.premium(leg) for leg in ctx.legs if leg.is_option]
    if any(p is None for p in premiums):
        return  # nothing to compare without prices; `opl build` applies the offset
    debit = sum(market.premium(l) * l.qty for l in ctx.legs if l.is_option and l.side > 0)
    credit = sum(market.premium(l) * l.qty for l in ctx.legs if l.is_option and l.side < 0)
    if debit > 0 and credit < share * debit * (1 - 1e-9):
        span = doc.spans.get("premium_offset", UNKNOWN_SPAN)
        if doc.constraints.max_risk is not None and not _breaks_max_risk(ctx):
            # rc6 §4.1: the offset is best effort and never overrides max_risk — with a max_risk
            # the legs respect, a shortfall is the offset reduced (W403), not unattainable (E303)
            ctx.sink.emit("W403", f"`premium_offset` reduced to {credit / debit:.0%} of the debit (asked "
                          f"{share:.0%}) under `max_risk` {doc.constraints.max_risk:,.4g}", span, "reduced",
                          help="accept the smaller offset, raise `max_risk`, or sell further out of the money")
            return
        ctx.sink.emit("E303", f"credit legs offset {credit / debit:.0%} of the debit, short of `premium_offset` "
                      f"{share:.0%}", span, "not attained",
                      help="sell options further out of the money, or lower `premium_offset`")


def _breaks_max_risk(ctx: CheckContext) -> bool:
    """True when the legs' worst loss at expiry is above `max_risk` (or cannot be bounded)."""
    if _upward_slope(ctx.legs) < 0:
        return True
    result = worst_loss(ctx.legs, Market.of(ctx.document))
    return result is not None and result[0] * contract(ctx).multiplier > ctx.document.constraints.max_risk


def scale_qty(ctx: CheckContext) -> None:
    for action in ctx.document.adjust.playbook:
        if action.name != "scale_qty":
            continue
        leg_arg, factor_arg = action.quantity("leg"), action.quantity("factor")
        if factor_arg is None or leg_arg is None:
            continue  # the lowering stage reported malformed arguments
        factor, index = factor_arg.value, leg_arg.value
        if factor <= 0:
            ctx.sink.emit("E305", f"`scale_qty` by {factor:g} leaves a zero or negative quantity",
                          factor_arg.span, "not positive", help="use `remove_leg` or `close` to drop a leg")
            continue
        if not 1 <= index <= len(ctx.legs) or index != int(index):
            continue  # `checks.legs.playbook_leg_numbers` reports it
        leg = ctx.legs[int(index) - 1]
        scaled = leg.qty * factor
        if scaled < 1 or abs(scaled - round(scaled)) > 1e-9:
            ctx.sink.emit("E304", f"`scale_qty` makes leg {int(index)} ({leg}) {scaled:g} lots, not a whole "
                          "number of at least one lot", factor_arg.span, "below lot granularity",
                          help=f"choose a factor that gives whole lots, e.g. {max(1, round(scaled))}/{leg.qty}")


PASSES = (capital_limit, max_risk, premium_offset, scale_qty)
