"""Properties of the front end over generated files.

A small grammar of valid OPL-Lang files — random legs with every quantity spelling,
fields of the spec's list with valid values, guard rules, lists (one line or several,
with comments inside), an experiment block with several settings on a line, random
spacing, comments and blank lines — drives two properties of `opl fmt`: formatting
is idempotent, and it keeps the (canonical) tree, the comments and the checker's
findings. A fuzz test then mutates such files and feeds random text to `opl.check`
and `format_text`, which must return diagnostics, never raise.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import opl
from opl.lang.fmt import canonical, format_text, scan_comments
from opl.lang.frontend import check_text
from opl.lang.parser import parse

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("strategies/*.opl"), *ROOT.glob("examples/**/*.opl"),
                  *ROOT.glob("tests/fixtures/spec/*.opl")])

# Templates: `~` is optional whitespace, `^` required whitespace.
STRIKES = ["480", "10_250", "485.5", "ATM", "ATM+5%", "ATM~-~5%", "support-100", "resistance~+~2%", "+5%", "-5%",
           "delta(~0.25~)"]
TENORS = ["30d", "+30d", "14d", "2w", "1y", "2026-05-15"]
QUANTITIES = ["{}×", "{}~×~", "{}x^", "{}^x^", "{}*", "{}~*~"]
TEMPLATES = ["Straddle(~ATM~,~30d~)", "Vertical(Call,~480,~500,~30d)", "Condor(~Call,~K1~=~480,~K2=520,~T=30d~)",
             "IronCondor(440,~460,~540,~560,~30d)", "CoveredCall(520,~30d)", "StockEquivalent(~)",
             "RatioSpread(Put,~500,~470,~30d,~ratio=2)"]
LINEAR = ["Stock", "ETF", "Cash", "Future", "Future(~2026-05-15~)", "LeveragedETF{~3~}"]
TRIGGERS = ["pnl_percent(~>30%~)", "pnl_percent(<~-25%)", "days_left(~<~2d~)", "price_target_hit(~108~)",
            "expiry_passed(~)", "drawdown(>10%)", "iv_change(~>~30%)", "price_outside(~400~,~560~)",
            "structure_destabilised(~delta_jump~)", "support_broken(~100~)", "margin_utilisation(>80%)"]
ACTIONS = ["roll_nearest_term(~)", "hedge_gamma(~target~=~0.10~)", "scale_qty(leg=1,~factor=2.0)",
           "delta_neutralise(~keep=10%~)", "close(~)"]
FIELDS = {
    "price": ["480", "10_250", "1e3", "485.50"], "iv": ["0.25", "25%"], "rate": ["0.02", "2%"],
    "time": ["2026-01-05"], "support": ["9900"], "resistance": ["11000"], "entry_price": ["9800"],
    "open_interest": ["1200"], "underlying": ["Stock", "ETF", "Future(~2026-05-15~)", "LeveragedETF{~3~}"],
    "exchange": ["CZCE", "SSE"], "symbol": ["CJ605", '"desk A"', '"a \\"b\\" # not a comment"'],
    "exercise": ["American", "European"],
    "direction_intent": ["Bull", "Bear", "RangeBound", "Breakout", "Neutral", "NotBull", "Not-Bear"],
    "intent": ["Bull"], "vol_intent": ["↑IV", "↓IV", "=IV", "up", "flat"], "vega_style": ["Debit", "Credit"],
    "holding_horizon": ["14", "14d", "10^d", "swing", "multi-week"], "price_target": ["120^USD", "108"],
    "vol_target": ["35^IV", "35%", "0.35"], "capital_limit": ["100000", "100000^CNY"],
    "liquidity_floor": ["500"], "granularity": ["100"], "ban_leveraged_longdated": ["TRUE", "FALSE"],
    "max_risk": ["1500^USD", "2000"], "premium_offset": ["40%"],
    "adjust_when": ["price_retrace(~>~-3%~)^or^vega_crush(>20%)", "price_retrace(>-3%)~||~vega_crush(>20%)",
                    "not^drawdown(>5%)", "!~iv_change(<-3%)^and^(~drawdown(>5%)^or^pnl_percent(<-10%)~)"],
    "abort_if": ["additional_margin(~%~)~>~15", "additional_margin(%)>15"],
    "exit_mode": ["first_hit", "all_required", "machine_decide(~score_fn~)"],
    "avoid_leg_if": ["days_left~<~2d~&&~strike_offset~>~10%", "days_left^<^2d^and^strike_offset^>^10%"],
    "warn_if": ["days_left~>~30d~&&~leg_pnl~>~+25%", "not^days_left^>^30d"],
    "hedge": ["delta^with^Future^every^1d^band^0.05^keep^10%^along^direction", "none"],
    "on_assignment": ["take_delivery(~storage~=~2~/~day~,~funding=3%~)", "hedge_and_close(~)"],
    "stop_loss": ["25%"], "margin_buffer": ["20%"], "capital": ["1000000"],
}
SETTINGS = ["model^garch~+~jump", "model^garch(alpha=0.08,~beta=0.9)~+~jump(intensity=3,~mean=-2%,~std=5%)",
            "calibration^historical", "signal^direction^hit_rate^0.9", "paths^50000", "steps_per_day^1", "seed^7",
            "horizon^12", "sizes^[1,~2,~5,~10]", "stress^[~vol_up(+50%),~gap(-8%),~slippage(@),~slippage(@)~]",
            "sensitivity^[~fees_up(@),~hit_rate(0.7)~]",
            "target^median_monthly_return~>=~1%^and^loss_probability~<=~25%",
            "stop^[~converge(rounds=5,~min_gain=0.1%),~budget(iterations=20)~]"]
# A factor (`@` above): `x` takes plain digits only (`x1e1` is a name); `×`/`*` take any number.
FACTOR_DIGITS = ["3", "2", "2.5", "10", "0.25"]
FACTOR_NUMBERS = FACTOR_DIGITS + ["1e1", "1_000", "2.5E-1", "1_500.25", "5e+0", "3.0e2"]
COMMENT_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12)


@st.composite
def spaced(draw, template: str) -> str:
    out = []
    for ch in template:
        if ch == "~":
            out.append(draw(st.sampled_from(["", "", " ", "  ", "\t"])))
        elif ch == "^":
            out.append(draw(st.sampled_from([" ", " ", "  ", "\t"])))
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def option(draw) -> str:
    kind = draw(st.sampled_from(["Call", "Put"]))
    strike = draw(st.sampled_from(STRIKES))
    tenor = draw(st.sampled_from(TENORS))
    return draw(spaced(f"Option(~{kind}~,~{strike}~,~{tenor}~)"))


@st.composite
def leg(draw, depth: int = 0) -> str:
    atoms = [option(), st.sampled_from(TEMPLATES).flatmap(spaced), st.sampled_from(LINEAR).flatmap(spaced)]
    if depth == 0:
        atoms.append(st.lists(leg(depth=1), min_size=1, max_size=3).map(lambda legs: "(" + " + ".join(legs) + ")"))
    atom = draw(st.one_of(*atoms))
    polarity = draw(st.sampled_from(["", "long ", "short ", "long  ", "short\t"]))
    quantity = draw(st.one_of(st.just(""), st.builds(str.format, st.sampled_from(QUANTITIES), st.integers(1, 9))))
    return draw(spaced(quantity)) + polarity + atom


@st.composite
def comment(draw) -> str:
    return "#" + draw(COMMENT_TEXT)


@st.composite
def listing(draw, pool: list[str], max_size: int = 9) -> str:
    """A list, on one line or one item a line, with comments inside when it spans lines."""
    items = [draw(spaced(i)) for i in draw(st.lists(st.sampled_from(pool), max_size=max_size))]
    if not draw(st.booleans()) or not items:
        return "[" + draw(spaced("~")) + draw(st.sampled_from([",", ", ", ",  "])).join(items) + draw(spaced("~")) + "]"
    text = "[" + (draw(spaced("~")) + draw(comment()) if draw(st.booleans()) else "")
    for i, item in enumerate(items):
        text += "\n" + draw(st.sampled_from(["  ", "    ", ""]))
        if draw(st.integers(0, 4)) == 0:
            text += draw(comment()) + "\n    "
        text += item + ("," if i < len(items) - 1 or draw(st.booleans()) else "")
        if draw(st.integers(0, 3)) == 0:
            text += draw(spaced("~")) + draw(comment())
    if draw(st.booleans()):
        text += "\n  " + draw(comment())
    return text + "\n]"


@st.composite
def statement(draw) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "list", "append", "binding"]))
    if kind == "binding":
        name = draw(st.sampled_from(["A", "B", "hedge_leg"]))
        return draw(spaced(f"{name}~=~")) + draw(leg())
    if kind == "append":
        return draw(spaced("exit_triggers~+=~days_left~<~2d"))
    if kind == "list":
        name, pool = draw(st.sampled_from([("exit_triggers", TRIGGERS), ("adjust_playbook", ACTIONS)]))
        separator = draw(st.sampled_from(["^", "~=^"]))
        return draw(spaced(name + separator)) + draw(listing(pool))
    name = draw(st.sampled_from(sorted(FIELDS)))
    separator = draw(st.sampled_from(["^", "^", "~=^"]))
    return draw(spaced(name + separator + draw(st.sampled_from(FIELDS[name]))))


@st.composite
def experiment(draw) -> str:
    chosen = draw(st.lists(st.sampled_from(SETTINGS), min_size=1, max_size=8, unique_by=lambda s: s.split("^")[0]))
    chosen = [_with_factors(draw, setting) for setting in chosen]
    lines, i = [], 0
    while i < len(chosen):
        take = draw(st.integers(1, 3))
        joined = draw(st.sampled_from(["^", "^^"])).join(chosen[i:i + take])
        lines.append(draw(st.sampled_from(["  ", "    ", "", "\t"])) + draw(spaced(joined)) + trailing(draw))
        i += take
    head = draw(spaced("experiment~{")) + trailing(draw)
    return head + "\n" + "\n".join(lines) + "\n" + draw(spaced("~}"))


def _with_factors(draw, setting: str) -> str:
    parts = setting.split("@")
    factors = [draw(st.one_of(st.sampled_from(FACTOR_DIGITS).map("x".__add__),
                              st.tuples(st.sampled_from(["×", "~×~", "*", "~*~"]), st.sampled_from(FACTOR_NUMBERS))
                              .map("".join))) for _ in parts[1:]]
    return parts[0] + "".join(f + p for f, p in zip(factors, parts[1:]))


def trailing(draw) -> str:
    return draw(spaced("~")) + draw(comment()) if draw(st.integers(0, 3)) == 0 else ""


@st.composite
def opl_file(draw) -> str:
    body = [draw(statement()) for _ in range(draw(st.integers(0, 8)))]
    legs = draw(st.lists(leg(), min_size=1, max_size=4))
    joiners = [draw(st.sampled_from([" + ", "+", "  -  ", " −", " +\n    ", " + " + "# why\n  "])) for _ in legs[1:]]
    strategy = draw(spaced("S~=~")) + legs[0] + "".join(j + leg_ for j, leg_ in zip(joiners, legs[1:]))
    body.insert(draw(st.integers(0, len(body))), strategy)
    if draw(st.booleans()):
        body.append(draw(experiment()))
    lines = [draw(st.sampled_from(["", "\n", "# preamble\n"])) + draw(spaced("~opl-lang^1.0~")) + trailing(draw)]
    for item in body:
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.sampled_from(["", "", "  ", "# a note", "   # an indented note"])))
        lines.append(draw(st.sampled_from(["", "", " "])) + item + trailing(draw) + draw(spaced("~")))
    ending = draw(st.sampled_from(["\n", "", "\n\n\n", "\r\n"]))
    return "\n".join(lines) + ending


def _tree(text: str):
    return canonical(parse(text).module).statements, [c.text for c in scan_comments(text)]


def _codes(text: str) -> list[str]:
    return sorted(d.code for d in opl.check(text).report.diagnostics)


# --------------------------------------------------------------------------- formatter properties


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opl_file())
def test_fmt_is_idempotent_and_keeps_tree_comments_and_meaning(text):
    result = format_text(text)
    assert result.ok, ([(d.code, d.message) for d in result.diagnostics], result.error, text)
    once = result.text
    assert format_text(once).text == once
    assert _tree(once) == _tree(text)
    assert _codes(once) == _codes(text)
    assert once.endswith("\n") and "\n\n\n" not in once
    assert all(line == line.rstrip() for line in once.split("\n"))


# --------------------------------------------------------------------------- fuzz


def _mutate(text: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["delete", "insert", "duplicate"]))
        if action == "delete":
            text = text[:position] + text[position + 1:]
        elif action == "insert":
            text = text[:position] + data.draw(st.characters(blacklist_categories=("Cs",))) + text[position:]
        else:
            text = text[:position] + text[position:position + data.draw(st.integers(1, 20))] + text[position:]
    return text


def _never_raises(text: str) -> None:
    # Text, never a path: `opl.check` reads a one-line str ending in .opl/.json as a file name (the facade's
    # documented rule), and hypothesis found that '.JSON' then raises FileNotFoundError, as it should.
    check_text(text)  # returns diagnostics, never raises
    result = format_text(text)
    if result.ok:  # whatever parses formats stably
        assert format_text(result.text).text == result.text
    else:
        assert result.text == text and not result.changed


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opl_file(), st.data())
def test_mutated_generated_files_never_raise(text, data):
    _never_raises(_mutate(text, data))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SHIPPED), st.data())
def test_mutated_shipped_files_never_raise(path, data):
    _never_raises(_mutate(path.read_text(encoding="utf-8"), data))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.booleans())
@example(text=".JSON", with_header=False)
def test_random_text_never_raises(text, with_header):
    _never_raises(("opl-lang 1.0\n" if with_header else "") + text)


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from(list("opl-ang 1.0\n\t #=+-×x*/<>!&|()[]{},%\"↑IV5d_SATMlongshort")), max_size=200))
def test_random_token_soup_never_raises(text):
    _never_raises("opl-lang 1.0\n" + text)
