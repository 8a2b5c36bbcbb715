"""American options by finite differences: the accurate prices behind the marking tables.

Barone-Adesi–Whaley (:mod:`opl.runtime.pricing.american`) is 0.5–0.6% off for one-year
options. This module prices the early-exercise premium EEP = American − European with a
Crank–Nicolson solve of the Black–Scholes equation in x = ln(S/K) under the exercise
constraint, one solve per (σ, T, r, b):

* **Puts only.** A call is the put of the exchanged problem (McDonald–Schroder symmetry):
  C(S, K; r, b) = P(K, S; r − b, −b), so per unit of strike c(x) = eˣ·p(−x) with the put
  solved at rate r − b and carry −b. Put values are bounded by the strike, which keeps the
  far grid's rounding small.
* **Grid scaled to the option.** With s = σ√T and μ = b − σ²/2, the nodes are
  x = c·sinh(ξ), ξ uniform, c = s/2: 40 nodes per s near the strike, spacing growing in
  proportion to |x| out to ±(7·s + |μ|T) (a few hundred nodes). Time runs on
  τᵢ = T·(i/100)², which puts the steps where the boundary moves fastest (it leaves the
  strike like √τ); the first four steps are fully implicit (Rannacher start-up), which
  damps Crank–Nicolson's oscillations from the kink.
* **One march, many expiries.** The replay needs a month's expiries at once. Expiries in
  the same octave of days [2ᵏ, 2ᵏ⁺¹) share one march, whose grid and main steps are those of
  the octave (s from 2ᵏ days near the strike, the wings from 2ᵏ⁺¹); each expiry is reached by
  one step off the march from the main step before it. So an expiry's result depends only on
  its own inputs, never on which other expiries were solved with it (tables are cached and
  shared across runs), and element-by-element pricing is the same computation.
* **Exercise by Brennan–Schwartz.** The tridiagonal system is eliminated from the top
  (out of the money) and solved upwards from the bottom with the projection
  max(value, intrinsic): exact for the linear complementarity problem of a put, whose
  exercise region is the interval below its boundary (r > 0).
* **Control variate.** The European put is solved on the same grid with the same steps,
  and the premium is the difference of the two solutions: the discretisation error of
  the kink at the strike cancels, and the European part of every mark stays Black's
  closed form. Between nodes the premium is a four-point Lagrange interpolant (its
  first and second derivatives give delta and gamma).
* **Boundaries.** Below the grid the put is max(intrinsic, deep-in-the-money European),
  above it 0. The exercise boundary is where the solution leaves intrinsic: the last
  exercised node, refined by smooth pasting (V − intrinsic ≈ c·(x − x*)² next to it, so its
  slope is linear in x and crosses 0 at x*: the slopes of the first two continuation
  intervals, extrapolated).

Accuracy against QuantLib's ``QdFpAmericanEngine`` (Andersen–Lake–Offengelt, high-precision
scheme), measured by ``tests/runtime/test_american_fd.py`` (600 options of its slow test:
one week to one year, σ 10%–90%, S/K 0.8–1.2, calls and puts, futures at r = 1.5% and 5%,
a stock and a dividend payer at r = 5%): within 1.2e-5·K, and 5e-5 relative for options worth
at least 1% of K (BAW: 1.5e-3·K). The exercise boundary is within 0.3% of QuantLib's (BAW:
0.3%–2.4%); it is the least accurate output, as the free boundary of a projected scheme is.
:func:`premium_tables` is what `opl.runtime.engine.marking` tabulates (a month's 22 expiries
× 41 volatilities × calls and puts in about the CPU time BAW's tables took);
:func:`fd_marks` prices element by element (one march each, ~0.6 ms: validation, histories).

Where early exercise never pays (a call with b >= max(r, 0), a put with r <= 0 and
b <= 0) the premium is 0. The put of the exchanged problem needs r > 0 for the scheme;
the remaining case (r <= 0 < b for the put, a call with r <= 0 and b < r) is priced by
BAW, as before, with its caveats.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from opl.runtime.pricing import black as pricing
from opl.runtime.pricing._typing import ArrayLike, FloatOrArray
from opl.runtime.pricing.american import _baw, critical_price
from opl.runtime.pricing.black import _inputs, _ret

try:  # numba is a declared dependency; without it the same code runs as (slow) Python
    from numba import njit

    _jit = njit(cache=True)
    # The solves of a table's volatility nodes are independent: off the interpreter's lock, threads run them
    # side by side (`opl.runtime.engine.marking.prepare_tables`).
    _jit_free = njit(cache=True, nogil=True)
except ImportError:  # pragma: no cover - exercised only where numba is missing
    def _jit(f):
        return f

    _jit_free = _jit

__all__ = ["premium_tables", "fd_price", "fd_marks", "PER_SD", "WIDTH", "STEPS"]

#: Grid nodes per standard deviation s = σ√T of ln S at expiry.
PER_SD = 40
#: Half-width of the grid in standard deviations (plus the drift |μ|T).
WIDTH = 7.0
#: Time steps (quadratically spaced in τ, the first four fully implicit).
STEPS = 100
#: Nodes concentrate within about FOCUS·σ√T of the strike (T the shortest expiry of a march).
FOCUS = 0.5
_MAX_NODES = 20_001


@_jit
def _ndtr(a):
    z = abs(a) / math.sqrt(2.0)
    if z < 1.0 / math.sqrt(2.0):
        return 0.5 + 0.5 * math.erf(a / math.sqrt(2.0))
    y = 0.5 * math.erfc(z)
    return 1.0 - y if a > 0 else y


@_jit
def _deep_put(x, tau, r, b):
    """The put below the grid: max(intrinsic, the deep in-the-money European e^{−rτ} − e^{x + (b−r)τ})."""
    return max(1.0 - math.exp(x), math.exp(-r * tau) - math.exp(x + (b - r) * tau))


@_jit
def _black_put(x, t, v, r, b):
    sd = v * math.sqrt(t)
    d1 = (x + b * t) / sd + 0.5 * sd
    return math.exp(-r * t) * _ndtr(-(d1 - sd)) - math.exp(x + (b - r) * t) * _ndtr(-d1)


@_jit
def _grid(v, b, t_short, t_long, per_sd, width, focus):
    """Nodes x = c·sinh(ξ), ξ uniform: spacing s/``per_sd`` near the strike for the shortest expiry's
    s = σ√T, growing in proportion to |x| so the longest expiry's wings are as well resolved."""
    mu = b - 0.5 * v * v
    c = focus * v * math.sqrt(t_short)
    half = width * v * math.sqrt(t_long) + abs(mu) * t_long
    top = math.asinh(half / c)
    n = max(int(math.ceil(2.0 * top * per_sd)) + 1, 9)
    step = 2.0 * top / (n - 1)
    x = np.empty(n)
    for j in range(n):
        x[j] = c * math.sinh(-top + step * j)
    return x, c, -top, step


