"""Calibration (``opl calibrate``): fit the simulator's price model and implied-volatility rule to data.

* :mod:`~opl.calibrate.realised` — close-to-close, Parkinson and Garman–Klass volatility;
* :mod:`~opl.calibrate.garch` — GARCH(1,1) and GJR with Student-t shocks (``arch``) and diagnostics;
* :mod:`~opl.calibrate.jumps` — jump intensity and size, and the diffusion fitted without them;
* :mod:`~opl.calibrate.product` — exercise style and spot/futures underlying from the rule pack;
* :mod:`~opl.calibrate.surface` — implied volatility from option settlements (American inversion),
  smiles, 25-delta risk reversal and butterfly, ATM term structure, :class:`IVSurface`;
* :mod:`~opl.calibrate.iv_summary` — a daily implied-volatility summary file (level, dispersion);
* :mod:`~opl.calibrate.block` — the mapping onto the experiment block ``opl simulate`` reads;
* :mod:`~opl.calibrate.historical` — :func:`calibrate` and :func:`calibrate_dir`;
* :mod:`~opl.calibrate.implied` — the options' level and smile (``calibration implied``);
* :mod:`~opl.calibrate.stored` — a calibration read back from ``opl calibrate --json`` (``calibration file``);
* :mod:`~opl.calibrate.modes` — what each ``calibration`` method sets in ``opl simulate``;
* :mod:`~opl.calibrate.result` — :class:`CalibrationResult` (``summary()``, ``to_dict()``,
  ``experiment_lines()``, ``write_report(dir)``).

On the data of ``opl data synth --out data/ --seed 1 --years 6``::

    from opl.calibrate import calibrate_dir
    result = calibrate_dir("data/")
    print("\\n".join(result.experiment_lines()))
    # model garch(alpha=0.0809, beta=0.8822, nu=4.49, vol=24.65%)
    # calibration historical
    # iv smile(spread=0.3%, floor=16.38%, skew=0.387, curvature=2.706)
"""

from opl.calibrate.block import ExperimentBlock
from opl.calibrate.historical import CalibrationError, calibrate, calibrate_dir
from opl.calibrate.result import CalibrationResult
from opl.calibrate.surface import IVSurface

__all__ = ["calibrate", "calibrate_dir", "CalibrationError", "CalibrationResult", "ExperimentBlock", "IVSurface"]
