"""Monte Carlo standard errors of the headline metrics (`opl.runtime.results.metrics`).

**What is independent.** A replay's paths are independent draws; the months of one path are not:
volatility clustering carries from one month into the next, a month opens only when the equity left by
the months before covers its margin, and a ruined path stays flat. (Returns do not compound — sizes are
in lots and each month's P&L is divided by the fixed capital — but the months still share their path.)
So every error below treats the **path** as the independent unit: a pooled monthly figure is a function
of per-path sums, and its variance is estimated from the spread of those sums across paths (the cluster,
or "sandwich", estimator). Treating the path-months as independent would understate the error by the
square root of the design effect, 1 + (months − 1)·ρ for a within-path correlation ρ.

``mean``          sd of the per-path mean monthly returns / √paths;
``share``         the same for an indicator (the loss probability: per-path share of losing months);
``quantile``      the asymptotic error of a sample quantile (Bahadur representation): the sparsity
                  1/f(q), estimated by the Siddiqui difference quotient (Q(τ + h) − Q(τ − h)) / 2h with
                  the Hall–Sheather bandwidth h, times the cluster error of the share of observations at
                  or below q, sd over paths of (mean over months of 1{r ≤ q} − τ) / √paths. For the
                  drawdown quantiles each path is one observation. A quantile on an atom of the
                  distribution (many months with the same P&L) has sparsity 0 and error 0: the sample
                  quantile sits on the atom with probability → 1;
``cvar``          the Rockafellar–Uryasev form CVaR = VaR + E[(L − VaR)⁺] / (1 − level) of the loss
                  L = −r: at the optimum its derivative in VaR vanishes, so the estimator behaves like
                  the mean of h = VaR + (L − VaR)⁺ / (1 − level), and its error is that mean's cluster
                  error.

At few paths the difference quotient spans a wide band of levels (p91–p99 for a p95 at 150 paths), so
in a right-skewed tail (drawdowns) the error is conservative: on the jujube strangle at 150 paths the
drawdown p95's reported error averaged 0.24 against a spread over 30 seeds of 0.15 (mean, median, loss
probability and CVaR95 within 10% of their spreads); the band narrows as n^(-1/3), and at 600 paths
the drawdown p95's error was 0.102 against a spread of 0.089.

The density-based quantile error was chosen over a bootstrap because it is deterministic and costs one
sort per metric, where a path bootstrap would resample every size and scenario of every loop candidate
hundreds of times; its coverage is tested on known distributions with within-path correlation
(tests/simulate/test_standard_errors.py). With fewer than two paths there is no Monte Carlo error to
estimate (a backtest is one history): every error is NaN (``null`` in JSON).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri  # scipy.stats' norm.ppf itself; importing scipy.stats costs ~1 s a run

__all__ = ["mean_se", "share_se", "quantile_se", "cvar_se", "cvar_ses", "hall_sheather"]


def _paths(values: np.ndarray) -> np.ndarray:
    """``values`` as (paths, observations per path): a 1-D array is one observation a path."""
    a = np.asarray(values, dtype=float)
    return a[:, None] if a.ndim == 1 else a


def _cluster_se(per_path: np.ndarray) -> float:
    """The error of the mean of per-path averages (independent paths)."""
    n = per_path.size
    return float(per_path.std(ddof=1) / math.sqrt(n)) if n >= 2 else float("nan")


def mean_se(values: np.ndarray) -> float:
    """Error of the pooled mean of ``values`` (paths × months, or one value a path)."""
    return _cluster_se(_paths(values).mean(axis=1))


def share_se(mask: np.ndarray) -> float:
    """Error of the pooled share of True in ``mask`` (paths × months, or one a path), in the mask's units (0–1)."""
    return _cluster_se(_paths(mask).astype(float).mean(axis=1))


def hall_sheather(n: int, tau: float, alpha: float = 0.05) -> float:
    """The Hall–Sheather (1988) bandwidth of the sparsity estimate at level ``tau`` from ``n`` observations.

    >>> round(hall_sheather(10_000, 0.5), 4)
    0.0451
    """
    z = ndtri(tau)
    return float(n ** (-1 / 3) * ndtri(1 - alpha / 2) ** (2 / 3)
                 * (1.5 * _norm_pdf(z) ** 2 / (2 * z**2 + 1)) ** (1 / 3))


def _norm_pdf(x: float) -> float:
    """The standard normal density as scipy.stats' ``norm.pdf`` computes it, bit for bit: on a 0-d array (a
    numpy scalar's own arithmetic rounds differently in the last bit)."""
    a = np.asarray(x, dtype=float)
    return (np.exp(-a**2 / 2.0) / np.sqrt(2 * np.pi))[()]


def quantile_se(values: np.ndarray, tau: float, *, flat_sorted: np.ndarray | None = None) -> float:
    """Error of the pooled ``tau`` quantile (0 < tau < 1) of ``values`` (paths × months, or one a path).

    ``flat_sorted``: ``np.sort(values.ravel())`` when the caller has it (`opl.runtime.results.metrics`
    sorts the returns once for every statistic), so that it is not sorted again.
    """
    a = _paths(values)
    n = a.size
    if a.shape[0] < 2:
        return float("nan")
    flat = np.sort(a.ravel()) if flat_sorted is None else flat_sorted
    h = hall_sheather(n, tau)
    lo, hi = max(tau - h, 0.5 / n), min(tau + h, 1 - 0.5 / n)
    # One call for the three levels: one copy and one partition of the values instead of three; each
    # level's number is the one a call of its own gives (the same order statistics, interpolated elementwise).
    q_hi, q_lo, q = np.quantile(flat, [hi, lo, tau])
    sparsity = (q_hi - q_lo) / (hi - lo)
    below = (a <= q).mean(axis=1) - tau
    return float(sparsity * _cluster_se(below))


def cvar_se(values: np.ndarray, level: float) -> float:
    """Error of the CVaR at ``level`` (0.95: the mean loss of the worst 5%) of the returns ``values``."""
    return cvar_ses(values, (level,))[0]


def cvar_ses(values: np.ndarray, levels: tuple[float, ...]) -> list[float]:
    """`cvar_se` at each of ``levels``, the losses' quantiles found in one call (one copy and one partition
    of the values; each level's number is the one `cvar_se` gives alone)."""
    a = _paths(values)
    if a.shape[0] < 2:
        return [float("nan")] * len(levels)
    losses = -a
    out = []
    for level, var in zip(levels, np.quantile(losses.ravel(), list(levels))):
        h = var + np.maximum(losses - var, 0.0) / (1 - level)
        out.append(_cluster_se(h.mean(axis=1)))
    return out