@_jit
def _operator(x, v, r, b):
    """Three-point coefficients of ½σ²p_xx + μp_x − rp on the nodes (upwind drift where central
    differences would make an off-diagonal negative)."""
    n = x.shape[0]
    a = 0.5 * v * v
    mu = b - a
    lo, mid, hi = np.zeros(n), np.zeros(n), np.zeros(n)
    for j in range(1, n - 1):
        hm, hp = x[j] - x[j - 1], x[j + 1] - x[j]
        dlo, dhi = 2.0 * a / (hm * (hm + hp)), 2.0 * a / (hp * (hm + hp))
        clo, chi = -mu * hp / (hm * (hm + hp)), mu * hm / (hp * (hm + hp))
        if dlo + clo >= 0.0 and dhi + chi >= 0.0:
            lo[j], hi[j] = dlo + clo, dhi + chi
            mid[j] = -dlo - dhi + mu * (hp - hm) / (hm * hp) - r
        elif mu > 0:
            lo[j], hi[j] = dlo, dhi + mu / hp
            mid[j] = -dlo - dhi - mu / hp - r
        else:
            lo[j], hi[j] = dlo - mu / hm, dhi
            mid[j] = -dlo - dhi + mu / hm - r
    return lo, mid, hi


@_jit
def _step(am, eu, payoff, x, lo, mid, hi, tau, dt, theta, r, b, out_am, out_eu, rhs_am, rhs_eu, piv):
    """One θ-step of both puts from (am, eu) to τ into (out_am, out_eu) (which may be am, eu)."""
    n = x.shape[0]
    ex = (1.0 - theta) * dt
    for j in range(1, n - 1):
        rhs_am[j] = am[j] + ex * (lo[j] * am[j - 1] + mid[j] * am[j] + hi[j] * am[j + 1])
        rhs_eu[j] = eu[j] + ex * (lo[j] * eu[j - 1] + mid[j] * eu[j] + hi[j] * eu[j + 1])
    # Eliminate the upper diagonal from the top (the far out-of-the-money node is 0) ...
    imp = theta * dt
    piv[n - 2] = 1.0 - imp * mid[n - 2]
    for j in range(n - 3, 0, -1):
        f = -imp * hi[j] / piv[j + 1]
        piv[j] = 1.0 - imp * mid[j] + f * imp * lo[j + 1]
        rhs_am[j] -= f * rhs_am[j + 1]
        rhs_eu[j] -= f * rhs_eu[j + 1]
    # ... then solve from the bottom, projecting the American onto its intrinsic value (Brennan–Schwartz).
    out_eu[0] = math.exp(-r * tau) - math.exp(x[0] + (b - r) * tau)
    out_am[0] = max(payoff[0], out_eu[0])
    for j in range(1, n - 1):
        out_eu[j] = (rhs_eu[j] + imp * lo[j] * out_eu[j - 1]) / piv[j]
        out_am[j] = max(payoff[j], (rhs_am[j] + imp * lo[j] * out_am[j - 1]) / piv[j])
    out_am[n - 1] = 0.0
    out_eu[n - 1] = 0.0


