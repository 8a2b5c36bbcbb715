"""The OpenAI proposer against a scripted OpenAI-compatible server on 127.0.0.1, through the real client."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from opl.closedloop import llm
from opl.closedloop.candidate import check_candidate
from opl.closedloop.llm import OpenAIProposer, ProposerConfigError
from opl.closedloop.proposal import ProposalContext

ROOT = Path(__file__).resolve().parents[2]
STRANGLE = (ROOT / "examples/jujube/strangle.opl").read_text(encoding="utf-8")
BULL_CALL = (ROOT / "examples/tour/bull_call.opl").read_text(encoding="utf-8")
BAD = (ROOT / "examples/tour/bad.opl").read_text(encoding="utf-8")
KEY = "sk-test-0123456789-SECRET"


@pytest.fixture(autouse=True)
def _no_ambient_openai_settings(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


class Checker:
    """`check_candidate` that remembers what it was asked to check."""

    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, text):
        self.texts.append(text)
        return check_candidate(text)


def _context(**changes) -> ProposalContext:
    values = dict(iteration=2, candidate=BULL_CALL,
                  result={"metrics": {"median_monthly_return": 0.4, "loss_probability": 31.0}},
                  diagnosis={"binding": "loss_probability", "advice": "sell further out of the money"},
                  history=({"iteration": 1, "change": "narrower strikes", "outcome": "worse"},),
                  objective={"target": "median_monthly_return >= 1%"})
    values.update(changes)
    return ProposalContext(**values)


def _proposer(server, **options) -> OpenAIProposer:
    settings = dict(api_key=KEY, timeout=5.0)
    settings.update(options)
    return OpenAIProposer("test-model", base_url=server.url, **settings)


def _no_key_anywhere(server, proposal, proposer):
    for request in server.requests:
        assert KEY not in request.raw.decode("utf-8")
    assert KEY not in json.dumps(proposal.transcript)
    assert KEY not in (proposal.failure or "")
    assert KEY not in json.dumps(proposer.config()) and KEY not in repr(proposer)


def test_good_answer(openai_server):
    openai_server.answer(json.dumps({"opl": STRANGLE, "change": "strangle at the levels",
                                     "rationale": "the range held 9 months in 10", "risk": "a gap through"}))
    check = Checker()
    proposer = _proposer(openai_server)
    proposal = proposer.propose(_context(), check=check)
    assert proposal.text == STRANGLE and proposal.failure is None
    assert (proposal.change, proposal.rationale) == ("strangle at the levels", "the range held 9 months in 10")
    assert proposal.risk == "a gap through"
    assert proposal.attempts == 1 and check.texts == [STRANGLE]
    assert proposal.usage == {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    (request,) = openai_server.chat_requests
    body = request.body
    assert body["model"] == "test-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["opl", "change", "rationale", "risk"]
    system, user = body["messages"]
    assert system["role"] == "system" and "OPL-Lang reference" in system["content"]
    assert "### 9.1 The hedge rule" in system["content"] and "`E101`" in system["content"]
    assert BULL_CALL.strip() in user["content"]
    for seen in ("median_monthly_return", "sell further out of the money", "narrower strikes", "Iteration 2"):
        assert seen in user["content"]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert [m["role"] for m in proposal.transcript] == ["system", "user", "assistant"]
    _no_key_anywhere(openai_server, proposal, proposer)


def test_prose_without_a_file_is_asked_again(openai_server):
    openai_server.answer("I would sell a wider strangle and hedge it daily.").answer_json(BULL_CALL)
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text == BULL_CALL and proposal.attempts == 2
    second = openai_server.chat_requests[1].body["messages"]
    assert second[-2] == {"role": "assistant", "content": "I would sell a wider strangle and hedge it daily."}
    assert second[-1]["role"] == "user" and "no usable OPL-Lang file" in second[-1]["content"]
    assert proposal.usage["total_tokens"] == 300


def test_syntax_errors_go_back_for_repair(openai_server):
    openai_server.answer_json(BAD, change="first try").answer_json(BULL_CALL, change="repaired")
    check = Checker()
    proposal = _proposer(openai_server).propose(_context(), check=check)
    assert proposal.text == BULL_CALL and proposal.change == "repaired" and proposal.attempts == 2
    assert check.texts == [BAD, BULL_CALL]
    repair = openai_server.chat_requests[1].body["messages"][-1]["content"]
    rendered = check_candidate(BAD).rendered
    assert "error[E101]" in repair and rendered.strip() in repair


def test_repairs_are_bounded_and_the_failure_recorded(openai_server):
    for _ in range(3):
        openai_server.answer_json(BAD)
    proposal = _proposer(openai_server, max_repairs=2).propose(_context(), check=Checker())
    assert proposal.text is None and proposal.attempts == 3
    assert proposal.failure.startswith("no usable file after 3 answers")
    assert "E101" in proposal.failure
    assert len(openai_server.chat_requests) == 3
    # system, user, then answer / repair / answer / repair / answer: no repair request that was never sent
    assert [m["role"] for m in proposal.transcript] == ["system", "user"] + ["assistant", "user"] * 2 + ["assistant"]


def test_truncated_output_is_not_checked(openai_server):
    half = STRANGLE[: len(STRANGLE) // 2]
    openai_server.answer(json.dumps({"opl": STRANGLE})[: len(half)], finish_reason="length")
    openai_server.answer("```opl\n" + half, finish_reason="length")
    openai_server.answer_json(STRANGLE)
    check = Checker()
    proposal = _proposer(openai_server).propose(_context(), check=check)
    assert proposal.text == STRANGLE and proposal.attempts == 3
    assert check.texts == [STRANGLE]
    note = openai_server.chat_requests[1].body["messages"][-1]["content"]
    assert "cut off at the length limit" in note


def test_always_truncated_ends_cleanly(openai_server):
    for _ in range(2):
        openai_server.answer("opl-lang 1.0\nS = ", finish_reason="length")
    check = Checker()
    proposal = _proposer(openai_server, max_repairs=1).propose(_context(), check=check)
    assert proposal.text is None and check.texts == []
    assert "cut off at the length limit" in proposal.failure


def _gaps(server) -> list[float]:
    """Seconds between consecutive chat requests as the server received them."""
    times = [r.received for r in server.chat_requests]
    return [b - a for a, b in zip(times, times[1:])]


def test_429_and_500_are_retried_by_the_client(openai_server):
    # The openai client's own retries (max_retries): a 429 that names its wait, then a 500 that does not,
    # which waits the client's first backoff (0.5 s less up to 25 % jitter).
    openai_server.error(429, "slow down", kind="rate_limit_error", headers={"retry-after-ms": "10"})
    openai_server.error(500).answer_json(BULL_CALL)
    proposal = _proposer(openai_server, max_retries=3).propose(_context(), check=Checker())
    assert proposal.text == BULL_CALL and proposal.attempts == 1
    assert len(openai_server.chat_requests) == 3
    first, second = _gaps(openai_server)
    assert first >= 0.01 and 0.37 <= second < 5


def test_retry_after_is_honoured(openai_server):
    openai_server.error(429, headers={"Retry-After": "1"}).error(429, headers={"retry-after-ms": "40"})
    openai_server.answer_json(BULL_CALL)
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text == BULL_CALL
    first, second = _gaps(openai_server)
    assert first >= 1.0 and second >= 0.04  # the server's wait: the client's own first backoff is at most 0.5 s


def test_retry_after_beyond_the_limit_gives_up(openai_server):
    openai_server.error(429, "quota", headers={"Retry-After": "3600"})
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text is None and "asked to wait more than 120 s" in proposal.failure
    assert len(openai_server.chat_requests) == 1


def test_persistent_500_ends_the_iteration(openai_server):
    for _ in range(3):
        openai_server.error(500, "model crashed", headers={"retry-after-ms": "1"})
    proposal = _proposer(openai_server, max_retries=2).propose(_context(), check=Checker())
    assert proposal.text is None and proposal.attempts == 0
    assert proposal.failure == "HTTP 500 from the endpoint: model crashed; gave up after 3 attempts"
    assert len(openai_server.chat_requests) == 3


def test_retrying_is_the_clients():
    # Retrying is the openai client's (max_retries, Retry-After); the proposer only configures it.
    proposer = OpenAIProposer("m", base_url="http://127.0.0.1:9/v1", max_retries=4)
    assert proposer._client.max_retries == 4


def test_an_error_body_is_read_only_to_its_cap(openai_server, openai_server_module):
    # 50 MB of error page: the client used to read it whole (`response.read()`) before raising.
    page = b"<html>" + b"x" * 50_000_000
    openai_server.replies.append(openai_server_module.Reply(status=500, raw=page, headers={"Content-Type": "text/html"}))
    proposal = _proposer(openai_server, max_retries=0).propose(_context(), check=Checker())
    assert proposal.failure.startswith("HTTP 500 from the endpoint: ")
    assert proposal.failure.endswith("…; gave up after 1 attempt")
    assert len(proposal.failure) < llm.ERROR_MESSAGE_CHARS + 100
    deadline = time.monotonic() + 10
    while openai_server.cut_off == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the server's thread finds out when its write fails
    assert openai_server.cut_off == 1  # the server could not send it all: the client stopped reading


def test_an_error_message_is_escaped_and_redacted(openai_server):
    openai_server.error(400, f"bad request\nAuthorization: Bearer {KEY}\u2028line " + "y" * 5000)
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    failure = proposal.failure
    assert KEY not in failure and "\n" not in failure and "\u2028" not in failure
    assert failure.startswith("HTTP 400 from the endpoint: bad request\\nAuthorization: ") and "***" in failure
    assert len(failure) < llm.ERROR_MESSAGE_CHARS + 100


def test_timeout_is_retried(openai_server):
    openai_server.stall(2.0).answer_json(STRANGLE)
    proposal = _proposer(openai_server, timeout=0.3).propose(_context(), check=Checker())
    assert proposal.text == STRANGLE
    assert len(openai_server.chat_requests) == 2


def test_persistent_timeout_ends_the_iteration(openai_server):
    openai_server.stall(2.0).stall(2.0)
    proposal = _proposer(openai_server, timeout=0.3, max_retries=1).propose(_context(), check=Checker())
    assert proposal.text is None
    assert proposal.failure == "no response within 0.3 s; gave up after 2 attempts"


def test_unreachable_endpoint_ends_the_iteration():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proposer = OpenAIProposer("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    proposal = proposer.propose(_context(), check=Checker())
    assert proposal.text is None and proposal.failure.startswith(f"cannot connect to http://127.0.0.1:{port}/v1")
    assert proposal.failure.endswith("; gave up after 2 attempts")


def test_structured_output_rejected_falls_back_and_is_remembered(openai_server_module):
    with openai_server_module.OpenAIServer(reject_response_format=True) as server:
        server.answer("Here you go:\n```opl\n" + BULL_CALL + "```\nChange: none\nRationale: it already works")
        server.answer_json(STRANGLE)
        proposer = _proposer(server)
        first = proposer.propose(_context(), check=Checker())
        second = proposer.propose(_context(iteration=3), check=Checker())
        assert first.text == BULL_CALL and first.change == "none" and first.rationale == "it already works"
        assert second.text == STRANGLE
        sent = [("response_format" in r.body) for r in server.chat_requests]
        assert sent == [True, False, False]  # rejected once, then never asked again
        assert proposer.structured_supported is False


def test_structured_output_required_but_rejected(openai_server_module):
    with openai_server_module.OpenAIServer(reject_response_format=True) as server:
        proposal = _proposer(server, structured="json_schema").propose(_context(), check=Checker())
        assert proposal.text is None and "response_format is not supported" in proposal.failure
        assert len(server.chat_requests) == 1


def test_structured_off_sends_no_response_format(openai_server):
    openai_server.answer("opl-lang 1.0\n" + BULL_CALL.split("\n", 1)[1] + "\nWhy: a cheaper call spread.")
    proposal = _proposer(openai_server, structured="off").propose(_context(), check=Checker())
    assert proposal.text == BULL_CALL
    assert "response_format" not in openai_server.chat_requests[0].body


def test_other_bad_request_is_a_failure_not_a_fallback(openai_server):
    openai_server.error(400, "maximum context length is 4096 tokens", kind="invalid_request_error")
    proposer = _proposer(openai_server)
    proposal = proposer.propose(_context(), check=Checker())
    assert proposal.failure == "HTTP 400 from the endpoint: maximum context length is 4096 tokens"
    assert proposer.structured_supported is None and len(openai_server.chat_requests) == 1


def test_unauthorised_and_echoed_key_never_reported(openai_server):
    openai_server.error(401, f"Incorrect API key provided: {KEY}", kind="invalid_request_error")
    proposer = _proposer(openai_server)
    proposal = proposer.propose(_context(), check=Checker())
    assert proposal.failure == "the endpoint refused the API key (401): check OPENAI_API_KEY"
    openai_server.error(404, f"model not found for key {KEY}")
    proposal = proposer.propose(_context(), check=Checker())
    assert proposal.text is None and "***" in proposal.failure
    _no_key_anywhere(openai_server, proposal, proposer)


def test_body_that_is_not_a_completion(openai_server):
    openai_server.garbage()
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text is None and proposal.failure


def test_empty_content_is_asked_again(openai_server):
    openai_server.answer(None).answer("").answer_json(BULL_CALL)
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text == BULL_CALL and proposal.attempts == 3


def test_no_choices_ends_the_iteration(openai_server, openai_server_module):
    body = openai_server_module.completion("unused")
    body["choices"] = []
    openai_server.replies.append(openai_server_module.Reply(body=body))
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text is None and proposal.failure == "the endpoint returned no choices"
    assert proposal.usage["total_tokens"] == 150


def test_key_from_the_environment_and_placeholder_for_local_servers(openai_server, monkeypatch):
    openai_server.answer_json(BULL_CALL).answer_json(BULL_CALL)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    from_env = OpenAIProposer("test-model", base_url=openai_server.url)
    assert from_env.config()["api_key_source"] == "OPENAI_API_KEY"
    assert from_env.propose(_context(), check=Checker()).text == BULL_CALL
    monkeypatch.delenv("OPENAI_API_KEY")
    local = OpenAIProposer("test-model", base_url=openai_server.url)
    assert local.config()["api_key_source"] == "none (placeholder)"
    assert local.propose(_context(), check=Checker()).text == BULL_CALL
    first, second = openai_server.chat_requests
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert second.headers["authorization"] == f"Bearer {llm.PLACEHOLDER_KEY}"


def test_no_key_and_no_endpoint_is_a_usage_error():
    with pytest.raises(ProposerConfigError, match="OPENAI_API_KEY"):
        OpenAIProposer("gpt-4o-mini")


@pytest.mark.parametrize("options, message", [
    (dict(model=""), "model name"),
    (dict(structured="yes"), "structured"),
    (dict(max_repairs=-1), "max_repairs"),
    (dict(timeout=0), "timeout"),
])
def test_bad_settings_are_usage_errors(options, message):
    settings = dict(model="m", base_url="http://127.0.0.1:9/v1")
    settings.update(options)
    with pytest.raises(ProposerConfigError, match=message):
        OpenAIProposer(**settings)


def test_long_context_is_bounded_and_says_so(openai_server):
    openai_server.answer_json(BULL_CALL)
    history = tuple({"iteration": i, "change": f"change {i}"} for i in range(1, 31))
    big = {"paths": list(range(5000))}
    _proposer(openai_server).propose(_context(result=big, history=history), check=Checker())
    user = openai_server.chat_requests[0].body["messages"][1]["content"]
    assert "characters shown]" in user
    assert "18 earlier entries not shown" in user and "change 30" in user and '"change 18"' not in user


# -- untrusted answers (issue 12): echoed keys, malformed bodies, size and time bounds ---------------------

def test_an_echoed_key_or_authorization_header_never_reaches_the_proposal(openai_server):
    # A proxy that echoes the request's headers, or a model that repeats them, in the answer itself.
    echoed = BULL_CALL.replace("\n", f"\n# Authorization: Bearer {KEY}\n", 1)
    openai_server.answer(json.dumps({"opl": echoed, "change": f"used key {KEY}",
                                     "rationale": f'headers {{"authorization": "Bearer {KEY}"}}',
                                     "risk": f"Bearer {KEY}"}))
    proposer = _proposer(openai_server)
    proposal = proposer.propose(_context(), check=Checker())
    assert proposal.text is not None and "# Authorization: ***" in proposal.text
    for text in (proposal.text, proposal.change, proposal.rationale, proposal.risk, json.dumps(proposal.transcript)):
        assert KEY not in text
    assert proposal.change == "used key ***"


@pytest.mark.parametrize("raw, reason", [
    (b"<!DOCTYPE html><html><body>Gateway login</body></html>",
     "the endpoint's response is an HTML page, not a chat completion: starts '<!DOCTYPE html>"),
    (b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "opl-',
     "the endpoint's response is cut off: its JSON ends after 86 bytes"),
    (b"", "the endpoint's response is empty"),
    (b"garbage \xc3\x28 bytes", "the endpoint's response is not UTF-8 text"),
    (b'{"error": {"message": "model overloaded"}}', "the endpoint answered with an error: 'model overloaded'"),
    (b"[1, 2]", "the endpoint's response is JSON but not a chat completion (a list)"),
    (b'{"object": "chat.completion"}', "the endpoint's response is not a chat completion (no `choices` list)"),
    (b'{"choices": [{"message": "hi"}]}', "the endpoint's first choice has no message"),
    (b'{"choices": [{"message": {"content": 42}}]}', "the answer's content is a int, not text"),
    ("plain text\nwith\u2028lines".encode(),
     "the endpoint's response is not JSON, not a chat completion: starts 'plain text\\nwith\\u2028lines'"),
])
def test_a_body_that_is_not_a_completion_gets_a_plain_reason(openai_server, raw, reason):
    openai_server.garbage(raw)
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text is None and proposal.failure.startswith(reason), proposal.failure
    assert "Error" not in proposal.failure and "\n" not in proposal.failure


def test_a_30_mb_answer_is_given_up_at_the_byte_cap_in_bounded_memory(openai_server, openai_server_module):
    import tracemalloc

    body = json.dumps(openai_server_module.completion("x" * 30_000_000)).encode()
    openai_server.replies.append(openai_server_module.Reply(raw=body))
    proposer = _proposer(openai_server)
    tracemalloc.start()
    try:
        proposal = proposer.propose(_context(), check=Checker())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert proposal.text is None
    assert proposal.failure.startswith(f"the response is longer than {llm.MAX_RESPONSE_BYTES:,} bytes")
    assert peak < 8 * llm.MAX_RESPONSE_BYTES  # the old client read and parsed all 30 MB (peak near 1 GB)
    assert len(json.dumps(proposal.transcript)) < 200_000


def test_a_long_answer_is_cut_in_the_transcript_with_a_note(openai_server):
    prose = "no file here, only words. " * 10_000  # 260,000 characters: read, but not archived whole
    openai_server.answer(prose).answer_json(BULL_CALL)
    proposal = _proposer(openai_server).propose(_context(), check=Checker())
    assert proposal.text == BULL_CALL
    first = [m for m in proposal.transcript if m["role"] == "assistant"][0]["content"]
    assert len(first) < llm.MAX_ARCHIVED_CHARS + 100
    assert first.endswith(f"[… {len(prose) - llm.MAX_ARCHIVED_CHARS:,} more characters not archived]")


def test_a_trickling_response_is_given_up_at_the_timeout(openai_server):
    # 16 bytes every 0.1 s: no single read waits as long as the timeout, the whole body would take ~2 min.
    openai_server.trickle("slow " * 1000, 0.1).trickle("slow", 0.1)
    proposal = _proposer(openai_server, timeout=0.5, max_retries=1).propose(_context(), check=Checker())
    assert proposal.failure == "the response did not arrive whole within 0.5 s; gave up after 2 attempts"


def test_a_hung_connection_ends_at_the_client_timeout(openai_server):
    import time

    openai_server.stall(60.0)
    started = time.monotonic()
    proposal = _proposer(openai_server, timeout=0.3, max_retries=0).propose(_context(), check=Checker())
    assert proposal.failure == "no response within 0.3 s; gave up after 1 attempt"
    assert time.monotonic() - started < 5


def test_every_request_bounds_the_answer_and_switches_to_max_completion_tokens_when_asked(openai_server):
    openai_server.error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                             "'max_completion_tokens' instead.", kind="invalid_request_error")
    openai_server.answer_json(BULL_CALL).answer_json(BULL_CALL)
    proposer = _proposer(openai_server)
    assert proposer.propose(_context(), check=Checker()).text == BULL_CALL
    assert proposer.propose(_context(), check=Checker()).text == BULL_CALL
    first, second, third = (r.body for r in openai_server.chat_requests)
    assert first["max_tokens"] == llm.DEFAULT_MAX_TOKENS and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == llm.DEFAULT_MAX_TOKENS and "max_tokens" not in second
    assert "max_tokens" not in third  # remembered for the run
    none = _proposer(openai_server, max_tokens=0)
    openai_server.answer_json(BULL_CALL)
    none.propose(_context(), check=Checker())
    assert "max_tokens" not in openai_server.chat_requests[-1].body
