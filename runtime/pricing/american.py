"""American options: the Barone-Adesi–Whaley approximation and a binomial reference.

CZCE, DCE and most SHFE options are American. This module prices them with the
quadratic approximation of Barone-Adesi & Whaley (1987) in the cost-of-carry form
of Haug (2007, §3.1.1), vectorised over numpy arrays — what `opl compile`'s values and
Greeks and the American implied-volatility inversion use; :func:`binomial_price`
(Leisen–Reimer or Cox–Ross–Rubinstein tree) is the slow, accurate reference. The
simulator's and the backtest's marks come from the finite-difference solver of
:mod:`opl.runtime.pricing.american_fd` instead, which is 50–100 times closer to
QuantLib's Andersen–Lake–Offengelt engine than BAW at one year.

Accuracy of BAW against the reference, measured by
``tests/runtime/test_american.py::test_baw_accuracy_grid`` (Leisen–Reimer tree
with 1001 steps, itself within 1.8e-4 of a 4001-step tree here) on the grid the
CZCE jujube options live on: futures (b = 0), r = 2%, K = 100,
F/K in {0.80, 0.85, …, 1.20}, T in {7, 14, 30, 60, 91, 182, 365} days,
σ in {15, 25, 35, 45, 60}%, calls and puts (630 options):

* max absolute error 0.027 (0.027% of the strike): the in-the-money put at
  F/K = 1.2, T = 1 y, σ = 60% (16.830 against 16.803); RMS error 0.0057;
* max relative error 0.60% among options worth at least 0.05 (the call at
  F/K = 0.8, T = 1 y, σ = 15%: 0.3986 against 0.3962); the cheaper ones are
  within 9.1e-5 absolute;
* T <= 30 days: max absolute error 0.0043, relative 0.042%; T <= 91 days: 0.0093
  and 0.16%. BAW overprices slightly more often than not (58% of the grid).

The error grows with the early-exercise premium, so with the rate: on Haug's
table (r = 10%, b = 0, ``test_haug_table``) BAW is within 0.0069 of the tree at
T = 0.1 and within 0.037 at T = 0.5 (and within 0.0028 of Haug's printed values).
With BAW's Newton tolerance set to QuantLib's 1e-6 the two give the same prices
to 1e-10; the default tolerance here is 1e-12.

At r <= 0 BAW is used only where early exercise can pay (calls with b < 0, puts
with b > 0: stock or ETF options whose yield, resp. borrow cost, exceeds a
non-positive rate). The approximation was not built for that: its error there
reaches 0.20 on K = 100 at T = 1 y, σ = 30% (``test_nonpositive_rates``;
QuantLib refuses r < 0). Use :func:`binomial_price` when that matters.

Exact cases are not approximated: a call with b >= max(r, 0) and a put with
r <= 0 and b <= 0 (futures options at any rate <= 0, for one) are never
exercised early and get the European price; T = 0 gives the intrinsic
value; σ = 0 gives the deterministic value max over exercise dates τ ∈ [0, T] of
e^{-rτ}·max(±(S e^{bτ} − K), 0). BAW's own limit as σ → 0 misses that value by its
approximation error (1.3e-4 relative in ``test_expiry_and_zero_vol``), so the
price jumps that much at σ = 0. QuantLib's BAW engine differs only where it
applies the formula to an r = 0 put (adding a premium that does not exist) and
refuses r < 0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from opl.runtime.pricing._typing import ArrayLike, BoolLike, FloatOrArray
from opl.runtime.pricing.black import Greeks, _d1_sd, _inputs, _npdf, _price, _ret

__all__ = ["baw_price", "baw_value_delta_gamma", "critical_price", "binomial_price", "american_greeks",
           "deterministic_price", "BAW_TOLERANCE", "BAW_MAX_ITER"]

#: Newton stops when |value-matching residual| / K falls below this (QuantLib uses 1e-6).
BAW_TOLERANCE = 1e-12
#: Newton iterations before giving up on an element; it keeps its last iterate.
BAW_MAX_ITER = 60


def _deterministic(call, s, k, t, r, b):
    """σ = 0: the best exercise date of a known path, with the spot delta at that date."""
    phi = np.where(call, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Interior optimum of φ(S e^{(b−r)τ} − K e^{−rτ}): e^{bτ} = rK / ((r − b) S).
        ratio = r * k / ((r - b) * s)
        tau_star = np.where((b != 0) & (ratio > 0), np.log(np.where(ratio > 0, ratio, 1.0)) / np.where(b != 0, b, 1.0),
                            np.nan)
    inside = np.isfinite(tau_star) & (tau_star > 0) & (tau_star < t)
    taus = np.stack([np.zeros_like(t), t, np.where(inside, tau_star, 0.0)])
    payoff = phi * (s * np.exp((b - r) * taus) - k * np.exp(-r * taus))
    best = np.argmax(payoff, axis=0)
    value = np.maximum(np.take_along_axis(payoff, best[None], axis=0)[0], 0.0)
    tau = np.take_along_axis(taus, best[None], axis=0)[0]
    delta = np.where(value > 0, phi * np.exp((b - r) * tau), 0.0)
    return value, delta


@np.errstate(divide="ignore", invalid="ignore", over="ignore")  # bad seeds and steps are caught below
def _critical_price(phi, k, t, v, r, b):
    """Solve BAW's value-matching equation for the critical price S* (Newton, vectorised)."""
    var = v * v * t
    sd = np.sqrt(var)
    cf = np.exp((b - r) * t)
    n = 2.0 * b / (v * v)
    m = 2.0 * r / (v * v)
    # 2r / (σ²(1 − e^{−rT})) → 2/(σ²T) as r → 0; expm1 keeps its digits near there.
    big_k = np.where(np.abs(r * t) > 1e-14, m / -np.expm1(-r * t), 2.0 / var)
    q = 0.5 * (-(n - 1.0) + phi * np.sqrt((n - 1.0) ** 2 + 4.0 * big_k))
    # Seed of Haug (2007, §3.1.1) from the perpetual root, falling back to q when it does not exist.
    q_inf = 0.5 * (-(n - 1.0) + phi * np.sqrt((n - 1.0) ** 2 + 4.0 * m))
    usable = np.isfinite(q_inf) & np.where(phi > 0, q_inf > 1.0, q_inf < 0.0)
    q_inf = np.where(usable, q_inf, q)
    s_inf = k / (1.0 - 1.0 / q_inf)
    h = np.where(phi > 0, -(b * t + 2.0 * sd) * k / (s_inf - k), (b * t - 2.0 * sd) * k / (k - s_inf))
    si = np.where(phi > 0, k + (s_inf - k) * (1.0 - np.exp(h)), s_inf + (k - s_inf) * np.exp(h))
    # The seed and every iterate must lie on the boundary's side of K (above for calls, in (0, K) for puts).
    valid = np.isfinite(si) & (si > 0) & (phi * (si - k) > 0)
    valid_inf = np.isfinite(s_inf) & (s_inf > 0) & (phi * (s_inf - k) > 0)
    si = np.where(valid, si, np.where(valid_inf, s_inf, k * (1.0 + 0.5 * phi)))
    df = np.exp(-r * t)
    done = np.zeros(si.shape, dtype=bool)
    act = np.arange(si.size)  # elements still iterating; the converged ones drop out
    for _ in range(BAW_MAX_ITER):
        p, x, kk, sa, ca, qa = phi[act], si[act], k[act], sd[act], cf[act], q[act]
        # Inside the BAW branch S*, K, σ√T > 0, so d1 needs none of pricing's edge cases.
        d1_ = (np.log(x / kk) + b[act] * t[act]) / sa + 0.5 * sa
        nphi = ndtr(p * d1_)
        euro = p * (ca * x * nphi - df[act] * kk * ndtr(p * (d1_ - sa)))
        resid = p * (x - kk) - euro - p * (1.0 - ca * nphi) * x / qa
        # The second term lets a far boundary (b just below r: S* → ∞) stop at rounding level.
        conv = np.abs(resid) <= BAW_TOLERANCE * kk + 1e-14 * x
        done[act[conv]] = True
        slope = p * ca * nphi + p * (1.0 - ca * nphi) / qa - ca * _npdf(d1_) / (sa * qa)
        nxt = x - resid / (p - slope)
        # A step that leaves the boundary's side of K (or goes below 0) is halved back instead.
        ok = np.isfinite(nxt) & (nxt > 0) & (p * (nxt - kk) > 0)
        nxt = np.where(ok, nxt, np.where(nxt <= 0, 0.5 * x, 0.5 * (x + kk)))
        keep = ~conv
        si[act[keep]] = nxt[keep]
        act = act[keep]
        if act.size == 0:
            break
    return si, q, cf, done


