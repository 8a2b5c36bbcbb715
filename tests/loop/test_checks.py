"""The loop's checks are made once per text: `checked` keeps `check_text`'s result per text, and a round
checks each proposal once for the proposer and for itself (`_RoundChecks`; a whole round:
tests/loop/test_batch.py) — with the same diagnostics as a fresh check."""

from __future__ import annotations

from opl.closedloop import run as loop_run
from opl.closedloop.candidate import check_candidate, checked
from opl.closedloop.run import _RoundChecks
from opl.lang.fileaccess import FileAccess
from opl.lang.frontend import check_text

# A warning (a strike far from the money) and an error (an unknown field) to compare.
FLAWED = """\
opl-lang 1.0
price 480
iv 0.3
S = short Option(Put, 200, 30d)
colour blue
"""


def _findings(result) -> list[tuple]:
    return [(d.code, d.severity, d.message, d.span.start, d.span.end) for d in result.report.sorted()]


def test_a_kept_check_gives_the_diagnostics_and_document_of_a_fresh_one():
    first, again = checked(FLAWED), checked(FLAWED)
    assert again is first  # kept: the second reader parses nothing
    fresh = check_text(FLAWED)
    assert _findings(first) == _findings(fresh) and _findings(fresh)
    assert first.report.has_errors == fresh.report.has_errors
    assert first.document.market.price == fresh.document.market.price == 480
    assert [str(leg) for leg in first.legs] == [str(leg) for leg in fresh.legs]


def test_a_rounds_check_is_the_loops_own_check_made_once(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(loop_run, "check_candidate", lambda *a, **k: calls.append(a) or check_candidate(*a, **k))
    checks = _RoundChecks(FileAccess.within(tmp_path))
    outcome = checks(FLAWED, "iter_1/candidate.opl")
    assert checks(FLAWED, "iter_1/candidate.opl") is outcome and len(calls) == 1
    fresh = check_candidate(FLAWED, "iter_1/candidate.opl", files=FileAccess.within(tmp_path))
    assert outcome == fresh and not outcome.ok and "iter_1/candidate.opl" in outcome.rendered
    checks(FLAWED, "iter_2/candidate.opl")  # another iteration's file: its own check (its name in the output)
    assert len(calls) == 2
