"""Dividend-adjusted option contracts inferred from a chain that has no contract codes.

When an ETF goes ex-dividend the exchange adjusts every option contract alive across the
date (SSE): the strike becomes ``K' = K·g`` (to 0.001) and the multiplier ``M' = M/g`` (to a
unit), ``g`` = (previous close − dividend) / previous close, and new standard contracts are
listed at the grid strikes beside them (2.40 × 10,000 → 2.348 × 10,220, and a new 2.40 ×
10,000). A vendor's chain without codes (date, type, expiry, strike, price) then shows, from
the ex-date on, strikes off the exchange's grid — or, with a multiplier column, a
non-standard multiplier. Read naively, a position held across the date would be marked on
the new standard contract at its old strike, a different contract.

:func:`link_adjusted` finds those contracts and links each to the one it was before:

* **which rows** — a multiplier other than the standard one when the file gives
  multipliers, else a strike off the finest step of the pack's strike grid (0.05 for
  SSE ETFs); per expiry, the **ex-date** is the first session such rows appear;
* **the factor g** — ``standard / M'`` from a multiplier column; else the ratio that maps
  the most adjusted strikes onto strikes listed before the ex-date by the exchange's
  rounding (``round(K·g, 3) = K'``), narrowed to the interval every matched pair allows
  (each ``K'`` is exact to ±0.0005), and ``M' = round(M/g)``; two factors that explain the
  strikes equally well are a located error, never a guess;
* **the link** — the rows of strike ``K`` before the ex-date and of ``K'`` from it are one
  contract, written under one code for its whole life: the SSE's code for an adjusted
  contract, ``A`` in place of ``M`` with the original strike (510050C2412A02400). An
  adjusted strike that lands on the grid (listed on the ex-date, as every adjusted contract
  is) is linked too; on a session that also lists the new standard contract there, the
  first of the two rows is taken as the adjusted one (their prices per unit are equal: the
  same strike on the same ETF, so which row is which changes no mark).

Every ex-date found is one line of the import log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opl.data.loaders import Problem

__all__ = ["Linked", "link_adjusted", "finest_step", "HALF_TICK"]

#: Adjusted strikes are rounded to 0.001: each is exact to ±0.0005.
HALF_TICK = 0.0005
_EPS = 1e-9
#: A cash dividend lowers the strikes; a factor below this would be a 25% dividend, not an adjustment.
_LOWEST = 0.75
_SSE_CODE = re.compile(r"^(.*\d{4})M(\d{5})$")


@dataclass
class Linked:
    """The rewritten ``symbol`` and ``contract_multiplier`` cells, the log lines and the problems."""

    symbol: pd.Series
    multiplier: pd.Series
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def finest_step(pack) -> float:
    """The smallest strike step of a pack's grid (0.05 for SSE ETF options)."""
    return min(step.step for step in pack.option.strike_grid)


def _adjusted_code(code: str) -> str:
    match = _SSE_CODE.match(code)
    return f"{match.group(1)}A{match.group(2)}" if match else f"{code}A"


def _matches(prior: np.ndarray, adjusted: np.ndarray, g: float) -> dict[float, float]:
    """Adjusted strike → the prior strike the exchange's rounding maps onto it at factor g."""
    moved = np.round(prior * g, 3)
    out = {}
    for k_new in adjusted:
        hit = np.flatnonzero(np.abs(moved - k_new) <= _EPS + 1e-6)
        if len(hit) == 1:
            out[float(k_new)] = float(prior[hit[0]])
    return out


