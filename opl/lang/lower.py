"""Give the syntax tree its meaning: `ast.Module` → `Document`, with located diagnostics.

This is where field names are resolved (E102 unknown, E202 duplicate), values are
type-checked (E104, E105, E108), leg expressions become `opl.lang.legs` trees (E101 unknown
primitive) and conditions/actions are validated against `opl.lang.vocabulary` (E106).
Header rules (E004–E006, E014) are checked here too, because they concern statements,
not tokens.
"""

from __future__ import annotations

import datetime as _dt

from opl.lang import ast
from opl.lang import fields as lower_fields
from opl.lang import ir
from opl.lang import limits
from opl.lang import vocabulary as vocab
from opl.lang.diagnostics import Diagnostic, DiagnosticSink, Edit, Fix, did_you_mean
from opl.lang.document import (
    AssignmentPolicy,
    Document,
    Experiment,
    Guard,
    HedgeRule,
    ModelComponent,
    Scenario,
    StrategyDef,
    Underlying,
)
from opl.lang.legs import (
    AbsoluteStrike,
    DateTenor,
    DaysTenor,
    DeltaStrike,
    Leg,
    LegExpr,
    LegSum,
    LegTerm,
    Ref,
    RelativeStrike,
    Scaled,
    StrikeSpec,
    TemplateCall,
    TenorSpec,
)
from opl.lang.literals import kind_of as _kind
from opl.lang.literals import literal, signed_number, signed_percent
from opl.lang.literals import unwrap as _unwrap
from opl.lang.source import UNKNOWN_SPAN, SourceFile, Span
from opl.lang.templates import TEMPLATE_NAMES
from opl.lang.templates import bind as bind_template

SUPPORTED_MAJOR = "1"
_ANCHORS = {"ATM": "price", "atm": "price", "support": "support", "resistance": "resistance"}
_UNMATCHED = object()  # a strike form that does not fit: `Lowerer.strike` reports the mismatch
_LINEAR_NAMES = {"Stock": "stock", "ETF": "etf", "Cash": "cash", "Future": "future"}


# --------------------------------------------------------------------------- scalar values


def _sum_terms(value: ast.Value) -> list[tuple[int, ast.Value]] | None:
    """The signed terms of a leg sum, with a written quantity bound to the term it precedes.

    The parser reads juxtaposition (``3 short A``) more loosely than ``+``, so ``3 short A + long B``
    arrives as the sequence [3, short A + long B] and ``A + 3 short B`` as [A + 3, short B]. The
    language says a quantity belongs to the one term after it (grammar/README.md §3), so the
    sequence is re-read as terms: a number that ends one item and the term that starts the next
    form ``3 × term``. None when items sit side by side without a quantity between them.
    """
    items = value.items if isinstance(value, ast.Seq) else (value,)
    terms: list[tuple[int, ast.Value]] = []
    pending: tuple[int, ast.Value] | None = None  # a signed quantity waiting for its term
    for index, item in enumerate(items):
        chain = _flatten_sum(item)
        if pending is not None:
            sign, first = chain[0]
            if sign < 0 or isinstance(_unwrap(first), ast.Unary):
                return None  # `3 -A`: a quantity cannot take a signed term
            chain[0] = (pending[0], ast.Binary("×", pending[1], first, pending[1].span.merge(first.span),
                                               pending[1].span))
            pending = None
        elif terms:
            return None
        *body, last = chain
        terms.extend(body)
        if index < len(items) - 1 and signed_number(last[1]) is not None:
            pending = last
        else:
            terms.append(last)
    return terms


def _flatten_sum(value: ast.Value) -> list[tuple[int, ast.Value]]:
    """``A + B - C`` as [(+1, A), (+1, B), (-1, C)], walking the left spine without recursion."""
    out: list[tuple[int, ast.Value]] = []
    sign = 1
    while isinstance(value, ast.Binary) and value.op in "+-":
        out.append((-1 if value.op == "-" else 1, value.right))
        value = value.left
    out.append((sign, value))
    return out[::-1]


