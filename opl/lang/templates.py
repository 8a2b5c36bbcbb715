"""The template library (spec §8): named strategies that expand into ordinary legs.

A template call such as ``Condor(Call, K1=480, K2=520, T=30d)`` is bound against the
template's signatures (positional arguments first, then keywords), each argument is
read with the lowering stage's strike/tenor/type readers (so a template reports the
same E104/E205/E206 a hand-written leg would), and the result is a list of `Leg`
whose spans point at the call and whose ``origin`` names the template.

Linear legs of a template (the long underlying of a collar or a covered call) take the
kind of the file's ``underlying`` (a futures leg on a futures underlying, stock by
default).

The spec's table writes the Stock equivalence as ``Option(Call,K=P,T→∞) +
Option(Put,K=P,T→∞)``; by put–call parity the replicating position is the *long* call
and the *short* put, which is what ``StockEquivalent`` expands to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

from opl.lang import ast
from opl.lang.legs import AbsoluteStrike, DaysTenor, Leg, RelativeStrike, TemplateCall

if TYPE_CHECKING:  # pragma: no cover
    from opl.lang.lower import Lowerer

ParamKind = Literal["type", "strike", "tenor", "count"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    default: str | None = None  # OPL-Lang text, read like a written argument


@dataclass(frozen=True)
class Signature:
    params: tuple[Param, ...]
    build: Callable[[dict, str], list[tuple[int, int, dict]]]
    """(arguments, linear kind) → [(side, qty, Leg fields)]."""
    expansion: str
    increasing: tuple[str, ...] = ()  # strikes that must increase when all are absolute

    def text(self, name: str) -> str:
        parts = [p.name + (f"={p.default}" if p.default else "") for p in self.params]
        return f"{name}({', '.join(parts)})"


@dataclass(frozen=True)
class Template:
    name: str
    summary: str
    signatures: tuple[Signature, ...]


def _opt(kind: str, strike, tenor) -> dict:
    return {"kind": "option", "option_type": kind, "strike": strike, "tenor": tenor}


def _linear(kind: str) -> dict:
    return {"kind": kind}


_T = Param("type", "type")
_TENOR = Param("T", "tenor")


def _vertical(a, _):
    return [(1, 1, _opt(a["type"], a["K1"], a["T"])), (-1, 1, _opt(a["type"], a["K2"], a["T"]))]


def _condor4(a, _):
    t, tenor = a["type"], a["T"]
    return [(1, 1, _opt(t, a["K1"], tenor)), (-1, 1, _opt(t, a["K2"], tenor)),
            (-1, 1, _opt(t, a["K3"], tenor)), (1, 1, _opt(t, a["K4"], tenor))]


def _condor2(a, linear):
    """Outer strikes K1 < K2; the body sits a quarter of the width inside each wing."""
    k1, k2 = a["K1"], a["K2"]
    width = (_offset(k2) - _offset(k1)) / 4
    return _condor4({**a, "K1": k1, "K2": _shift(k1, width), "K3": _shift(k2, -width), "K4": k2}, linear)


def _offset(strike) -> float:
    return strike.value if isinstance(strike, AbsoluteStrike) else strike.offset


def _shift(strike, by: float):
    if isinstance(strike, AbsoluteStrike):
        return AbsoluteStrike(strike.value + by)
    return RelativeStrike(strike.anchor, strike.offset + by, strike.percent)


def _straddle(a, _):
    return [(1, 1, _opt("call", a["K"], a["T"])), (1, 1, _opt("put", a["K"], a["T"]))]


def _strangle(a, _):
    return [(1, 1, _opt("put", a["Kput"], a["T"])), (1, 1, _opt("call", a["Kcall"], a["T"]))]


def _iron_condor(a, _):
    tenor = a["T"]
    return [(1, 1, _opt("put", a["K1"], tenor)), (-1, 1, _opt("put", a["K2"], tenor)),
            (-1, 1, _opt("call", a["K3"], tenor)), (1, 1, _opt("call", a["K4"], tenor))]


def _iron_butterfly(a, _):
    tenor = a["T"]
    return [(1, 1, _opt("put", a["K1"], tenor)), (-1, 1, _opt("put", a["K2"], tenor)),
            (-1, 1, _opt("call", a["K2"], tenor)), (1, 1, _opt("call", a["K3"], tenor))]


def _butterfly(a, _):
    t, tenor = a["type"], a["T"]
    return [(1, 1, _opt(t, a["K1"], tenor)), (-1, 2, _opt(t, a["K2"], tenor)), (1, 1, _opt(t, a["K3"], tenor))]


def _collar(a, linear):
    return [(1, 1, _linear(linear)), (1, 1, _opt("put", a["Kput"], a["T"])),
            (-1, 1, _opt("call", a["Kcall"], a["T"]))]


def _covered_call(a, linear):
    return [(1, 1, _linear(linear)), (-1, 1, _opt("call", a["K"], a["T"]))]


def _protective_put(a, linear):
    return [(1, 1, _linear(linear)), (1, 1, _opt("put", a["K"], a["T"]))]


def _calendar(a, _):
    return [(-1, 1, _opt(a["type"], a["K"], a["Tnear"])), (1, 1, _opt(a["type"], a["K"], a["Tfar"]))]


def _ratio(a, _):
    return [(1, 1, _opt(a["type"], a["K1"], a["T"])), (-1, a["ratio"], _opt(a["type"], a["K2"], a["T"]))]


def _synthetic(side: int):
    def build(a, _):
        return [(side, 1, _opt("call", a["K"], a["T"])), (-side, 1, _opt("put", a["K"], a["T"]))]
    return build


def _sig(params: str, build, expansion: str, increasing: str = "") -> Signature:
    """Signature from compact text: ``"type K1 K2 T"``; kinds follow from the names."""
    out = []
    for item in params.split():
        name, _, default = item.partition("=")
        kind: ParamKind = ("type" if name == "type" else "tenor" if name.startswith("T")
                           else "count" if name == "ratio" else "strike")
        out.append(Param(name, kind, default or None))
    return Signature(tuple(out), build, expansion, tuple(increasing.split()))


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("Vertical", "a vertical spread: long one strike, short another, same expiry (spec §8)", (
        _sig("type K1 K2 T", _vertical, "long type@K1 + short type@K2", "K1 K2"),)),
    Template("Condor", "a vertical bull spread plus a vertical bear spread (spec §8)", (
        _sig("type K1 K2 T", _condor2,
             "long K1 + short K1+w + short K2−w + long K2, w = (K2−K1)/4", "K1 K2"),
        _sig("type K1 K2 K3 K4 T", _condor4, "long K1 + short K2 + short K3 + long K4", "K1 K2 K3 K4"))),
    Template("Straddle", "a call and a put at the same strike", (
        _sig("K T", _straddle, "long call@K + long put@K"),)),
    Template("Strangle", "an out-of-the-money put and call", (
        _sig("Kput Kcall T", _strangle, "long put@Kput + long call@Kcall", "Kput Kcall"),)),
    Template("IronCondor", "the credit iron condor: short strangle inside long wings", (
        _sig("K1 K2 K3 K4 T", _iron_condor, "long put@K1 + short put@K2 + short call@K3 + long call@K4",
             "K1 K2 K3 K4"),)),
    Template("IronButterfly", "the credit iron butterfly: short straddle inside long wings", (
        _sig("K1 K2 K3 T", _iron_butterfly, "long put@K1 + short put@K2 + short call@K2 + long call@K3",
             "K1 K2 K3"),)),
    Template("Butterfly", "the long butterfly", (
        _sig("type K1 K2 K3 T", _butterfly, "long type@K1 + 2×short type@K2 + long type@K3", "K1 K2 K3"),)),
    Template("Collar", "long underlying, long put, short call", (
        _sig("Kput Kcall T", _collar, "long underlying + long put@Kput + short call@Kcall", "Kput Kcall"),)),
    Template("CoveredCall", "long underlying and a short call", (
        _sig("K T", _covered_call, "long underlying + short call@K"),)),
    Template("ProtectivePut", "long underlying and a long put", (
        _sig("K T", _protective_put, "long underlying + long put@K"),)),
    Template("CalendarSpread", "short the near expiry, long the far one, same strike", (
        _sig("type K Tnear Tfar", _calendar, "short type@K,Tnear + long type@K,Tfar"),)),
    Template("RatioSpread", "long one strike, short `ratio` of another", (
        _sig("type K1 K2 T ratio=2", _ratio, "long type@K1 + ratio×short type@K2"),)),
    Template("SyntheticLong", "long call and short put at one strike: behaves like the underlying", (
        _sig("K T", _synthetic(1), "long call@K + short put@K"),)),
    Template("SyntheticShort", "short call and long put at one strike", (
        _sig("K T", _synthetic(-1), "short call@K + long put@K"),)),
    Template("StockEquivalent", "spec §8's Stock equivalence, with K = the price and a long tenor", (
        _sig("K=ATM T=365d", _synthetic(1), "long call@K + short put@K (put–call parity)"),)),
)}

TEMPLATE_NAMES: frozenset[str] = frozenset(TEMPLATES)


# --------------------------------------------------------------------------- expansion


def _choose(template: Template, call: ast.Call) -> Signature | None:
    """The signature whose arity and keywords fit the call (None: none fits)."""
    positional = len(call.positional)
    keywords = set(call.keywords)
    for signature in template.signatures:
        names = [p.name for p in signature.params]
        if positional > len(names) or not keywords <= set(names):
            continue
        bound = set(names[:positional]) | keywords
        if len(bound) != positional + len(keywords):
            continue  # a keyword repeats a positional argument
        if all(p.name in bound or p.default for p in signature.params):
            return signature
    return None


def _read(lowerer: "Lowerer", param: Param, value: ast.Value, name: str):
    if param.kind == "type":
        return lowerer.option_type(value)
    if param.kind == "strike":
        return lowerer.strike(value)
    if param.kind == "tenor":
        return lowerer.tenor(value)
    return lowerer.quantity(value)


def _default_value(param: Param, span) -> ast.Value:
    """A default as the syntax node it would have been if written at the call."""
    text = param.default
    if text[-1] == "d" and text[:-1].isdigit():
        return ast.Duration(float(text[:-1]), "d", span=span)
    if text.isdigit():
        return ast.Number(float(text), text, span=span)
    return ast.Name(text, span=span)


def bind(node: ast.Call, lowerer: "Lowerer") -> TemplateCall | None:
    """Read a template call's arguments (at lowering), or report why they do not fit and return None.

    The result holds typed arguments only; `build_legs` turns it into legs once the
    underlying's kind is known (a collar's long leg is a future on a futures underlying).
    """
    template = TEMPLATES[node.func]
    call = node
    signature = _choose(template, node)
    if signature is None:
        forms = " or ".join(f"`{s.text(template.name)}`" for s in template.signatures)
        unknown = [k for k in node.keywords if all(k not in [p.name for p in s.params]
                                                    for s in template.signatures)]
        if unknown:
            kwarg = node.keywords[unknown[0]]
            lowerer.error("E103", f"`{template.name}` has no argument `{unknown[0]}`", kwarg.name_span,
                          "unknown argument", f"write {forms}")
        else:
            lowerer.error("E103", f"`{template.name}` takes {forms}, found {len(node.args)} arguments",
                          call.span, "wrong arguments")
        return None
    values: dict = {}
    spans: dict = {}
    positional = list(node.positional)
    ok = True
    for index, param in enumerate(signature.params):
        if index < len(positional):
            raw = positional[index]
        elif param.name in node.keywords:
            raw = node.keywords[param.name].value
        else:
            raw = _default_value(param, call.span)
        value = _read(lowerer, param, raw, template.name)
        ok = ok and value is not None
        values[param.name], spans[param.name] = value, raw.span
    if not ok:
        return None
    if not _strikes_increase(lowerer, template.name, signature, values, spans, call):
        return None
    if signature.build is _condor2 and not _same_scale(values["K1"], values["K2"]):
        lowerer.error("E104", "the two-strike Condor needs both strikes absolute or both on one anchor",
                      call.span, "cannot place the body", f"write `{template.signatures[1].text(template.name)}`")
        return None
    if signature.build is _calendar and _later_or_equal(values["Tnear"], values["Tfar"]):
        lowerer.error("E105", "`Tnear` must expire before `Tfar`", spans["Tnear"], "not the near expiry",
                      "swap the two tenors")
        return None
    return TemplateCall(template.name, template.signatures.index(signature), tuple(values.items()), call.span)


def build_legs(call: TemplateCall, linear_kind: str = "stock") -> list[Leg]:
    """The legs of a bound template call (`bind`); ``linear_kind`` is the underlying's kind."""
    template = TEMPLATES[call.name]
    signature = template.signatures[call.signature]
    return [Leg(side=side, qty=qty, origin=template.name, span=call.span, **fields)
            for side, qty, fields in signature.build(dict(call.arguments), linear_kind)]


