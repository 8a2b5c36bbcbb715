"""Compiled month of price paths (numba): the fast engine's twin of `opl.runtime.engine.processes`.

`opl.runtime.engine.processes.PathGenerator.next_month` builds a month with a few dozen
whole-array numpy operations per trading day (the GARCH recursion, the jumps, the price
limit, the cumulative sum), each a pass over every path with its own temporary. Here a
block of paths walks the month's steps once, day by day: the increment of each step, the
day's GARCH update and volatility forecasts, the limit and its carry and the log price,
written straight into the month's two (steps, paths) output arrays; numpy's own
vectorised exponential then turns the log prices into prices in place. A path's numbers
are computed in its own order, as if walked alone; a day's paths are independent, so
the processor overlaps them (one path at a time it waited on each day's chain of a
division, a square root and the GARCH update: 40% slower).

The random draws are the generator's, taken by the caller exactly as the reference takes
them (same streams, same calls, same order), so a seed gives the same paths; the
arithmetic is the reference's, operation for operation, so the paths agree bit for bit
except where numpy sums more than a few terms pairwise (several steps a day), which
``tests/simulate/test_processes.py`` bounds at 1e-12 relative on whole months. The draws
themselves (a Student-t costs a normal and a gamma) stay numpy's and are now most of a
month's time.

The kernel follows `opl.runtime.engine.kernels`' rules: ``@njit(cache=True)``, no
``fastmath``, and a parallel twin over paths only (each path's arithmetic is the same
whatever thread runs it, so the paths are bit-identical with 1 or N threads). Divisions
use numpy's error model (IEEE results, no Python exception check in the inner loop), the
reference's own semantics.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from opl.runtime.engine.kernels import base
from opl.runtime.engine.kernels.base import njit, prange

__all__ = ["MonthModel", "month"]

_BLOCK = 256  # paths a block walks day by day (its state, a few arrays of this size, stays in the first-level cache)


class MonthModel(NamedTuple):
    """The constants of one chunk's month (`opl.runtime.engine.processes.PathGenerator`'s model).

    ``z_scale`` scales the shocks to unit variance (1 for normal shocks); ``jump_mean``,
    ``jump_std`` and ``compensator`` are the realised jumps' (``jumps`` False: none);
    ``gap_log`` the gap scenario's log move; ``k`` and ``half_kk`` the surprise's factor
    and ½k²; ``garch`` False: GBM with ``step_scale`` = k·√(step variance) and
    ``step_drift`` = ½k²·(step variance); ``omega``, ``alpha``, ``gamma``, ``beta``,
    ``h_cap`` the recursion's; ``bound`` the limit's log bound (``limit`` False: none);
    ``years`` the month in years; ``open_jumps`` and ``jumps_var`` the jumps'
    annual variance in the forecast at the open and after it.
    """

    days: int
    spd: int
    z_scale: float
    jumps: bool
    jump_mean: float
    jump_std: float
    compensator: float
    gap_log: float
    k: float
    half_kk: float
    garch: bool
    step_scale: float
    step_drift: float
    omega: float
    alpha: float
    gamma: float
    beta: float
    h_cap: float
    limit: bool
    bound: float
    years: float
    open_jumps: float
    jumps_var: float


if njit is not None:

    @njit(cache=True, error_model="numpy")
    def _forecast(m, kk, h, jumps_var):
        # processes.PathGenerator._vol_forecast, in its order of operations (k·k·h·days / years + jumps).
        return math.sqrt(kk * h * m.days / m.years + jumps_var)

    @njit(cache=True, error_model="numpy")
    def _base(m, count, normal, gap, drift_n):
        # The step's move before the diffusion: the jumps less their compensator, the drift, the gap.
        # Scalars only: a helper taking arrays would pay numba's reference counting on every step.
        x = 0.0
        if m.jumps:
            c = float(count)
            # Most steps have no jump: the reference's (0·m + 0·s·z) − compensator is −compensator.
            x = c * m.jump_mean + math.sqrt(c) * m.jump_std * normal - m.compensator if c > 0 else -m.compensator
        x = x + drift_n
        if gap:
            x += m.gap_log
        return x

    @njit(cache=True, error_model="numpy")
    def _garch_next(m, h, shock):
        # h_{d+1} = ω + (α + γ·1[ε < 0])·ε² + β·h_d, capped (processes.PathGenerator.next_month).
        a = m.alpha + m.gamma * (1.0 if shock < 0 else 0.0)
        return min(m.omega + a * shock * shock + m.beta * h, m.h_cap)

    @njit(cache=True, error_model="numpy")
    def _diffusion(m, x, zz, hs, sd):
        # The step's diffusive move added to ``x``, and the shock ε it feeds the day's GARCH update.
        if m.garch:
            eps = sd * (zz * m.z_scale)
            x += m.k * eps - m.half_kk * hs
            return x, eps
        x += m.step_scale * (zz * m.z_scale) - m.step_drift
        return x, 0.0

    @njit(cache=True, error_model="numpy")
    def _limited(m, x, moved, held):
        # processes.PathGenerator._limit: the day's cumulative move clipped; returns the step's
        # move within the limit and the day's new (moved, held).
        moved += x
        clipped = min(max(moved, -m.bound), m.bound)
        return clipped - held, moved, clipped

    @njit(cache=True, error_model="numpy")
    def _month_block(p0, p1, m, z, counts, normal, gap_col, drift, log_f, h, carry, price, vol, off):
        # Paths p0..p1's month, day by day over the block: each path's numbers are computed by the same
        # operations in the same order as one path walked alone, but the paths of a day are independent, so
        # the processor overlaps their chains (a path's day is a chain of a division, a square root and the
        # GARCH update: walked one path at a time, it waited on each). The outputs are (n + 1, paths): a
        # step's prices are one contiguous row, for every reader of the month and for the block's writes.
        # The log price goes into ``price`` (`month` takes its exponential); path p is column off + p of the outputs
        # (a pass's month of several chunks, each written into its own columns).
        n, b = z.shape[1], p1 - p0
        kk = m.k * m.k
        f0, hp, cp, cum, drift_n, now = np.empty(b), np.empty(b), np.empty(b), np.zeros(b), np.empty(b), np.empty(b)
        hs, sd, shock, moved, held = np.empty(b), np.empty(b), np.empty(b), np.empty(b), np.empty(b)
        for q in range(b):
            p = p0 + q
            f0[q], hp[q], cp[q], drift_n[q] = log_f[p], h[p], carry[p], drift[p] / n
            price[0, off + p] = f0[q]
            vol[0, off + p] = _forecast(m, 1.0, hp[q], m.open_jumps)
            # The day's forecast: the previous close's (the same function of the same variance), computed once.
            now[q] = _forecast(m, kk, hp[q], m.jumps_var)
        for d in range(m.days):
            for q in range(b):
                hs[q] = hp[q] / m.spd
                sd[q] = math.sqrt(hs[q])
                shock[q], moved[q], held[q] = 0.0, 0.0, 0.0
            for i in range(m.spd):
                j = d * m.spd + i
                for q in range(b):
                    p = p0 + q
                    x = _base(m, counts[p, j] if m.jumps else 0, normal[p, j] if m.jumps else 0.0, gap_col[p] == j,
                              drift_n[q])
                    x, eps = _diffusion(m, x, z[p, j], hs[q], sd[q])
                    shock[q] += eps
                    if m.limit:
                        x, moved[q], held[q] = _limited(m, x + cp[q] if i == 0 else x, moved[q], held[q])
                    cum[q] += x
                    price[j + 1, off + p] = f0[q] + cum[q]
                    vol[j + 1, off + p] = now[q]
            for q in range(b):
                if m.limit:
                    cp[q] = moved[q] - held[q]
                if m.garch:
                    # The next day's variance is known at the day's close only (no look-ahead).
                    hp[q] = _garch_next(m, hp[q], shock[q])
                    now[q] = _forecast(m, kk, hp[q], m.jumps_var)
                    vol[(d + 1) * m.spd, off + p0 + q] = now[q]
        for q in range(b):
            p = p0 + q
            log_f[p], h[p], carry[p] = f0[q] + cum[q], hp[q], cp[q]

    # Two functions, not one compiled both ways: numba keys its cache by function, and twins of one function
    # would share an entry (a process could load the other twin's machine code). A month of a few paths
    # (the tests, --paths 100) does not pay for waking the thread pool.
    @njit(cache=True, parallel=True, error_model="numpy")
    def _month_parallel(m, z, counts, normal, gap_col, drift, log_f, h, carry, price, vol, off):
        paths = z.shape[0]
        for c in prange((paths + _BLOCK - 1) // _BLOCK):  # paths only: a path's numbers do not depend on the thread
            _month_block(c * _BLOCK, min(paths, (c + 1) * _BLOCK), m, z, counts, normal, gap_col, drift, log_f, h,
                         carry, price, vol, off)

    @njit(cache=True, error_model="numpy")
    def _month_serial(m, z, counts, normal, gap_col, drift, log_f, h, carry, price, vol, off):
        paths = z.shape[0]
        for c in range((paths + _BLOCK - 1) // _BLOCK):
            _month_block(c * _BLOCK, min(paths, (c + 1) * _BLOCK), m, z, counts, normal, gap_col, drift, log_f, h,
                         carry, price, vol, off)


def month(model: MonthModel, *, z: np.ndarray, counts: np.ndarray, normal: np.ndarray, gap_col: np.ndarray,
          drift: np.ndarray, log_f: np.ndarray, h: np.ndarray, carry: np.ndarray,
          out: tuple[np.ndarray, np.ndarray, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One month of every path: price and volatility forecast, each (paths, n + 1).

    Parameters
    ----------
    model
        The chunk's constants.
    z
        The shocks as drawn, (paths, n) (before ``model.z_scale``).
    counts, normal
        The jumps' Poisson counts and normals, (paths, n) (any 2-D arrays without jumps).
    gap_col
        The step whose open gaps, per path (−1: none).
    drift
        The month's log drift per path.
    log_f, h, carry
        The chunk's state at the open (log price, day variance, the limit's carry), updated in place.
    out
        None, or (price, vol, offset): step-major (n + 1, P) C-ordered arrays of a month of several chunks, this
        chunk's paths their columns offset, offset + 1, ... (written there: not copied into them afterwards).

    Returns
    -------
    tuple of numpy.ndarray
        ``price`` and ``vol`` as `opl.runtime.engine.processes.MonthPaths` holds them, (paths, n + 1) views of
        step-major arrays: a step's column is contiguous (what the replay reads, step by step).
    """
    paths, n = z.shape
    price, vol, off = out if out is not None else (np.empty((n + 1, paths)), np.empty((n + 1, paths)), 0)
    kernel = _month_parallel if paths * n >= base.PARALLEL_MIN else _month_serial
    kernel(model, z, counts, normal, gap_col, drift, log_f, h, carry, price, vol, int(off))
    if out is not None:
        price, vol = price[:, off:off + paths], vol[:, off:off + paths]
    # numpy's exponential, the reference's own (vectorised; math.exp per step costs more).
    np.exp(price, out=price)
    return price.T, vol.T
