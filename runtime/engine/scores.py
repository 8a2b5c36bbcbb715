"""Built-in score functions of ``exit_mode machine_decide(score_fn)`` (grammar/README.md §6).

Under ``machine_decide`` the replay closes a position at the step where the score of its
state reaches the function's threshold (``--set exit.score_threshold=...`` replaces it),
instead of on the first (``first_hit``) or on all (``all_required``) exit triggers. The
``days_left < 2d`` guard, the ``stop_loss`` and margin calls still apply. Each score is a
vectorised function of the step's `TriggerState` and of the exit triggers' flags, with:

* P — the month's P&L as a share of the premium received at the open (``pnl_percent`` / 100;
  negative is a loss);
* G — |net gamma| in futures lots of delta per 1% move of the future, per option lot (N,
  the short option lots held; all option lots when none is short);
* T — the share of the month elapsed, 1 − days_left / tenor.

==================  =====================================================  =========
score_fn            score                                                  threshold
==================  =====================================================  =========
``trigger_vote``    share of the exit triggers that hold (a majority vote  0.5
                    between ``first_hit`` and ``all_required``)
``profit_capture``  P / (0.5 + 0.5·T): take the profit once half the       1
                    premium is earned early in the month, all of it at
                    the end
``pnl_greeks_time`` 2·max(−P, 0) + 4·G + max(P, 0)·(1 + T): a loss of      1
                    half the premium, gamma of 0.25 lot per 1% per lot,
                    a profit of the whole premium at the open and of half
                    of it at expiry, or a blend of them
==================  =====================================================  =========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from opl.runtime.engine.triggers import TriggerState

__all__ = ["ScoreFunction", "SCORES", "score_function"]

Flags = list[np.ndarray]


@dataclass(frozen=True)
class ScoreFunction:
    """A built-in score: ``score(state, flags)`` and the ``threshold`` at which it closes."""

    name: str
    doc: str
    threshold: float
    score: Callable[[TriggerState, Flags], np.ndarray]
    needs_gamma: bool = False


def _pnl(s: TriggerState) -> np.ndarray:
    return np.asarray(s.measured("pnl_percent")) / 100.0


def _elapsed(s: TriggerState) -> float:
    return min(max(1.0 - float(s.days_left) / s.tenor_days, 0.0), 1.0) if s.tenor_days > 0 else 1.0


def _gamma(s: TriggerState) -> np.ndarray:
    return np.abs(s._need("gamma_lots")()) / np.maximum(s._need("lots")(), 1.0)


def _vote(s: TriggerState, flags: Flags) -> np.ndarray:
    if not flags:
        return np.zeros(s.shape)
    return np.mean(np.stack([np.broadcast_to(f, s.shape) for f in flags]), axis=0)


def _profit_capture(s: TriggerState, flags: Flags) -> np.ndarray:
    return _pnl(s) / (0.5 + 0.5 * _elapsed(s))


def _pnl_greeks_time(s: TriggerState, flags: Flags) -> np.ndarray:
    p = _pnl(s)
    return 2.0 * np.maximum(-p, 0.0) + 4.0 * _gamma(s) + np.maximum(p, 0.0) * (1.0 + _elapsed(s))


SCORES: dict[str, ScoreFunction] = {f.name: f for f in (
    ScoreFunction("trigger_vote", "share of the exit triggers that hold", 0.5, _vote),
    ScoreFunction("profit_capture", "P / (0.5 + 0.5 T): premium captured against time elapsed", 1.0,
                  _profit_capture),
    ScoreFunction("pnl_greeks_time", "2 max(-P, 0) + 4 G + max(P, 0)(1 + T): loss, gamma and profit with time",
                  1.0, _pnl_greeks_time, needs_gamma=True),
)}


def score_function(name: str) -> ScoreFunction:
    """The registry's entry; `KeyError` naming the known ones otherwise."""
    try:
        return SCORES[name]
    except KeyError:
        raise KeyError(f"unknown score function `{name}` (known: {', '.join(SCORES)})") from None
