"""Field handlers of the lowering stage: one function per field family.

`opl.lang.lower.Lowerer` dispatches here after resolving the name; each handler reads the
value with the lowerer's typed readers (which report E104/E105/E207 themselves) and
fills its section of the `Document`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from opl.lang import ast, limits
from opl.lang import vocabulary as vocab
from opl.lang.document import AssignmentPolicy, Experiment, Guard, HedgeRule, ModelComponent, Scenario, Underlying
from opl.lang.literals import signed_number, signed_percent
from opl.lang.literals import unwrap as _unwrap

if TYPE_CHECKING:
    from opl.lang.lower import Lowerer


Handler = Callable[["Lowerer", str, ast.Value, object], None]


def field(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    """Lower one field: the handler of `FIELD_HANDLERS` for its name."""
    FIELD_HANDLERS[name](lw, name, value, statement)


# -- market inputs (§3.1) ------------------------------------------------------------------
def _positive_market(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    setattr(lw.doc.market, name, lw.number(value, name, positive=True))


def _open_interest(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.market.open_interest = lw.number(value, name)


def _market_fraction(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    number = lw.fraction(value, name)
    if name == "iv" and number is not None and not 0 < number <= 5:
        lw.error("E207", f"`iv` must be an annual volatility between 0 and 500%, found {number:g}",
                 value.span, "out of range", "write `iv 0.25` or `iv 25%`")
        number = None
    setattr(lw.doc.market, name, number)


def _time(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.market.time = lw.date(value, name)


# -- underlying (extension) ------------------------------------------------------------------
def _underlying_target(lw: "Lowerer") -> Underlying:
    lw.doc.underlying = lw.doc.underlying or Underlying()
    return lw.doc.underlying


def _exercise(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    _underlying_target(lw).exercise = lw.choice(value, name, ("American", "European"))


def _exchange(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    _underlying_target(lw).exchange = lw.choice(value, name, vocab.EXCHANGES)


def _symbol(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    target = _underlying_target(lw)
    inner = _unwrap(value)
    if isinstance(inner, (ast.Name, ast.String)):
        target.symbol = inner.id if isinstance(inner, ast.Name) else inner.value
    else:
        lw.mismatch(value, "a contract symbol such as `CJ605`")


# -- intent (§3.2) ----------------------------------------------------------------------------
def _direction_field(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.intent.direction = _direction(lw, value)


def _vol_intent(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    inner = _unwrap(value)
    lw.doc.intent.vol = inner.direction if isinstance(inner, ast.VolDir) else lw.choice(
        value, name, ("up", "down", "flat"))


def _vega_style(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.intent.vega_style = lw.choice(value, name, vocab.VEGA_STYLES)


def _price_target(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.intent.price_target = lw.number(value, name, positive=True)


# -- constraints (§3.3, rc6) --------------------------------------------------------------------
def _amount(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    """``capital_limit``/``max_risk`` as an amount, with an optional currency (``1500 USD``)."""
    if name == "max_risk" and signed_percent(value) is not None:
        max_risk_share(lw, value)
        return
    setattr(lw.doc.constraints, name, lw.number(value, name, positive=True))
    inner = _unwrap(value)
    if isinstance(inner, ast.Seq) and isinstance(inner.items[-1], ast.Name):
        lw.doc.constraints.currency = inner.items[-1].id


def _liquidity_floor(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.constraints.liquidity_floor = lw.number(value, name)


def _granularity(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    amount = lw.number(value, name, positive=True, integer=True)
    lw.doc.constraints.granularity = int(amount) if amount is not None else None


def _ban_leveraged(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.constraints.ban_leveraged_longdated = bool(lw.boolean(value, name))


def _premium_offset(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    share = lw.fraction(value, name, percent_only=True)
    if share is not None and not 0 <= share <= 1:
        lw.error("E207", "`premium_offset` must lie between 0% and 100%", value.span, "out of range")
        share = None
    lw.doc.constraints.premium_offset = share


# -- adjust (§5), exit (§6), guards (§3.3) ---------------------------------------------------------
def _adjust_condition(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    condition = lw.lower_condition(value)
    if condition is not None:
        setattr(lw.doc.adjust, "when" if name == "adjust_when" else "abort_if", condition)


def _playbook(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    items = _list_items(lw, value, name)
    lw.doc.adjust.playbook = tuple(a for a in (lw.action(item) for item in items) if a is not None)


def _exit_triggers(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    items = _list_items(lw, value, name)
    lw.doc.exit.triggers = tuple(c for c in (lw.lower_condition(item) for item in items) if c is not None)
    lw.doc.exit.declared = True


def _guard(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    condition = lw.lower_condition(value)
    if condition is not None:
        lw.doc.guards.append(Guard(name, condition, statement.span))


# -- extensions -------------------------------------------------------------------------------------
def _risk_share(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    share = lw.fraction(value, name, percent_only=True)
    zero_allowed, bound = _RISK_SHARES[name]
    if share is not None and not (0 < share <= 1 or (zero_allowed and share == 0)):
        lw.error("E207", f"`{name}` must lie {bound}", value.span, "out of range")
        share = None
    setattr(lw.doc.risk, name, share)


def _capital(lw: "Lowerer", name: str, value: ast.Value, statement) -> None:
    lw.doc.risk.capital = lw.number(value, name, positive=True)


def _value_only(reader: Callable[["Lowerer", ast.Value], None]) -> Handler:
    return lambda lw, name, value, statement: reader(lw, value)


def _with_statement(reader: Callable[["Lowerer", ast.Value, object], None]) -> Handler:
    return lambda lw, name, value, statement: reader(lw, value, statement)


def _direction(lw: "Lowerer", value: ast.Value) -> str | None:
    inner = _unwrap(value)
    spelled = {"not-bull": "NotBull", "not-bear": "NotBear"}
    if isinstance(inner, ast.Not) and isinstance(inner.operand, ast.Unary) and inner.operand.op == "-" \
            and isinstance(_unwrap(inner.operand.operand), ast.Name):
        # lower-case `not-bull` parses as the condition `not (-bull)`
        text = f"not-{_unwrap(inner.operand.operand).id}".lower()
        if text in spelled:
            return spelled[text]
    if isinstance(inner, ast.Binary) and inner.op == "-" and all(
            isinstance(_unwrap(s), ast.Name) for s in (inner.left, inner.right)):
        text = f"{_unwrap(inner.left).id}-{_unwrap(inner.right).id}".lower()
        if text in spelled:
            return spelled[text]
    return lw.choice(value, "direction_intent", vocab.DIRECTIONS)


def _list_items(lw: "Lowerer", value: ast.Value, name: str) -> tuple[ast.Value, ...]:
    inner = _unwrap(value)
    if isinstance(inner, ast.ListValue):
        return inner.items
    return (value,)  # a single item without brackets is accepted


def underlying(lw: "Lowerer", value: ast.Value) -> None:
    inner = _unwrap(value)
    target = lw.doc.underlying or Underlying()
    target.span = value.span
    if isinstance(inner, ast.Call) and inner.func == "Future":
        target.kind = "future"
        if inner.args:
            target.expiry = lw.date(inner.args[0], "Future")
    elif isinstance(inner, ast.Braced) and inner.name == "LeveragedETF":
        target.kind = "leveraged_etf"
        target.beta = lw.number(inner.value, "LeveragedETF{β}", positive=True, allow_unit=False)
    elif isinstance(inner, ast.Name) and inner.id in ("Stock", "ETF", "Future", "LeveragedETF"):
        target.kind = {"Stock": "stock", "ETF": "etf", "Future": "future", "LeveragedETF": "leveraged_etf"}[inner.id]
        target.beta = 1.0 if inner.id == "LeveragedETF" else None
    else:
        lw.mismatch(value, "an underlying primitive: Stock, ETF, Future(2026-05-15) or LeveragedETF{3}")
        return
    lw.doc.underlying = target


def horizon(lw: "Lowerer", value: ast.Value) -> None:
    inner = _unwrap(value)
    intent = lw.doc.intent
    if isinstance(inner, ast.Duration):
        intent.holding_horizon_days = inner.days
    elif isinstance(inner, ast.Seq) and len(inner.items) == 2 and isinstance(inner.items[1], ast.Name) \
            and inner.items[1].id == "d" and signed_number(inner.items[0]) is not None:
        intent.holding_horizon_days = signed_number(inner.items[0])  # rc6 writes `10 d`
    elif signed_number(inner) is not None:
        days = lw.number(inner, "holding_horizon", positive=True)
        intent.holding_horizon_days = days
    elif isinstance(inner, ast.Binary) and inner.op == "-" and isinstance(_unwrap(inner.left), ast.Name) \
            and isinstance(_unwrap(inner.right), ast.Name) and \
            f"{_unwrap(inner.left).id}-{_unwrap(inner.right).id}" == "multi-week":
        intent.holding_horizon_label = "multi-week"
    else:
        intent.holding_horizon_label = lw.choice(value, "holding_horizon", vocab.HORIZON_LABELS)


def max_risk_share(lw: "Lowerer", value: ast.Value) -> None:
    """``max_risk 3%``: a share of ``capital_limit`` (rc3's table); resolved when the file is read."""
    share = lw.fraction(value, "max_risk", percent_only=True)
    if share is not None and not 0 < share <= 1:
        lw.error("E207", "`max_risk` as a percentage must lie above 0% and at most 100% of `capital_limit`",
                 value.span, "out of range")
        share = None
    lw.doc.constraints.max_risk_share = share


def vol_target(lw: "Lowerer", value: ast.Value) -> None:
    inner = _unwrap(value)
    if isinstance(inner, ast.Seq) and len(inner.items) == 2 and isinstance(inner.items[1], ast.Name) \
            and inner.items[1].id == "IV":
        points = lw.number(inner.items[0], "vol_target", positive=True)  # rc6: `35 IV` = 35 vol points
        lw.doc.intent.vol_target = points / 100 if points is not None else None
        return
    lw.doc.intent.vol_target = lw.fraction(value, "vol_target")


def exit_mode(lw: "Lowerer", value: ast.Value) -> None:
    inner = _unwrap(value)
    doc = lw.doc
    doc.exit.declared = True
    if isinstance(inner, ast.Call) and inner.func == "machine_decide":
        doc.exit.mode = "machine_decide"
        args = inner.positional
        if len(args) != 1 or not isinstance(_unwrap(args[0]), ast.Name):
            lw.error("E103", "`machine_decide` takes the name of a score function", inner.span,
                     "bad arguments", "write `exit_mode machine_decide(score_fn)`")
            return
        doc.exit.score_fn = _unwrap(args[0]).id
        if doc.exit.score_fn not in vocab.SCORE_FUNCTIONS:
            from opl.lang.diagnostics import did_you_mean

            guess = did_you_mean(doc.exit.score_fn, list(vocab.SCORE_FUNCTIONS))
            lw.sink.emit("W410", f"unknown score function `{doc.exit.score_fn}`: `opl simulate` runs only the "
                         "built-in ones", args[0].span, label="not a built-in score function",
                         help=f"did you mean `{guess}`?" if guess else
                         "built-in score functions: " + ", ".join(vocab.SCORE_FUNCTIONS))
        return
    chosen = lw.choice(value, "exit_mode", vocab.EXIT_MODES)
    if chosen == "machine_decide":
        lw.error("E103", "`machine_decide` needs a score function", value.span, "missing score function",
                 "write `exit_mode machine_decide(score_fn)`")
        return
    if chosen:
        doc.exit.mode = chosen


def append_exit_trigger(lw: "Lowerer", statement: ast.Append) -> None:
    condition = lw.lower_condition(statement.value)
    if condition is not None:
        lw.doc.exit.appended = lw.doc.exit.appended + (condition,)


# Risk controls written as a share: (0 accepted, the range the error states). A stop at a
# 0% loss would close every month at the open; no headroom (0%, the default) is a choice.
_RISK_SHARES = {"stop_loss": (False, "above 0% and at most 100%"),
                "margin_buffer": (True, "between 0% and 100%")}


def _hedge_with(lw: "Lowerer", rule: HedgeRule, arg: ast.Value) -> bool:
    target = _unwrap(arg)
    if isinstance(target, ast.Name) and target.id == "Future" or isinstance(target, ast.Call) and \
            target.func == "Future":
        rule.instrument = "Future"
        return True
    lw.error("E105", "hedges trade futures: `with Future`", arg.span, "unsupported instrument")
    return False


def _hedge_every(lw: "Lowerer", rule: HedgeRule, arg: ast.Value) -> bool:
    step = _unwrap(arg)
    if isinstance(step, ast.Unary) and isinstance(_unwrap(step.operand), ast.Duration):
        rule.every_days = _unwrap(step.operand).days * (-1 if step.op == "-" else 1)
    elif isinstance(step, ast.Duration):
        rule.every_days = step.days
    else:
        lw.mismatch(arg, "a period such as `1d`")
        return False
    if rule.every_days <= 0:
        lw.error("E207", "the hedge period must be positive", arg.span, "not positive")
        return False
    return True


def _hedge_band(lw: "Lowerer", rule: HedgeRule, arg: ast.Value) -> bool:
    band = lw.fraction(arg, "band")
    if band is None or band < 0:
        if band is not None:
            lw.error("E207", "the hedge band cannot be negative", arg.span, "negative band")
        return False
    rule.band = band
    return True


def _hedge_keep(lw: "Lowerer", rule: HedgeRule, arg: ast.Value) -> bool:
    keep = lw.fraction(arg, "keep", percent_only=True)
    if keep is None:
        return False
    if not 0 <= keep <= 1:
        lw.error("E207", "the kept exposure must lie between 0% and 100%", arg.span, "out of range")
        return False
    rule.keep = keep
    if rule.along == "none":
        rule.along = "direction"
    return True


def _hedge_along(lw: "Lowerer", rule: HedgeRule, arg: ast.Value) -> bool:
    rule.along = lw.choice(arg, "along", ("direction", "long", "short")) or rule.along
    return True


# hedge keyword → reads its value into the rule; False when it reported a problem (the rule is dropped)
HEDGE_KEYWORDS: dict[str, Callable[["Lowerer", HedgeRule, ast.Value], bool]] = {
    "with": _hedge_with, "every": _hedge_every, "band": _hedge_band, "keep": _hedge_keep, "along": _hedge_along,
}


def hedge(lw: "Lowerer", value: ast.Value, statement) -> None:
    """``hedge delta with Future every 1d band 0.05 keep 10% along direction`` or ``hedge none``."""
    inner = _unwrap(value)
    items = list(inner.items) if isinstance(inner, ast.Seq) else [inner]
    head = _unwrap(items[0])
    if isinstance(head, ast.Name) and head.id == "none" and len(items) == 1:
        return
    if not (isinstance(head, ast.Name) and head.id == "delta"):
        lw.error("E105", "the hedge rule starts with the Greek it hedges: `hedge delta ...`", head.span,
                 "expected `delta`", "write `hedge delta with Future every 1d band 0.05 keep 10% along direction`")
        return
    rule = HedgeRule(span=statement.span)
    rest = [part for item in items[1:] for part in _split_signed_keyword(item)]
    i = 0
    while i < len(rest):
        word = _unwrap(rest[i])
        if not (isinstance(word, ast.Name) and word.id in HEDGE_KEYWORDS):
            lw.error("E103", f"unexpected {_describe(word)} in the hedge rule", word.span, "not a hedge keyword",
                     "hedge keywords: with <instrument>, every <1d>, band <0.05>, keep <10%> along "
                     "<direction|long|short>")
            return
        if i + 1 >= len(rest):
            lw.error("E108", f"`{word.id}` needs a value", word.span, "value missing")
            return
        if not HEDGE_KEYWORDS[word.id](lw, rule, rest[i + 1]):
            return
        i += 2
    lw.doc.hedge = rule


def _split_signed_keyword(item: ast.Value) -> tuple[ast.Value, ...]:
    """``band -0.1`` parses as the subtraction ``band - 0.1``: read it as the keyword and a negative value."""
    inner = _unwrap(item)
    if isinstance(inner, ast.Binary) and inner.op == "-" and isinstance(_unwrap(inner.left), ast.Name) \
            and _unwrap(inner.left).id in HEDGE_KEYWORDS:
        return inner.left, ast.Unary("-", inner.right, inner.op_span.merge(inner.right.span))
    return (item,)


def _describe(value: ast.Value) -> str:
    if isinstance(value, ast.Name):
        return f"`{value.id}`"
    return "value"


def _storage(lw: "Lowerer", policy: AssignmentPolicy, arg) -> None:
    # `storage=2/day`: the amount per day (the `/day` is the unit as written).
    amount = lw.number(arg.left if isinstance(arg, ast.Binary) and arg.op == "/" else arg, "storage")
    if amount is not None:
        policy.storage_per_day = amount


def _funding(lw: "Lowerer", policy: AssignmentPolicy, arg) -> None:
    rate = lw.fraction(arg, "funding")
    if rate is not None:
        policy.funding_rate = rate


def _basis(lw: "Lowerer", policy: AssignmentPolicy, arg) -> None:
    basis = lw.number(arg, "basis")
    if basis is not None:
        policy.basis = basis


def _hold(lw: "Lowerer", policy: AssignmentPolicy, arg) -> None:
    if isinstance(arg, ast.Duration):
        policy.hold_days = arg.days
    else:
        lw.mismatch(arg, "a holding period such as `30d`")


#: `take_delivery(...)`'s keyword arguments, each with the handler that reads it into the policy.
_DELIVERY_TERMS = {"storage": _storage, "funding": _funding, "basis": _basis, "hold": _hold}


def assignment(lw: "Lowerer", value: ast.Value, statement) -> None:
    inner = _unwrap(value)
    if isinstance(inner, ast.Name):
        inner = ast.Call(inner.id, (), inner.span, inner.span)
    if not isinstance(inner, ast.Call) or inner.func not in ("hedge_and_close", "take_delivery"):
        lw.error("E105", "`on_assignment` takes `hedge_and_close()` or `take_delivery(...)`", value.span,
                 "unknown policy", "write `on_assignment take_delivery(storage=2/day, funding=3%)`")
        return
    policy = AssignmentPolicy(action=inner.func, span=statement.span)
    if inner.positional:
        lw.error("E103", f"`{inner.func}` takes keyword arguments only", inner.span, "positional argument",
                 "take_delivery(storage=2/day, funding=3%, basis=0, hold=30d)")
        return
    allowed = _DELIVERY_TERMS if inner.func == "take_delivery" else {}
    for kw in inner.keywords.values():
        if kw.name not in allowed:
            lw.error("E103", f"`{inner.func}` has no argument `{kw.name}`", kw.name_span, "unknown argument",
                     "take_delivery(storage=2/day, funding=3%, basis=0, hold=30d)")
            return
        _DELIVERY_TERMS[kw.name](lw, policy, _unwrap(kw.value))
    lw.doc.assignment = policy


# field → handler; every name of `opl.lang.vocabulary.ALL_FIELDS` has one
# (tests/simulate/test_vocabulary_tables.py).
FIELD_HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(("price", "support", "resistance", "entry_price"), _positive_market),
    "open_interest": _open_interest,
    **dict.fromkeys(("iv", "rate"), _market_fraction),
    "time": _time,
    "underlying": _value_only(underlying),
    "symbol": _symbol,
    "exchange": _exchange,
    "exercise": _exercise,
    **dict.fromkeys(("direction_intent", "intent"), _direction_field),
    "vol_intent": _vol_intent,
    "vega_style": _vega_style,
    "holding_horizon": _value_only(horizon),
    "price_target": _price_target,
    "vol_target": _value_only(vol_target),
    **dict.fromkeys(("capital_limit", "max_risk"), _amount),
    "liquidity_floor": _liquidity_floor,
    "granularity": _granularity,
    "ban_leveraged_longdated": _ban_leveraged,
    "premium_offset": _premium_offset,
    **dict.fromkeys(("adjust_when", "abort_if"), _adjust_condition),
    "adjust_playbook": _playbook,
    "exit_mode": _value_only(exit_mode),
    "exit_triggers": _exit_triggers,
    **dict.fromkeys(vocab.GUARD_FIELDS, _guard),
    "hedge": _with_statement(hedge),
    "on_assignment": _with_statement(assignment),
    **dict.fromkeys(_RISK_SHARES, _risk_share),
    "capital": _capital,
}