class Lowerer:
    """One pass over a module. Use `lower` rather than this class."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.sink = DiagnosticSink()
        self.doc = Document()
        self.templates = TEMPLATE_NAMES
        self._seen: dict[str, Span] = {}

    # -- diagnostics helpers ---------------------------------------------------------------
    def error(self, code: str, message: str, span: Span, label: str = "", help: str | None = None,
              notes: tuple[str, ...] = (), fixes: tuple[Fix, ...] = ()) -> None:
        self.sink.emit(code, message, span, label=label, help=help, notes=notes, fixes=fixes)

    def mismatch(self, value: ast.Value, expected: str, help: str | None = None) -> None:
        self.error("E104", f"expected {expected}, found {_kind(value)}", value.span, f"not {expected}", help)

    # -- scalar readers -------------------------------------------------------------------
    def number(self, value: ast.Value, what: str, *, positive: bool = False, integer: bool = False,
               allow_unit: bool = True) -> float | None:
        """A number, optionally followed by a unit/currency name (``1500 USD``)."""
        value = _unwrap(value)
        if allow_unit and isinstance(value, ast.Seq) and len(value.items) == 2 and isinstance(
                value.items[1], ast.Name):
            value = value.items[0]
        number = signed_number(value)
        if number is None:
            help_ = "write a plain number" if not isinstance(value, ast.Percent) else (
                f"write {signed_percent(value) / 100:g} instead of a percentage")
            self.mismatch(value, f"a number for `{what}`", help_)
            return None
        if positive and number <= 0:
            self.error("E207", f"`{what}` must be positive, found {number:g}", value.span, "not positive")
            return None
        if integer and number != int(number):
            self.error("E104", f"`{what}` must be a whole number, found {number:g}", value.span,
                       "not a whole number")
            return None
        return number

    def fraction(self, value: ast.Value, what: str, *, percent_only: bool = False) -> float | None:
        """``25%`` → 0.25; a plain number is read as a fraction already (``0.25``)."""
        pct = signed_percent(value)
        if pct is not None:
            return pct / 100.0
        if percent_only:
            self.mismatch(value, f"a percentage for `{what}`", f"write e.g. `{what} 10%`")
            return None
        return self.number(value, what, allow_unit=False)

    def choice(self, value: ast.Value, what: str, choices: tuple[str, ...]) -> str | None:
        value = _unwrap(value)
        if not isinstance(value, ast.Name):
            self.mismatch(value, f"one of {', '.join(choices)} for `{what}`")
            return None
        folded = {c.lower(): c for c in choices}
        if value.id.lower() in folded:
            return folded[value.id.lower()]
        guess = did_you_mean(value.id, choices)
        self.error("E105", f"`{value.id}` is not a valid `{what}`", value.span, "unknown value",
                   f"did you mean `{guess}`?" if guess else f"expected one of: {', '.join(choices)}")
        return None

    def date(self, value: ast.Value, what: str) -> _dt.date | None:
        value = _unwrap(value)
        if isinstance(value, ast.Date):
            return value.value  # None when already reported as E109
        self.mismatch(value, f"a date (YYYY-MM-DD) for `{what}`")
        return None

    def boolean(self, value: ast.Value, what: str) -> bool | None:
        value = _unwrap(value)
        if isinstance(value, ast.Name) and value.id.lower() in ("true", "false"):
            return value.id.lower() == "true"
        self.mismatch(value, f"TRUE or FALSE for `{what}`")
        return None

    # -- strikes and tenors (also used by opl.lang.templates) -------------------------------------
    def strike(self, value: ast.Value) -> StrikeSpec | None:
        value = _unwrap(value)
        form = _STRIKE_FORMS.get(type(value))
        found = form(self, value) if form is not None else _UNMATCHED
        if found is _UNMATCHED:
            self.mismatch(value, "a strike (480, ATM+5%, +5%, support-100, delta(0.25))")
            return None
        return found

    # The forms of a strike, one method each (`_STRIKE_FORMS`): a StrikeSpec, None after a located error, or
    # _UNMATCHED for `strike`'s mismatch.
    def _absolute_strike(self, value: ast.Number):
        number = signed_number(value)
        if number is None:
            return _UNMATCHED
        if number <= 0:
            self.error("E205", f"strike must be positive, found {number:g}", value.span, "not positive")
            return None
        return AbsoluteStrike(number)

    def _signed_strike(self, value: ast.Unary):  # rc6: +5% / -5% relative to the price
        pct = signed_percent(value)
        if pct is not None:
            return RelativeStrike("price", pct, True)
        number = signed_number(value)
        if number is None:
            return _UNMATCHED
        if value.op == "-":
            self.error("E205", f"strike must be positive, found {number:g}", value.span, "negative",
                       "for a strike below the price write `ATM-100` or `-5%`")
            return None
        return RelativeStrike("price", number, False)

    def _anchor_strike(self, value: ast.Name):
        return RelativeStrike(_ANCHORS[value.id], 0.0, False) if value.id in _ANCHORS else _UNMATCHED

    def _offset_strike(self, value: ast.Binary):
        if value.op not in "+-" or not isinstance(_unwrap(value.left), ast.Name):
            return _UNMATCHED
        anchor = _unwrap(value.left).id
        if anchor not in _ANCHORS:
            self.error("E104", f"`{anchor}` is not a strike anchor", value.left.span, "unknown anchor",
                       "anchors are ATM, support and resistance")
            return None
        sign = 1.0 if value.op == "+" else -1.0
        pct = signed_percent(value.right)
        if pct is not None:
            return RelativeStrike(_ANCHORS[anchor], sign * pct, True)
        offset = signed_number(value.right)
        if offset is not None:
            return RelativeStrike(_ANCHORS[anchor], sign * offset, False)
        self.mismatch(value.right, "an offset such as `100` or `2%`")
        return None

    def _delta_strike(self, value: ast.Call):
        if value.func != "delta":
            return _UNMATCHED
        args = value.positional
        level = signed_number(args[0]) if len(args) == 1 else None
        if level is None:
            self.error("E103", "`delta(...)` takes one number, e.g. `delta(0.25)`", value.span, "bad delta")
            return None
        level = abs(level)
        if not 0 < level < 1:
            self.error("E207", f"delta strike must lie strictly between 0 and 1, found {level:g}",
                       value.span, "out of range", "write the absolute delta, e.g. `delta(0.25)`")
            return None
        return DeltaStrike(level)

    def _tenor_as_strike(self, value: ast.Duration | ast.Date):
        self.error("E104", f"expected a strike, found {_kind(value)} `{self._text(value)}`", value.span,
                   "a tenor where a strike is expected",
                   "Option takes (Call|Put, strike, tenor): e.g. `Option(Put, 9800, 30d)`")

    def _bare_percent_strike(self, value: ast.Percent):
        self.error("E104", f"a bare percentage `{self._text(value)}` is not a strike", value.span,
                   "ambiguous strike", f"write `+{value.value:g}%` or `ATM+{value.value:g}%` for a strike "
                   "above the price")

    def tenor(self, value: ast.Value) -> TenorSpec | None:
        value = _unwrap(value)
        relative = False
        if isinstance(value, ast.Unary) and value.op == "+" and isinstance(_unwrap(value.operand), ast.Duration):
            relative, value = True, _unwrap(value.operand)
        if isinstance(value, ast.Duration):
            if value.days <= 0:
                self.error("E206", f"tenor must be at least 1d, found `{self._text(value)}`", value.span,
                           "not positive")
                return None
            if value.unit == "bd":
                self.error("E104", "business-day tenors are not supported for option legs", value.span,
                           "calendar days expected", f"write `{value.amount * 7 / 5:.0f}d`")
                return None
            return DaysTenor(value.days, relative)
        if isinstance(value, ast.Date):
            return DateTenor(value.value) if value.value else None
        if isinstance(value, ast.Unary) and value.op == "-":
            self.error("E206", "tenor must be positive", value.span, "negative tenor")
            return None
        if signed_number(value) is not None:
            self.error("E104", f"expected a tenor, found the number `{self._text(value)}`", value.span,
                       "a number where a tenor is expected", f"write `{self._text(value)}d` for calendar days")
            return None
        self.mismatch(value, "a tenor (30d, +30d or a date)")
        return None

    def option_type(self, value: ast.Value) -> str | None:
        value = _unwrap(value)
        if isinstance(value, ast.Name) and value.id.lower() in ("call", "put", "c", "p"):
            return "call" if value.id.lower() in ("call", "c") else "put"
        if isinstance(value, ast.Name):
            guess = did_you_mean(value.id, ("Call", "Put"))
            self.error("E105", f"`{value.id}` is not an option type", value.span, "expected Call or Put",
                       f"did you mean `{guess}`?" if guess else "write Call or Put")
            return None
        self.mismatch(value, "Call or Put", "the first argument of Option is its type: `Option(Call, 480, 30d)`")
        return None

    def _text(self, value: ast.Value) -> str:
        return self.source.text[value.span.start:value.span.end]

    # -- leg expressions ---------------------------------------------------------------------
    def legs(self, value: ast.Value, depth: int = 0) -> LegExpr | None:
        if depth > limits.MAX_DEPTH:
            self.error("E009", "leg expression nested too deeply", value.span, "too deep")
            return None
        value_ = _unwrap(value)
        span = value.span
        if isinstance(value_, ast.Binary) and value_.op in "+-" or isinstance(value_, ast.Seq):
            chain = _sum_terms(value_)
            if chain is None:
                self.error("E001", "expected one leg expression, found several values side by side", span,
                           "missing `+` between legs?", "join legs with `+` or `-`")
                return None
            if len(chain) > 1:
                # A `+` chain is one level of nesting however long it is (E010 bounds its length).
                # Every term is lowered, so each bad one gets its own diagnostic.
                lowered = [(sign, term, self.legs(term, depth + 1)) for sign, term in chain]
                if any(leg is None for _, _, leg in lowered):
                    return None
                return LegSum(tuple(Scaled(1, -1, leg, term.span) if sign < 0 else leg
                                    for sign, term, leg in lowered), span)
            value_ = chain[0][1]
        if isinstance(value_, ast.Binary) and value_.op == "×":
            qty = self.quantity(value_.left)
            inner = self.legs(value_.right, depth + 1)
            return Scaled(qty, 1, inner, span) if qty is not None and inner is not None else None
        if isinstance(value_, ast.Polarity):
            inner = self.legs(value_.operand, depth + 1)
            return Scaled(1, 1 if value_.side == "long" else -1, inner, span) if inner is not None else None
        if isinstance(value_, ast.Unary):
            inner = self.legs(value_.operand, depth + 1)
            if inner is None:
                return None
            return inner if value_.op == "+" else Scaled(1, -1, inner, span)
        if isinstance(value_, ast.Call):
            return self.call_leg(value_)
        if isinstance(value_, ast.Braced):
            if value_.name != "LeveragedETF":
                return self.unknown_primitive(value_.name, value_.name_span)
            beta = self.number(value_.value, "LeveragedETF{β}", positive=True, allow_unit=False)
            if beta is None:
                return None
            return LegTerm(Leg("leveraged_etf", 1, 1, beta=beta, span=span), span)
        if isinstance(value_, ast.Name):
            if value_.id in _LINEAR_NAMES:
                return LegTerm(Leg(_LINEAR_NAMES[value_.id], 1, 1, span=span), span)
            if value_.id == "LeveragedETF":
                return LegTerm(Leg("leveraged_etf", 1, 1, beta=1.0, span=span), span)
            if value_.id == "Option":
                self.error("E103", "`Option` needs its type, strike and tenor", span, "incomplete leg",
                           "write `Option(Call, 480, 30d)`")
                return None
            if value_.id in self.doc.definitions or value_.id in self._pending_names:
                return Ref(value_.id, span)
            return self.unknown_primitive(value_.id, span)
        self.mismatch(value_, "a leg such as `long Option(Call, 480, 30d)`")
        return None

    def quantity(self, value: ast.Value) -> int | None:
        number = signed_number(value)
        if number is None:
            self.mismatch(value, "a quantity (a whole number of lots)")
            return None
        if number <= 0:
            self.error("E305", f"quantity must be positive, found {number:g}", value.span, "not positive",
                       "write `short` for a short leg instead of a negative quantity" if number < 0
                       else "remove the leg, or give it a quantity of at least 1")
            return None
        if number != int(number):
            self.error("E104", f"quantity must be a whole number of lots, found {number:g}", value.span,
                       "not a whole number")
            return None
        if number > limits.MAX_QTY:
            self.error("E012", f"quantity {number:g} is above the limit of {limits.MAX_QTY}", value.span,
                       "too large")
            return None
        return int(number)

    def _swapped_strike_tenor(self, strike: ast.Value, tenor: ast.Value) -> bool:
        """``Option(Put, 30d, 9800)``: one E104 whose fix swaps the two arguments (else two confusing errors)."""
        if not isinstance(_unwrap(strike), (ast.Duration, ast.Date)) or signed_number(tenor) is None:
            return False
        strike_text, tenor_text = self._text(strike), self._text(tenor)
        swap = Fix(f"swap the strike and the tenor: `{tenor_text}, {strike_text}`",
                   (Edit(strike.span, tenor_text), Edit(tenor.span, strike_text)))
        self.error("E104", f"the strike and the tenor are swapped: `{strike_text}` is a tenor, `{tenor_text}` a "
                   "strike", strike.span.merge(tenor.span), "strike and tenor swapped",
                   f"write `{tenor_text}, {strike_text}`: Option takes (Call|Put, strike, tenor)", fixes=(swap,))
        return True

    def call_leg(self, call: ast.Call) -> LegExpr | None:
        span = call.span
        if call.func == "Option":
            args = list(call.positional)
            keywords = call.keywords
            aliases = {"type": 0, "K": 1, "strike": 1, "T": 2, "tenor": 2}
            for name, kwarg in keywords.items():
                if name not in aliases:
                    self.error("E103", f"`Option` has no argument `{name}`", kwarg.name_span, "unknown argument",
                               "Option(type, strike, tenor); keywords: type=, K=, T=")
                    return None
                while len(args) <= aliases[name]:
                    args.append(None)
                args[aliases[name]] = kwarg.value
            if len(args) != 3 or any(a is None for a in args):
                self.error("E103", f"`Option` takes 3 arguments (type, strike, tenor), found {len(call.args)}",
                           span, "wrong number of arguments", "write `Option(Put, 9800, 30d)`")
                return None
            if self._swapped_strike_tenor(args[1], args[2]):
                self.option_type(args[0])
                return None
            kind, strike, tenor = self.option_type(args[0]), self.strike(args[1]), self.tenor(args[2])
            if kind is None or strike is None or tenor is None:
                return None
            return LegTerm(Leg("option", 1, 1, option_type=kind, strike=strike, tenor=tenor, span=span), span)
        if call.func == "Future":
            if not call.args:
                return LegTerm(Leg("future", 1, 1, span=span), span)
            if len(call.args) != 1 or isinstance(call.args[0], ast.Kwarg):
                self.error("E103", "`Future` takes one expiry date", span, "wrong arguments",
                           "write `Future(2026-05-15)`")
                return None
            expiry = self.date(call.args[0], "Future")
            return LegTerm(Leg("future", 1, 1, expiry=expiry, span=span), span) if expiry else None
        if call.func in self.templates:
            return bind_template(call, self)
        if call.func in _LINEAR_NAMES:
            self.error("E103", f"`{call.func}` takes no arguments", span, "unexpected arguments",
                       f"write `{call.func}`")
            return None
        return self.unknown_primitive(call.func, call.func_span)

    def unknown_primitive(self, name: str, span: Span) -> None:
        candidates = list(vocab.PRIMITIVES) + sorted(self.templates) + list(self.doc.definitions)
        guess = did_you_mean(name, candidates)
        if guess is None:  # `Swap` → `Stock`: the one primitive sharing the initial is a fair guess
            same_initial = [p for p in vocab.PRIMITIVES if p[0].lower() == name[:1].lower()]
            guess = same_initial[0] if len(same_initial) == 1 else None
        self.error("E101", f"unknown primitive `{name}`", span, "not a primitive",
                   f"did you mean `{guess}`?" if guess else
                   "primitives are Cash, Stock, Future(date), ETF, LeveragedETF{β}, Option(type, strike, tenor)")
        return None

    # -- conditions and actions ---------------------------------------------------------------
    def condition(self, value: ast.Value, *, variables: dict[str, str] | None = None) -> bool:
        """Validate a trigger/guard condition; True when it is well formed."""
        variables = vocab.VARIABLES if variables is None else variables
        value = _unwrap(value)
        if isinstance(value, ast.BoolOp):
            left = self.condition(value.left, variables=variables)
            return self.condition(value.right, variables=variables) and left
        if isinstance(value, ast.Not):
            return self.condition(value.operand, variables=variables)
        if isinstance(value, ast.Call):
            return (self.signature(value, vocab.TRIGGERS, "trigger") and self.trigger_values(value)
                    and self.trigger_decides(value))
        if isinstance(value, ast.Compare):
            if value.left is None:
                self.error("E001", "comparison without a left-hand side", value.span, "what is compared?",
                           "write e.g. `days_left < 2d` or `days_left(<2d)`")
                return False
            left = _unwrap(value.left)
            if isinstance(left, ast.Call):
                return self.signature(left, vocab.TRIGGERS, "trigger")
            if isinstance(left, ast.Name):
                if left.id in variables:
                    return True
                guess = did_you_mean(left.id, list(variables))
                self.error("E106", f"unknown variable `{left.id}`", left.span, "not a known variable",
                           f"did you mean `{guess}`?" if guess else "see grammar/README.md, Conditions")
                return False
            self.mismatch(left, "a variable or trigger on the left of the comparison")
            return False
        if isinstance(value, ast.Name):
            if value.id in vocab.TRIGGERS:  # `expiry_passed` without parentheses
                return True
            guess = did_you_mean(value.id, list(vocab.TRIGGERS))
            self.error("E106", f"unknown condition `{value.id}`", value.span, "not a trigger",
                       f"did you mean `{guess}()`?" if guess else "see grammar/README.md, Conditions")
            return False
        self.mismatch(value, "a condition such as `pnl_percent(<-25%)` or `days_left < 2d`")
        return False

    def trigger_decides(self, call: ast.Call) -> bool:
        """A measuring trigger standing alone needs its comparison (`margin_utilisation(>80%)`)."""
        entry = vocab.TRIGGERS[call.func]
        if call.args or not entry.params or entry.params[0][1] not in ("compare", "unit"):
            return True
        example = f"{call.func}(>80%)" if entry.params[0][1] == "compare" else f"{call.func}(%) > 15"
        self.error("E103", f"`{call.func}()` measures but decides nothing on its own", call.span,
                   "needs a comparison", f"write e.g. `{example}`")
        return False

    def trigger_values(self, call: ast.Call) -> bool:
        """Argument values of the triggers that take more than a comparison (``delta_band``)."""
        if call.func != "delta_band":
            return True
        from opl.lang.deltaband import DeltaBandError, parse_delta_band

        try:
            parse_delta_band(call)
        except DeltaBandError as error:
            self.error("E105", str(error), error.span, "invalid value", error.help)
            return False
        return True

    def signature(self, call: ast.Call, table: dict[str, vocab.Signature], what: str) -> bool:
        entry = table.get(call.func)
        if entry is None:
            guess = did_you_mean(call.func, list(table))
            self.error("E106", f"unknown {what} `{call.func}`", call.func_span, f"not a known {what}",
                       f"did you mean `{guess}`?" if guess else f"see grammar/README.md for the {what}s")
            return False
        names = [p[0] for p in entry.params]
        shown = f"{call.func}({', '.join(names)})"
        if len(call.positional) > len(names):
            self.error("E103", f"`{call.func}` takes at most {len(names)} argument(s), found {len(call.positional)}",
                       call.span, "too many arguments", f"signature: `{shown}`")
            return False
        given = len(call.positional)
        for kw in call.keywords.values():
            if kw.name not in names:
                self.error("E103", f"`{call.func}` has no argument `{kw.name}`", kw.name_span, "unknown argument",
                           f"signature: `{shown}`")
                return False
            given += 1
        if given < entry.required:
            self.error("E103", f"`{call.func}` needs {entry.required} argument(s)", call.span,
                       "missing arguments", f"signature: `{shown}`")
            return False
        return self.argument_kinds(call, entry, shown)

    def argument_kinds(self, call: ast.Call, entry: vocab.Signature, shown: str) -> bool:
        """Every argument has its declared kind (`opl.lang.argkinds`), located on the argument."""
        from opl.lang.argkinds import mismatch

        kinds = dict(entry.params)
        bound = [*zip((name for name, _ in entry.params), call.positional),
                 *((kw.name, kw.value) for kw in call.keywords.values())]
        ok = True
        for name, value in bound:
            wrong = mismatch(kinds[name], value)
            if wrong is not None:
                expected, example = wrong
                inner = _unwrap(value)
                if isinstance(inner, ast.Compare) and inner.left is None:  # point at the bad operand
                    found, value = f"`{inner.op}` with {_kind(inner.right)}", inner.right
                else:
                    found = _kind(value)
                self.error("E104", f"`{call.func}` argument `{name}` expects {expected}, found {found}",
                           value.span, f"not {expected}",
                           f"signature: `{shown}`" + (f"; e.g. `{name}={example}`" if example else ""))
                ok = False
        return ok

    def action(self, value: ast.Value) -> ir.Call | None:
        """An ``adjust_playbook`` item, validated and lowered; None when it is reported."""
        value = _unwrap(value)
        if isinstance(value, ast.Name):
            value = ast.Call(value.id, (), value.span, value.span)
        if not isinstance(value, ast.Call):
            self.mismatch(value, "an action such as `roll_nearest_term()`")
            return None
        if not self.signature(value, vocab.ACTIONS, "action"):
            return None
        legs: dict[str, ir.LegArgument] = {}
        if value.func in ("add_leg", "replace_leg"):
            name = "with" if value.func == "replace_leg" else "leg"
            leg_arg = value.keywords.get(name)
            leg_value = leg_arg.value if leg_arg else value.positional[-1]
            expr = self.legs(leg_value)
            if expr is None:
                return None
            legs[name] = ir.LegArgument(expr, leg_value.span)
        return self.bound_call(value, vocab.ACTIONS[value.func], legs)

    # -- the typed IR of rules (opl.lang.ir) ---------------------------------------------------------
    def lower_condition(self, value: ast.Value, *, variables: dict[str, str] | None = None) -> ir.Condition | None:
        """A condition validated (`condition`) and lowered to `opl.lang.ir`; None when it is reported."""
        if not self.condition(value, variables=variables):
            return None
        return self.typed_condition(value)

    def typed_condition(self, value: ast.Value) -> ir.Condition | None:
        value = _unwrap(value)
        if isinstance(value, ast.BoolOp):
            left, right = self.typed_condition(value.left), self.typed_condition(value.right)
            return None if left is None or right is None else ir.BoolOp(value.op, left, right, value.span)
        if isinstance(value, ast.Not):
            operand = self.typed_condition(value.operand)
            return None if operand is None else ir.Not(operand, value.span)
        if isinstance(value, ast.Name):
            value = ast.Call(value.id, (), value.span, value.span)
        if isinstance(value, ast.Call):
            return self.trigger(value)
        left, right = self.operand(value.left), self.operand(value.right)
        return None if left is None or right is None else ir.Compare(value.op, left, right, value.span)

    def trigger(self, call: ast.Call) -> ir.Call | ir.DeltaBand:
        if call.func == "delta_band":  # its arguments were read by trigger_values
            from opl.lang.deltaband import parse_delta_band

            return ir.DeltaBand(parse_delta_band(call), call.span)
        return self.bound_call(call, vocab.TRIGGERS[call.func])

    def operand(self, value: ast.Value) -> ir.Operand | None:
        value = _unwrap(value)
        if isinstance(value, ast.Name):
            return ir.Variable(value.id, value.span)
        if isinstance(value, ast.Call) and value.func in vocab.TRIGGERS:
            return self.trigger(value)
        found = literal(value)
        if found is None or found[1] == "factor":
            self.mismatch(value, "a number, percentage, tenor or variable in the comparison")
            return None
        return ir.Quantity(found[0], found[1], value.span)

    def bound_call(self, call: ast.Call, entry: vocab.Signature | None,
                   given: dict[str, ir.Argument] | None = None) -> ir.Call | None:
        """``call`` with its (checked) arguments bound to ``entry``'s parameter names, in signature order.

        Without a signature (hypotheses) positional arguments are named by position ("1", "2", ...).
        ``given`` holds arguments already lowered (the leg of ``add_leg``).
        """
        names = [p[0] for p in entry.params] if entry is not None else [
            str(i + 1) for i in range(len(call.positional))]
        written = {**dict(zip(names, call.positional)), **{k: kw.value for k, kw in call.keywords.items()}}
        order = {name: i for i, name in enumerate(names)}
        arguments = []
        for name in sorted(written, key=lambda n: order.get(n, len(order))):
            value = given.get(name) if given and name in given else self.argument(written[name])
            if value is None:
                return None
            arguments.append((name, value))
        return ir.Call(call.func, tuple(arguments), call.span, call.func_span)

    def argument(self, value: ast.Value) -> ir.Argument | None:
        inner = _unwrap(value)
        if isinstance(inner, ast.Compare) and inner.left is None:
            bound = literal(inner.right)
            if bound is not None and bound[1] != "factor":
                return ir.Bound(inner.op, ir.Quantity(bound[0], bound[1], inner.right.span), inner.span)
        elif isinstance(inner, ast.Name):
            return ir.Word(inner.id, inner.span)
        elif isinstance(inner, ast.UnitPlaceholder):
            return ir.UnitMark(inner.span)
        else:
            found = literal(inner)
            if found is not None:
                return ir.Quantity(found[0], found[1], value.span)
        self.mismatch(value, "a number, percentage, tenor, name or open comparison")
        return None

    # -- statements -----------------------------------------------------------------------------
    def run(self, module: ast.Module) -> Document:
        self.header(module)
        statements = [s for s in module.statements if not isinstance(s, ast.Header)]
        self._pending_names = {s.name for s in statements
                               if isinstance(s, ast.Binding) and s.name not in vocab.ALL_FIELDS}
        for statement in statements:
            self.statement(statement)
        self.finish()
        return self.doc

    def header(self, module: ast.Module) -> None:
        headers = [s for s in module.statements if isinstance(s, ast.Header)]
        if not headers:
            self.error("E004", "missing `opl-lang 1.0` header", Span(1, 1, 1, 1, 0, 0), "expected here",
                       "add `opl-lang 1.0` as the first line")
            return
        first = headers[0]
        self.doc.spans.setdefault("opl-lang", first.span)
        for extra in headers[1:]:
            self.error("E014", "duplicate `opl-lang` header", extra.span, "second header",
                       notes=(f"first header on line {first.span.line}",))
        byte_offset = len(self.source.text[:first.span.start].encode("utf-8"))
        if module.statements[0] is not first:
            self.error("E005", "the `opl-lang` header must come before every statement", first.span,
                       "header after statements", f"move it to line 1 (statement on line "
                       f"{module.statements[0].span.line} precedes it)")
        elif byte_offset >= limits.HEADER_WINDOW:
            self.error("E005", f"the `opl-lang` header starts at byte {byte_offset}, after the first "
                       f"{limits.HEADER_WINDOW}", first.span, "too late", "move it to the top of the file")
        if first.version is None:
            self.error("E006", "the header has no version", first.span, "version missing",
                       "write `opl-lang 1.0`")
            return
        self.doc.version = first.version
        major = first.version.split(".")[0].split("-")[0].split("+")[0]
        if major != SUPPORTED_MAJOR:
            self.error("E006", f"unsupported OPL-Lang major version `{major}`", first.span,
                       f"version {first.version}", "this implementation reads OPL-Lang 1.x: write `opl-lang 1.0`")

    def note_field(self, name: str, span: Span) -> bool:
        """Record a field; report E202 when it was already set. True when first."""
        if name in self._seen and name not in vocab.REPEATABLE_FIELDS:
            first = self._seen[name]
            self.error("E202", f"field `{name}` is set more than once", span, "set again here",
                       "keep one of the two", notes=(f"first set on line {first.line}",))
            return False
        self._seen.setdefault(name, span)
        self.doc.spans.setdefault(name, span)
        return True

    def statement(self, statement: ast.Statement) -> None:
        if isinstance(statement, ast.Block):
            if statement.name != "experiment":
                guess = did_you_mean(statement.name, vocab.BLOCKS)
                self.error("E102", f"unknown block `{statement.name}`", statement.name_span, "unknown block",
                           f"did you mean `{guess}`?" if guess else "the only block is `experiment { ... }`")
                return
            if self.note_field("experiment", statement.span):
                self.doc.experiment = lower_fields.experiment(self, statement)
            return
        if isinstance(statement, ast.Append):
            if statement.name != "exit_triggers":
                self.error("E105", f"`+=` applies only to `exit_triggers`, not `{statement.name}`",
                           statement.name_span, "cannot append", "write `exit_triggers += days_left < 2d`")
                return
            lower_fields.append_exit_trigger(self, statement)
            return
        name, value = statement.name, statement.value
        if isinstance(statement, ast.Binding) and name not in vocab.ALL_FIELDS:
            self.definition(statement)
            return
        if name not in vocab.ALL_FIELDS:
            self.unknown_field(statement)
            return
        if value is None:
            self.error("E108", f"field `{name}` has no value", statement.span, "value missing",
                       f"write `{name} <value>`")
            return
        if not self.note_field(name, statement.span):
            return
        lower_fields.field(self, name, value, statement)

    def unknown_field(self, statement: ast.Field) -> None:
        name = statement.name
        if name in vocab.EXPERIMENT_SETTINGS:
            self.error("E102", f"`{name}` is an experiment setting", statement.name_span, "outside the block",
                       f"move it into `experiment {{ ... }}`")
            return
        if name in vocab.PRIMITIVES or name in ("long", "short") or name in self.templates:
            self.error("E102", f"a leg expression needs a name: `S = {self._text_of(statement)}`",
                       statement.name_span, "leg without `S =`", "write `S = ...` before the legs")
            return
        guess = did_you_mean(name, list(vocab.ALL_FIELDS) + list(vocab.BLOCKS))
        self.error("E102", f"unknown field `{name}`", statement.name_span, "unknown field",
                   f"did you mean `{guess}`?" if guess else "see grammar/README.md for the fields")

    def _text_of(self, statement) -> str:
        return self.source.text[statement.span.start:statement.span.end].strip()

    def definition(self, binding: ast.Binding) -> None:
        self.doc.bindings_written.append(binding.name)
        expr = self.legs(binding.value)
        if binding.name in self.doc.definitions:
            first = self.doc.definitions[binding.name].span
            self.error("E204", f"strategy `{binding.name}` is defined twice", binding.name_span,
                       "defined again here", "keep one definition", notes=(f"first defined on line {first.line}",))
            return
        if expr is not None:
            self.doc.definitions[binding.name] = StrategyDef(binding.name, expr, binding.span, binding.name_span)

    def _resolve_max_risk_share(self) -> None:
        """`max_risk 3%` is 3% of `capital_limit`, whichever line comes first."""
        constraints = self.doc.constraints
        if constraints.max_risk_share is None:
            return
        if constraints.capital_limit is None:
            self.error("E108", "`max_risk` is written as a percentage of `capital_limit`, which the file "
                       "does not give", self.doc.spans.get("max_risk", UNKNOWN_SPAN), "a share of nothing",
                       "add `capital_limit <amount>`, or write `max_risk` as an amount (`max_risk 1500`)")
            return
        constraints.max_risk = constraints.max_risk_share * constraints.capital_limit

    def finish(self) -> None:
        self._resolve_max_risk_share()
        defs = self.doc.definitions
        if "S" in defs:
            self.doc.strategy = defs["S"]
        elif len(defs) == 1:
            self.doc.strategy = next(iter(defs.values()))
        elif len(defs) > 1:
            later = list(defs.values())[1]
            self.error("E204", "several strategies and none named `S`", later.name_span, "which one?",
                       "name the strategy to compile `S`")
        if self.doc.strategy is not None:
            used = _references(self.doc.strategy.expr, defs)
            for name, definition in defs.items():
                if name not in used and definition is not self.doc.strategy:
                    self.error("W409", f"`{name}` is defined but not used by `{self.doc.strategy.name}`",
                               definition.name_span, "unused")


def _references(expr: LegExpr, defs: dict, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref) and node.name not in seen:
            seen.add(node.name)
            if node.name in defs:
                stack.append(defs[node.name].expr)
        elif isinstance(node, Scaled):
            stack.append(node.expr)
        elif isinstance(node, LegSum):
            stack.extend(node.terms)
    return seen


def lower(module: ast.Module, source: SourceFile) -> tuple[Document, list[Diagnostic]]:
    """Lower a parsed module; returns the document and the diagnostics found."""
    lowerer = Lowerer(source)
    document = lowerer.run(module)
    return document, lowerer.sink.items


# `Lowerer.strike`'s forms by syntax node (a node of another type is a mismatch).
_STRIKE_FORMS = {ast.Number: Lowerer._absolute_strike, ast.Unary: Lowerer._signed_strike,
                 ast.Name: Lowerer._anchor_strike, ast.Binary: Lowerer._offset_strike, ast.Call: Lowerer._delta_strike,
                 ast.Duration: Lowerer._tenor_as_strike, ast.Date: Lowerer._tenor_as_strike,
                 ast.Percent: Lowerer._bare_percent_strike}
