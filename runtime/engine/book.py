"""What a simulated month holds: option *slots* and the strategy's own futures, over variants × paths.

A slot is one option series position — a type, a style, a strike per path and signed lots
per variant × path — with its current marks. The month's file legs are the **base slots**:
their strikes are the same for every variant of a path, so their marks come from the
month's precomputed tables (``MonthMarks``: (paths, steps + 1) per leg). Legs the
adjustment module moves or adds (`opl.runtime.engine.adjust`) live in **dynamic slots**: a
strike per variant × path, marked at each step only where lots are held, with an expiry
``extra_days`` after the month's (0: the month's own expiry).

Each *group* is one logical leg: a file leg is its base slot plus the dynamic slots it is
rolled into; an ``add_leg``/``replace_leg`` leg or the ``hedge_gamma`` options are a
group of one dynamic slot. On any path a group holds lots in at most one of its slots.

Futures legs of the file are kept per leg (``futures``; ``remove_leg`` and ``scale_qty``
act on one of them); ``static`` is their sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from opl.runtime.engine.legspec import OptionLeg

__all__ = ["Slot", "Group", "Book", "flat_paths", "put_paths"]

_MARKS = ("strike", "value", "delta", "gamma", "exercise", "entry")  # a slot's per-path attributes besides qty


def flat_paths(shape: tuple[int, int], cols: np.ndarray) -> np.ndarray:
    """The flat indices of the paths ``cols`` of a (variants, paths) array, variant by variant (`put_paths`)."""
    return (np.arange(shape[0])[:, None] * shape[1] + cols).reshape(-1)


def put_paths(full: np.ndarray, cols: np.ndarray, flat: np.ndarray, part: np.ndarray) -> None:
    """``full[:, cols] = part`` for a (variants, paths) array: by its flat indices ``flat`` (`flat_paths`) where
    both are C-ordered and whole — one pass, where numpy's ``[:, cols]`` assignment goes column by column and
    costs twice as much on a round's few paths —, else as written."""
    if full.flags.c_contiguous and part.shape == (full.shape[0], cols.size) and part.flags.c_contiguous:
        full.reshape(-1)[flat] = part.reshape(-1)
    else:
        full[:, cols] = part


def _paths(x, cols):
    """A slot attribute on the paths ``cols``: per (variant, path), per path, or one number for all."""
    if not isinstance(x, np.ndarray):  # a number (checked first: an adjustment round takes ~35 of these)
        return x
    if x.ndim == 0:
        return x
    # take, not x[:, cols]: that is Fortran-ordered, and every kernel given it would first copy it
    return x.take(cols) if x.ndim == 1 else x.take(cols, axis=1)


class Slot:
    """One option series position (module docstring); marks broadcast to (variants, paths).

    Whether the slot holds lots anywhere is kept with its ``qty`` (set on assignment), so
    the many per-step sums over the book skip empty slots for free.
    """

    def __init__(self, *, is_call: bool, american: bool, qty: np.ndarray, strike, base: int | None = None,
                 extra_days: float = 0.0, group: int = 0, held: bool | None = None):
        self.is_call, self.american, self.base, self.extra_days, self.group = is_call, american, base, extra_days, group
        self.strike = strike
        if held is None:
            self.qty = qty
        else:  # known to the caller (lots of zeros: a new dynamic slot), not found by a scan of ``qty``
            self._qty, self._held = qty, held
        self.value: np.ndarray | float = 0.0
        self.delta: np.ndarray | float = 0.0
        self.gamma: np.ndarray | float = 0.0
        self.exercise: np.ndarray | bool = False
        self.entry: np.ndarray | float = 0.0  # mark per unit when the lots were opened (leg_pnl)

    @property
    def qty(self) -> np.ndarray:
        return self._qty

    @qty.setter
    def qty(self, value: np.ndarray) -> None:
        self._qty = value
        self._held = bool(value.any() if isinstance(value, np.ndarray) else np.any(value))

    @property
    def phi(self) -> float:
        return 1.0 if self.is_call else -1.0

    @property
    def dynamic(self) -> bool:
        return self.base is None

    def held(self) -> bool:
        return self._held


class _CutSlot(Slot):
    """A slot of `Book.columns`: its lots cut from the whole book's slot at once, each mark when first read.

    A round reads some of a slot's marks only (the empty slots' hardly any), and cutting every mark of
    every slot cost more than the round's trades. ``cut`` holds the marks as cut, so `Book.put_columns`
    writes back only those set since.
    """

    def __init__(self, whole: Slot, cols: np.ndarray):
        self.is_call, self.american, self.base = whole.is_call, whole.american, whole.base
        self.extra_days, self.group = whole.extra_days, whole.group
        self._whole, self._cols, self.cut = whole, cols, {}
        self.qty = whole.qty.take(cols, axis=1)
        self.cut_qty = self.qty

    def __getattr__(self, name: str):
        # Called only for an attribute not set: a mark read here for the first time.
        if name not in _MARKS:
            raise AttributeError(name)
        x = self.cut[name] = self.__dict__[name] = _paths(getattr(self._whole, name), self._cols)
        return x


@dataclass(eq=False)
class Group:
    """A logical leg: its rule (for rolls) and its slots (indices into `Book.slots`)."""

    rule: OptionLeg
    slots: list[int] = field(default_factory=list)
    file_index: int | None = None  # the leg's number - 1 in the file's normalised order


