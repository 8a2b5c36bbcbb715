"""Exchange combination margin: short options margined as straddles, strangles and spreads.

Exchanges that offer combination margin (组合保证金) let a trader pair legs of one
underlying and one expiry and post the pair's margin instead of the sum of its legs'.
A rule pack lists the pairings its exchange offers in ``margin.combinations`` (the pack
cites its sources); the amounts, for one pair of lots, with m the single-leg seller
margin of `opl.runtime.market.margin`, p the option's price per unit and u the contract unit:

``short_straddle`` (short call and short put at one strike) and ``short_strangle`` (the call struck above the put)
    max(m_call, m_put) + p_other × u, where "other" is the leg with the smaller margin
    (SSE 跨式空头 / 宽跨式空头; CZCE 卖出跨式 / 卖出宽跨式). A short put struck above a
    short call is not a strangle and stays leg by leg (`opl check` warns W411).
``vertical_spread`` (a short and a long option of one type)
    min(m_short, w × u), with w the amount the short leg can lose beyond what the long
    leg pays back at expiry: max(K_long − K_short, 0) for calls, max(K_short − K_long, 0)
    for puts. A credit spread posts its strike width, a debit spread nothing.

Combinations are built at the trader's request, so a pairing is only ever used where it
lowers the margin (every amount above is at most the legs' own sum). Legs are paired
greedily in the order given, spreads first and then straddles/strangles, or the other
way round — whichever needs less, path by path; the lots no pair takes are margined
leg by leg. Long options post nothing (their premium is paid).

The arithmetic uses + − × / and ``abs`` only — max(a, b) = (a + b + |a − b|) / 2 — so the
one implementation serves the vectorised replay (numpy arrays over variants × paths) and
the checker, which imports no numpy (DESIGN.md).

>>> call = Holding(is_call=True, strike=11200.0, premium=109.2, qty=-1.0, margin=4786.0)
>>> put = Holding(is_call=False, strike=9800.0, premium=135.8, qty=-1.0, margin=5419.0)
>>> round(combination_margin([call, put], combinations=("short_strangle",), unit=5.0), 6)
5965.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["Combination", "COMBINATIONS", "Holding", "combination_margin"]

Combination = Literal["short_straddle", "short_strangle", "vertical_spread"]
COMBINATIONS: tuple[str, ...] = get_args(Combination)


@dataclass(frozen=True)
class Holding:
    """One option series held: floats, or arrays that broadcast together.

    Parameters
    ----------
    is_call
        The option's type (one type per holding).
    strike, premium
        Strike and price per unit of the underlying (the settlement price at an exchange).
    qty
        Signed lots: negative short, positive long.
    margin
        The seller margin of one short lot by the single-leg formula (money); unused where
        the lots are long.
    expiry
        Any key of the expiry: only holdings with equal keys pair.
    """

    is_call: bool
    strike: Any
    premium: Any
    qty: Any
    margin: Any = 0.0
    expiry: Any = 0.0


def _max(a, b):
    return (a + b + abs(a - b)) / 2


def _min(a, b):
    return (a + b - abs(a - b)) / 2


def _positive(a):
    return (a + abs(a)) / 2


def _anywhere(mask) -> bool:
    """Whether a comparison holds for a float, or anywhere in an array."""
    return bool(mask.any()) if hasattr(mask, "any") else bool(mask)


def _spreads(holdings: list[Holding], short: list, long: list, unit: float, allowed: set[str]):
    """Pair short lots with long lots of the same type and expiry; the margin of the pairs made."""
    total = 0.0
    if "vertical_spread" not in allowed:
        return total
    for i, a in enumerate(holdings):
        for j, b in enumerate(holdings):
            if i == j or a.is_call != b.is_call or a.expiry != b.expiry:
                continue
            lots = _min(short[i], long[j])
            # what the short leg can lose beyond what the long one pays back at expiry
            width = _positive(b.strike - a.strike if a.is_call else a.strike - b.strike) * unit
            total = total + lots * _min(a.margin, width)
            short[i], long[j] = short[i] - lots, long[j] - lots
    return total


def _straddles(holdings: list[Holding], short: list, long: list, unit: float, allowed: set[str]):
    """Pair short calls with short puts of the same expiry; the margin of the pairs made."""
    total = 0.0
    straddle, strangle = "short_straddle" in allowed, "short_strangle" in allowed
    if not (straddle or strangle):
        return total
    for i, c in enumerate(holdings):
        for j, p in enumerate(holdings):
            if not c.is_call or p.is_call or c.expiry != p.expiry:
                continue
            # a straddle shares the strike; a strangle's call is struck above its put
            pairs = straddle * (c.strike == p.strike) + strangle * (c.strike > p.strike)
            lots = _min(short[i], short[j]) * pairs
            other = (c.margin >= p.margin) * p.premium + (c.margin < p.margin) * c.premium
            total = total + lots * (_max(c.margin, p.margin) + other * unit)
            short[i], short[j] = short[i] - lots, short[j] - lots
    return total


def _paired(holdings: list[Holding], unit: float, allowed: set[str], passes) -> Any:
    short = [_positive(-h.qty) for h in holdings]
    long = [_positive(h.qty) for h in holdings]
    total = 0.0
    for pairing in passes:
        total = total + pairing(holdings, short, long, unit, allowed)
    return total + sum((s * h.margin for s, h in zip(short, holdings)), 0.0)


def combination_margin(holdings: list[Holding], *, combinations, unit: float) -> Any:
    """Margin of the option holdings with the given combinations applied (module docstring).

    Parameters
    ----------
    holdings
        The options held, short and long.
    combinations
        The pairings the exchange offers (names of `COMBINATIONS`); empty: leg by leg.
    unit
        Contract unit (units of the underlying per option lot).

    Returns
    -------
    float or numpy.ndarray
        The total margin, in money, shaped as the holdings broadcast.
    """
    holdings = list(holdings)
    allowed = set(combinations)
    unknown = allowed - set(COMBINATIONS)
    if unknown:
        raise ValueError(f"unknown combination(s) {sorted(unknown)}; known: {', '.join(COMBINATIONS)}")
    if not any(_anywhere(h.qty > 0) for h in holdings):
        allowed.discard("vertical_spread")  # nothing long to pair with: one order is enough
    spreads_first = _paired(holdings, unit, allowed, (_spreads, _straddles))
    calls_and_puts = len({h.is_call for h in holdings}) == 2
    if "vertical_spread" not in allowed or not calls_and_puts or not allowed & {"short_straddle", "short_strangle"}:
        return spreads_first
    return _min(spreads_first, _paired(holdings, unit, allowed, (_straddles, _spreads)))
