"""European option prices and Greeks in the generalized Black–Scholes formulation.

One formula covers the underlyings of the rule packs through the cost of carry
``b`` (Haug, *The Complete Guide to Option Pricing Formulas*, 2nd ed., §1.1.6):

======================  ===========  =========================================
underlying              carry ``b``  model
======================  ===========  =========================================
futures (CZCE, DCE, …)  0            Black (1976), ``underlying`` = futures F
stock / ETF, yield q    r − q        Black–Scholes–Merton
non-dividend stock      r            Black–Scholes (1973)
currency, foreign r_f   r − r_f      Garman–Kohlhagen
======================  ===========  =========================================

With F = S·e^{bT}, d1 = [ln(F/K) + σ²T/2] / (σ√T), d2 = d1 − σ√T::

    call = e^{-rT} [F N(d1) − K N(d2)]      put = e^{-rT} [K N(−d2) − F N(−d1)]

Greeks are raw derivatives in the units of DESIGN.md ("Contracts"): delta
∂V/∂S, gamma ∂²V/∂S², vega ∂V/∂σ per 1.00 of volatility, theta and charm the
change of V and of delta per *year of calendar time passing* (−∂/∂T, so a long
option's theta is usually negative), rho ∂V/∂r (see :func:`greeks` for what is
held fixed). Per-1% and per-day figures are for display layers to derive.

Degenerate inputs give limits, never NaN or a warning: at T = 0 the intrinsic
value; at σ = 0 the discounted forward intrinsic e^{-rT}·max(±(F − K), 0);
K = 0 a call worth the discounted forward. Delta is a step at σ√T = 0 and takes
the midpoint ½·e^{(b−r)T} exactly at F = K; the terms that would be a Dirac mass
there (gamma, and the diffusion parts of theta and charm) are set to 0.

>>> round(price(is_call=True, underlying=42.0, strike=40.0, t=0.5, vol=0.2, rate=0.1, carry=0.1), 4)
4.7594
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

from opl.runtime.pricing._typing import ArrayLike, BoolLike, FloatArray, FloatOrArray

__all__ = ["Greeks", "price", "greeks", "value_delta_gamma", "linear_greeks", "forward_intrinsic", "d1"]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


class Greeks(NamedTuple):
    """Price and the six Greeks of spec §2 for one long unit, in raw units.

    Each field is a float for scalar input, otherwise an array of the broadcast
    shape of the inputs.
    """

    price: FloatOrArray
    delta: FloatOrArray
    gamma: FloatOrArray
    vega: FloatOrArray
    theta: FloatOrArray
    rho: FloatOrArray
    charm: FloatOrArray


def _ret(x: np.ndarray) -> FloatOrArray:
    return float(x) if np.ndim(x) == 0 else x


def _npdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _inputs(is_call, underlying, strike, t, vol, rate, carry) -> tuple[np.ndarray, ...]:
    arrays = np.broadcast_arrays(np.asarray(is_call, dtype=bool), *(np.asarray(x, dtype=float) for x in
                                                                    (underlying, strike, t, vol, rate, carry)))
    call, s, k, tt, v, r, b = arrays
    for name, x in (("underlying", s), ("strike", k), ("t", tt), ("vol", v)):
        if np.any(x < 0):
            raise ValueError(f"{name} must be >= 0")
    return call, s, k, tt, v, r, b


def _d1_sd(s: np.ndarray, k: np.ndarray, t: np.ndarray, v: np.ndarray, b: np.ndarray):
    """d1 and σ√T with the σ√T = 0 limits: d1 = ±inf off the money, 0 at F = K."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # K = 0 is a call on the forward (ln F/K = +inf); S = 0 a worthless call.
        log_fk = np.where(k == 0, np.inf, np.where(s == 0, -np.inf, np.log(s / np.where(k == 0, 1.0, k))))
        log_fk = log_fk + b * t
        sd = v * np.sqrt(t)
        step = np.where(log_fk > 0, np.inf, np.where(log_fk < 0, -np.inf, 0.0))
        d1_ = np.where(sd > 0, log_fk / np.where(sd > 0, sd, 1.0) + 0.5 * sd, step)
    return d1_, sd