@_jit_free
def _march_put(v, r, b, times, t_short, t_long, per_sd, width, steps, focus):
    """Crank–Nicolson solves of the American and European put per unit strike for every expiry of
    ``times`` (ascending, within [t_short, t_long]); module docstring.

    The grid and the main time steps τᵢ = t_long·(i/steps)² depend on (t_short, t_long) only, and each
    expiry is reached by one extra step from the last main step before it, off the main march: an
    expiry's result does not depend on which other expiries were solved with it.

    Returns the grid (x, its c, ξ₀, Δξ), the premium American − European at the nodes per expiry
    and the exercise boundary ln(S*/K) per expiry."""
    x, c, xi0, dxi = _grid(v, b, t_short, t_long, per_sd, width, focus)
    n = x.shape[0]
    lo, mid, hi = _operator(x, v, r, b)
    payoff = np.empty(n)
    for j in range(n):
        payoff[j] = max(-math.expm1(x[j]), 0.0)
    am = payoff.copy()
    eu = payoff.copy()
    side_am, side_eu = np.empty(n), np.empty(n)
    rhs_am, rhs_eu, piv = np.empty(n), np.empty(n), np.empty(n)
    diffs = np.empty((times.shape[0], n))
    bounds = np.empty(times.shape[0])
    want = 0
    prev = 0.0
    for i in range(1, steps + 1):
        tau = t_long * (i / steps) ** 2
        theta = 1.0 if i <= 4 else 0.5  # Rannacher start-up: four fully implicit steps
        # Expiries up to this step: one step from the previous main step to each.
        while want < times.shape[0] and times[want] <= tau:
            t = times[want]
            _step(am, eu, payoff, x, lo, mid, hi, t, t - prev, theta, r, b, side_am, side_eu, rhs_am, rhs_eu, piv)
            for j in range(n):
                diffs[want, j] = side_am[j] - side_eu[j]
            bounds[want] = _boundary(x, side_am, payoff, t, r, b)
            want += 1
        if want == times.shape[0]:
            break
        _step(am, eu, payoff, x, lo, mid, hi, tau, tau - prev, theta, r, b, am, eu, rhs_am, rhs_eu, piv)
        prev = tau
    return x, c, xi0, dxi, diffs, bounds


@_jit
def _boundary(x, am, payoff, tau, r, b):
    """ln(S*/K): the last exercised node, refined by smooth pasting."""
    n = x.shape[0]
    if am[0] > payoff[0]:
        # Nothing on the grid is exercised: the threshold of the bottom condition, below the grid.
        if b < r:
            return min(math.log(-math.expm1(-r * tau) / -math.expm1((b - r) * tau)), x[0])
        return -math.inf
    j = 0
    while j + 1 < n - 1 and am[j + 1] <= payoff[j + 1]:
        j += 1
    xb = x[j]
    if j + 3 < n:
        # Smooth pasting: V − intrinsic ≈ c·(x − x*)², so its slope is linear in x and crosses 0 at x*;
        # extrapolate the slopes of the first two continuation intervals.
        m1, m2 = 0.5 * (x[j + 1] + x[j + 2]), 0.5 * (x[j + 2] + x[j + 3])
        g1, g2, g3 = am[j + 1] - payoff[j + 1], am[j + 2] - payoff[j + 2], am[j + 3] - payoff[j + 3]
        s1, s2 = (g2 - g1) / (x[j + 2] - x[j + 1]), (g3 - g2) / (x[j + 3] - x[j + 2])
        if s2 > s1 > 0:
            xb = min(max(m1 - s1 * (m2 - m1) / (s2 - s1), x[max(j - 2, 0)]), x[j + 1])
    return xb


