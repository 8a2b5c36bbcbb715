"""Hover: what the word or leg under the cursor means.

On a leg, the resolved strike, expiry, unit price and the six Greeks, when the file
states its market inputs (`price` and `iv`): the only place the server loads the
numeric engine (`opl.compiler.strategy`, numpy), once per document version. On a word, its
documentation (`opl.lsp.docs`); on a diagnostic code (``# opl: ignore[W405]``), or on
a span a diagnostic points at, the code's `opl explain` text.
"""

from __future__ import annotations

from dataclasses import dataclass

from opl.lsp.analysis import Analysis
from opl.lsp.docs import documentation
from opl.lang.source import Span

# Raw Greeks (DESIGN.md: per long unit, per year) and the per-1% / per-day figures people read.
GREEK_ROWS: tuple[tuple[str, str, float, str], ...] = (
    ("delta", "∂V/∂F", 1.0, "per 1 unit of the underlying's price"),
    ("gamma", "∂²V/∂F²", 1.0, "per unit of price, squared"),
    ("vega", "∂V/∂σ", 0.01, "per 1% of volatility"),
    ("theta", "∂V/∂t", 1 / 365, "per calendar day"),
    ("rho", "∂V/∂r", 0.01, "per 1% of the rate"),
    ("charm", "∂Δ/∂t", 1 / 365, "per calendar day"),
)


@dataclass(frozen=True)
class Hover:
    """Markdown text and the span it is about."""

    text: str
    span: Span


def _legs_at(analysis: Analysis, offset: int):
    return [leg for leg in analysis.result.legs if leg.span.start <= offset < leg.span.end]


def _compiled(analysis: Analysis):
    """The compiled strategy of this snapshot, or the reason there is none (cached per snapshot)."""
    if "compiled" not in analysis.cache:
        from opl.compiler.strategy import compile_checked  # numpy: loaded by the first hover that needs Greeks

        compiled = compile_checked(analysis.result)
        reason = None if compiled.strategy is not None else next(
            (f"{d.code} {d.message}" for d in compiled.diagnostics if d.severity == "error"), "it does not compile")
        analysis.cache["compiled"] = (compiled.strategy, reason)
    return analysis.cache["compiled"]


def _greek_table(leg) -> str:
    rows = ["| Greek | one long unit | position | unit |", "|---|---|---|---|"]
    for name, symbol, scale, unit in GREEK_ROWS:
        unit_value = getattr(leg.greeks, name) * scale
        position = getattr(leg.position_greeks, name) * scale
        rows.append(f"| {name} {symbol} | {unit_value:+.6g} | {position:+.6g} | {unit} |")
    return "\n".join(rows)


def _leg_text(leg) -> str:
    head = f"**leg {leg.index}**: {leg.side} {leg.qty}× {leg.type or leg.kind}"
    lines = [head]
    if leg.strike is not None:
        lines.append(f"strike {leg.strike:g}" + (f" (written `{leg.strike_spec}`)" if leg.strike_spec else ""))
    if leg.expiry is not None:
        days = f", {leg.tenor_days:g} days" if leg.tenor_days is not None else ""
        lines.append(f"expiry {leg.expiry.isoformat()}{days}" + (f", {leg.exercise}" if leg.exercise else ""))
    lines.append(f"price {leg.price:.6g} per unit, multiplier {leg.multiplier:g}")
    return "  \n".join(lines) + "\n\n" + _greek_table(leg)


def leg_hover(analysis: Analysis, offset: int) -> Hover | None:
    """The resolved legs written at ``offset`` with their Greeks, or why they cannot be priced."""
    legs = _legs_at(analysis, offset)
    if not legs:
        return None
    span = legs[0].span
    written = "\n".join(f"- {leg}" for leg in legs)
    market = analysis.result.document.market
    if market.price is None or market.iv is None:
        return Hover(f"{written}\n\nAdd the market inputs `price` and `iv` to see the strike, expiry, price "
                     "and Greeks.", span)
    strategy, reason = _compiled(analysis)
    if strategy is None:
        return Hover(f"{written}\n\nNot priced: {reason}.", span)
    compiled = [leg for leg in strategy.legs
                if leg.source is not None and (leg.source.line, leg.source.column) == (span.line, span.column)]
    if not compiled:
        return Hover(f"{written}\n\nThis leg cancels against another and is not priced.", span)
    market_line = (f"at price {strategy.market.price:g}, iv {strategy.market.iv:.4g}, rate {strategy.market.rate:g}, "
                   f"time {strategy.market.time.isoformat()}")
    return Hover("\n\n---\n\n".join(_leg_text(leg) for leg in compiled) + f"\n\n*{market_line}*", span)


def _diagnostic_hover(analysis: Analysis, offset: int) -> Hover | None:
    from opl.lang.codes import CODES, explain

    found = [d for d in analysis.report.sorted() if d.span.start <= offset < d.span.end]
    if not found:
        return None
    texts = [f"**{d.code}** ({CODES[d.code].severity}): {CODES[d.code].title}\n\n{explain(d.code)}" for d in found]
    return Hover("\n\n---\n\n".join(dict.fromkeys(texts)), found[0].span)


def hover(analysis: Analysis, offset: int) -> Hover | None:
    """The hover at ``offset``.

    Inside a leg, its resolved terms and Greeks (then the word's documentation); on a
    bound name, its definition; on another word, its documentation; else the codes of
    the diagnostics under the cursor.
    """
    from opl.lsp.completion import context
    from opl.lsp.outline import bindings

    word = analysis.word_at(offset)
    docs = documentation(word[0], in_experiment=context(analysis.text, offset).in_block) if word else None
    leg = leg_hover(analysis, offset)
    if leg is not None:
        return Hover(leg.text + (f"\n\n---\n\n{docs}" if docs else ""), leg.span)
    if word is not None:
        name, span = word
        bound = bindings(analysis).get(name)
        if bound is not None:
            return Hover(f"```opl\n{analysis.text[bound.span.start:bound.span.end].strip()}\n```", span)
        if docs:
            return Hover(docs, span)
    return _diagnostic_hover(analysis, offset)