def d1(*, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike,
       carry: ArrayLike = 0.0) -> FloatOrArray:
    """The Black–Scholes d1 = [ln(S/K) + (b + σ²/2)T] / (σ√T), with its σ√T → 0 limits."""
    s, k, tt, v, b = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (underlying, strike, t, vol, carry)))
    return _ret(_d1_sd(s, k, tt, v, b)[0])


def _price(call, s, k, t, v, r, b) -> tuple[np.ndarray, ...]:
    d1_, sd = _d1_sd(s, k, t, v, b)
    d2_ = d1_ - sd
    cf = np.exp((b - r) * t)  # e^{(b-r)T}: value today of one unit of the underlying delivered at T
    df = np.exp(-r * t)
    sign = np.where(call, 1.0, -1.0)
    # N(±d) evaluated directly (not 1 − N) so deep in- and out-of-the-money values keep their digits.
    nd1, nd2 = ndtr(sign * d1_), ndtr(sign * d2_)
    value = sign * (cf * s * nd1 - df * k * nd2)
    return value, d1_, d2_, sd, cf, df, sign, nd1, nd2


def price(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike,
          rate: ArrayLike, carry: ArrayLike = 0.0) -> FloatOrArray:
    """European option value in the generalized Black–Scholes model.

    Parameters
    ----------
    is_call
        True for calls, False for puts.
    underlying
        Futures price F (``carry=0``) or spot S, >= 0.
    strike
        Strike K, >= 0, in the units of ``underlying``.
    t
        Time to expiry T in years (ACT/365F), >= 0.
    vol
        Volatility σ per year (0.25 for 25%), >= 0.
    rate
        Continuously compounded risk-free rate r (discounts the payoff).
    carry
        Cost of carry b: 0 for futures, r − q for a stock or ETF with yield q.

    Returns
    -------
    float or numpy.ndarray
        Value of one long option per unit of the underlying; all arguments broadcast.

    Raises
    ------
    ValueError
        When ``underlying``, ``strike``, ``t`` or ``vol`` is negative.
    """
    call, s, k, tt, v, r, b = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    return _ret(_price(call, s, k, tt, v, r, b)[0] + 0.0)


def value_delta_gamma(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike,
                      vol: ArrayLike, rate: ArrayLike, carry: ArrayLike = 0.0,
                      with_gamma: bool = True) -> tuple[FloatOrArray, FloatOrArray, FloatOrArray | None]:
    """Value, delta and gamma only (arguments as :func:`price`): the Monte Carlo marking's call.

    The same formulas as :func:`greeks` without vega, theta, rho and charm, so a
    replay marking millions of options pays for what it reads; ``with_gamma=False``
    skips gamma too (it is then None).

    Raises
    ------
    ValueError
        When ``underlying``, ``strike``, ``t`` or ``vol`` is negative.
    """
    call, s, k, tt, v, r, b = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    value, d1_, _, sd, cf, _, sign, nd1, _ = _price(call, s, k, tt, v, r, b)
    delta = sign * cf * nd1
    gamma = None
    if with_gamma:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gamma = np.where((sd > 0) & (s > 0), cf * _npdf(d1_) / (np.where(s > 0, s, 1.0) * np.where(sd > 0, sd, 1.0)),
                             0.0)
        gamma = _ret(gamma + 0.0)
    return _ret(value + 0.0), _ret(delta + 0.0), gamma


