"""Calibration (``opl calibrate``): fit the simulator's price model and implied-volatility rule to data.

* :mod:`~opl.calibration.realised` — close-to-close, Parkinson and Garman–Klass volatility;
* :mod:`~opl.calibration.garch` — GARCH(1,1) and GJR with Student-t shocks (``arch``) and diagnostics;
* :mod:`~opl.calibration.jumps` — jump intensity and size, and the diffusion fitted without them;
* :mod:`~opl.calibration.product` — exercise style and spot/futures underlying from the rule pack;
* :mod:`~opl.calibration.surface` — implied volatility from option settlements (American inversion),
  smiles, 25-delta risk reversal and butterfly, ATM term structure, :class:`IVSurface`;
* :mod:`~opl.data.iv_summary` — a daily implied-volatility summary file (level, dispersion);
* :mod:`~opl.calibration.block` — the mapping onto the experiment block ``opl simulate`` reads;
* :mod:`~opl.calibration.historical` — :func:`calibrate` and :func:`calibrate_dir`;
* :mod:`~opl.calibration.implied` — the options' level and smile (``calibration implied``);
* :mod:`~opl.calibration.stored` — a calibration read back from ``opl calibrate --json`` (``calibration file``);
* :mod:`~opl.calibration.modes` — what each ``calibration`` method sets in ``opl simulate``;
* :mod:`~opl.calibration.result` — :class:`CalibrationResult` (``summary()``, ``to_dict()``,
  ``experiment_lines()``, ``write_report(dir)``).

On the data of ``opl data synth --out data/ --seed 1 --years 6``::

    from opl.calibration import calibrate_dir
    result = calibrate_dir("data/")
    print("\\n".join(result.experiment_lines()))
    # model garch(alpha=0.0809, beta=0.8822, nu=4.49, vol=24.65%)
    # calibration historical
    # iv smile(spread=0.3%, floor=16.38%, skew=0.387, curvature=2.706)
"""

from opl.calibration.block import ExperimentBlock
from opl.calibration.historical import CalibrationError, calibrate, calibrate_dir
from opl.calibration.result import CalibrationResult
from opl.calibration.surface import IVSurface

__all__ = ["calibrate", "calibrate_dir", "CalibrationError", "CalibrationResult", "ExperimentBlock", "IVSurface"]
