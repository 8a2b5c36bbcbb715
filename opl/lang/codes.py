"""The diagnostic code table: code, severity, title and long explanation.

This is the one source of truth; grammar/README.md carries the same table and a test
keeps the two in step. ``opl explain CODE`` prints ``explanation``.

Namespaces: E0xx syntax, header and input bounds; E1xx unknown names and types;
E2xx rule violations; E3xx resources and constraints; W4xx guard rules; I-codes are
notes (informational, never fail a check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Code:
    code: str
    severity: Literal["error", "warning", "note"]
    title: str
    explanation: str


_TABLE: tuple[tuple[str, str, str, str], ...] = (
    # -- E0xx: syntax, header, input bounds ------------------------------------------
    ("E001", "error", "syntax error",
     "The text does not follow the grammar at this point: the token under the caret was\n"
     "not expected. The message lists what the parser would have accepted.\n"
     "One syntax error does not hide the rest of the file: every other statement is\n"
     "still parsed and checked."),
    ("E002", "error", "unexpected character",
     "A character that belongs to no OPL-Lang token, e.g. `$` or a full-width comma.\n"
     "Identifiers are ASCII letters, digits and `_`; comments start with `#`."),
    ("E003", "error", "unclosed bracket",
     "An opening `(`, `[` or `{` has no matching closing bracket before the statement\n"
     "ends. Lists such as `exit_triggers [ ... ]` may span lines; every bracket must close."),
    ("E004", "error", "missing version header",
     "Every file starts with the magic header `opl-lang 1.0` within its first 256 bytes\n"
     "(spec §12, rc6 §13). Only blank lines and comments may precede it.\n\n"
     "    opl-lang 1.0\n    S = long Option(Call, 480, 14d)"),
    ("E005", "error", "header outside the first 256 bytes",
     "The `opl-lang` header must start within the first 256 bytes of the file so that\n"
     "tools can sniff the format. Move it to the top."),
    ("E006", "error", "unsupported major version",
     "Tools must refuse a file whose major version they do not recognise (spec §12).\n"
     "This implementation reads OPL-Lang 1.x (rc2 and rc6)."),
    ("E007", "error", "input is not UTF-8 text",
     "The file could not be decoded as UTF-8, or it contains NUL bytes. OPL-Lang files\n"
     "are UTF-8 text."),
    ("E008", "error", "input too large",
     "The file exceeds a bound that protects the tools from untrusted input: the byte\n"
     "size, the number of statements or the number of tokens. The limits are listed in\n"
     "grammar/README.md (Untrusted input)."),
    ("E009", "error", "nesting too deep",
     "Parentheses, lists, calls or template expansions are nested deeper than the limit.\n"
     "Flatten the expression."),
    ("E010", "error", "too many legs",
     "After template expansion the strategy has more legs than the limit. Split it into\n"
     "several files or use quantities (`3×short Option(...)`) instead of repeated legs."),
    ("E011", "error", "identifier too long",
     "Names are limited in length (see grammar/README.md, Untrusted input)."),
    ("E012", "error", "number out of range",
     "A number is not finite or lies outside the range the field accepts (for example a\n"
     "quantity above the maximum, a strike above 1e9, or a date outside 1900–2200)."),
    ("E013", "error", "invalid JSON leg file",
     "A `.json` strategy file must be a JSON array of legs as in golden example 2:\n\n"
     '    [{"qty":1,"side":"long","type":"call","strike":480,"exp":3650}]\n\n'
     "`exp` is the tenor in calendar days; `type` is call, put, stock, etf, future or cash."),
    ("E014", "error", "duplicate header",
     "The `opl-lang` header appears more than once."),
    ("E015", "error", "named file not allowed",
     "A file the `.opl` names (`calibration file(\"calib.json\")`) is refused. When the file is\n"
     "confined — a candidate of `opl loop`, written by a model, or `opl check --confine DIR` —\n"
     "the name must be a relative path to a regular file inside the allowed folders (the\n"
     "run folder and the `--data` folder): absolute paths, `..`, symbolic links leading out,\n"
     "devices, FIFOs, folders, missing files and files above the size cap are refused\n"
     "before anything is opened. A user's own file (`opl simulate`, `opl backtest`) may\n"
     "name any path, but only a regular file under the cap is read. The cap is listed in\n"
     "grammar/README.md (Untrusted input)."),
    # -- E1xx: unknown names and types -----------------------------------------------
    ("E101", "error", "unknown primitive",
     "A leg names an instrument that is neither a primitive (Cash, Stock, Future, ETF,\n"
     "LeveragedETF{β}, Option) nor a template of the library (Vertical, Condor,\n"
     "Straddle, ...). Names are case-sensitive."),
    ("E102", "error", "unknown field",
     "The statement's name is not a field of OPL-Lang or of the opl extensions. Fields\n"
     "are written `name value` on their own line (or `name = value`). The full list is\n"
     "in grammar/README.md."),
    ("E103", "error", "bad arguments",
     "A primitive, template, trigger or action was called with missing, extra or\n"
     "unknown arguments. `opl explain` on the template name's section of\n"
     "grammar/README.md lists each signature."),
    ("E104", "error", "type mismatch",
     "A value of the wrong kind: a tenor (`30d`) where a strike is expected, a strike\n"
     "where a tenor is expected, a percentage where a plain number is needed, ..."),
    ("E105", "error", "invalid value",
     "The value is not one of the values this field accepts, e.g. `direction_intent`\n"
     "takes Bull, Bear, RangeBound, Breakout, Neutral, NotBull or NotBear."),
    ("E106", "error", "unknown condition or action",
     "A trigger, guard variable or playbook action is not known. Conditions use the\n"
     "functions and variables listed in grammar/README.md (e.g. `pnl_percent(<-25%)`,\n"
     "`days_left(<2d)`, `price_retrace(>-3%)`); actions the control verbs\n"
     "(`roll_nearest_term()`, `hedge_gamma(target=0.10)`, `scale_qty(leg=1, factor=2)`)."),
    ("E107", "error", "unknown experiment setting",
     "A setting inside `experiment { ... }` is not known. See grammar/README.md,\n"
     "The experiment block."),
    ("E108", "error", "missing value",
     "A field is written without a value. Write `name value`, e.g. `capital_limit 100000`."),
    ("E109", "error", "invalid date",
     "The date is not a valid calendar date (YYYY-MM-DD)."),
    # -- E2xx: rule violations --------------------------------------------------------
    ("E201", "error", "long-dated option leg on a leveraged ETF",
     "With `ban_leveraged_longdated TRUE`, option legs on a `LeveragedETF{β}` underlying\n"
     "may not expire more than 45 days out (spec §3.3): leveraged ETFs decay along the\n"
     "path and long-dated options on them misprice that decay."),
    ("E202", "error", "duplicate field",
     "A field is set twice. Only `exit_triggers +=` and the guard rules (`avoid_leg_if`,\n"
     "`warn_if`) may appear several times."),
    ("E203", "error", "no strategy",
     "The file declares neither a leg expression (`S = ...`) nor a `direction_intent`\n"
     "from which the compiler could build one."),
    ("E204", "error", "strategy defined twice",
     "Two statements define the strategy. Keep one `S = ...`."),
    ("E205", "error", "non-positive strike",
     "Strikes must be positive. A relative strike (`support-100`, `ATM-5%`) that resolves\n"
     "to zero or below is reported when the market inputs are known."),
    ("E206", "error", "non-positive tenor",
     "Tenors must be at least one day (`1d`); an expiry date must lie after the file's\n"
     "`time`; an option on `underlying Future(date)` cannot expire after that future."),
    ("E207", "error", "invalid rule setting",
     "A hedge rule, assignment policy, risk control or experiment setting has a value\n"
     "outside its valid range (a negative band, a hit rate above 1, zero paths, ...)."),
    ("E208", "error", "circular strategy reference",
     "A named strategy refers to itself, directly or through other names."),
    # -- E3xx: resources and constraints ------------------------------------------------
    ("E301", "error", "capital limit exceeded",
     "The estimated capital the position needs exceeds `capital_limit`. The checker\n"
     "estimates it from the file's market inputs (premium paid for long options, the\n"
     "exchange's seller margin for short options — a short straddle, strangle or vertical\n"
     "spread margined as one position where the rule pack lists that combination — and\n"
     "margin for futures); `opl compile` uses the exchange rule pack. Reduce quantities\n"
     "or raise the limit."),
    ("E302", "error", "max_risk exceeded",
     "The worst loss at expiry over a grid of underlying prices exceeds `max_risk`.\n"
     "Add protective wings (buy further OTM options) or reduce quantity. An unbounded\n"
     "loss (a naked short call) always exceeds a finite `max_risk`."),
    ("E303", "error", "premium_offset unattainable",
     "No credit legs within the allowed strikes can offset the requested share of the\n"
     "debit without breaking `max_risk`."),
    ("E304", "error", "quantity below lot granularity",
     "After `scale_qty`, a leg's quantity is not a whole multiple of `granularity` lots\n"
     "(or is below one lot)."),
    ("E305", "error", "zero or negative quantity",
     "A leg's quantity is zero or negative. Quantities are positive integers; write\n"
     "`short` for a short leg. (Legs that cancel after merging are dropped with note I305.)"),
    # -- W4xx: guard rules ---------------------------------------------------------------
    ("E306", "error", "market inputs missing",
     "`opl compile`, `opl payoff` and `opl simulate` price the legs, which needs the\n"
     "underlying's `price` and the implied volatility `iv` (and resolves `support`/\n"
     "`resistance` anchors from those fields). Give them in the file (`price 9850`,\n"
     "`iv 0.22`) or on the command line: `--market price=9850,iv=0.22`."),
    ("W401", "warning", "0DTE far-OTM leg",
     "Guard `avoid_leg_if days_left < 2d && strike_offset > 10%` (spec §3.3): an option\n"
     "that expires within two days and is more than 10% out of the money has almost no\n"
     "value left; the runtime blocks such legs."),
    ("W402", "warning", "early deep-ITM leg",
     "Guard `warn_if days_left > 30d && leg_pnl > +25%` (spec §3.3): a long-dated leg\n"
     "that is already deeply profitable may give the gain back; consider a roll or a\n"
     "close. The checker evaluates it when the file gives `entry_price` (the underlying\n"
     "price at entry) beside `price` and `iv`; the simulator evaluates it every step."),
    ("W403", "warning", "premium_offset reduced to satisfy max_risk",
     "`max_risk` has priority over `premium_offset` (rc6 §4.1): the offset was reduced."),
    ("W404", "warning", "no exit module",
     "No `exit_mode` or `exit_triggers` is declared; the default\n"
     "`exit_triggers [ expiry_passed() ]` applies (spec §6)."),
    ("W405", "warning", "naked short call",
     "A short call that no long call or long underlying covers has unbounded loss.\n"
     "Add a wing, a covering underlying leg, a futures hedge rule (`hedge delta with\n"
     "Future ...`) or a stop (`exit_triggers [ pnl_percent(<-25%) ]`)."),
    ("W406", "warning", "intent contradicts the legs",
     "The sign of the leg set's directional exposure disagrees with `direction_intent`\n"
     "(e.g. Bull with a net-short-delta set), or its volatility exposure disagrees with\n"
     "`vega_style` / `vol_intent`."),
    ("W407", "warning", "IV-crush exposure",
     "The position is net long options (long vega) while `vol_intent` expects falling\n"
     "or unchanged implied volatility: a fall in IV loses money even if the price moves\n"
     "as hoped."),
    ("W408", "warning", "below liquidity floor",
     "The open interest known for the contract is below `liquidity_floor`: fills may\n"
     "be poor and exits slow."),
    ("W409", "warning", "unused definition",
     "A named leg expression is defined but not used by the strategy `S`."),
    ("W410", "warning", "unknown score function",
     "`exit_mode machine_decide(score_fn)` names a score function that is not built in.\n"
     "The file is valid OPL-Lang (the spec leaves score functions open), but `opl simulate`\n"
     "runs only the built-in ones — `trigger_vote`, `profit_capture`, `pnl_greeks_time`\n"
     "(grammar/README.md §6) — and refuses the file with E106."),
    ("W412", "warning", "incomplete adjustment module",
     "`adjust_playbook` without `adjust_when` (nothing says when to adjust), or\n"
     "`adjust_when` without `adjust_playbook` (nothing to do when it holds). The spec's\n"
     "golden sample 6 writes a playbook alone, so this is not an error; the simulator\n"
     "runs no adjustment for such a file. Write both fields to adjust."),
    ("W411", "warning", "support above resistance",
     "`support` lies above `resistance`, or a short put is struck above a short call.\n"
     "Between the two strikes both short options are in the money, so a short strangle\n"
     "built on such levels loses where it means to collect. Usually the levels are\n"
     "swapped; strike the put below the call."),
    # -- notes -----------------------------------------------------------------------------
    ("I301", "note", "capital limit not checked",
     "`capital_limit` is set but the file has no `price` (and `iv`) to estimate the\n"
     "capital with. `opl compile --market price=...,iv=...` checks it."),
    ("I302", "note", "max_risk not checked",
     "`max_risk` is set but strikes cannot be resolved without market inputs."),
    ("I305", "note", "legs cancelled out",
     "Identical legs with opposite sides cancelled when the strategy was normalised\n"
     "(spec §8.2 drops zero quantities); they are reported so nothing disappears silently."),
    ("I401", "note", "level supplied at run time",
     "A strike is anchored on `support`/`resistance`, which the file does not set: it\n"
     "is resolved from the signals at simulation or backtest time."),
)

CODES: dict[str, Code] = {row[0]: Code(*row) for row in _TABLE}


def explain(code: str) -> str | None:
    """The long explanation of a code, or None when the code is unknown."""
    entry = CODES.get(code.upper())
    if entry is None:
        return None
    return f"{entry.code} ({entry.severity}): {entry.title}\n\n{entry.explanation}\n"