def _critical_unique(phi, k, t, v, r, b):
    """`_critical_price` solved once per distinct (φ, K, T, σ, r, b): S* does not depend on S, so a grid of
    underlyings × vols (the marking tables: 401 × 41) needs 41 Newton solves, not 16,441. Every element's
    iteration is its own, so the result is bit for bit the one of solving them all."""
    columns = (phi, k, t, v, r, b)
    order = np.lexsort(columns)
    ranked = [c[order] for c in columns]
    new = np.ones(len(order), dtype=bool)
    new[1:] = np.any([c[1:] != c[:-1] for c in ranked], axis=0)
    if np.all(new):
        crit, q, cf, _ = _critical_price(phi, k, t, v, r, b)
        return crit, q, cf
    first = np.flatnonzero(new)
    crit, q, cf, _ = _critical_price(*(c[first] for c in ranked))
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return crit[inverse], q[inverse], cf[inverse]


def _baw(call, s, k, t, v, r, b):
    """BAW value with its delta and gamma (S* does not depend on S, so both are analytic)."""
    shape = np.shape(s)
    call, s, k, t, v, r, b = (np.ravel(x) for x in (call, s, k, t, v, r, b))  # 1-d, so masks assign
    value, d1_, _, sd, cf, _, phi, nd1, _ = _price(call, s, k, t, v, r, b)
    delta = phi * cf * nd1
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where((sd > 0) & (s > 0), cf * _npdf(d1_) / (s * sd), 0.0)
    # A call is never exercised early when its European value stays above intrinsic for every S:
    # b >= r >= 0 (the classic case), or b >= 0 >= r (e^{-rT}(S e^{bT} − K) >= S − K). Puts mirror this by
    # put–call symmetry, P(S, K, r, b) = C(K, S, r − b, −b): r <= 0 and b <= 0.
    # |rT| <= 1e-14 counts as r = 0, and |bT| <= 1e-14 as b = 0: the early premium either could add is
    # below rounding, and BAW's boundary for a rate or carry that small runs off to infinity (hypothesis
    # found b = -2e-67 inverting to "out of range").
    r_region = np.where(np.abs(r * t) <= 1e-14, 0.0, r)
    b_region = np.where(np.abs(b * t) <= 1e-14, 0.0, b)
    european = np.where(call, b_region >= np.maximum(r_region, 0.0), (r_region <= 0) & (b_region <= 0))
    expired = t == 0
    still = (v * np.sqrt(t) == 0) & ~expired & ~european
    # K = 0: the call is the underlying, best taken now when b < r; the put is worthless.
    free = (k == 0) & ~expired & ~european & ~still
    quad = ~(european | expired | still | free)
    value[free], delta[free], gamma[free] = np.where(call[free], s[free], 0.0), np.where(call[free], 1.0, 0.0), 0.0
    if np.any(still):
        value[still], delta[still] = _deterministic(call[still], s[still], k[still], t[still], r[still], b[still])
        gamma[still] = 0.0
    if np.any(quad):
        p, kq, tq, vq, rq, bq, sq = phi[quad], k[quad], t[quad], v[quad], r[quad], b[quad], s[quad]
        crit, q, cf = _critical_unique(p, kq, tq, vq, rq, bq)
        d1_crit, _ = _d1_sd(crit, kq, tq, vq, bq)
        a = p * (crit / q) * (1.0 - cf * ndtr(p * d1_crit))
        cont = p * (sq - crit) < 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = np.where(cont, (sq / crit) ** q, 0.0)
            ratio = np.where(np.isfinite(ratio), ratio, 0.0)
            safe_s = np.where(sq > 0, sq, 1.0)
            early_delta = np.where(sq > 0, a * q * ratio / safe_s, 0.0)
            early_gamma = np.where(sq > 0, a * q * (q - 1.0) * ratio / safe_s**2, 0.0)
        value[quad] = np.where(cont, value[quad] + a * ratio, p * (sq - kq))
        delta[quad] = np.where(cont, delta[quad] + early_delta, p)
        gamma[quad] = np.where(cont, gamma[quad] + early_gamma, 0.0)
    # An approximation must still respect the exercise bound.
    intrinsic = np.maximum(phi * (s - k), 0.0)
    below = value < intrinsic
    value = np.where(below, intrinsic, value)
    delta = np.where(below & (intrinsic > 0), phi, delta)
    gamma = np.where(below, 0.0, gamma)
    return tuple((x + 0.0).reshape(shape) for x in (value, delta, gamma))