class Book:
    """The month's positions (module docstring).

    Parameters
    ----------
    shape
        (variants, paths).
    """

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.slots: list[Slot] = []
        self.groups: list[Group] = []
        self.futures: list[np.ndarray] = []
        self.futures_index: list[int] = []  # file leg index of each futures leg

    # -- construction -------------------------------------------------------------------------
    def add_group(self, rule: OptionLeg, *, file_index: int | None = None) -> int:
        self.groups.append(Group(rule=rule, file_index=file_index))
        return len(self.groups) - 1

    def add_slot(self, group: int, *, is_call: bool, american: bool, strike, base: int | None = None,
                 extra_days: float = 0.0, qty: np.ndarray | None = None) -> int:
        slot = Slot(is_call=is_call, american=american, qty=np.zeros(self.shape) if qty is None else qty,
                    strike=strike if strike is not None else np.zeros(self.shape), base=base,
                    extra_days=extra_days, group=group, held=False if qty is None else None)
        if base is None:
            slot.value, slot.delta, slot.gamma = np.zeros(self.shape), np.zeros(self.shape), np.zeros(self.shape)
            slot.exercise, slot.entry = np.zeros(self.shape, dtype=bool), np.zeros(self.shape)
        self.slots.append(slot)
        self.groups[group].slots.append(len(self.slots) - 1)
        return len(self.slots) - 1

    # -- questions ----------------------------------------------------------------------------
    @property
    def static(self) -> np.ndarray:
        """The strategy's own futures lots (signed)."""
        if not self.futures:
            return np.zeros(self.shape)
        return sum(self.futures[1:], self.futures[0])

    def held(self) -> list[Slot]:
        """Slots holding lots somewhere (the others cost nothing to skip)."""
        return [s for s in self.slots if s._held]  # (`Slot.held` read directly: the step asks this a dozen times)

    def option_delta(self, lots_per_option: float) -> np.ndarray:
        """Net delta of the options in futures lots."""
        return sum((s.qty * s.delta for s in self.slots if s.held()), np.zeros(self.shape)) * lots_per_option

    def option_value(self, multiplier: float) -> np.ndarray:
        """Market value of the options held at their marks, in currency (long positive, short negative)."""
        return sum((s.qty * s.value for s in self.slots if s.held()), np.zeros(self.shape)) * multiplier

    def short_lots(self) -> np.ndarray:
        """N: the short option lots held."""
        return sum((np.maximum(-s.qty, 0.0) for s in self.slots if s.held()), np.zeros(self.shape))

    def option_lots(self) -> np.ndarray:
        return sum((np.abs(s.qty) for s in self.slots if s.held()), np.zeros(self.shape))

    def gamma(self, lots_per_option: float) -> np.ndarray:
        """Net gamma in futures lots of delta per unit of the future's price."""
        return sum((s.qty * s.gamma for s in self.slots if s.held()), np.zeros(self.shape)) * lots_per_option

    def any_open(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=bool)
        for s in self.slots:
            if s.held():
                out |= s.qty != 0
        for fut in self.futures:
            out |= fut != 0
        return out

    # -- a subset of paths --------------------------------------------------------------------------
    def columns(self, cols: np.ndarray) -> "Book":
        """The book on the paths ``cols`` only (copies, sharing the groups), for work that touches few paths;
        `put_columns` writes it back. A slot's marks are cut when first read (`_CutSlot`)."""
        sub = Book((self.shape[0], len(cols)))
        sub.groups, sub.futures_index = self.groups, self.futures_index
        sub.futures = [fut.take(cols, axis=1) for fut in self.futures]
        sub.slots = [_CutSlot(s, cols) for s in self.slots]
        return sub

    def put_columns(self, sub: "Book", cols: np.ndarray) -> None:
        """Write back what changed in ``sub`` (a `columns` copy of the paths ``cols``): into the book's own
        (variants, paths) arrays in place, so the cost is that of the paths written; a mark shared with
        the month's tables (a base slot's) or broadcast is copied first."""
        flat = flat_paths(self.shape, cols)
        for s, t in zip(self.slots, sub.slots):
            if t._qty is not t.cut_qty:
                held = s._held
                s._qty = self._written(s._qty, t._qty, cols, flat)
                # Lots written here, or held before on other paths: only then is the whole array looked at.
                s._held = t._held or (held and bool(s._qty.any()))
            marks, cut = t.__dict__, t.cut
            for name in _MARKS:
                now = marks.get(name, t)  # the slot itself: a mark never read nor set there
                if now is not t and now is not cut.get(name):
                    setattr(s, name, self._written(getattr(s, name), now, cols, flat))
            # Written back: the cut no longer reads the whole slot. (A round's objects are freed by the cycle
            # collector, late; holding the whole slots would keep every past month's book alive until then.)
            t._whole = None
        for fut, part in zip(self.futures, sub.futures):
            put_paths(fut, cols, flat, part)

    def _written(self, full, part: np.ndarray, cols: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """``full`` with ``part`` at the paths ``cols``: in place when ``full`` is an array the book owns
        (every slot's (variants, paths) arrays are its own: built by ``np.where``, ``np.zeros`` or a copy)."""
        part = part if isinstance(part, np.ndarray) else np.asarray(part)
        owned = isinstance(full, np.ndarray) and full.shape == self.shape and full.dtype == part.dtype
        if owned:
            flags = full.flags
            owned = flags.owndata and flags.writeable
        if not owned:
            full = np.array(np.broadcast_to(full, self.shape), dtype=part.dtype)
        put_paths(full, cols, flat, part)
        return full

    def group_qty(self, group: int) -> np.ndarray:
        """Lots of a logical leg wherever they are held (at most one slot per path holds them)."""
        return sum((self.slots[i].qty for i in self.groups[group].slots), np.zeros(self.shape))
