"""``calibration file``: a calibration read back from the JSON ``opl calibrate --json OUT`` wrote.

:func:`load_calibration` rebuilds what :func:`opl.calibration.block.apply_to_settings`
reads — both GARCH fits, the jump estimate and the experiment block — so a file
calibrated once is simulated with exactly the parameters of that calibration, without
the data. The JSON's keys are those of :meth:`opl.calibration.CalibrationResult.to_dict`;
a missing key, a value of the wrong type or a file that is not JSON is a
:class:`StoredCalibrationError` naming the file (and the line and column for bad JSON).
Only a regular file under `opl.lang.limits.MAX_NAMED_FILE_BYTES` is read (`opl.lang.fileaccess.read_regular`),
and a value from the file is quoted in a message only as a short escaped excerpt.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from opl.calibration.block import ExperimentBlock
from opl.calibration.garch import GarchFit, GarchSelection
from opl.calibration.jumps import JumpEstimate
from opl.lang.fileaccess import NamedFileError, quoted, read_regular
from opl.errors import OplError

__all__ = ["StoredCalibration", "StoredCalibrationError", "load_calibration"]


class StoredCalibrationError(OplError, ValueError):
    """The calibration file is missing, not JSON, or not what ``opl calibrate --json`` writes."""


@dataclass
class StoredCalibration:
    """The parts of a calibration the simulator applies, read from ``opl calibrate --json``."""

    file: str
    inputs: dict
    garch: GarchSelection
    jumps: JumpEstimate
    block: ExperimentBlock


def _number(value, where: str) -> float:
    if value is None:  # the JSON writes NaN and infinities as null
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StoredCalibrationError(f"{where}: expected a number, found {quoted(value)}")
    return float(value)


def _get(data: dict, key: str, where: str):
    if not isinstance(data, dict) or key not in data:
        raise StoredCalibrationError(f"{where}: no `{key}` (not a file `opl calibrate --json` wrote?)")
    return data[key]


def _fit(data: dict, where: str, periods: float) -> GarchFit:
    numbers = ("mu", "omega", "alpha", "gamma", "beta", "nu", "loglik", "aic", "bic")
    values = {k: _number(_get(data, k, where), f"{where}.{k}") for k in numbers}
    kind = _get(data, "kind", where)
    if kind not in ("garch", "gjr"):
        raise StoredCalibrationError(f"{where}.kind: expected garch or gjr, found {quoted(kind)}")
    return GarchFit(kind=kind, **values, n=int(_number(_get(data, "n", where), f"{where}.n")),
                    converged=bool(_get(data, "converged", where)), stderr=data.get("stderr") or {},
                    ljung_box=data.get("ljung_box") or {}, periods_per_year=periods,
                    conditional_vol=pd.Series(dtype=float), std_resid=pd.Series(dtype=float))


def _jumps(data: dict, where: str, periods: float) -> JumpEstimate:
    renamed = {"expected_false": "expected_false_detections"}
    values = {}
    for f in fields(JumpEstimate):
        if f.name in ("periods_per_year", "dates", "sizes"):
            continue
        key = renamed.get(f.name, f.name)
        values[f.name] = _number(_get(data, key, where), f"{where}.{key}")
    values["count"], values["n"] = int(values["count"]), int(values["n"])
    return JumpEstimate(**values, periods_per_year=periods, dates=list(data.get("dates") or []),
                        sizes=list(data.get("sizes") or []))


def _block(data: dict, where: str) -> ExperimentBlock:
    model = _get(data, "model", where)
    smile = _get(data, "smile", where)
    if not isinstance(model, dict) or not isinstance(smile, dict):
        raise StoredCalibrationError(f"{where}: `model` and `smile` must be objects")
    return ExperimentBlock(
        model=[(name, {k: _number(v, f"{where}.model.{name}.{k}") for k, v in params.items()})
               for name, params in model.items()],
        smile={k: _number(v, f"{where}.smile.{k}") for k, v in smile.items()},
        vol=_number(_get(data, "vol", where), f"{where}.vol"), notes=list(data.get("notes") or []),
        sources=dict(data.get("sources") or {}))


def load_calibration(path: str | os.PathLike) -> StoredCalibration:
    """Read a calibration JSON (``opl calibrate --json OUT``).

    Raises
    ------
    StoredCalibrationError
        The file cannot be read, is not JSON (``file:line:column``) or lacks a key.
    """
    path = Path(path)
    try:
        text = read_regular(path).decode("utf-8")
    except FileNotFoundError:
        raise StoredCalibrationError(f"{path}: no such file (write it with `opl calibrate --data DIR --json "
                                     f"{path.name}`)") from None
    except NamedFileError as error:
        raise StoredCalibrationError(str(error)) from None
    except UnicodeDecodeError as error:
        raise StoredCalibrationError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise StoredCalibrationError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise StoredCalibrationError(f"{path}:{error.lineno}:{error.colno}: not JSON ({error.msg})") from None
    name = str(path)
    settings = _get(data, "settings", name)
    periods = _number(_get(settings, "periods_per_year", f"{name}: settings"), f"{name}: settings.periods_per_year")
    garch = _get(data, "garch", name)
    fits = _get(garch, "fits", f"{name}: garch")
    if not isinstance(fits, dict) or not fits:
        raise StoredCalibrationError(f"{name}: garch.fits: expected the fits by kind")
    selection = GarchSelection(fits={k: _fit(v, f"{name}: garch.fits.{k}", periods) for k, v in fits.items()},
                               chosen=_get(garch, "chosen", f"{name}: garch"),
                               criterion=str(garch.get("criterion", "")), reason=str(garch.get("reason", "")))
    if selection.chosen not in selection.fits:
        raise StoredCalibrationError(f"{name}: garch.chosen {quoted(selection.chosen)} is not one of the fits")
    jumps = _jumps(_get(_get(data, "jumps", name), "jumps", f"{name}: jumps"), f"{name}: jumps.jumps", periods)
    return StoredCalibration(file=name, inputs=_get(data, "inputs", name), garch=selection, jumps=jumps,
                             block=_block(_get(data, "block", name), f"{name}: block"))