def baw_price(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike,
              rate: ArrayLike, carry: ArrayLike = 0.0) -> FloatOrArray:
    """American option value by Barone-Adesi–Whaley (1987), vectorised.

    Parameters are those of :func:`opl.runtime.pricing.black.price` (``carry`` b: 0 for
    futures, r − q for a stock or ETF). The critical price is found by Newton's
    method on all elements at once, at most :data:`BAW_MAX_ITER` iterations, each
    element frozen once its residual is below :data:`BAW_TOLERANCE` × K.

    Returns
    -------
    float or numpy.ndarray
        Value of one long American option, never below the intrinsic value.
    """
    call, s, k, tt, v, r, b = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    return _ret(_baw(call, s, k, tt, v, r, b)[0])


def baw_value_delta_gamma(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike,
                          vol: ArrayLike, rate: ArrayLike,
                          carry: ArrayLike = 0.0) -> tuple[FloatOrArray, FloatOrArray, FloatOrArray]:
    """BAW value with its analytic delta and gamma (arguments as :func:`baw_price`).

    The critical price does not depend on the underlying, so delta and gamma are
    exact derivatives of the BAW formula (what :func:`american_greeks` returns for
    them, without its bumped vega, rho and theta).
    """
    call, s, k, tt, v, r, b = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    return tuple(_ret(x) for x in _baw(call, s, k, tt, v, r, b))


