"""Guard rules in the replay (spec §3.3, grammar/README.md §7): ``avoid_leg_if`` and ``warn_if``.

The checker evaluates the rules once on the file's inputs (W401, W402); the replay
evaluates them on every path, leg by leg, with the leg-level variables of
`opl.runtime.engine.triggers` (``days_left`` to the leg's expiry, ``strike_offset``,
``moneyness``, ``leg_pnl``, ``qty``) and the position's (``pnl``, ``delta``, ``iv``).
The two default rules of §3.3 are always on, with the file's own rules after them:

* **``avoid_leg_if`` (W401)** — checked for every option series about to be opened: the
  file's legs at the month's open, and the series an adjustment would open
  (`opl.runtime.engine.adjust`). Where the rule holds the leg is not opened on that path (the rest
  of the position is); each blocked leg is counted (``avoided_legs``).
* **``warn_if`` (W402)** — checked at every step on the legs held. An *alert* is counted
  when a rule starts to hold on a path (any leg; it held not at the previous step), so a
  condition that stays true is one alert. Alerts have no trading effect: they are what the
  desk would have been told (``alerts``).

The built-in ``exit_triggers += days_left < 2d`` is the replay's ``guard_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from opl.runtime.engine.book import Book
from opl.runtime.engine.triggers import LegState, TriggerState

__all__ = ["GuardRule", "leg_states", "blocked", "warned", "never_blocks", "warns_nowhere"]


@dataclass(frozen=True, kw_only=True)
class GuardRule:
    """A rule compiled leg by leg (`opl.runtime.engine.triggers.compile_condition` of its runtime form with ``per_leg=True``)."""

    kind: Literal["avoid_leg_if", "warn_if"]
    text: str
    test: Callable[[TriggerState], np.ndarray]


def leg_states(book: Book, price: np.ndarray, days_left: float) -> list[LegState]:
    """The leg-level variables of every slot of ``book`` at the future's ``price`` (computed when read, where
    the leg is held too; an empty slot's leg is held nowhere)."""
    return [_SlotLeg(s, price, days_left) if s.held() else
            LegState(days_left=days_left + s.extra_days, lots=s.qty, held=False, strike=s.strike, price=price,
                     is_call=s.is_call, value=s.value, entry=s.entry)
            for s in book.slots]


class _SlotLeg(LegState):
    """A held slot's `LegState` whose ``held`` mask (its lots ≠ 0) is computed when first read: a rule that a
    scalar decides (a leg's days_left, most steps) never reads it."""

    def __init__(self, slot, price: np.ndarray, days_left: float):
        self._mask = None
        super().__init__(days_left=days_left + slot.extra_days, lots=slot.qty, held=None, strike=slot.strike,
                         price=price, is_call=slot.is_call, value=slot.value, entry=slot.entry)

    @property
    def held(self) -> np.ndarray:
        if self._mask is None:
            self._mask = self.lots != 0  # the slot's lots when the leg was made
        return self._mask

    @held.setter
    def held(self, given) -> None:  # LegState's constructor sets it: here it is the slot's own, when read
        pass


def _test(rule: GuardRule, state: TriggerState, leg: LegState) -> np.ndarray:
    if type(leg) is not _SlotLeg and leg.held is False:  # (a held slot's mask is made only when a rule needs it)
        return np.zeros((), dtype=bool)
    state.leg = leg
    try:
        verdict = np.asarray(rule.test(state), dtype=bool)
    finally:
        state.leg = None
    if verdict.ndim == 0 and not verdict:
        return verdict  # false on every path (a leg-level days_left decides so, most steps): no array to make
    return verdict & leg.held


def blocked(rules: tuple[GuardRule, ...], state: TriggerState, legs: list[LegState]) -> list[np.ndarray]:
    """Per leg, where an ``avoid_leg_if`` rule holds (and the leg would hold lots)."""
    shape = state.shape
    out = []
    for leg in legs:
        hit = np.zeros(shape, dtype=bool)
        for rule in rules:
            if rule.kind == "avoid_leg_if":
                hit = hit | _test(rule, state, leg)
        out.append(hit)
    return out


def warned(rules: tuple[GuardRule, ...], state: TriggerState, legs: list[LegState]) -> np.ndarray | None:
    """Where a ``warn_if`` rule holds for any held leg; None where every verdict was a 0-d False (no rule holds
    on any path: most steps, where a leg's days_left decides)."""
    out = None
    for rule in rules:
        if rule.kind != "warn_if":
            continue
        for leg in legs:
            hit = _test(rule, state, leg)
            if hit.ndim or hit:  # a 0-d False (most legs, most steps) adds nothing: no whole-array `or`
                out = (np.zeros(state.shape, dtype=bool) if out is None else out) | hit
    return out


def never_blocks(rules: tuple[GuardRule, ...], state: TriggerState, days_left: float) -> bool:
    """Whether no ``avoid_leg_if`` rule can hold for any series ``days_left`` days from expiry at this state.

    Each rule is asked about a probe leg whose lots, strike and price are arrays: a verdict that is a 0-d
    False read none of them — only numbers the same for every path and series (the leg's ``days_left``
    decides so, most steps) — and so is False for every series the step could open. Any other verdict
    (an array, or True) answers False: the caller asks the rule about each series (`blocked`).
    """
    probe = LegState(days_left=days_left, lots=np.ones(state.shape), held=True, strike=state.price,
                     price=state.price, is_call=True)
    for rule in rules:
        if rule.kind != "avoid_leg_if":
            continue
        state.leg = probe
        try:
            verdict = np.asarray(rule.test(state), dtype=bool)
        finally:
            state.leg = None
        if verdict.ndim != 0 or verdict:
            return False
    return True


class _Undecided(Exception):
    """A probe was asked for more than the days to expiry: only a whole state decides the rule."""


class _Probe:
    """What `warns_nowhere` gives a rule: the step's ``days_left`` and, as ``leg``, a held leg's; any other read
    raises `_Undecided` (a path's variable, a measure, the position)."""

    __slots__ = ("days_left", "leg", "held")

    def __init__(self, days_left, held=None):
        self.days_left, self.leg, self.held = days_left, None, held

    def __getattr__(self, name: str):
        raise _Undecided(name)


def warns_nowhere(rules: tuple[GuardRule, ...], days_left, extra_days) -> bool:
    """Whether no ``warn_if`` rule holds on any path for legs held ``extra_days`` (each) after the month's expiry, at
    a step ``days_left`` days from it: each rule asked about each leg on a probe holding the days only. A verdict
    that is a 0-d False read nothing else — numbers the same for every path — and is `warned`'s on every path
    (most steps: a leg's days_left decides the default rule). Any other verdict, or a read of anything else,
    answers False: the caller asks `warned` with the whole state."""
    state = _Probe(days_left)
    for rule in rules:
        if rule.kind != "warn_if":
            continue
        for extra in extra_days:
            state.leg = _Probe(days_left + extra, held=True)  # `leg_states`' days_left of the leg, the same number
            try:
                verdict = np.asarray(rule.test(state), dtype=bool)
            except Exception:  # _Undecided, or a probe's number where the rule wanted an array: not decided here
                return False
            if verdict.ndim != 0 or verdict:
                return False
    return True