@_jit
def _premium_at(y, x, c, xi0, dxi, diff, t, v, r, b):
    """The put's premium per unit strike at ln(S/K) = y and its first two y-derivatives."""
    n = diff.shape[0]
    if y < x[0]:
        tiny = 1e-6 * max(abs(y), 1.0)
        e0 = _deep_put(y, t, r, b) - _black_put(y, t, v, r, b)
        ep = _deep_put(y + tiny, t, r, b) - _black_put(y + tiny, t, v, r, b)
        em = _deep_put(y - tiny, t, r, b) - _black_put(y - tiny, t, v, r, b)
        return e0, (ep - em) / (2.0 * tiny), 0.0
    if y > x[n - 1]:
        return 0.0, 0.0, 0.0
    # Four-point Lagrange in ξ (uniform) on the nodes around y, then the chain rule to x.
    xi = math.asinh(y / c)
    k = min(max(int((xi - xi0) / dxi) - 1, 0), n - 4)
    u = (xi - xi0) / dxi - k  # position in node units from node k, in [0, 3]
    f0, f1, f2, f3 = diff[k], diff[k + 1], diff[k + 2], diff[k + 3]
    l0 = -(u - 1.0) * (u - 2.0) * (u - 3.0) / 6.0
    l1 = u * (u - 2.0) * (u - 3.0) / 2.0
    l2 = -u * (u - 1.0) * (u - 3.0) / 2.0
    l3 = u * (u - 1.0) * (u - 2.0) / 6.0
    d0 = -((u - 2.0) * (u - 3.0) + (u - 1.0) * (u - 3.0) + (u - 1.0) * (u - 2.0)) / 6.0
    d1 = ((u - 2.0) * (u - 3.0) + u * (u - 3.0) + u * (u - 2.0)) / 2.0
    d2 = -((u - 1.0) * (u - 3.0) + u * (u - 3.0) + u * (u - 1.0)) / 2.0
    d3 = ((u - 1.0) * (u - 2.0) + u * (u - 2.0) + u * (u - 1.0)) / 6.0
    s0, s1, s2, s3 = -(u - 2.0), 3.0 * u - 5.0, -(3.0 * u - 4.0), u - 1.0
    value = f0 * l0 + f1 * l1 + f2 * l2 + f3 * l3
    dv = (f0 * d0 + f1 * d1 + f2 * d2 + f3 * d3) / dxi
    d2v = (f0 * s0 + f1 * s1 + f2 * s2 + f3 * s3) / (dxi * dxi)
    q = c * c + y * y
    dxi_dy = 1.0 / math.sqrt(q)
    return value, dv * dxi_dy, d2v * dxi_dy * dxi_dy - dv * y / (q * math.sqrt(q))


@_jit
def _bucket(t):
    """The octave of days [2ᵏ, 2ᵏ⁺¹) holding expiry ``t`` (years): the expiries solved in one march."""
    k = math.floor(math.log2(t * 365.0))
    return 2.0 ** k / 365.0, 2.0 ** (k + 1) / 365.0


@_jit_free
def _put_tables(march, times, v, r, b, xs):
    """The put's premium per unit strike and its derivative in x at every x of ``xs`` per expiry of ``march``
    (`_march_put`'s result for ``times``)."""
    x, c, xi0, dxi, diffs, _ = march
    out = np.empty((2, times.shape[0], xs.shape[0]))
    for m in range(times.shape[0]):
        for i in range(xs.shape[0]):
            out[0, m, i], out[1, m, i], _ = _premium_at(xs[i], x, c, xi0, dxi, diffs[m], times[m], v, r, b)
    return out


#: The last marches solved (`_march`), at most `_MARCHES_KEPT`: a month's put and call tables share them.
_MARCHES: OrderedDict = OrderedDict()
_MARCHES_KEPT = 512  # a few hundred nodes by the expiries of an octave: ~10 kB each
_MARCHES_LOCK = threading.Lock()  # the tables' volatility nodes are solved on threads


