"""The loop's iteration record, typed: what one iteration proposed, measured and decided.

Each iteration (the baseline too) is built as one `IterationRecord` and archived as its
``result.json`` (`IterationRecord.to_dict`, schema ``opl.loop.iteration/1``); the report,
the critic's history and ``--resume`` read that JSON form back (`IterationRecord.from_dict`
rebuilds the typed record from it).

The JSON keeps the keys of the untyped records it replaces, in one order for every
iteration: the baseline's proposal now also has ``failure`` (null), ``attempts`` (0: no
proposer was asked) and ``usage`` ({}), and every decision lists ``kind, accepted, why,
objective, best_iteration, best_objective, best_target_met, design_version,
parameter_version, version, tradeoff`` (then ``dropped`` when a design change dropped a
component the data reject, ``stopped`` when the candidate was stopped unevaluated at the end of
``--minutes``); an iteration of a ``--batch`` round ends with ``round`` (its first iteration and size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["SCHEMA", "DecisionKind", "ProposalRecord", "Decision", "IterationRecord"]

SCHEMA = "opl.loop.iteration/1"

#: baseline: the file as written; parameter / design: a proposal evaluated as a change of the parameters or of
#: the design; failed: no file, a file with errors, or one refused unevaluated.
DecisionKind = Literal["baseline", "parameter", "design", "failed"]


@dataclass(kw_only=True)
class ProposalRecord:
    """What the proposer gave (``attempts`` model calls, ``usage`` token counts; 0 and {} for the baseline)."""

    change: str
    rationale: str
    risk: str = ""
    move: str | None = None
    failure: str | None = None
    attempts: int = 0
    usage: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, proposal) -> "ProposalRecord":
        """The record of an `opl.closedloop.proposal.Proposal`."""
        return cls(change=proposal.change, rationale=proposal.rationale, risk=proposal.risk, move=proposal.move,
                   failure=proposal.failure, attempts=proposal.attempts, usage=dict(proposal.usage))

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, "rationale": self.rationale, "risk": self.risk, "move": self.move,
                "failure": self.failure, "attempts": self.attempts, "usage": dict(self.usage)}


@dataclass(kw_only=True)
class Decision:
    """What the loop decided about an iteration, and the best candidate so far after it.

    ``objective`` is the iteration's own objective (None when it was not evaluated or not finite);
    ``best_*`` describe the best candidate after this iteration; ``version`` is ``v{design}.{parameter}``.
    """

    kind: DecisionKind
    accepted: bool
    why: str
    objective: float | None
    best_iteration: int
    best_objective: float
    best_target_met: bool
    design_version: int
    parameter_version: int
    tradeoff: str | None = None
    dropped: tuple[dict[str, Any], ...] = ()
    stopped: str | None = None  # "budget_minutes": stopped unevaluated at the end of --minutes

    @property
    def version(self) -> str:
        return f"v{self.design_version}.{self.parameter_version}"

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "accepted": self.accepted, "why": self.why, "objective": self.objective,
               "best_iteration": self.best_iteration, "best_objective": self.best_objective,
               "best_target_met": self.best_target_met, "design_version": self.design_version,
               "parameter_version": self.parameter_version, "version": self.version, "tradeoff": self.tradeoff}
        if self.dropped:
            out["dropped"] = [dict(d) for d in self.dropped]
        if self.stopped is not None:
            out["stopped"] = self.stopped
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Decision":
        best = data.get("best_objective")
        return cls(kind=data["kind"], accepted=data["accepted"], why=data.get("why", ""),
                   objective=data.get("objective"), best_iteration=data["best_iteration"],
                   best_objective=float("inf") if best is None else best,
                   best_target_met=data.get("best_target_met", False), design_version=data["design_version"],
                   parameter_version=data["parameter_version"], tradeoff=data.get("tradeoff"),
                   dropped=tuple(data.get("dropped", ())), stopped=data.get("stopped"))


@dataclass(kw_only=True)
class IterationRecord:
    """One iteration: its proposal, evaluation and diagnosis (their JSON forms), the decision, the time taken.

    ``text`` is the candidate the iteration archives (the best one so far when the proposal gave no file) and
    ``transcript`` the messages exchanged with a model; neither is part of ``result.json`` (candidate.opl and
    transcript.json hold them).
    """

    iteration: int
    parent: int | None
    candidate_sha: str | None
    proposal: ProposalRecord
    evaluation: dict[str, Any] | None
    diagnosis: dict[str, Any] | None
    decision: Decision
    seconds: float
    text: str = field(default="", repr=False)
    transcript: tuple[dict[str, str], ...] = field(default=(), repr=False)
    # The round it belongs to (`opl loop --batch K`): {"first": its first iteration, "size": its proposals}.
    round: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The archived ``result.json`` (module docstring)."""
        out = {"schema": SCHEMA, "iteration": self.iteration, "parent": self.parent,
               "candidate_sha": self.candidate_sha, "proposal": self.proposal.to_dict(),
               "evaluation": self.evaluation, "diagnosis": self.diagnosis, "decision": self.decision.to_dict(),
               "seconds": self.seconds}
        if self.round is not None:
            out["round"] = dict(self.round)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, text: str = "") -> "IterationRecord":
        """A record read back from its ``result.json`` (the baseline of an older run has a shorter proposal)."""
        p = data.get("proposal") or {}
        proposal = ProposalRecord(change=p.get("change", ""), rationale=p.get("rationale", ""), risk=p.get("risk", ""),
                                  move=p.get("move"), failure=p.get("failure"), attempts=p.get("attempts", 0),
                                  usage=dict(p.get("usage", {})))
        return cls(iteration=data["iteration"], parent=data.get("parent"), candidate_sha=data.get("candidate_sha"),
                   proposal=proposal, evaluation=data.get("evaluation"), diagnosis=data.get("diagnosis"),
                   decision=Decision.from_dict(data["decision"]), seconds=data.get("seconds", 0.0), text=text,
                   round=data.get("round"))
