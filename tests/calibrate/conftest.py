"""Shared data for the calibration tests: one small synthetic dataset and its calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """Three years of `opl data synth` output (futures, options, signals, factors, truth.json)."""
    from opl.data.synth import synthesize

    out = tmp_path_factory.mktemp("synth")
    data = synthesize(seed=4, years=3)
    data.write(out)
    return out


@pytest.fixture(scope="session")
def synth_calibration(synth_dir):
    from opl.calibration import calibrate_dir

    return calibrate_dir(synth_dir)


def garch_t_series(*, n: int, alpha: float, beta: float, nu: float, vol: float = 0.22, gamma: float = 0.0,
                   seed: int = 0, jumps: np.ndarray | None = None) -> pd.Series:
    """Daily log returns of a GARCH/GJR(1,1) with unit-variance Student-t shocks; ``jumps`` (length n) are
    added to the returns without feeding the recursion, as in opl.runtime.engine.processes."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, n) * np.sqrt((nu - 2.0) / nu)
    hbar = vol ** 2 / 252.0
    omega = hbar * (1.0 - alpha - beta - 0.5 * gamma)
    h, eps, out = hbar, 0.0, np.empty(n)
    for t in range(n):
        if t:
            h = omega + (alpha + gamma * (eps < 0)) * eps * eps + beta * h
        eps = np.sqrt(h) * z[t]
        out[t] = eps
    if jumps is not None:
        out = out + jumps
    return pd.Series(out, index=pd.bdate_range("2010-01-04", periods=n), name="r")


@pytest.fixture(scope="session")
def garch_series():
    return garch_t_series
