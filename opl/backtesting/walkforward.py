"""The walk-forward fit of the delta band (grammar/README.md §7.3; ``../shared/seeds/003_*``).

The band closes a position when its delta — the strategy's own, per unit of size, hedge
excluded — leaves ``centre ± k·σ``, with centre and σ the mean and standard deviation of
the delta over an in-sample window, and ``k`` either given or chosen in-sample.

**Windows.** Fits happen on ``fit_i = first session + window + i·step`` (calendar days)
while ``fit_i`` is within the data. Fit i's in-sample data are the cycles that opened on
or after ``fit_i − window`` and ended on or before ``fit_i``; its out-of-sample cycles are
those that open on or after ``fit_i`` and before ``fit_{i+1}``, so no cycle is ever both
(tested). Cycles that open before the first fit are traded without a band.

**In-sample fit.** The in-sample cycles are replayed without the band (the same replay,
`opl.runtime.engine.replay`); the delta of every session a position is held gives centre and σ
(at least ``MIN_OBSERVATIONS`` sessions, else the window is not fitted and its
out-of-sample cycles run without a band). With ``k=auto`` they are replayed again, once
per k of ``K_GRID`` as variants on the same path, with the band ``centre ± k·σ``, and the
k with the smallest maximum drawdown (``objective=max_drawdown``) or the largest Sharpe
ratio of daily equity changes (``objective=sharpe``, √252 annualised) is chosen.

**Ties.** In-sample scores of neighbouring k often agree to four or five digits, and the
choice between them is noise. Scores within ``TIE[objective]`` of the best — a drawdown
within 0.001% of the peak (1e-5; 1 CNY on 100,000), a Sharpe ratio within 0.001 — are
ties; among tied k the previous window's k is kept when it is one of them (the band does
not flip on noise), else the largest (the lighter touch). Deterministic, and stable from
window to window. Each fit records every k's objective, the tied set, the runner-up (the
best other k) and the chosen k's **margin** over it, in the objective's units (drawdown
points of the peak, or Sharpe), ≤ 0 when a tied k scored a hair better.

**Re-opening.** With ``reopen=next_day`` (the default, as the seed) a band close is
followed by a fresh position at the next session (`opl.backtesting.reopen`), in sample as
out of sample: each k of the grid is scored on the window's cycles replayed with the band
*and* the re-opens it causes (:class:`opl.backtesting.reopen.Reopener`, the rule the
backtest trades), a re-opened position still running at the fit date cut there, marked to
market (the fit sees nothing after its date). One replay of a cycle alone gives its band
close for every k at once, and a fresh cycle is marked once for every k and window that
opens it. With ``reopen=never`` the window's cycles are replayed once, every k a variant.
Each fit records the re-opens of each k in sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from opl.lang.deltaband import DeltaBandSpec
from opl.runtime.engine.historical import GivenMonths
from opl.runtime.engine.replay import replay
from opl.runtime.engine.runspec import Variant

__all__ = ["K_GRID", "MIN_OBSERVATIONS", "TIE", "Window", "Fit", "KChoice", "plan_windows", "objective_values",
           "choose_k", "walk_forward", "WalkForward"]

K_GRID: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
MIN_OBSERVATIONS = 10
#: Scores this close to the best are ties (module docstring, **Ties**).
TIE = {"max_drawdown": 1e-5, "sharpe": 1e-3}


@dataclass(frozen=True)
class Window:
    """One fit: its date, in-sample span and cycles, out-of-sample cycles."""

    fit_date: pd.Timestamp
    in_start: pd.Timestamp
    in_sample: tuple[int, ...]
    out_of_sample: tuple[int, ...]


@dataclass
class Fit:
    """What one window's fit found (NaNs and ``k`` None when it could not fit)."""

    window: Window
    observations: int
    centre: float = float("nan")
    sigma: float = float("nan")
    k: float | None = None
    scores: dict[float, float] = field(default_factory=dict)
    reason: str | None = None
    choice: "KChoice | None" = None
    reopens: dict[float, int] = field(default_factory=dict)  # in-sample re-opens of each k (reopen=next_day)

    @property
    def width(self) -> float:
        return self.k * self.sigma if self.k is not None and np.isfinite(self.sigma) else float("nan")

    def to_dict(self) -> dict:
        w = self.window
        return {"fit_date": str(w.fit_date.date()), "in_sample_start": str(w.in_start.date()),
                "in_sample_cycles": list(w.in_sample), "out_of_sample_cycles": list(w.out_of_sample),
                "observations": self.observations, "centre": self.centre, "sigma": self.sigma, "k": self.k,
                "width": self.width, "scores": {f"{k:g}": v for k, v in self.scores.items()},
                "tied": None if self.choice is None else list(self.choice.tied),
                "runner_up": None if self.choice is None else self.choice.runner_up,
                "margin": None if self.choice is None else self.choice.margin,
                "in_sample_reopens": {f"{k:g}": n for k, n in self.reopens.items()} or None, "reason": self.reason}