def _factor_from_strikes(prior: np.ndarray, adjusted: np.ndarray) -> tuple[float | None, dict, str]:
    """The factor g that maps the most adjusted strikes onto prior ones; None and why when unsure."""
    best: dict[tuple, list[float]] = {}
    top = 0
    for k_new in adjusted:
        for k_old in prior:
            g = k_new / k_old
            if not _LOWEST <= g < 1.0:
                continue
            found = _matches(prior, adjusted, g)
            if len(found) < top or not found:
                continue
            if len(found) > top:
                best, top = {}, len(found)
            best.setdefault(tuple(sorted(found.items())), []).append(g)
    if not best:
        return None, {}, "no strike listed before it maps onto them by a factor below 1"
    if len(best) > 1:
        return None, {}, (f"{len(best)} different factors explain the strikes equally well "
                          f"({', '.join(f'{min(v):.5f}' for v in list(best.values())[:3])})")
    (pairs, _), = best.items()
    found = dict(pairs)
    low = max((k_new - HALF_TICK) / k_old for k_new, k_old in found.items())
    high = min((k_new + HALF_TICK) / k_old for k_new, k_old in found.items())
    return (low + high) / 2.0, found, ""


def link_adjusted(text: pd.DataFrame, *, standard: float, step: float, multiplier_given: bool, file: str,
                  lines: np.ndarray) -> Linked:
    """Link each adjusted contract to its life before the ex-date (module docstring).

    Parameters
    ----------
    text : pandas.DataFrame
        The option file's cells (text) with ``trading_date``, ``expiry``, ``option_type``,
        ``strike_price``, ``symbol`` (derived from the terms) and ``contract_multiplier``.
    standard : float
        The standard multiplier (the pack's).
    step : float
        The finest strike step of the exchange's grid (:func:`finest_step`).
    multiplier_given : bool
        Whether the multipliers come from the file (else from the pack, the same on every row).
    file, lines
        Where the rows come from, for the problems.
    """
    from opl.data.contracts import normalise_option_type
    from opl.data.loaders import parse_dates

    day, expiry = parse_dates(text["trading_date"]), parse_dates(text["expiry"])
    strike = pd.to_numeric(text["strike_price"], errors="coerce").to_numpy(dtype=float)
    mult = pd.to_numeric(text["contract_multiplier"], errors="coerce").to_numpy(dtype=float)
    kind = text["option_type"].map(lambda v: normalise_option_type(v) or "?").to_numpy()
    out = Linked(symbol=text["symbol"].copy(), multiplier=text["contract_multiplier"].copy())
    usable = day.notna().to_numpy() & expiry.notna().to_numpy() & np.isfinite(strike)
    if multiplier_given:
        flagged = usable & np.isfinite(mult) & ~np.isclose(mult, standard, rtol=1e-9, atol=0)
        how = "a multiplier other than the standard {:,.0f}".format(standard)
    else:
        flagged = usable & (np.abs(strike / step - np.round(strike / step)) > 1e-6)
        how = f"strikes off the {step:g} grid"
    days, exps = day.to_numpy(), expiry.to_numpy()
    for exp in np.unique(exps[flagged]):
        _link_expiry(out, exp, flagged, usable, days, exps, strike, mult, kind, standard, multiplier_given, how,
                     file, lines)
    return out


