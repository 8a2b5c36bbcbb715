"""What a model is told: the task, the answer's shape, the iteration's context and the repair requests.

Every block taken from the run (results, diagnosis, history, diagnostics) is bounded, and a cut is said
in the text, so a long run cannot overflow a small model's context window unnoticed.
"""

from __future__ import annotations

import json
from typing import Any

from opl.closedloop.proposal import ProposalContext
from opl.closedloop.reference import language_reference

#: Bound on each block of run data put into a message, in characters.
MAX_BLOCK_CHARS = 12_000

#: History entries sent (the most recent ones).
MAX_HISTORY_ENTRIES = 12

#: The answer's JSON schema, for endpoints that enforce ``response_format={"type": "json_schema", ...}``.
ANSWER_SCHEMA: dict[str, Any] = {
    "name": "opl_candidate",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "opl": {"type": "string", "description": "the complete .opl file, starting with `opl-lang 1.0`"},
            "change": {"type": "string", "description": "one line: what changed from the current candidate"},
            "rationale": {"type": "string", "description": "why these settings"},
            "risk": {"type": "string", "description": "one line: what could go wrong with this change"},
        },
        "required": ["opl", "change", "rationale", "risk"],
        "additionalProperties": False,
    },
}

ANSWER_FORM = ('{"opl": "<the complete file>", "change": "<one line: what changed>", '
               '"rationale": "<why these settings>", "risk": "<one line: what could go wrong>"}')

_TASK = f"""\
You are an options strategist who writes OPL-Lang, a small language for option strategies and the \
experiments that test them. Each round you receive a candidate strategy file, its simulated results, a \
critic's diagnosis of what holds it back and the changes tried so far. You return a revised, complete file \
meant to move the results toward the objective.

Rules:
- Return the whole file, starting with the header line `opl-lang 1.0`: never a diff or a fragment.
- Change a few things at a time and say why; do not repeat a change the history shows did not help.
- Keep the experiment's run settings (paths, seed, target, metrics, stop) as they are: the loop sets them.
- Use only the syntax, fields, triggers, actions and scenarios of the reference below. The file is checked \
with `opl check`; any error comes back to you to fix.

Answer with one JSON object and nothing else:
{ANSWER_FORM}
"""


def system_message() -> str:
    """The task, the answer's shape and the compact language reference."""
    return _TASK + "\n" + language_reference()


def bounded(text: str, bound: int = MAX_BLOCK_CHARS) -> str:
    """``text`` cut to ``bound`` characters, saying so when it is cut."""
    if len(text) <= bound:
        return text
    return text[:bound] + f"\n[… cut: {bound:,} of {len(text):,} characters shown]"


def _json_block(value: Any) -> str:
    # Compact: indentation would spend a third of the bound on whitespace; models read either form.
    return "```json\n" + bounded(json.dumps(value, separators=(",", ":"), sort_keys=True, default=str,
                                            ensure_ascii=False)) + "\n```"


def user_message(context: ProposalContext) -> str:
    """The iteration's context: objective, current candidate, its results, the diagnosis, the history."""
    parts = [f"Iteration {context.iteration}: propose the next candidate."]
    parts.append("## Objective\n" + (_json_block(context.objective) if context.objective
                                     else "None stated: improve the results and keep the risk in check."))
    parts.append("## Current candidate\n```opl\n" + bounded(context.candidate.strip("\n")) + "\n```")
    parts.append("## Its results\n" + (_json_block(context.result) if context.result is not None
                                       else "Not evaluated yet."))
    parts.append("## The critic's diagnosis\n" + (_json_block(context.diagnosis) if context.diagnosis is not None
                                                  else "None yet."))
    history = list(context.history)
    if history:
        shown = history[-MAX_HISTORY_ENTRIES:]
        head = "## Changes so far (oldest first)\n"
        if len(shown) < len(history):
            head += f"{len(history) - len(shown)} earlier entries not shown.\n"
        parts.append(head + _json_block(shown))
    else:
        parts.append("## Changes so far\nNone: this is the first revision.")
    if context.pending:
        parts.append("## Already proposed this round\nThese alternatives to the current candidate are being "
                     "evaluated side by side with yours: propose a different change.\n"
                     + _json_block([{"change": p.get("change", ""), "move": p.get("move")} for p in context.pending]))
    parts.append("Answer with one JSON object: " + ANSWER_FORM)
    return "\n\n".join(parts)


def repair_message(*, diagnostics: str | None = None, missing: str | None = None, truncated: bool = False) -> str:
    """What to say after an unusable answer: its check errors, the file it lacked, or that it was cut off."""
    if truncated:
        return ("Your answer was cut off at the length limit before it ended. Answer again with the complete "
                "file and a shorter rationale, as one JSON object: " + ANSWER_FORM)
    if diagnostics is not None:
        return ("`opl check` found errors in your file:\n```\n" + bounded(diagnostics.rstrip("\n"))
                + "\n```\nFix them and answer again with the complete corrected file, as one JSON object: "
                + ANSWER_FORM)
    reason = f" ({missing})" if missing else ""
    return (f"Your answer held no usable OPL-Lang file{reason}. Answer again with the complete file, starting "
            "with `opl-lang 1.0`, as one JSON object: " + ANSWER_FORM)
