"""Compiled kernels of the fast engine (numba), each the fused twin of a numpy reference.

The replay's numpy code (`opl.runtime.marking`, `opl.runtime.replay`) stays the
**reference implementation**; a kernel here computes the same formulas in the same order
in one pass over its elements, without the temporaries and the per-call overhead of
dozens of whole-array numpy operations. Differences from the reference are rounding only
(the normal CDF and ``exp``/``log`` come from the C library rather than scipy and numpy),
which ``tests/simulate/test_fast_engine.py`` bounds at 1e-9 relative on whole ledgers.

Rules every kernel keeps:

* ``@njit(cache=True)``: compiled once per machine, the machine code cached beside this
  file (``__pycache__``), so later processes load it in a fraction of a second;
* no ``fastmath``: IEEE arithmetic, no reassociation, so results do not depend on the
  vector width;
* ``parallel=True`` only over independent elements (paths): each element's arithmetic is
  the same whatever thread runs it, so a seed gives bit-identical results with 1 or N
  threads.

`available()` says whether numba is installed; without it the replay runs the reference.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np

try:  # numba is a declared dependency; an environment without it runs the numpy reference
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = njit = prange = None

if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # The replay forks worker processes (opl.runtime.replay); GNU OpenMP, numba's first choice where
    # present, kills a child forked after its threads ran. The built-in work queue does not.
    numba.config.THREADING_LAYER = "workqueue"

__all__ = ["available", "mark_series", "serial_only", "PARALLEL_MIN"]

PARALLEL_MIN = 20_000  # elements from which a kernel runs on the thread pool


def serial_only() -> None:
    """Run every kernel on its serial twin from now on (a worker process: the processes share the cores)."""
    global PARALLEL_MIN
    PARALLEL_MIN = 2**62


def available() -> bool:
    """Whether the compiled kernels can run (numba importable)."""
    return njit is not None


if njit is not None:
    _SQRT1_2 = 1.0 / math.sqrt(2.0)
    _INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

    @njit(cache=True)
    def _ndtr(a):
        # Cephes' ndtr (scipy.special.ndtr) on the C library's erf/erfc: N(a) keeping digits in both tails.
        x = a * _SQRT1_2
        z = abs(x)
        if z < _SQRT1_2:
            return 0.5 + 0.5 * math.erf(x)
        y = 0.5 * math.erfc(z)
        return 1.0 - y if x > 0 else y

    @njit(cache=True)
    def _interp(x, xp, fp):
        # numpy.interp's formula (slope from the two nodes, then from the right node on a NaN).
        n = xp.shape[0]
        if x >= xp[n - 1]:
            return fp[n - 1]
        if x <= xp[0]:
            return fp[0]
        lo, hi = 0, n - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if xp[mid] <= x:
                lo = mid
            else:
                hi = mid
        slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo])
        out = slope * (x - xp[lo]) + fp[lo]
        if math.isnan(out):
            out = slope * (x - xp[lo + 1]) + fp[lo + 1]
        return out

    @njit(cache=True)
    def _black(phi, s, k, t, v, r, b):
        # opl.runtime.pricing._d1_sd / _price / value_delta_gamma for one element (s, k > 0 here).
        log_fk = math.log(s / k) + b * t
        sd = v * math.sqrt(t)
        if sd > 0:
            d1 = log_fk / sd + 0.5 * sd
        elif log_fk > 0:
            d1 = math.inf
        elif log_fk < 0:
            d1 = -math.inf
        else:
            d1 = 0.0
        d2 = d1 - sd
        cf = math.exp((b - r) * t)
        df = math.exp(-r * t)
        nd1 = _ndtr(phi * d1)
        nd2 = _ndtr(phi * d2)
        value = phi * (cf * s * nd1 - df * k * nd2)
        delta = phi * cf * nd1
        gamma = 0.0
        if sd > 0 and s > 0:
            gamma = cf * (_INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)) / (s * sd)
        return value, delta, gamma

    def _mark_elements(phi, american, f, vol, k, t, col, eep, d_eep, boundary, x_grid, logv_grid, rate, carry,
              spread, floor, skew, curvature, value, delta, gamma, exercise):
        paths, steps = f.shape
        nx, nv = x_grid.shape[0], logv_grid.shape[0]
        x0, dx = x_grid[0], x_grid[1] - x_grid[0]
        v0, dv = logv_grid[0], logv_grid[1] - logv_grid[0]
        for p in prange(paths):
            kk = k[p]
            for j in range(steps):
                s = f[p, j]
                intrinsic = max(phi * (s - kk), 0.0)
                tj = t[j]
                if tj <= 0:
                    value[p, j] = intrinsic
                    delta[p, j] = phi if intrinsic > 0 else 0.0
                    gamma[p, j] = 0.0
                    exercise[p, j] = intrinsic > 0
                    continue
                # opl.runtime.marking.SmileRule.iv
                x = math.log(kk / s)
                atm = max(floor, vol[p, j] * (1.0 + spread))
                iv = max(floor, atm * (1.0 + skew * x + curvature * x * x))
                val, dlt, gam = _black(phi, s, kk, tj, iv, rate, carry)
                if not american:
                    value[p, j], delta[p, j], gamma[p, j] = val, dlt, gam
                    exercise[p, j] = False
                    continue
                # opl.runtime.marking.AmericanMarker.mark: tables of column col[j]
                c = col[j]
                logv = math.log(iv)
                lv = min(max(logv, logv_grid[0]), logv_grid[nv - 1])
                critical = kk * _interp(lv, logv_grid, boundary[c])
                ex = phi * (s - critical) >= 0
                fx = (min(max(math.log(s / kk), x_grid[0]), x_grid[nx - 1]) - x0) / dx
                fv = (lv - v0) / dv
                i = min(int(fx), nx - 2)
                m = min(int(fv), nv - 2)
                wx, wv = fx - i, fv - m
                w00, w01, w10, w11 = (1 - wx) * (1 - wv), (1 - wx) * wv, wx * (1 - wv), wx * wv
                e, d = eep[c], d_eep[c]
                premium = e[i, m] * w00 + e[i, m + 1] * w01 + e[i + 1, m] * w10 + e[i + 1, m + 1] * w11
                premium_delta = d[i, m] * w00 + d[i, m + 1] * w01 + d[i + 1, m] * w10 + d[i + 1, m + 1] * w11
                val = val + kk * premium
                dlt = dlt + premium_delta
                if ex:
                    value[p, j] = intrinsic
                    delta[p, j] = phi * (1.0 if intrinsic > 0 else 0.0)
                    gamma[p, j] = 0.0
                else:
                    value[p, j] = max(val, intrinsic)
                    delta[p, j] = dlt
                    gamma[p, j] = gam
                exercise[p, j] = ex and intrinsic > 0

    # Threads pay off on a month of paths, not on the few points an adjustment quotes (waking the pool
    # costs more than the marks): a serial twin of the same code serves the small calls.
    _mark_parallel = njit(cache=True, parallel=True)(_mark_elements)
    _mark_serial = njit(cache=True)(_mark_elements)


def _plain(x, shape) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    return np.require(x, dtype=float, requirements=["C", "W"])


@lru_cache(maxsize=64)
def _stacked(is_call: bool, times: tuple[float, ...], rate: float, carry: float):
    """`opl.runtime.marking`'s tables for several times to expiry, stacked on a first axis."""
    from opl.runtime.marking import _tables

    parts = [_tables(is_call, t, rate, carry) for t in times]
    return tuple(np.ascontiguousarray(np.stack([p[n] for p in parts])) for n in range(3))


