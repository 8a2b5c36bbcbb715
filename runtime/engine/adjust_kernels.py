"""Compiled trades of the adjustment module (numba): the fast engine's twin of applying an action's
change to one option slot (`opl.runtime.engine.adjust.AdjustEngine._apply`).

The reference applies a change with a dozen whole-array numpy operations — the new lots, the
lots closed and opened, their fees and slippage booked to the ``adjustments`` bucket, the
equity and the month's P&L, the lots counted — each with its own temporary, on the few
paths of a round. Here one pass over the round's elements does the same arithmetic in the
same order (closing booked before opening, per element), so the ledger is the reference's
bit for bit. The kernel follows `opl.runtime.engine.kernels`' rules: ``@njit(cache=True)``,
no ``fastmath``; it is serial (a round's paths are few).
"""

from __future__ import annotations

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine.kernels import njit

__all__ = ["trade_slot", "fees_of"]


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
