"""The margin kernels: a book's requirement per (variant, path) and the account after a step.

The compiled twin of `opl.runtime.market.margin` and `opl.runtime.market.combinations` (the
reference): the pack's single-leg formula and the combination pairings over the series held on
each path, a block of paths at a time (`_margin_blocks`), then the margin calls, liquidation decision,
margin peak and drawdown (`_account_row`), in one call for the step's requirement (`requirement_account`).
The rules every kernel keeps are `opl.runtime.engine.kernels`'.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from opl.runtime.engine.kernels import base
from opl.runtime.engine.kernels.base import (BOOK_SLOTS, _FALSE, _ONE, _TRUE, _ZERO, _grid, _input, _plain,
                                             _slot_tuple, njit, prange)

__all__ = ["MarginRule", "book_margin", "account", "requirement_account"]

# Paths a margin block does for every variant: its scratch (a dozen rows: the held series' numbers, a lot's
# margins) stays in the second-level cache, and the arrays' reference counts a block (a few dozen atomic adds)
# cost little an element (measured on a jujube run's calls: 2,048 a little faster than 1,024 and 4,096).
_MARGIN_BLOCK = 2048
# An element holding a series from this slot on is paired the general way (`_pair_rest`). An argument of the
# kernels, so tests can lower it.
_WIDE_BIT = 62


if njit is not None:
    # -- margin (opl.runtime.market.margin, opl.runtime.market.combinations) ----------------------------------
    # The formulas are written exactly as the reference writes them (max(a, b) = (a + b + |a - b|) / 2 in
    # the combinations, the same sums in the same order), so a requirement is the reference's bit for bit.
    # Blocks of paths (`_margin_blocks`): each series' rows read once, in place, in a loop that keeps an
    # element's held call and held put (most elements hold none or a strangle's two legs), then every element
    # paired from those in another vectorised loop; the few holding more are paired one by one. The series'
    # arrays are read where they lie (tuples of arrays, no (series, variants, paths) copy): copying them cost
    # more than the arithmetic. Blocks are independent, so the step's requirement has a parallel twin.

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

    # The pairing (combinations._paired) of one or two series on numbers (most elements: a strangle's two legs),
    # the reference's operations in its order: no arrays to gather into, and no call passing arrays (their
    # reference counts cost more than the arithmetic). With two series a spread needs one type, a straddle both:
    # at most one pair of each.

    @njit(cache=True, inline="always")
    def _one(q, margin):
        # The pairing of one series: nothing pairs, its short lots are margined alone.
        return 0.0 + (0.0 + (-q + abs(-q)) / 2 * margin)

    @njit(cache=True, inline="always")
    def _spread_step(call_i, k_i, m_i, s_i, k_j, l_j, unit):
        # One (short i, long j) pair of combinations._spreads: the amount and the lots paired.
        lots = _cmin(s_i, l_j)
        w = k_j - k_i if call_i else k_i - k_j
        width = (w + abs(w)) / 2 * unit
        return lots * _cmin(m_i, width), lots

    @njit(cache=True, inline="always")
    def _straddle_step(k_i, m_i, p_i, s_i, k_j, m_j, p_j, s_j, straddle, strangle, unit):
        # One (short call i, short put j) pair of combinations._straddles: the amount and the lots paired.
        pairs = straddle * (k_i == k_j) + strangle * (k_i > k_j)
        lots = _cmin(s_i, s_j) * pairs
        other = (m_i >= m_j) * p_j + (m_i < m_j) * p_i
        return lots * (_cmax(m_i, m_j) + other * unit), lots

    @njit(cache=True, inline="always")
    def _two_order(spreads_first, call_a, call_b, same_expiry, k_a, p_a, q_a, m_a, k_b, p_b, q_b, m_b, unit,
                   can_spread, can_straddle, straddle, strangle):
        # One order of the pairing on series a then b (the book's order): the lots split into short and long, the
        # pairings, the unpaired lots margined leg by leg.
        # A spread pairs one type, a straddle both: one of them at most, so each sees the lots as split.
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
        # The pairing of two series a, b in the book's order.
        can_spread = spread and (q_a > 0 or q_b > 0)
        can_straddle = (straddle or strangle) and call_a != call_b
        paired = _two_order(True, call_a, call_b, same_expiry, k_a, p_a, q_a, m_a, k_b, p_b, q_b, m_b, unit, can_spread,
                            can_straddle, straddle, strangle)
        if both_orders and can_spread and can_straddle:
            paired = _cmin(paired, _two_order(False, call_a, call_b, same_expiry, k_a, p_a, q_a, m_a, k_b, p_b, q_b,
                                              m_b, unit, can_spread, can_straddle, straddle, strangle))
        return paired

    @njit(cache=True, inline="always")
    def _call_put(same_expiry, k_c, p_c, q_c, m_c, k_p, p_p, q_p, m_p, unit, spread, straddle, strangle, both_orders):
        # `_two` of a call and a put, whichever comes first in the book: no spread pairs them and the straddle
        # takes the call first, so both orders of `_two_order` are one sum (the unpaired lots' (0.0 + x) + y is
        # (0.0 + y) + x: addition commutes, and 0.0 + only turns -0.0 into 0.0; the other order's 0.0 + s + 0.0
        # is 0.0 + s). That sum once, and `_two`'s smaller of the two orders as _cmin(x, x) (x itself only where
        # x is finite).
        can_spread = spread and (q_c > 0 or q_p > 0)
        can_straddle = straddle or strangle
        paired = _two_order(True, True, False, same_expiry, k_c, p_c, q_c, m_c, k_p, p_p, q_p, m_p, unit, can_spread,
                            can_straddle, straddle, strangle)
        return _cmin(paired, paired) if both_orders and can_spread and can_straddle else paired

    @njit(cache=True, inline="always")
    def _fill(dst, i, x, v, p0, p1, cols, picked):
        # dst[i, :p1 - p0] = row v of ``x`` (broadcast to (variants, paths), as `_at` reads it) at paths p0..p1,
        # through ``cols`` when picked. Plain loops over indices: a slice assignment (numba's general broadcast
        # copy) or a row view (a reference counted) a block cost as much as the block's margin.
        vi = v if x.shape[0] > 1 else 0
        if x.shape[1] == 1:
            a = x[vi, 0]
            for p in range(p1 - p0):
                dst[i, p] = a
        elif picked:
            for p in range(p1 - p0):
                dst[i, p] = x[vi, cols[p0 + p]]
        else:
            for p in range(p1 - p0):
                dst[i, p] = x[vi, p0 + p]

    @njit(cache=True, inline="always")
    def _u(p0, p):
        # Path p0 + p as an unsigned index: numba checks a signed index for a negative value at each element
        # (p alone, a loop's counter from 0, is known not to be), which keeps a loop scalar; a row's view
        # instead costs a reference counted (an atomic add and subtract) a block and row.
        return np.uint64(p0) + np.uint64(p)

    @njit(cache=True, inline="always")
    def _same(a, b):
        # Two rates alike, NaN (no such rate in the pack) alike too.
        return a == b or (a != a and b != b)

    @njit(cache=True, inline="always")
    def _futures_rows(v, p0, p1, cols, picked, f, lots, hedge, other, summed, fr, contract_size, futures_underlying,
                      fut, total):
        # The futures' requirement of variant v at paths p0..p1 into ``total``: ``lots`` or, ``summed``,
        # |lots| + |hedge| + |other| (positions._Margins), at the futures rate when the underlying is a future,
        # else paid in full. The lots gathered into rows first, so the sum is a loop the compiler vectorises.
        width = p1 - p0
        if (summed and futures_underlying and not picked and lots.shape[1] == 1 and hedge.shape[1] > 1
                and other.shape[1] > 1):
            # The step's requirement (the book's futures one number, the hedge and other futures per path):
            # one pass, the same sum.
            a = abs(lots[v if lots.shape[0] > 1 else 0, 0])
            vh, vo = (v if hedge.shape[0] > 1 else 0), (v if other.shape[0] > 1 else 0)
            for p in range(width):
                total[p] = fr * f[p] * contract_size * (a + abs(hedge[vh, _u(p0, p)]) + abs(other[vo, _u(p0, p)]))
            return
        _fill(fut, 0, lots, v, p0, p1, cols, picked)
        if summed:
            _fill(fut, 1, hedge, v, p0, p1, cols, picked)
            _fill(fut, 2, other, v, p0, p1, cols, picked)
            for p in range(width):
                fut[0, p] = abs(fut[0, p]) + abs(fut[1, p]) + abs(fut[2, p])
        if futures_underlying:
            for p in range(width):
                total[p] = fr * f[p] * contract_size * fut[0, p]
        else:
            for p in range(width):
                total[p] = f[p] * contract_size * fut[0, p]

    @njit(cache=True, inline="always")
    def _nanmax(a, b):
        # numpy.maximum: NaN wins (`_npmax`, as selects: a loop of these vectorises).
        return math.nan if a != a or b != b else (a if a >= b else b)

    @njit(cache=True, inline="always")
    def _account_row(v, p0, width, equity, requirement, capital, margin_buffer, calls, liquidate, peak_margin, peak,
                     max_dd):
        # step._Pass._requirement's account of variant v at paths p0..p0 + width: the call, the liquidation
        # decided, the peaks and the drawdown. Flags combined with ``&`` and numpy's division (inf or NaN, not an
        # exception, at a peak of 0, as the reference: the caller's error model is numpy's), no branch an element
        # but masked stores, so the compiler vectorises the loop.
        # A counter or peak is written only where it changes (masked stores: most of a step's elements leave
        # them as they are, and an unwritten line costs no write back). _nanmax(a, b) is ``a`` itself where
        # a >= b, so skipping the store there keeps every bit.
        keep = 1.0 - margin_buffer
        for p in range(width):
            c = _u(p0, p)
            e, r = equity[v, c], requirement[v, c]
            call = (e < r) & (r > 0)
            if call:
                calls[v, c] += 1
            liquidate[v, c] = call & (e < keep * r)
            pm, used = peak_margin[v, c], r / capital
            if not pm >= used:
                peak_margin[v, c] = _nanmax(pm, used)
            top = peak[v, c]
            if not top >= e:
                top = _nanmax(top, e)
                peak[v, c] = top
            dd, fall = max_dd[v, c], (top - e) / top
            if not dd >= fall:
                max_dd[v, c] = _nanmax(dd, fall)

    @njit(cache=True, error_model="numpy")
    def _account(p0, p1, equity, requirement, capital, margin_buffer, calls, liquidate, peak_margin, peak, max_dd):
        # step._Pass._requirement's account, paths p0..p1 of every variant (`_account_row`).
        for v in range(equity.shape[0]):
            _account_row(v, p0, p1 - p0, equity, requirement, capital, margin_buffer, calls, liquidate, peak_margin,
                         peak, max_dd)

    # An element's kind (`_margin_blocks`): its held calls counted in units of 1, its held puts in units of _PUT,
    # its held series paired the general way (from ``wide_bit`` on) in units of _GENERAL.
    _PUT, _GENERAL = 1 << 20, 1 << 40

    @njit(cache=True)
    def _pair_rest(v, p0, width, is_call, expiry, strikes, premiums, qtys, n, cols, picked, unit, spread, straddle,
                   strangle, both_orders, wide_bit, kind, margins, total, out):
        # `_margin_blocks`' elements of variant v at paths p0..p0 + width holding more than a call and a put, or a
        # series from ``wide_bit`` on: listed with the set of series each holds (a bit a series), then paired in
        # the book's order — two series on numbers (`_two`), more a set at a time (`_paired_set`: every element
        # holding an iron condor's four legs together, only those legs' pairs). (A call of its own: it takes the
        # series' tuples, whose arrays are reference counted at each call, and runs on few blocks.)
        held_at = np.empty(width, dtype=np.int64)
        m = 0
        for p in range(width):
            kd = kind[p]
            held_at[m] = p
            m += not (kd == 0 or kd == 1 or kd == _PUT or kd == 1 + _PUT)
        if m == 0:
            return
        sets = np.zeros(m, dtype=np.int64)  # the series an element holds, a bit a series (one set if n > 62)
        for i in range(n):
            ql = qtys[i]
            vq = v if ql.shape[0] > 1 else 0
            bit = np.int64(1) << np.int64(min(i, 62))
            for x in range(m):
                c = cols[p0 + held_at[x]] if picked else p0 + held_at[x]
                if ql[vq, c if ql.shape[1] > 1 else 0] != 0.0:
                    sets[x] |= bit
        order, starts = _grouped(sets)
        for d in range(starts.shape[0] - 1):
            _paired_set(v, p0, held_at, order[starts[d]:starts[d + 1]], is_call, expiry, strikes, premiums, qtys, n,
                        cols, picked, unit, spread, straddle, strangle, both_orders, wide_bit, margins, total, out)

    @njit(cache=True)
    def _grouped(keys):
        # The indices of ``keys`` grouped by value (each group in index order, the groups in order of first
        # appearance) and where each group starts (and the last ends): a block's elements by the set of series
        # they hold, which are few (most elements of a block hold the same legs). A sort of the block cost more
        # than its pairing.
        m = keys.shape[0]
        distinct, label = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
        nd, last, last_label = 0, 0, -1
        for x in range(m):
            key = keys[x]
            if last_label < 0 or key != last:
                last_label = -1
                for d in range(nd):
                    if distinct[d] == key:
                        last_label = d
                        break
                if last_label < 0:
                    distinct[nd], last_label = key, nd
                    nd += 1
                last = key
            label[x] = last_label
        starts = np.zeros(nd + 1, dtype=np.int64)
        for x in range(m):
            starts[label[x] + 1] += 1
        for d in range(nd):
            starts[d + 1] += starts[d]
        fill, order = starts[:nd].copy(), np.empty(m, dtype=np.int64)
        for x in range(m):
            order[fill[label[x]]] = x
            fill[label[x]] += 1
        return order, starts

    @njit(cache=True)
    def _paired_set(v, p0, held_at, members, is_call, expiry, strikes, premiums, qtys, n, cols, picked, unit, spread,
                    straddle, strangle, both_orders, wide_bit, margins, total, out):
        # `_pair_rest`'s elements ``members`` (into ``held_at``), which hold the same series: those series listed in
        # the book's order (each held on every member; from the 63rd on, which share a bit, all of them, those a
        # member does not hold taking no part in its pairs), their rows gathered, paired by `_paired_many` (two
        # series of one type too: the reference's operations, as `_two`'s, whose inlined copy here compiled ~3 s
        # longer).
        g = members.shape[0]
        held = np.empty(n, dtype=np.int64)
        h = 0
        x = members[0]
        c = cols[p0 + held_at[x]] if picked else p0 + held_at[x]
        for i in range(n):
            ql = qtys[i]
            held[h] = i
            h += i >= 62 or ql[v if ql.shape[0] > 1 else 0, c if ql.shape[1] > 1 else 0] != 0.0
        rows = np.empty((4, h, g))  # lots, strikes, premiums, a lot's margin: (series held, members)
        calls, expiries = np.empty(h, dtype=np.bool_), np.empty(h)
        for s in range(h):
            i = held[s]
            ql, ks, xs = qtys[i], strikes[i], premiums[i]
            vq, vk, vx = (v if ql.shape[0] > 1 else 0), (v if ks.shape[0] > 1 else 0), (v if xs.shape[0] > 1 else 0)
            calls[s], expiries[s] = is_call[i], expiry[i]
            for y in range(g):
                p = held_at[members[y]]
                c = cols[p0 + p] if picked else p0 + p
                rows[0, s, y] = ql[vq, c if ql.shape[1] > 1 else 0]
                rows[1, s, y] = ks[vk, c if ks.shape[1] > 1 else 0]
                rows[2, s, y] = xs[vx, c if xs.shape[1] > 1 else 0]
                rows[3, s, y] = margins[i, p]
        paired = np.empty(g)
        _paired_many(g, h, calls, expiries, rows[0], rows[1], rows[2], rows[3], unit, spread, straddle, strangle,
                     both_orders, paired)
        for y in range(g):
            p = held_at[members[y]]
            out[v, p0 + p] = total[p] + paired[y]

    # The pairing (combinations._paired: spreads first, then straddles and strangles; where both can pair, the
    # other order too, the smaller kept) of many elements at once: (series, elements) rows, each pair's arithmetic
    # a loop over the elements that the compiler vectorises, instead of a few hundred branches an element. An
    # element's pairs are its held series' in the book's order, as the reference pairs them, with its operations
    # in its order: the same bits. Where an element does not take part (a series it does not hold — the sets of
    # `_pair_rest` hold all theirs but past the 62nd —, a pairing its series cannot make) it adds a selected
    # exact 0.0 (never a product, which a margin not computed there could make NaN): its sums start at +0.0 and
    # so are never -0.0, and x + 0.0 and x - 0.0 are x. A captured condor requirement (5 sizes x 10,000 paths,
    # four legs and four rolled series): 11.3 ms a call paired one element at a time (a scalar twin of the
    # reference on gathered arrays, this module's until then), 5.0 ms all its elements over every series
    # together, 2.4–2.7 ms a set of series at a time (`_pair_rest`).

    @njit(cache=True)
    def _split_many(n, g, q, short, long):
        # The lots split into short and long, every element.
        for i in range(n):
            for x in range(g):
                short[i, x] = (-q[i, x] + abs(-q[i, x])) / 2
                long[i, x] = (q[i, x] + abs(q[i, x])) / 2

    @njit(cache=True)
    def _spreads_many(n, g, is_call, expiry, k, q, margin, short, long, unit, take, total):
        # combinations._spreads of the elements ``take``, into ``total`` (zeros): each short leg paired with the
        # long legs of its type and expiry.
        for i in range(n):
            for j in range(n):
                if i == j or is_call[i] != is_call[j] or expiry[i] != expiry[j]:
                    continue
                call = is_call[i]
                for x in range(g):
                    on = take[x] & (q[i, x] != 0.0) & (q[j, x] != 0.0)
                    lots = _cmin(short[i, x], long[j, x])
                    w = k[j, x] - k[i, x] if call else k[i, x] - k[j, x]
                    width = (w + abs(w)) / 2 * unit
                    amount = lots * _cmin(margin[i, x], width)
                    total[x] = total[x] + (amount if on else 0.0)
                    lots = lots if on else 0.0
                    short[i, x] = short[i, x] - lots
                    long[j, x] = long[j, x] - lots

    @njit(cache=True)
    def _straddles_many(n, g, is_call, expiry, k, premium, q, margin, short, straddle, strangle, unit, take, total):
        # combinations._straddles of the elements ``take``, into ``total`` (zeros): short calls paired with short
        # puts of the same expiry.
        for i in range(n):
            for j in range(n):
                if not is_call[i] or is_call[j] or expiry[i] != expiry[j]:
                    continue
                for x in range(g):
                    on = take[x] & (q[i, x] != 0.0) & (q[j, x] != 0.0)
                    ki, kj, mi, mj = k[i, x], k[j, x], margin[i, x], margin[j, x]
                    pairs = straddle * (ki == kj) + strangle * (ki > kj)
                    lots = _cmin(short[i, x], short[j, x]) * pairs
                    other = (mi >= mj) * premium[j, x] + (mi < mj) * premium[i, x]
                    amount = lots * (_cmax(mi, mj) + other * unit)
                    total[x] = total[x] + (amount if on else 0.0)
                    lots = lots if on else 0.0
                    short[i, x] = short[i, x] - lots
                    short[j, x] = short[j, x] - lots

    @njit(cache=True)
    def _paired_total_many(n, g, q, margin, short, first, out):
        # ``first`` plus every element's lots no pair took, margined leg by leg (the sum from 0.0), into ``out``.
        rest = np.zeros(g)
        for i in range(n):
            for x in range(g):
                amount = short[i, x] * margin[i, x]
                rest[x] = rest[x] + (amount if q[i, x] != 0.0 else 0.0)
        for x in range(g):
            out[x] = first[x] + rest[x]

    @njit(cache=True, error_model="numpy")
    def _paired_many(g, n, is_call, expiry, q, k, prem, margin, unit, spread, straddle, strangle, both_orders, out):
        # The pairing of elements 0..g of the (series, elements) rows ``q``, ``k``, ``prem``, ``margin`` into ``out``.
        can_spread, can_straddle = np.empty(g, dtype=np.bool_), np.empty(g, dtype=np.bool_)
        for x in range(g):
            has_long, has_call, has_put = False, False, False
            for a in range(n):
                if q[a, x] != 0.0:
                    has_long = has_long or q[a, x] > 0
                    has_call = has_call or is_call[a]
                    has_put = has_put or not is_call[a]
            can_spread[x] = spread and has_long
            can_straddle[x] = (straddle or strangle) and has_call and has_put
        short, long, sums = np.empty((n, g)), np.empty((n, g)), np.zeros((2, g))
        _split_many(n, g, q, short, long)
        first = np.zeros(g)
        if spread:
            _spreads_many(n, g, is_call, expiry, k, q, margin, short, long, unit, can_spread, sums[0])
        if straddle or strangle:
            _straddles_many(n, g, is_call, expiry, k, prem, q, margin, short, straddle, strangle, unit, can_straddle,
                            sums[1])
        for x in range(g):
            if can_spread[x]:
                first[x] = first[x] + sums[0, x]
            if can_straddle[x]:
                first[x] = first[x] + sums[1, x]
        _paired_total_many(n, g, q, margin, short, first, out)
        if not (both_orders and spread and (straddle or strangle)):
            return
        both = can_spread & can_straddle  # the other order too, the smaller kept
        if not both.any():
            return
        sums[:] = 0.0
        _split_many(n, g, q, short, long)
        _straddles_many(n, g, is_call, expiry, k, prem, q, margin, short, straddle, strangle, unit, both, sums[1])
        _spreads_many(n, g, is_call, expiry, k, q, margin, short, long, unit, both, sums[0])
        for x in range(g):
            first[x] = (0.0 + sums[1, x]) + sums[0, x]
        second = np.empty(g)
        _paired_total_many(n, g, q, margin, short, first, second)
        for x in range(g):
            if both[x]:
                out[x] = _cmin(out[x], second[x])

    @njit(cache=True, inline="always")
    def _block_prices(price, p0, p1, picked, cols, f):
        # The block's prices: the price row's view where it is per path (no copy), else gathered into ``f``.
        if price.shape[0] > 1 and not picked:
            return price[p0:p1]
        if price.shape[0] == 1:
            for p in range(p1 - p0):
                f[p] = price[0]
        elif picked:
            for p in range(p1 - p0):
                f[p] = price[cols[_u(p0, p)]]
        return f

    @njit(cache=True)
    def _sparse_series(lo, hi, qtys, strikes, premiums, n, picked):
        # Which series `_series_sparse` margins: those whose rows are per variant (an adjustment's new series: no
        # later variant reads their margins) that few elements hold, fewer than a sixteenth of the first block's
        # of the first variant (the density is much the same over the others). Where they are held on more, the
        # vectorised loops over every element are as fast or faster (a captured requirement, its two new series
        # held at random: 1.4 against 2.1 ms a call at 1%, 2.3 against 2.7 at 6%, 3.1 against 3.0 at 10%, 4.1
        # against 3.8 at 20%), and a count at every block and variant cost the hold-out's requirement 5%.
        out = np.zeros(max(n, 1), dtype=np.bool_)
        width = min(_MARGIN_BLOCK, hi - lo)
        for i in range(n):
            ql, ks, xs = qtys[i], strikes[i], premiums[i]
            if picked or not (ks.shape[0] > 1 or xs.shape[0] > 1) or ql.shape[1] == 1 or width <= 0:
                continue
            m = 0
            for p in range(width):
                m += ql[0, _u(lo, p)] != 0.0
            out[i] = 16 * m < width
        return out

    @njit(cache=True)
    def _series_sparse(p0, width, call, e, weight, s, ql, ks, xs, vq, vk, vx, fb, fr, czce, otm_weight,
                       floor_weight, r, mr, put_cap, unit, i, margins, kind, sides, idx):
        # `_series_in_place` of a series held on few of the block's elements (`_sparse_series`): the held elements
        # listed (no branch an element), then their margins and sides computed and written, the others left as
        # they are (an element not held adds 0 to its kind, and no one reads its margin or sides).
        m = 0
        for p in range(width):
            idx[m] = p
            m += ql[vq, _u(p0, p)] != 0.0
        for x in range(m):
            p = idx[x]
            lot, kv, xv = ql[vq, _u(p0, p)], ks[vk, _u(p0, p)], xs[vx, _u(p0, p)]
            mv = _series_margin(call, fb[p], kv, xv, fr, czce, otm_weight, floor_weight, r, mr, put_cap, unit)
            margins[i, p] = mv
            kind[p] += weight
            sides[s, p], sides[s + 1, p], sides[s + 2, p] = lot, kv, xv
            sides[s + 3, p], sides[s + 4, p] = mv, e

    @njit(cache=True, inline="always")
    def _series_in_place(p0, width, call, e, weight, s, fresh, sparse, ql, ks, xs, vq, vk, vx, fb, fr, czce,
                         otm_weight, floor_weight, r, mr, put_cap, unit, i, margins, kind, sides, idx):
        # Series i of variant v at paths p0..p0 + width, every row per path (most): read in place, the three rows
        # in one loop (more reads under way at once), a lot's margin kept unless the previous variant's holds
        # (not ``fresh``), the side's numbers written where the series is held (masked stores: the loop stays
        # vectorised). (The pack's formula a literal in each loop: it computes that one only, not both and a
        # select.) A ``sparse`` series (`_sparse_series`) is `_series_sparse`'s: its margin computed where held
        # only. Measured on a captured jujube requirement (14 sizes × 10,000 paths, the strangle's two legs and a
        # roll's two series held on 2% of the elements): 1.24 → 1.03 ms a call.
        if fresh and sparse:
            _series_sparse(p0, width, call, e, weight, s, ql, ks, xs, vq, vk, vx, fb, fr, czce, otm_weight,
                           floor_weight, r, mr, put_cap, unit, i, margins, kind, sides, idx)
            return
        if fresh and czce:
            for p in range(width):
                lot, kv, xv = ql[vq, _u(p0, p)], ks[vk, _u(p0, p)], xs[vx, _u(p0, p)]
                mv = _series_margin(call, fb[p], kv, xv, fr, True, otm_weight, floor_weight, r, mr, put_cap, unit)
                margins[i, p] = mv
                held = lot != 0.0
                kind[p] += held * weight
                if held:
                    sides[s, p], sides[s + 1, p], sides[s + 2, p] = lot, kv, xv
                    sides[s + 3, p], sides[s + 4, p] = mv, e
        elif fresh:
            for p in range(width):
                lot, kv, xv = ql[vq, _u(p0, p)], ks[vk, _u(p0, p)], xs[vx, _u(p0, p)]
                mv = _series_margin(call, fb[p], kv, xv, fr, False, otm_weight, floor_weight, r, mr, put_cap, unit)
                margins[i, p] = mv
                held = lot != 0.0
                kind[p] += held * weight
                if held:
                    sides[s, p], sides[s + 1, p], sides[s + 2, p] = lot, kv, xv
                    sides[s + 3, p], sides[s + 4, p] = mv, e
        else:
            for p in range(width):
                lot = ql[vq, _u(p0, p)]
                held = lot != 0.0
                kind[p] += held * weight
                if held:
                    sides[s, p], sides[s + 1, p] = lot, ks[vk, _u(p0, p)]
                    sides[s + 2, p], sides[s + 3, p] = xs[vx, _u(p0, p)], margins[i, p]
                    sides[s + 4, p] = e

    @njit(cache=True, inline="always")
    def _series_gathered(v, p0, p1, call, e, weight, s, fresh, ql, ks, xs, cols, picked, fb, fr, czce, otm_weight,
                         floor_weight, r, mr, put_cap, unit, i, rows, margins, kind, sides):
        # Series i of variant v at paths p0..p1 where a row is broadcast or the paths picked: its rows gathered
        # first (`_fill`), then as `_series_in_place` (the formula chosen per element).
        width = p1 - p0
        _fill(rows, 0, ql, v, p0, p1, cols, picked)
        _fill(rows, 1, ks, v, p0, p1, cols, picked)
        _fill(rows, 2, xs, v, p0, p1, cols, picked)
        if fresh:
            for p in range(width):
                margins[i, p] = _series_margin(call, fb[p], rows[1, p], rows[2, p], fr, czce, otm_weight,
                                               floor_weight, r, mr, put_cap, unit)
        for p in range(width):
            lot = rows[0, p]
            held = lot != 0.0
            kind[p] += held * weight
            if held:
                sides[s, p], sides[s + 1, p], sides[s + 2, p] = lot, rows[1, p], rows[2, p]
                sides[s + 3, p], sides[s + 4, p] = margins[i, p], e

    @njit(cache=True, inline="always")
    def _pair_block(v, p0, width, kind, sides, total, out, unit, spread, straddle, strangle, both_orders):
        # Every element of variant v at paths p0..p0 + width as if it held none, one series or a call and a put
        # (the one it does kept), its requirement into ``out``; returns how many hold more (`_pair_rest`'s).
        rest = 0
        for p in range(width):
            kd = kind[p]
            qc, kc, xc, mc, ec = sides[0, p], sides[1, p], sides[2, p], sides[3, p], sides[4, p]
            qp, kp, xp, mp, ep = sides[5, p], sides[6, p], sides[7, p], sides[8, p], sides[9, p]
            two = _call_put(ec == ep, kc, xc, qc, mc, kp, xp, qp, mp, unit, spread, straddle, strangle, both_orders)
            one = _one(qc if kd == 1 else qp, mc if kd == 1 else mp)
            paired = two if kd == 1 + _PUT else (one if kd == 1 or kd == _PUT else 0.0)
            out[v, _u(p0, p)] = total[p] + paired
            rest += not (kd == 0 or kd == 1 or kd == _PUT or kd == 1 + _PUT)
        return rest

    @njit(cache=True, error_model="numpy")
    def _margin_blocks(lo, hi, is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other, summed,
                       futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                       futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out, account, equity,
                       capital, margin_buffer, calls, liquidate, peak_margin, peak, max_dd):
        # Elements lo..hi of every variant (`_book_margin`), a block of paths at a time, each variant in passes
        # over the block that the compiler vectorises: the futures' requirement (`_futures_rows`); each series'
        # lots, strike, premium and a lot's own margin, kept per element for its one held call and its one held
        # put (most elements hold none, or a strangle's two legs: `_series_in_place`, `_series_gathered`); every
        # element's requirement from those (`_pair_block`), the few holding more paired apart (`_pair_rest`);
        # then, with ``account``, the account after it (`_account_row`; numpy's error model for its division).
        # The series' loop stays here: an array bound to a helper's argument or taken from a tuple is reference
        # counted (an atomic add and subtract), so a helper called a block with the series' tuples (48 arrays)
        # cost more than the block's arithmetic; the phases' helpers take a series' rows or the block's scratch.
        variants, size = out.shape[0], min(_MARGIN_BLOCK, hi - lo)
        picked = cols.shape[0] > 0
        f, total, kind, idx = np.empty(size), np.empty(size), np.empty(size, np.int64), np.empty(size, np.int64)
        # sides: an element's held call's lots, strike, premium, margin a lot and expiry, then its held put's
        fut, rows, sides, margins = np.empty((3, size)), np.empty((3, size)), np.empty((10, size)), np.empty((n, size))
        sparse = _sparse_series(lo, hi, qtys, strikes, premiums, n, picked)
        for p0 in range(lo, hi, _MARGIN_BLOCK):
            p1 = min(hi, p0 + _MARGIN_BLOCK)
            width = p1 - p0
            fb = _block_prices(price, p0, p1, picked, cols, f)
            for v in range(variants):
                fr, r, mr = futures_rate[v], rate[v], min_rate[v]
                _futures_rows(v, p0, p1, cols, picked, fb, lots, hedge, other, summed, fr, contract_size,
                              futures_underlying, fut, total)
                if n == 0:
                    for p in range(width):
                        out[v, _u(p0, p)] = total[p] + 0.0
                else:
                    for p in range(width):
                        kind[p] = 0
                    # A lot's margin depends on the variant only through its rates and a per-variant strike or
                    # premium: where the rates are the previous variant's (sizes, fees: most sweeps), a series marked
                    # per path keeps the margins computed for it.
                    again = (v > 0 and _same(fr, futures_rate[v - 1]) and _same(r, rate[v - 1])
                             and _same(mr, min_rate[v - 1]))
                    for i in range(n):
                        call, e = is_call[i], expiry[i]
                        weight, s = (_GENERAL if i >= wide_bit else (1 if call else _PUT)), (0 if call else 5)
                        ql, ks, xs = qtys[i], strikes[i], premiums[i]
                        fresh = not (again and ks.shape[0] == 1 and xs.shape[0] == 1)
                        if not picked and ql.shape[1] > 1 and ks.shape[1] > 1 and xs.shape[1] > 1:
                            _series_in_place(p0, width, call, e, weight, s, fresh, sparse[i], ql, ks, xs,
                                             v if ql.shape[0] > 1 else 0, v if ks.shape[0] > 1 else 0,
                                             v if xs.shape[0] > 1 else 0, fb, fr, czce, otm_weight, floor_weight, r,
                                             mr, put_cap, unit, i, margins, kind, sides, idx)
                        else:
                            _series_gathered(v, p0, p1, call, e, weight, s, fresh, ql, ks, xs, cols, picked, fb, fr,
                                             czce, otm_weight, floor_weight, r, mr, put_cap, unit, i, rows, margins,
                                             kind, sides)
                    if _pair_block(v, p0, width, kind, sides, total, out, unit, spread, straddle, strangle,
                                   both_orders) > 0:
                        _pair_rest(v, p0, width, is_call, expiry, strikes, premiums, qtys, n, cols, picked, unit,
                                   spread, straddle, strangle, both_orders, wide_bit, kind, margins, total, out)
                if account:
                    _account_row(v, p0, width, equity, out, capital, margin_buffer, calls, liquidate, peak_margin,
                                 peak, max_dd)

    @njit(cache=True)
    def _book_margin(is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other, summed,
                     futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                     futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out):
        # ``strikes``, ``premiums``, ``qtys``: a tuple of n arrays each (broadcast as ``_at`` reads them; a
        # dummy entry when n is 0); element p of ``out`` is path cols[p] (p itself when ``cols`` is empty). The
        # futures lots are ``lots`` or, ``summed``, |lots| + |hedge| + |other| (positions._Margins).
        _margin_blocks(0, out.shape[1], is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other,
                       summed, futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit,
                       contract_size, futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out,
                       _FALSE, np.empty((0, 0)), 0.0, 0.0, np.empty((0, 0), dtype=np.int64),
                       np.empty((0, 0), dtype=np.bool_), np.empty((0, 0)), np.empty((0, 0)), np.empty((0, 0)))

    # The serial and parallel twins of the step's requirement (two functions: see the marks' twins above): the
    # book's margin (|futures| summed, every path), then the account. A path's numbers do not depend on the
    # block or the thread: the same bits with one thread or several.
    @njit(cache=True)
    def _requirement_account(is_call, expiry, strikes, premiums, qtys, n, price, static, hedge, other, futures_rate,
                             czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                             futures_underlying, spread, straddle, strangle, both_orders, wide_bit, equity, capital,
                             margin_buffer, calls, liquidate, peak_margin, peak, max_dd, out):
        _margin_blocks(0, out.shape[1], is_call, expiry, strikes, premiums, qtys, n, np.zeros(0, dtype=np.int64),
                       price, static, hedge, other, _TRUE, futures_rate, czce, otm_weight, floor_weight, rate,
                       min_rate, put_cap, unit, contract_size, futures_underlying, spread, straddle, strangle,
                       both_orders, wide_bit, out, _TRUE, equity, capital, margin_buffer, calls, liquidate, peak_margin,
                       peak, max_dd)

    @njit(cache=True, parallel=True)
    def _requirement_parallel(is_call, expiry, strikes, premiums, qtys, n, price, static, hedge, other, futures_rate,
                              czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                              futures_underlying, spread, straddle, strangle, both_orders, wide_bit, equity, capital,
                              margin_buffer, calls, liquidate, peak_margin, peak, max_dd, out):
        paths = out.shape[1]
        chunk = 8 * _MARGIN_BLOCK  # paths a thread's call does (its arguments' cost paid once for them)
        for b in prange((paths + chunk - 1) // chunk):
            p0, p1 = b * chunk, min(paths, (b + 1) * chunk)
            _margin_blocks(p0, p1, is_call, expiry, strikes, premiums, qtys, n,
                           np.zeros(0, dtype=np.int64), price, static, hedge, other, _TRUE, futures_rate, czce,
                           otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size, futures_underlying,
                           spread, straddle, strangle, both_orders, wide_bit, out, _TRUE, equity, capital,
                           margin_buffer, calls, liquidate, peak_margin, peak, max_dd)


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
    `opl.runtime.engine.positions`' reference ``_margin`` computes it (bit for bit).

    ``holdings`` are (is_call, strike, premium, signed lots, expiry key) tuples whose arrays broadcast
    to ``shape`` (variants, paths); ``futures_lots`` the absolute futures lots; ``cols`` (path indices)
    restricts the result to those paths, (variants, len(cols)).
    """
    holdings = list(holdings)
    n = len(holdings)
    price = np.asarray(price, dtype=float)
    # Read-only, as the step's requirement passes it (`_input`: one compiled type, a stored month's row as it is).
    price = _input(price, price.shape)
    picked = _NO_COLS if cols is None else np.ascontiguousarray(cols, dtype=np.int64)
    width = price.shape[0] if cols is None else picked.shape[0]
    # Each series' arrays as they are, one type for all (C-ordered float rows, `_grid`); a dummy entry
    # when nothing is held, as the kernel's tuples cannot be empty.
    strikes, premiums, qtys = (_slot_tuple((h[at] for h in holdings), BOOK_SLOTS) for at in (1, 2, 3))
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


