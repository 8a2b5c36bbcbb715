"""Intent against legs: W406 (direction or vega sign contradicts the intent), W407 (IV crush).

With ``price`` and ``iv`` the net delta and vega come from the Black formula; without
them each option counts with the sign of its exposure and half a unit of delta (an
at-the-money guess), linear legs with one unit. A sign is only called when it is clear:
a net delta within ``FLAT_DELTA`` lots of zero is "about flat" and contradicts nothing.
"""

from __future__ import annotations

from opl.lang.checks.context import CheckContext
from opl.lang.estimates import Market
from opl.lang.intent import allowed_delta_signs, expected_vega_sign
from opl.lang.legs import Leg
from opl.lang.source import UNKNOWN_SPAN

FLAT_DELTA = 0.05  # lots of the underlying, per lot of the position


def _delta(leg: Leg, market: Market) -> tuple[float, bool]:
    """(delta of one long unit, whether it is exact)."""
    exact = market.delta(leg)  # exact for linear legs; None for options the market cannot price
    if exact is not None:
        return exact, True
    return (0.5 if leg.option_type == "call" else -0.5), False


def _vega(leg: Leg, market: Market) -> float:
    exact = market.vega(leg)
    if exact is not None:
        return exact
    return 1.0 if leg.is_option else 0.0


def net_exposures(legs: tuple[Leg, ...], market: Market) -> tuple[float | None, float]:
    """(net delta, net vega) of the position, per unit of multiplier.

    The net delta is None when it rests on guesses whose signs disagree (a ratio
    spread without market inputs): offsetting guesses say nothing about the sign.
    """
    parts = [(leg.signed_qty * d, exact) for leg in legs for d, exact in [_delta(leg, market)]]
    delta = sum(p for p, _ in parts)
    if not all(exact for _, exact in parts) and len({p > 0 for p, _ in parts if p != 0}) > 1:
        delta = None
    vega = sum(leg.signed_qty * _vega(leg, market) for leg in legs)
    return delta, vega


def _sign(value: float, flat: float) -> int:
    return 0 if abs(value) <= flat else (1 if value > 0 else -1)


def intent_matches_legs(ctx: CheckContext) -> None:
    doc = ctx.document
    if not ctx.legs or doc.strategy is None:
        return
    market = Market.of(doc)
    delta, vega = net_exposures(ctx.legs, market)
    lots = max(1, max(leg.qty for leg in ctx.legs))
    span = doc.strategy.expr.span
    direction = doc.intent.direction
    if direction is not None and delta is not None:
        sign = _sign(delta, FLAT_DELTA * lots)
        allowed = allowed_delta_signs(direction)
        if sign not in allowed:
            word = {1: "long", -1: "short", 0: "flat"}[sign]
            ctx.sink.emit("W406", f"`direction_intent {direction}` but the legs are net {word} delta "
                          f"({delta:+.2f} per unit)", span, f"net {word} delta",
                          help="flip the legs (e.g. long call instead of short call), or change "
                          "`direction_intent`",
                          notes=(f"`direction_intent` is set on line "
                                 f"{doc.spans.get('direction_intent', UNKNOWN_SPAN).line}",))
    expected = expected_vega_sign(direction, doc.intent.vega_style, doc.intent.vol)
    if expected is not None:
        want, field = expected
        sign = _sign(vega, 1e-12)
        if sign != 0 and sign != want and not (field == "vol_intent" and sign > 0):  # that is W407
            word = "long" if sign > 0 else "short"
            ctx.sink.emit("W406", f"`{field}` asks for {'long' if want > 0 else 'short'} volatility but the legs "
                          f"are net {word} vega", span, f"net {word} vega",
                          help="buy options for a debit (long vega) or sell them for a credit (short vega) as "
                          "the intent says",
                          notes=(f"`{field}` is set on line {doc.spans.get(field, UNKNOWN_SPAN).line}",))


def iv_crush(ctx: CheckContext) -> None:
    doc = ctx.document
    if doc.intent.vol not in ("down", "flat") or not ctx.legs:
        return
    _, vega = net_exposures(ctx.legs, Market.of(doc))
    if vega <= 0:
        return
    symbol = {"down": "↓IV", "flat": "=IV"}[doc.intent.vol]
    ctx.sink.emit("W407", f"the position is long vega while `vol_intent {symbol}` expects implied volatility "
                  "to fall or stay", doc.strategy.expr.span if doc.strategy else UNKNOWN_SPAN, "long vega",
                  help="sell premium (short options), or buy spreads whose vega nets out",
                  notes=(f"`vol_intent` is set on line {doc.spans.get('vol_intent', UNKNOWN_SPAN).line}",))


PASSES = (intent_matches_legs, iv_crush)