def critical_price(*, is_call: BoolLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, rate: ArrayLike,
                   carry: ArrayLike = 0.0) -> tuple[FloatOrArray, np.ndarray]:
    """BAW's critical price S*: the holder exercises a call at S >= S*, a put at S <= S*.

    Only meaningful where early exercise can pay (a call with b < max(r, 0), a put
    with r > 0 or b > 0) and T, σ > 0; elsewhere use the European value. S* is
    homogeneous in K, so ``strike=1`` gives the boundary as a ratio S*/K.

    Returns
    -------
    (S*, converged)
        The critical price(s) and whether Newton's method met :data:`BAW_TOLERANCE`
        for each element (a non-converged element keeps its last iterate).
    """
    call, _, k, tt, v, r, b = _inputs(is_call, 1.0, strike, t, vol, rate, carry)
    if np.any(tt <= 0) or np.any(v <= 0):
        raise ValueError("the critical price needs t > 0 and vol > 0")
    phi = np.where(call, 1.0, -1.0)
    shape = np.shape(k)
    si, _, _, done = _critical_price(*(np.ravel(x).astype(float) for x in (phi, k, tt, v, r, b)))
    return _ret(si.reshape(shape) + 0.0), done.reshape(shape)


def deterministic_price(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike,
                        rate: ArrayLike, carry: ArrayLike = 0.0) -> FloatOrArray:
    """The σ = 0 value of an American option: the no-arbitrage lower bound of its price."""
    call, s, k, tt, _, r, b = _inputs(is_call, underlying, strike, t, 0.0, rate, carry)
    return _ret(_deterministic(call, s, k, tt, r, b)[0] + 0.0)


# ---------------------------------------------------------------------------- Greeks

_VOL_BUMP = 1e-4
_RATE_BUMP = 1e-5
_TIME_BUMP = 1e-4  # years, about 53 minutes


def american_greeks(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike,
                    vol: ArrayLike, rate: ArrayLike, carry: ArrayLike = 0.0,
                    carry_follows_rate: BoolLike = False) -> Greeks:
    """Price and Greeks of an American option under BAW, in the units of :func:`pricing.greeks`.

    Method: delta and gamma are analytic derivatives of the BAW formula (the
    critical price does not depend on S). Vega, rho and theta are central
    differences of the BAW price with bumps of 1e-4 in σ, 1e-5 in r and 1e-4
    years in T (one-sided where σ or T would go below 0); charm is the same
    central difference in T of the analytic delta. ``theta`` and ``charm`` are
    −∂/∂T per year of time passing; ``rho`` holds b (``carry_follows_rate``
    False) or q = r − b (True), as in :func:`opl.runtime.pricing.black.greeks`.
    Below σ = 1e-4 the vega difference spans BAW's jump at σ = 0 (module
    docstring) and is not meaningful.
    """
    call, s, k, tt, v, r, b = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    follow = np.broadcast_to(np.asarray(carry_follows_rate, dtype=bool), s.shape)
    value, delta, gamma = _baw(call, s, k, tt, v, r, b)

    v_up, v_dn = v + _VOL_BUMP, np.maximum(v - _VOL_BUMP, 0.0)
    vega = (_baw(call, s, k, tt, v_up, r, b)[0] - _baw(call, s, k, tt, v_dn, r, b)[0]) / (v_up - v_dn)

    db = np.where(follow, _RATE_BUMP, 0.0)
    rho = (_baw(call, s, k, tt, v, r + _RATE_BUMP, b + db)[0]
           - _baw(call, s, k, tt, v, r - _RATE_BUMP, b - db)[0]) / (2.0 * _RATE_BUMP)

    t_up, t_dn = tt + _TIME_BUMP, np.maximum(tt - _TIME_BUMP, 0.0)
    later, earlier = _baw(call, s, k, t_up, v, r, b), _baw(call, s, k, t_dn, v, r, b)
    theta = -(later[0] - earlier[0]) / (t_up - t_dn)
    charm = -(later[1] - earlier[1]) / (t_up - t_dn)
    return Greeks(*(_ret(x + 0.0) for x in (value, delta, gamma, vega, theta, rho, charm)))