def plan_windows(opens: pd.DatetimeIndex, closes: pd.DatetimeIndex, spec: DeltaBandSpec) -> list[Window]:
    """The windows of the module docstring for cycles opening on ``opens`` and ending on ``closes``."""
    if len(opens) == 0:
        return []
    first, last = opens[0], closes[-1]
    window, step = pd.Timedelta(days=spec.window_days), pd.Timedelta(days=spec.step_days)
    fits = []
    fit = first + window
    while fit <= last:
        fits.append(fit)
        fit = fit + step
    out = []
    for i, fit in enumerate(fits):
        start = fit - window
        nxt = fits[i + 1] if i + 1 < len(fits) else None
        ins = tuple(int(c) for c in np.flatnonzero((opens >= start) & (closes <= fit)))
        oos = tuple(int(c) for c in np.flatnonzero((opens >= fit) & ((opens < nxt) if nxt is not None else True)))
        if oos:
            out.append(Window(fit_date=fit, in_start=start, in_sample=ins, out_of_sample=oos))
    return out


def objective_values(equity: np.ndarray, capital: float, objective: str) -> np.ndarray:
    """Each variant's objective from its equity per session (V, steps): max drawdown (fraction) or Sharpe."""
    path = np.concatenate([np.full((equity.shape[0], 1), capital), equity], axis=1)
    if objective == "max_drawdown":
        peak = np.maximum.accumulate(path, axis=1)
        return np.max((peak - path) / peak, axis=1)
    change = np.diff(path, axis=1) / capital
    sd = change.std(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = np.where(sd > 0, change.mean(axis=1) / np.where(sd > 0, sd, 1.0) * math.sqrt(252.0), 0.0)
    return sharpe


@dataclass(frozen=True)
class KChoice:
    """The chosen k, the k tied with the best, the best other k and the chosen k's margin over it."""

    k: float
    tied: tuple[float, ...]
    runner_up: float | None
    margin: float


def choose_k(grid: tuple[float, ...], scores: np.ndarray, objective: str, previous: float | None = None) -> KChoice:
    """The best k under the module docstring's tie rule (**Ties**)."""
    # Goodness: larger is better for both objectives.
    good = -np.asarray(scores, dtype=float) if objective == "max_drawdown" else np.asarray(scores, dtype=float)
    best = float(np.max(good))
    tied = tuple(k for k, g in zip(grid, good) if best - g <= TIE[objective])
    k = previous if previous in tied else max(tied)
    others = [(g, other) for other, g in zip(grid, good) if other != k]
    if not others:
        return KChoice(k=k, tied=tied, runner_up=None, margin=float("nan"))
    g_runner, runner = max(others, key=lambda pair: (pair[0], pair[1]))
    mine = float(good[list(grid).index(k)])
    scale = 100.0 if objective == "max_drawdown" else 1.0  # drawdown margins in points of the peak
    return KChoice(k=k, tied=tied, runner_up=runner, margin=(mine - float(g_runner)) * scale)


def _run(strategy, run, months, variants):
    sub = replace(run, months=len(months), paths=1, chunk=1, source=GivenMonths.factory(months))
    return replay(strategy=strategy, run=sub, variants=variants, trace=True)


def _no_band(month):
    return month.with_band((np.zeros(month.n + 1), np.full(month.n + 1, np.nan)))


@dataclass
class WalkForward:
    """The fits and the months carrying the fitted bands."""

    spec: DeltaBandSpec
    fits: list[Fit]
    months: list
    first_fit: pd.Timestamp | None

    def to_dict(self) -> dict:
        return {"spec": {"k": "auto" if self.spec.k is None else self.spec.k, "window_days": self.spec.window_days,
                         "objective": self.spec.objective, "step_days": self.spec.step_days,
                         "reopen": self.spec.reopen,
                         "grid": list(K_GRID) if self.spec.k is None else None},
                "first_fit": None if self.first_fit is None else str(self.first_fit.date()),
                "fits": [f.to_dict() for f in self.fits]}


def fit_window(window: Window, months: list, *, strategy, run, spec: DeltaBandSpec, size: float,
               fee_factor: float, previous: float | None = None, reopener=None) -> Fit:
    """One window's fit (module docstring); ``reopener`` (`opl.backtesting.reopen.Reopener`) is required to
    choose k under ``reopen=next_day``."""
    sample = [_no_band(months[c]) for c in window.in_sample]
    if not sample:
        return Fit(window=window, observations=0, reason="no cycle lies wholly inside the in-sample window")
    base = _run(strategy, run, sample, (Variant(size=size, fee_factor=fee_factor),))
    deltas = base.trace["unit_delta"][0, 0]
    held = deltas[np.isfinite(deltas)]
    if held.size < MIN_OBSERVATIONS:
        return Fit(window=window, observations=int(held.size),
                   reason=f"{held.size} in-sample sessions with a position, fewer than {MIN_OBSERVATIONS}")
    centre, sigma = float(held.mean()), float(held.std(ddof=1))
    if not sigma > 0:
        return Fit(window=window, observations=int(held.size), centre=centre, sigma=sigma,
                   reason="the in-sample delta does not vary")
    if spec.k is not None:
        return Fit(window=window, observations=int(held.size), centre=centre, sigma=sigma, k=spec.k)
    reopens: dict[float, int] = {}
    if spec.reopen == "next_day":
        if reopener is None:
            raise ValueError("delta_band(reopen=next_day): k is chosen with the re-opens, which need the backtest's "
                             "data (pass an opl.backtesting.reopen.Reopener)")
        equity, counts = _reopening_equity(window, months, centre, sigma, reopener, strategy=strategy, run=run,
                                           size=size, fee_factor=fee_factor)
        reopens = dict(zip(K_GRID, counts))
    else:
        banded = [m.with_band((np.full(m.n + 1, centre), np.full(m.n + 1, sigma))) for m in sample]
        grid = _run(strategy, run, banded, tuple(Variant(size=size, fee_factor=fee_factor, band_k=k)
                                                 for k in K_GRID))
        equity = grid.trace["equity"][:, 0, :]
    scores = np.array([objective_values(e[None, :], run.capital, spec.objective)[0] for e in equity])
    choice = choose_k(K_GRID, scores, spec.objective, previous)
    return Fit(window=window, observations=int(held.size), centre=centre, sigma=sigma, k=choice.k,
               scores={g: float(s) for g, s in zip(K_GRID, scores)}, choice=choice, reopens=reopens)


def _reopening_equity(window: Window, months: list, centre: float, sigma: float, reopener, *, strategy, run,
                      size: float, fee_factor: float) -> tuple[list[np.ndarray], list[int]]:
    """Each k's in-sample equity per session with the band and its re-opens, and its number of re-opens."""
    p = reopener.p
    dates = pd.DatetimeIndex(p.market.futures["trading_date"])
    until = int(dates.searchsorted(window.fit_date, side="right")) - 1  # the last session on or before the fit

    def unit(month, _day=None):  # the band centre ± σ; each k's variant scales the width
        return month.with_band((np.full(month.n + 1, centre), np.full(month.n + 1, sigma)))

    steps: dict = {}

    def close_step(i: int):
        def step(cycle, month):
            key = replace(cycle, index=0)
            if key not in steps:  # one replay alone gives the close under every k
                steps[key] = reopener.close_steps(month, K_GRID)
            return steps[key][i]
        return step

    planned = [(p.cycles[c], unit(months[c]), {k: v for k, v in p.records[c].items() if k != "planned"})
               for c in window.in_sample]
    chains: dict[tuple, tuple[list, list[int]]] = {}  # k whose chains are the same cycles: one replay, k as variants
    counts = []
    for i in range(len(K_GRID)):
        chained = reopener.chain(planned, unit, close_step=close_step(i), until=until, records=False)
        key = tuple((c.start, c.end, c.expires) for c in chained.cycles)
        chains.setdefault(key, (chained.months, []))[1].append(i)
        counts.append(chained.reopens)
    equity: list = [None] * len(K_GRID)
    for chained_months, ks in chains.values():
        result = _run(strategy, run, chained_months, tuple(Variant(size=size, fee_factor=fee_factor,
                                                                   band_k=K_GRID[i]) for i in ks))
        for v, i in enumerate(ks):
            equity[i] = result.trace["equity"][v, 0, :]
    return equity, counts


def walk_forward(months: list, *, opens: pd.DatetimeIndex, closes: pd.DatetimeIndex, strategy, run,
                 spec: DeltaBandSpec, size: float = 1.0, fee_factor: float = 1.0, progress=None,
                 reopener=None) -> WalkForward:
    """Fit every window and give each out-of-sample cycle its window's band (module docstring);
    ``progress(done, total)`` before each fit; ``reopener`` as :func:`fit_window`."""
    windows = plan_windows(opens, closes, spec)
    fits, previous = [], None
    for i, w in enumerate(windows):
        if progress is not None:
            progress(i, len(windows))
        fits.append(fit_window(w, months, strategy=strategy, run=run, spec=spec, size=size, fee_factor=fee_factor,
                               previous=previous, reopener=reopener))
        previous = fits[-1].k if fits[-1].k is not None else previous
    out = [_no_band(m) for m in months]
    for fit in fits:
        for c in fit.window.out_of_sample:
            m = months[c]
            out[c] = m.with_band((np.full(m.n + 1, fit.centre if np.isfinite(fit.centre) else 0.0),
                                  np.full(m.n + 1, fit.width)))
    return WalkForward(spec=spec, fits=fits, months=out, first_fit=windows[0].fit_date if windows else None)