# --------------------------------------------------------------------------- experiment


def experiment(lw: "Lowerer", block: ast.Block) -> Experiment:
    result = Experiment(span=block.span)
    seen: dict[str, object] = {}
    for statement in block.body:
        if isinstance(statement, ast.Block):
            lw.error("E107", f"blocks cannot nest: `{statement.name}`", statement.name_span, "nested block")
            continue
        if isinstance(statement, ast.Header):
            lw.error("E005", "the header must be the first statement of the file", statement.span,
                     "header inside a block")
            continue
        if isinstance(statement, ast.Append):
            lw.error("E105", "`+=` is not used in the experiment block", statement.name_span, "cannot append")
            continue
        for name, name_span, value in _settings(statement):
            if name not in vocab.EXPERIMENT_SETTINGS:
                from opl.lang.diagnostics import did_you_mean

                guess = did_you_mean(name, vocab.EXPERIMENT_SETTINGS)
                lw.error("E107", f"unknown experiment setting `{name}`", name_span, "unknown setting",
                         f"did you mean `{guess}`?" if guess else
                         f"settings: {', '.join(vocab.EXPERIMENT_SETTINGS)}")
                continue
            if name in seen:
                lw.error("E202", f"experiment setting `{name}` is set more than once", name_span,
                         "set again here", notes=(f"first set on line {seen[name]}",))
                continue
            seen[name] = name_span.line
            if value is None:
                lw.error("E108", f"experiment setting `{name}` has no value", name_span, "value missing")
                continue
            _setting(lw, result, name, value)
    return result


