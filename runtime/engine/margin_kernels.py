"""The margin kernels: a book's requirement per (variant, path) and the account after a step.

The compiled twin of `opl.runtime.market.margin` and `opl.runtime.market.combinations` (the
reference): the pack's single-leg formula and the combination pairings over the series held on
each path, a block of paths at a time (`_margin_blocks`), then the margin calls, liquidation decision,
margin peak and drawdown (`_account`), in one call for the step's requirement (`requirement_account`).
The rules every kernel keeps are `opl.runtime.engine.kernels`'.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from opl.runtime.engine import kernelbase
from opl.runtime.engine.kernelbase import BOOK_SLOTS, _ONE, _TRUE, _ZERO, _grid, _plain, _slot_tuple, njit, prange

__all__ = ["MarginRule", "book_margin", "account", "requirement_account"]

# Paths a margin block does for every variant: its scratch (a few series' rows) stays in the first-level cache.
_MARGIN_BLOCK = 256
# Held series are bits of an int64 per element: from this slot on they share the top bit, and an element holding
# one is paired the general way (`_pair_rows`). An argument of the kernels, so tests can lower it.
_WIDE_BIT = 62


if njit is not None:
    # -- margin (opl.runtime.market.margin, opl.runtime.market.combinations) ----------------------------------
    # The formulas are written exactly as the reference writes them (max(a, b) = (a + b + |a - b|) / 2 in
    # the combinations, the same sums in the same order), so a requirement is the reference's bit for bit.
    # Blocks of paths (`_margin_blocks`): each series' row read once into a block-sized scratch, then the
    # elements one by one — most hold none or a strangle's two legs, paired on numbers. The series' arrays are
    # read where they lie (tuples of arrays, no (series, variants, paths) copy): copying them cost more than the
    # arithmetic. Blocks are independent, so the step's requirement has a parallel twin. Measured on a jujube
    # run's own calls (10,000 paths; variants x paths elements): the blocks' loop inside one kernel, plain
    # loops for the rows and a vectorised account took a step's requirement and account from ~40 to ~25 ns
    # an element.

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
    def _same(a, b):
        # Two rates alike, NaN (no such rate in the pack) alike too.
        return a == b or (a != a and b != b)

    @njit(cache=True, inline="always")
    def _bit_at(bits, i):
        # The index of the lowest set bit of ``bits`` from i on.
        while not bits >> i & 1:
            i += 1
        return i

    @njit(cache=True, inline="always")
    def _series_rows(v, again, p0, p1, is_call, strikes, premiums, qtys, n, cols, picked, f, fr, czce, otm_weight,
                     floor_weight, r, mr, put_cap, unit, wide_bit, qb, kb, pb, mb, held_bits):
        # Variant v's rows of every series at paths p0..p1 (`_margin_blocks`): the lots, the strike, the premium and
        # a lot's own margin — for every element, without a branch (an element not holding the series never
        # reads them) — and a bit per held series. A series marked per path keeps the margins of the variant
        # before when ``again`` (its rates are the same: the same operations on the same inputs).
        width = p1 - p0
        for p in range(width):
            held_bits[p] = 0
        for i in range(n):
            call, bit = is_call[i], 1 << min(i, wide_bit)
            lots, strike, premium = qtys[i], strikes[i], premiums[i]
            fresh = not (again and strike.shape[0] == 1 and premium.shape[0] == 1)
            if not picked and lots.shape[1] > 1 and strike.shape[1] > 1 and premium.shape[1] > 1:
                # Every row per path (most): the block's rows as views, copied by loops over plain indices
                # (an index p0 + p is checked for a negative value at each element) that the compiler vectorises.
                lr = lots[v if lots.shape[0] > 1 else 0, p0:p1]
                qr = qb[i]
                for p in range(width):
                    qr[p] = lr[p]
                for p in range(width):
                    held_bits[p] |= bit * (qr[p] != 0.0)
                if fresh:
                    kr, xr, mr_ = kb[i], pb[i], mb[i]
                    ks = strike[v if strike.shape[0] > 1 else 0, p0:p1]
                    xs = premium[v if premium.shape[0] > 1 else 0, p0:p1]
                    for p in range(width):
                        kr[p] = ks[p]
                    for p in range(width):
                        xr[p] = xs[p]
                    for p in range(width):
                        mr_[p] = _series_margin(call, f[p], kr[p], xr[p], fr, czce, otm_weight, floor_weight, r, mr,
                                                put_cap, unit)
                continue
            _fill(qb, i, lots, v, p0, p1, cols, picked)
            if fresh:
                _fill(kb, i, strike, v, p0, p1, cols, picked)
                _fill(pb, i, premium, v, p0, p1, cols, picked)
                for p in range(width):
                    mb[i, p] = _series_margin(call, f[p], kb[i, p], pb[i, p], fr, czce, otm_weight, floor_weight, r,
                                              mr, put_cap, unit)
            for p in range(width):
                held_bits[p] |= bit * (qb[i, p] != 0.0)

    @njit(cache=True, inline="always")
    def _futures_rows(v, p0, p1, cols, picked, f, lots, hedge, other, summed, fr, contract_size, futures_underlying,
                      fut, total):
        # The futures' requirement of variant v at paths p0..p1 into ``total``: ``lots`` or, ``summed``,
        # |lots| + |hedge| + |other| (replay._Margins), at the futures rate when the underlying is a future,
        # else paid in full. The lots gathered into rows first, so the sum is a loop the compiler vectorises.
        width = p1 - p0
        if (summed and futures_underlying and not picked and lots.shape[1] == 1 and hedge.shape[1] > 1
                and other.shape[1] > 1):
            # The step's requirement (the book's futures one number, the hedge and other futures per path):
            # one pass, the same sum.
            a = abs(lots[v if lots.shape[0] > 1 else 0, 0])
            hr, orow = hedge[v if hedge.shape[0] > 1 else 0, p0:p1], other[v if other.shape[0] > 1 else 0, p0:p1]
            for p in range(width):
                total[p] = fr * f[p] * contract_size * (a + abs(hr[p]) + abs(orow[p]))
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
    def _pair_rows(v, p0, width, is_call, expiry, n, unit, spread, straddle, strangle, both_orders, wide_bit, qb,
                   kb, pb, mb, held_bits, total, held_at, gather, out):
        # Variant v's requirement at paths p0..p0 + width: the futures' ``total`` plus the options' paired
        # requirement, element by element. An element holding no series adds 0.0; the ones holding some are
        # listed first (``held_at``: no branch an element to mispredict) and paired: one or two series on numbers
        # (`_one`, `_two`), more gathered in the book's order (`_paired`, into ``gather``'s arrays). (At most
        # thirty arguments for a function inlined: Python passes more as a tuple, which numba does not inline.)
        row = out[v, p0:p0 + width]
        for p in range(width):
            row[p] = total[p] + 0.0
        if n == 0:
            return
        m = 0
        for p in range(width):
            held_at[m] = p
            m += held_bits[p] != 0
        for x in range(m):
            p = held_at[x]
            bits = held_bits[p]
            rest = bits & (bits - 1)
            if bits >> wide_bit == 0 and rest & (rest - 1) == 0:
                a = _bit_at(bits, 0)
                if rest == 0:
                    paired = _one(qb[a, p], mb[a, p])
                else:
                    b = _bit_at(rest, a + 1)
                    paired = _two(is_call[a], expiry[a] == expiry[b], kb[a, p], pb[a, p], qb[a, p], mb[a, p], kb[b, p],
                                  pb[b, p], qb[b, p], mb[b, p], is_call[b], unit, spread, straddle, strangle,
                                  both_orders)
            else:
                cc, ce, k, prem, q, margin, short, long, short2, long2 = gather
                h = _ZERO
                for i in range(n):
                    if qb[i, p] != 0.0:
                        q[h], k[h], prem[h], margin[h] = qb[i, p], kb[i, p], pb[i, p], mb[i, p]
                        cc[h], ce[h] = is_call[i], expiry[i]
                        h += 1
                paired = _paired(h, cc, ce, k, prem, q, margin, short, long, short2, long2, unit, spread, straddle,
                                 strangle, both_orders)
            out[v, p0 + p] = total[p] + paired

    @njit(cache=True, inline="always")
    def _nanmax(a, b):
        # numpy.maximum: NaN wins (`_npmax`, as selects: a loop of these vectorises).
        return math.nan if a != a or b != b else (a if a >= b else b)

    @njit(cache=True, error_model="numpy")
    def _account(p0, p1, equity, requirement, capital, margin_buffer, calls, liquidate, peak_margin, peak, max_dd):
        # replay._Pass._requirement's account, paths p0..p1 of every variant: the call, the liquidation decided, the peaks and
        # the drawdown. A variant's rows as views and flags combined with ``&``, and numpy's division (inf or
        # NaN, not an exception, at a peak of 0, as the reference): no branch an element, so the compiler
        # vectorises the loop (a third of the time of the step's margin before).
        keep = 1.0 - margin_buffer
        for v in range(equity.shape[0]):
            e_, r_, c_, l_ = equity[v, p0:p1], requirement[v, p0:p1], calls[v, p0:p1], liquidate[v, p0:p1]
            pm_, pk_, dd_ = peak_margin[v, p0:p1], peak[v, p0:p1], max_dd[v, p0:p1]
            for p in range(p1 - p0):
                e, r = e_[p], r_[p]
                call = (e < r) & (r > 0)
                c_[p] += call
                l_[p] = call & (e < keep * r)
                pm_[p] = _nanmax(pm_[p], r / capital)
                top = _nanmax(pk_[p], e)
                pk_[p] = top
                dd_[p] = _nanmax(dd_[p], (top - e) / top)

    @njit(cache=True)
    def _margin_blocks(lo, hi, is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other, summed,
                       futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                       futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out):
        # Elements lo..hi of every variant (`_book_margin`), a block of paths at a time: for each variant the
        # series' rows into a block-sized scratch (`_series_rows`, in cache), the futures' (`_futures_rows`),
        # then element by element (`_pair_rows`). The blocks' loop is here, not a call a block: a call's
        # arguments (some forty arrays, each reference counted) cost as much as a block's margin.
        variants, size = out.shape[0], min(_MARGIN_BLOCK, hi - lo)
        qb, kb, pb, mb = np.empty((n, size)), np.empty((n, size)), np.empty((n, size)), np.empty((n, size))
        f, total, fut = np.empty(size), np.empty(size), np.empty((3, size))
        held_bits, held_at = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
        gather = (np.empty(n, dtype=np.bool_), np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n),
                  np.empty(n), np.empty(n), np.empty(n), np.empty(n))
        picked = cols.shape[0] > 0
        for p0 in range(lo, hi, _MARGIN_BLOCK):
            p1 = min(hi, p0 + _MARGIN_BLOCK)
            width = p1 - p0
            if price.shape[0] == 1:
                for p in range(width):
                    f[p] = price[0]
            else:
                for p in range(width):
                    f[p] = price[cols[p0 + p]] if picked else price[p0 + p]
            for v in range(variants):
                fr, r, mr = futures_rate[v], rate[v], min_rate[v]
                # A lot's margin depends on the variant only through its rates and a per-variant strike or
                # premium: where the rates are the previous variant's (sizes, fees: most sweeps), a series marked
                # per path keeps the margins computed for it.
                again = (v > 0 and _same(fr, futures_rate[v - 1]) and _same(r, rate[v - 1])
                         and _same(mr, min_rate[v - 1]))
                _series_rows(v, again, p0, p1, is_call, strikes, premiums, qtys, n, cols, picked, f, fr, czce,
                             otm_weight, floor_weight, r, mr, put_cap, unit, wide_bit, qb, kb, pb, mb, held_bits)
                _futures_rows(v, p0, p1, cols, picked, f, lots, hedge, other, summed, fr, contract_size,
                              futures_underlying, fut, total)
                _pair_rows(v, p0, width, is_call, expiry, n, unit, spread, straddle, strangle, both_orders, wide_bit,
                           qb, kb, pb, mb, held_bits, total, held_at, gather, out)

    @njit(cache=True)
    def _book_margin(is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other, summed,
                     futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                     futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out):
        # ``strikes``, ``premiums``, ``qtys``: a tuple of n arrays each (broadcast as ``_at`` reads them; a
        # dummy entry when n is 0); element p of ``out`` is path cols[p] (p itself when ``cols`` is empty). The
        # futures lots are ``lots`` or, ``summed``, |lots| + |hedge| + |other| (replay._Margins).
        _margin_blocks(0, out.shape[1], is_call, expiry, strikes, premiums, qtys, n, cols, price, lots, hedge, other,
                       summed, futures_rate, czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit,
                       contract_size, futures_underlying, spread, straddle, strangle, both_orders, wide_bit, out)

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
                       both_orders, wide_bit, out)
        _account(0, out.shape[1], equity, out, capital, margin_buffer, calls, liquidate, peak_margin, peak, max_dd)

    @njit(cache=True, parallel=True)
    def _requirement_parallel(is_call, expiry, strikes, premiums, qtys, n, price, static, hedge, other, futures_rate,
                              czce, otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size,
                              futures_underlying, spread, straddle, strangle, both_orders, wide_bit, equity, capital,
                              margin_buffer, calls, liquidate, peak_margin, peak, max_dd, out):
        paths = out.shape[1]
        chunk = 16 * _MARGIN_BLOCK  # paths a thread's call does (its arguments' cost paid once for them)
        for b in prange((paths + chunk - 1) // chunk):
            p0, p1 = b * chunk, min(paths, (b + 1) * chunk)
            _margin_blocks(p0, p1, is_call, expiry, strikes, premiums, qtys, n,
                           np.zeros(0, dtype=np.int64), price, static, hedge, other, _TRUE, futures_rate, czce,
                           otm_weight, floor_weight, rate, min_rate, put_cap, unit, contract_size, futures_underlying,
                           spread, straddle, strangle, both_orders, wide_bit, out)
            _account(p0, p1, equity, out, capital, margin_buffer, calls, liquidate, peak_margin, peak, max_dd)


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
    price = np.asarray(price, dtype=float)
    # Writable, as the step's requirement passes it: a read-only price compiled the margin once more.
    price = _plain(price, price.shape)
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
    kernel = _requirement_parallel if out.size >= kernelbase.STEP_PARALLEL_MIN else _requirement_account
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
            _plain(price, shape[1:]), _grid(static), _grid(hedge), _grid(other), rule.futures_rate, rule.czce,
            rule.otm_weight, rule.floor_weight, rule.rate, rule.min_rate, rule.put_cap, rule.unit, rule.contract_size,
            rule.futures_underlying, rule.spread, rule.straddle, rule.strangle, both, _WIDE_BIT, equity,
            float(capital), float(margin_buffer), calls, liquidate, peak_margin, peak, max_dd, out)
