"""What the conditions read at a step of the replay: its `opl.runtime.engine.triggers.TriggerState`.

`_trigger_state` builds the state that the exit triggers, the guards and alerts, the adjustment module's
conditions and the score functions read at step j — the P&L, the drawdown, the requirement, the greeks and
the legs computed only when a condition reads them — and `_columns_at` the step's price and at-the-money
volatility columns, copied once a step and kept on the month.

Built by the step (`opl.runtime.engine.step`) on the whole month and by the adjustment round
(`opl.runtime.engine.adjustround`) on the paths where it fires: apart from both.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from opl.runtime.engine.book import Book
from opl.runtime.engine.guards import leg_states
from opl.runtime.engine.months import _base_gammas
from opl.runtime.engine.triggers import TriggerState


def _trigger_state(mo, j, book: Book, hedge, month_pnl, denominator, equity, peak, capital, open_margin, margins,
                   days_left, lots_per_option, pending, inventory, unit_delta, band_k, strat=None,
                   d=None) -> TriggerState:
    def requirement():
        return margins(book, hedge, pending + inventory.total(), price)

    price, open_price, iv_now, open_iv = _columns_at(mo, j)

    def lots():
        short = book.short_lots()
        return np.where(short > 0, short, book.option_lots())

    def target_delta():
        return keep * (d if d is not None else 0.0) * book.short_lots()

    def gamma_lots():
        _base_gammas(book, mo, j)
        return book.gamma(lots_per_option) * price * 0.01

    def vega_points():
        return sum((s.qty * mo.vega(s, j) for s in book.held()), np.zeros(book.shape)) * book_multiplier / 100.0

    book_multiplier = strat.multiplier if strat is not None else 1.0
    keep = strat.hedge.keep if strat is not None and strat.hedge is not None else 0.0
    extras = {}
    if strat is not None:
        extras = dict(lots=lots, target_delta=target_delta, gamma_lots=gamma_lots,
                      vega_points=vega_points if hasattr(mo, "vega") else None, bands=strat.bands,
                      legs=lambda: leg_states(book, price, days_left), tenor_days=strat.tenor_days)

    # The P&L and drawdown are computed when a condition reads them (TriggerState.measured): the state is
    # read as soon as it is built, before the account moves again, and most conditions never read them.
    return TriggerState(
        shape=np.shape(month_pnl), pnl_percent=lambda: month_pnl / denominator * 100.0,
        pnl_capital=lambda: month_pnl / capital * 100.0,
        days_left=days_left, expired=j == mo.n, price=price, open_price=open_price,
        iv=iv_now, open_iv=open_iv, drawdown=lambda: np.maximum(peak - equity, 0.0) / peak * 100.0,
        requirement=requirement, capital=capital, open_margin=open_margin,
        support=mo.support, resistance=mo.resistance,
        delta=lambda: book.option_delta(lots_per_option) + book.static + hedge, unit_delta=unit_delta,
        band_centre=None if mo.band is None else mo.band[0][j],
        band_width=None if mo.band is None else band_k * mo.band[1][j], **extras)


def _columns_at(mo, j: int) -> tuple[np.ndarray, np.ndarray, Callable[[], np.ndarray], Callable[[], np.ndarray]]:
    """The price at step ``j`` and at the open, each (P,) and contiguous, and the at-the-money volatility's
    there, each made when first called (most steps' conditions do not read it: the ``warn_if`` rules' state).

    A month's arrays are (paths, steps), so a step's column is strided, and a state's conditions read
    it anew in each expression (``adjust_when`` at every step: ``price_retrace`` and ``vega_crush`` read
    four columns). They are copied once per step and kept on the month (keyed by its price array, so a
    round's `months._Month.columns` cut does not read the whole month's) for the step's other states.
    """
    kept = getattr(mo, "_step_columns", None)
    if kept is None or kept[0] is not mo.price or kept[1] != j:
        by_step = getattr(mo, "by_step", None)  # the fast month's prices by step: a step's row is contiguous
        price_at = (lambda i: by_step[0][i]) if by_step is not None else (
            lambda i: np.ascontiguousarray(mo.price[:, i]))
        if kept is None or kept[0] is not mo.price:
            kept = [mo.price, -1, price_at(0), None]
        kept = [*kept[:1], j, *kept[2:4], price_at(j), None]  # [price array, j, open, open iv, price, iv]
        mo._step_columns = kept

    def iv(at: int) -> Callable[[], np.ndarray]:
        def column() -> np.ndarray:
            if kept[at] is None:
                step = 0 if at == 3 else j
                atm_column = getattr(mo, "atm_column", None)
                kept[at] = atm_column(step) if atm_column is not None else np.ascontiguousarray(mo.atm[:, step])
            return kept[at]

        return column

    return kept[4], kept[2], iv(5), iv(3)
