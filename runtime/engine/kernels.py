"""Compiled kernels of the fast engine (numba), each the fused twin of a numpy reference.

The replay's numpy code (`opl.runtime.engine.marking`, `opl.runtime.engine.replay`) stays the
**reference implementation**; a kernel here computes the same formulas in the same order
in one pass over its elements, without the temporaries and the per-call overhead of
dozens of whole-array numpy operations. Differences from the reference are rounding only
(the normal CDF and ``exp``/``log`` come from the C library rather than scipy and numpy),
which ``tests/simulate/test_fast_engine.py`` bounds at 1e-9 relative on whole ledgers.

Rules every kernel keeps:

* ``@njit(cache=True)``: compiled once per machine, the machine code cached beside this
  file (``__pycache__``), so later processes load it in a fraction of a second; an edit of
  any kernel module recompiles them all (`opl.runtime.engine.kernelcache`: a kernel's cache
  entry holds the kernels of other modules it calls);
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
from typing import NamedTuple

import numpy as np

try:  # numba is a declared dependency; an environment without it runs the numpy reference
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = njit = prange = None

if numba is not None:
    from opl.runtime.engine import kernelcache

    kernelcache.install()  # before the first kernel: the kernel modules' caches share one stamp

if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # The replay forks worker processes (opl.runtime.engine.replay); GNU OpenMP, numba's first choice where
    # present, kills a child forked after its threads ran. The built-in work queue does not.
    numba.config.THREADING_LAYER = "workqueue"

__all__ = ["available", "mark_series", "SeriesMarks", "serial_only", "PARALLEL_MIN", "MARKS_PARALLEL_MIN",
           "STEP_PARALLEL_MIN",
           "threads_allowed", "MarginRule", "book_margin", "hedge_rule", "option_sums", "book_move", "book_interest", "book_carry",
           "any_short_exercised", "futures_lots", "exercise", "account", "close_lots", "mark_where", "settle",
           "close_book", "hedge_step", "requirement_account", "writable", "exits_close", "EXIT_OPS", "book_sold",
           "shorts_exercised"]

PARALLEL_MIN = 20_000  # elements from which a kernel runs on the thread pool
# Marks from which the mark kernel does (~1 ms of work, against tens of microseconds to wake the pool): a
# step's column of held paths in a one-process run (a 10,000-path chunk) uses both cores.
MARKS_PARALLEL_MIN = 8_192
# Elements from which the step's margin, settle and hedge kernels run on the thread pool. They do a few
# nanoseconds of work an element; measured on the jujube steps (5 variants x 10,000 paths, an idle 2-core
# machine) the pool's launch cost more than it saved (settle 0.35 -> 1.0 ms a call, the requirement 0.93 ->
# 1.1 ms), so only far larger calls use it.
STEP_PARALLEL_MIN = 2**22
_BLOCK = 512  # paths a thread marks per call (amortises the call; many blocks keep both threads busy)
# Paths a margin block does for every variant: its scratch (a few series' rows) stays in the first-level cache.
_MARGIN_BLOCK = 256
# Held series are bits of an int64 per element: from this slot on they share the top bit, and an element holding
# one is paired the general way (`_margin_block`). An argument of the kernels, so tests can lower it.
_WIDE_BIT = 62


def serial_only() -> None:
    """Run every kernel on its serial twin from now on (a worker process: the processes share the cores)."""
    global PARALLEL_MIN, MARKS_PARALLEL_MIN, STEP_PARALLEL_MIN
    PARALLEL_MIN = MARKS_PARALLEL_MIN = STEP_PARALLEL_MIN = 2**62


def threads_allowed() -> bool:
    """Whether this process may run work on more than one thread (not after `serial_only`)."""
    return PARALLEL_MIN < 2**62


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

    @njit(cache=True, inline="always")
    def _interp_uniform(x, xp, fp, row, x0, dx):
        # numpy.interp(x, xp, fp[row]) (slope from the two nodes, then from the right node on a NaN) on a
        # uniform grid: the node below x from the quotient, which rounding can put one node off, then made
        # exact by comparing with the nodes, so it is the node the binary search finds and the value is the
        # same. The row is read in place: a row view made per element would cost its reference count.
        n = xp.shape[0]
        if x >= xp[n - 1]:
            return fp[row, n - 1]
        if x <= xp[0]:
            return fp[row, 0]
        lo = min(max(int((x - x0) / dx), 0), n - 2)
        if xp[lo] > x:
            lo -= 1
        elif xp[lo + 1] <= x:
            lo += 1
        slope = (fp[row, lo + 1] - fp[row, lo]) / (xp[lo + 1] - xp[lo])
        out = slope * (x - xp[lo]) + fp[row, lo]
        if math.isnan(out):
            out = slope * (x - xp[lo + 1]) + fp[row, lo + 1]
        return out

    @njit(cache=True)
    def _boundary_edge(phi, boundary, c):
        # A ratio ``edge`` with phi s < phi k edge => phi (s - k b) < 0 for every b `_interp_uniform` can
        # return on row ``c`` of the exercise boundary (k > 0): an interpolation between two nodes is within
        # a few ulps of them, so max (puts, phi < 0) or min (calls) of the row widened by 2^-30 of its largest
        # magnitude bounds it, and fl(k b) is monotone in b. A NaN or infinite node gives a NaN or infinite
        # edge, which no s passes. A mark that passes is not exercised and needs no interpolation.
        top, bottom, size = -math.inf, math.inf, 0.0
        for v in range(boundary.shape[1]):
            b = boundary[c, v]
            if b != b:
                return math.nan
            top, bottom, size = max(top, b), min(bottom, b), max(size, abs(b))
        return top + size * 2.0**-30 if phi < 0 else bottom - size * 2.0**-30

    @njit(cache=True)
    def _column_constants(t, rate, carry):
        # What Black-76 computes from the time to expiry alone, once per column instead of once per path:
        # sqrt(t), b·t, the carry factor exp((b - r) t) and the discount factor exp(-r t) (0 past expiry).
        steps = t.shape[0]
        out = np.zeros((4, steps))
        for j in range(steps):
            tj = t[j]
            if tj > 0:
                out[0, j] = math.sqrt(tj)
                out[1, j] = carry * tj
                out[2, j] = math.exp((carry - rate) * tj)
                out[3, j] = math.exp(-rate * tj)
        return out

    @njit(cache=True, inline="always")
    def _black_at(phi, s, k, log_sk, sqrt_t, bt, cf, df, v, with_gamma):
        # opl.runtime.pricing.black._d1_sd / _price / value_delta_gamma for one element (s, k > 0 here),
        # with log(s/k) and the column's constants given.
        log_fk = log_sk + bt
        sd = v * sqrt_t
        if sd > 0:
            d1 = log_fk / sd + 0.5 * sd
        elif log_fk > 0:
            d1 = math.inf
        elif log_fk < 0:
            d1 = -math.inf
        else:
            d1 = 0.0
        d2 = d1 - sd
        nd1 = _ndtr(phi * d1)
        nd2 = _ndtr(phi * d2)
        value = phi * (cf * s * nd1 - df * k * nd2)
        delta = phi * cf * nd1
        gamma = 0.0
        if with_gamma and sd > 0 and s > 0:
            gamma = cf * (_INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)) / (s * sd)
        return value, delta, gamma

    @njit(cache=True, inline="always")
    def _grid_constants(x_grid, logv_grid):
        # The tables' uniform grids: sizes, first nodes and spacings (read once per call, not per element).
        return (x_grid.shape[0], logv_grid.shape[0], x_grid[0], x_grid[1] - x_grid[0], logv_grid[0],
                logv_grid[1] - logv_grid[0])

    @njit(cache=True)
    def _mark_row(start, stop, need, phi, american, with_gamma, s_row, k_row, vol_row, tj, c, sqrt_t, bt, cf, df,
                  eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma,
                  exercise):
        # Elements start..stop of one step's rows where ``need``: `_mark_list` of them.
        idx = np.empty(stop - start, dtype=np.int64)
        n = _gathered(need, start, stop, idx)
        _mark_list(idx, n, phi, american, with_gamma, s_row, k_row, vol_row, tj, c, sqrt_t, bt, cf, df, eep, d_eep,
                   boundary, x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma, exercise)

    @njit(cache=True)
    def _gathered(flags, start, stop, idx):
        # The elements start..stop where ``flags`` written to the head of ``idx``, without a branch per element;
        # returns how many.
        n = 0
        for p in range(start, stop):
            idx[n] = p
            n += flags[p]
        return n

    @njit(cache=True)
    def _mark_list(idx, n, phi, american, with_gamma, s_row, k_row, vol_row, tj, c, sqrt_t, bt, cf, df, eep, d_eep,
                   boundary, x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma, exercise):
        # Elements idx[:n] of one step's rows: opl.runtime.engine.marking.AmericanMarker.mark as (value, delta,
        # gamma, exercise) of strike ``k_row[p]`` at the price ``s_row[p]`` and the model volatility
        # ``vol_row[p]``, ``tj`` years to expiry (the tables' column ``c`` and the column's Black constants
        # given). Every array the loop reads is an argument of this function, read in place: an array handed
        # to a helper per element, even an inlined one, costs its reference count (an atomic add and a call,
        # each way), which was a quarter of a mark.
        nx, nv, x0, dx, v0, dv = _grid_constants(x_grid, logv_grid)
        x_lo, x_hi, v_lo, v_hi = x_grid[0], x_grid[nx - 1], logv_grid[0], logv_grid[nv - 1]
        if tj <= 0:  # expired: the intrinsic value
            for i in range(n):
                p = idx[i]
                intrinsic = max(phi * (s_row[p] - k_row[p]), 0.0)
                value[p], delta[p], gamma[p], exercise[p] = intrinsic, phi if intrinsic > 0 else 0.0, 0.0, intrinsic > 0
            return
        # The smile (opl.runtime.engine.marking.SmileRule.iv) and its two logs first, each in a loop of its own: a
        # mark is a long chain of dependent library calls, and loops of independent calls let the processor
        # overlap the elements' (a tenth of a mark); x = log(k/s) also gives Black's and the tables' log(s/k).
        xs, ivs, lvs = np.empty(n), np.empty(n), np.empty(n)
        for i in range(n):
            p = idx[i]
            xs[i] = math.log(k_row[p] / s_row[p])
        for i in range(n):
            x = xs[i]
            atm = max(floor, vol_row[idx[i]] * (1.0 + spread))
            ivs[i] = max(floor, atm * (1.0 + skew * x + curvature * x * x))
        if american:
            for i in range(n):
                lvs[i] = min(max(math.log(ivs[i]), v_lo), v_hi)
        edge = _boundary_edge(phi, boundary, c) if american else math.nan
        for i in range(n):
            p = idx[i]
            s, kk, x, iv, lv = s_row[p], k_row[p], xs[i], ivs[i], lvs[i]
            intrinsic = max(phi * (s - kk), 0.0)
            if american:
                # Beyond the exercise boundary (k times its ratio at lv) the mark is the intrinsic value whatever
                # Black says, so Black is not computed there; on the near side of the whole column's boundary
                # (`_boundary_edge`: most marks) the ratio itself is not needed.
                far = kk > 0 and (s > kk * edge if phi < 0 else s < kk * edge)
                if not far and phi * (s - kk * _interp_uniform(lv, logv_grid, boundary, c, v0, dv)) >= 0:
                    value[p], delta[p], gamma[p], exercise[p] = (intrinsic, phi * (1.0 if intrinsic > 0 else 0.0),
                                                                 0.0, intrinsic > 0)
                    continue
            val, dlt, gam = _black_at(phi, s, kk, -x, sqrt_t, bt, cf, df, iv, with_gamma)
            if not american:
                value[p], delta[p], gamma[p], exercise[p] = val, dlt, gam, False
                continue
            # The early-exercise premium and its delta, bilinear in the tables of column ``c``.
            fx = (min(max(-x, x_lo), x_hi) - x0) / dx
            fv = (lv - v0) / dv
            ix = min(int(fx), nx - 2)
            m = min(int(fv), nv - 2)
            wx, wv = fx - ix, fv - m
            w00, w01, w10, w11 = (1 - wx) * (1 - wv), (1 - wx) * wv, wx * (1 - wv), wx * wv
            premium = (eep[c, ix, m] * w00 + eep[c, ix, m + 1] * w01 + eep[c, ix + 1, m] * w10
                       + eep[c, ix + 1, m + 1] * w11)
            premium_delta = (d_eep[c, ix, m] * w00 + d_eep[c, ix, m + 1] * w01 + d_eep[c, ix + 1, m] * w10
                             + d_eep[c, ix + 1, m + 1] * w11)
            value[p], delta[p], gamma[p], exercise[p] = (max(val + kk * premium, intrinsic), dlt + premium_delta,
                                                         gam, False)

    @njit(cache=True)
    def _mark_block(start, stop, need, j0, j1, phi, american, with_gamma, f, vol, k, t, col, const, eep, d_eep,
                    boundary, x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma, exercise):
        # Paths start..stop where ``need``, columns j0..j1: `_mark_list` per column. A block, not a path, per
        # call: a call passing arrays pays their reference counts. The arrays are (columns, paths): a step's
        # column of the block is contiguous.
        idx = np.empty(stop - start, dtype=np.int64)
        n = _gathered(need, start, stop, idx)
        for j in range(j0, j1):
            _mark_list(idx, n, phi, american, with_gamma, f[j], k, vol[j], t[j], col[j], const[0, j], const[1, j],
                       const[2, j], const[3, j], eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew,
                       curvature, value[j], delta[j], gamma[j], exercise[j])

    # Two twins of one loop: threads pay off on a month of paths, not on the few points an adjustment quotes
    # (waking the pool costs more than the marks). They are two functions, not one compiled twice: numba's
    # cache keys an entry by name and signature, not by the parallel flag, so one function compiled both
    # ways shares one cache entry, and a process ran whichever twin it compiled first as both.
    @njit(cache=True, parallel=True)
    def _mark_parallel(need, j0, j1, phi, american, with_gamma, f, vol, k, t, col, const, eep, d_eep, boundary,
                       x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma, exercise):
        paths = f.shape[1]
        blocks = (paths + _BLOCK - 1) // _BLOCK
        for b in prange(blocks):  # paths only: a path's numbers do not depend on the thread computing them
            _mark_block(b * _BLOCK, min(paths, (b + 1) * _BLOCK), need, j0, j1, phi, american, with_gamma, f, vol,
                        k, t, col, const, eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature,
                        value, delta, gamma, exercise)

    @njit(cache=True)
    def _mark_serial(need, j0, j1, phi, american, with_gamma, f, vol, k, t, col, const, eep, d_eep, boundary,
                     x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma, exercise):
        _mark_block(0, f.shape[1], need, j0, j1, phi, american, with_gamma, f, vol, k, t, col, const, eep, d_eep,
                    boundary, x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma, exercise)

    @njit(cache=True)
    def _copy_known(need, known, owed, lazy, src_v, src_d, src_g, src_e, v, d, g, e, left, owes):
        # One column of `SeriesMarks._copied`: where ``need`` and ``known`` (the twin marked the element on a path
        # that agrees) the twin's marks copied, unless its gamma is ``owed`` and gamma is asked for (not
        # ``lazy``); ``left`` what is still to compute, ``owes`` what owes its gamma after a lazy mark (the
        # computed elements and the copied ones the twin owed). Returns the number copied.
        count = 0
        for p in range(need.shape[0]):
            n = need[p]
            left[p], owes[p] = n, n
            if not n or not known[p] or (owed[p] and not lazy):
                continue
            v[p], d[p], g[p], e[p] = src_v[p], src_d[p], src_g[p], src_e[p]
            left[p], owes[p] = False, owed[p]
            count += 1
        return count

    @njit(cache=True)
    def _old_row(out, v, old, r):
        # Row ``v`` of ``out`` set to the old marks' row ``r`` (no rows: 0), in one branch-free pass.
        if old.shape[0]:
            for p in range(out.shape[1]):
                out[v, p] = old[r, p]
        else:
            out[v, :] = 0.0

    @njit(cache=True)
    def _mark_where(where, strike, old_value, old_delta, old_gamma, f, vol, phi, american, with_gamma, tj, const,
                    eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma,
                    exercise, in_place):
        # One step's marks of a series with a strike per (variant, path): `_mark_row` where ``where``, the
        # ``old`` marks elsewhere (no rows: 0) and no exercise. A variant quoted at a strike an earlier variant
        # of the path was quoted at copies its marks (a mark depends on the path's price and volatility and
        # the strike only). Variant by variant: its old marks copied whole first (a plain copy of the row, far
        # cheaper than a branch per element: most paths do not hold the series), then its copies, then its
        # own marks in one `_mark_list`, both over the old marks where ``where``.
        # ``in_place`` (value, delta, gamma): that output is its old array itself, whose elsewhere is already
        # the old marks (not copied). Returns the number of marks computed.
        variants, paths = where.shape
        per_strike, rows = strike.shape[0] > 1, old_value.shape[0]
        sqrt_t, bt, cf, df = const[0, 0], const[1, 0], const[2, 0], const[3, 0]
        held, own = np.empty(paths, dtype=np.int64), np.empty(paths, dtype=np.int64)
        count = 0
        for v in range(variants):
            rs, r = v if per_strike else 0, v if rows > 1 else 0
            if not in_place[0]:
                _old_row(value, v, old_value, r)
            if not in_place[1]:
                _old_row(delta, v, old_delta, r)
            if not in_place[2]:
                _old_row(gamma, v, old_gamma, r)
            exercise[v, :] = False
            n, mine = _gathered(where[v], 0, paths, held), 0
            for i in range(n):
                p = held[i]
                kk = strike[rs, p]
                u = 0
                while u < v and not (where[u, p] and strike[u if per_strike else 0, p] == kk):
                    u += 1
                if u < v:
                    value[v, p], delta[v, p], gamma[v, p], exercise[v, p] = (value[u, p], delta[u, p], gamma[u, p],
                                                                             exercise[u, p])
                else:
                    own[mine] = p
                    mine += 1
            _mark_list(own, mine, phi, american, with_gamma, f, strike[rs], vol, tj, 0, sqrt_t, bt, cf, df, eep, d_eep,
                       boundary, x_grid, logv_grid, spread, floor, skew, curvature, value[v], delta[v], gamma[v],
                       exercise[v])
            count += mine
        return count

    # -- margin (opl.runtime.market.margin, opl.runtime.market.combinations) ----------------------------------
    # The formulas are written exactly as the reference writes them (max(a, b) = (a + b + |a - b|) / 2 in
    # the combinations, the same sums in the same order), so a requirement is the reference's bit for bit.
    # Blocks of paths (`_margin_block`): each series' row read once into a block-sized scratch, then the
    # elements one by one — most hold none or a strangle's two legs, paired on numbers. The series' arrays are
    # read where they lie (tuples of arrays, no (series, variants, paths) copy): copying them cost more than the
    # arithmetic. Blocks are independent, so the step's requirement has a parallel twin.

    @njit(cache=True, inline="always")
    def _cmax(a, b):
        return (a + b + abs(a - b)) / 2

    @njit(cache=True, inline="always")
    def _cmin(a, b):
        return (a + b - abs(a - b)) / 2

    @njit(cache=True, inline="always")
    def _at(x, v, c):
        # Element (v, c) of an array broadcast to (variants, paths): its shape is (1 or variants, 1 or paths).
        return x[v if x.shape[0] > 1 else 0, c if x.shape[1] > 1 else 0]

    @njit(cache=True, inline="always")
    def _series_margin(is_call, f, k, premium, fr, czce, otm_weight, floor_weight, r, mr, put_cap, unit):
        # opl.runtime.market.margin.short_option_margin of one lot.
        otm = max(k - f, 0.0) if is_call else max(f - k, 0.0)
        if czce:  # czce_dce
            fm = fr * f * unit
            return premium * unit + max(fm - otm_weight * otm * unit, floor_weight * fm)
        per_unit = premium + max(r * f - otm, mr * (f if is_call else k))  # sse_etf, cboe_reg_t
        if put_cap and not is_call:
            per_unit = min(per_unit, k)
        return per_unit * unit

    @njit(cache=True, inline="always")
    def _spreads(n, is_call, expiry, k, q, margin, short, long, unit):
        # combinations._spreads of one element: each short leg paired with the long legs of its type and expiry.
        total = 0.0
        for i in range(n):
            for j in range(n):
                if i == j or q[i] == 0.0 or q[j] == 0.0 or is_call[i] != is_call[j] or expiry[i] != expiry[j]:
                    continue
                lots = _cmin(short[i], long[j])
                w = k[j] - k[i] if is_call[i] else k[i] - k[j]
                width = (w + abs(w)) / 2 * unit
                total = total + lots * _cmin(margin[i], width)
                short[i] = short[i] - lots
                long[j] = long[j] - lots
        return total

    @njit(cache=True, inline="always")
    def _straddles(n, is_call, expiry, k, premium, q, margin, short, straddle, strangle, unit):
        # combinations._straddles of one element: short calls paired with short puts of the same expiry.
        total = 0.0
        for i in range(n):
            for j in range(n):
                if not is_call[i] or is_call[j] or q[i] == 0.0 or q[j] == 0.0 or expiry[i] != expiry[j]:
                    continue
                ki, kj, mi, mj = k[i], k[j], margin[i], margin[j]
                pairs = straddle * (ki == kj) + strangle * (ki > kj)
                lots = _cmin(short[i], short[j]) * pairs
                other = (mi >= mj) * premium[j] + (mi < mj) * premium[i]
                total = total + lots * (_cmax(mi, mj) + other * unit)
                short[i] = short[i] - lots
                short[j] = short[j] - lots
        return total

    @njit(cache=True, inline="always")
    def _paired_total(n, q, margin, short, total):
        # ``total`` plus the lots no pair took, margined leg by leg (the sum from 0.0, as combinations._paired).
        rest = 0.0
        for i in range(n):
            if q[i] != 0.0:
                rest = rest + short[i] * margin[i]
        return total + rest

    @njit(cache=True, inline="always")
    def _split(n, q, short, long):
        # Signed lots split into short and long (combinations._paired).
        for i in range(n):
            short[i] = (-q[i] + abs(-q[i])) / 2
            long[i] = (q[i] + abs(q[i])) / 2

    @njit(cache=True)
    def _paired(h, is_call, expiry, k, prem, q, margin, short, long, short2, long2, unit, spread, straddle, strangle,
                both_orders):
        # The options' requirement of an element from its h held series (the book's order, no zero lots): spreads
        # first, then straddles; where both can pair, the other order too, the smaller kept
        # (combinations.combination_margin). A pairing that cannot pair adds exact zeros: skipped there.
        has_long, has_call, has_put = False, False, False
        for a in range(h):
            has_long = has_long or q[a] > 0
            has_call = has_call or is_call[a]
            has_put = has_put or not is_call[a]
        can_spread = spread and has_long
        can_straddle = (straddle or strangle) and has_call and has_put
        _split(h, q, short, long)
        first = 0.0
        if can_spread:
            first = first + _spreads(h, is_call, expiry, k, q, margin, short, long, unit)
        if can_straddle:
            first = first + _straddles(h, is_call, expiry, k, prem, q, margin, short, straddle, strangle, unit)
        paired = _paired_total(h, q, margin, short, first)
        if both_orders and can_spread and can_straddle:
            _split(h, q, short2, long2)
            second = 0.0 + _straddles(h, is_call, expiry, k, prem, q, margin, short2, straddle, strangle, unit)
            second = second + _spreads(h, is_call, expiry, k, q, margin, short2, long2, unit)
            paired = _cmin(paired, _paired_total(h, q, margin, short2, second))
        return paired

    # `_paired` of one or two series on numbers (most elements: a strangle's two legs), the same operations in the
    # same order: no arrays to gather into, and no call passing arrays (their reference counts cost more than
    # the arithmetic). With two series a spread needs one type, a straddle both: at most one pair of each.

    @njit(cache=True, inline="always")
    def _one(q, margin):
        # `_paired` of one series: nothing pairs, its short lots are margined alone.
        return 0.0 + (0.0 + (-q + abs(-q)) / 2 * margin)

    @njit(cache=True, inline="always")
    def _spread_step(call_i, k_i, m_i, s_i, k_j, l_j, unit):
        # One (short i, long j) pair of `_spreads`: the amount and the lots paired.
        lots = _cmin(s_i, l_j)
        w = k_j - k_i if call_i else k_i - k_j
        width = (w + abs(w)) / 2 * unit
        return lots * _cmin(m_i, width), lots

    @njit(cache=True, inline="always")
    def _straddle_step(k_i, m_i, p_i, s_i, k_j, m_j, p_j, s_j, straddle, strangle, unit):
        # One (short call i, short put j) pair of `_straddles`: the amount and the lots paired.
        pairs = straddle * (k_i == k_j) + strangle * (k_i > k_j)
        lots = _cmin(s_i, s_j) * pairs
        other = (m_i >= m_j) * p_j + (m_i < m_j) * p_i
        return lots * (_cmax(m_i, m_j) + other * unit), lots

    @njit(cache=True, inline="always")
    def _two_order(spreads_first, call_a, call_b, same_expiry, k_a, p_a, q_a, m_a, k_b, p_b, q_b, m_b, unit,
                   can_spread, can_straddle, straddle, strangle):
        # One order of `_paired` on series a then b (the book's order): `_split`, the pairings, `_paired_total`.
        # A spread pairs one type, a straddle both: one of them at most, so each sees the lots `_split` gave.
        s_a, l_a = (-q_a + abs(-q_a)) / 2, (q_a + abs(q_a)) / 2
        s_b, l_b = (-q_b + abs(-q_b)) / 2, (q_b + abs(q_b)) / 2
        spreads = straddles = 0.0
        if can_spread and same_expiry and call_a == call_b:  # (a, b) then (b, a)
            amount, lots = _spread_step(call_a, k_a, m_a, s_a, k_b, l_b, unit)
            spreads, s_a, l_b = spreads + amount, s_a - lots, l_b - lots
            amount, lots = _spread_step(call_b, k_b, m_b, s_b, k_a, l_a, unit)
            spreads, s_b, l_a = spreads + amount, s_b - lots, l_a - lots
        if can_straddle and same_expiry:  # the call first, whichever slot holds it
            if call_a:
                amount, lots = _straddle_step(k_a, m_a, p_a, s_a, k_b, m_b, p_b, s_b, straddle, strangle, unit)
            else:
                amount, lots = _straddle_step(k_b, m_b, p_b, s_b, k_a, m_a, p_a, s_a, straddle, strangle, unit)
            straddles, s_a, s_b = straddles + amount, s_a - lots, s_b - lots
        if spreads_first:
            first = 0.0
            if can_spread:
                first = first + spreads
            if can_straddle:
                first = first + straddles
        else:
            first = 0.0 + straddles
            first = first + spreads
        return first + (0.0 + s_a * m_a + s_b * m_b)

    @njit(cache=True, inline="always")
    def _two(call_a, same_expiry, k_a, p_a, q_a, m_a, k_b, p_b, q_b, m_b, call_b, unit, spread, straddle, strangle,
             both_orders):
        # `_paired` of two series a, b in the book's order.
        can_spread = spread and (q_a > 0 or q_b > 0)
        can_straddle = (straddle or strangle) and call_a != call_b
        paired = _two_order(True, call_a, call_b, same_expiry, k_a, p_a, q_a, m_a, k_b, p_b, q_b, m_b, unit, can_spread,
                            can_straddle, straddle, strangle)
        if both_orders and can_spread and can_straddle:
            paired = _cmin(paired, _two_order(False, call_a, call_b, same_expiry, k_a, p_a, q_a, m_a, k_b, p_b, q_b,
                                              m_b, unit, can_spread, can_straddle, straddle, strangle))
        return paired

    @njit(cache=True, inline="always")
    def _fill(dst, row, p0, p1, cols, picked):
        # dst[:] = the row's elements p0..p1: one number broadcast, through ``cols`` when picked, else copied.
        if row.shape[0] == 1:
            dst[:] = row[0]
        elif picked:
            for p in range(p1 - p0):
                dst[p] = row[cols[p0 + p]]
        else:
            dst[:] = row[p0:p1]

    @njit(cache=True, inline="always")
    def _same(a, b):
        # Two rates alike, NaN (no such rate in the pack) alike too.
        return a == b or (a != a and b != b)

    @njit(cache=True, inline="always")
    def _bit_at(bits, i):
        # The index of the lowest set bit of ``bits`` from i on.
        while not bits >> i & 1:
            i += 1
        return i

    @njit(cache=True)
    def _margin_block(p0, p1, is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other, summed,
                      futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                      futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out):
        # Elements p0..p1 of every variant (`_book_margin`). Slot by slot first, each slot's row read once in
        # its order into a block-sized scratch (in cache): the lots, the strike, the premium and a lot's own
        # margin, computed for every element without a branch (an element not holding the slot never reads
        # them), and a bit per held slot. Then element by element: a flat one (no bit) holds futures only, one or
        # two series are paired on numbers (`_one`, `_two`), more are gathered in the book's order (`_paired`).
        variants, width = out.shape[0], p1 - p0
        qb, kb, pb, mb = np.empty((n, width)), np.empty((n, width)), np.empty((n, width)), np.empty((n, width))
        f, held_bits = np.empty(width), np.empty(width, dtype=np.int64)
        cc, ce = np.empty(n, dtype=np.bool_), np.empty(n)
        k, prem, q, margin = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        short, long, short2, long2 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        picked = cols.shape[0] > 0
        _fill(f, price, p0, p1, cols, picked)
        for v in range(variants):
            fr, r, mr = futures_rate[v], rate[v], min_rate[v]
            # A lot's margin depends on the variant only through its rates and a per-variant strike or premium:
            # where the rates are the previous variant's (sizes, fees: most sweeps), a series marked per path
            # keeps the margins computed for it (the same numbers: the same operations on the same inputs).
            again = v > 0 and _same(fr, futures_rate[v - 1]) and _same(r, rate[v - 1]) and _same(mr, min_rate[v - 1])
            held_bits[:] = 0
            for i in range(n):
                qi, ki, pi, mi, call, bit = qb[i], kb[i], pb[i], mb[i], is_call[i], 1 << min(i, wide_bit)
                _fill(qi, _row(qtys[i], v), p0, p1, cols, picked)
                if not (again and strikes[i].shape[0] == 1 and premiums[i].shape[0] == 1):
                    _fill(ki, _row(strikes[i], v), p0, p1, cols, picked)
                    _fill(pi, _row(premiums[i], v), p0, p1, cols, picked)
                    for p in range(width):
                        mi[p] = _series_margin(call, f[p], ki[p], pi[p], fr, czce, otm_weight, floor_weight, r, mr,
                                               put_cap, unit)
                for p in range(width):
                    held_bits[p] |= bit * (qi[p] != 0.0)
            lr, hr, orow = _row(lots, v), _row(hedge, v), _row(other, v)
            for p in range(width):
                c = cols[p0 + p] if picked else p0 + p
                paired, bits = 0.0, held_bits[p]
                rest = bits & (bits - 1)
                if bits != 0 and bits >> wide_bit == 0 and rest & (rest - 1) == 0:
                    a = _bit_at(bits, 0)
                    if rest == 0:
                        paired = _one(qb[a, p], mb[a, p])
                    else:
                        b = _bit_at(rest, a + 1)
                        paired = _two(is_call[a], expiry[a] == expiry[b], kb[a, p], pb[a, p], qb[a, p], mb[a, p],
                                      kb[b, p], pb[b, p], qb[b, p], mb[b, p], is_call[b], unit, spread, straddle,
                                      strangle, both_orders)
                elif bits != 0:
                    h = 0
                    for i in range(n):
                        if qb[i, p] != 0.0:
                            q[h], k[h], prem[h], margin[h] = qb[i, p], kb[i, p], pb[i, p], mb[i, p]
                            cc[h], ce[h] = is_call[i], expiry[i]
                            h += 1
                    paired = _paired(h, cc, ce, k, prem, q, margin, short, long, short2, long2, unit, spread,
                                     straddle, strangle, both_orders)
                held = _el(lr, c)
                if summed:
                    held = abs(held) + abs(_el(hr, c)) + abs(_el(orow, c))
                total = fr * f[p] * contract_size * held if futures_underlying else f[p] * contract_size * held
                out[v, p0 + p] = total + paired

    @njit(cache=True)
    def _book_margin(is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other, summed,
                     futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                     futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out):
        # ``strikes``, ``premiums``, ``qtys``: a tuple of n arrays each (broadcast as ``_row`` reads them; a
        # dummy entry when n is 0); element p of ``out`` is path cols[p] (p itself when ``cols`` is empty). The
        # futures lots are ``lots`` or, ``summed``, |lots| + |hedge| + |other| (replay._Margins).
        width = out.shape[1]
        for p0 in range(0, width, _MARGIN_BLOCK):
            _margin_block(p0, min(width, p0 + _MARGIN_BLOCK), is_call, expiry, strikes, premiums, qtys, n, cols,
                          price, lots, hedge, other, summed, futures_rate, czce, otm_weight, floor_weight, rate,
                          min_rate, put_cap, unit, contract_size, futures_underlying, spread, straddle, strangle,
                          both_orders, wide_bit, out)

    # -- the hedge rule and the account after a step (opl.runtime.engine.hedging, opl.runtime.engine.replay) ----

    @njit(cache=True)
    def _npmax(a, b):
        # numpy.maximum: NaN wins.
        if a != a or b != b:
            return math.nan
        return a if a >= b else b

    @njit(cache=True)
    def _hedge_rule(held_delta, short, static, hedge, d, active, keep, band, lots_per_option, fee, costs, equity,
                    month_pnl, lots_traded, trades, new):
        # ``held_delta`` Σ qty × delta and ``short`` Σ max(-qty, 0) over the options held (option_sums).
        variants, paths = hedge.shape
        for v in range(variants):
            for p in range(paths):
                size = short[v, p]
                other = held_delta[v, p] * lots_per_option + static[v, p]
                h = hedge[v, p]
                target = keep * d[p] * size
                out = h
                if active[v, p] and abs(other + h - target) > band * size:
                    out = np.rint(target - other)
                new[v, p] = out
                trade = out - h
                if trade != 0:
                    amount = -(abs(trade) * fee[v])
                    costs[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
                    lots_traded[v, p] += np.int64(np.rint(abs(trade)))
                    trades[v, p] += 1

    @njit(cache=True)
    def _account_block(p0, p1, equity, requirement, capital, margin_buffer, calls, liquidate, peak_margin, peak,
                       max_dd):
        # replay._Pass._requirement's account for paths p0..p1 of every variant: the call, the liquidation
        # decided, the peaks and the drawdown.
        for v in range(equity.shape[0]):
            for p in range(p0, p1):
                e, r = equity[v, p], requirement[v, p]
                call = e < r and r > 0
                calls[v, p] += call
                liquidate[v, p] = call and e < (1.0 - margin_buffer) * r
                peak_margin[v, p] = _npmax(peak_margin[v, p], r / capital)
                top = _npmax(peak[v, p], e)
                peak[v, p] = top
                max_dd[v, p] = _npmax(max_dd[v, p], (top - e) / top)

    @njit(cache=True)
    def _account(equity, requirement, capital, margin_buffer, calls, liquidate, peak_margin, peak, max_dd):
        _account_block(0, equity.shape[1], equity, requirement, capital, margin_buffer, calls, liquidate,
                       peak_margin, peak, max_dd)

    @njit(cache=True)
    def _close_lots(lots, mask, fee, bucket, equity, month_pnl, counter, out):
        # opl.runtime.engine.replay._close_all for one position: costs booked and lots counted where ``mask``.
        variants, paths = lots.shape
        for v in range(variants):
            for p in range(paths):
                q = lots[v, p]
                if mask[v, p]:
                    if q != 0:
                        amount = -(abs(q) * fee[v])
                        bucket[v, p] += amount
                        equity[v, p] += amount
                        month_pnl[v, p] += amount
                        counter[v, p] += np.int64(np.rint(abs(q)))
                    out[v, p] = 0.0
                else:
                    out[v, p] = q


    # -- the step's bookings (opl.runtime.engine.replay._Pass._interest and _mark) --------------------------
    # A slot's marks are one row for every variant (the month's tables, per path) or a row per variant (the
    # series the adjustment module trades): ``rows`` arrays are (1, paths) or (variants, paths). Each amount
    # is computed as the reference writes it and added to its bucket, the equity and the month's P&L in the
    # reference's order, so the ledger is the reference's bit for bit.

    @njit(cache=True)
    def _add_products(acc, qty, rows, short):
        # acc += qty * rows (a slot's term of Book.option_value, option_delta); short += max(-qty, 0)
        # (Book.short_lots) unless ``short`` is empty.
        variants, paths = acc.shape
        per_variant = rows.shape[0] > 1
        shorts = short.shape[0] > 0
        for v in range(variants):
            r = v if per_variant else 0
            for p in range(paths):
                q = qty[v, p]
                acc[v, p] = acc[v, p] + q * rows[r, p]
                if shorts:
                    short[v, p] = short[v, p] + max(-q, 0.0)

    @njit(cache=True)
    def _book_move(qty, before, after, scale, bucket, equity, month_pnl):
        # ledger.book(bucket, qty * (after - before) * scale, equity, month_pnl): a slot marked to market.
        variants, paths = qty.shape
        per_before, per_after = before.shape[0] > 1, after.shape[0] > 1
        for v in range(variants):
            rb = v if per_before else 0
            ra = v if per_after else 0
            for p in range(paths):
                amount = qty[v, p] * (after[ra, p] - before[rb, p]) * scale
                bucket[v, p] += amount
                equity[v, p] += amount
                month_pnl[v, p] += amount

    @njit(cache=True)
    def _book_interest(equity, capital, option_value, mult, paid, units, previous, cs, growth, margin_held,
                       margin_growth, deposit, interest, month_pnl):
        # replay._Pass._interest: the cash (equity - capital - the options' value, less the units held where
        # they were paid for) grown over the step, and the deposit's own rate where it differs.
        variants, paths = equity.shape
        for v in range(variants):
            for p in range(paths):
                cash = equity[v, p] - capital - option_value[v, p] * mult
                if paid:
                    cash = cash - units[v, p] * previous[p] * cs
                amount = cash * growth
                if deposit:
                    amount = amount + margin_held[v, p] * margin_growth
                interest[v, p] += amount
                equity[v, p] += amount
                month_pnl[v, p] += amount

    @njit(cache=True)
    def _book_carry(static, hedge, pending, goods, any_goods, previous, price, cs, storage, funding, span,
                    year_days, premium, hedge_pnl, assignment, funding_pnl, equity, month_pnl):
        # replay._Pass._mark after the options: the strategy's futures, the hedge, futures awaiting their close
        # (not the month's P&L) and delivered goods with their storage and funding.
        variants, paths = equity.shape
        for v in range(variants):
            for p in range(paths):
                df = price[p] - previous[p]
                amount = static[v, p] * df * cs
                premium[v, p] += amount
                equity[v, p] += amount
                month_pnl[v, p] += amount
                amount = hedge[v, p] * df * cs
                hedge_pnl[v, p] += amount
                equity[v, p] += amount
                month_pnl[v, p] += amount
                amount = pending[v, p] * df * cs
                assignment[v, p] += amount
                equity[v, p] += amount
                if any_goods:
                    held = goods[v, p]
                    amount = held * df * cs
                    assignment[v, p] += amount
                    equity[v, p] += amount
                    amount = -held * cs * storage * span
                    assignment[v, p] += amount
                    equity[v, p] += amount
                    amount = -held * cs * price[p] * funding * span / year_days
                    funding_pnl[v, p] += amount
                    equity[v, p] += amount


    @njit(cache=True)
    def _any_short_exercised(qty, exercise):
        # Whether any short lot sits in the holder's exercise region (replay._Pass._exercised), stopping at
        # the first: most steps have none.
        variants, paths = qty.shape
        per_variant = exercise.shape[0] > 1
        for v in range(variants):
            r = v if per_variant else 0
            for p in range(paths):
                if qty[v, p] < 0 and exercise[r, p]:
                    return True
        return False


    @njit(cache=True)
    def _book_sold(sold, scale, fee, assignment, costs, equity):
        # replay._Pass._previous_decisions' goods sold: ledger.book("assignment", sold * cs * basis, equity), then
        # ledger.cost(cost.futures(sold, closing=True), equity), element by element in that order.
        variants, paths = sold.shape
        cs, basis = scale
        for v in range(variants):
            for p in range(paths):
                q = sold[v, p]
                amount = q * cs * basis
                assignment[v, p] += amount
                e = equity[v, p] + amount
                amount = -(abs(q) * fee[v])
                costs[v, p] += amount
                equity[v, p] = e + amount

    @njit(cache=True)
    def _futures_lots(static, hedge, other, out):
        # replay._Margins: |the strategy's futures| + |the hedge| + |futures from exercise and goods|.
        variants, paths = out.shape
        for v in range(variants):
            for p in range(paths):
                out[v, p] = abs(static[v, p]) + abs(hedge[v, p]) + abs(other[v, p])


    @njit(cache=True)
    def _exercise(qty, hit, phi, lots_per_option, price, strike, value, mult, fee_assigned, fee_exercised,
                  take_delivery, assignment, costs, equity, month_pnl, assigned, pending, new_qty, goods):
        # replay._Pass._assign for one slot: where ``hit``, the forfeited time value booked, the fee paid, the
        # futures (or, for a delivered short, goods) the lots become; elsewhere nothing changes.
        variants, paths = qty.shape
        per_strike, per_value = strike.shape[0] > 1, value.shape[0] > 1
        for v in range(variants):
            rs = v if per_strike else 0
            rv = v if per_value else 0
            for p in range(paths):
                q = qty[v, p]
                goods[v, p] = 0.0
                if not hit[v, p]:
                    new_qty[v, p] = q
                    continue
                lots = q * phi * lots_per_option
                intrinsic = _npmax(phi * (price[p] - strike[rs, p]), 0.0)
                amount = -q * (value[rv, p] - intrinsic) * mult
                assignment[v, p] += amount
                equity[v, p] += amount
                month_pnl[v, p] += amount
                amount = -((fee_assigned[v] if q < 0 else fee_exercised[v]) * abs(q))
                costs[v, p] += amount
                equity[v, p] += amount
                month_pnl[v, p] += amount
                if q < 0:
                    assigned[v, p] = True
                    if take_delivery and lots > 0:
                        goods[v, p] = lots
                        lots = lots - lots
                pending[v, p] = pending[v, p] + lots
                new_qty[v, p] = 0.0

    # -- a step's stages fused (opl.runtime.engine.replay._Pass on the fast engine) ---------------------------
    # Each kernel below does several stages of a step in one call, the same amounts added to the same buckets
    # in the reference's order for each element, so the ledger is the one the stage-by-stage kernels above
    # give, bit for bit. A book's option slots come as tuples of arrays (read-only views, `_grid`; a dummy
    # entry and n = 0 when there are none): one call a step instead of one per slot and stage, each paying
    # its arguments' conversion. The loops run a variant's row at a time, slot by slot: a tuple's array
    # fetched per element costs its reference counts, and a row's loop stays simple.

    @njit(cache=True, inline="always")
    def _row(x, v):
        # Row v of an array broadcast to (variants, paths) (`_grid`): (paths,), or (1,) for a number.
        return x[v if x.shape[0] > 1 else 0]

    @njit(cache=True, inline="always")
    def _el(row, p):
        return row[p if row.shape[0] > 1 else 0]

    @njit(cache=True)
    def _settle_block(p0, p1, equity, capital, mult, interest_on, paid, units, previous, cs, growth, margin_held,
                      margin_growth, deposit, qtys, befores, afters, valued, n, static, hedge, pending, goods,
                      any_goods, price, storage, funding, span, year_days, close_pending, fee, interest, premium,
                      hedge_pnl, assignment, funding_pnl, costs, futures_lots, month_pnl):
        # replay._Pass._interest, the bookings of _mark and the close of the futures from exercise
        # (_previous_decisions) where ``close_pending``: interest on the cash at the step's start (``valued``
        # slots' ``befores`` marks), each slot's move, the futures' and goods' carry, then the close.
        variants = equity.shape[0]
        value = np.zeros(p1 - p0)
        for v in range(variants):
            if interest_on:
                value[:] = 0.0
                for i in range(n):
                    if valued[i]:
                        q, b = _row(qtys[i], v), _row(befores[i], v)
                        for p in range(p0, p1):
                            value[p - p0] = value[p - p0] + _el(q, p) * _el(b, p)
                for p in range(p0, p1):
                    cash = equity[v, p] - capital - value[p - p0] * mult
                    if paid:
                        cash = cash - units[v, p] * previous[p] * cs
                    amount = cash * growth
                    if deposit:
                        amount = amount + margin_held[v, p] * margin_growth
                    interest[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
            for i in range(n):
                q, b, a = _row(qtys[i], v), _row(befores[i], v), _row(afters[i], v)
                for p in range(p0, p1):
                    amount = _el(q, p) * (_el(a, p) - _el(b, p)) * mult
                    premium[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
            st = _row(static, v)
            for p in range(p0, p1):
                e, pnl = equity[v, p], month_pnl[v, p]
                df = price[p] - previous[p]
                amount = _el(st, p) * df * cs
                premium[v, p] += amount
                e += amount
                pnl += amount
                amount = hedge[v, p] * df * cs
                hedge_pnl[v, p] += amount
                e += amount
                pnl += amount
                amount = pending[v, p] * df * cs
                assignment[v, p] += amount
                e += amount
                if any_goods:
                    held = goods[v, p]
                    amount = held * df * cs
                    assignment[v, p] += amount
                    e += amount
                    amount = -held * cs * storage * span
                    assignment[v, p] += amount
                    e += amount
                    amount = -held * cs * price[p] * funding * span / year_days
                    funding_pnl[v, p] += amount
                    e += amount
                q = pending[v, p]
                if close_pending and q != 0:
                    amount = -(abs(q) * fee[v])
                    costs[v, p] += amount
                    e += amount
                    futures_lots[v, p] += np.int64(np.rint(abs(q)))
                    pending[v, p] = 0.0
                equity[v, p], month_pnl[v, p] = e, pnl

    # The fused step's serial and parallel twins (two functions: see the marks' twins): one block of every path,
    # or blocks of paths on the thread pool; an element's arithmetic is the same either way.
    @njit(cache=True)
    def _settle(equity, capital, mult, interest_on, paid, units, previous, cs, growth, margin_held, margin_growth,
                deposit, qtys, befores, afters, valued, n, static, hedge, pending, goods, any_goods, price, storage,
                funding, span, year_days, close_pending, fee, interest, premium, hedge_pnl, assignment, funding_pnl,
                costs, futures_lots, month_pnl):
        _settle_block(0, equity.shape[1], equity, capital, mult, interest_on, paid, units, previous, cs, growth,
                      margin_held, margin_growth, deposit, qtys, befores, afters, valued, n, static, hedge, pending,
                      goods, any_goods, price, storage, funding, span, year_days, close_pending, fee, interest, premium,
                      hedge_pnl, assignment, funding_pnl, costs, futures_lots, month_pnl)

    @njit(cache=True, parallel=True)
    def _settle_parallel(equity, capital, mult, interest_on, paid, units, previous, cs, growth, margin_held,
                         margin_growth, deposit, qtys, befores, afters, valued, n, static, hedge, pending, goods,
                         any_goods, price, storage, funding, span, year_days, close_pending, fee, interest, premium,
                         hedge_pnl, assignment, funding_pnl, costs, futures_lots, month_pnl):
        paths = equity.shape[1]
        for b in prange((paths + _BLOCK - 1) // _BLOCK):  # paths are independent: the same bits on any thread
            _settle_block(b * _BLOCK, min(paths, (b + 1) * _BLOCK), equity, capital, mult, interest_on, paid, units,
                          previous, cs, growth, margin_held, margin_growth, deposit, qtys, befores, afters, valued, n,
                          static, hedge, pending, goods, any_goods, price, storage, funding, span, year_days,
                          close_pending, fee, interest, premium, hedge_pnl, assignment, funding_pnl, costs,
                          futures_lots, month_pnl)

    @njit(cache=True)
    def _close_book(mask, qtys, n, option_fee, new_qtys, futures, m, futures_fee, bucket, equity, month_pnl,
                    option_lots, futures_lots):
        # replay._close_all: where ``mask`` the option slots (into ``new_qtys``) and then the futures
        # (``futures``, in place: the strategy's legs and the hedge) closed, their costs booked and lots counted.
        # A slot's row copied whole first (a copy runs at memory speed), then closed where ``mask`` (an exit
        # closes a few paths; an expiry all).
        variants, paths = equity.shape
        for v in range(variants):
            for i in range(n):
                q, out = _row(qtys[i], v), new_qtys[i][v]
                if q.shape[0] == 1:
                    out[:] = q[0]
                else:
                    out[:] = q
                for p in range(paths):
                    if not mask[v, p]:
                        continue
                    lots = out[p]
                    out[p] = 0.0
                    if lots != 0:
                        amount = -(abs(lots) * option_fee[v])
                        bucket[v, p] += amount
                        equity[v, p] += amount
                        month_pnl[v, p] += amount
                        option_lots[v, p] += np.int64(np.rint(abs(lots)))
            for i in range(m):
                held = futures[i]
                for p in range(paths):
                    if not mask[v, p]:
                        continue
                    lots = held[v, p]
                    if lots != 0:
                        amount = -(abs(lots) * futures_fee[v])
                        bucket[v, p] += amount
                        equity[v, p] += amount
                        month_pnl[v, p] += amount
                        futures_lots[v, p] += np.int64(np.rint(abs(lots)))
                    held[v, p] = 0.0

    @njit(cache=True, inline="always")
    def _compare(op, x, bound):
        # triggers._OPS by code: <, >, <=, >=, ==, != (EXIT_OPS).
        if op == 0:
            return x < bound
        if op == 1:
            return x > bound
        if op == 2:
            return x <= bound
        if op == 3:
            return x >= bound
        if op == 4:
            return x == bound
        return x != bound

    @njit(cache=True)
    def _exits_in_place(month_pnl, denominator, start, all_required, ops, bounds, stop_loss, stop_level, force,
                        is_open, early, exits, early_exits, qtys, n, option_fee, futures, m, futures_fee, bucket, equity,
                        option_lots, futures_lots, held):
        # replay._Pass._exit_flags for pnl_percent triggers, then replay._close_all where a position exits:
        # ``start`` the other triggers' verdict (OR-ed under first_hit, AND-ed under all_required), each
        # pnl_percent trigger compared on the month's P&L, the stop loss, ``force`` (the guard, a cut cycle);
        # where a position is open and that holds, the exit counted and its option lots (``qtys``, in place) then
        # its futures (``futures``: the strategy's legs and the hedge, in place) closed as `_close_book` closes
        # them. ``held[i]``: slot i still holds lots somewhere (written only after an exit). Returns the exits:
        # most steps have a few, and a closed position's triggers are not evaluated.
        # A variant's exits are closed before the next variant's are decided (an exit writes only its own
        # position's elements), and only there: the paths exiting are listed, not the rows scanned for them.
        variants, paths = month_pnl.shape
        exiting = np.empty(paths, dtype=np.int64)
        hits = 0
        for v in range(variants):
            count = _exiting(v, month_pnl, denominator, start, all_required, ops, bounds, stop_loss, stop_level, force,
                             is_open, early, exits, early_exits, exiting)
            if count == 0:
                continue  # a variant with no exit: nothing of its rows is read
            hits += count
            # Position by position, a row at a time (an array fetched from a tuple per element costs its
            # reference counts): per element the order of `_close_book`, every slot then the futures.
            for i in range(n):
                _close_listed(qtys[i][v], exiting, count, option_fee[v], bucket[v], equity[v], month_pnl[v],
                              option_lots[v])
            for i in range(m):
                _close_listed(futures[i][v], exiting, count, futures_fee[v], bucket[v], equity[v], month_pnl[v],
                              futures_lots[v])
        if hits:
            for i in range(n):
                held[i] = _any_lots(qtys[i])
        return hits

    @njit(cache=True)
    def _exiting(v, month_pnl, denominator, start, all_required, ops, bounds, stop_loss, stop_level, force, is_open,
                 early, exits, early_exits, out):
        # `_exits_in_place`'s decision on variant v's open positions: the exits counted and closed (``is_open``),
        # their paths listed in ``out``; returns how many.
        count = 0
        rules = ops.shape[0]
        for p in range(month_pnl.shape[1]):
            if not is_open[v, p]:
                continue
            hit = start
            if rules > 0:
                pnl = month_pnl[v, p] / denominator[v, p] * 100.0
                for t in range(rules):
                    flag = _compare(ops[t], pnl, bounds[t])
                    hit = (hit and flag) if all_required else (hit or flag)
            if stop_loss:
                hit = hit or month_pnl[v, p] <= stop_level
            if hit or force:
                out[count] = p
                count += 1
                exits[v, p] += 1
                if early:
                    early_exits[v, p] += 1
                is_open[v, p] = False
        return count

    @njit(cache=True)
    def _close_listed(lots, listed, count, fee, bucket, equity, month_pnl, counter):
        # One position's row closed on the paths ``listed[:count]`` (`_close_book`'s arithmetic): costs booked,
        # lots counted, zeroed.
        for k in range(count):
            p = listed[k]
            q = lots[p]
            lots[p] = 0.0
            if q != 0:
                amount = -(abs(q) * fee)
                bucket[p] += amount
                equity[p] += amount
                month_pnl[p] += amount
                counter[p] += np.int64(np.rint(abs(q)))

    @njit(cache=True)
    def _any_lots(lots):
        # Whether any lot is held (Slot.held), stopping at the first: a held slot's first elements mostly are.
        flat = lots.reshape(-1)
        for e in range(flat.shape[0]):
            if flat[e] != 0.0:
                return True
        return False

    @njit(cache=True)
    def _shorts_exercised(qtys, flags, n, out):
        # any_short_exercised of n slots in one call: out[i] whether slot i is short anywhere its exercise flag
        # is set, stopping at the first such element of each slot.
        for i in range(n):
            out[i] = _short_exercised(qtys[i], flags[i])

    @njit(cache=True)
    def _short_exercised(q, f):
        # Whether lots ``q`` are short anywhere flags ``f`` (broadcast to them) are set. The flag read first: few
        # elements are in the exercise region, and the lots of the others are not read; flags per path (a
        # month's marks) are read once for every variant.
        if f.shape[0] == 1 and f.shape[1] == q.shape[1] > 1:
            flag = f[0]
            for p in range(flag.shape[0]):
                if flag[p]:
                    for v in range(q.shape[0]):
                        if q[v, p] < 0:
                            return True
            return False
        for v in range(q.shape[0]):
            lots, flag = _row(q, v), _row(f, v)
            for p in range(lots.shape[0]):
                if _el(flag, p) and lots[p] < 0:
                    return True
        return False

    @njit(cache=True)
    def _hedge_step_block(p0, p1, qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option, fee, costs,
                          equity, month_pnl, lots_traded, trades, new):
        # replay._hedge_compiled: the options' Σ qty × delta and short lots (option_sums), then _hedge_rule.
        variants = hedge.shape[0]
        held_delta, short = np.zeros(p1 - p0), np.zeros(p1 - p0)
        for v in range(variants):
            held_delta[:] = 0.0
            short[:] = 0.0
            for i in range(n):
                q, m = _row(qtys[i], v), _row(deltas[i], v)
                for p in range(p0, p1):
                    lots = _el(q, p)
                    held_delta[p - p0] = held_delta[p - p0] + lots * _el(m, p)
                    short[p - p0] = short[p - p0] + max(-lots, 0.0)
            st = _row(static, v)
            for p in range(p0, p1):
                size = short[p - p0]
                other = held_delta[p - p0] * lots_per_option + _el(st, p)
                h = hedge[v, p]
                target = keep * d[p] * size
                # Without a branch on the position being active (active and idle paths alternate at random, and the
                # mispredicted branch cost more than the rounding): the trade is rounded everywhere, kept where due.
                due = active[v, p] & (abs(other + h - target) > band * size)
                out = np.rint(target - other) if due else h
                new[v, p] = out
                trade = out - h
                if trade != 0:
                    amount = -(abs(trade) * fee[v])
                    costs[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
                    lots_traded[v, p] += np.int64(np.rint(abs(trade)))
                    trades[v, p] += 1

    @njit(cache=True)  # the twins, as `_settle`'s
    def _hedge_step(qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option, fee, costs, equity,
                    month_pnl, lots_traded, trades, new):
        _hedge_step_block(0, hedge.shape[1], qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option,
                          fee, costs, equity, month_pnl, lots_traded, trades, new)

    @njit(cache=True, parallel=True)
    def _hedge_step_parallel(qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option, fee, costs, equity,
                             month_pnl, lots_traded, trades, new):
        paths = hedge.shape[1]
        for b in prange((paths + _BLOCK - 1) // _BLOCK):  # paths are independent: the same bits on any thread
            _hedge_step_block(b * _BLOCK, min(paths, (b + 1) * _BLOCK), qtys, deltas, n, static, hedge, d, active, keep,
                              band, lots_per_option, fee, costs, equity, month_pnl, lots_traded, trades, new)

    @njit(cache=True)
    def _requirement_block(p0, p1, is_call, expiry, strikes, premiums, qtys, n, price, static, hedge, other,
                           futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                           futures_underlying, spread, straddle, strangle, both_orders, wide_bit, equity, capital,
                           margin_buffer, calls, liquidate, peak_margin, peak, max_dd, out):
        # replay._Pass._requirement for paths p0..p1: the book's margin (|futures| summed), then the account,
        # while the block's elements are in cache.
        _margin_block(p0, p1, is_call, expiry, strikes, premiums, qtys, n, np.zeros(0, dtype=np.int64), price, static,
                      hedge, other, True, futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit,
                      contract_size, futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out)
        _account_block(p0, p1, equity, out, capital, margin_buffer, calls, liquidate, peak_margin, peak, max_dd)

    # The serial and parallel twins of the step's requirement (two functions: see the marks' twins above). A
    # path's numbers do not depend on the block or the thread: the same bits with one thread or several.
    @njit(cache=True)
    def _requirement_account(is_call, expiry, strikes, premiums, qtys, n, price, static, hedge, other, futures_rate,
                             czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                             futures_underlying, spread, straddle, strangle, both_orders, wide_bit, equity, capital,
                             margin_buffer, calls, liquidate, peak_margin, peak, max_dd, out):
        paths = out.shape[1]
        for p0 in range(0, paths, _MARGIN_BLOCK):
            _requirement_block(p0, min(paths, p0 + _MARGIN_BLOCK), is_call, expiry, strikes, premiums, qtys, n, price,
                               static, hedge, other, futures_rate, czce, otm_weight, floor_weight, rate, min_rate,
                               put_cap, unit, contract_size, futures_underlying, spread, straddle, strangle,
                               both_orders, wide_bit, equity, capital, margin_buffer, calls, liquidate, peak_margin,
                               peak, max_dd, out)

    @njit(cache=True, parallel=True)
    def _requirement_parallel(is_call, expiry, strikes, premiums, qtys, n, price, static, hedge, other, futures_rate,
                              czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                              futures_underlying, spread, straddle, strangle, both_orders, wide_bit, equity, capital,
                              margin_buffer, calls, liquidate, peak_margin, peak, max_dd, out):
        paths = out.shape[1]
        blocks = (paths + _MARGIN_BLOCK - 1) // _MARGIN_BLOCK
        for b in prange(blocks):
            p0 = b * _MARGIN_BLOCK
            _requirement_block(p0, min(paths, p0 + _MARGIN_BLOCK), is_call, expiry, strikes, premiums, qtys, n, price,
                               static, hedge, other, futures_rate, czce, otm_weight, floor_weight, rate, min_rate,
                               put_cap, unit, contract_size, futures_underlying, spread, straddle, strangle,
                               both_orders, wide_bit, equity, capital, margin_buffer, calls, liquidate, peak_margin,
                               peak, max_dd, out)


def _plain(x, shape) -> np.ndarray:
    """``x`` as a C-ordered, writable float64 array of ``shape`` (broadcast, copied if need be): one array type
    per kernel argument, so each kernel is compiled once. An array already so is returned as is, checked by
    its flags (most are: np.require's own checks cost more than many of the kernels it feeds)."""
    if _ready(x, shape, np.float64):
        return x
    x = np.asarray(x, dtype=float)
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    return np.require(x, dtype=float, requirements=["C", "W"])


def _ready(x, shape, dtype) -> bool:
    """Whether ``x`` is already a C-ordered, writable array of ``shape`` and ``dtype``."""
    return (type(x) is np.ndarray and x.shape == shape and x.dtype == dtype and x.flags.c_contiguous
            and x.flags.writeable)


def _rows_c(x, shape) -> np.ndarray:
    """`_rows` as a C-ordered float64 array (a strided or broadcast slot attribute copied)."""
    x = _rows(x, shape)
    return x if x.dtype == np.float64 and x.flags.c_contiguous else np.ascontiguousarray(x, dtype=float)


@lru_cache(maxsize=64)
def _stacked(is_call: bool, times: tuple[float, ...], rate: float, carry: float):
    """`opl.runtime.engine.marking`'s tables for several times to expiry, stacked on a first axis."""
    from opl.runtime.engine.deadline import check
    from opl.runtime.engine.marking import _tables, prepare_tables

    prepare_tables(is_call, times, rate, carry)  # the expiries' marches shared (a few, not one per table)
    parts = []
    for t in times:
        check()  # a new hourly grid is hundreds of tables, tens of seconds: stoppable between them
        parts.append(_tables(is_call, t, rate, carry))
    return tuple(np.ascontiguousarray(np.stack([p[n] for p in parts])) for n in range(3))


@lru_cache(maxsize=1)
def _no_tables():
    """Empty tables of the grids' shape for European marks (the kernel's argument types stay the same)."""
    from opl.runtime.engine.marking import _LOGV, _X

    return np.zeros((1, len(_X), len(_LOGV))), np.zeros((1, len(_LOGV)))


class _Tables(NamedTuple):
    """What the mark kernel reads of a series' times to expiry ``t`` (S,): the tables' column of each time
    ``col``, the times' Black constants ``const`` (4, S) and the stacked tables (empty for European marks)."""

    t: np.ndarray
    col: np.ndarray
    const: np.ndarray
    eep: np.ndarray
    d_eep: np.ndarray
    boundary: np.ndarray


@lru_cache(maxsize=256)
def _series_tables(is_call: bool, american: bool, times: tuple[float, ...], rate: float, carry: float) -> _Tables:
    """The `_Tables` of ``times``: a month's grid, or one step's time of a quote. Cached: every month of a run
    has the same grid, and a quote the times of the month's steps."""
    t = np.array(times, dtype=float)
    col = np.zeros(t.shape, dtype=np.int64)
    eep, boundary = _no_tables()
    d_eep = eep
    alive = tuple(sorted({x for x in times if x > 0}))
    if american and alive:
        index = {x: n for n, x in enumerate(alive)}
        col = np.array([index.get(x, 0) for x in times], dtype=np.int64)
        eep, d_eep, boundary = _stacked(is_call, alive, rate, carry)
    return _Tables(t, col, _column_constants(t, rate, carry), eep, d_eep, boundary)


@lru_cache(maxsize=1)
def _grids():
    """The tables' grids (x, log v), imported once: every quote asks for them."""
    from opl.runtime.engine.marking import _LOGV, _X

    return _X, _LOGV


class SeriesMarks:
    """One option series' marks on a month's paths: ``value``, ``delta``, ``gamma``, ``exercise``, each (P, S),
    for ``strike`` (P,) along ``forward`` (P, S) with the model volatility ``vol`` (P, S), ``t`` (S,) years to
    expiry per column (`mark_series` for the formulas).

    `mark` computes them where asked, a block of columns on some paths at a time; an element never marked
    stays 0 (value, delta, gamma) and False (exercise). The replay marks a base leg's column on the paths
    holding it only: half the month's marks of the jujube strangle are on paths that closed or rolled it.
    """

    def __init__(self, *, is_call: bool, american: bool, forward: np.ndarray, vol: np.ndarray, strike: np.ndarray,
                 t: np.ndarray, smile, rate: float, carry: float = 0.0, gamma: bool = True):
        # One array type per argument (C order, writable), so the kernel is compiled once, not per flag set;
        # the paths' arrays transposed to (columns, paths), free for the month's (opl.runtime.engine.replay._Month
        # passes them so: checked here, not copied) and the quotes' single columns.
        forward = np.asarray(forward, dtype=float)
        shape = forward.shape
        vol = np.asarray(vol, dtype=float)
        if vol.shape != shape:
            vol = np.broadcast_to(vol, shape)
        tables = _series_tables(bool(is_call), bool(american), tuple(float(x) for x in np.ravel(t)), float(rate),
                                float(carry))
        # One allocation for the month's marks (zero pages: an element never marked reads 0).
        marks = np.zeros((3, *shape[::-1]))
        out = (marks[0], marks[1], marks[2], np.zeros(shape[::-1], dtype=np.bool_))
        # (paths, columns) views: a step's column of a month is contiguous for the step's kernels
        self.value, self.delta, self.gamma, self.exercise = (a.T for a in out)
        self.complete = False  # every element marked: nothing left to do (the arrays may be read-only now)
        self.done = None  # (S, P) what was marked, when tracked (`track`)
        self.with_gamma = bool(gamma)
        self.twin: tuple["SeriesMarks", np.ndarray] | None = None  # (a series, paths where its marks are ours)
        self.marked: dict[int, np.ndarray] = {}  # column -> (P,) the elements marked there (`mark`'s calls)
        # Column -> (P,) elements marked without their gamma (`mark` with ``gamma=False``), until `gamma_at`.
        self.gamma_owed: dict[int, np.ndarray] = {}
        self.inputs = (_plain(forward.T, shape[::-1]), _plain(vol.T, shape[::-1]))  # prices, volatilities (S, P)
        self._head = (1.0 if is_call else -1.0, bool(american))
        self._args = (*self.inputs, _plain(strike, shape[:1]), tables.t, tables.col, tables.const, tables.eep,
                      tables.d_eep, tables.boundary, *_grids(), float(smile.spread), float(smile.floor),
                      float(smile.skew), float(smile.curvature))

    def mark(self, where: np.ndarray | None = None, columns: tuple[int, int] | None = None,
             gamma: bool = True) -> None:
        """Mark the paths ``where`` (P,) bool (all by default) at columns ``columns`` = (first, stop) (all).

        ``gamma=False`` leaves gamma out (its ``exp`` is a tenth of a mark) when the series has one: the
        elements are remembered as owing it, and `gamma_at` computes it where someone reads it."""
        if self.complete:
            return
        paths, steps = self.value.shape
        j0, j1 = columns if columns is not None else (0, steps)
        whole = where is None and (j0, j1) == (0, steps)
        need = np.ones(paths, dtype=np.bool_) if where is None else _plain_bool(where, (paths,))
        if self.done is not None:  # marks shared by several replays: what one marked is not marked again
            need = need & ~self.done[j0:j1].all(axis=0)
            self.done[j0:j1] |= need
            where = need
        lazy = self.with_gamma and not gamma
        if need is where:
            need = need.copy()  # kept in `marked`: the caller's array may change
        for j in range(j0, j1):
            known = self.marked.get(j)
            self.marked[j] = need if known is None else known | need
        owes = need
        if self.twin is not None and j1 == j0 + 1 and where is not None:
            need, owes = self._copied(need, j0, lazy)
        rows = paths if where is None else int(np.count_nonzero(need))
        if rows:
            self._run(need, j0, j1, self.with_gamma and not lazy, rows * (j1 - j0))
        if lazy and (rows or owes is not need):
            for j in range(j0, j1):
                owed = self.gamma_owed.get(j)
                self.gamma_owed[j] = owes.copy() if owed is None else owed | owes
        self.complete = whole and not lazy

    def share(self, source: "SeriesMarks", same: np.ndarray) -> None:
        """Take ``source``'s marks on the paths ``same`` (P,) where it has them: a series of the same option on
        paths whose prices and volatilities are these at every step (`opl.runtime.engine.replay._Month.share`),
        so its marks are the numbers this series would compute there."""
        self.twin = (source, _plain_bool(same, self.value.shape[:1]))

    def _copied(self, need: np.ndarray, j: int, lazy: bool) -> tuple[np.ndarray, np.ndarray]:
        """``need`` at column ``j`` with the twin's known marks copied: (what is left to compute, what owes its
        gamma after the call: the computed elements when ``lazy``, and the copied ones the twin owed)."""
        source, same = self.twin
        marked = source.marked.get(j)
        if not source.complete and marked is None:
            return need, need
        known = same if source.complete else same & marked
        owed = source.gamma_owed.get(j)
        left, owes = np.empty_like(need), np.empty_like(need)
        # One compiled pass: numpy's masked copies of the four rows cost more than the marks they saved.
        if not _copy_known(need, known, np.zeros_like(need) if owed is None else owed, lazy, source.value[:, j],
                           source.delta[:, j], source.gamma[:, j], source.exercise[:, j], self.value[:, j],
                           self.delta[:, j], self.gamma[:, j], self.exercise[:, j], left, owes):
            return need, need
        return left, owes

    def gamma_at(self, j: int, where: np.ndarray | None = None) -> np.ndarray | None:
        """Compute the gamma owed (`mark` with ``gamma=False``) at column ``j`` on the paths ``where`` (P,)
        (all by default): those elements marked again with gamma, the same value, delta and exercise as
        before. Returns the elements computed (P,) bool, or None when none was owed there."""
        owed = self.gamma_owed.get(j)
        if owed is None:
            return None
        need = owed.copy() if where is None else owed & _plain_bool(where, owed.shape)
        rows = int(np.count_nonzero(need))
        if not rows:
            return None
        self._run(need, j, j + 1, True, rows)
        owed &= ~need
        return need

    def _run(self, need: np.ndarray, j0: int, j1: int, gamma: bool, marks: int) -> None:
        """The mark kernel on ``need`` at columns j0..j1, on the thread pool from `MARKS_PARALLEL_MIN` marks."""
        kernel = _mark_parallel if marks >= MARKS_PARALLEL_MIN else _mark_serial
        # The outputs read from the marks' own (P, S) views, so that a copy of the series (copy.deepcopy, which
        # copies each view apart) writes the arrays it reads.
        kernel(need, int(j0), int(j1), *self._head, gamma, *self._args, self.value.T, self.delta.T, self.gamma.T,
               self.exercise.T)

    def track(self) -> None:
        """Remember which elements are marked from now on, so that a mark asked for again (by another replay
        reading these marks: `opl.runtime.engine.replay._replay_lockstep`) is not computed again."""
        if self.done is None and not self.complete:
            self.done = np.zeros(self.value.shape[::-1], dtype=np.bool_)


def mark_series(*, is_call: bool, american: bool, forward: np.ndarray, vol: np.ndarray, strike: np.ndarray,
                t: np.ndarray, smile, rate: float, carry: float = 0.0, gamma: bool = True):
    """Marks of options of ``strike`` (P,) along ``forward`` (P, S) with the model volatility ``vol``
    (P, S), ``t`` (S,) years to expiry per column: value, delta, gamma, exercise, each (P, S).

    The implied volatility is ``smile.iv`` (`opl.runtime.engine.marking.SmileRule`); American options
    read `opl.runtime.engine.marking`'s tables of each time to expiry. Same result as
    `opl.runtime.engine.marking.AmericanMarker.mark` column by column, up to rounding.
    ``gamma=False`` leaves gamma 0 (its ``exp`` is a tenth of a mark's cost).
    """
    series = SeriesMarks(is_call=is_call, american=american, forward=forward, vol=vol, strike=strike, t=t,
                         smile=smile, rate=rate, carry=carry, gamma=gamma)
    series.mark()
    return series.value, series.delta, series.gamma, series.exercise


_NO_OLD = (np.zeros((0, 0)),) * 3


def mark_where(*, is_call: bool, american: bool, where: np.ndarray, strike, price: np.ndarray, vol: np.ndarray,
               t: float, smile, rate: float, carry: float = 0.0, gamma: bool = True, old=None, into=None):
    """One step's marks of a series with a strike per (variant, path): value, delta, gamma, exercise, each like
    ``where`` (variants, paths), marked where ``where`` and elsewhere ``old`` = (value, delta, gamma) (per path
    or per variant and path; None: 0) with no exercise.

    ``into``: (value, delta, gamma, exercise), each None (a new array) or an array to write into (C-ordered,
    writable, ``where``'s shape: else a new array is used); one that is ``old``'s own array is updated in
    place, its elements not marked left as they are (a re-mark's old marks are not copied).

    ``strike`` per path or per variant and path; ``price`` and ``vol`` (paths,) the step's column, ``t`` the
    series' years to expiry. The marks are `mark_series`' to the bit; each (path, strike) is marked once
    (the variants of a path holding the same strike share its marks). One compiled pass: what the adjustment module's quotes and its slots' re-marks
    cost besides the marks themselves is a few small allocations.
    """
    shape = where.shape
    tables = _series_tables(bool(is_call), bool(american), (float(t),), float(rate), float(carry))
    into = into or (None,) * 4
    value, delta, gam = (x if _ready(x, shape, np.float64) else np.empty(shape) for x in into[:3])
    exercise = into[3] if _ready(into[3], shape, np.bool_) else np.empty(shape, dtype=np.bool_)
    olds = _NO_OLD if old is None else tuple(_rows_c(x, shape) for x in old)
    in_place = tuple(old is not None and out is before for out, before in zip((value, delta, gam), olds))
    _mark_where(_plain_bool(where, shape), _rows_c(strike, shape), *olds, _plain(price, shape[1:]),
                _plain(vol, shape[1:]), 1.0 if is_call else -1.0, bool(american), bool(gamma), float(t), tables.const,
                tables.eep, tables.d_eep, tables.boundary, *_grids(), float(smile.spread), float(smile.floor),
                float(smile.skew), float(smile.curvature), value, delta, gam, exercise, in_place)
    return value, delta, gam, exercise


class MarginRule:
    """A rule pack's margin formula as the compiled kernel reads it, for the variants of a replay.

    Variants may differ only in the margin rates (a margin stress scales those the pack sets:
    ``futures_rate``, ``rate``, ``min_rate``), held per variant; ``of`` returns None for packs
    that differ otherwise, and the replay then margins with the reference formulas.
    """

    RATES = ("futures_rate", "rate", "min_rate")

    def __init__(self, packs):
        pack = packs[0]
        spec = pack.margin
        for name in self.RATES:  # (variants,) each; NaN where the pack has no such rate
            setattr(self, name, np.array([math.nan if (r := getattr(p.margin, name)) is None else float(r)
                                          for p in packs]))
        self.czce = spec.formula == "czce_dce"
        self.otm_weight, self.floor_weight = float(spec.otm_weight), float(spec.floor_weight)
        self.put_cap = bool(spec.put_cap_at_strike)
        self.unit = float(pack.option.multiplier)
        self.contract_size = float(pack.underlying.contract_size)
        self.futures_underlying = pack.underlying.kind == "future"
        combos = set(spec.combinations)
        self.spread, self.straddle = "vertical_spread" in combos, "short_straddle" in combos
        self.strangle = "short_strangle" in combos

    @classmethod
    def of(cls, packs) -> "MarginRule | None":
        """The rule of ``packs`` (one per variant), or None where they differ beyond the margin rates."""
        base = packs[0]
        rates = {name: getattr(base.margin, name) for name in cls.RATES}
        for pack in packs[1:]:
            if pack is base:
                continue
            same = pack.model_copy(update={"margin": pack.margin.model_copy(update=rates)})
            if same != base:
                return None
        if base.margin.formula == "czce_dce" and base.margin.futures_rate is None:
            return None  # the reference raises its located error
        return cls(packs)


def book_margin(rule: MarginRule, holdings, futures_lots, price, shape, cols=None) -> np.ndarray:
    """The exchange requirement (variants, paths) of option ``holdings`` and futures lots, as
    `opl.runtime.engine.replay`'s reference ``_margin`` computes it (bit for bit).

    ``holdings`` are (is_call, strike, premium, signed lots, expiry key) tuples whose arrays broadcast
    to ``shape`` (variants, paths); ``futures_lots`` the absolute futures lots; ``cols`` (path indices)
    restricts the result to those paths, (variants, len(cols)).
    """
    holdings = list(holdings)
    n = len(holdings)
    price = np.ascontiguousarray(price, dtype=float)
    picked = _NO_COLS if cols is None else np.ascontiguousarray(cols, dtype=np.int64)
    width = price.shape[0] if cols is None else picked.shape[0]
    # Each series' arrays as they are, one type for all (C-ordered float rows, `_grid`); a dummy entry
    # when nothing is held, as the kernel's tuples cannot be empty.
    strikes, premiums, qtys = (_slot_tuple(h[at] for h in holdings) for at in (1, 2, 3))
    is_call = np.array([bool(h[0]) for h in holdings], dtype=np.bool_)
    expiry = np.array([float(h[4]) for h in holdings], dtype=float)
    both = rule.spread and (rule.straddle or rule.strangle) and len(set(is_call.tolist())) == 2
    out = np.empty((shape[0], width))  # fresh: the caller keeps it (the step's requirement, the open margin)
    _book_margin(is_call, expiry, strikes, premiums, qtys, n, picked, price, _grid(futures_lots), _ONE, _ONE, False,
                 rule.futures_rate, rule.czce, rule.otm_weight, rule.floor_weight, rule.rate, rule.min_rate,
                 rule.put_cap, rule.unit, rule.contract_size, rule.futures_underlying, rule.spread, rule.straddle,
                 rule.strangle, both, _WIDE_BIT, out)
    return out


_NO_COLS = np.zeros(0, dtype=np.int64)
_ONE = np.zeros((1, 1))  # a dummy series (no series held) and a zero broadcast anywhere, read-only as `_grid`'s
_ONE.flags.writeable = False


def _grid(x) -> np.ndarray:
    """``x`` as a kernel reads an array broadcast to (variants, paths) (``_at``, ``_row``): C-ordered floats of shape
    (1 or variants, 1 or paths) — a number (1, 1), per path (1, paths), per variant and path as it is —,
    without a copy where it already is so.

    A read-only view: the kernels take these in tuples indexed at run time, whose arrays must all have one
    type, and a month's marks shared by a store are read-only (a writable copy would cost a copy).
    """
    if type(x) is np.ndarray and x.ndim == 2 and x.dtype == np.float64:  # most: a slot's lots or marks as they are
        flags = x.flags
        if flags.c_contiguous:
            if not flags.writeable:
                return x  # read-only already: its view would be the same array
            x = x.view()
            x.flags.writeable = False
            return x
    x = np.asarray(x, dtype=float)
    if x.ndim < 2:
        x = x.reshape(1, -1)
    x = np.ascontiguousarray(x).view()
    x.flags.writeable = False
    return x


def hedge_rule(*, held_delta, short, static, hedge, d, active, keep: float, band: float, lots_per_option: float,
               fee, costs, equity, month_pnl, lots_traded, trades) -> np.ndarray:
    """`opl.runtime.engine.hedging.rebalance` and the trade's costs in one pass: the new hedge (variants, paths).

    ``held_delta`` and ``short`` (variants, paths) are Σ qty × delta and Σ max(−qty, 0) over the options
    held (`option_sums`); ``fee`` (variants,) the cost of a futures lot opened. ``costs``, ``equity`` and
    ``month_pnl`` take the costs, ``lots_traded`` and ``trades`` count (in place), as the reference's
    ledger does.
    """
    new = np.empty(hedge.shape)
    _hedge_rule(held_delta, short, _plain(static, hedge.shape), _plain(hedge, hedge.shape),
                _plain(d, hedge.shape[1:]), _plain_bool(active, hedge.shape), float(keep), float(band),
                float(lots_per_option), _plain(fee, hedge.shape[:1]), costs, equity, month_pnl, lots_traded, trades,
                new)
    return new


def account(*, equity, requirement, capital: float, margin_buffer: float, calls, peak_margin, peak,
            max_dd) -> np.ndarray:
    """After a step's margin: margin calls counted, the running peaks and drawdown updated (in place);
    returns where the call is not met (liquidated at the next step)."""
    liquidate = np.empty(equity.shape, dtype=np.bool_)
    _account(equity, _plain(requirement, equity.shape), float(capital), float(margin_buffer), calls, liquidate,
             peak_margin, peak, max_dd)
    return liquidate


def _plain_bool(x, shape) -> np.ndarray:
    """`_plain` for flags (bool)."""
    if _ready(x, shape, np.bool_):
        return x
    x = np.asarray(x, dtype=np.bool_)
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    return np.require(x, dtype=np.bool_, requirements=["C", "W"])


def close_lots(lots, mask, fee, *, bucket, equity, month_pnl, counter, in_place: bool = False) -> np.ndarray:
    """Close signed ``lots`` (variants, paths) where ``mask`` at ``fee`` (variants,) a lot: the costs into
    ``bucket``, ``equity`` and ``month_pnl``, the lots into ``counter`` (in place); returns the lots left
    (``lots`` itself, zeroed where closed, when ``in_place``)."""
    shape = equity.shape
    direct = in_place and lots.shape == shape and lots.dtype == np.float64 and lots.flags.c_contiguous \
        and lots.flags.writeable
    out = lots if direct else np.empty(shape)
    _close_lots(_plain(lots, shape), _plain_bool(mask, shape), _plain(fee, shape[:1]), bucket, equity, month_pnl,
                counter, out)
    if in_place and not direct:
        lots[...] = out
        return lots
    return out


def _rows(x, shape) -> np.ndarray:
    """A slot's marks as rows: (1, paths) when per path or one number, (variants, paths) when per variant.
    A month's marks are a strided column of its (paths, steps) tables, read in place: a copy would pay the
    same cache misses and an allocation."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        return x
    return x[None, :] if x.ndim == 1 else np.full((1, shape[1]), float(x))


_NO_SHORT = np.zeros((0, 0))


def option_sums(shape, slots, *, short: bool = False):
    """Σ qty × marks over ``slots`` ((signed lots (variants, paths), marks per path or per variant and path)
    pairs) from zeros, in their order — `opl.runtime.engine.book.Book.option_value` and ``option_delta``
    before their factor —, and with ``short`` also Σ max(−qty, 0) (``Book.short_lots``)."""
    acc = np.zeros(shape)
    lots = np.zeros(shape) if short else _NO_SHORT
    for qty, marks in slots:
        _add_products(acc, _plain(qty, shape), _rows(marks, shape), lots)
    return (acc, lots) if short else acc


def book_move(qty, before, after, *, scale: float, bucket, equity, month_pnl) -> None:
    """Book a slot's move from ``before`` to ``after`` marks, ``qty × (after − before) × scale``, into
    ``bucket``, ``equity`` and ``month_pnl`` (in place), as the reference's ledger does."""
    shape = equity.shape
    _book_move(_plain(qty, shape), _rows(before, shape), _rows(after, shape), float(scale), bucket, equity,
               month_pnl)


def book_interest(*, equity, capital: float, option_value, mult: float, units, previous, cs: float, growth: float,
                  margin_held, margin_growth: float | None, interest, month_pnl) -> None:
    """The step's interest (`opl.runtime.engine.replay._Pass._interest`) into ``interest``, ``equity`` and
    ``month_pnl`` (in place): ``option_value`` Σ qty × value before the multiplier; ``units`` the lots of
    an ETF or a stock held (None for futures, which hold no cash) at the ``previous`` step's price;
    ``growth`` the cash's expm1 over the step; ``margin_growth`` the deposit's difference (None: none)."""
    shape = equity.shape
    paid = units is not None
    _book_interest(equity, float(capital), option_value, float(mult), paid,
                   _plain(units, shape) if paid else equity, _plain(previous, shape[1:]), float(cs), float(growth),
                   _plain(margin_held, shape), 0.0 if margin_growth is None else float(margin_growth),
                   margin_growth is not None, interest, month_pnl)


def book_carry(*, static, hedge, pending, goods, previous, price, cs: float, storage: float, funding: float,
               span: float, year_days: float, buckets, equity, month_pnl) -> None:
    """The futures' and goods' marks of a step (`opl.runtime.engine.replay._Pass._mark`) into ``buckets``
    (the ledger's), ``equity`` and ``month_pnl`` (in place); ``goods`` None when none are held; the goods'
    funding accrues over ``span`` days of a ``year_days`` year."""
    shape = equity.shape
    any_goods = goods is not None
    _book_carry(_plain(static, shape), _plain(hedge, shape), _plain(pending, shape),
                _plain(goods, shape) if any_goods else equity, any_goods, _plain(previous, shape[1:]),
                _plain(price, shape[1:]), float(cs), float(storage), float(funding), float(span), float(year_days),
                buckets["premium"],
                buckets["hedge"], buckets["assignment"], buckets["funding"], equity, month_pnl)


def any_short_exercised(qty, exercise) -> bool:
    """Whether signed ``qty`` (variants, paths) is short anywhere the ``exercise`` flags (per path, or per
    variant and path) are set: ``np.any((qty < 0) & exercise)`` in one pass."""
    shape = np.shape(qty)
    flags = np.asarray(exercise, dtype=np.bool_)
    rows = flags[None, :] if flags.ndim == 1 else (
        _plain_bool(flags, shape) if flags.ndim == 2 else np.full((1, shape[1]), bool(flags)))
    return bool(_any_short_exercised(_plain(qty, shape), rows))


def book_sold(sold, *, cs: float, basis: float, fee, buckets, equity) -> None:
    """Goods sold at their release (`opl.runtime.engine.replay._Pass._previous_decisions`) in one pass: their value
    ``sold`` × ``cs`` × ``basis`` into ``buckets["assignment"]`` and the futures' close (``fee`` (variants,) a lot)
    into ``buckets["costs"]``, both into ``equity`` (in place), the reference's amounts in its order."""
    shape = equity.shape
    _book_sold(_plain(sold, shape), (float(cs), float(basis)), _plain(fee, shape[:1]), buckets["assignment"],
               buckets["costs"], equity)


def futures_lots(static, hedge, other) -> np.ndarray:
    """The absolute futures lots the margin counts, ``|static| + |hedge| + |other|`` (variants, paths), in one pass."""
    shape = np.broadcast_shapes(np.shape(static), np.shape(hedge), np.shape(other))
    out = np.empty(shape)
    _futures_lots(_plain(static, shape), _plain(hedge, shape), _plain(other, shape), out)
    return out


def exercise(*, qty, hit, phi: float, lots_per_option: float, price, strike, value, mult: float, fee_assigned,
             fee_exercised, take_delivery: bool, buckets, equity, month_pnl, assigned, pending, in_place: bool = False):
    """A slot's exercise and assignment where ``hit`` (`opl.runtime.engine.replay._Pass._assign`) in one pass:
    the forfeited time value into ``buckets["assignment"]``, the fees (``fee_*`` per variant) into
    ``buckets["costs"]``, both into ``equity`` and ``month_pnl``, ``assigned`` set where a short was assigned
    (in place). Returns the slot's lots left, the futures lots from exercise (``pending`` plus the new ones)
    and the goods delivered (`take_delivery`: a short's long futures lots), each (variants, paths).
    ``in_place``: the lots left and the futures from exercise written into ``qty`` and ``pending`` themselves
    (C-ordered, writable floats of the step's shape: an element is read before it is written) and returned."""
    shape = equity.shape
    if in_place:
        new_qty, new_pending = qty, pending
    else:
        new_qty, new_pending = np.empty(shape), _plain(pending, shape).copy()
    goods = np.empty(shape)
    _exercise(_plain(qty, shape), _plain_bool(hit, shape), float(phi), float(lots_per_option), _plain(price, shape[1:]),
              _rows(strike, shape), _rows(value, shape), float(mult), _plain(fee_assigned, shape[:1]),
              _plain(fee_exercised, shape[:1]), bool(take_delivery), buckets["assignment"], buckets["costs"], equity,
              month_pnl, assigned, new_pending, new_qty, goods)
    return new_qty, new_pending, goods


def _slot_tuple(arrays) -> tuple:
    """Slot arrays as the fused kernels read them: a tuple of `_grid` views, padded (`_padded`)."""
    return _padded(tuple(_grid(x) for x in arrays), _ONE)


def _padded(arrays: tuple, dummy: np.ndarray) -> tuple:
    """``arrays`` padded with ``dummy`` to 4, 8, 16, … entries. A tuple's length is part of a compiled
    kernel's signature, and the kernels take the count of real entries as an argument of its own: unpadded,
    every step kernel was compiled once for each number of slots a run's books held (two and four, and one
    for none, in the jujube file: each of a fresh clone's first runs compiled them three times over)."""
    width = 4
    while width < len(arrays):
        width *= 2
    return arrays + (dummy,) * (width - len(arrays))


def writable(x, shape, dtype=np.float64) -> np.ndarray:
    """``x`` itself when a kernel may write it in place (C-ordered, writable, of ``shape`` and ``dtype``), else
    a copy."""
    if isinstance(x, np.ndarray) and x.shape == shape and x.dtype == dtype and x.flags.c_contiguous \
            and x.flags.writeable:
        return x
    return np.array(np.broadcast_to(x, shape), dtype=dtype)


def settle(*, equity, capital: float, mult: float, interest: tuple | None, moves, static, hedge, pending, goods,
           previous, price, cs: float, storage: float, funding: float, span: float, year_days: float,
           close_fee, buckets, counters, month_pnl) -> None:
    """The interest, the slots' moves, the futures' and goods' carry and the close of the futures from
    exercise of a step, in one pass (in place), the numbers of `book_interest`, `book_move`, `book_carry`
    and `close_lots` called stage by stage.

    Parameters
    ----------
    interest
        None for no interest, else (units, growth, margin_held, margin_growth) as `book_interest` takes them.
    moves
        (signed lots, marks before, marks after, valued) of each slot marked, in the book's order; ``valued``:
        the slot was held at the step's start (its marks before count in the interest's cash).
    pending
        The futures lots from exercise, (variants, paths) C-ordered and writable: zeroed in place where
        closed (``close_fee`` (variants,) a lot; None: not closed here).
    goods
        The delivered goods held, or None.
    """
    shape = equity.shape
    units, growth, held_margin, margin_growth = interest if interest is not None else (None, 0.0, equity, None)
    paid = units is not None
    kernel = _settle_parallel if equity.size >= STEP_PARALLEL_MIN else _settle
    kernel(equity, float(capital), float(mult), interest is not None, paid, _plain(units, shape) if paid else equity,
           _plain(previous, shape[1:]), float(cs), float(growth), _plain(held_margin, shape),
           0.0 if margin_growth is None else float(margin_growth), margin_growth is not None,
           _slot_tuple(m[0] for m in moves), _slot_tuple(m[1] for m in moves), _slot_tuple(m[2] for m in moves),
           np.array([bool(m[3]) for m in moves] or [False]), len(moves), _grid(static), _plain(hedge, shape),
           pending, _plain(goods, shape) if goods is not None else equity, goods is not None,
           _plain(price, shape[1:]), float(storage), float(funding), float(span), float(year_days),
           close_fee is not None, _plain(0.0 if close_fee is None else close_fee, shape[:1]), buckets["interest"],
           buckets["premium"], buckets["hedge"], buckets["assignment"], buckets["funding"], buckets["costs"],
           counters["futures_lots"], month_pnl)


def close_book(qtys, futures, mask, option_fee, futures_fee, *, bucket, equity, month_pnl, option_lots,
               futures_lots) -> list[np.ndarray]:
    """Close option lots ``qtys`` and then ``futures`` (each (variants, paths)) where ``mask``, in one pass:
    the costs (``*_fee`` (variants,) a lot) into ``bucket``, ``equity`` and ``month_pnl``, the lots counted
    (in place) — `close_lots` position by position. The futures arrays are zeroed in place; returns the
    option lots left, new arrays."""
    shape = equity.shape
    own = [writable(f, shape) for f in futures]
    new = [np.empty(shape) for _ in qtys]
    _close_book(_plain_bool(mask, shape), _slot_tuple(qtys), len(new), _plain(option_fee, shape[:1]),
                _padded(tuple(new), _SCRATCH), _padded(tuple(own), _SCRATCH), len(own),
                _plain(futures_fee, shape[:1]), bucket, equity, month_pnl, option_lots, futures_lots)
    for f, o in zip(futures, own):
        if o is not f:
            f[...] = o  # a view or another type: written back, as the reference's close writes in place
    return new


def hedge_step(*, qtys, deltas, static, hedge, d, active, keep: float, band: float, lots_per_option: float, fee,
               costs, equity, month_pnl, lots_traded, trades, in_place: bool = False) -> np.ndarray:
    """`option_sums` of the held slots' lots ``qtys`` and marks ``deltas`` and `hedge_rule` in one pass: the
    new hedge (variants, paths), the trade's costs and counts booked (in place) as `hedge_rule` books them.
    ``in_place``: the new hedge written into ``hedge`` itself (a C-ordered, writable float array of the step's
    shape: an element's old lots are read before its new ones are written) and returned."""
    new = hedge if in_place else np.empty(hedge.shape)
    if not np.any(active):  # no position open anywhere: nothing trades, the hedge is kept (a sixth of the jujube steps)
        if new is not hedge:
            np.copyto(new, hedge)
        return new
    kernel = _hedge_step_parallel if new.size >= STEP_PARALLEL_MIN else _hedge_step
    kernel(*_hedge_arguments(qtys=qtys, deltas=deltas, static=static, hedge=hedge, d=d, active=active, keep=keep,
                             band=band, lots_per_option=lots_per_option, fee=fee, costs=costs, equity=equity,
                             month_pnl=month_pnl, lots_traded=lots_traded, trades=trades, new=new))
    return new


def _hedge_arguments(*, qtys, deltas, static, hedge, d, active, keep, band, lots_per_option, fee, costs, equity,
                     month_pnl, lots_traded, trades, new) -> tuple:
    """`hedge_step`'s arguments as its kernels take them (after a block's bounds), the new hedge into ``new``."""
    shape = hedge.shape
    return (_slot_tuple(qtys), _slot_tuple(deltas), len(qtys), _grid(static), _plain(hedge, shape),
            _plain(d, shape[1:]), _plain_bool(active, shape), float(keep), float(band), float(lots_per_option),
            _plain(fee, shape[:1]), costs, equity, month_pnl, lots_traded, trades, new)


def requirement_account(rule: MarginRule, holdings, *, static, hedge, other, price, equity, capital: float,
                        margin_buffer: float, calls, peak_margin, peak, max_dd,
                        into: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`book_margin` of ``holdings`` with the futures lots |static| + |hedge| + |other|, then `account`, in one
    pass: returns the requirement and where the call is not met (the counters, peaks and drawdown in place).
    ``into``: (requirement, liquidate) arrays to write them into (C-ordered, writable, the step's shape: floats,
    flags; every element is written), else new ones."""
    shape = equity.shape
    out, liquidate = into if into is not None else (np.empty(shape), np.empty(shape, dtype=np.bool_))
    kernel = _requirement_parallel if out.size >= STEP_PARALLEL_MIN else _requirement_account
    kernel(*_requirement_arguments(rule, holdings, static=static, hedge=hedge, other=other, price=price, equity=equity,
                                   capital=capital, margin_buffer=margin_buffer, calls=calls, liquidate=liquidate,
                                   peak_margin=peak_margin, peak=peak, max_dd=max_dd, out=out))
    return out, liquidate


@lru_cache(maxsize=256)
def _series_kinds(kinds: tuple[tuple[bool, float], ...]) -> tuple[np.ndarray, np.ndarray, bool]:
    """The held series' (is_call, expiry) as the margin kernels take them, and whether both types are held: a
    book's series change only when a position opens or closes, and these were made at every step."""
    # Writable, as the kernels were compiled for (no kernel writes them), though shared by the steps.
    is_call = np.array([c for c, _ in kinds], dtype=np.bool_)
    expiry = np.array([e for _, e in kinds], dtype=float)
    return is_call, expiry, len({c for c, _ in kinds}) == 2


def _requirement_arguments(rule: MarginRule, holdings, *, static, hedge, other, price, equity, capital: float,
                           margin_buffer: float, calls, liquidate, peak_margin, peak, max_dd, out) -> tuple:
    """`requirement_account`'s arguments as its kernels take them (after a block's bounds)."""
    holdings = list(holdings)
    shape = equity.shape
    is_call, expiry, two_kinds = _series_kinds(tuple((bool(h[0]), float(h[4])) for h in holdings))
    both = rule.spread and (rule.straddle or rule.strangle) and two_kinds
    return (is_call, expiry, *(_slot_tuple(h[at] for h in holdings) for at in (1, 2, 3)), len(holdings),
            _plain(price, shape[1:]), _grid(static), _grid(hedge), _grid(other), rule.futures_rate, rule.czce,
            rule.otm_weight, rule.floor_weight, rule.rate, rule.min_rate, rule.put_cap, rule.unit, rule.contract_size,
            rule.futures_underlying, rule.spread, rule.straddle, rule.strangle, both, _WIDE_BIT, equity,
            float(capital), float(margin_buffer), calls, liquidate, peak_margin, peak, max_dd, out)


EXIT_OPS = ("<", ">", "<=", ">=", "==", "!=")  # the comparisons `exits_close` codes by position


def exits_close(*, month_pnl, denominator, start: bool, all_required: bool, pnl_rules, stop_level: float | None,
                force: bool, is_open, early: bool, exits, early_exits, qtys, futures, option_fee, futures_fee,
                bucket, equity, option_lots, futures_lots) -> list[bool] | None:
    """A step's exits in one pass: where a position is open and the triggers say so — ``start`` (the triggers
    decided for every path alike), each (comparison, bound) of ``pnl_rules`` on pnl_percent (the month's P&L
    over ``denominator``, percent), combined by AND under ``all_required`` else OR —, or the month's P&L is at
    or below ``stop_level`` (None: no stop loss), or ``force`` (the guard, a cut cycle): ``exits`` counted
    (``early_exits`` too when ``early``), ``is_open`` cleared and everything closed as `close_book` closes it.
    Everything is written in place: ``qtys`` (the option slots' lots) and ``futures`` must be C-ordered,
    writable (variants, paths) arrays (`writable`). Returns whether each slot still holds lots (`Slot.held`),
    or None where nothing exited (nothing was written)."""
    shape = equity.shape
    ops, bounds = _exit_codes(tuple(pnl_rules))
    held = np.ones(max(len(qtys), 1), dtype=np.bool_)
    hits = _exits_in_place(month_pnl, _plain(denominator, shape), bool(start), bool(all_required), ops, bounds,
                           stop_level is not None, 0.0 if stop_level is None else float(stop_level), bool(force),
                           is_open, bool(early), exits, early_exits, _padded(tuple(qtys), _SCRATCH), len(qtys),
                           _plain(option_fee, shape[:1]), _padded(tuple(futures), _SCRATCH), len(futures),
                           _plain(futures_fee, shape[:1]), bucket, equity, option_lots, futures_lots, held)
    return [bool(h) for h in held[:len(qtys)]] if hits else None


@lru_cache(maxsize=64)
def _exit_codes(pnl_rules: tuple) -> tuple[np.ndarray, np.ndarray]:
    """`exits_close`'s (comparison, bound) pairs as its kernel reads them, made once per rule set, not per step."""
    ops = np.array([EXIT_OPS.index(op) for op, _ in pnl_rules], dtype=np.int64)
    bounds = np.array([float(bound) for _, bound in pnl_rules], dtype=float)
    return ops, bounds


_SCRATCH = np.zeros((1, 1))  # a writable dummy position where a tuple of positions written in place is empty


def shorts_exercised(qtys, flags) -> np.ndarray:
    """`any_short_exercised` of several slots in one call: per slot (signed lots (variants, paths), exercise
    flags per path or per variant and path), whether a short lot sits where the flag is set."""
    out = np.zeros(len(qtys), dtype=np.bool_)
    if qtys:
        _shorts_exercised(_slot_tuple(qtys), _padded(tuple(_flag_grid(f) for f in flags), _NO_FLAGS), len(qtys),
                          out)
    return out


_NO_FLAGS = np.zeros((1, 1), dtype=np.bool_)  # a dummy slot's flags, read-only as `_flag_grid`'s
_NO_FLAGS.flags.writeable = False


def _flag_grid(x) -> np.ndarray:
    """`_grid` for flags (bool)."""
    x = np.asarray(x, dtype=np.bool_)
    if x.ndim < 2:
        x = x.reshape(1, -1)
    x = np.ascontiguousarray(x).view()
    x.flags.writeable = False
    return x
