"""`opl loop --proposer openai` end to end against the scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.cli import main

KEY = "sk-e2e-0123456789-SECRET"

# A small, fast file: GBM, two months, the loop's --paths decides the rest.
STRANGLE_HEAD = (Path(__file__).resolve().parents[1] / "fixtures" / "loop" / "strangle_head.opl").read_text()
SMALL = STRANGLE_HEAD + """\
experiment {
  model gbm
  paths 50
  seed 7
  horizon 2
  target median_monthly_return >= 1% and loss_probability <= 25%
}
"""
WIDER_BAND = SMALL.replace("band 0.05", "band 0.1")
FURTHER_OUT = SMALL.replace("ATM-5%", "ATM-8%")


@pytest.fixture(autouse=True)
def _key_in_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def _answer(server, opl: str, change: str, rationale: str, risk: str) -> None:
    server.answer(json.dumps({"opl": opl, "change": change, "rationale": rationale, "risk": risk}))


def _loop(tmp_path: Path, server, *extra: str):
    source = tmp_path / "small.opl"
    source.write_text(SMALL, encoding="utf-8")
    args = ["loop", str(source), "--max-iter", "2", "--runs", str(tmp_path / "runs"), "--proposer", "openai",
            "--model", "test-model", "--base-url", server.url, "--paths", "50", "--holdout-paths", "50", *extra]
    result = CliRunner().invoke(main, args)
    runs = sorted((tmp_path / "runs").glob("small-*"))
    return result, runs


def _no_key_in(run: Path) -> None:
    for path in run.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".opl", ".txt"):
            assert KEY not in path.read_text(encoding="utf-8"), path


def test_two_iterations_archive_the_candidates_and_never_the_key(tmp_path, openai_server):
    _answer(openai_server, WIDER_BAND, "wider hedge band", "fewer hedge trades cost less", "bigger delta swings")
    _answer(openai_server, FURTHER_OUT, "put further out", "the put was hit in down months", "less premium")
    result, runs = _loop(tmp_path, openai_server)
    assert result.exit_code == 0, result.output
    (run,) = runs
    assert (run / "iter_1" / "candidate.opl").read_text(encoding="utf-8") == WIDER_BAND
    assert (run / "iter_2" / "candidate.opl").read_text(encoding="utf-8") == FURTHER_OUT
    for iteration in ("iter_0", "iter_1", "iter_2"):
        config = json.loads((run / iteration / "config.json").read_text(encoding="utf-8"))
        assert config["proposer"]["proposer"] == "openai" and config["proposer"]["model"] == "test-model"
        assert config["proposer"]["api_key_source"] == "OPENAI_API_KEY"
    transcript = json.loads((run / "iter_1" / "transcript.json").read_text(encoding="utf-8"))
    assert "OPL-Lang reference" in json.dumps(transcript)
    change_log = (run / "change_log.md").read_text(encoding="utf-8")
    for text in ("wider hedge band", "fewer hedge trades cost less", "bigger delta swings", "put further out"):
        assert text in change_log
    _no_key_in(run)
    # The second proposal was asked from the context of the first: its results reached the model.
    first, second = openai_server.chat_requests
    assert "Iteration 2" in second.body["messages"][1]["content"]
    assert "wider hedge band" in second.body["messages"][1]["content"]
    for request in openai_server.chat_requests:
        assert KEY not in request.raw.decode("utf-8")
        assert request.headers["authorization"] == f"Bearer {KEY}"


def test_unusable_answers_end_the_iteration_and_the_loop_goes_on(tmp_path, openai_server):
    for _ in range(3):  # the first answer and its two repairs
        openai_server.answer("I would sell further out of the money and keep the hedge.")
    _answer(openai_server, FURTHER_OUT, "put further out", "less assignment", "less premium")
    result, runs = _loop(tmp_path, openai_server)
    assert result.exit_code == 0, result.output
    (run,) = runs
    record = json.loads((run / "iter_1" / "result.json").read_text(encoding="utf-8"))
    assert record["proposal"]["failure"].startswith("no usable file after 3 answers")
    assert (run / "iter_2" / "candidate.opl").read_text(encoding="utf-8") == FURTHER_OUT
    assert len(openai_server.chat_requests) == 4
    _no_key_in(run)


def test_openai_proposer_usage_errors(tmp_path, monkeypatch):
    source = tmp_path / "small.opl"
    source.write_text(SMALL, encoding="utf-8")
    runs = tmp_path / "runs"
    no_model = CliRunner().invoke(main, ["loop", str(source), "--runs", str(runs), "--proposer", "openai",
                                         "--base-url", "http://127.0.0.1:9/v1"])
    assert no_model.exit_code == 2 and "model name" in no_model.output
    monkeypatch.delenv("OPENAI_API_KEY")
    no_key = CliRunner().invoke(main, ["loop", str(source), "--runs", str(runs), "--proposer", "openai",
                                       "--model", "gpt-4o-mini"])
    assert no_key.exit_code == 2 and "OPENAI_API_KEY" in no_key.output
    assert not runs.exists() or not any(runs.iterdir())


def test_resume_asks_the_recorded_endpoint_and_model(tmp_path, openai_server):
    _answer(openai_server, WIDER_BAND, "wider hedge band", "fewer trades", "delta swings")
    first, runs = _loop(tmp_path, openai_server, "--max-iter", "1")
    assert first.exit_code == 0, first.output
    (run,) = runs
    _answer(openai_server, FURTHER_OUT, "put further out", "less assignment", "less premium")
    # No --proposer, --model or --base-url: the run's own settings are used; the key still comes from the
    # environment, never from the archive.
    again = CliRunner().invoke(main, ["loop", "--resume", str(run), "--max-iter", "2"])
    assert again.exit_code == 0, again.output
    assert (run / "iter_2" / "candidate.opl").read_text(encoding="utf-8") == FURTHER_OUT
    assert [r.body["model"] for r in openai_server.chat_requests] == ["test-model", "test-model"]
    _no_key_in(run)


def test_a_cost_budget_stops_the_loop_at_the_token_prices(tmp_path, openai_server):
    # 100 prompt + 50 completion tokens an answer at 1,000 and 2,000 per million: 0.2 a proposal.
    _answer(openai_server, WIDER_BAND, "wider hedge band", "fewer hedge trades cost less", "bigger delta swings")
    _answer(openai_server, FURTHER_OUT, "put further out", "the put was hit in down months", "less premium")
    result, runs = _loop(tmp_path, openai_server, "--max-iter", "5", "--cost", "0.15", "--token-price", "1000,2000")
    assert result.exit_code == 0, result.output
    (run,) = runs
    assert (run / "iter_1").is_dir() and not (run / "iter_2").exists()
    stop = json.loads((run / "final" / "holdout.json").read_text(encoding="utf-8"))["stop"]
    assert stop["kind"] == "budget_cost" and "0.2 of 0.15" in stop["reason"]


def test_an_endpoint_that_refuses_every_call_gives_no_answer_and_fails(tmp_path, openai_server):
    for _ in range(2):
        openai_server.error(403, "this key may not use test-model", kind="permission_denied")
    result, runs = _loop(tmp_path, openai_server)  # the third call finds the queue empty: 418
    assert result.exit_code == 3, result.output
    assert "No answer: no proposal could be obtained" in result.output
    assert "No." not in result.output
    (run,) = runs
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "**No answer:** no proposal could be obtained — the proposer failed on all 2 iterations" in report
    _no_key_in(run)
