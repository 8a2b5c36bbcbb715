"""Intent mapping (spec §3.4, ``MapIntentToO``) and the exposures an intent implies.

Canonicalisation comes first: ``Breakout`` → Neutral (Debit), ``RangeBound`` →
Neutral (Credit). ``MapIntentToO`` then returns the base leg sets the construction
paths start from (spec: "may return one or more legs"); ``vega_style`` keeps only the
sets of its style (a debit set is net long options, a credit set net short).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Side = Literal[1, -1]
Instrument = Literal["call", "put", "underlying"]
VegaStyle = Literal["Debit", "Credit"]


@dataclass(frozen=True)
class BaseLeg:
    side: Side
    instrument: Instrument

    def __str__(self) -> str:
        return f"{'long' if self.side > 0 else 'short'} {self.instrument}"


LegSet = tuple[BaseLeg, ...]

_BULL: tuple[LegSet, ...] = ((BaseLeg(1, "call"),), (BaseLeg(-1, "put"),), (BaseLeg(1, "underlying"),))
_BEAR: tuple[LegSet, ...] = ((BaseLeg(1, "put"),), (BaseLeg(-1, "call"),), (BaseLeg(-1, "underlying"),))
_NEUTRAL_DEBIT: tuple[LegSet, ...] = ((BaseLeg(1, "call"), BaseLeg(1, "put")),)
_NEUTRAL_CREDIT: tuple[LegSet, ...] = ((BaseLeg(-1, "call"), BaseLeg(-1, "put")),)


def canonical_intent(direction: str, vega_style: str | None = None) -> tuple[str, str | None]:
    """``Breakout`` → (Neutral, Debit); ``RangeBound`` → (Neutral, Credit); others unchanged.

    >>> canonical_intent("RangeBound")
    ('Neutral', 'Credit')
    """
    if direction == "Breakout":
        return "Neutral", "Debit"
    if direction == "RangeBound":
        return "Neutral", "Credit"
    return direction, vega_style


def _style(leg_set: LegSet) -> VegaStyle | None:
    options = sum(leg.side for leg in leg_set if leg.instrument != "underlying")
    return "Debit" if options > 0 else "Credit" if options < 0 else None


def _neutral_sets(vega_style: str | None) -> tuple[LegSet, ...]:
    # A neutral intent has a debit and a credit family; without a vega style, both.
    return {"Debit": _NEUTRAL_DEBIT, "Credit": _NEUTRAL_CREDIT}.get(vega_style or "", _NEUTRAL_DEBIT + _NEUTRAL_CREDIT)


#: Each direction intent's base leg sets for a vega style (None: any); the "not" intents are unions.
_INTENT_SETS = {
    "Bull": lambda vega_style: _BULL,
    "Bear": lambda vega_style: _BEAR,
    "Neutral": _neutral_sets,
    "NotBear": lambda vega_style: map_intent_to_o("Bull", vega_style) + map_intent_to_o("Neutral", vega_style),
    "NotBull": lambda vega_style: map_intent_to_o("Bear", vega_style) + map_intent_to_o("Neutral", vega_style),
}


def map_intent_to_o(direction: str, vega_style: str | None = None) -> tuple[LegSet, ...]:
    """The base leg sets of an intent (spec §3.4), filtered by vega style when given.

    >>> [str(leg) for (leg,) in map_intent_to_o("Bull", "Credit")]
    ['short put', 'long underlying']
    """
    direction, vega_style = canonical_intent(direction, vega_style)
    base = _INTENT_SETS.get(direction)
    if base is None:
        raise ValueError(f"unknown direction intent {direction!r}")
    sets = base(vega_style)
    if vega_style is None:
        return sets
    return tuple(s for s in sets if _style(s) in (vega_style, None))


def allowed_delta_signs(direction: str) -> frozenset[int]:
    """The signs of net delta an intent accepts (0 stands for "about flat")."""
    direction, _ = canonical_intent(direction)
    return {
        "Bull": frozenset({1}),
        "Bear": frozenset({-1}),
        "Neutral": frozenset({-1, 0, 1}),  # a neutral book is judged by |delta|, not its sign
        "NotBear": frozenset({0, 1}),
        "NotBull": frozenset({-1, 0}),
    }[direction]


def expected_vega_sign(direction: str | None, vega_style: str | None, vol: str | None) -> tuple[int, str] | None:
    """The vega sign the intent asks for and the field that asks for it, if any.

    ``vega_style`` speaks first; then ``vol_intent`` (↑IV: long vega, ↓IV: short); then
    the canonical style of Breakout (Debit) and RangeBound (Credit).
    """
    if vega_style is not None:
        return (1 if vega_style == "Debit" else -1), "vega_style"
    if vol in ("up", "down"):
        return (1 if vol == "up" else -1), "vol_intent"
    if direction in ("Breakout", "RangeBound"):
        return (1 if direction == "Breakout" else -1), "direction_intent"
    return None
