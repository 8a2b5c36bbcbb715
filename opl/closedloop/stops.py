"""When the loop stops: the experiment block's ``stop [...]`` list, the seed's defaults, and the CLI flags.

Stop conditions (grammar/README.md §10.3), checked before every new proposal:

``target_met()``                 the best candidate's objective is 0 (the target holds, also under every
                                 sensitivity, on the run's seeds);
``converge(rounds, min_gain)``   ``rounds`` iterations in a row have not lowered the best objective by
                                 at least ``min_gain`` relative to it (an accepted *design* change
                                 restarts the count: it changes the yardstick); also **oscillation**:
                                 the last ``min(rounds, 3)`` iterations each improved the return
                                 clause while worsening the drawdown clause or the reverse, alternating,
                                 with no gain — the search only trades drawdown for return;
``budget(iterations, minutes, tokens, cost)``  proposals made, wall time (summed over sessions of a resumed
                                 run), tokens used by the proposer, and their cost at the token prices given
                                 with ``--token-price IN,OUT`` (currency per million prompt / completion tokens);
the proposer has nothing left    the built-in proposer's local search has tried every move (``exhausted``).

Defaults (the seed's): ``converge(rounds=5, min_gain=0.1%)``, ``budget(iterations=20)``, ``target_met()``.
A kind the file's ``stop`` list names replaces its default; kinds it does not name keep theirs. CLI flags
(``--max-iter``, ``--minutes``, ``--tokens``, ``--cost``, ``--token-price``, ``--converge-rounds``, ``--min-gain``)
win over both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

__all__ = ["StopRules", "StopDecision", "stop_rules", "decide", "proposer_budget"]

Kind = Literal["target_met", "converged", "oscillation", "budget_iterations", "budget_minutes", "budget_tokens",
               "budget_cost", "exhausted", "baseline_failed"]


@dataclass(frozen=True, kw_only=True)
class StopRules:
    """The stop conditions in force (module docstring)."""

    target_met: bool = True
    converge_rounds: int = 5
    min_gain: float = 0.001  # relative, 0.1%
    max_iterations: int = 20
    minutes: float | None = None
    tokens: int | None = None
    cost: float | None = None
    token_price: tuple[float, float] | None = None  # per million prompt / completion tokens

    def to_dict(self) -> dict[str, Any]:
        return {"target_met": self.target_met, "converge_rounds": self.converge_rounds, "min_gain": self.min_gain,
                "max_iterations": self.max_iterations, "minutes": self.minutes, "tokens": self.tokens,
                "cost": self.cost, "token_price": list(self.token_price) if self.token_price else None}

    def spent(self, usage: dict[str, int]) -> float | None:
        """What ``usage`` (``prompt_tokens``, ``completion_tokens``) cost at ``token_price``; None without prices."""
        if self.token_price is None:
            return None
        prompt, completion = self.token_price
        return (usage.get("prompt_tokens", 0) * prompt + usage.get("completion_tokens", 0) * completion) / 1e6

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StopRules":
        values = {k: data[k] for k in cls().to_dict() if k in data}
        if values.get("token_price") is not None:
            values["token_price"] = tuple(values["token_price"])
        return cls(**values)

    def describe(self) -> str:
        parts = [f"converge(rounds={self.converge_rounds}, min_gain={self.min_gain:.2%})",
                 f"budget(iterations={self.max_iterations}"
                 + (f", minutes={self.minutes:g}" if self.minutes is not None else "")
                 + (f", tokens={self.tokens}" if self.tokens is not None else "")
                 + (f", cost={self.cost:g}" if self.cost is not None else "") + ")"]
        if self.target_met:
            parts.append("target_met()")
        return "stop [ " + ", ".join(parts) + " ]"


@dataclass(frozen=True, kw_only=True)
class StopDecision:
    """Which stop fired and why, in words for the report."""

    kind: Kind
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "reason": self.reason}


def _converge(rules: StopRules, given: dict[str, float]) -> StopRules:
    return replace(rules, converge_rounds=int(given.get("rounds") or rules.converge_rounds),
                   min_gain=(given["min_gain"] / 100) if given.get("min_gain") is not None else rules.min_gain)


def _budget(rules: StopRules, given: dict[str, float]) -> StopRules:
    return replace(rules, max_iterations=int(given.get("iterations") or rules.max_iterations),
                   minutes=given.get("minutes"), tokens=int(given["tokens"]) if given.get("tokens") else None,
                   cost=given.get("cost"))


def _target_met(rules: StopRules, given: dict[str, float]) -> StopRules:
    return replace(rules, target_met=True)


# stop condition → how it changes the rules in force; every name of
# `opl.lang.vocabulary.STOP_CONDITIONS` has one (tests/simulate/test_vocabulary_tables.py).
STOP_RULES: dict[str, Callable[[StopRules, dict[str, float]], StopRules]] = {
    "converge": _converge,
    "budget": _budget,
    "target_met": _target_met,
}


def stop_rules(document, **flags) -> StopRules:
    """The rules of a checked document's ``experiment.stop`` over the defaults, then non-None ``flags``
    (``max_iterations``, ``minutes``, ``tokens``, ``converge_rounds``, ``min_gain``)."""
    from opl.lang import ir

    rules = StopRules()
    exp = document.experiment if document is not None else None
    for call in exp.stop if exp is not None else ():
        given = {key: value.value for key, value in call.arguments if isinstance(value, ir.Quantity)}
        rules = STOP_RULES[call.name](rules, given)
    for key, value in flags.items():
        if value is not None:
            rules = replace(rules, **{key: value})
    return rules


def _gain(before: float, after: float) -> float:
    if before == float("inf"):
        return 1.0 if after < before else 0.0
    if before <= 0:
        return 0.0
    return (before - after) / before


def proposer_budget(rules: StopRules, *, tokens: int, cost: float | None) -> StopDecision | None:
    """The token or cost budget's stop when the proposer's ``tokens`` (or their ``cost``) spent it, else None;
    `decide` asks it between rounds, the loop before each proposal of a round (``--batch K``)."""
    if rules.tokens is not None and tokens >= rules.tokens:
        return StopDecision(kind="budget_tokens", reason=f"token budget spent ({tokens:,} of {rules.tokens:,})")
    if rules.cost is not None and cost is not None and cost >= rules.cost:
        return StopDecision(kind="budget_cost", reason=f"cost budget spent ({cost:.4g} of {rules.cost:g})")
    return None


def decide(rules: StopRules, records: list[dict[str, Any]], *, minutes: float, tokens: int,
           cost: float | None = None, exhausted: bool = False) -> StopDecision | None:
    """The stop that fires after ``records`` (the iterations' ``decision`` dicts, iteration 0 first), or None.

    Each record needs ``iteration``, ``accepted``, ``kind`` (``baseline``/``design``/``parameter``),
    ``best_objective`` (after the iteration), ``best_target_met`` and, for oscillation, ``tradeoff``
    (``"return"`` when the return clause improved and the drawdown clause worsened, ``"drawdown"`` for the
    reverse, else None).
    """
    if not records:
        return None
    last = records[-1]
    if rules.target_met and last.get("best_target_met"):
        return StopDecision(kind="target_met", reason=f"the target holds at iteration {last['best_iteration']} "
                                                      "(also under every sensitivity)")
    if exhausted:
        return StopDecision(kind="exhausted", reason="the proposer has tried every move from the best candidate: "
                                                     "the local search has converged")
    proposals = len(records) - 1
    if proposals >= rules.max_iterations:
        return StopDecision(kind="budget_iterations", reason=f"iteration budget spent ({proposals} of "
                                                             f"{rules.max_iterations})")
    if rules.minutes is not None and minutes >= rules.minutes:
        return StopDecision(kind="budget_minutes", reason=f"time budget spent ({minutes:.1f} of {rules.minutes:g} minutes)")
    spent = proposer_budget(rules, tokens=tokens, cost=cost)
    if spent is not None:
        return spent
    stalled = 0
    for prev, rec in zip(reversed(records[:-1]), reversed(records)):
        if rec.get("kind") == "design" and rec.get("accepted"):
            break
        if _gain(prev["best_objective"], rec["best_objective"]) >= rules.min_gain:
            break
        stalled += 1
    if stalled >= rules.converge_rounds:
        return StopDecision(kind="converged", reason=f"{stalled} iterations in a row without a gain of "
                                                     f"{rules.min_gain:.2%} in the objective")
    window = min(rules.converge_rounds, 3)
    tail = records[-window:]
    if stalled >= window and len(tail) == window and all(r.get("tradeoff") for r in tail) and all(
            a["tradeoff"] != b["tradeoff"] for a, b in zip(tail, tail[1:])):
        return StopDecision(kind="oscillation", reason=f"the last {window} candidates only traded drawdown for "
                                                       "return and back, without a gain")
    return None
