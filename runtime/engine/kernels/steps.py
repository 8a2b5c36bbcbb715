"""The step kernels: the bookings, exits, closes, exercise and hedge of a step of the replay.

The compiled twins of `opl.runtime.engine.step._Pass`'s stages and of `opl.runtime.engine.hedging`
(the reference): each adds every amount to its bucket, the equity and the month's P&L in the
reference's order, so the ledger is the reference's bit for bit; the fused calls (`settle`,
`exits_close`, `close_book`, `hedge_step`) do consecutive stages in one pass.
The rules every kernel keeps are `opl.runtime.engine.kernels`'.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from opl.runtime.engine.kernels import base
from opl.runtime.engine.kernels.base import (_BLOCK, _NO_FLAGS, _SCRATCH, _flag_grid, _grid, _input, _padded,
                                             _plain, _plain_bool, _rows, _slot_tuple, njit, prange, writable)


__all__ = ["any_short_exercised", "book_sold", "futures_lots", "exercise", "settle", "close_book", "hedge_step",
           "exits_close", "EXIT_OPS", "shorts_exercised"]

if njit is not None:
    from opl.runtime.engine.kernels.base import _el, _npmax, _row

    @njit(cache=True, inline="always")
    def _charge(p, lots, fee, bucket, equity, month_pnl, counter):
        # A trade or a close of ``lots`` (not 0) at ``fee`` a lot on element p of a variant's rows: the cost into
        # ``bucket``, the equity and the month's P&L, the lots counted (positions._close_all, hedging.rebalance).
        amount = -(abs(lots) * fee)
        bucket[p] += amount
        equity[p] += amount
        month_pnl[p] += amount
        counter[p] += np.int64(np.rint(abs(lots)))

    # -- the hedge rule (opl.runtime.engine.hedging) ----------------------------------------------------------

    @njit(cache=True, inline="always")
    def _rebalance_row(v, p0, p1, held_delta, short, static, hedge, d, active, keep, band, lots_per_option, fee, costs,
                       equity, month_pnl, lots_traded, trades, new):
        # The hedge rule on variant v's paths p0..p1 (``held_delta`` and ``short`` indexed from p0, ``static`` a
        # row broadcast to the paths): the target, the band, whole lots, the trade's costs and counters.
        costs_v, equity_v, pnl_v, traded_v = costs[v], equity[v], month_pnl[v], lots_traded[v]
        for p in range(p0, p1):
            size = short[p - p0]
            other = held_delta[p - p0] * lots_per_option + _el(static, p)
            h = hedge[v, p]
            target = keep * d[p] * size
            # Without a branch on the position being active (active and idle paths alternate at random, and the
            # mispredicted branch cost more than the rounding): the trade is rounded everywhere, kept where due.
            due = active[v, p] & (abs(other + h - target) > band * size)
            out = np.rint(target - other) if due else h
            new[v, p] = out
            trade = out - h
            if trade != 0:
                _charge(p, trade, fee[v], costs_v, equity_v, pnl_v, traded_v)
                trades[v, p] += 1

    # -- exercise, assignment and delivered goods (step._Pass._assign, _previous_decisions) ------------------
    # A slot's marks are one row for every variant (the month's tables, per path) or a row per variant (the
    # series the adjustment module trades): ``rows`` arrays are (1, paths) or (variants, paths). Each amount
    # is computed as the reference writes it and added to its bucket, the equity and the month's P&L in the
    # reference's order, so the ledger is the reference's bit for bit.

    @njit(cache=True)
    def _any_short_exercised(qty, exercise):
        # Whether any short lot sits in the holder's exercise region (step._Pass._exercised), stopping at
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
        # step._Pass._previous_decisions' goods sold: ledger.book("assignment", sold * cs * basis, equity), then
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
        # positions._Margins: |the strategy's futures| + |the hedge| + |futures from exercise and goods|.
        variants, paths = out.shape
        for v in range(variants):
            for p in range(paths):
                out[v, p] = abs(static[v, p]) + abs(hedge[v, p]) + abs(other[v, p])


    @njit(cache=True)
    def _exercise(qty, hit, phi, lots_per_option, price, strike, value, mult, fee_assigned, fee_exercised,
                  take_delivery, assignment, costs, equity, month_pnl, assigned, pending, new_qty, goods):
        # step._Pass._assign for one slot: where ``hit``, the forfeited time value booked, the fee paid, the
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

    # -- a step's stages fused (opl.runtime.engine.step._Pass on the fast engine) ---------------------------
    # Each kernel below does several stages of a step in one call, the same amounts added to the same buckets
    # in the reference's order for each element, so the ledger is the one the stage-by-stage kernels above
    # give, bit for bit. A book's option slots come as tuples of arrays (read-only views, `_grid`; a dummy
    # entry and n = 0 when there are none): one call a step instead of one per slot and stage, each paying
    # its arguments' conversion. The loops run a variant's row at a time, slot by slot: a tuple's array
    # fetched per element costs its reference counts, and a row's loop stays simple.

    @njit(cache=True)
    def _settle_block(p0, p1, equity, capital, mult, interest_on, paid, units, previous, cs, growth, margin_held,
                      margin_growth, deposit, qtys, befores, afters, valued, n, static, hedge, pending, goods,
                      any_goods, price, storage, funding, span, year_days, close_pending, fee, interest, premium,
                      hedge_pnl, assignment, funding_pnl, costs, futures_lots, month_pnl):
        # step._Pass._interest, the bookings of _mark and the close of the futures from exercise
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
                        if q.shape[0] > 1 and b.shape[0] > 1:  # rows of every path: no `_el` (see `_settle_row`)
                            for p in range(p0, p1):
                                value[p - p0] = value[p - p0] + q[p] * b[p]
                        else:
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
                if q.shape[0] > 1 and a.shape[0] > 1 and b.shape[0] > 1:
                    for p in range(p0, p1):
                        amount = q[p] * (a[p] - b[p]) * mult
                        premium[v, p] += amount
                        equity[v, p] += amount
                        month_pnl[v, p] += amount
                else:
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

    # Each kernel's loops over rows, below, read a slot's row with `_el` only where it is one number broadcast: LLVM
    # vectorises ``row[p if row.shape[0] > 1 else 0]`` into gathers (vgatherqpd), which took a third of the
    # settle's perf samples on captured jujube calls (alone, a few percent of its time: the rest was memory).

    @njit(cache=True)
    def _settle_row(v, equity, capital, mult, interest_on, paid, units, previous, cs, growth, margin_held,
                    margin_growth, deposit, qtys, befores, afters, valued, n, static, hedge, pending, goods,
                    any_goods, price, storage, funding, span, year_days, close_pending, fee, interest, premium,
                    hedge_pnl, assignment, funding_pnl, costs, futures_lots, month_pnl):
        # `_settle_block` on variant v's row where at most four slots are marked, their lots and marks rows of
        # every path (`_rows_fit`): every stage in one pass, an element's equity, P&L and premium in registers
        # and each amount added in the stages' order (the same bits), in place of a pass per slot and stage over
        # a dozen (variants, paths) arrays: ~16 -> ~10 ns an element on captured jujube calls. Slots i >= n are
        # the tuples' dummies, never read: the branches on n and on the flags go the same way for every element.
        # An amount that is 0 times finite numbers (±0.0) changes no sum — none of these sums, starting at +0.0
        # or at the capital, is ever -0.0 — so the carry of futures, of futures from exercise and of goods is
        # skipped where none is held: most elements hold none, and the goods' division was a tenth of the pass.
        q0, b0, a0 = _row(qtys[0], v), _row(befores[0], v), _row(afters[0], v)
        q1, b1, a1 = _row(qtys[1], v), _row(befores[1], v), _row(afters[1], v)
        q2, b2, a2 = _row(qtys[2], v), _row(befores[2], v), _row(afters[2], v)
        q3, b3, a3 = _row(qtys[3], v), _row(befores[3], v), _row(afters[3], v)
        v0, v1, v2, v3 = n > 0 and valued[0], n > 1 and valued[1], n > 2 and valued[2], n > 3 and valued[3]
        equity_v, pnl_v, premium_v, static_v = equity[v], month_pnl[v], premium[v], _row(static, v)
        units_v, margin_v, interest_v = units[v], margin_held[v], interest[v]
        hedge_v, pending_v, goods_v = hedge[v], pending[v], goods[v]
        hedge_pnl_v, assignment_v, funding_v = hedge_pnl[v], assignment[v], funding_pnl[v]
        costs_v, lots_v, fee_v = costs[v], futures_lots[v], fee[v]
        futures = static_v.shape[0] > 1 or static_v[0] != 0.0  # the strategy holds futures (`_static`)
        for p in range(equity_v.shape[0]):
            e, pnl, prem = equity_v[p], pnl_v[p], premium_v[p]
            if interest_on:
                value = 0.0
                if v0:
                    value = value + q0[p] * b0[p]
                if v1:
                    value = value + q1[p] * b1[p]
                if v2:
                    value = value + q2[p] * b2[p]
                if v3:
                    value = value + q3[p] * b3[p]
                cash = e - capital - value * mult
                if paid:
                    cash = cash - units_v[p] * previous[p] * cs
                amount = cash * growth
                if deposit:
                    amount = amount + margin_v[p] * margin_growth
                interest_v[p] += amount
                e += amount
                pnl += amount
            if n > 0:
                amount = q0[p] * (a0[p] - b0[p]) * mult
                prem += amount
                e += amount
                pnl += amount
            if n > 1:
                amount = q1[p] * (a1[p] - b1[p]) * mult
                prem += amount
                e += amount
                pnl += amount
            if n > 2:
                amount = q2[p] * (a2[p] - b2[p]) * mult
                prem += amount
                e += amount
                pnl += amount
            if n > 3:
                amount = q3[p] * (a3[p] - b3[p]) * mult
                prem += amount
                e += amount
                pnl += amount
            df = price[p] - previous[p]
            if futures:
                amount = _el(static_v, p) * df * cs
                prem += amount
                e += amount
                pnl += amount
            amount = hedge_v[p] * df * cs
            hedge_pnl_v[p] += amount
            e += amount
            pnl += amount
            q = pending_v[p]
            if q != 0:
                amount = q * df * cs
                assignment_v[p] += amount
                e += amount
            if any_goods:
                held = goods_v[p]
                if held != 0:
                    amount = held * df * cs
                    assignment_v[p] += amount
                    e += amount
                    amount = -held * cs * storage * span
                    assignment_v[p] += amount
                    e += amount
                    amount = -held * cs * price[p] * funding * span / year_days
                    funding_v[p] += amount
                    e += amount
            if close_pending and q != 0:
                amount = -(abs(q) * fee_v)
                costs_v[p] += amount
                e += amount
                lots_v[p] += np.int64(np.rint(abs(q)))
                pending_v[p] = 0.0
            equity_v[p], pnl_v[p], premium_v[p] = e, pnl, prem

    @njit(cache=True)
    def _rows_fit(first, second, third, n, paths):
        # Whether the first n slots' arrays of the tuples are all rows of every path, and n <= 4 (`_settle_row`,
        # `_hedge_row`).
        if n > 4:
            return False
        for i in range(n):
            if first[i].shape[1] != paths or second[i].shape[1] != paths or third[i].shape[1] != paths:
                return False
        return True

    # The fused step's serial and parallel twins (two functions: see the marks' twins): one block of every path,
    # or blocks of paths on the thread pool; an element's arithmetic is the same either way.
    @njit(cache=True)
    def _settle(equity, capital, mult, interest_on, paid, units, previous, cs, growth, margin_held, margin_growth,
                deposit, qtys, befores, afters, valued, n, static, hedge, pending, goods, any_goods, price, storage,
                funding, span, year_days, close_pending, fee, interest, premium, hedge_pnl, assignment, funding_pnl,
                costs, futures_lots, month_pnl):
        if _rows_fit(qtys, befores, afters, n, equity.shape[1]):  # the jujube steps: one pass a variant
            for v in range(equity.shape[0]):
                _settle_row(v, equity, capital, mult, interest_on, paid, units, previous, cs, growth, margin_held,
                            margin_growth, deposit, qtys, befores, afters, valued, n, static, hedge, pending, goods,
                            any_goods, price, storage, funding, span, year_days, close_pending, fee, interest,
                            premium, hedge_pnl, assignment, funding_pnl, costs, futures_lots, month_pnl)
            return
        # The start a literal 0 (not base._ZERO): the block compiled for it indexes from a known start, and
        # ran the jujube steps in 1.1 s against 2.0 s with a run-time start (its hedge twin's 0.8 against 1.2 s).
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
        # positions._close_all: where ``mask`` the option slots (into ``new_qtys``) and then the futures
        # (``futures``, in place: the strategy's legs and the hedge) closed, their costs booked and lots counted.
        # A slot's row copied whole first (a copy runs at memory speed), then closed where ``mask`` (an exit
        # closes a few paths; an expiry all).
        variants, paths = equity.shape
        for v in range(variants):
            closing, bucket_v, equity_v, pnl_v = mask[v], bucket[v], equity[v], month_pnl[v]
            option_lots_v, futures_lots_v = option_lots[v], futures_lots[v]
            for i in range(n):
                q, out = _row(qtys[i], v), new_qtys[i][v]
                if q.shape[0] == 1:
                    out[:] = q[0]
                else:
                    for p in range(paths):  # (a loop: no array assigned to a slice, `kernels`' rules)
                        out[p] = q[p]
                for p in range(paths):
                    if not closing[p]:
                        continue
                    lots = out[p]
                    out[p] = 0.0
                    if lots != 0:
                        _charge(p, lots, option_fee[v], bucket_v, equity_v, pnl_v, option_lots_v)
            for i in range(m):
                held = futures[i][v]
                for p in range(paths):
                    if not closing[p]:
                        continue
                    lots = held[p]
                    if lots != 0:
                        _charge(p, lots, futures_fee[v], bucket_v, equity_v, pnl_v, futures_lots_v)
                    held[p] = 0.0

    @njit(cache=True)
    def _exits_in_place(month_pnl, denominator, start, all_required, ops, bounds, stop_loss, stop_level, force,
                        is_open, early, exits, early_exits, qtys, n, option_fee, futures, m, futures_fee, bucket, equity,
                        option_lots, futures_lots, held):
        # step._Pass._exit_flags for pnl_percent triggers, then positions._close_all where a position exits:
        # ``start`` the other triggers' verdict (OR-ed under first_hit, AND-ed under all_required), each
        # pnl_percent trigger compared on the month's P&L, the stop loss, ``force`` (the guard, a cut cycle);
        # where a position is open and that holds, the exit counted and its option lots (``qtys``, in place) then
        # its futures (``futures``: the strategy's legs and the hedge, in place) closed as `_close_book` closes
        # them. ``held[i]``: slot i still holds lots somewhere (written only after an exit). Returns the exits:
        # most steps have a few, and a closed position's triggers are not evaluated.
        # A variant's exits are closed before the next variant's are decided (an exit writes only its own
        # position's elements), and only there: the paths exiting are listed, not the rows scanned for them.
        variants, paths = month_pnl.shape
        exiting, pnl, flags = np.empty(paths, dtype=np.int64), np.empty(paths), np.empty(paths, dtype=np.bool_)
        hits = 0
        for v in range(variants):
            count = _exiting(v, month_pnl, denominator, start, all_required, ops, bounds, stop_loss, stop_level, force,
                             is_open, early, exits, early_exits, exiting, pnl, flags)
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

    @njit(cache=True, error_model="numpy")
    def _exiting(v, month_pnl, denominator, start, all_required, ops, bounds, stop_loss, stop_level, force, is_open,
                 early, exits, early_exits, out, pnl, flags):
        # `_exits_in_place`'s decision on variant v's open positions: the exits counted and closed (``is_open``),
        # their paths listed in ``out``; returns how many. Decided for every path in passes of one simple loop
        # each (``pnl`` and ``flags`` scratch rows), which the compiler vectorises, then listed without a branch:
        # a branch per path on whether it is open, and the rules tried in it, cost ~10 ns a path against ~4 on
        # captured jujube calls. The closed paths' P&L percent is computed too, unused (numpy's division: no
        # zero check per element; the replay's denominators are positive). Then only the listed paths are
        # written, in the order of the per-path loop (an element's writes do not depend on another's).
        rules = ops.shape[0]
        pnl_v, base, open_v = month_pnl[v], denominator[v], is_open[v]
        paths = pnl_v.shape[0]
        if force:
            for p in range(paths):
                flags[p] = open_v[p]
        else:
            for p in range(paths):
                flags[p] = start
            if rules > 0:
                for p in range(paths):
                    pnl[p] = pnl_v[p] / base[p] * 100.0
                for t in range(rules):
                    _rule_pass(ops[t], bounds[t], all_required, pnl, flags, paths)
            if stop_loss:
                for p in range(paths):
                    flags[p] = flags[p] | (pnl_v[p] <= stop_level)
            for p in range(paths):
                flags[p] = flags[p] & open_v[p]
        count = 0
        for p in range(paths):
            out[count] = p
            count += flags[p]
        for k in range(count):
            p = out[k]
            exits[v, p] += 1
            if early:
                early_exits[v, p] += 1
            is_open[v, p] = False
        return count

    @njit(cache=True, inline="always")
    def _join(flag, hit, all_required):
        return flag & hit if all_required else flag | hit

    @njit(cache=True, inline="always")
    def _rule_pass(op, bound, all_required, pnl, flags, paths):
        # One pnl_percent rule (`_compare`'s ``op``) AND-ed (``all_required``) or OR-ed into ``flags``: a loop
        # for each comparison, as the comparison chosen inside the loop kept it scalar (half of `_exits_in_place`'s
        # time on captured jujube calls; ~4 -> ~3 ns an element).
        if op == 0:
            for p in range(paths):
                flags[p] = _join(flags[p], pnl[p] < bound, all_required)
        elif op == 1:
            for p in range(paths):
                flags[p] = _join(flags[p], pnl[p] > bound, all_required)
        elif op == 2:
            for p in range(paths):
                flags[p] = _join(flags[p], pnl[p] <= bound, all_required)
        elif op == 3:
            for p in range(paths):
                flags[p] = _join(flags[p], pnl[p] >= bound, all_required)
        elif op == 4:
            for p in range(paths):
                flags[p] = _join(flags[p], pnl[p] == bound, all_required)
        else:
            for p in range(paths):
                flags[p] = _join(flags[p], pnl[p] != bound, all_required)

    @njit(cache=True)
    def _close_listed(lots, listed, count, fee, bucket, equity, month_pnl, counter):
        # One position's row closed on the paths ``listed[:count]`` (`_close_book`'s arithmetic): costs booked,
        # lots counted, zeroed.
        for k in range(count):
            p = listed[k]
            q = lots[p]
            lots[p] = 0.0
            if q != 0:
                _charge(p, q, fee, bucket, equity, month_pnl, counter)

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
        # positions._hedge_compiled: the options' Σ qty × delta and short lots, then the hedge rule (_rebalance_row).
        variants = hedge.shape[0]
        held_delta, short = np.zeros(p1 - p0), np.zeros(p1 - p0)
        for v in range(variants):
            held_delta[:] = 0.0
            short[:] = 0.0
            for i in range(n):
                q, m = _row(qtys[i], v), _row(deltas[i], v)
                if q.shape[0] > 1 and m.shape[0] > 1:  # rows of every path: no `_el` (see `_settle_row`)
                    for p in range(p0, p1):
                        lots = q[p]
                        held_delta[p - p0] = held_delta[p - p0] + lots * m[p]
                        short[p - p0] = short[p - p0] + max(-lots, 0.0)
                else:
                    for p in range(p0, p1):
                        lots = _el(q, p)
                        held_delta[p - p0] = held_delta[p - p0] + lots * _el(m, p)
                        short[p - p0] = short[p - p0] + max(-lots, 0.0)
            _rebalance_row(v, p0, p1, held_delta, short, _row(static, v), hedge, d, active, keep, band, lots_per_option,
                           fee, costs, equity, month_pnl, lots_traded, trades, new)

    @njit(cache=True)
    def _hedge_row(v, qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option, fee, costs, equity,
                   month_pnl, lots_traded, trades, new):
        # `_hedge_step_block` on variant v's row where at most four slots are held, their lots and deltas rows of
        # every path (`_rows_fit`): the sums and the hedge rule (`_rebalance_row`'s) in one pass, the sums in
        # registers — added from 0.0 in the slots' order, as the block adds them: the same bits — instead of
        # two scratch rows written and read back per slot.
        # Slots i >= n are dummies never read, as `_settle_row`'s.
        q0, m0, q1, m1 = _row(qtys[0], v), _row(deltas[0], v), _row(qtys[1], v), _row(deltas[1], v)
        q2, m2, q3, m3 = _row(qtys[2], v), _row(deltas[2], v), _row(qtys[3], v), _row(deltas[3], v)
        static_v, fee_v = _row(static, v), fee[v]
        costs_v, equity_v, pnl_v, traded_v = costs[v], equity[v], month_pnl[v], lots_traded[v]
        hedge_v, active_v, new_v, trades_v = hedge[v], active[v], new[v], trades[v]
        for p in range(hedge_v.shape[0]):
            held_delta, size = 0.0, 0.0
            if n > 0:
                lots = q0[p]
                held_delta = held_delta + lots * m0[p]
                size = size + max(-lots, 0.0)
            if n > 1:
                lots = q1[p]
                held_delta = held_delta + lots * m1[p]
                size = size + max(-lots, 0.0)
            if n > 2:
                lots = q2[p]
                held_delta = held_delta + lots * m2[p]
                size = size + max(-lots, 0.0)
            if n > 3:
                lots = q3[p]
                held_delta = held_delta + lots * m3[p]
                size = size + max(-lots, 0.0)
            other = held_delta * lots_per_option + _el(static_v, p)
            h = hedge_v[p]
            target = keep * d[p] * size
            due = active_v[p] & (abs(other + h - target) > band * size)  # (no branch: see `_rebalance_row`)
            out = np.rint(target - other) if due else h
            new_v[p] = out
            # `_charge` without its branch on a trade: a sixth of the elements trade, at random, and the
            # mispredictions cost more than the writes. No trade books -(0 × fee) = -0.0, which changes no sum.
            trade = out - h
            amount = -(abs(trade) * fee_v)
            costs_v[p] += amount
            equity_v[p] += amount
            pnl_v[p] += amount
            traded_v[p] += np.int64(np.rint(abs(trade)))
            trades_v[p] += trade != 0

    @njit(cache=True)  # the twins, as `_settle`'s
    def _hedge_step(qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option, fee, costs, equity,
                    month_pnl, lots_traded, trades, new):
        if _rows_fit(qtys, deltas, deltas, n, hedge.shape[1]):  # the jujube steps: one pass a variant
            for v in range(hedge.shape[0]):
                _hedge_row(v, qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option, fee, costs,
                           equity, month_pnl, lots_traded, trades, new)
            return
        # A literal 0, as `_settle`'s.
        _hedge_step_block(0, hedge.shape[1], qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option,
                          fee, costs, equity, month_pnl, lots_traded, trades, new)

    @njit(cache=True, parallel=True)
    def _hedge_step_parallel(qtys, deltas, n, static, hedge, d, active, keep, band, lots_per_option, fee, costs, equity,
                             month_pnl, lots_traded, trades, new):
        paths = hedge.shape[1]
        for b in prange((paths + _BLOCK - 1) // _BLOCK):  # paths are independent: the same bits on any thread
            _hedge_step_block(b * _BLOCK, min(paths, (b + 1) * _BLOCK), qtys, deltas, n, static, hedge, d, active, keep,
                              band, lots_per_option, fee, costs, equity, month_pnl, lots_traded, trades, new)


def any_short_exercised(qty, exercise) -> bool:
    """Whether signed ``qty`` (variants, paths) is short anywhere the ``exercise`` flags (per path, or per
    variant and path) are set: ``np.any((qty < 0) & exercise)`` in one pass."""
    shape = np.shape(qty)
    flags = np.asarray(exercise, dtype=np.bool_)
    rows = flags[None, :] if flags.ndim == 1 else (
        _plain_bool(flags, shape) if flags.ndim == 2 else np.full((1, shape[1]), bool(flags)))
    return bool(_any_short_exercised(_plain(qty, shape), rows))


def book_sold(sold, *, cs: float, basis: float, fee, buckets, equity) -> None:
    """Goods sold at their release (`opl.runtime.engine.step._Pass._previous_decisions`) in one pass: their value
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
    """A slot's exercise and assignment where ``hit`` (`opl.runtime.engine.step._Pass._assign`) in one pass:
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
    _exercise(_plain(qty, shape), _plain_bool(hit, shape), float(phi), float(lots_per_option), _input(price, shape[1:]),
              _read_rows(strike, shape), _read_rows(value, shape), float(mult), _plain(fee_assigned, shape[:1]),
              _plain(fee_exercised, shape[:1]), bool(take_delivery), buckets["assignment"], buckets["costs"], equity,
              month_pnl, assigned, new_pending, new_qty, goods)
    return new_qty, new_pending, goods


def _read_rows(x, shape) -> np.ndarray:
    """`base._rows` read-only: a slot's strike or marks are the book's own or a store's (read-only), and
    `_exercise` compiled once for each (a fresh machine's main job compiled it twice); no kernel writes them."""
    x = _rows(x, shape)
    if x.flags.writeable:
        x = x.view()
        x.setflags(write=False)
    return x


def settle(*, equity, capital: float, mult: float, interest: tuple | None, moves, static, hedge, pending, goods,
           previous, price, cs: float, storage: float, funding: float, span: float, year_days: float,
           close_fee, buckets, counters, month_pnl) -> None:
    """The interest, the slots' moves, the futures' and goods' carry and the close of the futures from
    exercise of a step, in one pass (in place): the numbers of the reference's stages (`step._Pass._interest`,
    `_mark`, `_previous_decisions`) bit for bit.

    Parameters
    ----------
    interest
        None for no interest, else (units of an ETF or a stock held or None, the cash's growth over the step,
        the deposit, the deposit's own growth or None): `step._Pass._interest_terms`.
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
    kernel = _settle_parallel if equity.size >= base.STEP_PARALLEL_MIN else _settle
    kernel(equity, float(capital), float(mult), interest is not None, paid, _plain(units, shape) if paid else equity,
           _input(previous, shape[1:]), float(cs), float(growth), _plain(held_margin, shape),
           0.0 if margin_growth is None else float(margin_growth), margin_growth is not None,
           _slot_tuple([m[0] for m in moves]), _slot_tuple([m[1] for m in moves]),
           _slot_tuple([m[2] for m in moves]), _valued(tuple([bool(m[3]) for m in moves])), len(moves), _grid(static),
           _plain(hedge, shape),
           pending, _plain(goods, shape) if goods is not None else equity, goods is not None,
           _input(price, shape[1:]), float(storage), float(funding), float(span), float(year_days),
           close_fee is not None, _plain(0.0 if close_fee is None else close_fee, shape[:1]), buckets["interest"],
           buckets["premium"], buckets["hedge"], buckets["assignment"], buckets["funding"], buckets["costs"],
           counters["futures_lots"], month_pnl)


@lru_cache(maxsize=64)
def _valued(flags: tuple) -> np.ndarray:
    """`settle`'s flags of the slots valued at the step's start as its kernel reads them (one entry at least),
    made once per set: the kernel only reads it."""
    return np.array(flags or (False,), dtype=np.bool_)


def close_book(qtys, futures, mask, option_fee, futures_fee, *, bucket, equity, month_pnl, option_lots,
               futures_lots) -> list[np.ndarray]:
    """Close option lots ``qtys`` and then ``futures`` (each (variants, paths)) where ``mask``, in one pass:
    the costs (``*_fee`` (variants,) a lot) into ``bucket``, ``equity`` and ``month_pnl``, the lots counted
    (in place), as the reference's `positions._close_all` books them position by position. The futures arrays are zeroed in place; returns the
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
               costs, equity, month_pnl, lots_traded, trades, in_place: bool = False,
               anywhere: bool | None = None) -> np.ndarray:
    """The held slots' Σ lots ``qtys`` × marks ``deltas`` and short lots, and the hedge rule
    (`opl.runtime.engine.hedging`), in one pass: the new hedge (variants, paths), the trade's costs and counts
    booked (in place) as the reference books them.
    ``in_place``: the new hedge written into ``hedge`` itself (a C-ordered, writable float array of the step's
    shape: an element's old lots are read before its new ones are written) and returned. ``anywhere``: whether
    ``active`` holds anywhere, when the caller knows (None: looked at here)."""
    new = hedge if in_place else np.empty(hedge.shape)
    if not (active.any() if anywhere is None else anywhere):  # no position open anywhere: nothing trades, the hedge is kept (a sixth of the jujube steps)
        if new is not hedge:
            np.copyto(new, hedge)
        return new
    kernel = _hedge_step_parallel if new.size >= base.STEP_PARALLEL_MIN else _hedge_step
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


def shorts_exercised(qtys, flags) -> np.ndarray:
    """`any_short_exercised` of several slots in one call: per slot (signed lots (variants, paths), exercise
    flags per path or per variant and path), whether a short lot sits where the flag is set."""
    out = np.zeros(len(qtys), dtype=np.bool_)
    if qtys:
        _shorts_exercised(_slot_tuple(qtys), _padded(tuple([_flag_grid(f) for f in flags]), _NO_FLAGS), len(qtys),
                          out)
    return out
