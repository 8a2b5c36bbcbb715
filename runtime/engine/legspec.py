"""What the replay trades each month: option legs whose strikes are re-resolved from the
month's simulated price and signal levels.

**Levels.** The spot team gives a support and a resistance each month; the simulator
draws them around the month's opening futures price F₀::

    support    = F₀ · (1 − w_s)        resistance = F₀ · (1 + w_r)

with ``w_s``, ``w_r`` the widths (by default those of the file: (price − support)/price
and (resistance − price)/price, else 5%). (The ``sr_shift`` scenario leaves the levels
as given and moves the market away from them, `opl.simulation.scenarios`.) A leg's
strike spec (``support-100``, ``resistance+2%``, ``ATM+5%``, ``delta(0.25)``, or an
absolute price) is resolved against these exactly as `opl.lang.estimates.Market.strike`
resolves it against the file's levels — vectorised over paths — then moved to the
nearest listed strike of the rule pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtri

__all__ = ["StrikeRule", "OptionLeg", "Levels"]


@dataclass(frozen=True, kw_only=True)
class StrikeRule:
    """A strike spec in runtime form: ``kind`` absolute, relative (to an anchor) or delta."""

    kind: Literal["absolute", "relative", "delta"]
    value: float = 0.0  # absolute strike, offset (price units or percent) or |delta|
    anchor: Literal["price", "support", "resistance"] = "price"
    percent: bool = False

    def resolve(self, *, is_call: bool, price: np.ndarray, support: np.ndarray, resistance: np.ndarray,
                iv: np.ndarray, t: float, rate: float) -> np.ndarray:
        """Strikes (before the exchange grid) for every path."""
        price = np.asarray(price, dtype=float)
        if self.kind == "absolute":
            return np.full(price.shape, self.value)
        if self.kind == "relative":
            anchor = {"price": price, "support": support, "resistance": resistance}[self.anchor]
            return anchor * (1 + self.value / 100) if self.percent else anchor + self.value
        # Black-76 delta e^{-rT}N(±d1) inverted in closed form (estimates.strike_for_delta bisects it).
        sd = np.asarray(iv) * np.sqrt(t)
        d1 = ndtri(np.clip(self.value * np.exp(rate * t), 1e-12, 1 - 1e-12))
        d1 = d1 if is_call else -d1
        return price * np.exp(-d1 * sd + 0.5 * sd * sd)


@dataclass(frozen=True, kw_only=True)
class OptionLeg:
    """One option leg per unit of position size: ``side`` ±1, ``qty`` lots at size 1.

    ``extra_days``: how much later than the month's (the shortest tenor's) expiry the leg
    expires — a calendar spread's far leg (`opl.runtime.engine.replay`: sold back at market when the
    month ends, opened afresh with the next).
    """

    is_call: bool
    side: int
    qty: int
    strike: StrikeRule
    american: bool
    extra_days: float = 0.0

    @property
    def signed_qty(self) -> int:
        return self.side * self.qty

    @property
    def phi(self) -> float:
        return 1.0 if self.is_call else -1.0


@dataclass(frozen=True, kw_only=True)
class Levels:
    """Support/resistance widths around the month's open (module docstring)."""

    support_width: float = 0.05
    resistance_width: float = 0.05

    def of(self, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return price * (1.0 - self.support_width), price * (1.0 + self.resistance_width)
