"""Compiled trades of the adjustment module (numba): the fast engine's twin of applying an action's
change to one option slot (`opl.runtime.engine.adjust.AdjustEngine._apply`).

The reference applies a change with a dozen whole-array numpy operations — the new lots, the
lots closed and opened, their fees and slippage booked to the ``adjustments`` bucket, the
equity and the month's P&L, the lots counted — each with its own temporary, on the few
paths of a round. Here one pass over the round's elements does the same arithmetic in the
same order (closing booked before opening, per element), so the ledger is the reference's
bit for bit. The kernel follows `opl.runtime.engine.kernels`' rules: ``@njit(cache=True)``,
no ``fastmath``; it is serial (a round's paths are few).

The proposals of the common round's actions are compiled too (`move_group` for
``roll_nearest_term``'s move of a leg into its re-struck series, `gamma_need` and `gamma_buy`
for ``hedge_gamma``): each is `opl.runtime.engine.adjust.AdjustEngine`'s numpy proposal
(``_move``, ``_hedge_gamma``) element by element, the same operations in the same order, the
new series quoted by `opl.runtime.engine.kernels`' ``_mark_row`` with the arguments
`opl.runtime.engine.kernels.mark_where` gives it — so a plan is the numpy one bit for bit.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.kernels import njit

__all__ = ["trade_slot", "fees_of", "move_group", "gamma_need", "gamma_buy", "decide", "snap"]


if njit is not None:

    @njit(cache=True)
    def _trade_slot(old, proposed, go, restruck, close_fee, short_fee, long_fee, bucket, equity, month_pnl,
                    counter, out):
        # AdjustEngine._apply for one slot: where ``restruck`` the old series is closed and the new one
        # opened whole; elsewhere the lots shrink (closing the difference) or grow (opening it).
        variants, paths = old.shape
        for v in range(variants):
            for p in range(paths):
                before = old[v, p]
                after = proposed[v, p] if go[v, p] else before
                out[v, p] = after
                if restruck[v, p]:
                    closed, opened = before, after
                else:
                    closed = before - after if abs(after) < abs(before) else 0.0
                    opened = after - before if abs(after) > abs(before) else 0.0
                if closed != 0.0:
                    amount = -(abs(closed) * close_fee[v])
                    bucket[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
                    counter[v, p] += np.int64(np.rint(abs(closed)))
                if opened != 0.0:
                    amount = -(abs(opened) * (short_fee[v] if opened < 0 else long_fee[v]))
                    bucket[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
                    counter[v, p] += np.int64(np.rint(abs(opened)))

    _mark_row, _at = kernels._mark_row, kernels._at

    @njit(cache=True, inline="always")
    def _quoted_before(where, v, p):
        # The first variant before ``v`` quoted on path ``p`` (``v``: none); the strike is the path's.
        u = 0
        while u < v and not where[u, p]:
            u += 1
        return u

    @njit(cache=True, inline="always")
    def _copy_or_mark(where, v, p, need, value, delta, gamma, exercise):
        # A quote of path ``p`` for variant ``v`` where ``where``: an earlier variant's marks of the path (the
        # strike is the path's), else marked with the variant's row (``need``); 0 where not quoted.
        need[p] = False
        if not where[v, p]:
            value[v, p], delta[v, p], gamma[v, p], exercise[v, p] = 0.0, 0.0, 0.0, False
            return
        u = _quoted_before(where, v, p)
        if u < v:
            value[v, p], delta[v, p], gamma[v, p], exercise[v, p] = value[u, p], delta[u, p], gamma[u, p], exercise[u, p]
        else:
            need[p] = True

    @njit(cache=True)
    def _move_group(active, qtys, strikes, same, holds, target, strike, price, vol, phi, american, with_gamma, tj,
                    const, eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, new_qty, value,
                    delta, gamma, exercise, moving):
        # AdjustEngine._move of a group's slots (``qtys``/``strikes`` as `kernels._grid` rows) into slot
        # ``target`` at ``strike`` (per path): the lots move where active, held, and not already in a series
        # of that strike and expiry (``same``: the slots of the target's expiry that may hold). Each element's
        # lots after the move per slot, the quote of the new series where it moves (0 elsewhere, as a quote
        # masked by ``where``: kernels._mark_where's marks, a path's once); returns the elements moving.
        n = len(qtys)
        variants, paths = active.shape
        sqrt_t, bt, cf, df = const[0, 0], const[1, 0], const[2, 0], const[3, 0]
        need = np.empty(paths, dtype=np.bool_)
        count = 0
        for v in range(variants):
            for p in range(paths):
                q = 0.0  # AdjustEngine._current: the group's lots, summed from 0 in slot order
                for i in range(n):
                    q += _at(qtys[i], v, p)
                kk = strike[p]
                go = active[v, p] and q != 0.0
                for i in range(n):
                    if go and same[i]:
                        go = _at(qtys[i], v, p) == 0.0 or _at(strikes[i], v, p) != kk
                moving[v, p] = go
                for i in range(n):
                    new_qty[i, v, p] = 0.0 if go and i != target and holds[i] else _at(qtys[i], v, p)
                if go:
                    new_qty[target, v, p] = q
                    count += 1
                _copy_or_mark(moving, v, p, need, value, delta, gamma, exercise)
            _mark_row(0, paths, need, phi, american, with_gamma, price, strike, vol, tj, 0, sqrt_t, bt, cf, df, eep,
                      d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value[v], delta[v],
                      gamma[v], exercise[v])
        return count

    @njit(cache=True)
    def _gamma_need(active, qtys, gammas, held, hedge, price, lots_per_option, target, rest, short, need):
        # AdjustEngine._hedge_gamma up to ``need``: the other slots' gamma in lots of delta per 1% move
        # (``rest``), N (``short``: the short lots, else the option lots but the hedge's) and where the net
        # gamma is short by more than ``target`` lots per lot. Returns the elements in need.
        n = len(qtys)
        variants, paths = active.shape
        count = 0
        for v in range(variants):
            for p in range(paths):
                per_pct = price[p] * 0.01 * lots_per_option
                other, lots, every = 0.0, 0.0, 0.0
                for i in range(n):
                    qi = _at(qtys[i], v, p)
                    if i != hedge:
                        other += qi * _at(gammas[i], v, p)
                    if held[i]:  # Book.short_lots and Book.option_lots sum the slots holding lots somewhere
                        lots += -qi if -qi >= 0.0 else 0.0
                        every += abs(qi)
                hq = _at(qtys[hedge], v, p)
                rest[v, p] = other * per_pct
                short[v, p] = lots if lots > 0 else every - abs(hq)
                have = rest[v, p] + hq * _at(gammas[hedge], v, p) * per_pct
                need[v, p] = active[v, p] and have < -target * short[v, p] and short[v, p] > 0
                count += need[v, p]
        return count

    @njit(cache=True)
    def _gamma_buy(need, rest, short, held_qty, held_strike, strike, lots_per_option, target, price, vol, phi,
                   american, with_gamma, tj, const, eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew,
                   curvature, new, fresh, changed, value, delta, gamma, exercise):
        # AdjustEngine._hedge_gamma from ``need``: calls at ``strike`` (per path) quoted where needed, the whole
        # lots that bring the gamma within the target (at most N), bought where more than held — topped up
        # at the strike held, else a fresh series. Returns the elements whose lots change.
        variants, paths = need.shape
        sqrt_t, bt, cf, df = const[0, 0], const[1, 0], const[2, 0], const[3, 0]
        row = np.empty(paths, dtype=np.bool_)
        count = 0
        for v in range(variants):
            for p in range(paths):
                _copy_or_mark(need, v, p, row, value, delta, gamma, exercise)
            _mark_row(0, paths, row, phi, american, with_gamma, price, strike, vol, tj, 0, sqrt_t, bt, cf, df, eep,
                      d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value[v], delta[v],
                      gamma[v], exercise[v])
            for p in range(paths):
                hq, kk = _at(held_qty, v, p), strike[p]
                new[v, p], fresh[v, p], changed[v, p] = hq, False, False
                if not need[v, p]:
                    continue
                one = gamma[v, p] * (price[p] * 0.01 * lots_per_option)
                lots = np.ceil((-rest[v, p] - target * short[v, p]) / one) if one > 0 else 0.0
                lots = min(max(lots, 0.0), short[v, p])  # numpy.clip (finite lots)
                same = hq != 0 and _at(held_strike, v, p) == kk
                if lots > hq:
                    fresh[v, p] = not same
                    new[v, p] = lots
                    changed[v, p] = lots != hq
                    count += changed[v, p]
        return count

    @njit(cache=True)
    def _decide(when, is_open, prev, last, j, step_days, cooldown, fire):
        # AdjustEngine.decide: the condition (``when``: (1 or variants, 1 or paths)) turned true on an open
        # position, and the cooldown since the element's last round passed; the edge and the last round kept
        # in place. A row's edges first, in a loop without branches (the compiler vectorises it), then its
        # few edges' cooldowns. Returns the elements firing.
        variants, paths = fire.shape
        per_variant, per_path = when.shape[0] > 1, when.shape[1] > 1
        count = 0
        for v in range(variants):
            w, o, pr, fi = when[v if per_variant else 0], is_open[v], prev[v], fire[v]
            edges = 0
            if per_path:
                for p in range(paths):
                    now = w[p] & o[p]
                    fi[p] = now > pr[p]
                    pr[p] = now
                    edges += fi[p]
            else:
                w0 = w[0]
                for p in range(paths):
                    now = w0 & o[p]
                    fi[p] = now > pr[p]
                    pr[p] = now
                    edges += fi[p]
            if edges:
                row = last[v]
                for p in range(paths):
                    if fi[p]:
                        fi[p] = (j - row[p]) * step_days >= cooldown - 1e-9
                        if fi[p]:
                            row[p] = j
                            count += 1
        return count

    @njit(cache=True)
    def _snap(values, bounds, steps, up, lowest, out):
        # opl.runtime.engine.replay._Month.snap (``up``: snap_up): opl.runtime.market.rules._snap of the value
        # floored at the lowest listed strike, floored there again — numpy's operations in numpy's order
        # (searchsorted left, maximum letting NaN through, round(x, 10) as x·1e10 rounded to even over 1e10).
        nb = bounds.shape[0]
        eps = 1e-9
        for i in range(values.shape[0]):
            x = kernels._npmax(values[i], lowest)
            idx = 0
            while idx < nb and bounds[idx] < x:
                idx += 1
            step = steps[idx]
            edge = -np.inf if idx == 0 else bounds[idx - 1]
            q = x / step
            lower = kernels._npmax(np.floor(q + eps) * step, edge)
            upper = np.ceil(q - eps) * step
            if up:
                k = upper
            else:
                k = lower if x - lower < upper - x - eps * step else upper
            out[i] = kernels._npmax(np.rint(k * 1e10) / 1e10, lowest)


def trade_slot(old, proposed, go, restruck, *, close_fee, short_fee, long_fee, bucket, equity, month_pnl,
               counter) -> np.ndarray:
    """A slot's lots after an action's change, its trades paid and counted (in place); returns the new lots.

    Parameters
    ----------
    old, proposed
        The slot's lots and the action's proposal, (variants, paths).
    go, restruck
        Where the action goes ahead, and where it moves the lots to a new series (go included).
    close_fee, short_fee, long_fee
        Per variant (variants,): a lot's fee plus slippage to close, to sell and to buy, as `fees_of` makes
        them (passed to the kernel as they are: a round makes them once for all its trades).
    bucket, equity, month_pnl, counter
        The ``adjustments`` bucket, the equity, the month's P&L and the ``option_lots`` counter, updated in place.
    """
    shape = equity.shape
    out = np.empty(shape)
    _trade_slot(_ready(old, shape, np.float64), _ready(proposed, shape, np.float64), _ready(go, shape, np.bool_),
                _ready(restruck, shape, np.bool_), close_fee, short_fee, long_fee, bucket, equity, month_pnl,
                counter, out)
    return out


def fees_of(close_fee, short_fee, long_fee, variants: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three fees as `trade_slot`'s kernel reads them, (variants,) C-ordered floats each."""
    return tuple(_ready(x, (variants,), np.float64) for x in (close_fee, short_fee, long_fee))