def _same_scale(a, b) -> bool:
    if isinstance(a, AbsoluteStrike) and isinstance(b, AbsoluteStrike):
        return True
    return (isinstance(a, RelativeStrike) and isinstance(b, RelativeStrike)
            and a.anchor == b.anchor and a.percent == b.percent)


def _later_or_equal(near, far) -> bool:
    if isinstance(near, DaysTenor) and isinstance(far, DaysTenor) and near.relative == far.relative:
        return near.days >= far.days
    if hasattr(near, "date") and hasattr(far, "date"):
        return near.date >= far.date
    return False


def _strikes_increase(lowerer, name, signature, values, spans, call) -> bool:
    strikes = [values[k] for k in signature.increasing]
    comparable = all(isinstance(s, AbsoluteStrike) for s in strikes) or (
        strikes and all(isinstance(s, RelativeStrike) for s in strikes)
        and len({(s.anchor, s.percent) for s in strikes}) == 1)
    if not comparable:
        return True  # resolved by the compiler against the market
    for (k_low, low), (k_high, high) in zip(zip(signature.increasing, strikes),
                                            zip(signature.increasing[1:], strikes[1:])):
        lo, hi = _offset(low), _offset(high)
        if lo > hi or (lo == hi and name not in ("IronCondor",)):
            lowerer.error("E105", f"`{name}` strikes must increase: `{k_low}` is {low}, `{k_high}` is {high}",
                          spans[k_high], f"not above {k_low}",
                          f"write the strikes in increasing order: {signature.text(name)}")
            return False
    return True


# --------------------------------------------------------------------------- reference


def template_reference() -> str:
    """The template table of grammar/README.md (generated)."""
    rows = ["| template | expands to | |", "|---|---|---|"]
    for template in TEMPLATES.values():
        for signature in template.signatures:
            rows.append(f"| `{signature.text(template.name)}` | {signature.expansion} | {template.summary} |")
    return "\n".join(rows) + (
        "\n\nA template is one leg expression: `short Straddle(ATM, 30d)` sells both legs, "
        "`2×IronCondor(...)` doubles every leg. Strikes in a template may be absolute or relative "
        "(`ATM-5%`, `support-100`); strikes that must increase are checked when they are comparable. "
        "The underlying leg of Collar, CoveredCall and ProtectivePut takes the kind of the file's "
        "`underlying` (Stock when none is given).")
