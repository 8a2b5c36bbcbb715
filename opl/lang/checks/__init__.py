"""Semantic checks: pure functions over a `CheckContext`, run in the order of `PASSES`.

Each pass reads the lowered `Document` and the normalised legs and emits diagnostics
into the context's sink; none raises for a user error and none imports numpy.
"""

from __future__ import annotations

from opl.lang.checks.context import DEFAULT_GUARD_CODES, CheckContext, CheckOptions, Pass

__all__ = ["DEFAULT_GUARD_CODES", "CheckContext", "CheckOptions", "Pass", "run_checks"]


def _passes() -> tuple[Pass, ...]:
    from opl.lang.checks import budget, guards, intent, legs, namedfiles, playbook, resources

    return (namedfiles.PASSES + budget.PASSES + legs.PASSES + resources.PASSES + playbook.PASSES + guards.PASSES
            + intent.PASSES)


def run_checks(context: CheckContext) -> None:
    """Run every pass in order."""
    for check in _passes():
        check(context)