def _settings(statement) -> list[tuple[str, object, ast.Value | None]]:
    """Split `paths 50000  steps_per_day 1  seed 7` into its settings."""
    value = statement.value
    items = list(value.items) if isinstance(value, ast.Seq) else ([value] if value is not None else [])
    out: list[tuple[str, object, ast.Value | None]] = []
    name, name_span, current = statement.name, statement.name_span, []
    for item in items:
        if isinstance(item, ast.Name) and item.id in vocab.EXPERIMENT_SETTINGS and item.id != name:
            out.append((name, name_span, _join(current)))
            name, name_span, current = item.id, item.span, []
        else:
            current.append(item)
    out.append((name, name_span, _join(current)))
    return out


def _join(items: list[ast.Value]) -> ast.Value | None:
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    return ast.Seq(tuple(items), items[0].span.merge(items[-1].span))


def _calibration_file(lw: "Lowerer", result: Experiment, call: ast.Call) -> None:
    """`calibration file("calib.json")`: the JSON `opl calibrate --json` wrote, relative to the .opl."""
    args = call.args
    if len(args) != 1 or not isinstance(args[0], ast.String) or not args[0].value.strip():
        lw.error("E103", "write the calibration file as `calibration file(\"calib.json\")`, a path relative to "
                 "this file", call.span, "bad arguments", "or write `calibration file` and pass the JSON as --data")
        return
    result.calibration_file = args[0].value