def _ready(x, shape: tuple, dtype) -> np.ndarray:
    """``x`` as the kernel's one signature takes it (C-ordered, writable, ``dtype``, ``shape``): itself when it
    already is — a round's lots and masks are — without `numpy.require`'s checks (a round makes dozens)."""
    if (isinstance(x, np.ndarray) and x.dtype == dtype and x.shape == shape and x.flags.c_contiguous
            and x.flags.writeable):
        return x
    if dtype is np.bool_:
        return kernels._plain_bool(x, shape)
    return kernels._plain(x, shape)


def move_group(active, qtys, strikes, same, holds, target: int, strike, quote) -> tuple | None:
    """`AdjustEngine._move <opl.runtime.engine.adjust.AdjustEngine>` of one group compiled (``_move_group``).

    Parameters
    ----------
    active
        (variants, paths) where the action plays.
    qtys, strikes
        The group's slots' lots and strikes (each broadcast to (variants, paths)).
    same, holds
        Per slot: whether it may hold lots in a series of the target's expiry, and whether it may hold lots.
    target
        The position in the group of the slot the lots move to.
    strike
        The new strike per path (paths,).
    quote
        The new series' quote arguments (`opl.runtime.engine.replay._quote_inputs`).

    Returns
    -------
    None where nothing moves, else (lots per slot (slots, variants, paths), where the lots move, the new
    series' (value, delta, gamma, exercise) there).
    """
    shape = active.shape
    new_qty = np.empty((len(qtys), *shape))
    marks = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_)
    moving = np.empty(shape, dtype=np.bool_)
    count = _move_group(_ready(active, shape, np.bool_), tuple(kernels._grid(q) for q in qtys),
                        tuple(kernels._grid(k) for k in strikes), np.array(same, dtype=np.bool_),
                        np.array(holds, dtype=np.bool_), int(target), kernels._plain(strike, shape[1:]), *quote,
                        new_qty, *marks, moving)
    return (new_qty, moving, marks) if count else None


