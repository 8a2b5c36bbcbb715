"""``calibration historical``: fit the simulator's price model and implied-volatility rule to data.

:func:`calibrate` runs, in order: within-contract returns
(:func:`opl.data.within_contract_returns`), realised volatility
(:mod:`opl.calibration.realised`), the GARCH/GJR fits and jumps
(:mod:`opl.calibration.jumps`), the implied-volatility surface of the option chains
(:mod:`opl.calibration.surface`) or the level of a summary file
(:mod:`opl.data.iv_summary`), and the mapping onto the experiment block
(:mod:`opl.calibration.block`). :func:`calibrate_dir` reads a directory in the layout
``opl data synth`` writes (``futures.csv``, optional ``options.csv`` and
``iv_summary.csv``; ``.parquet`` too).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from opl.calibration.block import SIM_DAYS_PER_YEAR, MAX_PERSISTENCE, build_block, implied_spread
from opl.data.iv_summary import IVSummary, load_iv_summary
from opl.calibration.jumps import DEFAULT_THRESHOLD, fit_jump_model
from opl.calibration.product import product_terms
from opl.calibration.realised import TRADING_DAYS, realised_vol
from opl.calibration.result import CalibrationResult
from opl.calibration.surface import fit_surface
from opl.data.loaders import DataError, LoadResult, Problem, load
from opl.data.rolls import require_moves, within_contract_returns
from opl.errors import OplError

__all__ = ["CalibrationError", "calibrate", "calibrate_dir", "DIR_FILES"]

#: The files :func:`calibrate_dir` looks for, by kind, in order of preference.
DIR_FILES = {"futures": ("futures.csv", "futures.parquet", "futures.pq"),
             "options": ("options.csv", "options.parquet", "options.pq"),
             "iv_summary": ("iv_summary.csv",)}


class CalibrationError(OplError, ValueError):
    """The data cannot be calibrated (too short, no usable options...); the message says why and where."""


def _as_loaded(value, kind: str) -> LoadResult | None:
    if value is None or isinstance(value, LoadResult):
        return value
    if isinstance(value, pd.DataFrame):
        from opl.data.loaders import validate_frame

        return validate_frame(value, kind=kind, file=f"<{kind} frame>")
    return load(value, kind=kind)


def _check_chain_matches(fut: LoadResult, opt: LoadResult) -> None:
    """Refuse a chain none of whose underlyings is a contract of the futures file.

    Rows whose underlying the futures do not hold fall back to put-call parity forwards, so a
    chain of another product (50ETF options beside jujube futures) would otherwise fit its own
    smile silently and be reported as the futures' implied volatility.
    """
    if "underlying_symbol" not in opt.frame.columns or "symbol" not in fut.frame.columns:
        return
    under = opt.frame["underlying_symbol"].dropna().astype(str)
    if under.empty or under.isin(set(fut.frame["symbol"].astype(str))).any():
        return
    names = sorted(set(under))
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    contracts = sorted(set(fut.frame["symbol"].astype(str)))
    raise DataError([Problem(opt.file, opt.line_of(opt.frame.index.get_loc(under.index[0])), "underlying_symbol",
                             f"no option's underlying ({shown}) is a contract of {fut.file} "
                             f"({', '.join(contracts[:3])}{' ...' if len(contracts) > 3 else ''}): "
                             f"the chain of another product?")])


def calibrate(*, futures, options=None, iv_summary: IVSummary | str | os.PathLike | None = None,
              rate: float = 0.02, style: Literal["american", "european"] | None = None, pack=None,
              criterion: Literal["bic", "aic"] = "bic", jump_threshold: float = DEFAULT_THRESHOLD,
              jump_alpha: float = 0.05, window_days: int = 21, limit: float | None = None, tick: float = 0.0,
              max_persistence: float = MAX_PERSISTENCE, progress=None) -> CalibrationResult:
    """Calibrate on futures bars and, optionally, option chains or an implied-volatility summary.

    Parameters
    ----------
    futures
        A validated :class:`opl.data.LoadResult`, a path or a frame (validated here).
    options
        Option chains, likewise; their settlements give the surface, the skew and the
        implied spread.
    iv_summary
        A daily implied-volatility summary (:mod:`opl.data.iv_summary`), used for the
        implied level when there are no chains.
    rate
        Annual rate for the option inversion.
    style
        Exercise style of the options; None takes the rule pack's (:mod:`opl.calibration.product`).
    pack
        Rule pack name or object (else the one whose symbols the data name).
    criterion
        ``bic`` or ``aic`` for choosing between GARCH and GJR.
    jump_threshold
        Conditional standard deviations beyond which a day is a jump day.
    jump_alpha
        Level of the test of the jump-day count against the Student-t's expectation.
    window_days
        Trading days over which the one-month smile is summarised.
    limit, tick
        Daily limit and tick for the roll rule when the futures have no symbol column.
    max_persistence
        The persistence an integrated GARCH fit is brought down to for the simulator.
    progress : callable, optional
        ``progress(done, total, stage)`` as the stages go (``opl calibrate``'s bar).

    Raises
    ------
    CalibrationError
        Too few returns for a GARCH fit, or options with no usable smile.
    opl.data.DataError
        A file breaks its data contract (located).
    """
    fut = _as_loaded(futures, "futures")
    opt = _as_loaded(options, "options")
    if opt is not None:
        _check_chain_matches(fut, opt)
    summary = load_iv_summary(iv_summary) if isinstance(iv_summary, (str, os.PathLike)) else iv_summary
    frame = fut.frame
    if progress is not None:
        progress(0, 1, "fitting GARCH and jumps")
    returns, realised, jump_model, diffusion, model_vol = _dynamics(fut, limit=limit, tick=tick,
                                                                    threshold=jump_threshold, criterion=criterion,
                                                                    alpha=jump_alpha)
    jumps, garch = jump_model.jumps, jump_model.garch
    terms = product_terms(style=style, pack=pack, futures=frame, options=opt.frame if opt is not None else None)
    surface, implied = _implied_level(fut, opt, summary, model_vol, terms=terms, rate=rate, window_days=window_days,
                                      progress=progress)
    block = build_block(garch=garch, jumps=jumps, diffusion_returns=diffusion, implied=implied,
                        smile=surface.window if surface is not None else None, max_persistence=max_persistence)
    inputs = {"futures": fut.describe(), "options": opt.describe() if opt is not None else None,
              "iv_summary": summary.stats() if summary is not None else None,
              "rolls": {"method": returns.rolls.method, "count": returns.rolls.count,
                        "dates": [str(pd.Timestamp(d).date()) for d in returns.rolls.table["trading_date"]]}}
    settings = {"rate": rate, "style": terms.style, "style_from": terms.source, "pack": terms.pack,
                "spot_underlying": terms.spot, "criterion": criterion, "jump_threshold": jump_threshold,
                "jump_alpha": jump_alpha,
                "window_days": window_days, "limit": limit, "tick": tick, "max_persistence": max_persistence,
                "price": "close", "periods_per_year": TRADING_DAYS, "sim_days_per_year": SIM_DAYS_PER_YEAR}
    return CalibrationResult(inputs=inputs, settings=settings, realised=realised, jump_model=jump_model,
                             returns=returns, surface=surface, iv_summary=summary, implied=implied, block=block,
                             model_vol=model_vol)


def _dynamics(fut: LoadResult, *, limit, tick: float, threshold: float, criterion: str, alpha: float) -> tuple:
    """The futures' within-contract returns, realised volatility, GARCH-and-jumps fit, the returns of the days
    without a jump, and the model's annual volatility per day (the GARCH conditional volatility with the jumps'
    variance). CalibrationError when the returns cannot be fitted."""
    frame = fut.frame
    returns = within_contract_returns(frame, price="close", limit=limit, tick=tick)
    require_moves(returns, file=fut.file, lines=fut.lines)
    try:
        realised = realised_vol(frame, returns)
        jump_model = fit_jump_model(returns.returns, threshold=threshold, criterion=criterion,
                                    periods_per_year=TRADING_DAYS, alpha=alpha)
    except ValueError as error:
        raise CalibrationError(f"{fut.file}: {error}") from None
    jumps, garch = jump_model.jumps, jump_model.garch
    r = returns.returns.dropna()
    jump_days = pd.DatetimeIndex(pd.to_datetime(jumps.dates)) if jumps.found else pd.DatetimeIndex([])
    diffusion = r[~r.index.isin(jump_days)]
    jump_var = jumps.per_day * SIM_DAYS_PER_YEAR * (jumps.mean ** 2 + jumps.std ** 2) if jumps.found and \
        math.isfinite(jumps.std) else 0.0
    daily = garch.best.conditional_vol / math.sqrt(TRADING_DAYS)
    model_vol = np.sqrt(daily ** 2 * SIM_DAYS_PER_YEAR + jump_var).rename("model_vol")
    return returns, realised, jump_model, diffusion, model_vol


def _implied_level(fut: LoadResult, opt: LoadResult | None, summary, model_vol, *, terms, rate: float,
                   window_days: int, progress) -> tuple:
    """(surface, implied): the chains' volatility surface (None without chains) and the implied level's
    spread over the model's volatility, from the chains or else the implied-volatility summary (None
    without either). CalibrationError when the chains give no usable smile."""
    if opt is not None:
        try:
            surface = fit_surface(opt.frame, fut.frame, rate=rate, style=terms.style, window_days=window_days,
                                  spot=terms.spot, progress=progress)
        except ValueError as error:
            raise CalibrationError(f"{opt.file}: {error}") from None
        return surface, {**implied_spread(surface.history, model_vol),
                         "source": "option chains: daily ATM volatility of the expiry nearest 30 days"}
    if summary is not None:
        return None, {**implied_spread(summary.level, model_vol),
                      "source": f"{summary.file}: daily mean implied volatility of the listed options"}
    return None, None


def _find(directory: Path, kind: str) -> Path | None:
    for name in DIR_FILES[kind]:
        if (directory / name).is_file():
            return directory / name
    return None


def calibrate_dir(path: str | os.PathLike, **kwargs) -> CalibrationResult:
    """Calibrate on a data directory (``futures.csv`` required; ``options.csv``, ``iv_summary.csv`` optional).

    ``kwargs`` go to :func:`calibrate` (``repair=True`` is passed to the loaders instead).

    Raises
    ------
    CalibrationError
        The directory has no futures file.
    opl.data.DataError, OSError
        As the loaders raise them.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(2, "No such directory", str(directory))
    repair = kwargs.pop("repair", False)
    found = {kind: _find(directory, kind) for kind in DIR_FILES}
    if found["futures"] is None:
        raise CalibrationError(f"{directory}: no futures file ({', '.join(DIR_FILES['futures'])}); "
                               "`opl data synth --out DIR` writes the layout")
    limit, tick = kwargs.get("limit"), kwargs.get("tick", 0.0)
    progress = kwargs.get("progress")
    if progress is not None:
        progress(0, 1, f"reading {found['futures'].name}")
    futures = load(found["futures"], kind="futures", repair=repair, limit=limit, tick=tick)
    if progress is not None and found["options"]:
        progress(0, 1, f"reading {found['options'].name}")
    options = load(found["options"], kind="options", repair=repair) if found["options"] else None
    return calibrate(futures=futures, options=options, iv_summary=found["iv_summary"], **kwargs)
