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
new series quoted by `opl.runtime.engine.kernels.marks`' ``_mark_row`` with the arguments
`opl.runtime.engine.kernels.marks.mark_where` gives it — so a plan is the numpy one bit for bit.

The common round — rolls and gamma hedges, at most a lone ``additional_margin`` abort — is one
compiled pass (`round_pass`): `AdjustEngine.play <opl.runtime.engine.adjust.AdjustEngine.play>`
on the fired elements, each action's proposal, quotes, margin before and after (by
`opl.runtime.engine.kernels.margin`' own ``_book_margin``), abort, trades and closes, written into the
book's and the ledger's arrays in place — the Python around each action, ~2,000 calls a round,
gone. `opl.runtime.engine.adjustround._Round` decides where it applies and prepares its arguments.
"""

from __future__ import annotations

import operator

import numpy as np

from opl.runtime.engine import conditionspec as spec
from opl.runtime.engine.kernels import base, margin, marks, steps
from opl.runtime.engine.kernels.base import _FALSE, _TRUE, _ZERO, njit

__all__ = ["trade_slot", "fees_of", "move_group", "gamma_need", "gamma_buy", "decide", "snap", "round_pass",
           "round_step", "round_own", "condition_program", "when_verdict", "WHEN_MEASURES"]


# `RoundStep`'s and `RoundOwn`'s fields, in their constructors' order.
_STEP_FIELDS = ("kinds", "amounts", "members", "entries", "gamma_slot", "slots", "tables", "market", "lots_per_option",
                "abort", "rule", "fees")
_OWN_FIELDS = ("qtys", "strike", "delta", "gamma", "exercise", "entry")

if njit is not None:
    import numba
    from numba.experimental import structref

    from opl.runtime.engine.kernels.base import _compare, _slot_views, _viewed

    @njit(cache=True)
    def _trade_slot(old, proposed, go, restruck, close_fee, short_fee, long_fee, bucket, equity, month_pnl,
                    counter, out):
        # AdjustEngine._apply for one slot: where ``restruck`` the old series is closed and the new one
        # opened whole; elsewhere the lots shrink (closing the difference) or grow (opening it). Closing is booked
        # first, each as `_pay` books it, written in the loop (`_traded`, `_cost`: numbers only).
        variants, paths = old.shape
        for v in range(variants):
            for p in range(paths):
                before = old[v, p]
                after = proposed[v, p] if go[v, p] else before
                out[v, p] = after
                closed, opened = _traded(before, after, restruck[v, p])
                if closed != 0.0:
                    amount, lots = _cost(closed, close_fee[v])
                    bucket[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
                    counter[v, p] += lots
                if opened != 0.0:
                    amount, lots = _cost(opened, short_fee[v] if opened < 0 else long_fee[v])
                    bucket[v, p] += amount
                    equity[v, p] += amount
                    month_pnl[v, p] += amount
                    counter[v, p] += lots

    @njit(cache=True, inline="always")
    def _cost(lots, fee):
        # `_pay`'s amount and lots counted, as numbers (see `_traded`).
        return -(abs(lots) * fee), np.int64(np.rint(abs(lots)))

    @njit(cache=True, inline="always")
    def _pay(lots, fee, v, p, bucket, equity, month_pnl, counter):
        # Lots traded at ``fee`` a lot: the cost booked to the bucket, the equity and the month's P&L, the lots
        # counted (Ledger.book and Ledger.count of the reference, element by element; `steps._close_book`'s).
        amount = -(abs(lots) * fee)
        bucket[v, p] += amount
        equity[v, p] += amount
        month_pnl[v, p] += amount
        counter[v, p] += np.int64(np.rint(abs(lots)))

    @njit(cache=True, inline="always")
    def _traded(before, after, restruck):
        # AdjustEngine._trade_slot's lots closed and opened of one element: where ``restruck`` the old series
        # closed and the new one opened whole, elsewhere the lots shrink (closing the difference) or grow (opening
        # it). Numbers only, and the bookings written in the callers' loops: an array bound to an inlined helper's
        # argument is reference counted, an atomic add and subtract a call, which a loop over elements paid.
        if restruck:
            return before, after
        closed = before - after if abs(after) < abs(before) else 0.0
        opened = after - before if abs(after) > abs(before) else 0.0
        return closed, opened

    _mark_row, _at = marks._mark_row, margin._at

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
        # AdjustEngine._move of a group's slots (``qtys``/``strikes`` as `base._grid` rows) into slot
        # ``target`` at ``strike`` (per path): the lots move where active, held, and not already in a series
        # of that strike and expiry (``same``: the slots of the target's expiry that may hold). Each element's
        # lots after the move per slot, the quote of the new series where it moves (0 elsewhere, as a quote
        # masked by ``where``: marks._mark_where's marks, a path's once); returns the elements moving.
        # The slots are ``same``'s: ``qtys``/``strikes`` are padded (`base._padded`).
        n = same.shape[0]
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
            _mark_row(_ZERO, paths, need, phi, american, with_gamma, price, strike, vol, tj, _ZERO, sqrt_t, bt, cf, df,
                      eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value[v], delta[v],
                      gamma[v], exercise[v])
        return count

    @njit(cache=True)
    def _gamma_need(active, qtys, gammas, held, hedge, price, lots_per_option, target, rest, short, need):
        # AdjustEngine._hedge_gamma up to ``need``: the other slots' gamma in lots of delta per 1% move
        # (``rest``), N (``short``: the short lots, else the option lots but the hedge's) and where the net
        # gamma is short by more than ``target`` lots per lot. Returns the elements in need.
        # The slots are ``held``'s: ``qtys``/``gammas`` are padded (`base._padded`).
        n = held.shape[0]
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
                rest[v, p], short[v, p], short_of = _gamma_short(other, lots, every, _at(qtys[hedge], v, p),
                                                                 _at(gammas[hedge], v, p), per_pct, target)
                need[v, p] = active[v, p] and short_of
                count += need[v, p]
        return count

    @njit(cache=True, inline="always")
    def _gamma_short(other, lots, every, hq, hedge_gamma, per_pct, target):
        # AdjustEngine._hedge_gamma of one element from its sums over the slots (the others' gamma × lots, the
        # short lots, every lot): the others' gamma in lots of delta per 1% move, N (the short lots, else the
        # option lots but the hedge's ``hq``) and whether the net gamma is short by more than the target.
        rest = other * per_pct
        short = lots if lots > 0 else every - abs(hq)
        have = rest + hq * hedge_gamma * per_pct
        return rest, short, have < -target * short and short > 0

    @njit(cache=True, inline="always")
    def _gamma_lots(rest, short, gamma, price, lots_per_option, target, hq, same):
        # AdjustEngine._hedge_gamma's purchase on one element short of gamma: the whole calls (of ``gamma`` each)
        # that bring it within the target, at most N; bought where more than the ``hq`` held — topped up at the
        # strike held (``same``), else a fresh series. Returns (the lots after, fresh, whether they change).
        one = gamma * (price * 0.01 * lots_per_option)
        lots = np.ceil((-rest - target * short) / one) if one > 0 else 0.0
        lots = min(max(lots, 0.0), short)  # numpy.clip (finite lots)
        if lots > hq:
            return lots, not same, lots != hq
        return hq, False, False

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
            _mark_row(_ZERO, paths, row, phi, american, with_gamma, price, strike, vol, tj, _ZERO, sqrt_t, bt, cf, df,
                      eep, d_eep, boundary, x_grid, logv_grid, spread, floor, skew, curvature, value[v], delta[v],
                      gamma[v], exercise[v])
            for p in range(paths):
                hq, kk = _at(held_qty, v, p), strike[p]
                new[v, p], fresh[v, p], changed[v, p] = hq, False, False
                if not need[v, p]:
                    continue
                new[v, p], fresh[v, p], changed[v, p] = _gamma_lots(
                    rest[v, p], short[v, p], gamma[v, p], price[p], lots_per_option, target, hq,
                    hq != 0 and _at(held_strike, v, p) == kk)
                count += changed[v, p]
        return count

    @njit(cache=True)
    def _decide(when, is_open, prev, last, j, step_days, cooldown, fire, fired_paths):
        # AdjustEngine.decide: the condition (``when``: (1 or variants, 1 or paths)) turned true on an open
        # position, and the cooldown since the element's last round passed; the edge and the last round kept
        # in place. A row's edges first, in a loop without branches over the flags' bytes (numpy's bools, 0 or
        # 1), which the compiler vectorises; then its few edges' cooldowns (~3% of the elements), found eight
        # flags at a time (`_set_bytes`); the paths where an element fires into ``fired_paths``, in order, found
        # so too. Returns their number. (On the bools with a branch per element, ~43 us a call at 5 x 10,000.)
        variants, paths = fire.shape
        per_variant, per_path = when.shape[0] > 1, when.shape[1] > 1
        count = 0
        hit = np.zeros(paths, dtype=np.uint8)
        when8, open8, prev8, fire8 = (when.view(np.uint8), is_open.view(np.uint8), prev.view(np.uint8),
                                      fire.view(np.uint8))
        one = np.uint8(1)
        for v in range(variants):
            w, o, pr, fi = when8[v if per_variant else 0], open8[v], prev8[v], fire8[v]
            edges = 0
            if per_path:
                for p in range(paths):
                    now = w[p] & o[p]
                    edge = now & (pr[p] ^ one)  # now and not before
                    fi[p] = edge
                    pr[p] = now
                    edges += edge
            else:
                w0 = w[0]
                for p in range(paths):
                    now = w0 & o[p]
                    edge = now & (pr[p] ^ one)
                    fi[p] = edge
                    pr[p] = now
                    edges += edge
            if edges:
                row, fb = last[v], fire[v]
                words = _set_bytes(fi)
                for x in range(words.shape[0] + 1):
                    if x < words.shape[0] and words[x] == 0:
                        continue
                    for p in range(8 * x, min(paths, 8 * x + 8)):
                        if fb[p]:
                            fb[p] = (j - row[p]) * step_days >= cooldown - 1e-9
                            if fb[p]:
                                row[p] = j
                                count += 1
                                hit[p] = one
        fired = 0
        if count:
            words = _set_bytes(hit)
            for x in range(words.shape[0] + 1):
                if x < words.shape[0] and words[x] == 0:
                    continue
                for p in range(8 * x, min(paths, 8 * x + 8)):
                    if hit[p]:
                        fired_paths[fired] = p
                        fired += 1
        return fired

    @njit(cache=True, inline="always")
    def _set_bytes(flags):
        # A row of byte flags read eight at a time (its whole words; the tail, paths % 8, is the caller's): a word
        # of 0 holds no flag set.
        return flags[:flags.shape[0] // 8 * 8].view(np.uint64)

    # -- ``adjust_when`` of the price and volatility triggers (`when_verdict`) -----------------------------------
    _LEAF, _AND, _OR, _NOT = 0, 1, 2, 3  # a condition program's node kinds (`condition_program`)

    @njit(cache=True)
    def _compare_into(op, x, bound, out):
        # base._compare on every element, the comparison chosen once outside the loop: chosen inside, per
        # element, it kept the loop from being vectorised (half a leaf's time).
        n = x.shape[0]
        if op == 0:
            for p in range(n):
                out[p] = x[p] < bound
        elif op == 1:
            for p in range(n):
                out[p] = x[p] > bound
        elif op == 2:
            for p in range(n):
                out[p] = x[p] <= bound
        elif op == 3:
            for p in range(n):
                out[p] = x[p] >= bound
        elif op == 4:
            for p in range(n):
                out[p] = x[p] == bound
        else:
            for p in range(n):
                out[p] = x[p] != bound

    @njit(cache=True, error_model="numpy")  # numpy's division: a price or volatility of 0 gives inf or NaN
    def _leaf(measure, op, bound, price, open_price, vol, open_vol, floor, factor, out):
        # One trigger on every path: triggers._measure's formula (the at-the-money volatility as
        # marking.SmileRule.atm makes it, max(floor, vol·(1 + spread)), NaN passing), compared with its bound —
        # the measure's loop, then the comparison's, each without a branch (the compiler vectorises them).
        paths = price.shape[0]
        x = np.empty(paths)
        if measure == 0:  # price_retrace
            for p in range(paths):
                x[p] = (price[p] / open_price[p] - 1.0) * 100.0
        else:
            for p in range(paths):
                x[p] = base._npmax(floor, vol[p] * factor) / base._npmax(floor, open_vol[p] * factor)
            if measure == 1:  # vega_crush
                for p in range(paths):
                    x[p] = (1.0 - x[p]) * 100.0
            else:  # iv_change
                for p in range(paths):
                    x[p] = (x[p] - 1.0) * 100.0
        _compare_into(op, x, bound, out)

    @njit(cache=True, error_model="numpy")
    def _verdict(program, bounds, price, open_price, vol, open_vol, floor, factor, out):
        # The condition per path: the program's nodes in postfix order (kind, measure, comparison), each into its
        # own row, the operands of a combination the rows on the stack; the last node's row into ``out``.
        nodes, paths = program.shape[0], price.shape[0]
        rows = np.empty((nodes, paths), dtype=np.bool_)
        stack = np.empty(nodes, dtype=np.int64)
        top = 0
        for i in range(nodes):
            kind, r = program[i, 0], rows[i]
            if kind == _LEAF:
                _leaf(program[i, 1], program[i, 2], bounds[i], price, open_price, vol, open_vol, floor, factor, r)
                top += 1
            elif kind == _NOT:
                a = rows[stack[top - 1]]
                for p in range(paths):
                    r[p] = not a[p]
            else:
                a, b = rows[stack[top - 2]], rows[stack[top - 1]]
                top -= 1
                if kind == _AND:
                    for p in range(paths):
                        r[p] = a[p] and b[p]
                else:
                    for p in range(paths):
                        r[p] = a[p] or b[p]
            stack[top - 1] = i
        last = rows[stack[0]]
        for p in range(paths):  # (a loop: not a slice assigned, `opl.runtime.engine.kernels`' rules)
            out[p] = last[p]

    @njit(cache=True)
    def _snap(values, bounds, steps, up, lowest, out):
        # opl.runtime.engine.months._Month.snap (``up``: snap_up): opl.runtime.market.rules._snap of the value
        # floored at the lowest listed strike, floored there again — numpy's operations in numpy's order
        # (searchsorted left, maximum letting NaN through, round(x, 10) as x·1e10 rounded to even over 1e10).
        nb = bounds.shape[0]
        eps = 1e-9
        for i in range(values.shape[0]):
            x = base._npmax(values[i], lowest)
            idx = 0
            while idx < nb and bounds[idx] < x:
                idx += 1
            step = steps[idx]
            edge = -np.inf if idx == 0 else bounds[idx - 1]
            q = x / step
            lower = base._npmax(np.floor(q + eps) * step, edge)
            upper = np.ceil(q - eps) * step
            if up:
                k = upper
            else:
                k = lower if x - lower < upper - x - eps * step else upper
            out[i] = base._npmax(np.rint(k * 1e10) / 1e10, lowest)

    # -- the common round in one pass (`round_pass`) -------------------------------------------------------
    # A round's elements are (variant, path) pairs on its paths ``cols``: index k of a (variants, m) array is path
    # cols[k] of the book's (variants, paths) arrays. The slots' numbers there are gathered once into the round's
    # own (slots, variants, m) arrays, ``now`` = (lots, strike, value, delta, gamma, exercise, entry), played
    # there and written back at the end (`_gather`, `_scatter`): a slot's array read from a tuple per element
    # costs its reference count. An action's plan (AdjustEngine._Plan) is ``plan`` = (lots per slot, where a
    # slot moves to a new series, its strike, value, delta, gamma and exercise there, the elements a proposal
    # marks, the slots changed, their order of change and count, where the action trades, two scratch arrays).
    _ROLL, _GAMMA = 0, 1  # `round_pass`'s action kinds

    # `_gather` and `_scatter` are inlined in `_round`: as kernels of their own they took the round's tuples of
    # sixteen slots as arguments, and their compile grew with them (9.6 and 4.9 s of a fresh cache's CPU, 2.0 and
    # 1.5 s with five slots); inlined, the round's compile grows by ~2 s with them.
    @njit(cache=True, inline="always")
    def _lots_of(qtys, dynamic, place, i):
        # Slot i's lots: the base slots' and the dynamic slots' are tuples of their own (`_round`).
        return qtys[1][place[i]] if dynamic[i] else qtys[0][place[i]]

    @njit(cache=True, inline="always")
    def _gather(cols, n, qtys, strikes, values, gammas, written, dynamic, place, now):
        # The slots' lots, strikes, marks and gammas on the round's elements: a dynamic slot's from its own
        # (variants, paths) arrays (the ones `_scatter` writes), a base slot's from its `base._grid` rows. The
        # delta, exercise flag and entry are not read: the round only writes them, where it moves lots, and
        # `_scatter` writes back those elements only — each gathered one is a cache miss on a wide array. Slot i
        # is entry ``place[i]`` of the base slots' tuples or of the dynamic slots' (the rest pad them, `_round`).
        lots_, strike_, value_, gamma_ = now[0], now[1], now[2], now[4]
        variants, m = lots_.shape[1], cols.shape[0]
        for i in range(n):
            q = _lots_of(qtys, dynamic, place, i)
            for v in range(variants):
                for k in range(m):
                    lots_[i, v, k] = q[v, cols[k]]
            at = place[i]
            if dynamic[i]:
                ks, vs, gs = written[0][at], written[1][at], written[3][at]
                for v in range(variants):
                    for k in range(m):
                        c = cols[k]
                        strike_[i, v, k], value_[i, v, k], gamma_[i, v, k] = ks[v, c], vs[v, c], gs[v, c]
                continue
            ks, vs, gs = strikes[at], values[at], gammas[at]
            for v in range(variants):
                rk, rv, rg = v if ks.shape[0] > 1 else 0, v if vs.shape[0] > 1 else 0, v if gs.shape[0] > 1 else 0
                for k in range(m):
                    c = cols[k]
                    strike_[i, v, k] = ks[rk, c if ks.shape[1] > 1 else 0]
                    value_[i, v, k] = vs[rv, c if vs.shape[1] > 1 else 0]
                    gamma_[i, v, k] = gs[rg, c if gs.shape[1] > 1 else 0]

    @njit(cache=True, inline="always")
    def _scatter(cols, n, qtys, written, dynamic, place, touched, dirty, now):
        # The round's lots of the first ``n`` slots where it touched them, and the new series where it moved lots
        # (dynamic slots only), written into the book's arrays.
        lots_, strike_, value_, delta_, gamma_, exercise_, entry_ = now
        variants, m = lots_.shape[1], cols.shape[0]
        for i in range(n):
            if not touched[i]:
                continue
            q = _lots_of(qtys, dynamic, place, i)
            for v in range(variants):
                for k in range(m):
                    q[v, cols[k]] = lots_[i, v, k]
            if not dynamic[i]:
                continue
            at = place[i]
            ks, vs, ds, gs, es, ns = (written[0][at], written[1][at], written[2][at], written[3][at], written[4][at],
                                      written[5][at])
            for v in range(variants):
                for k in range(m):
                    if dirty[i, v, k]:
                        c = cols[k]
                        ks[v, c], vs[v, c], ds[v, c] = strike_[i, v, k], value_[i, v, k], delta_[i, v, k]
                        gs[v, c], es[v, c], ns[v, c] = gamma_[i, v, k], exercise_[i, v, k], entry_[i, v, k]

    @njit(cache=True)
    def _any_lots(q):
        # Whether (variants, paths) lots hold any anywhere (`Slot.held`): a block at a time, its test without a
        # branch (the compiler vectorises it), stopping after the first block holding some.
        flat = q.reshape(-1)
        size = flat.shape[0]
        for start in range(0, size, 2048):
            hit = False
            for x in range(start, min(size, start + 2048)):
                hit |= flat[x] != 0.0
            if hit:
                return True
        return False

    @njit(cache=True)
    def _holding(lots_, i):
        # Whether slot i holds lots on the round's elements (`Slot.held` of the round's `Book.columns`).
        for v in range(lots_.shape[1]):
            for k in range(lots_.shape[2]):
                if lots_[i, v, k] != 0.0:
                    return True
        return False

    @njit(cache=True, inline="always")
    def _record(plan, si):
        # AdjustEngine._change's order: a slot's first change appends it to the plan's changes.
        changed, order, count = plan[8], plan[9], plan[10]
        if not changed[si]:
            changed[si] = True
            order[count[0]] = si
            count[0] += 1

    @njit(cache=True)
    def _quote_into(t, where, price, vol, tables, market, plan):
        # Slot t's series quoted at the plan's strikes where ``where`` (variants, m), into the plan's marks: each
        # (path, strike) once, in one `marks._mark_row` call (`_Month.quote`'s marks), the variants sharing it.
        phi, american, tt, const, eeps, d_eeps, boundaries, place = tables  # (the tables: the dynamic slots')
        with_gamma, x_grid, logv_grid, spread, floor, skew, curvature = market
        nk, nval, ndel, ngam, nex = plan[2], plan[3], plan[4], plan[5], plan[6]
        variants, m = where.shape
        sp, kp, vp = np.empty(variants * m), np.empty(variants * m), np.empty(variants * m)
        at = np.empty(variants * m, dtype=np.int64)
        cnt = _ZERO
        # `first[v, k]`: the first variant quoted on path k at the strike of variant v there (a mark depends on the
        # path's price and volatility and the strike only: `marks._mark_where` shares it so too). Written
        # in the loop, not an inlined helper: its arrays' reference counts, per element, cost more than the search.
        first = np.empty((variants, m), dtype=np.int64)
        for v in range(variants):
            for k in range(m):
                if where[v, k]:
                    u = 0
                    while u < v and not (where[u, k] and nk[t, u, k] == nk[t, v, k]):
                        u += 1
                    first[v, k] = u
                    if u == v:
                        sp[cnt], kp[cnt], vp[cnt], at[cnt] = price[k], nk[t, v, k], vol[k], v * m + k
                        cnt += 1
        need = np.ones(cnt, dtype=np.bool_)
        ov, od, og, oe = np.empty(cnt), np.empty(cnt), np.empty(cnt), np.empty(cnt, dtype=np.bool_)
        at_t = place[t]
        # (the scratch rows typed read-only, as a month's prices and volatilities are: one `_mark_row` signature)
        _mark_row(_ZERO, cnt, need, phi[t], american[t], with_gamma, _viewed(sp), kp, _viewed(vp), tt[t], _ZERO,
                  const[0, t], const[1, t], const[2, t], const[3, t], eeps[at_t], d_eeps[at_t], boundaries[at_t],
                  x_grid, logv_grid, spread, floor, skew, curvature, ov, od, og, oe)
        for e in range(cnt):
            v, k = at[e] // m, at[e] % m
            nval[t, v, k], ndel[t, v, k], ngam[t, v, k], nex[t, v, k] = ov[e], od[e], og[e], oe[e]
        for v in range(1, variants):
            for k in range(m):
                if where[v, k]:
                    u = first[v, k]
                    if u < v:
                        nval[t, v, k], ndel[t, v, k], ngam[t, v, k], nex[t, v, k] = (nval[t, u, k], ndel[t, u, k],
                                                                                     ngam[t, u, k], nex[t, u, k])

    @njit(cache=True)
    def _propose_move(members, target, strike_row, act, now, plan, held, expiry, price, vol, tables, market):
        # AdjustEngine._move (`_move_group`) of one group's lots into slot ``target`` at the per-path strikes
        # ``strike_row``: where active, holding lots, and not already in a series of that strike and expiry; the
        # new series quoted there.
        pq, rs, nk, moving, changed, trades, total = plan[0], plan[1], plan[2], plan[7], plan[8], plan[11], plan[12]
        strike_ = now[1]
        variants, m = act.shape
        count = 0
        for v in range(variants):
            for k in range(m):
                q = 0.0  # AdjustEngine._current: the group's lots, summed from 0 in slot order
                for si in members:
                    q += pq[si, v, k]
                total[v, k] = q
                kk = strike_row[k]
                go = act[v, k] and q != 0.0
                for si in members:
                    if go and (changed[si] or held[si]) and expiry[si] == expiry[target]:
                        go = pq[si, v, k] == 0.0 or strike_[si, v, k] != kk
                moving[v, k] = go
                count += go
        if count == 0:
            return
        for si in members:  # the others that may hold lots are emptied where the lots move, in slot order
            if si != target and (changed[si] or held[si]):
                _record(plan, si)
                for v in range(variants):
                    for k in range(m):
                        if moving[v, k]:
                            pq[si, v, k] = 0.0
        _record(plan, target)
        for v in range(variants):
            for k in range(m):
                if moving[v, k]:
                    pq[target, v, k] = total[v, k]
                    rs[target, v, k] = True
                    nk[target, v, k] = strike_row[k]
                    trades[v, k] = True
        _quote_into(target, moving, price, vol, tables, market, plan)

    @njit(cache=True)
    def _propose_gamma(hedge, target, strike_row, act, now, plan, held, price, vol, tables, market, lots_per_option):
        # AdjustEngine._hedge_gamma (`_gamma_need`, `_gamma_buy`): calls at ``strike_row`` (the listed strike at
        # or above the price) bought where the net gamma is short of the target.
        pq, rs, nk, need, trades, rest, short = plan[0], plan[1], plan[2], plan[7], plan[11], plan[12], plan[13]
        ngam, lots_, strike_, gamma_ = plan[5], now[0], now[1], now[4]
        n, variants, m = lots_.shape
        count = 0
        for v in range(variants):
            for k in range(m):
                per_pct = price[k] * 0.01 * lots_per_option
                other, lots, every = 0.0, 0.0, 0.0
                for i in range(n):
                    qi = lots_[i, v, k]
                    if i != hedge:
                        other += qi * gamma_[i, v, k]
                    if held[i]:
                        lots += -qi if -qi >= 0.0 else 0.0
                        every += abs(qi)
                rest[v, k], short[v, k], short_of = _gamma_short(other, lots, every, lots_[hedge, v, k],
                                                                 gamma_[hedge, v, k], per_pct, target)
                need[v, k] = act[v, k] and short_of
                nk[hedge, v, k] = strike_row[k]
                count += need[v, k]
        if count == 0:
            return
        _quote_into(hedge, need, price, vol, tables, market, plan)
        count = 0
        for v in range(variants):
            for k in range(m):
                if need[v, k]:
                    hq = lots_[hedge, v, k]
                    pq[hedge, v, k], rs[hedge, v, k], trades[v, k] = _gamma_lots(
                        rest[v, k], short[v, k], ngam[hedge, v, k], price[k], lots_per_option, target, hq,
                        hq != 0 and strike_[hedge, v, k] == strike_row[k])
                    count += trades[v, k]
        if count:  # (else the lots stay as held: `_gamma_lots` gave them back, with no new series)
            _record(plan, hedge)

    @njit(cache=True)
    def _round_margin(after, act, now, plan, held, is_call, expiry, lots, price, rule, out):
        # The exchange requirement of every variant on the round's paths where an element is active, into
        # ``out`` (variants, m): of the book (AdjustEngine._margin_before), or ``after`` the plan
        # (AdjustEngine._added_margin) — the series held on the round's paths, in the book's order, with the
        # plan's lots and new series — by `margin._book_margin` itself, as `kernels.book_margin` calls it.
        pq, rs, nk, nval, changed = plan[0], plan[1], plan[2], plan[3], plan[8]
        lots_, strike_, value_ = now[0], now[1], now[2]
        n, variants, m = lots_.shape
        chosen = np.empty(n, dtype=np.int64)
        h = _ZERO
        for i in range(n):
            hold = held[i]
            if after and changed[i]:
                hold = False
                for v in range(variants):
                    for k in range(m):
                        hold = hold or pq[i, v, k] != 0.0
            if hold:
                chosen[h] = i
                h += 1
        # `base.BOOK_SLOTS` rows (a round's book has at most that many slots: `adjustround._Round.of`), passed as
        # the step's margin passes its series (`base._slot_views`): `margin._margin_blocks` compiles
        # once, not again for 3-D arrays (~15 s of a fresh cache's CPU).
        shape = (base.BOOK_SLOTS, variants, m)
        ks, ps, qs = np.empty(shape), np.empty(shape), np.empty(shape)
        calls, ends = np.empty(h, dtype=np.bool_), np.empty(h)
        has_call, has_put = False, False
        for x in range(h):
            i = chosen[x]
            calls[x], ends[x] = is_call[i], expiry[i]
            has_call, has_put = has_call or is_call[i], has_put or not is_call[i]
            moved = after and changed[i]
            for v in range(variants):
                for k in range(m):
                    new = moved and rs[i, v, k]
                    ks[x, v, k] = nk[i, v, k] if new else strike_[i, v, k]
                    ps[x, v, k] = nval[i, v, k] if new else value_[i, v, k]
                    qs[x, v, k] = pq[i, v, k] if moved else lots_[i, v, k]
        picked = np.empty(m, dtype=np.int64)
        width = 0
        for k in range(m):
            live = False
            for v in range(variants):
                live = live or act[v, k]
            if live:
                picked[width] = k
                width += 1
        (futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
         futures_underlying, spread, straddle, strangle, wide_bit, one) = rule
        part = np.empty((variants, width))
        # kernels.book_margin's pairing of a strangle with a spread both ways, where calls and puts are held
        margin._book_margin(calls, ends, _slot_views(ks), _slot_views(ps), _slot_views(qs), h,
                            picked[:width], price, _viewed(lots), one, one, _FALSE,
                            futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit,
                            contract_size, futures_underlying, spread, straddle, strangle,
                            spread and (straddle or strangle) and has_call and has_put, wide_bit, part)
        for x in range(width):
            for v in range(variants):
                out[v, picked[x]] = part[v, x]

    @njit(cache=True)
    def _apply_plan(go, cols, now, plan, dirty, fees, adjustments, equity, month_pnl, counter):
        # AdjustEngine._apply: each changed slot, in the plan's order, traded where the action goes ahead (its
        # costs into ``adjustments``, `_traded`), the new series' strike and marks set where it moves there.
        pq, rs, nk, nval, ndel, ngam, nex, order, count = (plan[0], plan[1], plan[2], plan[3], plan[4], plan[5],
                                                           plan[6], plan[9], plan[10])
        lots_, strike_, value_, delta_, gamma_, exercise_, entry_ = now
        close_fee, short_fee, long_fee = fees[0], fees[1], fees[2]
        # Element by element, its slots in the plan's order: an element's trades come in the same order as slot by
        # slot, and its account's cache lines (wide (variants, paths) arrays) are fetched once, not once a slot.
        variants, m = go.shape
        for v in range(variants):
            for k in range(m):
                if not go[v, k]:
                    continue
                c = cols[k]
                for x in range(count[0]):
                    i = order[x]
                    moved = rs[i, v, k]
                    # (`_trade_slot`'s bookings, closing first)
                    closed, opened = _traded(lots_[i, v, k], pq[i, v, k], moved)
                    if closed != 0.0:
                        amount, lots = _cost(closed, close_fee[v])
                        adjustments[v, c] += amount
                        equity[v, c] += amount
                        month_pnl[v, c] += amount
                        counter[v, c] += lots
                    if opened != 0.0:
                        amount, lots = _cost(opened, short_fee[v] if opened < 0 else long_fee[v])
                        adjustments[v, c] += amount
                        equity[v, c] += amount
                        month_pnl[v, c] += amount
                        counter[v, c] += lots
                    lots_[i, v, k] = pq[i, v, k]
                    if moved:
                        dirty[i, v, k] = True
                        strike_[i, v, k], value_[i, v, k], entry_[i, v, k] = nk[i, v, k], nval[i, v, k], nval[i, v, k]
                        delta_[i, v, k], gamma_[i, v, k], exercise_[i, v, k] = ndel[i, v, k], ngam[i, v, k], nex[i, v, k]

    @njit(cache=True, inline="always")
    def _scratch(n, variants, m):
        # The round's own arrays: the slots' numbers on its elements (``now``, `_gather`), an action's plan
        # (``plan``: the module's comment above) and where a dynamic slot moved to a new series (``dirty``).
        shape = (n, variants, m)
        now = (np.empty(shape), np.empty(shape), np.empty(shape), np.zeros(shape), np.empty(shape),
               np.zeros(shape, dtype=np.bool_), np.zeros(shape))
        plan = (np.empty(shape), np.zeros(shape, dtype=np.bool_), np.zeros(shape), np.zeros(shape), np.zeros(shape),
                np.zeros(shape), np.zeros(shape, dtype=np.bool_), np.zeros((variants, m), dtype=np.bool_),
                np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int64), np.zeros(1, dtype=np.int64),
                np.zeros((variants, m), dtype=np.bool_), np.zeros((variants, m)), np.zeros((variants, m)))
        return now, plan, np.zeros(shape, dtype=np.bool_)

    # The round's phases below take the arrays they use one by one, not the round's tuples: each array bound to a
    # helper's argument, inlined or not, is reference counted (an atomic add and subtract), and the plan's,
    # the counters' and the tables' tuples hold some seventy arrays — bound at each action, that cost ~5 us a
    # round (benchmarks/bench_round.py's rounds).
    @njit(cache=True, inline="always")
    def _start(cols, fire, hedge, pending, goods, rounds, act, lots):
        # The fired elements active, their rounds counted, and their futures lots for the margin:
        # (|the strategy's futures, none| + |the hedge|) + |futures from exercise and goods| (positions._Margins).
        variants, m = act.shape
        for v in range(variants):
            for k in range(m):
                c = cols[k]
                act[v, k] = fire[v, c]
                # A counter written only where it counts (here, and an action's done and refused in `_tally`): the
                # round's elements are scattered, and a write to each had every one's line of the counter fetched
                # and written back (~10-20% of a 30,000-path round).
                if act[v, k]:
                    rounds[v, c] += 1
                lots[v, k] = (0.0 + abs(hedge[v, c])) + abs(pending[v, c] + goods[v, c])

    @njit(cache=True, inline="always")
    def _any_active(act):
        # Whether an element is still active (a count, as the loop the compiler vectorises).
        live = 0
        for v in range(act.shape[0]):
            for k in range(act.shape[1]):
                live += act[v, k]
        return live != 0

    @njit(cache=True, inline="always")
    def _fresh_plan(lots_, pq, rs, changed, order_count, trades):
        # An action's plan before its proposal: every slot's lots as they are (a loop: `kernels`' rules), nothing
        # moved, changed or traded.
        n, variants, m = lots_.shape
        for i in range(n):
            for v in range(variants):
                for k in range(m):
                    pq[i, v, k] = lots_[i, v, k]
        rs[:] = False
        changed[:] = False
        order_count[0] = 0
        trades[:] = False

    @njit(cache=True, inline="always")
    def _refuse(abort_op, abort_bound, capital, nothing, act, aborted, before, after):
        # AdjustEngine._aborted's test: where the action's extra margin (after it against before it, in percent
        # of the requirement before, or of the capital where there was none) passes the bound, the element
        # refused and no longer active.
        variants, m = act.shape
        for v in range(variants):
            for k in range(m):
                if act[v, k]:
                    added = 0.0
                    if nothing:
                        after[v, k] = before[v, k]
                    else:
                        basis = before[v, k] if before[v, k] > 0 else capital
                        added = (after[v, k] - before[v, k]) / basis * 100.0
                    aborted[v, k] = _compare(abort_op, added, abort_bound)
                    act[v, k] = not aborted[v, k]  # the action goes ahead where it is not refused

    @njit(cache=True, inline="always")
    def _rehold(order, count, lots_, touched, held):
        # The slots an action changed (its plan's order) touched, and their `Slot.held` on the round's elements
        # again.
        for x in range(count):
            i = order[x]
            touched[i] = True
            held[i] = _holding(lots_, i)

    @njit(cache=True, inline="always")
    def _tally(cols, act, aborted, trades, done, refused, before, after):
        # An action's done and refused counted; the margin after it the next action's before
        # (AdjustEngine._margins_after). Returns the number of elements refused.
        variants, m = act.shape
        count = 0
        for v in range(variants):
            for k in range(m):
                c = cols[k]
                if act[v, k] and trades[v, k]:
                    done[v, c] += 1
                if aborted[v, k]:
                    refused[v, c] += 1
                    count += 1
                if act[v, k]:
                    before[v, k] = after[v, k]
        return count

    @njit(cache=True, inline="always")
    def _close_refused(cols, aborted, lots_, close_fee, futures_fee, hedge, pending, goods, costs, equity, month_pnl,
                       option_lots, futures_lots, exits_adjust, lots, closed):
        # An abort that exits: each refused element's book closed (positions._close_all, `steps._close_book`'s
        # order: every slot's lots, then the hedge), counted as an exit of the adjustment. Returns how many.
        n, variants, m = lots_.shape
        count = 0
        for v in range(variants):
            for k in range(m):
                if aborted[v, k]:
                    c = cols[k]
                    for i in range(n):
                        if lots_[i, v, k] != 0:
                            _pay(lots_[i, v, k], close_fee[v], v, c, costs, equity, month_pnl, option_lots)
                        lots_[i, v, k] = 0.0
                    if hedge[v, c] != 0:
                        _pay(hedge[v, c], futures_fee[v], v, c, costs, equity, month_pnl, futures_lots)
                    hedge[v, c] = 0.0
                    lots[v, k] = (0.0 + 0.0) + abs(pending[v, c] + goods[v, c])
                    exits_adjust[v, c] += 1
                    closed[v, k] = True
                    count += 1
        return count

    @njit(cache=True, inline="always")
    def _exits(cols, closed, early, exits, early_exits, is_open):
        # The elements the round closed counted as exits (early ones too) and no longer open.
        variants, m = closed.shape
        for v in range(variants):
            for k in range(m):
                if closed[v, k]:
                    c = cols[k]
                    exits[v, c] += 1
                    early_exits[v, c] += early
                    is_open[v, c] = False

    @njit(cache=True)
    def _round(cols, fire, step, own, strike_rows, strikes, values, gammas, dynamic_values, price, vol, account,
               ledger, counters, early, held_out):
        # AdjustEngine.play on the fired elements (module docstring); the slots' `Slot.held` after it into
        # ``held_out``; returns the number of elements closed. ``step`` (a `RoundStep`: the round's fixed inputs and
        # the step's quote tables) and ``own`` (a `RoundOwn`: the month's lots, the dynamic slots' strikes and marks
        # but their values) arrive as one pointer each (`round_pass`). The slots are those of the facts ``slots``
        # (is_call, american, extra days, dynamic, each one's entry in its kind's tuples): the base slots' tuples
        # (``qtys[0]``, ``strikes``, ``values``, ``gammas``) and the dynamic slots' (``qtys[1]``, ``written``'s, the
        # tables') are padded with dummies to eight (`adjustround._Round.play`), so a book of up to eight of each
        # (the loop's four-leg candidate: four and five) compiles one signature; the counters are padded too.
        # Each action: a fresh plan, its proposal, the abort test on the margins, the plan applied, its counts and
        # the closes on an abort that exits.
        kinds, amounts, members, entries = step.kinds, step.amounts, step.members, step.entries
        slots, tables, market, lots_per_option = step.slots, step.tables, step.market, step.lots_per_option
        abort_op, abort_bound, exit_on_abort, capital = step.abort
        rule, fees = step.rule, step.fees
        is_call, expiry, dynamic, place = slots[0], slots[2], slots[3], slots[4]
        qtys = own.qtys
        written = (own.strike, dynamic_values, own.delta, own.gamma, own.exercise, own.entry)
        hedge, pending, goods = account
        n, variants, m = is_call.shape[0], fire.shape[0], cols.shape[0]
        now, plan, dirty = _scratch(n, variants, m)
        _gather(cols, n, qtys, strikes, values, gammas, written, dynamic, place, now)
        lots_ = now[0]
        pq, rs, changed, order, order_count, trades = plan[0], plan[1], plan[8], plan[9], plan[10], plan[11]
        act, aborted, closed = (np.zeros((variants, m), dtype=np.bool_), np.zeros((variants, m), dtype=np.bool_),
                                np.zeros((variants, m), dtype=np.bool_))
        lots, before, after = np.empty((variants, m)), np.zeros((variants, m)), np.zeros((variants, m))
        _start(cols, fire, hedge, pending, goods, counters[2], act, lots)
        held, touched = np.empty(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
        for i in range(n):
            held[i] = _holding(lots_, i)
        priced, closing = False, 0
        for a in range(kinds.shape[0]):
            if not _any_active(act):
                break
            _fresh_plan(lots_, pq, rs, changed, order_count, trades)
            if kinds[a] == _ROLL:
                for e in range(entries.shape[0]):
                    if entries[e, 0] == a:
                        group = members[entries[e, 1]]
                        _propose_move(group[group >= 0], entries[e, 2], strike_rows[e], act, now, plan, held, expiry,
                                      price, vol, tables, market)
            else:
                _propose_gamma(step.gamma_slot, amounts[a], strike_rows[entries.shape[0]], act, now, plan, held, price,
                               vol, tables, market, lots_per_option)
            aborted[:] = False
            if abort_op >= 0:  # its requirement before it the previous action's after it (`_margin_before`)
                if not priced:
                    _round_margin(_FALSE, act, now, plan, held, is_call, expiry, lots, price, rule, before)
                    priced = True
                nothing = order_count[0] == 0  # nothing proposed: the book after is the book before
                if not nothing:
                    _round_margin(_TRUE, act, now, plan, held, is_call, expiry, lots, price, rule, after)
                _refuse(abort_op, abort_bound, capital, nothing, act, aborted, before, after)
            _apply_plan(act, cols, now, plan, dirty, fees, ledger[0], ledger[2], ledger[3], counters[0])
            _rehold(order, order_count[0], lots_, touched, held)
            if _tally(cols, act, aborted, trades, counters[6 + 2 * a], counters[7 + 2 * a], before, after) and \
                    exit_on_abort:
                closing += _close_refused(cols, aborted, lots_, fees[0], fees[3], hedge, pending, goods, ledger[1],
                                          ledger[2], ledger[3], counters[0], counters[1], counters[3], lots, closed)
                for i in range(n):
                    touched[i] = True
                    held[i] = _holding(lots_, i)
        _scatter(cols, n, qtys, written, dynamic, place, touched, dirty, now)
        _exits(cols, closed, early, counters[4], counters[5], ledger[4])
        for i in range(n):
            if touched[i]:  # put_columns: held on the round's paths, or before and still somewhere else
                held_out[i] = held[i] or (held_out[i] and _any_lots(_lots_of(qtys, dynamic, place, i)))
        return closing

    # The round's inputs that stay while a pass's step (`RoundStep`) or month (`RoundOwn`) does, each held in one
    # structref: numba unboxes a structref argument as one pointer (~1.3 us), a tuple of arrays array by array
    # (~0.12 us each). Made once (`round_step`, `round_own`) and passed at every round: of a call's 166 arrays, 103
    # arrive so (benchmarks/bench_round.py).
    @structref.register
    class _RoundStepType(numba.types.StructRef):
        def preprocess_fields(self, fields):
            return tuple((name, numba.types.unliteral(t)) for name, t in fields)

    class RoundStep(structref.StructRefProxy):
        """A pass's compiled round's fixed inputs and one step's quote tables (`round_step`)."""

    structref.define_proxy(RoundStep, _RoundStepType, list(_STEP_FIELDS))

    @structref.register
    class _RoundOwnType(numba.types.StructRef):
        def preprocess_fields(self, fields):
            return tuple((name, numba.types.unliteral(t)) for name, t in fields)

    class RoundOwn(structref.StructRefProxy):
        """A month's slots' lots, the dynamic slots' strikes and marks but their values, as a round writes them in
        place (`round_own`)."""

    structref.define_proxy(RoundOwn, _RoundOwnType, list(_OWN_FIELDS))

    @njit(cache=True)
    def _new_step(kinds, amounts, members, entries, gamma_slot, slots, tables, market, lots_per_option, abort, rule,
                  fees):
        # (Cached here: the proxy's own constructor is compiled again in every process.)
        return RoundStep(kinds, amounts, members, entries, gamma_slot, slots, tables, market, lots_per_option, abort,
                         rule, fees)

    @njit(cache=True)
    def _new_own(qtys, strike, delta, gamma, exercise, entry):
        return RoundOwn(qtys, strike, delta, gamma, exercise, entry)


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
        return base._plain_bool(x, shape)
    return base._plain(x, shape)


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
        The new series' quote arguments (`opl.runtime.engine.adjustround._quote_inputs`).

    Returns
    -------
    None where nothing moves, else (lots per slot (slots, variants, paths), where the lots move, the new
    series' (value, delta, gamma, exercise) there).
    """
    shape = active.shape
    new_qty = np.empty((len(qtys), *shape))
    marks = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_)
    moving = np.empty(shape, dtype=np.bool_)
    count = _move_group(_ready(active, shape, np.bool_), base._slot_tuple(qtys),
                        base._slot_tuple(strikes), np.array(same, dtype=np.bool_),
                        np.array(holds, dtype=np.bool_), int(target), base._plain(strike, shape[1:]), *quote,
                        new_qty, *marks, moving)
    return (new_qty, moving, marks) if count else None


def gamma_need(active, qtys, gammas, held, hedge: int, price, lots_per_option: float, target: float) -> tuple | None:
    """The first half of ``AdjustEngine._hedge_gamma`` compiled (``_gamma_need``): None where no element is short
    of gamma, else (need, rest, N) as the numpy proposal computes them, each (variants, paths).

    ``qtys``/``gammas`` are every slot's, ``held`` whether each may hold lots, ``hedge`` the gamma hedge's slot.
    """
    shape = active.shape
    rest, short, need = np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_)
    # (Padded to 8, not to the round's `base.BOOK_SLOTS`: it reads the tuples per element, and its compile
    # grows with their length; a playbook the round does not cover plays it.)
    count = _gamma_need(_ready(active, shape, np.bool_), base._slot_tuple(qtys),
                        base._slot_tuple(gammas), np.array(held, dtype=np.bool_), int(hedge),
                        base._input(price, shape[1:]), float(lots_per_option), float(target), rest, short, need)
    return (need, rest, short) if count else None


def gamma_buy(need, rest, short, held_qty, held_strike, strike, lots_per_option: float, target: float,
              quote) -> tuple | None:
    """The second half of ``AdjustEngine._hedge_gamma`` compiled (``_gamma_buy``): None where no lots change,
    else (new lots, where a fresh series is bought, the calls' (value, delta, gamma, exercise) where needed,
    where the lots change), each (variants, paths). ``strike`` the calls' strike per path, ``quote`` their
    quote arguments (`opl.runtime.engine.adjustround._quote_inputs`)."""
    shape = need.shape
    new, fresh, changed = np.empty(shape), np.empty(shape, dtype=np.bool_), np.empty(shape, dtype=np.bool_)
    marks = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_)
    count = _gamma_buy(need, rest, short, base._grid(held_qty), base._grid(held_strike),
                       base._plain(strike, shape[1:]), float(lots_per_option), float(target), *quote, new, fresh,
                       changed, *marks)
    return (new, fresh, marks, changed) if count else None


def decide(when, is_open, prev, last, j: int, step_days: float, cooldown: float) -> tuple[np.ndarray, np.ndarray]:
    """`AdjustEngine.decide <opl.runtime.engine.adjust.AdjustEngine.decide>` in one compiled pass (``_decide``):
    where a round fires, (variants, paths), and the paths where it fires on a variant at least, in order (what
    ``np.flatnonzero(fire.any(axis=0))`` gives); ``prev`` (the condition at the previous step, bool) and
    ``last`` (the step of each element's last round) are updated in place, as the numpy decision replaces them.

    ``when`` is the condition's verdict (0-d, per path or per variant and path), ``is_open`` (variants, paths).
    """
    shape = is_open.shape
    verdict = np.asarray(when, dtype=np.bool_)
    verdict = np.ascontiguousarray(verdict.reshape(1, -1) if verdict.ndim < 2 else verdict)
    fire, paths = np.empty(shape, dtype=np.bool_), np.empty(shape[1], dtype=np.int64)
    fired = _decide(verdict, _ready(is_open, shape, np.bool_), prev, last, int(j), float(step_days),
                    float(cooldown), fire, paths)
    return fire, paths[:fired]


#: The triggers `when_verdict` computes (their index is the program's measure code).
WHEN_MEASURES = ("price_retrace", "vega_crush", "iv_change")
_COMBINATIONS = {spec.And: 1, spec.Or: 2}


def condition_program(condition) -> tuple[np.ndarray, np.ndarray] | None:
    """A condition in runtime form (`opl.runtime.engine.conditionspec`) as `when_verdict` evaluates it: its
    nodes in postfix order, (kind, measure, comparison) rows and their bounds — or None where a node is not a
    ``price_retrace``, ``vega_crush`` or ``iv_change`` trigger, ``and``, ``or`` or ``not`` (the numpy test then)."""
    rows, bounds = [], []

    def walk(node) -> bool:
        if isinstance(node, spec.Trigger):
            if node.measure not in WHEN_MEASURES or node.op not in steps.EXIT_OPS:
                return False
            rows.append((0, WHEN_MEASURES.index(node.measure), steps.EXIT_OPS.index(node.op)))
            bounds.append(float(node.bound))
            return True
        if isinstance(node, spec.Not):
            if not walk(node.operand):
                return False
            rows.append((3, 0, 0))
            bounds.append(0.0)
            return True
        kind = _COMBINATIONS.get(type(node))
        if kind is None or not (walk(node.left) and walk(node.right)):
            return False
        rows.append((kind, 0, 0))
        bounds.append(0.0)
        return True

    if condition is None or not walk(condition):
        return None
    return np.array(rows, dtype=np.int64), np.array(bounds, dtype=float)


def when_verdict(program: tuple[np.ndarray, np.ndarray], *, price, open_price, vol, open_vol, floor: float,
                 spread: float) -> np.ndarray:
    """A `condition_program`'s verdict per path in one compiled pass (``_verdict``): the numpy test's
    (`opl.runtime.engine.triggers.compile_condition`) bit for bit.

    ``price``, ``vol`` are the step's futures prices and volatility forecasts, ``open_price``, ``open_vol``
    the month's open's, each (paths,) contiguous; ``floor`` and ``spread`` the smile's at-the-money rule
    (`opl.runtime.engine.marking.SmileRule.atm`).
    """
    out = np.empty(price.shape[0], dtype=np.bool_)
    _verdict(program[0], program[1], _read_only(price), _read_only(open_price), _read_only(vol), _read_only(open_vol),
             float(floor), 1.0 + float(spread), out)
    return out


def _read_only(x: np.ndarray) -> np.ndarray:
    """``x`` as a read-only array (itself where it is): a month's steps are read-only where a store shares them and
    the month's own elsewhere, and each kind compiled `_verdict` once (~2 s of a fresh cache's CPU)."""
    if x.flags.writeable:
        x = x.view()
        x.setflags(write=False)
    return x


def snap(grid, raw, *, up: bool = False) -> np.ndarray:
    """Strikes on the listed ``grid`` (a pack's ``option.strike_grid``) in one compiled pass (``_snap``):
    `opl.runtime.engine.months._Month.snap` (``up``: ``snap_up``) bit for bit, for strikes per path (paths,)."""
    bounds, steps = _ladder(grid)
    raw = np.ascontiguousarray(raw, dtype=float)
    out = np.empty(raw.shape)
    _snap(raw.reshape(-1), bounds, steps, bool(up), float(grid[0].step), out.reshape(-1))
    return out


_LADDERS: dict[int, tuple] = {}  # id of a ladder -> (the ladder, its edges, its steps)


def _ladder(grid) -> tuple[np.ndarray, np.ndarray]:
    """A strike ladder's band edges and steps, as `opl.runtime.market.rules._snap` reads them: kept by the
    ladder's identity (a pack's, read at every round: hashing its bands for a cache's key cost more)."""
    kept = _LADDERS.get(id(grid))
    if kept is None or kept[0] is not grid:
        if len(_LADDERS) >= 16:
            _LADDERS.clear()
        kept = _LADDERS[id(grid)] = (grid, np.array([b.upto for b in grid[:-1]], dtype=float),
                                     np.array([b.step for b in grid], dtype=float))
    return kept[1], kept[2]


def round_step(**fields):
    """A `RoundStep`: the fields of ``_STEP_FIELDS`` by name, as `opl.runtime.engine.adjustround._Round` makes them —
    the actions (``kinds``: 0 a roll, 1 a gamma hedge; ``amounts`` the hedges' targets), the groups' slots
    (``members``, -1 padded), the rolls' (action, group, target slot) ``entries``, the gamma hedge's slot, the
    slots' facts (``slots``), their quote tables at the step, the market's quote inputs, the lots per option, the
    abort rule, the margin rule and the fees."""
    return _new_step(*[fields[name] for name in _STEP_FIELDS])


def round_own(qtys: tuple, strike: tuple, delta: tuple, gamma: tuple, exercise: tuple, entry: tuple):
    """A `RoundOwn`: the base and dynamic slots' lots (``qtys``, two padded tuples) and the dynamic slots' strikes,
    deltas, gammas, exercise flags and entries, the arrays themselves (a round writes them in place). It holds one
    reference to each array, as a tuple of them would (`opl.runtime.engine.months._unshared` counts them)."""
    return _new_own(qtys, strike, delta, gamma, exercise, entry)


def round_pass(**arguments) -> int:
    """`AdjustEngine.play <opl.runtime.engine.adjust.AdjustEngine.play>` of a round whose playbook is rolls
    (``roll_nearest_term``, ``roll``) and gamma hedges, in one compiled pass (``_round``): each action's proposal
    on the fired elements, its quotes, the margin before and after it for a lone ``additional_margin`` abort,
    the abort, the trades and new series written into the book's and the ledger's arrays, the aborted closed —
    the numbers of the numpy proposals bit for bit. Returns the elements closed.

    The arguments are ``_round``'s, by name, as `opl.runtime.engine.adjustround._Round.play` prepares them: the
    round's paths ``cols``, ``fire`` (variants, paths), ``step`` (`round_step`: the round's fixed inputs and the
    step's quote tables), ``own`` (`round_own`: the slots' lots, the dynamic slots' strikes and marks but their
    values), the rolls' strikes per path then the hedge's (``strike_rows``), the base slots' ``strikes``,
    ``values`` and ``gammas``, the dynamic slots' values (``dynamic_values``), the step's prices and
    volatilities on ``cols``, the account, the ledger and its counters, whether an exit now is early, and
    ``held`` (each slot's `Slot.held`, updated).
    """
    return int(_round(*_ROUND_ARGUMENTS(arguments)))


# `round_pass`'s arguments in ``_round``'s order, taken from its keywords in one call.
_ROUND_ARGUMENTS = operator.itemgetter(
    "cols", "fire", "step", "own", "strike_rows", "strikes", "values", "gammas", "dynamic_values", "price", "vol",
    "account", "ledger", "counters", "early", "held")
