"""Calibration (``opl calibrate``): fit the simulator's price model and implied-volatility rule to data.

* :mod:`~opl.calibrate.realised` — close-to-close, Parkinson and Garman–Klass volatility;
* :mod:`~opl.calibrate.garch` — GARCH(1,1) and GJR with Student-t shocks (``arch``) and diagnostics;
* :mod:`~opl.calibrate.jumps` — jump intensity and size, and the diffusion fitted without them;
* :mod:`~opl.calibrate.surface` — implied volatility from option settlements (American inversion),
  smiles, 25-delta risk reversal and butterfly, ATM term structure, :class:`IVSurface`;
* :mod:`~opl.calibrate.iv_summary` — a daily implied-volatility summary file (level, dispersion);
* :mod:`~opl.calibrate.block` — the mapping onto the experiment block ``opl simulate`` reads;
* :mod:`~opl.calibrate.historical` — :func:`calibrate` and :func:`calibrate_dir`;
* :mod:`~opl.calibrate.result` — :class:`CalibrationResult` (``summary()``, ``to_dict()``,
  ``experiment_lines()``, ``write_report(dir)``).

>>> from opl.calibrate import calibrate_dir                      # doctest: +SKIP
>>> result = calibrate_dir("data/")                              # doctest: +SKIP
>>> print("\\n".join(result.experiment_lines()))                  # doctest: +SKIP
model garch(alpha=0.0702, beta=0.8953, nu=6.41, vol=23.5%) + jump(intensity=1.21, mean=0.4%, std=4.1%)
calibration historical
iv smile(spread=4.9%, floor=14.1%, skew=0.601, curvature=3.95)
"""

from opl.calibrate.block import ExperimentBlock
from opl.calibrate.historical import CalibrationError, calibrate, calibrate_dir
from opl.calibrate.result import CalibrationResult
from opl.calibrate.surface import IVSurface

__all__ = ["calibrate", "calibrate_dir", "CalibrationError", "CalibrationResult", "ExperimentBlock", "IVSurface"]
