"""Implied volatility from option prices, vectorised, with a reason for every NaN.

A price has an implied volatility only strictly between its no-arbitrage bounds:
the σ = 0 value (the discounted forward intrinsic e^{-rT}·max(±(F − K), 0) for
European options, the best deterministic exercise value for American ones) and
the σ → ∞ value (S·e^{(b−r)T} for a call, K·e^{-rT} for a put; for American
options at least S, resp. K). Outside them, or where the volatility would leave
``[vol_min, vol_max]``, the result is NaN and ``reason`` says why:

=====================  ====================================================
``ok``                 solved; ``vol`` reprices ``price`` to ~1e-12 relative
``invalid_input``      NaN or infinite input, price < 0, S <= 0, K <= 0, T < 0
``no_time``            T = 0: the price no longer depends on volatility
``below_intrinsic``    price below the σ = 0 value: an arbitrage
``at_intrinsic``       price equal to the σ = 0 value to rounding: any small σ fits
``above_upper_bound``  price at or above the σ → ∞ value: an arbitrage
``out_of_range``       the solution is below ``vol_min`` or above ``vol_max``
``not_converged``      the iteration cap was hit (not seen in the tests)
=====================  ====================================================

Method. The price is first reduced to its time value W = price − lower bound;
for European options W is, by put–call parity, the value of the out-of-the-money
option of the pair, which is priced directly so deep in- and out-of-the-money
quotes keep their digits. The equation ln W(σ) = ln W* is solved in x = ln σ by
Newton's method safeguarded by a bisection bracket [ln vol_min, ln vol_max]: in
these coordinates the curve is close to linear for deep out-of-the-money options
and flattens only near the upper bound, so Newton usually converges in 4 to 8
steps and bisection catches the rest. European options use the analytic vega;
American options (Barone-Adesi–Whaley prices) a forward difference of ln W in x.

>>> r = implied_vol(price=4.7594, is_call=True, underlying=42.0, strike=40.0, t=0.5, rate=0.1, carry=0.1)
>>> round(r.vol, 4), r.reason
(0.2, 'ok')
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from opl.runtime.pricing._typing import ArrayLike, BoolLike, ExerciseStyle, FloatOrArray
from opl.runtime.pricing.american import _baw, _deterministic
from opl.runtime.pricing.black import _forward_intrinsic, _npdf, _price

__all__ = ["ImpliedVolResult", "REASONS", "implied_vol"]

REASONS: tuple[str, ...] = ("ok", "invalid_input", "no_time", "below_intrinsic", "at_intrinsic",
                            "above_upper_bound", "out_of_range", "not_converged")

_MAX_ITER = 100
_F_TOL = 1e-12  # on ln W: relative price error
_X_TOL = 1e-14  # on ln σ: bracket width
_FD_STEP = 1e-6  # forward difference in ln σ for the American derivative
_BOUND_ULPS = 64  # rounding allowance, in ulps of the price, when comparing with the bounds


class ImpliedVolResult(NamedTuple):
    """Implied volatilities and why any of them is NaN.

    ``vol`` is a float for scalar input, else an array; ``reason`` is a ``str``
    for scalar input, else an array of the codes in :data:`REASONS`.
    """

    vol: FloatOrArray
    reason: str | np.ndarray


def implied_vol(*, price: ArrayLike, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike,
                rate: ArrayLike, carry: ArrayLike = 0.0, style: ExerciseStyle = "european",
                vol_min: float = 1e-6, vol_max: float = 10.0) -> ImpliedVolResult:
    """Volatility σ at which the model reprices ``price``.

    Parameters
    ----------
    price
        Option prices per unit of the underlying.
    is_call, underlying, strike, t, rate, carry
        As in :func:`opl.runtime.pricing.black.price`; everything broadcasts.
    style
        ``"european"`` (generalized Black–Scholes) or ``"american"`` (Barone-Adesi–Whaley).
    vol_min, vol_max
        The search bracket; a solution outside it is reported as ``out_of_range``.

    Returns
    -------
    ImpliedVolResult
        ``vol`` (NaN where there is none) and ``reason`` (see the module docstring).
    """
    if style not in ("european", "american"):
        raise ValueError(f"style must be 'european' or 'american', not {style!r}")
    if not 0 < vol_min < vol_max:
        raise ValueError("need 0 < vol_min < vol_max")
    arrays = np.broadcast_arrays(np.asarray(is_call, dtype=bool),
                                 *(np.asarray(x, dtype=float) for x in (price, underlying, strike, t, rate, carry)))
    shape = arrays[0].shape
    call, p, s, k, tt, r, b = (np.ravel(x) for x in arrays)
    reason = np.full(p.shape, "ok", dtype="<U17")
    vol = np.full(p.shape, np.nan)

    finite = np.isfinite(p) & np.isfinite(s) & np.isfinite(k) & np.isfinite(tt) & np.isfinite(r) & np.isfinite(b)
    invalid = ~finite | ~(p >= 0) | ~(s > 0) | ~(k > 0) | ~(tt >= 0)
    reason[invalid] = "invalid_input"
    no_time = ~invalid & (tt == 0)
    reason[no_time] = "no_time"
    live = ~invalid & ~no_time

    # Bounds are computed on cleaned inputs so the invalid rows raise no warnings.
    cs, ck, ct = np.where(live, s, 1.0), np.where(live, k, 1.0), np.where(live, tt, 1.0)
    cr, cb = np.where(live, r, 0.0), np.where(live, b, 0.0)
    cf, df = np.exp((cb - cr) * ct), np.exp(-cr * ct)
    if style == "european":
        lower = _forward_intrinsic(call, cs, ck, ct, cr, cb)
        upper = np.where(call, cs * cf, ck * df)
    else:
        lower = _deterministic(call, cs, ck, ct, cr, cb)[0]
        upper = np.where(call, cs * np.maximum(cf, 1.0), ck * np.maximum(df, 1.0))
    slack = _BOUND_ULPS * np.finfo(float).eps * np.maximum(p, lower)
    below = live & (p < lower - slack)
    at = live & ~below & (p <= lower + slack)
    above = live & ~below & ~at & (p >= upper)
    reason[below], reason[at], reason[above] = "below_intrinsic", "at_intrinsic", "above_upper_bound"
    todo = np.flatnonzero(live & ~below & ~at & ~above)

    if todo.size:
        args = (call[todo], cs[todo], ck[todo], ct[todo], cr[todo], cb[todo], lower[todo])
        x, code = _solve(np.log(p[todo] - lower[todo]), args, style, np.log(vol_min), np.log(vol_max))
        vol[todo] = np.where(code == "ok", np.exp(x), np.nan)
        reason[todo] = code
    if not shape:
        return ImpliedVolResult(float(vol[0]), str(reason[0]))
    return ImpliedVolResult(vol.reshape(shape), reason.reshape(shape))


def _log_time_value(sig, args, style, with_slope: bool):
    """ln W(σ) and, if asked, d ln W / d ln σ, for the options in ``args``."""
    call, s, k, t, r, b, lower = args
    with np.errstate(divide="ignore", invalid="ignore"):
        if style == "european":
            # Put–call parity: W is the out-of-the-money option of the pair, priced directly.
            otm_call = s * np.exp(b * t) < k
            w, d1_, _, _, cf, *_ = _price(otm_call, s, k, t, sig, r, b)
            lw = np.log(w)
            slope = sig * cf * s * _npdf(d1_) * np.sqrt(t) / w if with_slope else None
        else:
            lw = np.log(_baw(call, s, k, t, sig, r, b)[0] - lower)
            slope = None
            if with_slope:
                bumped = np.log(_baw(call, s, k, t, sig * np.exp(_FD_STEP), r, b)[0] - lower)
                slope = (bumped - lw) / _FD_STEP
    # W <= 0 (underflow, or an approximation dipping under the bound) counts as far below the target.
    lw = np.where(np.isnan(lw), -np.inf, lw)
    return lw, slope


def _solve(target, args, style, x_lo, x_hi):
    n = target.size
    code = np.full(n, "ok", dtype="<U17")
    lo, hi = np.full(n, x_lo), np.full(n, x_hi)
    # Solutions outside the bracket are reported, not clipped to it.
    f_lo = _log_time_value(np.full(n, np.exp(x_lo)), args, style, False)[0] - target
    f_hi = _log_time_value(np.full(n, np.exp(x_hi)), args, style, False)[0] - target
    outside = (f_lo > 0) | (f_hi < 0)
    code[outside] = "out_of_range"

    call, s, k, t, r, b, _ = args
    # Start between the at-the-money guess σ ≈ √(2π/T)·W/(S e^{(b−r)T}) and the
    # inflection point σ = √(2|ln F/K| / T), whichever is larger.
    atm = np.sqrt(2.0 * np.pi / t) * np.exp(target) / (s * np.exp((b - r) * t))
    inflection = np.sqrt(2.0 * np.abs(np.log(s / k) + b * t) / t)
    x = np.log(np.clip(np.maximum(atm, inflection), np.exp(x_lo), np.exp(x_hi)))
    act = np.flatnonzero(~outside)
    for _ in range(_MAX_ITER):
        if act.size == 0:
            break
        sub = tuple(a[act] for a in args)
        lw, slope = _log_time_value(np.exp(x[act]), sub, style, True)
        f = lw - target[act]
        lo[act] = np.where(f < 0, x[act], lo[act])
        hi[act] = np.where(f > 0, x[act], hi[act])
        done = (np.abs(f) <= _F_TOL) | (hi[act] - lo[act] <= _X_TOL)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x[act] - f / slope
        inside = np.isfinite(step) & (step > lo[act]) & (step < hi[act])
        x[act] = np.where(done, x[act], np.where(inside, step, 0.5 * (lo[act] + hi[act])))
        act = act[~done]
    code[act] = "not_converged"
    return x, code
