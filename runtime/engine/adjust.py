"""The adjustment module (grammar/README.md §5): ``adjust_when``, ``adjust_playbook``, ``abort_if``,
vectorised over variants × paths.

**When.** ``adjust_when`` is evaluated on every open position at every step, after the exit
triggers (a position closed this step is not adjusted). A round fires on a path where the
condition **turns true** — it held not at the previous step (the open counts as one) but
holds now — and at least ``cooldown_days`` (5 calendar days by default, ``--set
adjust.cooldown``) after the path's last round this month. So a condition that stays true
fires once, not at every step, and a condition already true at the open waits until it has
been false. At most one round per step.

**Playbook.** The actions run in order on the paths of the round. Before each one,
``abort_if`` is evaluated; where it holds, the action and the rest of the playbook are
skipped on that path and control goes to the exit module: the position is closed at market
(``--set adjust.on_abort=skip`` only skips the rest of the playbook). While ``abort_if``
judges an action, ``additional_margin(%)`` is **the action's extra margin**: the exchange
margin after the action minus before it, as a percent of the margin before it (of the
capital when nothing was required) — ``abort_if additional_margin(%) > 15`` refuses an
action that would raise the requirement by more than 15%. Every other measure reads the
step's state.

**Actions.** Each trades at the step's marks (options marked as in `opl.runtime.engine.marking`,
futures at the step's price) and pays the pack's fees and slippage, booked to the ledger's
``adjustments`` bucket; the options' later marks go to ``premium``, as any leg's. ``leg``
is a leg's number in the file's normalised order (1 = first, as ``opl compile`` lists them).

============================  ===========================================================
``roll_nearest_term()``       every option leg is closed and sold/bought again on the
                              nearest listed expiry — the month's own (the simulator lists
                              one expiry a month and the guard closes before it is near) —
                              with its strike rule re-resolved at the current price, the
                              support and resistance re-centred on it (same widths); a leg
                              whose strike would not change is left alone
``roll(leg, to)``             the leg (every option leg without ``leg``) re-opened, strike
                              re-resolved as above, on the expiry ``to`` after the month's
                              open (default: the next listed expiry, one tenor later)
``roll_tenor(leg, by)``       the leg's expiry becomes the month's expiry + ``by`` days,
                              strike kept (firing again finds it there and does nothing)
``shift_strike(leg, by)``     the leg's strike moved by ``by`` (price, or % of the strike),
                              on the listed grid, same expiry
``scale_qty(leg, factor)``    the leg's lots × factor, rounded to whole lots
``remove_leg(leg)``, ``close(leg)``  the leg closed; ``close()`` closes the whole position
``add_leg(leg)``              the leg opened (× size), its strike resolved at the current
                              price against the month's support and resistance, once a month
``replace_leg(leg, with)``    the leg closed and ``with`` opened as ``add_leg`` does, once
``hedge_gamma(target)``       when the net gamma is short by more than ``target`` futures
                              lots of delta per 1% move per option lot, buys calls at the
                              listed strike nearest above the future, enough whole lots (at
                              most N) to bring it within the target; the bought calls are
                              re-struck there at every later firing that needs more
``delta_neutralise(keep)``    futures traded to the net delta keep·d·N now (band 0)
``hedge(greek)``              ``delta``: the hedge rule's trade now (its ``keep``, band 0);
                              ``gamma``: ``hedge_gamma(0.10)``
============================  ===========================================================

Legs of a strategy's futures: ``scale_qty``, ``remove_leg``/``close`` and ``add_leg``
apply; ``shift_strike``, ``roll_tenor`` and the rolls leave them alone (rc6 §4.0). An
option leg whose guard ``avoid_leg_if`` holds for the new series is not opened: the move is
skipped on that path (counted with the avoided legs). Series expiring after the month's
expiry are closed at market when the month ends. Counts per action (done, aborted) and per
round go to the ledger's counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from opl.runtime.engine import kernels
from opl.runtime.engine import conditionspec as spec
from opl.runtime.engine.book import Book
from opl.runtime.engine.guards import never_blocks
from opl.runtime.engine.legspec import OptionLeg
from opl.runtime.engine.triggers import COMPARISONS, LegState, TriggerState

__all__ = ["Action", "AdjustSpec", "AdjustEngine", "Desk", "ACTION_KINDS"]

ActionKind = Literal["roll_nearest_term", "roll", "roll_tenor", "shift_strike", "scale_qty", "remove_leg", "close",
                     "add_leg", "replace_leg", "hedge_gamma", "delta_neutralise", "hedge"]
ACTION_KINDS = ("roll_nearest_term", "roll", "roll_tenor", "shift_strike", "scale_qty", "remove_leg", "close",
                "add_leg", "replace_leg", "hedge_gamma", "delta_neutralise", "hedge")
Compiled = Callable[[TriggerState], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class Action:
    """One playbook entry in runtime form (module docstring).

    ``leg`` the file index (number − 1) or None; ``amount`` the action's number (target,
    keep, by, factor, or for ``roll`` the days from the month's open); ``percent`` whether
    ``by`` is a percent; ``new_leg``/``new_futures`` the leg ``add_leg``/``replace_leg``
    opens (an option, or signed futures lots per unit of size); ``greek`` for ``hedge``.
    """

    kind: ActionKind
    text: str
    leg: int | None = None
    amount: float | None = None
    percent: bool = False
    new_leg: OptionLeg | None = None
    new_futures: int = 0
    greek: Literal["delta", "gamma"] = "delta"


@dataclass(frozen=True, kw_only=True)
class AdjustSpec:
    """The file's adjustment module in runtime form."""

    when: Compiled
    playbook: tuple[Action, ...]
    abort_if: Compiled | None = None
    cooldown_days: float = 5.0
    on_abort: Literal["exit", "skip"] = "exit"

    @property
    def needs_gamma(self) -> bool:
        return any(a.kind == "hedge_gamma" or (a.kind == "hedge" and a.greek == "gamma") for a in self.playbook)

    def counters(self) -> tuple[str, ...]:
        names = ["adjust_rounds", "adjust_exits"]
        for i in range(len(self.playbook)):
            names += [f"adjust_done_{i}", f"adjust_aborted_{i}"]
        return tuple(names)


