"""Margin formulas of the rule packs, vectorised over numpy arrays.

The pack's ``margin.formula`` selects one of three exchange formulas for a short
option; every amount is in the pack's currency for ``lots`` contracts:

``czce_dce`` (CZCE, DCE; SHFE uses the same shape)
    premium × unit + max(FM − w × OTM × unit, f × FM), with FM = futures_rate × F × unit
    the futures margin of the lot the option exercises into, w = ``otm_weight``
    and f = ``floor_weight`` (both ½ at CZCE/DCE).
``sse_etf`` (SSE/SZSE ETF options)
    call: [premium + max(rate × S − OTM, min_rate × S)] × unit;
    put: min[premium + max(rate × S − OTM, min_rate × K), K] × unit.
``cboe_reg_t`` (US, CBOE margin manual / Reg T)
    [premium + max(rate × S − OTM, min_rate × (S for calls, K for puts))] × unit.

``options_margin`` margins a book of options with the pack's ``margin.combinations``
(short straddles, strangles and vertical spreads posted as one position,
`opl.runtime.market.combinations`); ``with_margin_method(pack, "per_leg")`` switches them off.

OTM is max(K − F, 0) for a call and max(F − K, 0) for a put; ``premium`` is the
option's (settlement) price per unit of the underlying. A buyer's margin is the
premium paid. With ``broker=True`` the pack's ``broker_addon`` is added to the
main rate (futures_rate or rate), the way brokers quote "exchange + 3 points".

>>> from opl.runtime.market.rules import load_pack
>>> short_option_margin(pack=load_pack("czce_cj"), is_call=True, underlying=10000.0,
...                     strike=10500.0, premium=150.0, lots=1)
5500.0
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from opl.runtime.market.combinations import Holding, combination_margin
from opl.runtime.market.rules import RulePack, RulePackError

__all__ = ["otm_amount", "futures_margin", "short_option_margin", "long_option_margin", "options_margin",
           "with_margin_method", "MarginMethod"]

MarginMethod = Literal["combination", "per_leg"]


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _ret(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def _lots(lots) -> np.ndarray:
    n = _arr(lots)
    if np.any(n < 0):
        raise ValueError("lots must be >= 0 (the side is given by the function: short or long)")
    return n


def otm_amount(is_call, underlying, strike) -> float | np.ndarray:
    """Out-of-the-money amount per unit: max(K − F, 0) for calls, max(F − K, 0) for puts."""
    call = np.asarray(is_call, dtype=bool)
    f, k = _arr(underlying), _arr(strike)
    return _ret(np.where(call, np.maximum(k - f, 0.0), np.maximum(f - k, 0.0)))


def _futures_rate(pack: RulePack, broker: bool) -> float:
    rate = pack.margin.futures_rate
    if rate is None:
        raise RulePackError(f"{pack.name}: no futures margin (margin.futures_rate is not set)",
                            field="margin.futures_rate")
    return rate + (pack.margin.broker_addon if broker else 0.0)


def futures_margin(*, pack: RulePack, price, lots=1, broker: bool = False) -> float | np.ndarray:
    """Margin of ``lots`` futures lots at ``price``: rate × price × contract size × lots.

    Parameters
    ----------
    pack
        A pack whose underlying is a futures contract (``margin.futures_rate`` set).
    price
        Futures price(s), quoted per unit (CNY/t for CZCE).
    lots
        Number of lots (long or short: the exchange margin is symmetric).
    broker
        Add the pack's ``broker_addon`` to the exchange rate.
    """
    rate = _futures_rate(pack, broker)
    return _ret(rate * _arr(price) * pack.underlying.contract_size * _lots(lots))


def short_option_margin(*, pack: RulePack, is_call, underlying, strike, premium, lots=1,
                        broker: bool = False) -> float | np.ndarray:
    """Margin a seller posts for ``lots`` short options, by the pack's formula.

    Parameters
    ----------
    pack
        The rule pack; ``pack.margin.formula`` selects the formula (module docstring).
    is_call
        True for calls, False for puts (broadcasts).
    underlying
        Futures settlement price F (CZCE/DCE) or the underlying close S (SSE, US).
    strike
        Strike price K, in the same units.
    premium
        Option settlement price per unit of the underlying (the previous settle
        when computing opening margin at CZCE/SSE).
    lots
        Contracts sold (>= 0).
    broker
        Add the pack's ``broker_addon`` to the main rate.

    Returns
    -------
    float or numpy.ndarray
        Total margin in the pack's currency.
    """
    spec = pack.margin
    call = np.asarray(is_call, dtype=bool)
    f, k, prem = _arr(underlying), _arr(strike), _arr(premium)
    unit = pack.option.multiplier
    otm = _arr(otm_amount(call, f, k))
    n = _lots(lots)
    if spec.formula == "czce_dce":
        fm = _futures_rate(pack, broker) * f * unit
        per = prem * unit + np.maximum(fm - spec.otm_weight * otm * unit, spec.floor_weight * fm)
    elif spec.formula in ("sse_etf", "cboe_reg_t"):
        rate = spec.rate + (spec.broker_addon if broker else 0.0)
        floor = spec.min_rate * np.where(call, f, k)
        per_unit = prem + np.maximum(rate * f - otm, floor)
        if spec.put_cap_at_strike:
            per_unit = np.where(call, per_unit, np.minimum(per_unit, k))
        per = per_unit * unit
    else:  # pragma: no cover - MarginSpec.formula is a closed Literal
        raise RulePackError(f"{pack.name}: unknown margin formula {spec.formula!r}")
    return _ret(per * n)


def long_option_margin(*, pack: RulePack, premium, lots=1) -> float | np.ndarray:
    """A buyer pays the premium in full and posts nothing more: premium × unit × lots."""
    return _ret(_arr(premium) * pack.option.multiplier * _lots(lots))


def options_margin(*, pack: RulePack, holdings, underlying, broker: bool = False) -> float | np.ndarray:
    """Seller margin of a book of options, the pack's combinations applied.

    Parameters
    ----------
    pack
        The rule pack; ``pack.margin.combinations`` lists the pairings margined as one
        position (none: every short leg by `short_option_margin`).
    holdings
        ``(is_call, strike, premium, qty, expiry)`` per series: signed lots (negative
        short) and any key of the expiry (only equal keys pair); arrays broadcast.
    underlying
        Futures settlement price F, or the underlying close S.
    broker
        Add the pack's ``broker_addon`` to the main rate.

    Returns
    -------
    float or numpy.ndarray
        Total margin in the pack's currency; long options add nothing.

    Examples
    --------
    The jujube strangle of runtime/README.md, one lot, leg by leg and as a combination:

    >>> from opl.runtime.market.rules import load_pack
    >>> cj = load_pack("czce_cj")
    >>> book = [(False, 9800.0, 135.8, -1.0, 0), (True, 11200.0, 109.2, -1.0, 0)]
    >>> round(options_margin(pack=with_margin_method(cj, "per_leg"), holdings=book, underlying=10400.0), 6)
    10205.0
    >>> round(options_margin(pack=cj, holdings=book, underlying=10400.0), 6)
    5965.0
    """
    book = []
    for is_call, strike, premium, qty, expiry in holdings:
        short = np.any(np.asarray(qty) < 0)
        per_lot = short_option_margin(pack=pack, is_call=is_call, underlying=underlying, strike=strike,
                                      premium=premium, lots=1, broker=broker) if short else 0.0
        book.append(Holding(is_call=bool(is_call), strike=strike, premium=premium, qty=qty, margin=per_lot,
                            expiry=expiry))
    return _ret(_arr(combination_margin(book, combinations=pack.margin.combinations,
                                        unit=pack.option.multiplier)))


def with_margin_method(pack: RulePack, method: MarginMethod) -> RulePack:
    """The pack as margined by ``method``: its combinations (``"combination"``) or leg by leg (``"per_leg"``)."""
    if method == "combination" or not pack.margin.combinations:
        return pack
    return pack.model_copy(update={"margin": pack.margin.model_copy(update={"combinations": ()})})
