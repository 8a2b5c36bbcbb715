"""Exercise, assignment and what happens to the futures they create (grammar/README.md §9.2).

**Early assignment.** A holder exercises an American option when it lies in BAW's
exercise region (`opl.runtime.engine.marking`: the future beyond the critical price S*(T, σ) of
the option's own implied volatility), where the option is worth exactly its intrinsic
value. A short leg in that region is assigned at that step; European legs never are.

**Expiry.** At expiry in-the-money options are exercised automatically (the rule pack's
``auto_exercise_itm``; ``auto_exercise_threshold`` is the minimum in-the-money amount),
out-of-the-money ones lapse.

**Into futures.** CZCE options exercise into futures at the strike: ``q`` option lots
(signed, short < 0) of type φ (+1 call, −1 put) become ``q·φ`` futures lots. The option
leaves the books at its mark and the futures enter at F − K, so the holder's forfeited
time value is booked to ``assignment``. Then the policy:

``hedge_and_close``  the futures are closed at the next step at market, with fees and
                     slippage;
``take_delivery``    long futures (from an assigned put) become goods: held for ``hold``
                     days, marked to the future, paying ``storage`` per unit per day and
                     ``funding`` per year on their value, then sold at the future + ``basis``;
                     they carry the futures margin while held. Short futures (an assigned
                     call) would need goods the simulator does not track, so they are
                     closed at the next step as under ``hedge_and_close``.
Futures from exercising a *long* option are closed at the next step.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["AssignmentSpec", "Inventory"]


@dataclass(frozen=True, kw_only=True)
class AssignmentSpec:
    action: Literal["hedge_and_close", "take_delivery"] = "hedge_and_close"
    storage_per_day: float = 0.0
    funding_rate: float = 0.0
    basis: float = 0.0
    hold_days: float = 30.0


class Inventory:
    """Delivered goods: one slot per (month, leg) with its lots and release step.

    The running total and, per pending release step, the positions (flat indices into
    (variants, paths)) stored for release then, slot by slot, are kept up to date, so the
    replay's per-step questions ("how much is held?", "is anything due now?") cost nothing
    on the many steps where the answer is "nothing", and storing, releasing or liquidating
    goods touches only the few positions assignments hit, not every slot and path.

    Parameters
    ----------
    shape
        (variants, paths).
    slots
        months × legs.
    """

    def __init__(self, shape: tuple[int, int], slots: int):
        self.slots = max(slots, 1)
        # A slot's lots and release steps (flat over (variants, paths)), made when goods are first stored in it
        # and dropped once none of its positions is due any more: a run's months × legs dense blocks would take
        # 16 bytes per (slot, variant, path) — 370 MB in a 16-size, 30,000-path pass — for the few slots that
        # hold goods at any time.
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._total = np.zeros(shape)
        self._stocked = 0  # positions of ``_total`` not 0 (`holds`), kept by `_moved` from the positions it touches
        self._nothing = np.zeros(shape)  # what a step with nothing due releases, shared and read-only
        self._nothing.flags.writeable = False
        self._due: dict[int, dict[int, list[np.ndarray]]] = {}  # release step -> slot -> positions stored

    def blocks(self) -> int:
        """How many slots hold goods now (each a (variants, paths) block of lots and release steps)."""
        return len(self._blocks)

    def _block(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """The lots and release steps of ``slot`` (made empty when it holds nothing)."""
        if not 0 <= slot < self.slots:
            raise IndexError(f"inventory slot {slot} outside 0..{self.slots - 1}")
        block = self._blocks.get(slot)
        if block is None:
            n = self._total.size
            block = self._blocks[slot] = (np.zeros(n), np.full(n, -1, dtype=np.int64))
        return block

    def total(self) -> np.ndarray:
        return self._total

    def holds(self) -> bool:
        """Whether goods are held anywhere (`total` not all 0), known without a scan of it."""
        return self._stocked > 0

    def due(self, step: int) -> bool:
        """Whether goods were stored for release at ``step`` (else `take` at it returns zeros)."""
        return step in self._due

    def add(self, slot: int, lots: np.ndarray, release_step: int, within: np.ndarray | None = None) -> np.ndarray:
        """Store long futures lots (only where positive) in ``slot`` until ``release_step``; returns the positions
        stored (flat indices into (variants, paths): where ``lots`` > 0). ``within``: flags (variants, paths) outside
        which ``lots`` are known not to be positive (an exercise's hits), so that only those positions are read."""
        lots = np.broadcast_to(lots, self._total.shape).reshape(-1)
        if within is None or np.shape(within) != self._total.shape:
            at = np.flatnonzero(lots > 0)
        else:
            at = np.flatnonzero(within)
            at = at[lots[at] > 0]
        if at.size == 0:
            return at
        held, release = self._block(slot)
        new = lots[at]
        # Goods replace what the slot held there: the total moves by the difference (lots are whole).
        self._moved(at, new - held[at])
        held[at] = new
        release[at] = release_step
        self._due.setdefault(release_step, {}).setdefault(slot, []).append(at)
        return at

    def take(self, *, step: int | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Remove and return the lots released at ``step`` (or every lot where ``mask``).

        Nothing due returns a shared read-only array of zeros.
        """
        if (step is not None and step not in self._due) or not self._due:
            return self._nothing
        return self._release(step) if step is not None else self._liquidate(mask)

    def _release(self, step: int) -> np.ndarray:
        """The goods due at ``step``, read at the positions stored for it (a later store or a
        liquidation may have moved or emptied some of them)."""
        due = self._due.pop(step)
        out = self._empty(due, lambda held, release, at: release[at] == step)
        pending = {slot for slots in self._due.values() for slot in slots}
        for slot in set(due) - pending:  # no position of it is due any more: it holds nothing
            if not self._blocks[slot][0].any():
                del self._blocks[slot]
        return out

    def _liquidate(self, mask: np.ndarray) -> np.ndarray:
        """Every lot held where ``mask``: the positions stored for any release step still pending."""
        where = np.broadcast_to(mask, self._total.shape).reshape(-1)
        by_slot: dict[int, list[np.ndarray]] = {}
        for slots in self._due.values():
            for slot, stored in slots.items():
                by_slot.setdefault(slot, []).extend(stored)
        return self._empty(by_slot, lambda held, release, at: where[at])

    def _empty(self, by_slot: dict[int, list[np.ndarray]], chosen) -> np.ndarray:
        """Remove and return the goods at the stored positions of each slot where ``chosen(held, release, at)``
        (slots in order, as the total sums them)."""
        out = np.zeros(self._total.shape)
        flat_out, touched = out.reshape(-1), []
        for slot in sorted(by_slot):
            held, release = self._blocks[slot]
            at = np.unique(np.concatenate(by_slot[slot]))
            at = at[chosen(held, release, at) & (held[at] > 0)]
            flat_out[at] += held[at]
            held[at], release[at] = 0.0, -1
            touched.append(at)
        at = np.unique(np.concatenate(touched))
        self._moved(at, -flat_out[at])
        return out

    def _moved(self, at: np.ndarray, change: np.ndarray) -> None:
        # What `total` returned earlier stays as it was: the total is changed in place only where nothing else
        # refers to it (this attribute and getrefcount's argument; a view counts, as its base), else a new array.
        if sys.getrefcount(self._total) > 2:
            self._total = self._total.copy()
        total = self._total
        flat = total.reshape(-1)
        before = np.count_nonzero(flat[at])
        flat[at] += change
        self._stocked += np.count_nonzero(flat[at]) - before