def account(*, equity, requirement, capital: float, margin_buffer: float, calls, peak_margin, peak,
            max_dd) -> np.ndarray:
    """After a step's margin: margin calls counted, the running peaks and drawdown updated (in place);
    returns where the call is not met (liquidated at the next step)."""
    liquidate = np.empty(equity.shape, dtype=np.bool_)
    _account(0, equity.shape[1], equity, _plain(requirement, equity.shape), float(capital), float(margin_buffer), calls, liquidate,
             peak_margin, peak, max_dd)
    return liquidate


def requirement_account(rule: MarginRule, holdings, *, static, hedge, other, price, equity, capital: float,
                        margin_buffer: float, calls, peak_margin, peak, max_dd,
                        into: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`book_margin` of ``holdings`` with the futures lots |static| + |hedge| + |other|, then `account`, in one
    pass: returns the requirement and where the call is not met (the counters, peaks and drawdown in place).
    ``into``: (requirement, liquidate) arrays to write them into (C-ordered, writable, the step's shape: floats,
    flags; every element is written), else new ones."""
    shape = equity.shape
    out, liquidate = into if into is not None else (np.empty(shape), np.empty(shape, dtype=np.bool_))
    kernel = _requirement_parallel if out.size >= base.STEP_PARALLEL_MIN else _requirement_account
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
    # (Keyed by the values as held, Python's or numpy's bools and numbers: equal keys, the same arrays.)
    is_call, expiry, two_kinds = _series_kinds(tuple([(h[0], h[4]) for h in holdings]))
    both = rule.spread and (rule.straddle or rule.strangle) and two_kinds
    return (is_call, expiry, _slot_tuple([h[1] for h in holdings], BOOK_SLOTS),
            _slot_tuple([h[2] for h in holdings], BOOK_SLOTS), _slot_tuple([h[3] for h in holdings], BOOK_SLOTS),
            len(holdings),
            _input(price, shape[1:]), _grid(static), _grid(hedge), _grid(other), rule.futures_rate, rule.czce,
            rule.otm_weight, rule.floor_weight, rule.rate, rule.min_rate, rule.put_cap, rule.unit, rule.contract_size,
            rule.futures_underlying, rule.spread, rule.straddle, rule.strangle, both, _WIDE_BIT, equity,
            float(capital), float(margin_buffer), calls, liquidate, peak_margin, peak, max_dd, out)
