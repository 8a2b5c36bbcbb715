"""The built-in proposer: design fixes first, the critic's directions, a stateless local search that ends."""

from __future__ import annotations

from pathlib import Path

import pytest

import opl
from opl.closedloop.builtin import BuiltinProposer
from opl.closedloop.candidate import Candidate, CandidateError, candidate_sha, check_candidate
from opl.closedloop.proposal import ProposalContext

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "loop"
SUPPORT_STRANGLE_HEAD = (FIXTURES / "support_strangle_head.opl").read_text()
FILE = SUPPORT_STRANGLE_HEAD + """\
experiment {
  model garch + jump
  sizes [ 5, 10, 20 ]
  target median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%
}
"""

RESULT = {"size": 10.0, "sweep": [{"size": 5.0}, {"size": 10.0}, {"size": 20.0}],
          "base": {"target_metrics": {"cvar_95": 2.4}}}


def _propose(text=FILE, diagnosis=None, history=(), proposer=None):
    context = ProposalContext(iteration=len(history) + 1, candidate=text, result=RESULT,
                              diagnosis=diagnosis or {}, history=tuple(history))
    return (proposer or BuiltinProposer()).propose(context, check=check_candidate)


def test_design_fixes_come_first_all_at_once():
    diagnosis = {"defects": [{"code": "no_clustering", "message": "GBM understates the tails",
                              "fix": {"setting": "model", "value": "garch + jump + regime"}},
                             {"code": "no_stress", "message": "no stress", "fix": {"setting": "stress",
                                                                                 "value": "[ gap(-8%) ]"}}],
                 "directions": [{"move": "widen_strikes", "why": "loss"}]}
    p = _propose(diagnosis=diagnosis)
    c = Candidate(p.text)
    assert c.value("model", "experiment") == "garch + jump + regime"
    assert c.value("stress", "experiment") == "[ gap(-8%) ]"
    assert p.change.startswith("design: ") and p.move == "design" and "GBM" in p.rationale
    # A design change the loop refused is not proposed again: the critic's direction comes next.
    refused = [{"candidate_sha": "x", "kind": "design", "accepted": False, "change": p.change}]
    assert _propose(diagnosis=diagnosis, history=refused).move == "widen_strikes"


def test_the_critics_direction_is_followed_with_its_reason_and_a_risk_note():
    diagnosis = {"directions": [{"move": "loosen_exit", "why": "45% of months are closed early"}]}
    p = _propose(diagnosis=diagnosis)
    assert p.move == "loosen_exit" and p.rationale == "45% of months are closed early"
    assert Candidate(p.text).value("exit_triggers") == "[ pnl_percent(<-50%), days_left(<2d) ]"
    assert p.risk and check_candidate(p.text).ok


def test_strike_moves_keep_the_anchors_and_wings_go_beyond_the_shorts():
    widen = _propose(diagnosis={"directions": [{"move": "widen_strikes", "why": "w"}]})
    assert Candidate(widen.text).value("S") == ("short Option(Call, resistance+300, 30d) + "
                                                "short Option(Put, support-300, 30d)")
    wings = _propose(diagnosis={"directions": [{"move": "add_wings", "why": "w"}]})
    legs = [str(leg) for leg in opl.check(wings.text).legs]
    assert "long Option(Put, support-500, 30d)" in legs and "long Option(Call, resistance+500, 30d)" in legs


def test_sizes_extend_past_the_best_size():
    p = _propose(diagnosis={"directions": [{"move": "extend_sizes", "why": "edge"}]})
    assert Candidate(p.text).value("sizes", "experiment") == "[ 5, 10, 15, 20 ]"


def test_same_history_same_proposal_and_tried_texts_are_skipped():
    first, again = _propose(), _propose()
    assert first.text == again.text and first.move == again.move
    second = _propose(history=[{"candidate_sha": candidate_sha(first.text), "move": first.move, "accepted": False}])
    assert candidate_sha(second.text) != candidate_sha(first.text)


def test_the_search_halves_its_steps_and_ends_exhausted():
    history, seen, levels = [], set(), []
    proposer = BuiltinProposer()  # one instance, as in a run: its memo keeps the search linear
    for _ in range(200):
        p = _propose(history=history, proposer=proposer)
        if p.text is None:
            break
        sha = candidate_sha(p.text)
        assert sha not in seen and check_candidate(p.text).ok
        seen.add(sha)
        levels.append("step level" in p.rationale)
        history.append({"candidate_sha": sha, "move": p.move, "accepted": False})
    assert p.text is None and p.exhausted and "converged" in p.failure
    assert levels[0] is False and levels[-1] is True  # the smaller steps come after the first ones
    assert 20 < len(seen) < 200


def test_moves_that_keep_failing_go_to_the_back():
    diagnosis = {"directions": [{"move": "widen_strikes", "why": "w"}, {"move": "raise_hedge_band", "why": "h"}]}
    failed = [{"candidate_sha": f"s{i}", "move": "widen_strikes", "accepted": False} for i in range(2)]
    assert _propose(diagnosis=diagnosis, history=failed).move == "raise_hedge_band"


def test_a_text_is_put_in_canonical_form_once_however_often_the_loop_reads_it(monkeypatch):
    # The loop builds a Candidate of the same text many times a round (proposing, checking, digesting,
    # diagnosing, editing), and each cost three parses: the serial part of a round on a cluster.
    import opl.lang.fmt as fmt

    calls = []
    format_text = fmt.format_text
    monkeypatch.setattr(fmt, "format_text", lambda *a, **k: calls.append(a) or format_text(*a, **k))
    text = "opl-lang 1.0\nprice   480\nS = short Option(Put, 451, 30d)\n"
    first, again = Candidate(text), Candidate(text)
    assert len(calls) == 1
    assert again.text == first.text == "opl-lang 1.0\nprice 480\nS = short Option(Put, 451, 30d)\n"
    assert again.module == first.module and candidate_sha(text) == first.sha
    edited = first.with_field("iv", "0.3", after="price")
    assert "iv 0.3" in edited.text and "iv" not in Candidate(text).text  # the kept form is never edited
    with pytest.raises(CandidateError):  # syntax errors raise each time, never kept
        Candidate("opl-lang 1.0\nprice (\n")
    with pytest.raises(CandidateError):
        Candidate("opl-lang 1.0\nprice (\n")


def test_a_new_candidate_text_is_parsed_twice_not_three_times(monkeypatch):
    # Formatting parses the text and checks the formatted one; that second parse is the candidate's tree
    # (the loop makes ~6 new texts an accepted candidate: stress, sensitivities and counterfactuals removed).
    import opl.lang.fmt as fmt

    calls = []
    real = fmt.parse
    monkeypatch.setattr(fmt, "parse", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    import opl.lang.parser as parser

    monkeypatch.setattr(parser, "parse", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    text = FILE.replace("capital 1000000", "capital 1000001")
    candidate = Candidate(text)
    assert len(calls) == 2
    assert candidate.module == real(candidate.text, "candidate.opl").module
