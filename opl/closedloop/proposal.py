"""The contract between the loop and a proposer.

A proposer receives a `ProposalContext` (the current candidate, its results, the critic's diagnosis and the
change history) and a `CheckFn` that runs `opl check` on a text; it returns a `Proposal`: a complete `.opl`
file and the reason for it, or no file and the reason it could not produce one. A proposer never raises for
a bad answer from a model; it reports it in ``Proposal.failure`` so the loop can end the iteration cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


@dataclass(frozen=True, kw_only=True)
class CheckOutcome:
    """What `opl check` said about a candidate text.

    ``ok`` is True when there is no error (warnings allowed); ``rendered`` is the full rustc-style rendering
    of every diagnostic (what a model reads to repair its file); ``codes`` lists the codes in order.
    """

    ok: bool
    rendered: str
    codes: tuple[str, ...] = ()


CheckFn = Callable[[str], CheckOutcome]


@dataclass(frozen=True, kw_only=True)
class ProposalContext:
    """Everything a proposer sees at iteration ``iteration`` (1-based: the iteration being proposed)."""

    iteration: int
    candidate: str                      # the current best candidate's .opl text
    result: dict[str, Any] | None       # its evaluation (the ``result.json`` of its iteration), None at start
    diagnosis: dict[str, Any] | None    # the critic's structured diagnosis of it, None at start
    history: tuple[dict[str, Any], ...] = ()  # change-log entries so far, oldest first
    objective: dict[str, Any] = field(default_factory=dict)  # the target clauses the loop stops on
    # The alternatives already proposed in this round (``--batch K``: K proposals from the same candidate and
    # diagnosis, evaluated side by side), each ``{"candidate_sha", "change", "move"}``: propose another one.
    pending: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """A proposer's answer.

    ``text`` is a complete `.opl` file that passed `opl check` without errors, or None when the proposer
    could not produce one (``failure`` says why). ``change`` is a one-line summary of what changed,
    ``rationale`` why ("why these settings"). ``attempts`` counts model calls including repairs; ``usage``
    holds token counts (``prompt_tokens``, ``completion_tokens``) when a model was asked.
    ``risk`` is the change's risk note for the change log, ``move`` a name for the kind of change (the
    built-in proposer's move), and ``exhausted`` says the proposer has nothing left to propose: the loop
    stops instead of asking again.
    """

    text: str | None
    change: str
    rationale: str
    failure: str | None = None
    attempts: int = 1
    usage: dict[str, int] = field(default_factory=dict)
    transcript: tuple[dict[str, str], ...] = ()  # messages exchanged, for the archive (never the key)
    risk: str = ""
    move: str | None = None
    exhausted: bool = False


class Proposer(Protocol):
    """Anything with a ``name`` and a ``propose`` method."""

    name: str

    def propose(self, context: ProposalContext, *, check: CheckFn) -> Proposal:  # pragma: no cover
        ...
