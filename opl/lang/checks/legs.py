"""Rule checks on the normalised legs: E201, E203, E205/E206 once resolved, I401."""

from __future__ import annotations

import datetime as _dt

from opl.lang.checks.context import CheckContext
from opl.lang.estimates import Market
from opl.lang.legs import DateTenor, DaysTenor, RelativeStrike
from opl.lang.source import UNKNOWN_SPAN

LEVERAGED_MAX_DAYS = 45  # spec §3.3: ban_leveraged_longdated


def no_strategy(ctx: CheckContext) -> None:
    doc = ctx.document
    if doc.strategy is None and not doc.bindings_written and doc.intent.direction is None:
        ctx.sink.emit("E203", "the file declares no strategy", doc.spans.get("opl-lang", UNKNOWN_SPAN),
                      "nothing to compile", help="write the legs (`S = short Option(Put, 9800, 30d)`) or a "
                      "`direction_intent` the compiler can build from")


def leveraged_longdated(ctx: CheckContext) -> None:
    doc = ctx.document
    if not doc.constraints.ban_leveraged_longdated:
        return
    on_leveraged = doc.underlying is not None and doc.underlying.kind == "leveraged_etf"
    if not on_leveraged and not any(leg.kind == "leveraged_etf" for leg in ctx.legs):
        return
    market = Market.of(doc)
    for leg in ctx.legs:
        if not leg.is_option:
            continue
        years = market.years(leg)
        if years is not None and years * 365 > LEVERAGED_MAX_DAYS:
            ctx.sink.emit("E201", f"option leg `{leg}` on a leveraged ETF expires in {years * 365:.0f} days, "
                          f"more than {LEVERAGED_MAX_DAYS}", leg.span, f"more than {LEVERAGED_MAX_DAYS}d",
                          help=f"choose a tenor of at most {LEVERAGED_MAX_DAYS}d, or set "
                          "`ban_leveraged_longdated FALSE`",
                          notes=("`ban_leveraged_longdated TRUE` is set (spec §3.3)",))


def resolved_strikes_and_tenors(ctx: CheckContext) -> None:
    market = Market.of(ctx.document)
    for leg in ctx.legs:
        if not leg.is_option:
            continue
        if isinstance(leg.strike, RelativeStrike):
            strike = market.strike(leg)
            if strike is not None and strike <= 0:
                ctx.sink.emit("E205", f"strike `{leg.strike}` resolves to {strike:g}, not a positive price",
                              leg.span, "non-positive strike", help="move the strike closer to the price")
        if isinstance(leg.tenor, DateTenor) and market.time is not None and leg.tenor.date <= market.time:
            ctx.sink.emit("E206", f"expiry {leg.tenor.date.isoformat()} is not after `time` "
                          f"{market.time.isoformat()}", leg.span, "already expired",
                          help="choose a later expiry date or an earlier `time`")
        _outlives_future(ctx, leg, market)


def _outlives_future(ctx: CheckContext, leg, market: Market) -> None:
    """An option on `underlying Future(date)` cannot expire after that future does (E206)."""
    underlying = ctx.document.underlying
    if underlying is None or underlying.kind != "future" or underlying.expiry is None:
        return
    if isinstance(leg.tenor, DateTenor):
        expiry = leg.tenor.date
    elif isinstance(leg.tenor, DaysTenor) and market.time is not None:
        expiry = market.time + _dt.timedelta(days=leg.tenor.days)
    else:
        return
    if expiry > underlying.expiry:
        ctx.sink.emit("E206", f"the option expires {expiry.isoformat()}, after its underlying future "
                      f"(`Future({underlying.expiry.isoformat()})`)", leg.span, "outlives the future",
                      help="choose a shorter tenor, an earlier `time`, or a later futures contract")


def run_time_levels(ctx: CheckContext) -> None:
    market = ctx.document.market
    reported: set[str] = set()
    for leg in ctx.legs:
        strike = leg.strike
        if isinstance(strike, RelativeStrike) and strike.anchor in ("support", "resistance"):
            if getattr(market, strike.anchor) is None and strike.anchor not in reported:
                reported.add(strike.anchor)
                ctx.sink.emit("I401", f"`{strike.anchor}` is not set in the file: it comes from the signals at "
                              "simulation or backtest time", leg.span, f"uses {strike.anchor}",
                              help=f"write `{strike.anchor} <price>` to check the strike now")


def playbook_leg_numbers(ctx: CheckContext) -> None:
    """Every action's `leg` names a leg of the normalised strategy (numbered from 1)."""
    from opl.lang.vocabulary import ACTIONS

    for action in ctx.document.adjust.playbook:
        if dict(ACTIONS[action.name].params).get("leg") != "number":
            continue
        arg = action.quantity("leg")
        index = arg.value if arg is not None else None
        if index is None or (1 <= index <= len(ctx.legs) and index == int(index)):
            continue  # absent, or malformed (the lowering reported it)
        ctx.sink.emit("E105", f"`{action.name}` names leg {index:g}, but the strategy has {len(ctx.legs)} legs",
                      arg.span, "no such leg",
                      help="legs are numbered from 1 in normalised order (see `opl compile --format table`)")


PASSES = (no_strategy, leveraged_longdated, resolved_strikes_and_tenors, run_time_levels, playbook_leg_numbers)