# ---------------------------------------------------------------------------- reference tree

def _peizer_pratt(z: float, n: int) -> float:
    # Peizer–Pratt method 2 inversion of the normal CDF onto a binomial with n steps.
    return 0.5 + np.copysign(0.5, z) * np.sqrt(
        -np.expm1(-((z / (n + 1.0 / 3.0 + 0.1 / (n + 1.0))) ** 2) * (n + 1.0 / 6.0)))


def _tree_one(phi: float, s: float, k: float, t: float, v: float, r: float, b: float, steps: int,
              american: bool, method: str) -> float:
    dt = t / steps
    growth = np.exp(b * dt)
    if method == "leisen_reimer":
        d1_ = (np.log(s / k) + (b + 0.5 * v * v) * t) / (v * np.sqrt(t))
        p = _peizer_pratt(d1_ - v * np.sqrt(t), steps)
        with np.errstate(divide="ignore", invalid="ignore"):
            up = growth * _peizer_pratt(d1_, steps) / p
            down = (growth - p * up) / (1.0 - p)
        if not (0.0 < p < 1.0 and 0.0 < down < up):
            # |d1| of several hundred (far from the strike, near expiry) rounds p to 0 or 1; CRR still works.
            return _tree_one(phi, s, k, t, v, r, b, steps, american, "crr")
    else:
        up = np.exp(v * np.sqrt(dt))
        down = 1.0 / up
        p = (growth - down) / (up - down)
    if not (0.0 < p < 1.0 and 0.0 < down < up):
        raise ValueError(f"the {method} tree has no valid branching for these inputs "
                         f"(p={p:.3g}); use more steps")
    disc = np.exp(-r * dt)
    j = np.arange(steps + 1)
    spot = s * np.exp(j * np.log(up) + (steps - j) * np.log(down))
    value = np.maximum(phi * (spot - k), 0.0)
    for i in range(steps - 1, -1, -1):
        value = disc * (p * value[1:] + (1.0 - p) * value[:-1])
        if american:
            spot = spot[:-1] / down  # node j at step i lies one down-move below node j at step i + 1
            value = np.maximum(value, phi * (spot - k))
    return float(value[0])


def binomial_price(*, is_call: BoolLike, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike,
                   vol: ArrayLike, rate: ArrayLike, carry: ArrayLike = 0.0, steps: int = 1001,
                   american: bool = True, method: str = "leisen_reimer") -> FloatOrArray:
    """Reference price on a recombining binomial tree, one option at a time.

    Parameters
    ----------
    is_call, underlying, strike, t, vol, rate, carry
        As in :func:`opl.runtime.pricing.black.price`; broadcast, then priced one by one.
    steps
        Time steps; Leisen–Reimer needs an odd number, so an even one is raised by 1.
    american
        Early exercise at every node (False: the European value, to check the tree).
    method
        ``"leisen_reimer"`` (Leisen & Reimer 1996, Peizer–Pratt method 2: smooth
        second-order convergence, the default) or ``"crr"`` (Cox, Ross &
        Rubinstein 1979 with drift e^{bΔt}).

    Notes
    -----
    The nodes of each time step are one numpy array; options are looped over in
    Python, so this is for checking, not the hot path (a few milliseconds an
    option at 1001 steps). T = 0 and σ = 0 take the same exact limits as :func:`baw_price`.
    """
    if method not in ("leisen_reimer", "crr"):
        raise ValueError(f"method must be 'leisen_reimer' or 'crr', not {method!r}")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if method == "leisen_reimer" and steps % 2 == 0:
        steps += 1
    args = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    shape = args[0].shape
    call, s, k, tt, v, r, b = (np.ravel(x) for x in args)
    # The degenerate cases are exact limits, shared with BAW (whose _baw handles them before any tree).
    degenerate = (tt == 0) | (v == 0) | (s == 0) | (k == 0)
    out = np.zeros(s.shape)
    if degenerate.any():
        limit = _baw if american else _price
        out[degenerate] = limit(*(x[degenerate] for x in (call, s, k, tt, v, r, b)))[0]
    for i in np.flatnonzero(~degenerate):
        out[i] = _tree_one(1.0 if call[i] else -1.0, s[i], k[i], tt[i], v[i], r[i], b[i], steps, american, method)
    return _ret(out.reshape(shape) + 0.0)
