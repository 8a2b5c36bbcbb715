"""Re-opening after a band close: ``delta_band(..., reopen=next_day)``, the seed's rule.

The seed's strategy (``../shared/seeds/003_*``, claim 3) opens an at-the-money straddle at
the start of every trading day on which it holds nothing; so after the delta band closes a
position at a session's close, a new one opens at the next session. Here:

* the cycle closed by the band at session ``j`` is cut at ``j + 1`` (the position is flat
  there; its P&L and its exit, ``delta_band``, are unchanged);
* a new cycle opens at session ``j + 1`` with the file's legs, strikes re-resolved at that
  session's settlement as every cycle's are (`opl.backtesting.cycles`: an ATM straddle is
  struck at the new ATM), on the listed expiry nearest the tenor there — at once, with no
  waiting — and runs to its expiry under the band of the latest fit on or before its
  open; it may itself be closed by the band and re-opened;
* nothing re-opens on a cycle's last session, across a roll, or when no expiry is listed
  ahead; a re-opened cycle whose strikes cannot be listed is skipped (noted) and the
  account stays flat until the next planned cycle, which opens as planned unless the
  re-opened ones still run then (it is then dropped, counted in the notes).

Where a band close falls is found by replaying the cycle alone (the band exit depends
on the position's own delta and the fitted band only, not on the account), then the whole
sequence is replayed once by `opl.backtesting.run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from opl.backtesting.cycles import Cycle, mark_cycles, open_cycle
from opl.backtesting.result import cycle_exit
from opl.runtime.engine.historical import GivenMonths
from opl.runtime.engine.replay import Variant, replay

__all__ = ["Reopened", "reopen_after_band"]


@dataclass
class Reopened:
    """The cycles, months and records with the re-opens, and what happened."""

    cycles: list[Cycle]
    months: list
    records: list[dict]
    reopens: int = 0
    dropped: int = 0
    skipped: list[str] = field(default_factory=list)


class _Bands:
    """The band of the latest fit on or before a date (centre, width), or None before the first fit."""

    def __init__(self, fits):
        fitted = sorted((f.window.fit_date, f) for f in fits)
        self.dates = pd.DatetimeIndex([d for d, _ in fitted])
        self.fits = [f for _, f in fitted]

    def attach(self, month, day: pd.Timestamp):
        at = int(self.dates.searchsorted(day, side="right")) - 1
        fit = self.fits[at] if at >= 0 else None
        centre = fit.centre if fit is not None and np.isfinite(fit.centre) else 0.0
        width = fit.width if fit is not None else float("nan")
        return month.with_band((np.full(month.n + 1, centre), np.full(month.n + 1, width)))


def _band_close(month, p, size: float, fee_factor: float) -> int | None:
    """The step at which the band closes this cycle replayed alone, or None."""
    run = replace(p.run, months=1, paths=1, chunk=1, source=GivenMonths.factory([month]))
    result = replay(strategy=p.strategy, run=run, variants=(Variant(size=size, fee_factor=fee_factor),), trace=True)
    _, step, reason = cycle_exit(result.trace, month, 0, p.strategy.guard_days)
    return step if reason == "delta_band" else None


def _mark(p, cycle: Cycle, bands: _Bands, reopened: bool):
    marked = mark_cycles([cycle], futures=p.market.futures, chain=p.chain, signals=p.market.signals,
                         strategy=p.strategy, surfaces=p.surfaces, pack=p.pack, carry=p.carry, carries=p.carries)
    if not marked.cycles:
        return None, marked.skipped
    record = {**marked.records[0], "reopened": reopened}
    return (cycle, bands.attach(marked.months[0], record["open"]), record), []


def reopen_after_band(p, band, *, size: float, fee_factor: float, progress=None) -> Reopened:
    """The planned cycles of ``p`` (`opl.backtesting.run.Prepared`) with the walk-forward ``band``'s months,
    each band close followed by a re-open (module docstring); ``progress(done, total)`` per planned cycle."""
    bands = _Bands(band.fits)
    out = Reopened(cycles=[], months=[], records=[])
    busy = -1
    for planned, (cycle, month, record) in enumerate(zip(p.cycles, band.months, p.records)):
        if progress is not None:
            progress(planned, len(p.cycles))
        if cycle.start < busy:  # re-opened cycles still run: the planned one would overlap them
            out.dropped += 1
            continue
        current = (cycle, month, record)
        while True:
            c, m, r = current
            step = _band_close(m, p, size, fee_factor)
            nxt = open_cycle(p.market.futures, p.chain, c.start + step + 1, tenor_days=p.strategy.tenor_days) \
                if step is not None and c.start + step + 1 < c.end else None
            if nxt is None:
                break
            cut, _ = _mark(p, replace(c, end=c.start + step + 1, expires=False, ends="reopen"), bands,
                           r.get("reopened", False))
            fresh, skipped = _mark(p, nxt, bands, True)
            if cut is None or fresh is None:
                out.skipped += skipped
                break
            out.cycles.append(cut[0])
            out.months.append(cut[1])
            out.records.append({**cut[2], "planned": planned})
            out.reopens += 1
            current = fresh
        c, m, r = current
        out.cycles.append(c)
        out.months.append(m)
        out.records.append({**r, "planned": planned})
        busy = c.end
    for i, (c, r) in enumerate(zip(out.cycles, out.records)):
        out.cycles[i] = replace(c, index=i)
        r["cycle"] = i
    return out
