"""The hedge rule (grammar/README.md §9.1): futures traded to a target net delta.

Let N be the position size in option lots (the sum of the short options' open lots) and
d ∈ {+1, −1, 0} the month's direction signal (``along direction``; ``long`` is +1 and
``short`` −1 whatever the signal). The target net delta is ``keep × d × N`` lots. Every
``every`` steps the hedge compares the position's net delta in lots — options' Δ × lots
(× multiplier / contract size) plus the strategy's own futures plus the hedge futures —
with the target and, when they differ by more than ``band × N``, trades whole futures lots
so the net delta is as close to the target as whole lots allow (the new hedge is
round(target − other delta)). Futures from an assignment waiting to be closed, and goods
held under ``take_delivery``, are outside the hedge: the first are gone at the next step,
the second are the inventory the policy chose to hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["HedgeSpec", "direction", "rebalance"]


@dataclass(frozen=True, kw_only=True)
class HedgeSpec:
    """``every`` in steps (≥ 1), ``band`` a fraction of N, ``keep`` the kept exposure."""

    every: int = 1
    band: float = 0.0
    keep: float = 0.0
    along: Literal["direction", "long", "short", "none"] = "none"


def direction(spec: HedgeSpec, signal: np.ndarray) -> np.ndarray:
    """d of the module docstring for every path."""
    if spec.along == "direction":
        return signal.astype(float)
    if spec.along in ("long", "short"):
        return np.full(signal.shape, 1.0 if spec.along == "long" else -1.0)
    return np.zeros(signal.shape)


def rebalance(*, spec: HedgeSpec, other_delta: np.ndarray, hedge: np.ndarray, size: np.ndarray,
              d: np.ndarray, active: np.ndarray) -> np.ndarray:
    """The hedge's new futures position (lots) for every variant × path.

    Parameters
    ----------
    other_delta
        Net delta in lots of everything but the hedge (options and static futures).
    hedge
        Current hedge futures lots.
    size
        N, the short options' open lots.
    d
        The direction of the kept exposure.
    active
        Where a position is open and this is a rebalancing step.
    """
    target = spec.keep * d * size
    off = np.abs(other_delta + hedge - target) > spec.band * size
    wanted = np.rint(target - other_delta)
    return np.where(active & off, wanted, hedge)