@dataclass(eq=False, kw_only=True)
class Desk:
    """The replay at one step, as an adjustment trades it (built by `opl.runtime.engine.replay`).

    ``margin(legs, futures_lots)`` is the exchange requirement of a set of short legs
    ((is_call, strike, premium, lots) tuples; None: the book's) and futures lots (None: the
    book's); ``trade_options``/``trade_futures`` pay the costs of lots traded into the
    ``adjustments`` bucket; ``close_all(mask)`` closes everything; ``state()`` is the step's
    trigger state; ``avoid(legs)`` is where ``avoid_leg_if`` blocks each of the legs.
    """

    book: Book
    hedge: np.ndarray
    mo: object
    j: int
    d: np.ndarray
    sizes: np.ndarray
    lots_per_option: float
    capital: float
    tenor_days: float
    margin: Callable
    trade_options: Callable[[np.ndarray], None]
    trade_futures: Callable[[np.ndarray], None]
    close_all: Callable[[np.ndarray], None]
    state: Callable[[], TriggerState]
    avoid: Callable[[list[LegState]], list[np.ndarray]] | None  # None: no ``avoid_leg_if`` (nothing is blocked)
    count: Callable[[str, np.ndarray], None]
    hedge_keep: float = 0.0
    hedge_along: str = "direction"
    reuse_margin: bool = False  # an action's margin before it is the previous one's after it (the fast engine)
    trade_slot: Callable | None = None  # the fast engine's compiled `_apply` of one slot (kernels.adjust.trade_slot)
    # The fast engine's compiled proposals: ``quotes(is_call, american, extra_days)`` the quote arguments of a
    # series at the step (`opl.runtime.engine.adjustround._quote_inputs`); None: the numpy proposals.
    quotes: Callable | None = None
    guards: tuple = ()  # the strategy's guard rules (`opl.runtime.engine.guards.GuardRule`)


@dataclass(eq=False)
class _Change:
    """A slot's new lots (and new series where ``restruck``) proposed by an action."""

    slot: int
    qty: np.ndarray
    restruck: np.ndarray
    strike: np.ndarray | None = None
    marks: tuple | None = None


@dataclass(eq=False)
class _Plan:
    changes: dict[int, _Change] = field(default_factory=dict)
    hedge: np.ndarray | None = None
    futures: dict[int, np.ndarray] = field(default_factory=dict)
    trades: np.ndarray | None = None  # paths where the action trades
    exit: np.ndarray | None = None  # ``close()``: the whole position
    margins: tuple | None = None  # (paths, margin before, margin after) when ``abort_if`` priced it