def greeks(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike,
           rate: ArrayLike, carry: ArrayLike = 0.0, carry_follows_rate: BoolLike = False) -> Greeks:
    """Price and analytic Greeks of a European option (arguments as :func:`price`).

    Parameters
    ----------
    carry_follows_rate
        What rho holds fixed when r moves. False (futures options): the carry b
        is held, so with the futures price fixed ρ = ∂V/∂r|_b = −T·V. True
        (stock or ETF with b = r − q): the dividend yield q is held, so b moves
        one for one with r and ρ = ∂V/∂r|_q = −T·V + ∂V/∂b = T·(S·Δ − V), which
        is the textbook T·K·e^{-rT}·N(d2) for a call. Broadcasts like the rest.

    Returns
    -------
    Greeks
        ``price``; ``delta`` ∂V/∂S; ``gamma`` ∂²V/∂S²; ``vega`` ∂V/∂σ per 1.00
        of volatility; ``theta`` = −∂V/∂T per year of calendar time passing
        (S, σ, r, b fixed); ``rho`` as above; ``charm`` = −∂Δ/∂T per year of
        time passing.

    Notes
    -----
    With c_f = e^{(b−r)T}, n the normal density and s = +1 for calls, −1 for puts
    (Haug 2007, §2.1)::

        delta = s c_f N(s d1)
        gamma = c_f n(d1) / (S σ√T)
        vega  = c_f S n(d1) √T
        theta = −c_f S n(d1) σ / (2√T) − s (b − r) c_f S N(s d1) − s r K e^{-rT} N(s d2)
        charm = −c_f [ n(d1) (b/(σ√T) − d2/(2T)) + s (b − r) N(s d1) ]
    """
    call, s, k, tt, v, r, b = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    follow = np.broadcast_to(np.asarray(carry_follows_rate, dtype=bool), s.shape)
    value, d1_, d2_, sd, cf, df, sign, nd1, nd2 = _price(call, s, k, tt, v, r, b)
    pdf = _npdf(d1_)
    delta = sign * cf * nd1
    diffusing = sd > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        safe_sd = np.where(diffusing, sd, 1.0)
        safe_t = np.where(diffusing, tt, 1.0)
        gamma = np.where(diffusing & (s > 0), cf * pdf / (np.where(s > 0, s, 1.0) * safe_sd), 0.0)
        vega = cf * s * pdf * np.sqrt(tt)
        decay = np.where(diffusing, cf * s * pdf * v / (2.0 * np.sqrt(safe_t)), 0.0)
        theta = -decay - sign * (b - r) * cf * s * nd1 - sign * r * df * k * nd2
        drift_of_d1 = np.where(diffusing, pdf * (b / safe_sd - d2_ / (2.0 * safe_t)), 0.0)
    drift_of_d1 = np.where(np.isnan(drift_of_d1), 0.0, drift_of_d1)  # n(d1)·d2 with d = ±inf
    charm = -cf * (drift_of_d1 + sign * (b - r) * nd1)
    rho = tt * (np.where(follow, s * delta, 0.0) - value)
    # + 0.0 turns the −0.0 of sign × 0 into 0.0, which is what a reader of the JSON expects.
    return Greeks(*(_ret(x + 0.0) for x in (value, delta, gamma, vega, theta, rho, charm)))


def linear_greeks(*, underlying: ArrayLike) -> Greeks:
    """Greeks of one long unit of a linear leg (futures, stock, ETF): Δ = 1, nothing else.

    ``price`` is the quoted price of the leg. The position's sign and size are
    applied by the caller (position Greeks = unit Greeks × qty × polarity ×
    multiplier), so a short futures leg contributes Δ = −1 per unit.
    """
    s = np.asarray(underlying, dtype=float)
    zero = np.zeros_like(s)
    return Greeks(_ret(s.copy()), _ret(np.ones_like(s)), *(_ret(zero.copy()) for _ in range(5)))


def forward_intrinsic(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike,
                      rate: ArrayLike, carry: ArrayLike = 0.0) -> FloatOrArray:
    """The σ = 0 value of a European option: e^{-rT}·max(±(F − K), 0) with F = S·e^{bT}.

    It is the no-arbitrage lower bound of the European price (and the price at
    T = 0, where it is the plain intrinsic value).
    """
    call, s, k, tt, _, r, b = _inputs(is_call, underlying, strike, t, 0.0, rate, carry)
    return _ret(_forward_intrinsic(call, s, k, tt, r, b))


def _forward_intrinsic(call, s, k, t, r, b) -> FloatArray:
    return np.where(call, np.maximum(s * np.exp((b - r) * t) - k * np.exp(-r * t), 0.0),
                    np.maximum(k * np.exp(-r * t) - s * np.exp((b - r) * t), 0.0))