def _march(times: np.ndarray, t_short: float, t_long: float, v: float, r: float, b: float) -> tuple:
    """`_march_put` of the put problem (v, r, b) for ``times``, solved once for the put and the call tables.

    On a future (carry 0) a call is the put of the exchanged problem at rate r and carry −0.0
    (`premium_tables`), the put's own at carry 0.0: the same key here (−0.0 == 0.0), and the same march bit for
    bit — b enters it only through b − σ²/2, b − r and b < r, where the sign of a zero changes nothing — so a
    month's call tables reuse the put's marches (or the other way round) and only interpolate (~80% of a table
    is its march)."""
    key = (v, r, b, t_short, t_long, times.tobytes())
    with _MARCHES_LOCK:
        found = _MARCHES.get(key)
        if found is not None:
            _MARCHES.move_to_end(key)
            return found
    march = _march_put(v, r, b, times, t_short, t_long, PER_SD, WIDTH, STEPS, FOCUS)
    with _MARCHES_LOCK:
        _MARCHES[key] = march
        while len(_MARCHES) > _MARCHES_KEPT:
            _MARCHES.popitem(last=False)
    return march


@_jit
def _put_points(y, t, v, r, b, per_sd, width, steps, focus):
    """Premium, its y-derivatives and the boundary ln(S*/K) of each element (one solve each)."""
    out = np.empty((4, y.shape[0]))
    one = np.empty(1)
    for i in range(y.shape[0]):
        one[0] = t[i]
        t_short, t_long = _bucket(t[i])
        x, c, xi0, dxi, diffs, bounds = _march_put(v[i], r, b, one, t_short, t_long, per_sd, width, steps, focus)
        out[0, i], out[1, i], out[2, i] = _premium_at(y[i], x, c, xi0, dxi, diffs[0], t[i], v[i], r, b)
        out[3, i] = bounds[0]
    return out


def _regime(is_call: bool, rate: float, carry: float) -> str:
    """'never' (no early exercise), 'fd' (the put of the (exchanged) problem has r > 0) or 'baw'."""
    r_put, b_put = (rate - carry, -carry) if is_call else (rate, carry)
    if abs(r_put) < 1e-300 or r_put < 0:
        return "never" if b_put <= 0 else "baw"
    return "fd"