class AdjustEngine:
    """Runs an `AdjustSpec` in one chunk's replay: the month's dynamic slots, the edge and cooldown.

    Parameters
    ----------
    spec
        The adjustment module.
    shape
        (variants, paths).
    numbers
        The file index of each of the strategy's option legs (what an action's ``leg`` names).
    """

    def __init__(self, spec: AdjustSpec, shape: tuple[int, int], numbers: tuple[int, ...]):
        self.spec = spec
        self.shape = shape
        self._numbers = dict(enumerate(numbers))
        self.fired = np.zeros(shape, dtype=bool)  # where the last step's round fired (the replay's trace)
        self.fired_paths: np.ndarray | None = None  # the paths where it fired, in order (None: not known)
        self.prev = np.zeros(shape, dtype=bool)
        self.last = np.full(shape, -np.inf)
        self._known = None  # an adjustment round's requirement after its last action (`_margin_before`)
        self._unblocked: dict[tuple, bool] = {}  # `_never_blocked`'s answers by the numbers that decide them
        # ``adjust_when`` as one compiled pass evaluates it (`when_program`), or None.
        self.when_program = kernels.adjust.condition_program(getattr(spec.when, "condition", None))

    # -- the month's slots -------------------------------------------------------------------------
    def extra_slots(self, legs) -> int:
        """Dynamic slots added each month (the replay sizes its inventory with it)."""
        return sum(len(extras) for extras in self._file_extras([leg.extra_days for leg in legs]).values()) + sum(
            1 for a in self.spec.playbook if a.kind in ("add_leg", "replace_leg") and a.new_leg is not None) + (
            1 if self.spec.needs_gamma else 0)

    def _file_extras(self, own: list[float]) -> dict[int, list[float]]:
        """For each base leg (position in the strategy's option legs, ``own`` its expiry after the month's),
        the expiries it can be moved to."""
        extras: dict[int, list[float]] = {i: [] for i in range(len(own))}
        for a in self.spec.playbook:
            for i in extras:
                if not (a.kind == "roll_nearest_term" or a.leg is None or self._numbers.get(i) == a.leg):
                    continue
                # roll_nearest_term: the month's expiry; shift_strike: the leg's own; roll/roll_tenor: theirs.
                wanted = {"roll_nearest_term": 0.0, "shift_strike": own[i], "roll": a.amount,
                          "roll_tenor": a.amount}.get(a.kind)
                if wanted is not None and wanted not in extras[i]:
                    extras[i].append(wanted)
        return extras

    def open_month(self, book: Book) -> None:
        """Add the dynamic slots to a freshly opened book and reset the edge and the cooldown."""
        for i, extras in self._file_extras([group.rule.extra_days for group in book.groups]).items():
            leg = book.groups[i].rule
            for extra in extras:
                book.add_slot(i, is_call=leg.is_call, american=leg.american, strike=None, extra_days=extra)
        self.new_groups: dict[int, int] = {}
        for k, a in enumerate(self.spec.playbook):
            if a.kind in ("add_leg", "replace_leg") and a.new_leg is not None:
                g = book.add_group(a.new_leg)
                book.add_slot(g, is_call=a.new_leg.is_call, american=a.new_leg.american, strike=None,
                              extra_days=a.new_leg.extra_days)
                self.new_groups[k] = g
            elif a.kind in ("add_leg", "replace_leg"):
                book.futures.append(np.zeros(self.shape))
                book.futures_index.append(None)
                self.new_groups[k] = -len(book.futures)  # negative: a futures entry
        self.gamma_group = None
        if self.spec.needs_gamma:
            rule = OptionLeg(is_call=True, side=1, qty=0, strike=_ATM, american=book.slots[0].american
                             if book.slots else True)
            self.gamma_group = book.add_group(rule)
            book.add_slot(self.gamma_group, is_call=True, american=rule.american, strike=None)
        self.prev = np.zeros(self.shape, dtype=bool)
        self.last = np.full(self.shape, -np.inf)

    def start(self, state: TriggerState | None, is_open: np.ndarray, when: np.ndarray | None = None) -> None:
        """The condition at the open (``when``: its verdict, already known; ``state`` is then not read): a round
        needs it to turn true afterwards."""
        self.prev = np.broadcast_to(self.spec.when(state) if when is None else when, self.shape) & is_open

    # -- one step ------------------------------------------------------------------------------------
    def step(self, desk: Desk, is_open: np.ndarray, step_days: float) -> np.ndarray:
        """One round where ``adjust_when`` turns true; returns where the position was closed."""
        fire = self.decide(desk.state(), is_open, desk.j, step_days)
        if not np.any(fire):
            return np.zeros(self.shape, dtype=bool)
        return self.play(desk, fire)

    def decide(self, state: TriggerState | None, is_open: np.ndarray, j: int, step_days: float,
               compiled: bool = False, when: np.ndarray | None = None) -> np.ndarray:
        """Where a round fires at step ``j`` (the condition turned true, the cooldown passed); keeps the edge.
        ``compiled``: in one compiled pass (`opl.runtime.engine.kernels.adjust.decide`), the same decisions.
        ``when``: the condition's verdict, already known (`when_program`'s; ``state`` is then not read)."""
        if when is None:
            when = self.spec.when(state)
        if compiled:
            if not (self.prev.flags.writeable and self.prev.shape == self.shape):
                self.prev = np.array(np.broadcast_to(self.prev, self.shape))  # the kernel keeps it in place
            self.fired, self.fired_paths = kernels.adjust.decide(when, is_open, self.prev, self.last, j, step_days,
                                                                 self.spec.cooldown_days)
            return self.fired
        now = np.logical_and(when, is_open)  # (variants, paths): is_open's shape
        fire = now > self.prev  # turned true: now and not before
        self.prev = now
        if fire.any():
            # The cooldown is looked at only where the condition turned true (a few paths a step).
            where = np.nonzero(fire)
            ok = (j - self.last[where]) * step_days >= self.spec.cooldown_days - 1e-9
            fire[where] = ok
            self.last[where[0][ok], where[1][ok]] = j
        self.fired, self.fired_paths = fire, None
        return fire

    def play(self, desk: Desk, fire: np.ndarray) -> np.ndarray:
        """The playbook on the paths where ``fire`` (shaped as ``desk.book``: the chunk's paths or a subset of
        them — everything here is path by path); returns where the position was closed."""
        closed = np.zeros(desk.book.shape, dtype=bool)
        desk.count("adjust_rounds", fire)
        active = fire.copy()
        self._known = None  # the requirement the last action left, where it was priced (`_margin_before`)
        fresh = desk.state
        for i, action in enumerate(self.spec.playbook):
            if not active.any():
                break
            # One state an action: its guards and its abort check read the step before it trades.
            desk.state = _once(fresh)
            plan = self._propose(action, i, desk, active)
            aborted = self._aborted(desk, plan, active)
            go = active & ~aborted
            self._apply(plan, desk, go)
            self._known = _margins_after(plan, go) if desk.reuse_margin else None
            desk.count(f"adjust_done_{i}", go & plan.trades)
            desk.count(f"adjust_aborted_{i}", aborted)
            if plan.exit is not None and (go & plan.exit).any():
                desk.close_all(go & plan.exit)
                desk.count("adjust_exits", go & plan.exit)
                closed |= go & plan.exit
                go &= ~plan.exit
            if aborted.any() and self.spec.on_abort == "exit":
                desk.close_all(aborted)
                desk.count("adjust_exits", aborted)
                closed |= aborted
            active = go
        desk.state = fresh
        return closed

    def _aborted(self, desk: Desk, plan: _Plan, active: np.ndarray) -> np.ndarray:
        """Where ``abort_if`` refuses the action ``plan`` proposes (its ``additional_margin`` is the action's)."""
        abort_if = self.spec.abort_if
        if abort_if is None:
            return np.zeros(desk.book.shape, dtype=bool)
        bound = _margin_bound(getattr(abort_if, "rule", None))
        if desk.quotes is not None and bound is not None:
            # The rule's own test, op(additional_margin, bound), without the step's state it would not read.
            verdict = COMPARISONS[bound[0]](self._added_margin(desk, plan, active), bound[1])
        else:
            st = desk.state()
            st.added_margin = lambda: self._added_margin(desk, plan, active)
            verdict = abort_if(st)
        return active & np.broadcast_to(verdict, desk.book.shape)

    # -- proposals ------------------------------------------------------------------------------------
    def _groups(self, desk: Desk, leg: int | None) -> list[int]:
        """The option groups an action names (None: every option leg but the gamma hedge)."""
        return self._groups_of(desk.book, leg)

    def _groups_of(self, book: Book, leg: int | None) -> list[int]:
        out = []
        for g, group in enumerate(book.groups):
            if g == self.gamma_group:
                continue
            if leg is None or group.file_index == leg:
                out.append(g)
        return out

    def _futures_entries(self, desk: Desk, leg: int | None) -> list[int]:
        return [i for i, number in enumerate(desk.book.futures_index) if number is not None and number == leg]

    def _propose(self, a: Action, index: int, desk: Desk, active: np.ndarray) -> _Plan:
        """What action ``a`` (the playbook's ``index``-th) would trade on the ``active`` paths."""
        plan = _Plan(trades=np.zeros(desk.book.shape, dtype=bool))
        handler = _PROPOSALS.get(a.kind)
        if handler is None:  # pragma: no cover - ACTION_KINDS and this table are kept in step by a test
            raise ValueError(f"unknown action {a.kind}")
        handler(self, plan, a, index, desk, active)
        return plan

    def _propose_roll(self, plan: _Plan, a: Action, index: int, desk: Desk, active: np.ndarray) -> None:
        """``roll_nearest_term()`` re-centres every leg at the month's tenor; ``roll(leg, +Nd)`` one leg N days out."""
        book, mo, j = desk.book, desk.mo, desk.j
        nearest = a.kind == "roll_nearest_term"
        extra = 0.0 if nearest else a.amount
        for g in self._groups(desk, None if nearest else a.leg):
            strike = mo.strike_for(book.groups[g].rule, j, recentre=True, extra_days=extra)
            target = self._slot(book, g, extra)
            if desk.quotes is None or not self._never_blocked(desk, book.slots[target].extra_days):
                self._move(plan, desk, g, target, strike, active)
            else:
                self._move_compiled(plan, desk, g, target, strike, active)

    def _propose_roll_tenor(self, plan: _Plan, a: Action, index: int, desk: Desk, active: np.ndarray) -> None:
        book = desk.book
        for g in self._groups(desk, a.leg):
            target = self._slot(book, g, a.amount)
            for si in book.groups[g].slots:
                s = book.slots[si]
                if si != target and s.held():
                    self._move(plan, desk, g, target, np.broadcast_to(s.strike, book.shape), active & (s.qty != 0))

    def _propose_shift_strike(self, plan: _Plan, a: Action, index: int, desk: Desk, active: np.ndarray) -> None:
        book, mo = desk.book, desk.mo
        for g in self._groups(desk, a.leg):
            for si in list(book.groups[g].slots):
                s = book.slots[si]
                if not s.held():
                    continue
                k = np.broadcast_to(s.strike, book.shape)
                moved = k * (1.0 + a.amount / 100.0) if a.percent else k + a.amount
                target = si if s.dynamic else self._slot(book, g, s.extra_days)
                self._move(plan, desk, g, target, mo.snap(moved), active & (s.qty != 0))

    def _propose_scale_qty(self, plan: _Plan, a: Action, index: int, desk: Desk, active: np.ndarray) -> None:
        book = desk.book
        for g in self._groups(desk, a.leg):
            for si in book.groups[g].slots:
                s = book.slots[si]
                if s.held():
                    new = np.where(active, np.rint(s.qty * a.amount), s.qty)
                    self._change(plan, si, new, np.zeros(book.shape, dtype=bool))
                    plan.trades |= active & (new != s.qty)
        for fi in self._futures_entries(desk, a.leg):
            fut = book.futures[fi]
            plan.futures[fi] = np.where(active, np.rint(fut * a.amount), fut)
            plan.trades |= active & (plan.futures[fi] != fut)

    def _propose_remove(self, plan: _Plan, a: Action, index: int, desk: Desk, active: np.ndarray) -> None:
        """``remove_leg(N)`` / ``close(N)`` close one leg; ``close()`` exits the whole position."""
        if a.kind == "close" and a.leg is None:
            plan.exit = active & desk.book.any_open()
            plan.trades |= plan.exit
            return
        self._remove(plan, desk, a.leg, active)

    def _propose_add(self, plan: _Plan, a: Action, index: int, desk: Desk, active: np.ndarray) -> None:
        """``add_leg`` opens the new leg where its slot is empty; ``replace_leg`` also closes the old one there."""
        book, mo, j = desk.book, desk.mo, desk.j
        replace = a.kind == "replace_leg"
        target = self.new_groups[index]
        if target < 0:  # a futures leg
            fi = -target - 1
            fresh = active & (book.futures[fi] == 0)
            if replace:
                self._remove(plan, desk, a.leg, fresh)
            plan.futures[fi] = np.where(fresh, a.new_futures * desk.sizes, book.futures[fi])
            plan.trades |= fresh
            return
        slot = book.groups[target].slots[0]
        fresh = active & (book.slots[slot].qty == 0)
        rule = a.new_leg
        strike = np.broadcast_to(mo.strike_for(rule, j, recentre=False, extra_days=rule.extra_days), book.shape)
        lots = rule.signed_qty * desk.sizes * np.ones(book.shape)
        ok = self._allowed(desk, rule.is_call, strike, rule.extra_days, lots, fresh)
        if replace:
            self._remove(plan, desk, a.leg, ok)
        self._open(plan, desk, slot, strike, lots, ok)

    def _propose_hedge(self, plan: _Plan, a: Action, index: int, desk: Desk, active: np.ndarray) -> None:
        """``hedge_gamma`` / ``hedge(gamma)`` buy gamma; ``delta_neutralise`` / ``hedge(delta)`` re-hedge delta."""
        if a.kind == "hedge_gamma" or (a.kind == "hedge" and a.greek == "gamma"):
            self._hedge_gamma(plan, desk, 0.10 if a.amount is None else a.amount, active)
            return
        keep = (a.amount if a.amount is not None else 0.0) if a.kind == "delta_neutralise" else desk.hedge_keep
        plan.hedge = _delta_target(desk, keep, active)
        plan.trades |= active & (plan.hedge != desk.hedge)

    def _slot(self, book: Book, g: int, extra: float) -> int:
        """The group's dynamic slot expiring ``extra`` days after the month (created at the open)."""
        for si in book.groups[g].slots:
            s = book.slots[si]
            if s.dynamic and s.extra_days == extra:
                return si
        raise AssertionError(f"no slot of group {g} at +{extra:g} days")  # pragma: no cover - open_month makes them

    def _change(self, plan: _Plan, si: int, qty: np.ndarray, restruck: np.ndarray, strike=None, marks=None) -> None:
        old = plan.changes.get(si)
        if old is None:
            plan.changes[si] = _Change(si, qty, restruck, strike, marks)
            return
        # A second change of the same slot (a move into a slot also being emptied) wins where it applies.
        where = restruck if strike is not None else (qty != old.qty)
        old.qty = np.where(where, qty, old.qty)
        if strike is not None:
            old.strike = strike if old.strike is None else np.where(restruck, strike, old.strike)
            old.marks = marks if old.marks is None else tuple(np.where(restruck, m, o)
                                                              for m, o in zip(marks, old.marks))
            old.restruck = old.restruck | restruck

    def _move(self, plan: _Plan, desk: Desk, g: int, target: int, strike: np.ndarray, mask: np.ndarray) -> None:
        """Move a group's lots (wherever held) into slot ``target`` at ``strike`` where ``mask``."""
        book = desk.book
        tgt = book.slots[target]
        q = self._current(plan, book, g)
        strike = np.broadcast_to(strike, desk.book.shape)
        # Already there: the lots sit in a series of that strike and expiry (the base slot or a moved one).
        moving = mask & (q != 0)
        for si in book.groups[g].slots:
            s = book.slots[si]
            if s.extra_days == tgt.extra_days and self._holds(plan, si, s):
                moving &= (self._qty(plan, si, s) == 0) | (s.strike != strike)
        if not moving.any():
            return
        moving &= self._allowed(desk, tgt.is_call, strike, tgt.extra_days, q, moving)
        if not moving.any():
            return
        for si in book.groups[g].slots:
            if si != target and self._holds(plan, si, book.slots[si]):  # an empty slot stays empty
                current = self._qty(plan, si, book.slots[si])
                self._change(plan, si, np.where(moving, 0.0, current), np.zeros(desk.book.shape, dtype=bool))
        marks = desk.mo.quote(is_call=tgt.is_call, american=tgt.american, strike=strike, extra_days=tgt.extra_days,
                              j=desk.j, where=moving)
        self._change(plan, target, np.where(moving, q, self._qty(plan, target, tgt)), moving, strike, marks)
        plan.trades |= moving

    def _move_compiled(self, plan: _Plan, desk: Desk, g: int, target: int, strike: np.ndarray,
                       mask: np.ndarray) -> None:
        """`_move` in one compiled pass (`opl.runtime.engine.kernels.adjust.move_group`), where nothing can block
        the new series (`_never_blocked`): the same changes, bit for bit."""
        book = desk.book
        members = book.groups[g].slots
        slots = [book.slots[si] for si in members]
        tgt = book.slots[target]
        holds = [self._holds(plan, si, s) for si, s in zip(members, slots)]
        same = [h and s.extra_days == tgt.extra_days for h, s in zip(holds, slots)]
        quote = desk.quotes(tgt.is_call, tgt.american, tgt.extra_days)
        moved = kernels.adjust.move_group(mask, [self._qty(plan, si, s) for si, s in zip(members, slots)],
                                          [s.strike for s in slots], same, holds, members.index(target), strike,
                                          quote)
        if moved is None:
            return
        new_qty, moving, marks = moved
        no = np.zeros(book.shape, dtype=bool)
        for i, si in enumerate(members):
            if si != target and holds[i]:
                self._change(plan, si, new_qty[i], no)
        self._change(plan, target, new_qty[members.index(target)], moving, np.broadcast_to(strike, book.shape),
                     marks)
        plan.trades |= moving

    def _never_blocked(self, desk: Desk, extra_days: float) -> bool:
        """Whether no ``avoid_leg_if`` rule can block a series ``extra_days`` after the month's expiry at this
        step (`opl.runtime.engine.guards.never_blocks`), kept by the numbers that decide it."""
        if desk.avoid is None:
            return True
        return self.never_blocked(desk.guards, desk.state, desk.mo, desk.j, extra_days)

    def never_blocked(self, guards: tuple, state: Callable[[], TriggerState], mo, j: int, extra_days: float) -> bool:
        """`_never_blocked` from the guard rules, the step's state (made only when the rules must be asked) and
        the month's step ``j``."""
        key = (float(mo.days_left[j]), j == mo.n, extra_days)
        known = self._unblocked.get(key)
        if known is None:
            known = self._unblocked[key] = never_blocks(guards, state(), float(mo.days_left[j]) + extra_days)
        return known

    def round_plan(self, book: Book) -> tuple | None:
        """The playbook as one compiled round plays it (`opl.runtime.engine.kernels.adjust.round_pass`) on this
        month's ``book``: (kinds, hedge targets, rolls) — per action 0 (a roll) or 1 (a gamma hedge), and per
        roll its (action, group, target slot, strike rule, days after the month's expiry) —; None where an action
        is another (its numpy proposal then plays the round)."""
        kinds, targets, rolls = [], [], []
        for i, a in enumerate(self.spec.playbook):
            if a.kind == "hedge_gamma" or (a.kind == "hedge" and a.greek == "gamma"):
                kinds.append(1)
                targets.append(0.10 if a.amount is None else a.amount)
                continue
            if a.kind not in ("roll_nearest_term", "roll") or (a.kind == "roll" and a.amount is None):
                return None
            nearest = a.kind == "roll_nearest_term"
            extra = 0.0 if nearest else a.amount
            for g in self._groups_of(book, None if nearest else a.leg):
                rolls.append((i, g, self._slot(book, g, extra), book.groups[g].rule, extra))
            kinds.append(0)
            targets.append(0.0)
        return kinds, targets, rolls

    def _open(self, plan: _Plan, desk: Desk, slot: int, strike: np.ndarray, lots: np.ndarray,
              mask: np.ndarray) -> None:
        if not np.any(mask):
            return
        s = desk.book.slots[slot]
        marks = desk.mo.quote(is_call=s.is_call, american=s.american, strike=strike, extra_days=s.extra_days,
                              j=desk.j, where=mask)
        self._change(plan, slot, np.where(mask, lots, self._qty(plan, slot, s)), mask, strike, marks)
        plan.trades |= mask

    def _remove(self, plan: _Plan, desk: Desk, leg: int | None, mask: np.ndarray) -> None:
        book = desk.book
        for g in self._groups(desk, leg):
            for si in book.groups[g].slots:
                s = book.slots[si]
                current = self._qty(plan, si, s)
                if (mask & (current != 0)).any():
                    self._change(plan, si, np.where(mask, 0.0, current), np.zeros(desk.book.shape, dtype=bool))
                    plan.trades |= mask & (current != 0)
        for fi in self._futures_entries(desk, leg):
            fut = book.futures[fi]
            plan.futures[fi] = np.where(mask, 0.0, fut)
            plan.trades |= mask & (fut != 0)

    @staticmethod
    def _holds(plan: _Plan, si: int, slot) -> bool:
        """Whether the slot may hold lots under ``plan``: changed by it, or holding some now (else its lots
        are 0 everywhere and any test of them is known)."""
        return si in plan.changes or slot.held()

    @staticmethod
    def _qty(plan: _Plan, si: int, slot) -> np.ndarray:
        change = plan.changes.get(si)
        return change.qty if change is not None else slot.qty

    def _current(self, plan: _Plan, book: Book, g: int) -> np.ndarray:
        return sum((self._qty(plan, si, book.slots[si]) for si in book.groups[g].slots), np.zeros(book.shape))

    def _allowed(self, desk: Desk, is_call: bool, strike, extra_days: float, lots, mask) -> np.ndarray:
        """Where ``avoid_leg_if`` lets a new series be opened (blocked paths are counted)."""
        if desk.avoid is None:  # no guard: nothing to ask (its state would be built for nothing)
            return mask
        leg = LegState(days_left=float(desk.mo.days_left[desk.j]) + extra_days, lots=lots, held=mask, strike=strike,
                       price=desk.mo.price[:, desk.j], is_call=is_call)
        blocked = desk.avoid([leg])[0] & mask
        desk.count("avoided_legs", blocked)
        return mask & ~blocked

    def _hedge_gamma(self, plan: _Plan, desk: Desk, target: float, active: np.ndarray) -> None:
        book, mo, j = desk.book, desk.mo, desk.j
        slot_index = book.groups[self.gamma_group].slots[0]
        hedge_slot = book.slots[slot_index]
        if desk.quotes is not None and self._never_blocked(desk, 0.0):
            self._hedge_gamma_compiled(plan, desk, target, active, slot_index)
            return
        price = mo.price[:, j]
        per_pct = price * 0.01 * desk.lots_per_option  # lots of delta per 1% move, per unit of gamma and lot
        rest = sum((s.qty * s.gamma for i, s in enumerate(book.slots) if i != slot_index),
                   np.zeros(desk.book.shape)) * per_pct
        n = book.short_lots()
        n = np.where(n > 0, n, book.option_lots() - np.abs(hedge_slot.qty))
        have = rest + hedge_slot.qty * hedge_slot.gamma * per_pct
        need = active & (have < -target * n) & (n > 0)
        if not need.any():
            return
        strike = np.broadcast_to(mo.snap_up(price), desk.book.shape)
        marks = mo.quote(is_call=True, american=hedge_slot.american, strike=strike, extra_days=0.0, j=j, where=need)
        one = marks[2] * per_pct
        with np.errstate(divide="ignore", invalid="ignore"):
            lots = np.where(need & (one > 0), np.ceil((-rest - target * n) / np.where(one > 0, one, 1.0)), 0.0)
        lots = np.clip(lots, 0.0, n)
        # Calls already held at that strike are topped up; held elsewhere they are sold and bought there.
        same = need & (hedge_slot.qty != 0) & (hedge_slot.strike == strike)
        buy = need & (lots > hedge_slot.qty)
        fresh = buy & ~same
        fresh &= self._allowed(desk, True, strike, 0.0, lots, fresh)
        new = np.where((buy & same) | fresh, lots, hedge_slot.qty)
        if not (new != hedge_slot.qty).any():
            return
        self._change(plan, slot_index, new, fresh, strike, marks)
        plan.trades |= new != hedge_slot.qty

    def _hedge_gamma_compiled(self, plan: _Plan, desk: Desk, target: float, active: np.ndarray,
                              slot_index: int) -> None:
        """`_hedge_gamma` in two compiled passes (`opl.runtime.engine.kernels.adjust.gamma_need`, ``gamma_buy``)
        where nothing can block the calls: the same change, bit for bit."""
        book, mo, j = desk.book, desk.mo, desk.j
        hedge_slot = book.slots[slot_index]
        quote = desk.quotes(True, hedge_slot.american, 0.0)
        price = quote[0]  # the step's prices, contiguous
        needed = kernels.adjust.gamma_need(active, [s.qty for s in book.slots], [s.gamma for s in book.slots],
                                           [s.held() for s in book.slots], slot_index, price, desk.lots_per_option,
                                           target)
        if needed is None:
            return
        strike = mo.snap_up(price)
        bought = kernels.adjust.gamma_buy(*needed, hedge_slot.qty, hedge_slot.strike, strike, desk.lots_per_option,
                                          target, quote)
        if bought is None:
            return
        new, fresh, marks, changed = bought
        self._change(plan, slot_index, new, fresh, np.broadcast_to(strike, book.shape), marks)
        plan.trades |= changed

    # -- margin of a proposal, and applying it ---------------------------------------------------------
    def _added_margin(self, desk: Desk, plan: _Plan, active: np.ndarray) -> np.ndarray:
        """The action's extra margin in percent (module docstring), computed on the paths of the round."""
        out = np.zeros(desk.book.shape)
        cols = np.flatnonzero(active.any(axis=0))
        if cols.size == 0:
            return out
        before = self._margin_before(desk, cols)
        if not (plan.changes or plan.futures or plan.hedge is not None) and len(desk.book.futures) <= 1:
            # Nothing proposed (a hedge with nothing to buy): the book after is the book before, margined by
            # the same sums (the futures entry's lots, the hedge's, the others') — its requirement is known.
            plan.margins = (cols, before, before)
            return out
        legs = []
        futures = sum((np.abs(plan.futures.get(i, fut)) for i, fut in enumerate(desk.book.futures)),
                      np.zeros(desk.book.shape))
        hedge = plan.hedge if plan.hedge is not None else desk.hedge
        for si, s in enumerate(desk.book.slots):
            change = plan.changes.get(si)
            if change is None:
                if s.held():
                    legs.append((s.is_call, s.strike, s.value, s.qty, s.extra_days))
                continue
            strike = s.strike if change.strike is None else np.where(change.restruck, change.strike, s.strike)
            value = s.value if change.marks is None else np.where(change.restruck, change.marks[0], s.value)
            if np.any(change.qty):
                legs.append((s.is_call, strike, value, change.qty, s.extra_days))
        after = desk.margin(legs, futures + np.abs(hedge), cols)
        plan.margins = (cols, before, after)
        base = np.where(before > 0, before, desk.capital)
        out[:, cols] = (after - before) / base * 100.0
        return out

    @staticmethod
    def _trade_slot(desk: Desk, old: np.ndarray, new: np.ndarray, restruck: np.ndarray) -> np.ndarray:
        """Trade a slot from ``old`` to ``new`` lots: where ``restruck`` the old series is closed and the new
        opened whole, elsewhere the difference is closed or opened; returns ``new``."""
        shrink = ~restruck & (np.abs(new) < np.abs(old))
        grow = ~restruck & (np.abs(new) > np.abs(old))
        closed = np.where(restruck, old, np.where(shrink, old - new, 0.0))
        opened = np.where(restruck, new, np.where(grow, new - old, 0.0))
        desk.trade_options(closed, closing=True)
        desk.trade_options(opened, closing=False)
        return new

    def _margin_before(self, desk: Desk, cols: np.ndarray) -> np.ndarray:
        """The requirement of the book on the paths ``cols`` (variants, len(cols)): what the previous action
        left where it priced these paths (the next action's paths are among its own), else computed.

        Its "after" margined the futures as the sum of each entry's lots, the book's as the lots of their
        sum: the same number with at most one futures entry, the only case reused.
        """
        known = self._known
        if known is not None and len(desk.book.futures) <= 1 and cols.size:
            paths, margin = known
            at = np.searchsorted(paths, cols)
            if at[-1] < paths.size and np.array_equal(paths[at], cols):
                return margin[:, at]
        return desk.margin(None, None, cols)

    def _apply(self, plan: _Plan, desk: Desk, go: np.ndarray) -> None:
        book = desk.book
        for si, change in plan.changes.items():
            s = book.slots[si]
            restruck = go & change.restruck
            if desk.trade_slot is not None:  # the same trades in one compiled pass
                s.qty = desk.trade_slot(s.qty, change.qty, go, restruck)
            else:
                s.qty = self._trade_slot(desk, s.qty, np.where(go, change.qty, s.qty), restruck)
            if change.strike is not None and restruck.any():
                value, delta, gamma, exercise = change.marks
                s.strike = np.where(restruck, change.strike, s.strike)
                s.value = np.where(restruck, value, s.value)
                s.delta = np.where(restruck, delta, s.delta)
                s.gamma = np.where(restruck, gamma, s.gamma)
                s.exercise = np.where(restruck, exercise, s.exercise)
                s.entry = np.where(restruck, value, s.entry)
        for fi, fut in plan.futures.items():
            new = np.where(go, fut, book.futures[fi])
            desk.trade_futures(new - book.futures[fi])
            book.futures[fi] = new
        if plan.hedge is not None:
            new = np.where(go, plan.hedge, desk.hedge)
            desk.trade_futures(new - desk.hedge)
            desk.hedge = new


