"""Compile a checked strategy into a `CompiledStrategy`: resolve, round, price.

Resolution, leg by leg, in normalised order:

1. market — the file's ``price``/``iv``/``rate``/``time``/levels, overridden by
   ``--market``; ``time`` defaults to the caller's ``evaluation_date``, else today (stated
   in the notes either way), ``rate`` to 0; ``price`` and ``iv``
   are required (E306);
2. strike — absolute, ``ATM±x%``/rc6 ``+5%``, ``support-100``, ``resistance+2%``, or
   ``delta(0.25)`` solved with the European Black formula at the file's ``iv``;
   then moved to the nearest listed strike of the exchange's rule pack;
3. expiry — ``Nd`` is N calendar days after ``time``; with a rule pack, the listed
   option expiry nearest that date (the later one on a tie); a date stays as written;
4. multiplier — ``granularity`` if set, else the rule pack's option multiplier, else 100 (rc6 §1.2);
5. price and Greeks — Black-76 (futures underlying, carry 0) or Black–Scholes–Merton
   (stock/ETF, carry = rate); American exercise (the file's ``exercise`` or the
   pack's style) by Barone-Adesi–Whaley with the Greeks of
   `opl.runtime.pricing.american.american_greeks`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np

from opl.lang import limits
from opl.compiler.compiled import CompiledLeg, CompiledStrategy, GreekSet, MarketState, SourceRef, Totals, UnderlyingInfo
from opl.lang.diagnostics import Diagnostic, DiagnosticSink
from opl.errors import OplError
from opl.lang.estimates import DEFAULT_MULTIPLIER, Market
from opl.lang.frontend import CheckResult
from opl.lang.legs import DateTenor, Leg, RelativeStrike
from opl.lang.source import UNKNOWN_SPAN

MARKET_KEYS = ("price", "iv", "rate", "time", "support", "resistance")


@dataclass
class CompileResult:
    strategy: CompiledStrategy | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.strategy is not None


_MARKET_BOUNDS = {
    "price": f"a positive number up to {limits.MAX_NUMBER:g}",
    "support": f"a positive number up to {limits.MAX_NUMBER:g}",
    "resistance": f"a positive number up to {limits.MAX_NUMBER:g}",
    "iv": "an annual volatility above 0 and at most 500%, e.g. 0.25 or 25%",
    "rate": "a number, e.g. 0.02 or 2%",
    "time": f"a date YYYY-MM-DD in the years {limits.MIN_YEAR}-{limits.MAX_YEAR}",
}


def parse_market(text: str) -> dict:
    """``price=9850,iv=0.22,rate=0.02,time=2026-03-02`` → dict; raises ValueError naming the bad item."""
    values: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in MARKET_KEYS:
            raise ValueError(f"`{item}`: expected key=value with key one of {', '.join(MARKET_KEYS)}")
        try:
            if key == "time":
                values[key] = _dt.date.fromisoformat(raw.strip())
                if not limits.MIN_YEAR <= values[key].year <= limits.MAX_YEAR:
                    raise ValueError
            else:
                number = float(raw.strip().rstrip("%")) / (100 if raw.strip().endswith("%") else 1)
                # The same bounds a file's own `price`/`iv` lines get (E012, E207): an override is no
                # less untrusted than the file it overrides.
                if not (np.isfinite(number) and abs(number) <= limits.MAX_NUMBER) or (
                        key in ("price", "support", "resistance") and number <= 0) or (
                        key == "iv" and not 0 < number <= 5):
                    raise ValueError
                values[key] = number
        except ValueError:
            raise ValueError(f"`{item}`: not a valid {key} ({_MARKET_BOUNDS[key]})") from None
    return values


def _pack(document, sink: DiagnosticSink):
    underlying = document.underlying
    if underlying is None or not underlying.exchange:
        return None
    from opl.runtime.market.rules import RulePackError, pack_for

    try:
        return pack_for(underlying.exchange, underlying.symbol)
    except RulePackError as error:
        span = document.spans.get("exchange", UNKNOWN_SPAN)
        sink.emit("E105", f"no usable rule pack for `{underlying.exchange}`: {error}", span, "unknown exchange",
                  help="add a rule pack (see runtime/market/packs/README.md) or remove `exchange`")
        return None


def _expiry(leg: Leg, time: _dt.date, pack) -> _dt.date:
    if isinstance(leg.tenor, DateTenor):
        return leg.tenor.date
    target = time + _dt.timedelta(days=round(leg.tenor.days))
    if pack is None:
        return target
    from opl.runtime.market.calendars import listed_expiries

    listed = [e.expiry for e in listed_expiries(pack, after=time, count=24)]
    if not listed:
        return target
    return min(listed, key=lambda d: (abs((d - target).days), -d.toordinal()))


class CompileError(OplError):
    """The file does not compile (it has errors, or legs that cannot be priced): located ``diagnostics``."""


def compiled_or_raise(result: CheckResult, market_overrides: dict | None = None, *,
                      evaluation_date: _dt.date | None = None) -> CompiledStrategy:
    """`compile_checked`, but a file that does not compile raises `CompileError` with its diagnostics."""
    compiled = compile_checked(result, market_overrides, evaluation_date=evaluation_date)
    if not compiled.ok:
        raise CompileError("; ".join(d.message for d in compiled.diagnostics), report=result.report,
                           diagnostics=compiled.diagnostics)
    return compiled.strategy


def _evaluation_date(given: dict, evaluation_date: _dt.date | None) -> tuple[_dt.date, list[str]]:
    """The date legs are priced on, and the note that states it when the file gives none.

    The file's ``time`` (or ``--market time=``) wins; else the caller's ``evaluation_date``;
    else the run's own date. Either fallback is written into the compiled notes, so an
    output never depends on a date it does not show.
    """
    if given.get("time"):
        return given["time"], []
    if evaluation_date is not None:
        return evaluation_date, [f"evaluation date {evaluation_date.isoformat()}: given by the caller, as the "
                                 "file gives no `time`"]
    today = _dt.date.today()
    return today, [f"evaluation date {today.isoformat()}: today, as the file gives no `time`"]


def compile_checked(result: CheckResult, market_overrides: dict | None = None, *,
                    evaluation_date: _dt.date | None = None) -> CompileResult:
    """Compile a `CheckResult` (from `opl.check` / `opl.check_file`); errors come back as diagnostics.

    ``evaluation_date`` prices a file that gives no ``time`` (see `_evaluation_date`); the
    compiled notes state the date used. The stages are the module docstring's: the market and the
    exchange (`_setting`), each leg's strike and expiry (`_resolved`), prices and Greeks
    (`_priced_legs`), the strategy with its totals and margin (`_assembled`); the first stage with
    errors ends the compilation with its diagnostics.
    """
    report = result.report
    if report.has_errors or result.document is None:
        return CompileResult(None, [d for d in report.sorted() if d.severity == "error"])
    doc = result.document
    if not result.legs and doc.strategy is None and doc.intent.direction is not None:
        return _compile_from_intent(result, market_overrides, evaluation_date)
    sink = DiagnosticSink()
    span = doc.strategy.expr.span if doc.strategy is not None else doc.spans.get("opl-lang", UNKNOWN_SPAN)
    if not result.legs:
        sink.emit("E203", "nothing to compile: the strategy has no legs", span, "no legs",
                  help="write the legs (`S = ...`); `opl build` constructs legs from an intent")
        return CompileResult(None, sink.items)
    setting = _setting(doc, market_overrides, evaluation_date, span, sink)
    if setting is None:
        return CompileResult(None, sink.items)
    strikes, expiries = _resolved(result.legs, setting, sink)
    if sink.has_errors:
        return CompileResult(None, sink.items)
    legs, totals, premium = _priced_legs(result.legs, strikes, expiries, setting)
    return CompileResult(_assembled(report, doc, result.legs, setting, legs, totals, premium), sink.items)


@dataclass(frozen=True)
class _Setting:
    """What every leg is resolved and priced against: the market as given (the file's, overridden), the
    evaluation date and its notes, the exchange's rule pack and what follows from the underlying."""

    given: dict
    time: _dt.date
    notes: list[str]
    rate: float
    futures: bool
    carry: float
    estimate: Market
    pack: object  # opl.runtime.market.rules.RulePack | None
    multiplier: float
    style: str
    underlying: object  # the document's underlying declaration, or None


def _setting(doc, market_overrides: dict | None, evaluation_date: _dt.date | None, span,
             sink: DiagnosticSink) -> _Setting | None:
    """The market, date and exchange the legs are compiled against; None (errors in ``sink``) when pricing
    lacks ``price`` or ``iv`` (E306) or the exchange has no usable rule pack (E105)."""
    given = {key: getattr(doc.market, key) for key in MARKET_KEYS}
    given.update(market_overrides or {})
    missing = [key for key in ("price", "iv") if given.get(key) is None]
    if missing:
        names = " and ".join(f"`{m}`" for m in missing)
        sink.emit("E306", f"pricing needs {names}", span, "cannot price these legs",
                  help=f"add {names} to the file, or pass `--market {','.join(m + '=...' for m in missing)}`")
        return None
    time, notes = _evaluation_date(given, evaluation_date)
    rate = given.get("rate") or 0.0
    underlying = doc.underlying
    futures = underlying is not None and underlying.kind == "future"
    estimate = Market(given["price"], given["iv"], rate, time, given.get("support"), given.get("resistance"),
                      futures)
    pack = _pack(doc, sink)
    if sink.has_errors:
        return None
    multiplier = float(doc.constraints.granularity or (pack.option.multiplier if pack else DEFAULT_MULTIPLIER))
    style = (underlying.exercise.lower() if underlying is not None and underlying.exercise
             else (pack.option.style if pack else "european"))
    return _Setting(given, time, notes, rate, futures, 0.0 if futures else rate, estimate, pack, multiplier, style,
                    underlying)


def _resolved(legs: list[Leg], setting: _Setting, sink: DiagnosticSink) -> tuple[list, list]:
    """Each leg's strike (None for a linear leg) and expiry, in leg order; a strike that needs a level the
    market does not give (E306), a non-positive strike (E205) or an expiry not after ``time`` (E206) goes
    into ``sink``."""
    strikes, expiries = [], []
    for leg in legs:
        if not leg.is_option:
            strikes.append(None)
            expiries.append(_linear_expiry(leg, setting))
            continue
        strike = setting.estimate.strike(leg)
        if strike is None:
            anchor = leg.strike.anchor if isinstance(leg.strike, RelativeStrike) else "price"
            sink.emit("E306", f"strike `{leg.strike}` needs `{anchor}`", leg.span, f"`{anchor}` unknown",
                      help=f"add `{anchor} <price>` to the file or pass `--market {anchor}=...`")
            strikes.append(None)
            expiries.append(None)
            continue
        if setting.pack is not None:
            strike = float(setting.pack.snap_strike(strike))
        if strike <= 0:
            sink.emit("E205", f"strike `{leg.strike}` resolves to {strike:g}", leg.span, "non-positive strike")
        strikes.append(strike)
        expiry = _expiry(leg, setting.time, setting.pack)
        if expiry <= setting.time:
            sink.emit("E206", f"expiry {expiry.isoformat()} is not after `time` {setting.time.isoformat()}",
                      leg.span, "already expired")
        expiries.append(expiry)
    return strikes, expiries


def _linear_expiry(leg: Leg, setting: _Setting):
    """A linear leg's expiry: a ``Future`` leg with a declared underlying expires with it, else the leg's own."""
    underlying = setting.underlying
    return underlying.expiry if (leg.kind == "future" and underlying is not None) else leg.expiry


def _priced_legs(legs: list[Leg], strikes: list, expiries: list, setting: _Setting):
    """The compiled legs (price, Greeks per unit and per position), the position's Greek totals and the
    options' premium (signed, in currency)."""
    option_rows = [i for i, leg in enumerate(legs) if leg.is_option]
    priced = _price_options([legs[i] for i in option_rows], [strikes[i] for i in option_rows],
                            [expiries[i] for i in option_rows], setting.time, setting.given["price"],
                            setting.given["iv"], setting.rate, setting.carry, american=setting.style == "american",
                            stock=not setting.futures)
    compiled, totals, premium = [], GreekSet(), 0.0
    for index, leg in enumerate(legs):
        if leg.is_option:
            unit_price, greeks = priced[option_rows.index(index)]
            days = float((expiries[index] - setting.time).days)
            premium += leg.signed_qty * setting.multiplier * unit_price
        else:
            unit_price, greeks, days = _linear(leg, setting.given["price"])
        position = greeks.scaled(leg.signed_qty * setting.multiplier)
        totals = totals + position
        compiled.append(CompiledLeg(
            index=index + 1, side="long" if leg.side > 0 else "short", qty=leg.qty, kind=leg.kind,
            type=leg.option_type, strike=strikes[index], strike_spec=str(leg.strike) if leg.strike else None,
            expiry=expiries[index], tenor_days=days, multiplier=setting.multiplier,
            exercise=setting.style if leg.is_option else None, price=unit_price, greeks=greeks,
            position_greeks=position, origin=leg.origin, source=SourceRef(line=leg.span.line, column=leg.span.column)))
    return compiled, totals, premium


def _assembled(report, doc, source_legs: list[Leg], setting: _Setting, legs: list[CompiledLeg], totals: GreekSet,
               premium: float) -> CompiledStrategy:
    """The compiled strategy: the legs, their totals with the pack's margin (combined and per leg), the
    check's warnings and the notes (evaluation date, tenors, calendar)."""
    margin = per_leg = None
    pack, underlying = setting.pack, setting.underlying
    if pack is not None:
        from opl.runtime.market.margin import with_margin_method

        margin = _margin(pack, legs, setting.given["price"])
        per_leg = _margin(with_margin_method(pack, "per_leg"), legs, setting.given["price"])
    given = setting.given
    return CompiledStrategy(
        source=report.path, opl_version=doc.version,
        underlying=UnderlyingInfo(kind=underlying.kind if underlying else "stock",
                                  symbol=underlying.symbol if underlying else None,
                                  exchange=underlying.exchange if underlying else None,
                                  expiry=underlying.expiry if underlying else None, carry=setting.carry,
                                  rule_pack=pack.name if pack else None),
        market=MarketState(price=given["price"], iv=given["iv"], rate=setting.rate, time=setting.time,
                           support=given.get("support"), resistance=given.get("resistance")),
        legs=tuple(legs), totals=Totals(**totals.model_dump(), premium=premium, margin=margin,
                                        margin_per_leg=per_leg),
        warnings=tuple(f"{d.code} {d.span.line}:{d.span.column} {d.message}" for d in report.sorted()
                       if d.severity == "warning"),
        notes=tuple(setting.notes) + _tenor_notes(source_legs, legs, pack) + _calendar_notes(legs, pack))


BUILD_PATH = "C"  # the construction path `opl compile` builds an intent-only file with (`opl build`'s default)
BUILD_MARKET = {"price": 100.0, "iv": 0.25}  # stated in the output when the file gives no market


def _compile_from_intent(result: CheckResult, market_overrides: dict | None,
                         evaluation_date: _dt.date | None) -> CompileResult:
    """Golden sample 5: a file with an intent and constraints but no legs.

    Spec §4's pipeline: ``MapIntentToO`` gives the base legs, construction path C tunes them,
    then ``ensure_max_risk`` and ``apply_premium_offset``; the built text is checked again
    (reality_check) and compiled like any file. A build that cannot meet the constraints is
    refused with a located E302/E303, never returned with legs against the intent.
    """
    from opl.compiler.construct import BuildError, BuildRequest, build
    from opl.lang.frontend import check_text

    doc, report = result.document, result.report
    given = {key: getattr(doc.market, key) for key in MARKET_KEYS if getattr(doc.market, key) is not None}
    given.update(market_overrides or {})
    assumed = {k: v for k, v in BUILD_MARKET.items() if k not in given}
    time, dated = _evaluation_date(given, evaluation_date)
    sink = DiagnosticSink()
    span = doc.spans.get("direction_intent", doc.spans.get("intent", doc.spans.get("opl-lang", UNKNOWN_SPAN)))
    pack = _pack(doc, sink)
    if sink.has_errors:
        return CompileResult(None, sink.items)
    c = doc.constraints
    request = BuildRequest(
        intent=doc.intent.direction, vega_style=doc.intent.vega_style, price={**BUILD_MARKET, **given}["price"],
        iv={**BUILD_MARKET, **given}["iv"], rate=given.get("rate") or 0.0, time=time,
        futures=doc.underlying is not None and doc.underlying.kind == "future",
        multiplier=float(c.granularity or (pack.option.multiplier if pack else DEFAULT_MULTIPLIER)),
        max_risk=c.max_risk, capital_limit=c.capital_limit, premium_offset=c.premium_offset, path=BUILD_PATH)
    try:
        built = build(request)
    except BuildError as error:
        code, _, message = str(error).partition(": ")
        code = code if code in ("E302", "E303") else "E302"
        field = {"E302": "max_risk", "E303": "premium_offset"}[code]
        sink.emit(code, message or str(error), doc.spans.get(field, span), "cannot be met by a built strategy",
                  help=f"relax `{field}` or write the legs yourself (`S = ...`)")
        return CompileResult(None, sink.items)
    rebuilt = check_text(built.text, report.path)
    compiled = compile_checked(rebuilt, market_overrides)
    if compiled.strategy is None:
        return compiled
    notes = [f"legs built from `direction_intent {doc.intent.direction}` by construction path {BUILD_PATH} "
             f"(MapIntentToO → control_tune → ensure_max_risk → apply_premium_offset): "
             + " + ".join(f"{leg.side} {leg.type or leg.kind} {leg.strike:g}" if leg.strike else leg.side
                          for leg in compiled.strategy.legs)]
    notes += [f"market assumed for the build: {', '.join(f'{k} {v:g}' for k, v in assumed.items())}"] if assumed else []
    notes += dated
    notes += [note for note in built.notes]
    strategy = compiled.strategy.model_copy(update={"notes": compiled.strategy.notes + tuple(notes)})
    return CompileResult(strategy, compiled.diagnostics)


def _price_options(legs, strikes, expiries, time, price, iv, rate, carry, *, american: bool, stock: bool):
    if not legs:
        return []
    from opl.runtime.pricing import american as american_pricing
    from opl.runtime.pricing import black as pricing

    is_call = np.array([leg.option_type == "call" for leg in legs])
    t = np.array([(e - time).days / 365.0 for e in expiries])
    args = dict(is_call=is_call, underlying=np.full(len(legs), price), strike=np.array(strikes, dtype=float), t=t,
                vol=np.full(len(legs), iv), rate=rate, carry=carry, carry_follows_rate=stock)
    g = american_pricing.american_greeks(**args) if american else pricing.greeks(**args)
    columns = [np.atleast_1d(np.asarray(getattr(g, name), dtype=float)) for name in
               ("price", "delta", "gamma", "vega", "theta", "rho", "charm")]
    return [(float(columns[0][i]), GreekSet(delta=columns[1][i], gamma=columns[2][i], vega=columns[3][i],
                                            theta=columns[4][i], rho=columns[5][i], charm=columns[6][i]))
            for i in range(len(legs))]


def _linear(leg: Leg, price: float) -> tuple[float, GreekSet, float | None]:
    if leg.kind == "cash":
        return 1.0, GreekSet(), None
    return price, GreekSet(delta=leg.linear_delta), None


def _calendar_notes(compiled: list[CompiledLeg], pack) -> tuple[str, ...]:
    """Listed expiries the pack's calendar does not cover: dated with weekends only (`opl.data.sessions`)."""
    if pack is None:
        return ()
    from opl.runtime.market.calendars import uncovered

    note = uncovered(pack, {leg.expiry for leg in compiled if getattr(leg, "expiry", None) is not None})
    return (f"listed expiries {note}",) if note else ()


def _tenor_notes(legs: list[Leg], compiled: list[CompiledLeg], pack) -> tuple[str, ...]:
    """Say where a tenor in days was priced to a listed expiry of another length (`opl simulate` keeps the days)."""
    moved = {}
    for leg, built in zip(legs, compiled):
        if leg.is_option and not isinstance(leg.tenor, DateTenor) and built.tenor_days != round(leg.tenor.days):
            moved.setdefault((leg.tenor.days, built.expiry, built.tenor_days), []).append(str(built.index))
    return tuple(f"leg{'s' if len(idx) > 1 else ''} {', '.join(idx)}: `opl compile` prices `{days:g}d` to the "
                 f"listed expiry nearest it, {expiry.isoformat()} ({listed:g} days from `time`, the {pack.name} "
                 f"calendar); `opl simulate` gives the options exactly {days:g} days in its stylised months, so "
                 f"their premiums and Greeks differ"
                 for (days, expiry, listed), idx in moved.items())


def _margin(pack, legs: list[CompiledLeg], price: float) -> float:
    """Exchange margin of the legs: futures plus the options with the pack's combinations (`options_margin`)."""
    from opl.runtime.market.margin import futures_margin, options_margin

    total = sum(float(futures_margin(pack=pack, price=price, lots=leg.qty)) for leg in legs if leg.kind == "future")
    holdings = [(leg.type == "call", leg.strike, leg.price, leg.qty if leg.side == "long" else -leg.qty, leg.expiry)
                for leg in legs if leg.kind == "option"]
    return total + float(options_margin(pack=pack, holdings=holdings, underlying=price)) if holdings else total


__all__ = ["compile_checked", "parse_market", "CompileResult", "MARKET_KEYS"]