SettingHandler = Callable[["Lowerer", Experiment, str, ast.Value], None]


def _setting(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    """Lower one experiment setting: the handler of `SETTING_HANDLERS` for its name."""
    SETTING_HANDLERS[name](lw, result, name, value)


def _model(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    result.model = tuple(c for c in (_model_component(lw, v) for v in plus_terms(_unwrap(value))) if c is not None)


def _calibration(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    inner = _unwrap(value)
    head = inner.func if isinstance(inner, ast.Call) else inner
    result.calibration_span = value.span
    if not isinstance(head, str):
        result.calibration = lw.choice(value, "calibration", vocab.CALIBRATIONS)
        return
    result.calibration = head if head in vocab.CALIBRATIONS else lw.choice(
        ast.Name(head, inner.func_span), "calibration", vocab.CALIBRATIONS)
    if head == "file":
        _calibration_file(lw, result, inner)
    elif inner.args:
        lw.error("E103", f"`calibration {head}` takes no arguments", inner.span, "unexpected arguments",
                 "only `calibration file(\"calib.json\")` names something")


def _signal(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    inner = _unwrap(value)
    items = list(inner.items) if isinstance(inner, ast.Seq) else [inner]
    words = [i.id for i in items if isinstance(i, ast.Name)]
    numbers = [i for i in items if not isinstance(i, ast.Name)]
    if "hit_rate" not in words or len(numbers) != 1:
        lw.error("E103", "write the signal as `signal direction hit_rate 0.9`", value.span, "bad signal")
        return
    rate = lw.fraction(numbers[0], "hit_rate")
    if rate is not None and not 0 <= rate <= 1:
        lw.error("E207", f"hit rate must lie between 0 and 1, found {rate:g}", numbers[0].span, "out of range")
        return
    result.hit_rate = rate


_COUNT_BOUNDS = {"paths": (1, 10_000_000), "steps_per_day": (1, 96), "seed": (0, 2**63 - 1), "horizon": (1, 600)}


def _count(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    """``paths``, ``steps_per_day``, ``seed`` and ``horizon`` (months, or a duration)."""
    inner = _unwrap(value)
    if name == "horizon" and isinstance(inner, ast.Duration):
        result.horizon_months = max(1, round(inner.days / 30.4375))
        return
    number = lw.number(value, name, integer=True, allow_unit=name == "horizon")
    if number is None:
        return
    low, high = _COUNT_BOUNDS[name]
    if not low <= number <= high:
        lw.error("E207", f"`{name}` must lie between {low} and {high:,}, found {number:g}", value.span,
                 "out of range")
        return
    setattr(result, "horizon_months" if name == "horizon" else name, int(number))


def _sizes(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    items = _list_items(lw, value, name)
    sizes = [lw.number(i, "sizes", positive=True) for i in items]
    for item, size in zip(items, sizes):
        if size is not None and size > limits.MAX_SIZE:
            lw.error("E207", f"`sizes` must be at most {limits.MAX_SIZE:g}, found {size:g}", item.span,
                     "out of range")
    result.sizes = tuple(s for s in sizes if s is not None and s <= limits.MAX_SIZE)


def _scenarios(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    scenarios = tuple(s for s in (_scenario(lw, i) for i in _list_items(lw, value, name)) if s is not None)
    setattr(result, name, scenarios)


def _target(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    result.target = lw.lower_condition(value, variables={k: vocab.VARIABLES[k] for k in vocab.TARGET_METRICS})


def _metrics(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    picked = (lw.choice(item, "metrics", vocab.TARGET_METRICS) for item in _list_items(lw, value, name))
    result.metrics = tuple(p for p in picked if p)


def _hypotheses(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    result.hypotheses = tuple(h for h in (_hypothesis(lw, item) for item in _list_items(lw, value, name))
                              if h is not None)


def _iv(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    result.smile = _smile(lw, _unwrap(value), value)
    result.smile_span = value.span


def _stop(lw: "Lowerer", result: Experiment, name: str, value: ast.Value) -> None:
    kept = []
    for item in _list_items(lw, value, name):
        call = _unwrap(item)
        if isinstance(call, ast.Name):
            call = ast.Call(call.id, (), call.span, call.span)
        if isinstance(call, ast.Call) and lw.signature(call, vocab.STOP_CONDITIONS, "stop condition"):
            lowered = lw.bound_call(call, vocab.STOP_CONDITIONS[call.func])
            if lowered is not None:
                kept.append(lowered)
        elif not isinstance(call, ast.Call):
            lw.mismatch(item, "a stop condition such as `converge(rounds=5, min_gain=0.1%)`")
    result.stop = tuple(kept)


# experiment setting → handler; every name of `opl.lang.vocabulary.EXPERIMENT_SETTINGS` has one
# (tests/simulate/test_vocabulary_tables.py).
SETTING_HANDLERS: dict[str, SettingHandler] = {
    "model": _model,
    "calibration": _calibration,
    "signal": _signal,
    **dict.fromkeys(_COUNT_BOUNDS, _count),
    "sizes": _sizes,
    **dict.fromkeys(("stress", "sensitivity"), _scenarios),
    "target": _target,
    "metrics": _metrics,
    "hypotheses": _hypotheses,
    "iv": _iv,
    "stop": _stop,
}


def plus_terms(value: ast.Value) -> list[ast.Value]:
    """The terms of ``a + b + c`` (a model such as `garch + jump`), brackets removed."""
    value = _unwrap(value)
    if isinstance(value, ast.Binary) and value.op == "+":
        return plus_terms(value.left) + plus_terms(value.right)
    return [value]


def _model_component(lw: "Lowerer", value: ast.Value) -> ModelComponent | None:
    name = value.id if isinstance(value, ast.Name) else value.func if isinstance(value, ast.Call) else None
    if name is None:
        lw.mismatch(value, "a price model (gbm, garch, gjr, jump, regime)")
        return None
    if name not in vocab.PRICE_MODELS:
        span = value.span if isinstance(value, ast.Name) else value.func_span
        lw.choice(ast.Name(name, span), "model", vocab.PRICE_MODELS)
        return None
    params: dict[str, float] = {}
    if isinstance(value, ast.Call):
        if value.positional:
            lw.error("E103", f"`{name}(...)` takes keyword parameters", value.span, "positional argument",
                     f"e.g. `{name}(alpha=0.08, beta=0.9)`")
            return None
        for kw in value.keywords.values():
            pct = signed_percent(kw.value)
            number = pct / 100 if pct is not None else lw.number(kw.value, f"{name}.{kw.name}")
            if number is None:
                return None
            params[kw.name] = number
    return ModelComponent(name, params, value.span)


def _smile(lw: "Lowerer", inner: ast.Value, value: ast.Value) -> dict[str, float]:
    """``iv smile(spread=8%, floor=10%, skew=-0.2, curvature=2)``: the simulator's implied-volatility rule."""
    example = "`iv smile(spread=8%, floor=10%, skew=-0.2, curvature=2)`"
    if not (isinstance(inner, ast.Call) and inner.func == "smile") or inner.positional:
        lw.error("E103", "write the implied-volatility rule as " + example, value.span, "bad implied-volatility rule",
                 "parameters: " + ", ".join(vocab.SMILE_PARAMETERS))
        return {}
    out: dict[str, float] = {}
    for kw in inner.keywords.values():
        bounds = vocab.SMILE_PARAMETERS.get(kw.name)
        if bounds is None:
            from opl.lang.diagnostics import did_you_mean

            guess = did_you_mean(kw.name, list(vocab.SMILE_PARAMETERS))
            lw.error("E103", f"`smile` has no parameter `{kw.name}`", kw.name_span, "unknown parameter",
                     f"did you mean `{guess}`?" if guess else "parameters: " + ", ".join(vocab.SMILE_PARAMETERS))
            continue
        number = lw.fraction(kw.value, f"smile.{kw.name}")
        if number is None:
            continue
        low, high, _ = bounds
        if not low <= number <= high:
            lw.error("E207", f"`smile({kw.name}=...)` must lie between {low:g} and {high:g}, found {number:g}",
                     kw.value.span, "out of range")
            continue
        out[kw.name] = number
    return out


def _scenario(lw: "Lowerer", value: ast.Value) -> Scenario | None:
    inner = _unwrap(value)
    name = inner.id if isinstance(inner, ast.Name) else inner.func if isinstance(inner, ast.Call) else None
    if name is None or name not in vocab.SCENARIOS:
        if name is None:
            lw.mismatch(value, "a scenario such as `vol_up(+50%)`")
        else:
            span = inner.span if isinstance(inner, ast.Name) else inner.func_span
            lw.choice(ast.Name(name, span), "scenario", tuple(vocab.SCENARIOS))
        return None
    amount: float | None = None
    form = "number"
    if isinstance(inner, ast.Call):
        if len(inner.args) != 1 or isinstance(inner.args[0], ast.Kwarg):
            lw.error("E103", f"`{name}(...)` takes one value", inner.span, "bad arguments",
                     f"e.g. `{name}(+50%)` or `slippage(x3)`")
            return None
        arg = _unwrap(inner.args[0])
        pct = signed_percent(arg)
        if pct is not None:
            amount, form = pct / 100, "percent"
        elif isinstance(arg, ast.Factor):
            amount, form = arg.value, "factor"
        else:
            amount = lw.number(arg, name)
            if amount is None:
                return None
    return Scenario(name, amount, value.span, form)


def _hypothesis(lw: "Lowerer", value: ast.Value):
    """A ``hypotheses`` item (`random_walk(1d, 21d)`, `hit_rate(0.9)`) as an `opl.lang.ir.Call`."""
    inner = _unwrap(value)
    if isinstance(inner, (ast.Name, ast.String)):  # `random_walk` or the quoted name `"random_walk"`
        name = inner.id if isinstance(inner, ast.Name) else inner.value
        inner = ast.Call(name, (), inner.span, inner.span)
    if not isinstance(inner, ast.Call):
        lw.mismatch(value, "an assumption test such as `random_walk(1d, 21d)`")
        return None
    return lw.bound_call(inner, None)