def gamma_need(active, qtys, gammas, held, hedge: int, price, lots_per_option: float, target: float) -> tuple | None:
    """The first half of ``AdjustEngine._hedge_gamma`` compiled (``_gamma_need``): None where no element is short
    of gamma, else (need, rest, N) as the numpy proposal computes them, each (variants, paths).

    ``qtys``/``gammas`` are every slot's, ``held`` whether each may hold lots, ``hedge`` the gamma hedge's slot.
    """
    shape = active.shape
    rest, short, need = np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_)
    count = _gamma_need(_ready(active, shape, np.bool_), tuple(kernels._grid(q) for q in qtys),
                        tuple(kernels._grid(g) for g in gammas), np.array(held, dtype=np.bool_), int(hedge),
                        kernels._plain(price, shape[1:]), float(lots_per_option), float(target), rest, short, need)
    return (need, rest, short) if count else None


def gamma_buy(need, rest, short, held_qty, held_strike, strike, lots_per_option: float, target: float,
              quote) -> tuple | None:
    """The second half of ``AdjustEngine._hedge_gamma`` compiled (``_gamma_buy``): None where no lots change,
    else (new lots, where a fresh series is bought, the calls' (value, delta, gamma, exercise) where needed,
    where the lots change), each (variants, paths). ``strike`` the calls' strike per path, ``quote`` their
    quote arguments (`opl.runtime.engine.replay._quote_inputs`)."""
    shape = need.shape
    new, fresh, changed = np.empty(shape), np.empty(shape, dtype=np.bool_), np.empty(shape, dtype=np.bool_)
    marks = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_)
    count = _gamma_buy(need, rest, short, kernels._grid(held_qty), kernels._grid(held_strike),
                       kernels._plain(strike, shape[1:]), float(lots_per_option), float(target), *quote, new, fresh,
                       changed, *marks)
    return (new, fresh, marks, changed) if count else None