def _link_expiry(out: Linked, exp, flagged, usable, days, exps, strike, mult, kind, standard: float,
                 multiplier_given: bool, how: str, file: str, lines) -> None:
    of_expiry = usable & (exps == exp)
    adjusted = flagged & of_expiry
    ex = days[adjusted].min()
    first = int(np.flatnonzero(adjusted & (days == ex))[0])
    label = f"expiry {pd.Timestamp(exp).date()}"
    prior = of_expiry & (days < ex) & ~flagged
    if not prior.any():
        out.notes.append(f"{label}: contracts with {how} from the first session the file lists it "
                         f"({pd.Timestamp(ex).date()}); nothing earlier to link them to, each kept as its own")
        return
    k_prior = np.unique(np.round(strike[prior], 9))
    k_adjusted = np.unique(np.round(strike[adjusted], 9))
    if multiplier_given:
        values = np.unique(mult[adjusted])
        if len(values) > 1:
            out.problems.append(Problem(file, int(lines[first]), "contract_multiplier",
                                        f"{label}: adjusted multipliers {', '.join(f'{v:,.0f}' for v in values)} "
                                        "— more than one adjustment in one life cannot be told apart without "
                                        "contract codes: give the file its codes"))
            return
        g = standard / float(values[0])
        found = {k: v for k, v in _nearest(k_prior, k_adjusted, g).items()}
        source = f"the multiplier column ({values[0]:,.0f})"
        new_mult = float(values[0])
    else:
        g, found, why = _factor_from_strikes(k_prior, k_adjusted)
        if g is None:
            out.problems.append(Problem(file, int(lines[first]), "strike_price",
                                        f"{label}: strikes off the grid from {pd.Timestamp(ex).date()} "
                                        f"(e.g. {k_adjusted[0]:g}) look like a dividend adjustment, but {why}: "
                                        "give the file its contract codes or a multiplier column"))
            return
        new_mult = float(np.rint(standard / g))
        source = f"the strike ratio (each adjusted strike to ±{HALF_TICK:g})"
        # An adjusted strike that lands on the grid is not flagged: link it too.
        found.update({float(k): float(v) for k, v in _on_grid(k_prior, g, strike, of_expiry, days, ex, kind).items()
                      if float(k) not in found})
    linked = _rewrite(out, found, of_expiry, flagged, days, ex, strike, kind, new_mult, multiplier_given)
    missing = len(k_adjusted) - len(set(k_adjusted) & set(found))
    example = next(iter(sorted(found.items())), None)
    out.notes.append(
        f"{label}: ex-dividend adjustment on {pd.Timestamp(ex).date()} (the first session with {how}): "
        f"{linked} contract(s) linked across it — strike ×{g:.5f}"
        + (f" (e.g. {example[1]:g} → {example[0]:g})" if example else "")
        + f", multiplier {standard:,.0f} → {new_mult:,.0f} (from {source}); each written under one code for its "
        "whole life (the SSE's adjusted code, A for M, with the original strike), so a position held across the "
        "ex-date stays on it"
        + (f"; {missing} adjusted strike(s) match nothing listed before and keep their own code" if missing else ""))


def _nearest(k_prior: np.ndarray, k_adjusted: np.ndarray, g: float) -> dict[float, float]:
    """With the factor known (multiplier column): each adjusted strike's prior strike within the rounding."""
    out = {}
    for k_new in k_adjusted:
        i = int(np.argmin(np.abs(k_prior * g - k_new)))
        if abs(k_prior[i] * g - k_new) <= HALF_TICK + 2e-4 * k_new:  # the strike's and the multiplier's rounding
            out[float(k_new)] = float(k_prior[i])
    return out


def _on_grid(k_prior, g, strike, of_expiry, days, ex, kind) -> dict[float, float]:
    """Adjusted strikes that land on the grid: listed on the ex-date (the adjusted contract lives from it on)."""
    out = {}
    for k_old in k_prior:
        k_new = round(float(k_old) * g, 3)
        if (of_expiry & (days == ex) & np.isclose(strike, k_new, rtol=0, atol=1e-9)).any():
            out[k_new] = float(k_old)
    return out


def _rewrite(out: Linked, found: dict[float, float], of_expiry, flagged, days, ex, strike, kind, new_mult: float,
             multiplier_given: bool) -> int:
    linked = 0
    for k_new, k_old in found.items():
        for side in ("C", "P"):
            before = np.flatnonzero(of_expiry & (days < ex) & ~flagged & (kind == side)
                                    & np.isclose(strike, k_old, rtol=0, atol=1e-9))
            after = of_expiry & (days >= ex) & (kind == side) & np.isclose(strike, k_new, rtol=0, atol=1e-9)
            rows = np.flatnonzero(after & flagged)
            if not len(rows):  # on the grid: the first row of each session is the adjusted contract
                rows = np.flatnonzero(after)
                rows = rows[~pd.Series(days[rows]).duplicated().to_numpy()]
            if not len(before) or not len(rows):
                continue
            code = _adjusted_code(str(out.symbol.iat[before[0]]))
            out.symbol.iloc[np.concatenate([before, rows])] = code
            if not multiplier_given:
                out.multiplier.iloc[rows] = f"{new_mult:g}"
            linked += 1
    return linked
