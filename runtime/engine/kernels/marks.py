"""The mark kernels: a series' value, delta, gamma and exercise flag per path and step.

The compiled twin of `opl.runtime.engine.marking` (the reference): the smile's implied volatility,
Black-76, the bilinear early-exercise premium of the American tables and the critical price, in one
pass over a step's row (`_mark_row`); a series' month is marked a column at a time where a variant
holds it (`SeriesMarks`), the adjustment module's quotes and re-marks where asked (`mark_where`).
The rules every kernel keeps are `opl.runtime.engine.kernels`'.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from opl.runtime.engine.kernels import base
from opl.runtime.engine.kernels.base import (_BLOCK, _ZERO, _input, _plain, _plain_bool, _ready, _rows_c, njit,
                                             prange)


__all__ = ["SeriesMarks", "mark_series", "mark_where"]

if njit is not None:
    from opl.runtime.engine.kernels import vecmath as vm

    _INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

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
        _mark_list(idx, n, phi, american, with_gamma, base._viewed(s_row), k_row, base._viewed(vol_row), tj, c,
                   sqrt_t, bt, cf, df, eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value,
                   delta, gamma, exercise)

    @njit(cache=True)
    def _gathered(flags, start, stop, idx):
        # The elements start..stop where ``flags`` written to the head of ``idx``, without a branch per element;
        # returns how many.
        n = 0
        for p in range(start, stop):
            idx[n] = p
            n += flags[p]
        return n

    _ROWS = 12  # `_mark_list`'s scratch rows

    @njit(cache=True, error_model="numpy")  # numpy's division: no zero check, which would keep loops scalar
    def _mark_list(idx, n, phi, american, with_gamma, s_row, k_row, vol_row, tj, c, sqrt_t, bt, cf, df, eep, d_eep,
                   boundary, x_grid, logv_grid, spread, floor, skew, curvature, value, delta, gamma, exercise):
        # Elements idx[:n] of one step's rows: opl.runtime.engine.marking.AmericanMarker.mark as (value, delta,
        # gamma, exercise) of strike ``k_row[p]`` at the price ``s_row[p]`` and the model volatility
        # ``vol_row[p]``, ``tj`` years to expiry (the tables' column ``c`` and the column's Black constants
        # given). The elements are gathered into contiguous scratch rows first, so that the logs, the smile,
        # Black, the normal CDFs (`kernels.vecmath`: arithmetic, no library call) and the tables' premium run as
        # simple loops the compiler vectorises; the exercise region's test and the scatter are one loop at the
        # end. The helpers are inlined and take the rows once a call: an array handed to a helper per element,
        # even an inlined one, costs its reference count (an atomic add and a call, each way), which was a
        # quarter of a mark.
        if tj <= 0:  # expired: the intrinsic value
            for i in range(n):
                p = idx[i]
                intrinsic = max(phi * (s_row[p] - k_row[p]), 0.0)
                value[p], delta[p], gamma[p], exercise[p] = intrinsic, phi if intrinsic > 0 else 0.0, 0.0, intrinsic > 0
            return
        rows = np.empty((_ROWS, n))
        s, k, x, iv, lv, d1, sd, nd1, nd2, g = (rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rows[6],
                                                rows[7], rows[8], rows[9])
        for i in range(n):
            p = idx[i]
            s[i], k[i], iv[i] = s_row[p], k_row[p], vol_row[p]
        _smile_black(n, phi, s, k, x, iv, d1, sd, nd1, nd2, sqrt_t, bt, cf, df, spread, floor, skew, curvature)
        if american:
            v_lo, v_hi = logv_grid[0], logv_grid[logv_grid.shape[0] - 1]
            for i in range(n):
                lv[i] = min(max(vm.log(iv[i]), v_lo), v_hi)
        if with_gamma:
            for i in range(n):
                g[i] = (cf * (_INV_SQRT_2PI * vm.exp(-0.5 * d1[i] * d1[i])) / (s[i] * sd[i])
                        if sd[i] > 0 and s[i] > 0 else 0.0)
        else:
            g[:n] = 0.0
        if american:  # (d1, sd and the last two rows are free now: the premium's weights)
            _premium(n, k, x, lv, nd1, nd2, c, eep, d_eep, x_grid, logv_grid, d1, sd, rows[10], rows[11],
                     np.empty(n, dtype=np.uint64))
        _finish(idx, n, phi, american, s, k, lv, nd1, nd2, g, c, boundary, logv_grid, value, delta, gamma, exercise)

    @njit(cache=True, inline="always", error_model="numpy")
    def _smile_black(n, phi, s, k, x, iv, d1, sd, nd1, nd2, sqrt_t, bt, cf, df, spread, floor, skew, curvature):
        # The contiguous rows' smile (opl.runtime.engine.marking.SmileRule.iv, into ``iv`` over the model
        # volatility), Black's d1 and standard deviation, then Black-76's value (into ``nd1``) and delta (into
        # ``nd2``): opl.runtime.pricing.black._d1_sd / _price / value_delta_gamma, one simple loop each.
        # x = log(k/s) serves the smile, Black (log(s/k) = -x) and the tables.
        for i in range(n):
            x[i] = vm.log(k[i] / s[i])
        for i in range(n):
            xi = x[i]
            atm = max(floor, iv[i] * (1.0 + spread))
            iv[i] = max(floor, atm * (1.0 + skew * xi + curvature * xi * xi))
        for i in range(n):
            log_fk = -x[i] + bt
            sdi = iv[i] * sqrt_t
            inf = math.inf if log_fk > 0 else (-math.inf if log_fk < 0 else 0.0)
            d = log_fk / sdi + 0.5 * sdi if sdi > 0 else inf
            d1[i], sd[i] = d, sdi
            nd1[i], nd2[i] = phi * d, phi * (d - sdi)
        for i in range(n):
            nd1[i] = vm.ndtr(nd1[i])
        for i in range(n):
            nd2[i] = vm.ndtr(nd2[i])
        for i in range(n):
            a, b = nd1[i], nd2[i]
            nd1[i] = phi * (cf * s[i] * a - df * k[i] * b)
            nd2[i] = phi * cf * a

    @njit(cache=True, inline="always", error_model="numpy")
    def _premium(n, k, x, lv, value_row, delta_row, c, eep, d_eep, x_grid, logv_grid, w00, w01, w10, w11, node):
        # Black's value and delta in the rows plus the early-exercise premium and its delta, bilinear in the
        # tables of column ``c``. The nodes are clamped into the tables, so no element reads outside them (a NaN
        # gives node 0). Two loops: the nodes (a flat offset into the column's tables, unsigned so that no
        # index is checked for a negative value) and the four weights first, arithmetic the compiler
        # vectorises; then the corners gathered and summed, in the order the single loop summed them (the same
        # bits), the only scalar part.
        nx, nv, x0, dx, v0, dv = _grid_constants(x_grid, logv_grid)
        x_lo, x_hi = x_grid[0], x_grid[nx - 1]
        for i in range(n):
            fx = (min(max(-x[i], x_lo), x_hi) - x0) / dx
            fv = (lv[i] - v0) / dv
            ix = min(max(int(fx), 0), nx - 2)
            m = min(max(int(fv), 0), nv - 2)
            wx, wv = fx - ix, fv - m
            node[i] = ix * nv + m
            w00[i], w01[i], w10[i], w11[i] = (1 - wx) * (1 - wv), (1 - wx) * wv, wx * (1 - wv), wx * wv
        e, de = eep[c].reshape(nx * nv), d_eep[c].reshape(nx * nv)
        up = np.uint64(nv)
        for i in range(n):
            o = node[i]
            a, b, cc, d = w00[i], w01[i], w10[i], w11[i]
            premium = e[o] * a + e[o + 1] * b + e[o + up] * cc + e[o + up + 1] * d
            premium_delta = de[o] * a + de[o + 1] * b + de[o + up] * cc + de[o + up + 1] * d
            value_row[i] = value_row[i] + k[i] * premium
            delta_row[i] = delta_row[i] + premium_delta

    @njit(cache=True, inline="always", error_model="numpy")
    def _finish(idx, n, phi, american, s, k, lv, value_row, delta_row, gamma_row, c, boundary, logv_grid, value,
                delta, gamma, exercise):
        # The marks of elements idx[:n] scattered to the outputs: the rows' (Black, plus the premium where
        # American), or in the exercise region the intrinsic value.
        v0, dv = logv_grid[0], logv_grid[1] - logv_grid[0]
        edge = _boundary_edge(phi, boundary, c) if american else math.nan
        for i in range(n):
            p = idx[i]
            si, kk = s[i], k[i]
            intrinsic = max(phi * (si - kk), 0.0)
            if american:
                # Beyond the exercise boundary (k times its ratio at lv) the mark is the intrinsic value whatever
                # Black says; on the near side of the whole column's boundary (`_boundary_edge`: most marks) the
                # ratio itself is not needed.
                far = kk > 0 and (si > kk * edge if phi < 0 else si < kk * edge)
                if not far and phi * (si - kk * _interp_uniform(lv[i], logv_grid, boundary, c, v0, dv)) >= 0:
                    value[p], delta[p], gamma[p], exercise[p] = (intrinsic, phi * (1.0 if intrinsic > 0 else 0.0),
                                                                 0.0, intrinsic > 0)
                    continue
                value[p] = max(value_row[i], intrinsic)
            else:
                value[p] = value_row[i]
            delta[p], gamma[p], exercise[p] = delta_row[i], gamma_row[i], False

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
        _mark_block(_ZERO, f.shape[1], need, j0, j1, phi, american, with_gamma, f, vol, k, t, col, const, eep, d_eep,
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
    def _held_paths(qty, out):
        # ``out[p]``: whether any variant's lots ``qty`` (variants, paths) are not 0 on path ``p`` (numpy's
        # ``qty.any(axis=0)``, a float's truth being != 0); returns how many paths. Row by row, as the array lies.
        paths = out.shape[0]
        for p in range(paths):
            out[p] = qty[0, p] != 0.0
        for v in range(1, qty.shape[0]):
            for p in range(paths):
                out[p] |= qty[v, p] != 0.0
        count = 0
        for p in range(paths):
            count += out[p]
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
            n, mine = _gathered(where[v], _ZERO, paths, held), _ZERO
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
            _mark_list(own, mine, phi, american, with_gamma, f, strike[rs], vol, tj, _ZERO, sqrt_t, bt, cf, df, eep,
                       d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value[v], delta[v], gamma[v],
                       exercise[v])
            count += mine
        return count


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
        # the paths' arrays transposed to (columns, paths), free for the month's (opl.runtime.engine.months._Month
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
        self.inputs = (_input(forward.T, shape[::-1]), _input(vol.T, shape[::-1]))  # prices, volatilities (S, P)
        self._head = (1.0 if is_call else -1.0, bool(american))
        self._args = (*self.inputs, _plain(strike, shape[:1]), tables.t, tables.col, tables.const, tables.eep,
                      tables.d_eep, tables.boundary, *_grids(), float(smile.spread), float(smile.floor),
                      float(smile.skew), float(smile.curvature))

    def mark_held(self, qty: np.ndarray, j: int) -> None:
        """`mark` of column ``j`` without gamma on the paths where a variant holds lots ``qty`` (variants, paths,
        C-ordered floats): the paths found and counted in one compiled pass (numpy's ``any(axis=0)`` and
        ``count_nonzero`` cost a step more than the kernel)."""
        if self.complete:
            return
        held = np.empty(self.value.shape[0], dtype=np.bool_)
        count = _held_paths(qty, held)
        if self.twin is not None:
            self.mark(held, (j, j + 1), gamma=False, owned=True, count=count)
            return
        # `mark`'s steps for one column of the series' own marks (a step's every base leg: its general Python
        # cost the step more than the kernel at 1,000 paths)
        if self.done is not None:  # marks shared by several replays: what one marked is not marked again
            done = self.done[j]
            held &= ~done
            done |= held
            count = int(np.count_nonzero(held))
        known = self.marked.get(j)
        self.marked[j] = held if known is None else known | held
        if count:
            self._run(held, j, j + 1, False, count)
            if self.with_gamma:
                owed = self.gamma_owed.get(j)
                self.gamma_owed[j] = held.copy() if owed is None else owed | held

    def mark(self, where: np.ndarray | None = None, columns: tuple[int, int] | None = None,
             gamma: bool = True, *, owned: bool = False, count: int | None = None) -> None:
        """Mark the paths ``where`` (P,) bool (all by default) at columns ``columns`` = (first, stop) (all).

        ``gamma=False`` leaves gamma out (its ``exp`` is a tenth of a mark) when the series has one: the
        elements are remembered as owing it, and `gamma_at` computes it where someone reads it. ``owned``:
        ``where`` is the series' to keep (no copy); ``count``: how many paths ``where`` holds, when known."""
        if self.complete:
            return
        paths, steps = self.value.shape
        j0, j1 = columns if columns is not None else (0, steps)
        whole = where is None and (j0, j1) == (0, steps)
        need = np.ones(paths, dtype=np.bool_) if where is None else _plain_bool(where, (paths,))
        if self.done is not None:  # marks shared by several replays: what one marked is not marked again
            need = need & ~self.done[j0:j1].all(axis=0)
            self.done[j0:j1] |= need
            where, count = need, None
        lazy = self.with_gamma and not gamma
        if need is where and not owned:
            need = need.copy()  # kept in `marked`: the caller's array may change
        for j in range(j0, j1):
            known = self.marked.get(j)
            self.marked[j] = need if known is None else known | need
        owes = need
        if self.twin is not None and j1 == j0 + 1 and where is not None:
            need, owes = self._copied(need, j0, lazy)
            count = count if need is owes else None
        rows = paths if where is None else count if count is not None else int(np.count_nonzero(need))
        if rows:
            self._run(need, j0, j1, self.with_gamma and not lazy, rows * (j1 - j0))
        if lazy and (rows or owes is not need):
            for j in range(j0, j1):
                owed = self.gamma_owed.get(j)
                self.gamma_owed[j] = owes.copy() if owed is None else owed | owes
        self.complete = whole and not lazy

    def share(self, source: "SeriesMarks", same: np.ndarray) -> None:
        """Take ``source``'s marks on the paths ``same`` (P,) where it has them: a series of the same option on
        paths whose prices and volatilities are these at every step (`opl.runtime.engine.months._Month.share`),
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
        kernel = _mark_parallel if marks >= base.MARKS_PARALLEL_MIN else _mark_serial
        # The outputs read from the marks' own (P, S) views, so that a copy of the series (copy.deepcopy, which
        # copies each view apart) writes the arrays it reads.
        kernel(need, int(j0), int(j1), *self._head, gamma, *self._args, self.value.T, self.delta.T, self.gamma.T,
               self.exercise.T)

    def track(self) -> None:
        """Remember which elements are marked from now on, so that a mark asked for again (by another replay
        reading these marks: `opl.runtime.engine.passes._replay_lockstep`) is not computed again."""
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
    value, delta, gam = [x if _ready(x, shape, np.float64) else np.empty(shape) for x in into[:3]]
    exercise = into[3] if _ready(into[3], shape, np.bool_) else np.empty(shape, dtype=np.bool_)
    if old is None:
        olds, in_place = _NO_OLD, (False, False, False)
    else:
        olds = (_rows_c(old[0], shape), _rows_c(old[1], shape), _rows_c(old[2], shape))
        in_place = (value is olds[0], delta is olds[1], gam is olds[2])
    _mark_where(_plain_bool(where, shape), _rows_c(strike, shape), *olds, _input(price, shape[1:]),
                _input(vol, shape[1:]), 1.0 if is_call else -1.0, bool(american), bool(gamma), float(t), tables.const,
                tables.eep, tables.d_eep, tables.boundary, *_grids(), float(smile.spread), float(smile.floor),
                float(smile.skew), float(smile.curvature), value, delta, gam, exercise, in_place)
    return value, delta, gam, exercise