def premium_tables(*, is_call: bool, times: ArrayLike, rate: float, carry: float, x: np.ndarray,
                   vol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Early-exercise premium per unit strike on ln(F/K) nodes at several expiries of one volatility.

    The expiries of an octave of days share one march in time (module docstring); each value
    depends only on its own (is_call, T, σ, r, b, x).

    Parameters
    ----------
    is_call, rate, carry
        The option: type, rate and cost of carry.
    times
        Years to expiry (> 0), ascending.
    x
        ln(F/K) nodes (F the underlying).
    vol
        The volatility (> 0).

    Returns
    -------
    (eep, slope, boundary)
        ``eep[m, i]``: American − Black per unit strike at times[m], x[i]; ``slope[m, i]``: its
        derivative in x; ``boundary[m]``: S*/K (a call is exercised at S >= S*, a put at S <= S*;
        inf resp. 0 where it never is).
    """
    times, x = np.asarray(times, dtype=float), np.asarray(x, dtype=float)
    if times.ndim != 1 or times.size == 0 or np.any(times <= 0) or np.any(np.diff(times) <= 0):
        raise ValueError("times must be positive and strictly ascending")
    if not vol > 0:
        raise ValueError("vol must be > 0")
    regime = _regime(is_call, rate, carry)
    if regime == "never":
        zero = np.zeros((times.size, x.size))
        return zero, zero.copy(), np.full(times.size, np.inf if is_call else 0.0)
    if regime == "baw":
        args = dict(is_call=is_call, underlying=np.exp(x)[None, :], strike=1.0, t=times[:, None], vol=vol, rate=rate,
                    carry=carry)
        eep = np.asarray(_baw_price(**args)) - np.asarray(pricing.price(**args))
        slope = np.gradient(eep, x, axis=1)
        return eep, slope, np.asarray(critical_price(is_call=is_call, strike=1.0, t=times, vol=vol, rate=rate,
                                                     carry=carry)[0])
    r_put, b_put, y = (rate - carry, -carry, -x) if is_call else (rate, carry, x)
    out, xb = np.empty((2, times.size, x.size)), np.empty(times.size)
    buckets = np.array([_bucket(t)[0] for t in times])
    for start in np.unique(buckets):
        part = buckets == start
        t_short, t_long = _bucket(times[part][0])
        march = _march(times[part], t_short, t_long, float(vol), float(r_put), float(b_put))
        out[:, part], xb[part] = _put_tables(march, times[part], float(vol), float(r_put), float(b_put), y), march[5]
    if not is_call:
        return out[0], out[1], np.exp(xb)
    # c(x) = eˣ·g(−x), so c'(x) = eˣ·(g(−x) − g'(−x)).
    grow = np.exp(x)[None, :]
    return grow * out[0], grow * (out[0] - out[1]), np.exp(-xb)


def _baw_price(**kw):
    from opl.runtime.pricing.american import baw_price

    return baw_price(**kw)


def fd_marks(*, is_call: bool, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike,
             rate: float, carry: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """American value, delta, gamma and exercise boundary S*, element by element (one solve each).

    ``rate`` and ``carry`` are scalars (they decide the method, module docstring); the other
    arguments broadcast. T = 0, σ = 0, S = 0 and K = 0 take BAW's exact limits (intrinsic, the
    deterministic value, ...) with the boundary at the strike.

    Returns
    -------
    (value, delta, gamma, critical)
        Arrays of the broadcast shape; ``critical`` is inf (calls) or 0 (puts) where early
        exercise never pays.
    """
    call, s, k, tt, v, r, b = _inputs(is_call, underlying, strike, t, vol, rate, carry)
    shape = s.shape
    call, s, k, tt, v, r, b = (np.ravel(a) for a in (call, s, k, tt, v, r, b))
    regime = _regime(bool(is_call), float(rate), float(carry))
    value, delta, gamma = np.zeros(s.shape), np.zeros(s.shape), np.zeros(s.shape)
    critical = np.full(s.shape, np.inf if is_call else 0.0)
    solve = (tt > 0) & (v > 0) & (s > 0) & (k > 0)
    if regime != "fd":
        solve[:] = False
    limits = ~solve
    if np.any(limits):
        value[limits], delta[limits], gamma[limits] = _baw(*(a[limits] for a in (call, s, k, tt, v, r, b)))
    solve = (tt > 0) & (v > 0) & (s > 0) & (k > 0)
    if regime == "baw":
        if np.any(solve):
            critical[solve] = critical_price(is_call=is_call, strike=k[solve], t=tt[solve], vol=v[solve],
                                             rate=rate, carry=carry)[0]
    elif regime == "fd" and np.any(solve):
        euro_value, euro_delta, euro_gamma = pricing.value_delta_gamma(
            is_call=is_call, underlying=s[solve], strike=k[solve], t=tt[solve], vol=v[solve], rate=rate, carry=carry,
            with_gamma=True)
        xs = np.log(s[solve] / k[solve])
        if is_call:
            out = _put_points(-xs, tt[solve], v[solve], float(rate - carry), float(-carry), PER_SD, WIDTH, STEPS, FOCUS)
            g, g1, g2 = out[0], out[1], out[2]
            # c(x) = eˣ·g(−x): the premium and its x-derivatives.
            e = np.exp(xs) * g
            e1 = np.exp(xs) * (g - g1)
            e2 = np.exp(xs) * (g - 2.0 * g1 + g2)
            crit = k[solve] * np.exp(-out[3])
        else:
            out = _put_points(xs, tt[solve], v[solve], float(rate), float(carry), PER_SD, WIDTH, STEPS, FOCUS)
            e, e1, e2 = out[0], out[1], out[2]
            crit = k[solve] * np.exp(out[3])
        ks, ss = k[solve], s[solve]
        value[solve] = euro_value + ks * e
        delta[solve] = euro_delta + ks * e1 / ss
        gamma[solve] = euro_gamma + ks * (e2 - e1) / (ss * ss)
        critical[solve] = crit
    if regime != "never":
        edge = ~solve & (tt > 0) & (k > 0)
        critical[edge] = k[edge]
    phi = np.where(call, 1.0, -1.0)
    intrinsic = np.maximum(phi * (s - k), 0.0)
    below = value < intrinsic
    value = np.where(below, intrinsic, value)
    return tuple(a.reshape(shape) + 0.0 for a in (value, delta, gamma, critical))


def fd_price(*, is_call: bool, underlying: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike,
             rate: float, carry: float = 0.0) -> FloatOrArray:
    """American value by the finite-difference method (arguments as :func:`fd_marks`)."""
    return _ret(fd_marks(is_call=is_call, underlying=underlying, strike=strike, t=t, vol=vol, rate=rate,
                         carry=carry)[0])
