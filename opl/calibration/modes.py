"""The experiment's ``calibration`` methods, as ``opl simulate`` (and ``opl loop``) run them.

==============  ===============================================  ==========================================
method          data                                             what it sets
==============  ===============================================  ==========================================
``historical``  ``--data DIR`` (futures; options or summary      dynamics and level from the futures'
                optional)                                        history (:mod:`opl.calibration.block`); the
                                                                 smile's spread and floor from the implied
                                                                 level against the model, skew and
                                                                 curvature from the chains
``implied``     ``--data DIR`` with ``options.csv`` or           level and smile from the options
                ``iv_summary.csv`` (futures optional)            (:mod:`opl.calibration.implied`); the
                                                                 dynamics (GARCH α, β, γ, ν, jumps) stay as
                                                                 written, else the simulator's defaults
``hybrid``      ``--data DIR`` with futures and options (or      dynamics from the history, then level and
                the summary)                                     smile from the options — the desk's usual
                                                                 split: the history knows how volatility
                                                                 moves, the market what it is now
``file``        ``calibration file("calib.json")`` (relative     everything ``historical`` sets, from the
                to the ``.opl``) or ``--data calib.json``        JSON ``opl calibrate --json`` wrote
                                                                 (:mod:`opl.calibration.stored`)
==============  ===============================================  ==========================================

Precedence, lowest first: the simulator's defaults, the calibration, what the file
writes explicitly (a model parameter such as ``garch(alpha=0.05)``, an ``iv smile(...)``
parameter), then ``--set``. :func:`calibrate_settings` returns the record the
simulation keeps as ``model.calibration``: the method, every value set with where it
came from (``from``: ``history``, ``options``, ``iv_summary`` or the JSON file), the
settings the file kept, the sources and the notes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Method", "calibrate_settings"]

Method = Literal["historical", "implied", "hybrid", "file"]


def _history_source(calibration) -> dict:
    source = calibration.inputs["futures"]
    return {"futures": source["file"], "first": source["first"], "last": source["last"],
            "options": (calibration.inputs.get("options") or {}).get("file"),
            "iv_summary": (calibration.inputs.get("iv_summary") or {}).get("file")}


def _implied(data, calibration=None):
    """The implied market of ``--data`` (a directory) or of a calibration already run on it."""
    from opl.calibration.historical import CalibrationError
    from opl.calibration.implied import implied_from, implied_market

    if calibration is None and isinstance(data, (str, os.PathLike)):
        return implied_market(data)
    calibration = calibration if calibration is not None else data
    if calibration.surface is None and calibration.iv_summary is None:
        raise CalibrationError(f"{calibration.inputs['futures']['file']}: no option data (options.csv or "
                               "iv_summary.csv) next to the futures: `calibration implied` and `hybrid` take the "
                               "volatility level from option prices")
    try:
        market = implied_from(surface=calibration.surface, summary=calibration.iv_summary,
                              window_days=int(calibration.settings.get("window_days", 21)))
    except ValueError as error:
        raise CalibrationError(f"{(calibration.inputs.get('options') or {}).get('file')}: {error}") from None
    if calibration.surface is not None:
        market.file = calibration.inputs["options"]["file"]
    return market


def _merge(record: dict, part: dict, origin: str) -> None:
    record["applied"].update(part["applied"])
    record["from"].update({key: origin for key in part["applied"]})
    record["kept_from_file"] += [k for k in part["kept_from_file"] if k not in record["kept_from_file"]]
    record["notes"] += part["notes"]


def calibrate_settings(method: Method, settings, *, data=None, calibration_file: str | os.PathLike | None = None,
                       file_smile=()) -> dict:
    """Fill ``settings`` (an ``opl.lang.experiment.settings.SimSettings``, changed in place) by ``method``.

    Parameters
    ----------
    method
        The experiment's ``calibration``.
    data
        ``--data``: a directory, a calibration JSON (``file``), or an
        :class:`opl.calibration.CalibrationResult` already run on a directory.
    calibration_file
        ``calibration file("...")`` resolved against the ``.opl``; ``data``, when it is
        given, replaces it.
    file_smile
        The ``iv smile(...)`` parameters the file writes (kept).

    Returns
    -------
    dict
        ``method``, ``applied``, ``from``, ``kept_from_file``, ``source``, ``implied``
        (the options' level and smile, for ``implied``/``hybrid``), ``inputs`` (each data file a
        history is fitted to, as `opl calibrate --json` describes it: rows used, repairs; for
        ``historical``/``hybrid`` on ``--data``) and ``notes``.

    Raises
    ------
    opl.calibration.CalibrationError
        The data cannot serve the method (no options for ``implied``, no futures for
        ``hybrid``...).
    opl.calibration.stored.StoredCalibrationError
        The calibration file is missing or bad, or ``data`` is a file where the method
        fits a directory.
    opl.data.DataError, OSError
        As the loaders raise them.
    """
    from opl.calibration import CalibrationResult
    from opl.calibration.stored import StoredCalibrationError

    job = _Job(settings, data, calibration_file, tuple(file_smile),
               settings.vol is not None or any("vol" in p for p in settings.model_params.values()),
               {"method": method, "applied": {}, "from": {}, "kept_from_file": [], "source": {}, "notes": []})
    if method != "file" and data is not None and not isinstance(data, CalibrationResult) and Path(data).is_file():
        raise StoredCalibrationError(f"{data}: a file; `calibration {method}` fits a data directory (futures.csv, "
                                     "options.csv, iv_summary.csv): to apply the JSON `opl calibrate --json` wrote, "
                                     "write `calibration file` in the .opl")
    _METHODS[method](job)
    return job.record


@dataclass(frozen=True)
class _Job:
    """One `calibrate_settings` call: its arguments, whether the file writes a volatility of its own
    (``file_vol``: kept against the options' level) and the ``record`` the method fills."""

    settings: object
    data: object
    calibration_file: object
    file_smile: tuple
    file_vol: bool
    record: dict


def _from_file(job: _Job) -> None:
    """``calibration file``: the parameters of the JSON `opl calibrate --json` wrote (``--data`` replaces the
    file's own name)."""
    from opl.calibration import CalibrationResult
    from opl.calibration.block import apply_to_settings
    from opl.calibration.stored import StoredCalibrationError, load_calibration

    data, record = job.data, job.record
    path = data if data is not None else job.calibration_file
    if isinstance(path, CalibrationResult):
        raise StoredCalibrationError("`calibration file` reads a calibration JSON, not a data directory")
    if path is None:
        raise StoredCalibrationError("`calibration file` names no file: write `calibration file(\"calib.json\")` "
                                     "or pass --data calib.json (written by `opl calibrate --json`)")
    if data is not None and job.calibration_file is not None:
        record["notes"].append(f"--data {data} replaces the file's `calibration file(...)` ({job.calibration_file})")
    if Path(path).is_dir():
        raise StoredCalibrationError(f"{path}: a directory; `calibration file` reads the JSON `opl calibrate "
                                     "--json OUT` writes (use `calibration historical` to fit a directory)")
    stored = load_calibration(path)
    missing = [c for c in job.settings.components if c in ("garch", "gjr") and c not in stored.garch.fits]
    if missing:
        raise StoredCalibrationError(f"{stored.file}: no {missing[0]} fit for the file's `{missing[0]}` component")
    _merge(record, apply_to_settings(job.settings, stored, file_smile=job.file_smile), stored.file)
    record["source"] = {"file": stored.file, **_history_source(stored)}
    record["notes"].insert(0, f"`calibration file`: the parameters of {stored.file} (fitted to "
                              f"{record['source']['futures']}, {record['source']['first']} … "
                              f"{record['source']['last']})")


def _implied_level(job: _Job, calibration=None):
    """The options' volatility level and smile (`_implied`) applied to the settings; returns them."""
    from opl.calibration.implied import apply_implied

    market = _implied(job.data, calibration)
    job.record["implied"] = market.to_dict()
    origin = "options" if market.skew is not None else "iv_summary"
    # A history's vol is replaced: a vol the file writes is already in model_params, so it was checked before.
    _merge(job.record, apply_implied(job.settings, market, file_smile=job.file_smile, file_vol=job.file_vol), origin)
    return market


def _implied_only(job: _Job) -> None:
    """``calibration implied``: the options' volatility level and smile; the dynamics as written."""
    market = _implied_level(job)
    origin = "options" if market.skew is not None else "iv_summary"
    job.record["source"] = {origin: market.file, "first": market.first, "last": market.last}
    if market.inputs:
        job.record["inputs"] = market.inputs
    job.record["notes"].insert(0, f"`calibration implied`: volatility level {market.atm:.2%} and smile from "
                                  f"{market.source}; the model's dynamics are as written, else the defaults")


def _fitted_history(job: _Job):
    """The model fitted to the data directory's history (or the `CalibrationResult` given) applied to the
    settings; returns the calibration."""
    from opl.calibration import CalibrationResult, calibrate_dir
    from opl.calibration.block import apply_to_settings

    calibration = job.data if isinstance(job.data, CalibrationResult) else calibrate_dir(job.data)
    _merge(job.record, apply_to_settings(job.settings, calibration, file_smile=job.file_smile), "history")
    job.record["source"] = _history_source(calibration)
    job.record["inputs"] = calibration.inputs  # each file read: rows used, repairs (rows in = rows + rows dropped)
    return calibration


def _historical(job: _Job) -> None:
    """``calibration historical``: the model fitted to the history."""
    _fitted_history(job)
    source = job.record["source"]
    job.record["notes"].insert(0, f"`calibration historical`: the model was fitted to {source['futures']} "
                                  f"({source['first']} … {source['last']}); "
                                  "model.calibration lists what came from the data")


def _hybrid(job: _Job) -> None:
    """``calibration hybrid``: the dynamics fitted to the history, the volatility level and smile the options'."""
    market = _implied_level(job, _fitted_history(job))
    source = job.record["source"]
    job.record["notes"].insert(0, f"`calibration hybrid`: dynamics (GARCH, jumps) fitted to {source['futures']}"
                                  f" ({source['first']} … {source['last']}); volatility level "
                                  f"{market.atm:.2%} and smile from {market.source}")


#: Each `Method`'s handler: fills the job's settings and record.
_METHODS = {"file": _from_file, "implied": _implied_only, "historical": _historical, "hybrid": _hybrid}
