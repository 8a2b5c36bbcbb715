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
from opl.runtime.engine.historical import GivenMonths, HistoricalMonth
from opl.runtime.engine.replay import replay
from opl.runtime.engine.runspec import Variant

__all__ = ["Reopened", "Reopener", "reopen_after_band", "head"]


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


def head(month, m: int):
    """The first ``m`` steps of a marked cycle as the cycle cut there (closed at market on its last session).

    Marks are per session (`opl.runtime.engine.historical.mark_cycle`), so this is what marking the
    shorter cycle gives (tested), without marking it again; the band is left for the caller."""
    cut = slice(0, m + 1)
    return HistoricalMonth(price=month.price[:, cut], t=month.t[cut], strikes=month.strikes,
                           value=[v[:, cut] for v in month.value], delta=[d[:, cut] for d in month.delta],
                           exercise=[e[:, cut] for e in month.exercise], atm=month.atm[:, cut],
                           support=month.support, resistance=month.resistance, signal=month.signal, expires=False,
                           gamma=None if month.gamma is None else [g[:, cut] for g in month.gamma],
                           quotes=month.quotes, pack=month.pack, levels=month.levels, rate=month.rate,
                           carry=month.carry)


def _variant_trace(trace: dict, v: int) -> dict:
    return {key: value[v:v + 1] for key, value in trace.items()}


class Reopener:
    """Re-opens after band closes on a prepared backtest (`opl.backtesting.run.Prepared`).

    The out-of-sample replay (:func:`reopen_after_band`) and the in-sample choice of k
    (`opl.backtesting.walkforward`) follow the same rule through :meth:`chain`. A cycle is
    marked once however often the chains of different k or windows open it (a fresh cycle
    opening on a session is the same cycle whatever band closed the one before).
    """

    def __init__(self, p, *, size: float, fee_factor: float):
        self.p, self.size, self.fee_factor = p, size, fee_factor
        self._marked: dict[tuple, tuple] = {}

    def close_steps(self, month, ks=None) -> list[int | None]:
        """The step at which the band closes this cycle replayed alone, or None: one per band multiplier of
        ``ks`` (the month's band width times k, one replay for all), or for the month's band as it is."""
        p = self.p
        ks = (1.0,) if ks is None else tuple(ks)
        run = replace(p.run, months=1, paths=1, chunk=1, source=GivenMonths.factory([month]))
        variants = tuple(Variant(size=self.size, fee_factor=self.fee_factor, band_k=k) for k in ks)
        result = replay(strategy=p.strategy, run=run, variants=variants, trace=True)
        steps = []
        for v in range(len(ks)):
            _, step, reason = cycle_exit(_variant_trace(result.trace, v), month, 0, p.strategy.guard_days)
            steps.append(step if reason == "delta_band" else None)
        return steps

    def mark(self, cycle: Cycle, reopened: bool):
        """``(cycle, month without a band, record)`` of ``cycle`` marked, or None and why it was skipped."""
        key = replace(cycle, index=0)
        if key not in self._marked:
            p = self.p
            marked = mark_cycles([cycle], futures=p.market.futures, chain=p.chain, signals=p.market.signals,
                                 strategy=p.strategy, surfaces=p.surfaces, pack=p.pack, carry=p.carry,
                                 carries=p.carries)
            self._marked[key] = ((marked.months[0], marked.records[0]) if marked.cycles else None, marked.skipped)
        done, skipped = self._marked[key]
        if done is None:
            return None, skipped
        return (cycle, done[0], {**done[1], "reopened": reopened}), []

    def chain(self, planned, attach, *, close_step=None, until: int | None = None, records: bool = True,
              progress=None) -> Reopened:
        """The ``planned`` ``(cycle, month, record)`` triples, each band close followed by a re-open.

        Parameters
        ----------
        planned : list of (Cycle, month, dict)
            The cycles as planned, their months carrying the band they trade under.
        attach : callable
            ``attach(month, open_day)``: a fresh cycle's month with the band it trades under.
        close_step : callable, optional
            ``close_step(cycle, month)``: the band-close step of the cycle replayed alone, or None
            (default :meth:`close_steps` of the month's own band).
        until : int, optional
            The last session (futures row) the chain may use: a re-opened cycle still running then
            is cut there, marked to market (the in-sample windows end at their fit date).
        records : bool
            Mark a cut cycle anew for its record (the backtest's output); else (the in-sample
            fit, which reads the equity only) cut the marked cycle with :func:`head`.
        """
        close_step = close_step or (lambda cycle, month: self.close_steps(month)[0])
        out = Reopened(cycles=[], months=[], records=[])
        busy = -1
        for n, (cycle, month, record) in enumerate(planned):
            if progress is not None:
                progress(n, len(planned))
            if cycle.start < busy:  # re-opened cycles still run: the planned one would overlap them
                out.dropped += 1
                continue
            current = (cycle, month, record)
            while True:
                c, m, r = current
                step = close_step(c, m)
                nxt = self._fresh(c, step, until)
                if nxt is None:
                    break
                cut = self._cut(c, m, r, step + 1, "reopen", records)
                fresh, skipped = self.mark(nxt, True)
                if fresh is not None and until is not None and nxt.end > until:
                    fresh = self._cut(*fresh, until - nxt.start, "data", records)
                if cut is None or fresh is None:
                    out.skipped += skipped
                    break
                self._append(out, cut[0], attach(cut[1], cut[2]["open"]), cut[2], r.get("planned", n))
                out.reopens += 1
                current = (fresh[0], attach(fresh[1], fresh[2]["open"]), {**fresh[2], "planned": r.get("planned", n)})
            c, m, r = current
            self._append(out, c, m, r, r.get("planned", n))
            busy = c.end
        for i, (c, r) in enumerate(zip(out.cycles, out.records)):
            out.cycles[i] = replace(c, index=i)
            r["cycle"] = i
        return out

    def _cut(self, c: Cycle, month, record: dict, steps: int, ends: str, records: bool):
        """``(cycle, month, record)`` of ``c`` cut after ``steps`` steps (flat from there), or None."""
        short = replace(c, end=c.start + steps, expires=False, ends=ends)
        if records:
            return self.mark(short, record.get("reopened", False))[0]
        return short, head(month, steps), {**record, "close": record["dates"][steps], "ends": ends}

    def _fresh(self, c: Cycle, step: int | None, until: int | None) -> Cycle | None:
        """The cycle re-opened the session after a band close at ``step`` of ``c``, or None."""
        if step is None or c.start + step + 1 >= c.end:
            return None
        start = c.start + step + 1
        if until is not None and start >= until:
            return None
        return open_cycle(self.p.market.futures, self.p.chain, start, tenor_days=self.p.strategy.tenor_days)

    @staticmethod
    def _append(out: Reopened, cycle, month, record, planned: int) -> None:
        out.cycles.append(cycle)
        out.months.append(month)
        out.records.append({**record, "planned": planned})


def reopen_after_band(p, band, *, size: float, fee_factor: float, progress=None,
                      reopener: Reopener | None = None) -> Reopened:
    """The planned cycles of ``p`` (`opl.backtesting.run.Prepared`) with the walk-forward ``band``'s months,
    each band close followed by a re-open (module docstring); ``progress(done, total)`` per planned cycle."""
    reopener = reopener or Reopener(p, size=size, fee_factor=fee_factor)
    bands = _Bands(band.fits)
    planned = [(c, m, {k: v for k, v in r.items() if k != "planned"}) for c, m, r in
               zip(p.cycles, band.months, p.records)]
    return reopener.chain(planned, bands.attach, progress=progress)