def mark_series(*, is_call: bool, american: bool, forward: np.ndarray, vol: np.ndarray, strike: np.ndarray,
                t: np.ndarray, smile, rate: float, carry: float = 0.0):
    """Marks of options of ``strike`` (P,) along ``forward`` (P, S) with the model volatility ``vol``
    (P, S), ``t`` (S,) years to expiry per column: value, delta, gamma, exercise, each (P, S).

    The implied volatility is ``smile.iv`` (`opl.runtime.marking.SmileRule`); American options
    read `opl.runtime.marking`'s tables of each time to expiry. Same result as
    `opl.runtime.marking.AmericanMarker.mark` column by column, up to rounding.
    """
    from opl.runtime.marking import _LOGV, _X

    # One array type per argument (C order, writable), so the kernel is compiled once, not per flag set.
    forward = _plain(forward, np.shape(forward))
    vol = _plain(vol, forward.shape)
    strike = _plain(strike, forward.shape[:1])
    t = _plain(t, np.shape(t))
    col = np.zeros(t.shape, dtype=np.int64)
    eep = d_eep = np.zeros((1, len(_X), len(_LOGV)))
    boundary = np.zeros((1, len(_LOGV)))
    alive = tuple(sorted({float(x) for x in t if x > 0}))
    if american and alive:
        index = {x: n for n, x in enumerate(alive)}
        col = np.array([index.get(float(x), 0) for x in t], dtype=np.int64)
        eep, d_eep, boundary = _stacked(bool(is_call), alive, float(rate), float(carry))
    shape = forward.shape
    value, delta, gamma = np.empty(shape), np.empty(shape), np.empty(shape)
    exercise = np.empty(shape, dtype=np.bool_)
    kernel = _mark_parallel if forward.size >= PARALLEL_MIN else _mark_serial
    kernel(1.0 if is_call else -1.0, american, forward, vol, strike, t, col, eep, d_eep, boundary, _X, _LOGV,
          float(rate), float(carry), float(smile.spread), float(smile.floor), float(smile.skew),
          float(smile.curvature), value, delta, gamma, exercise)
    return value, delta, gamma, exercise
