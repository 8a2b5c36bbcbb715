"""Finding the file, the change and the rationale in the shapes models answer in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opl.lang.frontend import check_text
from opl.closedloop.extract import MAX_CHANGE_CHARS, MAX_RATIONALE_CHARS, extract_answer

ROOT = Path(__file__).resolve().parents[2]
STRANGLE = (ROOT / "examples/jujube/strangle.opl").read_text(encoding="utf-8")
BULL_CALL = (ROOT / "examples/tour/bull_call.opl").read_text(encoding="utf-8")


def test_whole_answer_is_json():
    text = json.dumps({"opl": STRANGLE, "change": "wider strikes", "rationale": "less gamma"})
    answer = extract_answer(text)
    assert (answer.form, answer.opl, answer.change, answer.rationale) == ("json", STRANGLE, "wider strikes",
                                                                         "less gamma")
    assert answer.problem is None


def test_json_amid_prose_and_in_a_json_fence():
    payload = json.dumps({"opl": BULL_CALL, "change": "c", "rationale": "r"}, indent=2)
    text = f"Sure! Here is the revision.\n```json\n{payload}\n```\nLet me know if you need more."
    answer = extract_answer(text)
    assert answer.form == "json" and answer.opl == BULL_CALL


def test_json_with_raw_newlines_inside_the_string():
    text = '{"opl": "' + BULL_CALL + '", "change": "none", "rationale": "same"}'
    answer = extract_answer(text)
    assert answer.form == "json" and answer.opl == BULL_CALL and check_text(answer.opl).ok


def test_json_without_opl_field_is_skipped_for_a_later_one():
    text = '{"note": 1} and then {"opl": "opl-lang 1.0\\nS = long Stock\\n", "change": "x", "rationale": "y"}'
    answer = extract_answer(text)
    assert answer.opl == "opl-lang 1.0\nS = long Stock\n"


def test_json_with_non_string_opl_is_a_problem_unless_a_file_is_elsewhere():
    answer = extract_answer('{"opl": 3, "change": "", "rationale": ""}')
    assert answer.opl is None and "not a non-empty string" in answer.problem
    answer = extract_answer('{"opl": null}\n```opl\n' + BULL_CALL + "```\n")
    assert answer.form == "fenced" and answer.opl == BULL_CALL


def test_fenced_block_with_labelled_prose():
    text = f"Change: sell further out\nRationale: the 30-day move rarely reaches it.\n\n```opl\n{STRANGLE}```\n"
    answer = extract_answer(text)
    assert answer.form == "fenced" and answer.opl == STRANGLE
    assert answer.change == "sell further out"
    assert answer.rationale == "the 30-day move rarely reaches it."


def test_fenced_block_unlabelled_prose_becomes_change_and_rationale():
    text = f"Narrower hedge band.\nIt trades less often.\n```\n{BULL_CALL}```\nDone."
    answer = extract_answer(text)
    assert answer.form == "fenced" and answer.opl == BULL_CALL
    assert answer.change == "Narrower hedge band."
    assert "It trades less often." in answer.rationale and "Done." in answer.rationale


def test_last_of_several_fenced_files_is_taken_and_noted():
    text = f"Old:\n```opl\n{BULL_CALL}```\nNew:\n```opl\n{STRANGLE}```\n"
    answer = extract_answer(text)
    assert answer.opl == STRANGLE and "2 fenced blocks" in answer.note


def test_mislabelled_fence_is_taken_but_an_opl_tag_wins():
    answer = extract_answer(f"```text\n{BULL_CALL}```\n")
    assert answer.form == "fenced" and answer.opl == BULL_CALL
    answer = extract_answer(f"```opl\n{STRANGLE}```\n```yaml\n{BULL_CALL}```\n")
    assert answer.opl == STRANGLE


def test_unterminated_fence_runs_to_the_end():
    answer = extract_answer(f"```opl\n{BULL_CALL}")
    assert answer.form == "fenced" and answer.opl == BULL_CALL


def test_bare_file_amid_prose_stops_at_prose():
    text = f"Here is my proposal:\n\n{STRANGLE}\nI widened the strikes because the range held.\n- more text\n"
    answer = extract_answer(text)
    assert answer.form == "header"
    assert answer.opl == STRANGLE
    assert check_text(answer.opl).ok
    assert "widened the strikes" in answer.rationale
    assert answer.note == "prose after the file was not taken as part of it"


def test_bare_file_keeps_bracketed_lines_that_look_like_prose():
    text = "opl-lang 1.0\nS = long Stock\nexit_triggers [\n    Pnl_percent(>5%),\n    days_left(<2d)\n]\n"
    assert extract_answer(text).opl == text


def test_prose_without_a_file():
    answer = extract_answer("I would sell a strangle at support and resistance with a delta hedge.")
    assert answer.opl is None and answer.form == "none" and "no OPL-Lang file" in answer.problem


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_answer(text):
    answer = extract_answer(text)
    assert answer.opl is None and answer.problem == "the answer was empty"


def test_free_text_fields_are_bounded():
    text = json.dumps({"opl": BULL_CALL, "change": "c" * 5000, "rationale": "r" * 50000})
    answer = extract_answer(text)
    assert len(answer.change) <= MAX_CHANGE_CHARS and len(answer.rationale) <= MAX_RATIONALE_CHARS


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gives_an_answer_without_raising(text):
    answer = extract_answer(text)
    assert (answer.opl is None) == (answer.problem is not None)


def test_risk_note_from_json_and_from_labels():
    answer = extract_answer(json.dumps({"opl": BULL_CALL, "change": "c", "rationale": "r", "risk": "gap risk"}))
    assert answer.risk == "gap risk"
    answer = extract_answer(f"Change: c\nRisk: assignment before expiry\n```opl\n{BULL_CALL}```")
    assert (answer.change, answer.risk) == ("c", "assignment before expiry")
    assert extract_answer(f"```opl\n{BULL_CALL}```").risk == ""
