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
    from opl.calibration import CalibrationResult, calibrate_dir
    from opl.calibration.block import apply_to_settings
    from opl.calibration.implied import apply_implied
    from opl.calibration.stored import StoredCalibrationError, load_calibration

    file_vol = settings.vol is not None or any("vol" in p for p in settings.model_params.values())
    record = {"method": method, "applied": {}, "from": {}, "kept_from_file": [], "source": {}, "notes": []}
    if method == "file":
        path = data if data is not None else calibration_file
        if isinstance(path, CalibrationResult):
            raise StoredCalibrationError("`calibration file` reads a calibration JSON, not a data directory")
        if path is None:
            raise StoredCalibrationError("`calibration file` names no file: write `calibration file(\"calib.json\")` "
                                         "or pass --data calib.json (written by `opl calibrate --json`)")
        if data is not None and calibration_file is not None:
            record["notes"].append(f"--data {data} replaces the file's `calibration file(...)` ({calibration_file})")
        if Path(path).is_dir():
            raise StoredCalibrationError(f"{path}: a directory; `calibration file` reads the JSON `opl calibrate "
                                         "--json OUT` writes (use `calibration historical` to fit a directory)")
        stored = load_calibration(path)
        missing = [c for c in settings.components if c in ("garch", "gjr") and c not in stored.garch.fits]
        if missing:
            raise StoredCalibrationError(f"{stored.file}: no {missing[0]} fit for the file's `{missing[0]}` component")
        _merge(record, apply_to_settings(settings, stored, file_smile=file_smile), stored.file)
        record["source"] = {"file": stored.file, **_history_source(stored)}
        record["notes"].insert(0, f"`calibration file`: the parameters of {stored.file} (fitted to "
                                  f"{record['source']['futures']}, {record['source']['first']} … "
                                  f"{record['source']['last']})")
        return record
    if data is not None and not isinstance(data, CalibrationResult) and Path(data).is_file():
        raise StoredCalibrationError(f"{data}: a file; `calibration {method}` fits a data directory (futures.csv, "
                                     "options.csv, iv_summary.csv): to apply the JSON `opl calibrate --json` wrote, "
                                     "write `calibration file` in the .opl")
    if method == "implied":
        market = _implied(data)
        record["implied"] = market.to_dict()
        origin = "options" if market.skew is not None else "iv_summary"
        _merge(record, apply_implied(settings, market, file_smile=file_smile, file_vol=file_vol), origin)
        record["source"] = {"options" if origin == "options" else "iv_summary": market.file,
                            "first": market.first, "last": market.last}
        if market.inputs:
            record["inputs"] = market.inputs
        record["notes"].insert(0, f"`calibration implied`: volatility level {market.atm:.2%} and smile from "
                                  f"{market.source}; the model's dynamics are as written, else the defaults")
        return record
    calibration = data if isinstance(data, CalibrationResult) else calibrate_dir(data)
    _merge(record, apply_to_settings(settings, calibration, file_smile=file_smile), "history")
    record["source"] = _history_source(calibration)
    record["inputs"] = calibration.inputs  # each file read: rows used, repairs (rows in = rows + rows dropped)
    if method == "historical":
        record["notes"].insert(0, f"`calibration historical`: the model was fitted to {record['source']['futures']} "
                                  f"({record['source']['first']} … {record['source']['last']}); "
                                  "model.calibration lists what came from the data")
        return record
    market = _implied(data, calibration)
    record["implied"] = market.to_dict()
    origin = "options" if market.skew is not None else "iv_summary"
    # The history's vol is replaced: a vol the file writes is already in model_params, so check before.
    _merge(record, apply_implied(settings, market, file_smile=file_smile, file_vol=file_vol), origin)
    record["notes"].insert(0, f"`calibration hybrid`: dynamics (GARCH, jumps) fitted to {record['source']['futures']}"
                              f" ({record['source']['first']} … {record['source']['last']}); volatility level "
                              f"{market.atm:.2%} and smile from {market.source}")
    return record
