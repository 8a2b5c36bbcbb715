"""The JSON leg form of golden example 2: a `.json` file holding an array of legs.

    [{"qty":1,"side":"long","type":"call","strike":480,"exp":3650},
     {"qty":1,"side":"short","type":"put","strike":480,"exp":3650}]

``exp`` is the tenor in calendar days (the spec's form); ``expiry`` (a date) and
``tenor`` ("30d") are accepted too. ``type`` is call, put, stock, etf, future or cash.
The result is a `Document` whose strategy is the sum of the legs, so the same checks
run on it as on an `.opl` file.
"""

from __future__ import annotations

import datetime as _dt
import json
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from opl.lang import limits
from opl.lang.diagnostics import Diagnostic, DiagnosticSink, did_you_mean
from opl.lang.document import Document, StrategyDef
from opl.lang.legs import AbsoluteStrike, DateTenor, DaysTenor, Leg, LegSum, LegTerm, Scaled
from opl.lang.source import SourceFile, Span

_KEYS = ("qty", "side", "type", "strike", "exp", "expiry", "tenor")
_TYPES = ("call", "put", "stock", "etf", "future", "cash")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("opl.grammar").joinpath("json_legs.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True)


def _span(source: SourceFile, node) -> Span:
    if isinstance(node, Token):
        return source.span(node.start_pos, node.end_pos)
    return source.span(node.meta.start_pos, node.meta.end_pos)


def _raw(source: SourceFile, node: Tree) -> str:
    """A value as the file wrote it, for messages (`null`, not Python's `None`); strings unquoted."""
    value = _scalar(node)
    if isinstance(value, str):
        return value
    return source.text[node.meta.start_pos:node.meta.end_pos]


def _scalar(node):
    """Python value of a JSON scalar node (None for containers)."""
    if isinstance(node, Tree) and node.data in ("string", "number"):
        text = str(node.children[0])
        return json.loads(text) if node.data == "string" else float(text)
    if isinstance(node, Tree) and node.data in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[node.data]
    return None


def load_json_legs(source: SourceFile) -> tuple[Document, list[Diagnostic]]:
    """Read the JSON leg form; every problem is a located diagnostic."""
    sink = DiagnosticSink()
    document = Document(version="1.0")
    try:
        tree = _parser().parse(source.text)
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        if token is not None and token.type == "$END":  # lark places the end at the last token: point past it
            end = len(source.text.rstrip())
            at, found = source.span(end, end), "the text ends before the JSON is complete"
        else:
            start = error.pos_in_stream or 0
            at = source.span(start, start + 1)
            found = f"unexpected `{source.text[start:start + 1]}`"
        sink.emit("E013", f"invalid JSON: {found}", at, "JSON syntax error",
                  help="a JSON array of leg objects is expected")
        return document, sink.items
    if not (isinstance(tree, Tree) and tree.data == "array"):
        sink.emit("E013", "expected a JSON array of legs", _span(source, tree), "not an array")
        return document, sink.items
    items = [c for c in tree.children if c is not None]
    if len(items) > limits.MAX_LEGS:
        sink.emit("E010", f"{len(items)} legs, above the limit of {limits.MAX_LEGS}", _span(source, tree), "too many")
        return document, sink.items
    terms = []
    for item in items:
        term = _leg(source, item, sink)
        if term is not None:
            terms.append(term)
    if not items:
        sink.emit("E203", "the leg list is empty", _span(source, tree), "no legs")
    if terms and not sink.has_errors:
        whole = _span(source, tree)
        document.strategy = StrategyDef("S", LegSum(tuple(terms), whole), whole, whole)
        document.definitions["S"] = document.strategy
    return document, sink.items


def _leg(source: SourceFile, node, sink: DiagnosticSink):
    """A leg object as a `Scaled` leg term, or None after its first located error."""
    where = _span(source, node)
    if not (isinstance(node, Tree) and node.data == "object"):
        sink.emit("E013", "each leg must be a JSON object", where, "not an object",
                  help='e.g. {"qty":1,"side":"long","type":"call","strike":480,"exp":30}')
        return None
    fields = _fields(source, node, sink)
    kind = _kind_of(source, fields, where, sink) if fields is not None else None
    side = _side_of(source, fields, node, sink) if kind is not None else None
    qty = _qty_of(source, fields, node, sink) if side is not None else None
    leg = _typed_leg(source, fields, node, kind, Leg(kind if kind not in ("call", "put") else "option", 1, 1,
                                                         span=where), sink) if qty is not None else None
    return Scaled(qty, side, LegTerm(leg, where), where) if leg is not None else None


def _fields(source: SourceFile, node: Tree, sink: DiagnosticSink) -> dict[str, tuple[object, Tree]] | None:
    """The leg's keys with their scalar values and nodes; None after an unknown key or a number out of range."""
    fields: dict[str, tuple[object, Tree]] = {}
    for pair in (c for c in node.children if c is not None):
        key_token, value = pair.children
        key = json.loads(str(key_token))
        if key not in _KEYS:
            guess = did_you_mean(key, _KEYS)
            sink.emit("E102", f"unknown leg key `{key}`", _span(source, key_token), "unknown key",
                      help=f"did you mean `{guess}`?" if guess else f"keys: {', '.join(_KEYS)}")
            return None
        scalar = _scalar(value)
        if isinstance(scalar, float) and not abs(scalar) <= limits.MAX_NUMBER:  # also catches 1e400 = inf
            sink.emit("E012", f"`{_raw(source, value)}` is outside ±{limits.MAX_NUMBER:g}", _span(source, value),
                      "number out of range")
            return None
        fields[key] = (scalar, value)
    return fields


def _kind_of(source: SourceFile, fields: dict, where, sink: DiagnosticSink) -> str | None:
    """The leg's ``type``, lower-cased, one of `_TYPES`."""
    if "type" not in fields:
        sink.emit("E103", "a leg needs `type`", where, "no type", help=f"type is one of: {', '.join(_TYPES)}")
        return None
    type_value, type_node = fields["type"]
    kind = type_value.lower() if isinstance(type_value, str) else ""
    if kind not in _TYPES:
        sink.emit("E101", f"unknown primitive `{_raw(source, type_node)}`", _span(source, type_node),
                  "not a leg type", help=f"type is one of: {', '.join(_TYPES)}")
        return None
    return kind


def _side_of(source: SourceFile, fields: dict, node: Tree, sink: DiagnosticSink) -> int | None:
    """+1 for ``long`` (the default), -1 for ``short``."""
    side_value, side_node = fields.get("side", ("long", node))
    if not (isinstance(side_value, str) and side_value.lower() in ("long", "short")):
        sink.emit("E105", f"`{_raw(source, side_node)}` is not a side", _span(source, side_node),
                  "expected long or short")
        return None
    return 1 if side_value.lower() == "long" else -1


def _qty_of(source: SourceFile, fields: dict, node: Tree, sink: DiagnosticSink) -> int | None:
    """The leg's ``qty``, a positive whole number (1 by default)."""
    qty_value, qty_node = fields.get("qty", (1.0, node))
    if not isinstance(qty_value, float) or qty_value != int(qty_value) or qty_value <= 0:
        code = "E305" if isinstance(qty_value, float) and qty_value <= 0 else "E104"
        sink.emit(code, f"quantity must be a positive whole number, found `{_raw(source, qty_node)}`",
                  _span(source, qty_node), "bad quantity")
        return None
    return int(qty_value)


def _typed_leg(source: SourceFile, fields: dict, node: Tree, kind: str, leg: Leg, sink: DiagnosticSink):
    """``leg`` with what its type needs: an option's strike and tenor, a future's expiry when given."""
    if kind in ("call", "put"):
        strike_value, strike_node = fields.get("strike", (None, node))
        if not isinstance(strike_value, float) or strike_value <= 0:
            sink.emit("E205" if isinstance(strike_value, float) else "E104",
                      "an option leg needs a positive numeric `strike`", _span(source, strike_node), "bad strike")
            return None
        tenor = _tenor(source, fields, node, sink)
        return None if tenor is None else leg.with_(option_type=kind, strike=AbsoluteStrike(strike_value),
                                                     tenor=tenor)
    if kind == "future" and "expiry" in fields:
        tenor = _tenor(source, fields, node, sink)
        return None if tenor is None else leg.with_(expiry=tenor.date if isinstance(tenor, DateTenor) else None)
    return leg


def _tenor(source: SourceFile, fields, node, sink: DiagnosticSink):
    if "exp" in fields:
        days, exp_node = fields["exp"]
        if not isinstance(days, float) or days < 1:
            sink.emit("E206", "`exp` must be a number of days ≥ 1", _span(source, exp_node), "bad tenor")
            return None
        return DaysTenor(days)
    if "expiry" in fields:
        text, expiry_node = fields["expiry"]
        try:
            return DateTenor(_dt.date.fromisoformat(str(text)))
        except ValueError:
            sink.emit("E109", f"`{text}` is not a date (YYYY-MM-DD)", _span(source, expiry_node), "bad date")
            return None
    if "tenor" in fields:
        text, tenor_node = fields["tenor"]
        body = str(text)
        if body.endswith("d") and body[:-1].replace(".", "", 1).isdigit() and float(body[:-1]) >= 1:
            return DaysTenor(float(body[:-1]))
        sink.emit("E206", f"`{text}` is not a tenor such as \"30d\"", _span(source, tenor_node), "bad tenor")
        return None
    sink.emit("E103", "an option leg needs `exp` (days), `expiry` or `tenor`", _span(source, node), "no expiry")
    return None