def decide(when, is_open, prev, last, j: int, step_days: float, cooldown: float) -> np.ndarray:
    """`AdjustEngine.decide <opl.runtime.engine.adjust.AdjustEngine.decide>` in one compiled pass (``_decide``):
    where a round fires, (variants, paths); ``prev`` (the condition at the previous step, bool) and ``last``
    (the step of each element's last round) are updated in place, as the numpy decision replaces them.

    ``when`` is the condition's verdict (0-d, per path or per variant and path), ``is_open`` (variants, paths).
    """
    shape = is_open.shape
    verdict = np.asarray(when, dtype=np.bool_)
    verdict = np.ascontiguousarray(verdict.reshape(1, -1) if verdict.ndim < 2 else verdict)
    fire = np.empty(shape, dtype=np.bool_)
    _decide(verdict, _ready(is_open, shape, np.bool_), prev, last, int(j), float(step_days), float(cooldown), fire)
    return fire


def snap(grid, raw, *, up: bool = False) -> np.ndarray:
    """Strikes on the listed ``grid`` (a pack's ``option.strike_grid``) in one compiled pass (``_snap``):
    `opl.runtime.engine.replay._Month.snap` (``up``: ``snap_up``) bit for bit, for strikes per path (paths,)."""
    bounds, steps = _ladder(grid)
    raw = np.ascontiguousarray(raw, dtype=float)
    out = np.empty(raw.shape)
    _snap(raw.reshape(-1), bounds, steps, bool(up), float(grid[0].step), out.reshape(-1))
    return out


@lru_cache(maxsize=16)
def _ladder(grid) -> tuple[np.ndarray, np.ndarray]:
    """A strike ladder's band edges and steps, as `opl.runtime.market.rules._snap` reads them."""
    return (np.array([b.upto for b in grid[:-1]], dtype=float), np.array([b.step for b in grid], dtype=float))
