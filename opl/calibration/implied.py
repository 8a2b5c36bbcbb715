"""``calibration implied``: the level and smile of implied volatility that the option market quotes.

:func:`implied_market` reads them from option chains (``options.csv``, inverted with
:func:`opl.calibration.surface.fit_surface`) or, when there are none, from the daily
implied-volatility summary (``iv_summary.csv``, :mod:`opl.data.iv_summary`):

==============  =============================================================  ==============================
value           option chains                                                  summary file only
==============  =============================================================  ==============================
``atm``         median ATM volatility of the one-month smiles (10-60 days to   median daily mean implied
                expiry) over the last ``window_days`` trading days             volatility over the last
                                                                               ``window_days`` days (a little
                                                                               above ATM: it averages the smile)
``floor``       1st percentile of the daily ATM volatility nearest 30 days     1st percentile of the daily mean
``skew``,       medians of the same one-month smiles                           none: the simulator's defaults
``curvature``
==============  =============================================================  ==============================

:func:`apply_implied` puts them into a simulation's settings: ``atm`` becomes the
model's long-run volatility — the diffusion's (``gbm``/``garch``/``gjr`` ``vol``) set so
that the diffusion and the jumps together have variance ``atm²`` — and the ``iv
smile(...)`` rule gets ``spread = 0`` (the model's volatility *is* the implied one),
the floor and, from chains, the skew and curvature. The dynamics (GARCH α, β, γ, ν and
the jump intensity and sizes) are not implied by one day's prices: they stay as the
file writes them, else the defaults (``calibration implied``), or come from the
history first (``calibration hybrid``, :func:`opl.calibration.modes.calibrate_settings`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opl.calibration.block import _written
from opl.lang.vocabulary import SMILE_PARAMETERS

__all__ = ["ImpliedMarket", "implied_market", "implied_from", "apply_implied", "MIN_DIFFUSION_SHARE"]

#: The diffusion keeps at least this share of the implied variance when jumps would take more.
MIN_DIFFUSION_SHARE = 0.25


@dataclass
class ImpliedMarket:
    """The implied level, floor and (from chains) smile of an option dataset."""

    atm: float
    floor: float
    skew: float | None
    curvature: float | None
    source: str
    file: str
    days: int
    first: str
    last: str
    #: Each file read for it (`opl.data.loaders.LoadResult.describe`: rows used, repairs); empty when it
    #: came from a calibration already run, whose own inputs say so.
    inputs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"atm": self.atm, "floor": self.floor, "skew": self.skew, "curvature": self.curvature,
                "source": self.source, "file": self.file, "days": self.days, "first": self.first, "last": self.last}


def implied_from(*, surface=None, summary=None, window_days: int = 21) -> ImpliedMarket:
    """The implied market of a fitted surface (preferred) or an implied-volatility summary.

    Parameters
    ----------
    surface : opl.calibration.surface.SurfaceResult, optional
    summary : opl.data.iv_summary.IVSummary, optional
    window_days
        Trading days over which the summary's level is taken (the surface has its own window).

    Raises
    ------
    ValueError
        Neither is given, or the chains have no one-month smile in the window.
    """
    if surface is not None:
        w, history = surface.window, surface.history
        if w.get("atm") is None:
            raise ValueError(f"no one-month smile (10-60 days to expiry) in the last {w.get('days')} trading days "
                             "of the option chains: no implied level to calibrate to")
        file = "options"
        return ImpliedMarket(atm=float(w["atm"]), floor=float(np.quantile(history.to_numpy(), 0.01)),
                             skew=w.get("skew"), curvature=w.get("curvature"),
                             source=f"option chains: median one-month ATM volatility and smile over the last "
                                    f"{w['days']} trading days ({w['slices']} smiles)",
                             file=file, days=int(len(history)), first=str(history.index[0].date()),
                             last=str(history.index[-1].date()))
    if summary is not None:
        level = summary.level.dropna()
        recent = level.iloc[-window_days:]
        return ImpliedMarket(atm=float(recent.median()), floor=float(np.quantile(level.to_numpy(), 0.01)),
                             skew=None, curvature=None,
                             source=f"{summary.file}: median daily mean implied volatility over the last "
                                    f"{len(recent)} days (no strikes: the smile keeps the defaults)",
                             file=summary.file, days=int(len(level)), first=str(level.index[0].date()),
                             last=str(level.index[-1].date()))
    raise ValueError("no option data")


def implied_market(directory: str | os.PathLike, *, rate: float = 0.02, style: str | None = None, pack=None,
                   window_days: int = 21, repair: bool = False) -> ImpliedMarket:
    """Read a data directory's option chains (else its implied-volatility summary) for ``calibration implied``.

    ``futures.csv``, when present, gives the forwards of options on futures; an ETF's options,
    and any without that file, take theirs from put-call parity. ``style`` None
    takes the exercise style of the rule pack (``pack``, else the one the data's symbols
    name; :mod:`opl.calibration.product`).

    Raises
    ------
    opl.calibration.CalibrationError
        The directory has neither ``options.csv`` nor ``iv_summary.csv``, or the chains
        give no one-month smile (the message names the file).
    opl.data.DataError, OSError
        As the loaders raise them.
    """
    from opl.calibration.historical import DIR_FILES, CalibrationError, _find
    from opl.data.iv_summary import load_iv_summary
    from opl.calibration.product import product_terms
    from opl.calibration.surface import fit_surface
    from opl.data.loaders import load

    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(2, "No such directory", str(folder))
    options, summary = _find(folder, "options"), _find(folder, "iv_summary")
    if options is None and summary is None:
        raise CalibrationError(f"{folder}: no option data ({', '.join(DIR_FILES['options'] + DIR_FILES['iv_summary'])})"
                               ": `calibration implied` and `hybrid` take the volatility level from option prices; "
                               "use `calibration historical` for futures only")
    if options is not None:
        opt = load(options, kind="options", repair=repair)
        fut_path = _find(folder, "futures")
        fut_loaded = load(fut_path, kind="futures", repair=repair) if fut_path is not None else None
        fut = fut_loaded.frame if fut_loaded is not None else None
        terms = product_terms(style=style, pack=pack, futures=fut, options=opt.frame)
        try:
            surface = fit_surface(opt.frame, fut, rate=rate, style=terms.style, window_days=window_days,
                                  spot=terms.spot)
            market = implied_from(surface=surface)
        except ValueError as error:
            raise CalibrationError(f"{opt.file}: {error}") from None
        market.file = opt.file
        market.inputs = {"options": opt.describe(),
                         **({"futures": fut_loaded.describe()} if fut_loaded is not None else {})}
        return market
    return implied_from(summary=load_iv_summary(summary), window_days=window_days)


def _jump_variance(settings) -> float:
    from opl.runtime.engine.processes import DEFAULTS

    if "jump" not in (settings.components or ()):
        return 0.0
    default = DEFAULTS["jump"]
    params = settings.model_params.get("jump", {})
    mean, std = params.get("mean", default.mean), params.get("std", default.std)
    return params.get("intensity", default.intensity) * (mean ** 2 + std ** 2)


def apply_implied(settings, market: ImpliedMarket, *, file_smile=(), file_vol: bool = False) -> dict:
    """Set the volatility level and the ``iv smile(...)`` rule of ``settings`` from ``market``.

    Precedence as for :func:`opl.calibration.block.apply_to_settings`: a ``vol`` or smile
    parameter the file writes (``file_vol``: any component's ``vol``; ``file_smile``: the
    smile's names) is kept. Call it after the dynamics are in ``settings`` (the jump
    variance is taken out of the diffusion's).

    Returns
    -------
    dict
        ``applied`` (setting → value), ``kept_from_file`` and ``notes``.
    """
    applied: dict[str, float] = {}
    kept: list[str] = []
    notes: list[str] = []
    jump_var = _jump_variance(settings)
    total = market.atm ** 2
    diffusion = total - jump_var
    if diffusion < MIN_DIFFUSION_SHARE * total:
        notes.append(f"the jumps' variance ({math.sqrt(jump_var):.1%} a year) exceeds {1 - MIN_DIFFUSION_SHARE:.0%} "
                     f"of the implied level ({market.atm:.1%}): the diffusion keeps {MIN_DIFFUSION_SHARE:.0%} of it, "
                     "so the model's volatility is above the implied one")
        diffusion = MIN_DIFFUSION_SHARE * total
    vol = _written("vol", math.sqrt(diffusion))
    if jump_var > 0:
        notes.append(f"implied level {market.atm:.2%} = diffusion {vol:.2%} and jumps "
                     f"{math.sqrt(jump_var):.2%} a year (variances add)")
    if file_vol:
        kept.append("vol")
    else:
        settings.vol = vol
        applied["vol"] = vol
        for name in settings.components or ("gbm",):
            if name in ("gbm", "garch", "gjr"):
                written = settings.model_params.setdefault(name, {})
                written["vol"] = vol
                applied[f"{name}.vol"] = vol
    smile = {"spread": 0.0, "floor": market.floor}
    if market.skew is not None and market.curvature is not None:
        smile.update(skew=market.skew, curvature=market.curvature)
    else:
        notes.append("no option chains (summary level only): the smile's skew and curvature keep their defaults")
    for key, value in smile.items():
        if key in file_smile:
            kept.append(f"iv.{key}")
            continue
        low, high, what = SMILE_PARAMETERS[key]
        if not low <= value <= high:
            notes.append(f"the implied {what} ({key} {value:.4g}) is outside what the simulator accepts "
                         f"[{low:g}, {high:g}]: {min(max(value, low), high):g} used")
            value = min(max(value, low), high)
        value = _written(key, value)
        setattr(settings, f"iv_{key}", value)
        applied[f"iv.{key}"] = value
    return {"applied": applied, "kept_from_file": kept, "notes": notes}