def _once(build: Callable[[], TriggerState]) -> Callable[[], TriggerState]:
    """``build`` called once: the state it returns, kept."""
    kept: list[TriggerState] = []

    def state() -> TriggerState:
        if not kept:
            kept.append(build())
        return kept[0]

    return state


def _margin_bound(rule) -> tuple | None:
    """(op, bound) of a lone ``additional_margin`` test — the trigger ``additional_margin(op bound)`` or the
    comparison ``additional_margin(%) op bound`` (the rule `opl.runtime.engine.triggers` marks its test with) —;
    None for any other rule."""
    if isinstance(rule, spec.Trigger) and rule.measure == "additional_margin":
        return rule.op, rule.bound
    if (isinstance(rule, spec.Compare) and isinstance(rule.left, spec.Measure)
            and rule.left.name == "additional_margin" and isinstance(rule.right, spec.Number)):
        return rule.op, rule.right.value
    return None


def _margins_after(plan: _Plan, go: np.ndarray) -> tuple | None:
    """(paths, requirement) once ``plan`` is applied where ``go``: its margin after the action there, before it
    elsewhere (those paths' books did not change); None when ``abort_if`` did not price the action."""
    if plan.margins is None:
        return None
    cols, before, after = plan.margins
    return cols, np.where(go[:, cols], after, before)


