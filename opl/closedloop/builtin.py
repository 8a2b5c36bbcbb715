"""The built-in proposer: deterministic, offline revisions driven by the critic's diagnosis plus a local search.

Each call proposes one candidate derived from the current best (``context.candidate``); the alternatives
already proposed in the round (``context.pending``, ``opl loop --batch K``) count as tried, so a round of K
calls gives the first K untried moves of the order below:

1. **Design first.** When the diagnosis lists design defects with a fix (a model without clustering or
   jumps, a hit rate the data contradict, a missing hit-rate sensitivity or stress list, calibrated
   settings), all fixes are applied together as one design revision.
2. **The critic's directions**, in its order, then **every other move** of the search (`ORDER`), moves
   rejected more often in the run's history later (a stable sort on that count), at step level 0; when
   every move at a level has been tried from this candidate, the same moves at half the step (level 1,
   then 2). A move is *tried* when the text it produces — compared in canonical form —
   is already in the run's history, so the proposer keeps no state of its own: the same history gives the
   same proposal, also after ``--resume``.
3. When nothing untried is left the proposal is empty with ``exhausted`` set: the local search has
   converged.

Moves and their steps (level 0; halved at each level):

==================  ==============================================================================
``widen_strikes``   short puts lower and short calls higher by 2% of the price (rounded to a round
                    number: 200 on jujube at 10,400), wings moved with them; ``delta(d)`` strikes by
                    0.05 of delta; ``narrow_strikes`` the opposite; ``shift_put_out`` …
                    ``shift_call_in`` move one side only
``add_wings``       a long option beyond each short one, two steps out, same tenor and quantity;
                    ``widen_wings`` moves them a step further out; ``drop_wings`` removes them
``raise_hedge_band`` the hedge band × 2 (0.1 when it was 0); ``lower_hedge_band`` ÷ 2;
                    ``hedge_less_often`` the period × 2; ``keep_more``/``keep_less`` the kept
                    exposure ± 10 percent points
``add_stop_loss``   ``stop_loss`` at the evaluated size's CVaR95 (% of capital, at least 0.5%);
                    ``tighten_stop_loss`` × 0.7
``loosen_exit``     ``pnl_percent(<-X%)`` exit to -2X% (removed beyond -400%)
``extend_sizes``    the sweep grows past the best size (1.5× and 2×); ``refine_sizes`` adds the
                    midpoints around the best size
==================  ==============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from opl.closedloop.candidate import Candidate, CandidateError, candidate_sha
from opl.closedloop.proposal import CheckFn, Proposal, ProposalContext

__all__ = ["BuiltinProposer", "ORDER", "RISKS"]

ORDER = ("widen_strikes", "narrow_strikes", "add_wings", "widen_wings", "drop_wings", "loosen_exit",
         "raise_hedge_band", "lower_hedge_band", "hedge_less_often", "keep_more", "keep_less", "add_stop_loss",
         "tighten_stop_loss", "extend_sizes", "refine_sizes", "shift_put_out", "shift_call_out", "shift_put_in",
         "shift_call_in")
LEVELS = 3

RISKS = {
    "design": "changes the yardstick: objectives before and after are measured differently",
    "widen_strikes": "less premium a month; a move past the strikes is rarer but loses as much",
    "narrow_strikes": "more premium, more losing months and more assignments",
    "shift_put_out": "less put premium; down moves hurt less", "shift_call_out": "less call premium",
    "shift_put_in": "more put premium and more downside", "shift_call_in": "more call premium and more upside risk",
    "add_wings": "caps the loss of a gap month; pays for the wings every month",
    "widen_wings": "cheaper wings, a larger capped loss", "drop_wings": "uncapped tails again",
    "raise_hedge_band": "fewer hedge trades, larger delta swings between them",
    "lower_hedge_band": "more hedge trades and costs",
    "hedge_less_often": "fewer trades; delta drifts between rebalances",
    "keep_more": "more directional exposure: leans on the signal's hit rate",
    "keep_less": "gives up part of the signal's drift",
    "add_stop_loss": "locks in losses that a month might have recovered",
    "tighten_stop_loss": "locks in more losses early",
    "loosen_exit": "holds losing months longer: the worst months get worse",
    "extend_sizes": "only the sweep changes; larger sizes scale drawdown and margin with return",
    "refine_sizes": "only the sweep changes",
}


@dataclass(frozen=True)
class _Edit:
    move: str
    change: str
    candidate: Candidate


def _nice(x: float) -> float:
    """The round number (1, 2 or 5 × a power of ten) nearest ``x``."""
    if x <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(x))
    return min((m * power for m in (1, 2, 5, 10)), key=lambda v: abs(v - x))


def _pct(value: float) -> str:
    from opl.lang.legs import number_text

    return number_text(round(value * 100, 6)) + "%"


class BuiltinProposer:
    """The default proposer (module docstring); needs no network and no key."""

    name = "builtin"

    def __init__(self):
        # Pure memo of edits and check verdicts (same input, same output): the search re-derives its
        # tried moves from the history at every call, and this keeps that linear instead of quadratic.
        self._edits: dict[tuple[str, str, int], _Edit | None] = {}
        self._checked: dict[str, bool] = {}

    def config(self) -> dict:
        return {"proposer": self.name}

    def propose(self, context: ProposalContext, *, check: CheckFn) -> Proposal:
        try:
            parent = Candidate(context.candidate)
        except CandidateError as error:
            return Proposal(text=None, change="", rationale="", failure=f"the current candidate does not parse: {error}",
                            exhausted=True)
        # The round's other alternatives count as tried: K proposals of a round are K different moves.
        tried = {entry.get("candidate_sha") for entry in context.history + context.pending} | \
            {candidate_sha(parent.text)}
        diagnosis = context.diagnosis or {}
        rejected = 0
        design = self._design(parent, diagnosis)
        refused = {e.get("change") for e in context.history if e.get("kind") == "design" and not e.get("accepted")}
        if design is not None and design.change not in refused:
            proposal = self._offer(design, "; ".join(d["message"] for d in diagnosis.get("defects", [])
                                                     if d.get("fix")), tried, check)
            if proposal is not None:
                return proposal
            rejected += 1
        directions = [d for d in diagnosis.get("directions", []) if d.get("move") in ORDER]
        why = {d["move"]: d["why"] for d in directions}
        order = [d["move"] for d in directions] + [m for m in ORDER if m not in why]
        # Moves that keep failing go to the back (stable: the critic's order otherwise), so the search
        # spreads over every knob instead of retrying the same two from each new best.
        failures = {m: sum(1 for e in context.history if e.get("move") == m and not e.get("accepted"))
                    for m in order}
        order.sort(key=lambda m: failures[m])
        moves = None
        for level in range(LEVELS):
            for move in order:
                key = (parent.text + repr(sorted((context.result or {}).get("sweep", []), key=str))
                       + str((context.result or {}).get("size")), move, level)
                if key not in self._edits:
                    moves = moves or _Moves(parent, context.result or {})
                    self._edits[key] = moves.edit(move, level)
                edit = self._edits[key]
                if edit is None:
                    continue
                reason = why.get(move, "local search around the best candidate so far") + \
                    (f" (step level {level}: {1 / 2 ** level:g} of the first step)" if level else "")
                proposal = self._offer(edit, reason, tried, check)
                if proposal is not None:
                    return proposal
        return Proposal(text=None, change="", rationale="", exhausted=True,
                        failure="every move of the local search has been tried from the best candidate, at every "
                                "step size: the search has converged")

    def _offer(self, edit: _Edit, reason: str, tried: set, check: CheckFn) -> Proposal | None:
        sha = edit.candidate.sha
        if sha in tried:
            return None
        if sha not in self._checked:
            self._checked[sha] = check(edit.candidate.text).ok
        if not self._checked[sha]:
            return None
        return Proposal(text=edit.candidate.text, change=edit.change, rationale=reason, risk=RISKS.get(edit.move, ""),
                        move=edit.move)

    @staticmethod
    def _design(parent: Candidate, diagnosis: dict) -> _Edit | None:
        fixes = [d for d in diagnosis.get("defects", []) if d.get("fix")]
        if not fixes:
            return None
        candidate, changes = parent, []
        for defect in fixes:
            fix = defect["fix"]
            before = candidate.value(fix["setting"], "experiment")
            try:
                candidate = candidate.with_field(fix["setting"], fix["value"], block="experiment")
            except CandidateError:
                continue
            changes.append(f"{fix['setting']} {before or '(none)'} → {fix['value']}")
        if candidate.text == parent.text:
            return None
        return _Edit("design", "design: " + "; ".join(changes), candidate)


class _Moves:
    """Builds the edit of one move at one step level from the parent candidate."""

    def __init__(self, parent: Candidate, result: dict):
        from opl.closedloop.candidate import checked

        self.parent = parent
        self.result = result
        read = checked(parent.text)
        self.doc = read.document
        self.legs = list(read.legs)
        price = self.doc.market.price if self.doc is not None and self.doc.market.price else 100.0
        self.price_step = _nice(0.02 * price)

    # ------------------------------------------------------------------ helpers

    def edit(self, move: str, level: int) -> _Edit | None:
        builder = getattr(self, "_" + move, None)
        if builder is None:
            return None
        try:
            return builder(1.0 / 2 ** level)
        except CandidateError:
            return None

    def _shift(self, strike, outward: float, is_call: bool, scale: float):
        """The strike ``outward`` steps away from the money (negative: towards it)."""
        from opl.lang.legs import AbsoluteStrike, DeltaStrike, RelativeStrike

        sign = 1.0 if is_call else -1.0
        if isinstance(strike, DeltaStrike):
            return DeltaStrike(round(min(0.95, max(0.02, strike.delta - 0.05 * scale * outward)), 4))
        if isinstance(strike, RelativeStrike):
            step = 1.0 * scale if strike.percent else self.price_step * scale
            return RelativeStrike(strike.anchor, round(strike.offset + sign * step * outward, 6), strike.percent)
        if isinstance(strike, AbsoluteStrike):
            return AbsoluteStrike(round(strike.value + sign * self.price_step * scale * outward, 6))
        return None

    def _with_legs(self, legs, move: str, change: str) -> _Edit | None:
        if self.doc is None or self.doc.strategy is None or not legs:
            return None
        text = " + ".join(str(leg) for leg in legs)
        return _Edit(move, change, self.parent.with_field(self.doc.strategy.name, text))

    def _move_strikes(self, move: str, outward: float, scale: float, *, side: str | None = None) -> _Edit | None:
        legs, changes = [], []
        for leg in self.legs:
            if leg.is_option and (side is None or leg.option_type == side) and leg.strike is not None:
                moved = self._shift(leg.strike, outward, leg.option_type == "call", scale)
                if moved is None or moved == leg.strike:
                    return None
                if leg.side < 0:
                    changes.append(f"{leg.option_type} {leg.strike} → {moved}")
                leg = leg.with_(strike=moved)
            legs.append(leg)
        if not changes:
            return None
        return self._with_legs(legs, move, f"{move.replace('_', ' ')}: " + ", ".join(changes))

    # ------------------------------------------------------------------ strikes

    def _widen_strikes(self, scale):
        return self._move_strikes("widen_strikes", 1.0, scale)

    def _narrow_strikes(self, scale):
        return self._move_strikes("narrow_strikes", -1.0, scale)

    def _shift_put_out(self, scale):
        return self._move_strikes("shift_put_out", 1.0, scale, side="put")

    def _shift_call_out(self, scale):
        return self._move_strikes("shift_call_out", 1.0, scale, side="call")

    def _shift_put_in(self, scale):
        return self._move_strikes("shift_put_in", -1.0, scale, side="put")

    def _shift_call_in(self, scale):
        return self._move_strikes("shift_call_in", -1.0, scale, side="call")

    # ------------------------------------------------------------------ wings

    def _wings(self):
        return [leg for leg in self.legs if leg.is_option and leg.side > 0]

    def _add_wings(self, scale):
        shorts = [leg for leg in self.legs if leg.is_option and leg.side < 0]
        if self._wings() or not shorts:
            return None
        added = []
        for leg in shorts:
            strike = self._shift(leg.strike, 2.0 * scale, leg.option_type == "call", 1.0)
            if strike is None:
                return None
            added.append(leg.with_(side=1, strike=strike, origin=None))
        return self._with_legs(self.legs + added, "add_wings",
                               "add wings: " + ", ".join(f"long {w.option_type} {w.strike}" for w in added))

    def _widen_wings(self, scale):
        if not self._wings():
            return None
        legs, changes = [], []
        for leg in self.legs:
            if leg.is_option and leg.side > 0:
                moved = self._shift(leg.strike, 1.0, leg.option_type == "call", scale)
                if moved is None:
                    return None
                changes.append(f"{leg.option_type} wing {leg.strike} → {moved}")
                leg = leg.with_(strike=moved)
            legs.append(leg)
        return self._with_legs(legs, "widen_wings", "widen wings: " + ", ".join(changes))

    def _drop_wings(self, scale):
        wings = self._wings()
        if not wings or scale != 1.0 or len(wings) == len([leg for leg in self.legs if leg.is_option]):
            return None
        kept = [leg for leg in self.legs if not (leg.is_option and leg.side > 0)]
        return self._with_legs(kept, "drop_wings", "drop wings: " + ", ".join(f"long {w.option_type} {w.strike}"
                                                                             for w in wings))

    # ------------------------------------------------------------------ hedge

    def _hedge(self, move: str, change: str, *, band=None, every=None, keep=None) -> _Edit | None:
        from opl.lang.legs import number_text

        hedge = self.doc.hedge if self.doc is not None else None
        if hedge is None:
            return None
        every = hedge.every_days or 1.0 if every is None else every
        band = hedge.band or 0.0 if band is None else band
        keep = hedge.keep if keep is None else keep
        along = hedge.along if hedge.along not in (None, "none") else "direction"
        text = f"{hedge.greek} with {hedge.instrument} every {number_text(round(every, 4))}d band {number_text(round(band, 4))}"
        if keep > 0:
            text += f" keep {_pct(keep)} along {along}"
        if text == self.parent.value("hedge"):
            return None
        return _Edit(move, change, self.parent.with_field("hedge", text))

    def _raise_hedge_band(self, scale):
        h = self.doc.hedge if self.doc else None
        if h is None:
            return None
        band = (h.band or 0.0) * (1 + scale) if h.band else 0.1 * scale
        return self._hedge("raise_hedge_band", f"hedge band {h.band or 0:g} → {band:.4g}", band=band)

    def _lower_hedge_band(self, scale):
        h = self.doc.hedge if self.doc else None
        if h is None or not h.band:
            return None
        band = h.band / (1 + scale)
        return self._hedge("lower_hedge_band", f"hedge band {h.band:g} → {band:.4g}", band=band)

    def _hedge_less_often(self, scale):
        h = self.doc.hedge if self.doc else None
        if h is None:
            return None
        every = (h.every_days or 1.0) * (1 + scale)
        if every > 21:
            return None
        return self._hedge("hedge_less_often", f"hedge every {h.every_days or 1:g}d → {every:.3g}d", every=every)

    def _keep(self, move: str, delta: float):
        h = self.doc.hedge if self.doc else None
        if h is None:
            return None
        keep = round(min(1.0, max(0.0, h.keep + delta)), 4)
        if keep == h.keep:
            return None
        return self._hedge(move, f"hedge keeps {h.keep:.0%} → {keep:.1%} along the direction", keep=keep)

    def _keep_more(self, scale):
        return self._keep("keep_more", 0.10 * scale)

    def _keep_less(self, scale):
        return self._keep("keep_less", -0.10 * scale)

    # ------------------------------------------------------------------ risk and exits

    def _add_stop_loss(self, scale):
        if self.doc is None or self.doc.risk.stop_loss is not None:
            return None
        cvar = self.result.get("base", {}).get("target_metrics", {}).get("cvar_95")
        if not cvar:
            return None
        stop = max(0.5, round(cvar * (0.5 + scale / 2), 1)) / 100
        anchor = "margin_buffer" if self.parent.statement("margin_buffer") else None
        return _Edit("add_stop_loss", f"add stop_loss {_pct(stop)} of capital a month",
                     self.parent.with_field("stop_loss", _pct(stop), after=anchor))

    def _tighten_stop_loss(self, scale):
        if self.doc is None or self.doc.risk.stop_loss is None:
            return None
        old = self.doc.risk.stop_loss
        stop = round(old * (1 - 0.3 * scale), 5)
        if stop <= 0.0005:
            return None
        return _Edit("tighten_stop_loss", f"stop_loss {_pct(old)} → {_pct(stop)}",
                     self.parent.with_field("stop_loss", _pct(stop)))

    def _loosen_exit(self, scale):
        from opl.lang import ast

        statement = self.parent.statement("exit_triggers")
        if statement is None or not isinstance(statement.value, ast.ListValue):
            return None
        items, change = [], None
        for item in statement.value.items:
            text = self.parent.source(item)
            level = _pnl_floor(item)
            if level is not None and change is None:
                new = level * (1 + scale)
                if abs(new) > 400:
                    change = f"drop the exit `{text}`"
                    continue
                replacement = f"pnl_percent(<-{round(abs(new), 2):g}%)"
                change = f"exit `{text}` → `{replacement}`"
                text = replacement
            items.append(text)
        if change is None:
            return None
        return _Edit("loosen_exit", change, self.parent.with_field("exit_triggers", "[ " + ", ".join(items) + " ]"))

    # ------------------------------------------------------------------ sizes

    def _sizes(self, move: str, extra: list[float]) -> _Edit | None:
        exp = self.doc.experiment if self.doc is not None else None
        current = list(exp.sizes) if exp is not None and exp.sizes else [1.0, 2.0, 5.0, 10.0, 20.0]
        best = self.result.get("size") or current[-1]
        grid = sorted(set(current) | {float(max(1, round(x))) for x in extra})
        while len(grid) > 12:
            grid.remove(max(grid, key=lambda s: abs(s - best)))
        if grid == sorted(current):
            return None
        text = "[ " + ", ".join(f"{s:g}" for s in grid) + " ]"
        added = ", ".join(f"{s:g}" for s in grid if s not in current)
        return _Edit(move, f"sizes: sweep {added} too", self.parent.with_field("sizes", text, block="experiment"))

    def _extend_sizes(self, scale):
        best = self.result.get("size")
        if not best:
            return None
        return self._sizes("extend_sizes", [best * (1 + 0.5 * scale), best * (1 + scale)])

    def _refine_sizes(self, scale):
        best = self.result.get("size")
        sweep = sorted(r["size"] for r in self.result.get("sweep", []))
        if not best or best not in sweep:
            return None
        i = sweep.index(best)
        extra = []
        if i > 0:
            extra.append(best - (best - sweep[i - 1]) * scale / 2)
        elif best > 1:
            extra.append(best * (1 - scale / 2))
        if i + 1 < len(sweep):
            extra.append(best + (sweep[i + 1] - best) * scale / 2)
        return self._sizes("refine_sizes", extra)


def _pnl_floor(item) -> float | None:
    """X (percent, positive) of ``pnl_percent(<-X%)`` / ``pnl_percent(<=-X%)``, else None."""
    from opl.lang import ast
    from opl.lang.literals import quantity

    if not (isinstance(item, ast.Call) and item.func == "pnl_percent" and len(item.args) == 1):
        return None
    arg = item.args[0]
    if isinstance(arg, ast.Compare) and arg.left is None and arg.op in ("<", "<="):
        value = quantity(arg.right)
        if value is not None and value < 0:
            return -value
    return None