def _delta_target(desk: Desk, keep: float, active: np.ndarray) -> np.ndarray:
    """The hedge that puts the net delta at keep·d·N in whole lots (band 0) where ``active``."""
    book = desk.book
    other = book.option_delta(desk.lots_per_option) + book.static
    target = keep * desk.d * book.short_lots()
    return np.where(active, np.rint(target - other), desk.hedge)


class _AtmRule:
    """The strike rule of the gamma hedge's calls (resolved by `hedge_gamma` itself)."""

    kind = "atm"


_ATM = _AtmRule()


# One proposal per playbook action (``ACTION_KINDS``); a test keeps the two in step.
_PROPOSALS = {
    "roll_nearest_term": AdjustEngine._propose_roll,
    "roll": AdjustEngine._propose_roll,
    "roll_tenor": AdjustEngine._propose_roll_tenor,
    "shift_strike": AdjustEngine._propose_shift_strike,
    "scale_qty": AdjustEngine._propose_scale_qty,
    "remove_leg": AdjustEngine._propose_remove,
    "close": AdjustEngine._propose_remove,
    "add_leg": AdjustEngine._propose_add,
    "replace_leg": AdjustEngine._propose_add,
    "hedge_gamma": AdjustEngine._propose_hedge,
    "hedge": AdjustEngine._propose_hedge,
    "delta_neutralise": AdjustEngine._propose_hedge,
}
