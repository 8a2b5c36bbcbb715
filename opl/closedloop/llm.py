"""The proposer that asks a model behind an OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama,
llama.cpp server, DeepSeek, Qwen, …) for the next candidate.

One `propose` call is one conversation:

1. the system message holds the task and the compact language reference (`opl.closedloop.reference`); the user
   message the current candidate, its results, the critic's diagnosis, the change history and the
   objective (`opl.closedloop.prompt`);
2. the model answers with a complete `.opl` file, a one-line change, a rationale and a risk note as a
   JSON object — enforced with ``response_format`` (JSON schema) where the endpoint supports it, found
   by `opl.closedloop.extract` in whatever shape the answer takes where it does not;
3. the file is checked (`CheckFn`); on errors the rendered diagnostics go back to the model, and an answer
   with no file or cut off at the length limit is asked again — at most ``max_repairs`` times;
4. connection errors, timeouts, 408, 409, 429 and 5xx are retried by the `openai` client itself
   (``max_retries``; exponential backoff with jitter, ``Retry-After`` honoured up to two minutes — a server
   asking for longer is not retried).

**Bounds.** An answer is untrusted text from the network. Every request asks for at most ``max_tokens``
(`DEFAULT_MAX_TOKENS` unless given); every response body is read through `opl.closedloop.transport.BoundedTransport`
and given up, unparsed, past `MAX_RESPONSE_BYTES` (`MAX_ERROR_BYTES` for an error status, whose text is
quoted at most `ERROR_MESSAGE_CHARS` characters, escaped and redacted) or when it has not arrived whole
within ``timeout`` seconds (a server trickling bytes resets no timer). A body that is not a chat completion (an HTML page with status 200, truncated JSON, no
choices, an ``error`` object) ends the request with a plain reason. Each archived message of the transcript
is cut to `MAX_ARCHIVED_CHARS` with a note saying how much was cut. Every answer is passed through
`opl.closedloop.redact.Redactor` as it arrives, so an echoed key or bearer token never reaches a candidate, a
transcript, a summary or the change log.

Whatever goes wrong with the model or the endpoint ends in ``Proposal(text=None, failure=...)``; no
exception escapes `OpenAIProposer.propose`. ``Proposal.attempts`` counts the answers received (a request
that got none after its retries is not an answer); ``usage`` sums their token counts. The API key is given
to the client and nowhere else: it is not an attribute, not in `config`, not in a transcript or a failure
message.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import httpx2
import openai

from opl.closedloop.extract import extract_answer
from opl.closedloop.prompt import ANSWER_SCHEMA, repair_message, system_message, user_message
from opl.closedloop.proposal import CheckFn, Proposal, ProposalContext
from opl.closedloop.redact import Redactor
from opl.errors import EXIT_USAGE, OplError
from opl.closedloop.transport import BodyTooSlow, BoundedTransport

Structured = Literal["auto", "json_schema", "off"]

#: Sent as the key to local servers that need none (Ollama, llama.cpp): the client refuses to start without.
PLACEHOLDER_KEY = "no-key"

#: Longest ``Retry-After`` the `openai` client waits for; a server asking for more is not retried.
MAX_RETRY_AFTER = 120.0

#: ``max_tokens`` asked for when none is given: a candidate is a few thousand tokens, a reasoning model's
#: thinking a few thousand more.
DEFAULT_MAX_TOKENS = 16_384

#: Bytes of one response body read at most (a chat completion holding the largest `.opl` file `opl check`
#: accepts, 256 KiB, JSON-escaped, fits); a longer body is given up unparsed.
MAX_RESPONSE_BYTES = 1_048_576

#: Bytes of an error response's body (status 400 or more) read at most: its message is all that is used.
MAX_ERROR_BYTES = 65_536

#: Characters of an error response's message quoted in the failure.
ERROR_MESSAGE_CHARS = 500

#: Characters of one message kept in the archived transcript; the rest is cut with a note.
MAX_ARCHIVED_CHARS = 65_536

#: Characters of a body that is not a chat completion quoted in the failure.
EXCERPT_CHARS = 80

# What endpoints say when they reject structured output (OpenAI, vLLM, DeepSeek, llama.cpp, Ollama wordings).
_STRUCTURED_REFUSALS = ("response_format", "json_schema", "structured output", "guided", "schema")


class ProposerConfigError(OplError, ValueError):
    """The proposer cannot be set up as asked (no key and no endpoint, bad option); a usage error (exit 2)."""

    exit_code = EXIT_USAGE


class _Unusable(Exception):
    """A request that failed for good after its retries; the message is the failure recorded."""


def escaped(text: str, limit: int) -> str:
    """At most ``limit`` characters of untrusted text on one line (control and line-breaking characters,
    non-ASCII, escaped), with "…" when cut."""
    cut = json.dumps(text[:limit], ensure_ascii=True)[1:-1]  # escapes \n, \u2028, control characters
    return cut + ("…" if len(text) > limit else "")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, escaped, one-line quote of untrusted text (`escaped`, in quotes)."""
    quoted = escaped(text, limit)
    return f"'{quoted[:-1]}'…" if quoted.endswith("…") else f"'{quoted}'"


def archived(messages: list[dict[str, str]]) -> tuple[dict[str, str], ...]:
    """The transcript as archived: each message cut to `MAX_ARCHIVED_CHARS`, with a note when cut."""
    out = []
    for message in messages:
        content = message.get("content") or ""
        if len(content) > MAX_ARCHIVED_CHARS:
            cut = len(content) - MAX_ARCHIVED_CHARS
            content = content[:MAX_ARCHIVED_CHARS] + f"\n[… {cut:,} more characters not archived]"
        out.append({**message, "content": content})
    return tuple(out)


def _completion(data: Any) -> tuple[str | None, str | None, str | None, dict[str, int]]:
    """(content, refusal, finish_reason, usage) of a decoded chat-completion body; `_Unusable` when the body
    is not one (each shape a plain reason)."""
    if not isinstance(data, dict):
        raise _Unusable(f"the endpoint's response is JSON but not a chat completion (a {type(data).__name__})")
    usage: dict[str, int] = {}
    if isinstance(data.get("usage"), dict):
        for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = data["usage"].get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e12:
                usage[field] = int(value)
    error = data.get("error")
    if error is not None and "choices" not in data:
        message = error.get("message") if isinstance(error, dict) else error
        raise _Unusable(f"the endpoint answered with an error: {excerpt(str(message), 300)}")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise _Unusable("the endpoint's response is not a chat completion (no `choices` list)")
    if not choices:
        raise _UsageKept("the endpoint returned no choices", usage)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _UsageKept("the endpoint's first choice has no message", usage)
    content, refusal = message.get("content"), message.get("refusal")
    if content is not None and not isinstance(content, str):
        raise _UsageKept(f"the answer's content is a {type(content).__name__}, not text", usage)
    reason = choice.get("finish_reason")
    return content, refusal if isinstance(refusal, str) else None, reason if isinstance(reason, str) else None, usage


class _UsageKept(_Unusable):
    """`_Unusable` for a body whose token counts still count against the budget."""

    def __init__(self, message: str, usage: dict[str, int]):
        super().__init__(message)
        self.usage = usage


def _asked_too_long(error: openai.APIStatusError) -> bool:
    """Whether the server asked (``Retry-After``, in seconds or ``-ms``) for a wait the client does not make."""
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers.get(name, "")) * scale > MAX_RETRY_AFTER
        except ValueError:
            continue
    return False


def _server_message(error: openai.APIStatusError) -> str:
    """The server's own error message (the client's ``message`` prefixes "Error code: N - ")."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
        message = body["message"].strip()
    elif isinstance(body, str) and body.strip():  # a body that is not JSON (an HTML page), already capped
        message = body.strip()
    else:
        message = str(error.message)
    return escaped(message, ERROR_MESSAGE_CHARS)  # one line: an HTML error page stays readable


class OpenAIProposer:
    """Ask an OpenAI-compatible chat model for the next candidate.

    Parameters
    ----------
    model
        The model name the endpoint serves (``gpt-4o-mini``, ``qwen2.5-coder:14b``, ``deepseek-chat``).
    base_url
        The endpoint (``http://127.0.0.1:11434/v1``); default ``OPENAI_BASE_URL`` or OpenAI's.
    api_key
        Default ``OPENAI_API_KEY``. Without a key, a ``base_url`` gets a placeholder (local servers need
        none); with neither, `ProposerConfigError`.
    max_repairs
        How many more answers to ask for after the first one is unusable (errors from `opl check`, no file,
        cut off at the length limit).
    max_retries
        Retries of one request after a connection error, timeout, 408, 409, 429 or 5xx, made by the `openai`
        client (its exponential backoff; a ``Retry-After`` of at most `MAX_RETRY_AFTER` seconds replaces it).
    timeout
        Seconds to wait for one response, its whole body included.
    structured
        ``"auto"`` asks for JSON-schema output and falls back to plain text for the rest of the run when the
        endpoint rejects it; ``"json_schema"`` always asks for it (a rejection is a failure); ``"off"``
        never asks.
    temperature
        Passed to the endpoint when given.
    max_tokens
        The longest answer asked for (default `DEFAULT_MAX_TOKENS`; 0 sends none, for endpoints that
        refuse the parameter).
    """

    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 max_repairs: int = 2, max_retries: int = 3, timeout: float = 120.0,
                 structured: Structured = "auto", temperature: float | None = None,
                 max_tokens: int | None = DEFAULT_MAX_TOKENS):
        if not model or not model.strip():
            raise ProposerConfigError("the openai proposer needs a model name (--model)")
        if structured not in ("auto", "json_schema", "off"):
            raise ProposerConfigError(f"structured must be auto, json_schema or off, not {structured!r}")
        for label, value in (("max_repairs", max_repairs), ("max_retries", max_retries),
                             ("max_tokens", max_tokens or 0)):
            if value < 0:
                raise ProposerConfigError(f"{label} must be 0 or more, not {value}")
        if timeout <= 0:
            raise ProposerConfigError(f"timeout must be positive, not {timeout}")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if key is None and base_url is None:
            raise ProposerConfigError(
                "the openai proposer needs an API key (set OPENAI_API_KEY) or the --base-url of an "
                "OpenAI-compatible server")
        self._key_source = "argument" if api_key else ("OPENAI_API_KEY" if key else "none (placeholder)")
        self.model = model
        self.base_url = base_url
        self.max_repairs = max_repairs
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.structured: Structured = structured
        self.temperature = temperature
        self.max_tokens = max_tokens or None
        # None until the endpoint has answered a structured request (True) or rejected one (False).
        self.structured_supported: bool | None = None
        # The parameter that bounds the answer; OpenAI's reasoning models refuse `max_tokens` and name the other.
        self._token_limit: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
        # The client retries; the transport bounds every body it reads, error bodies included.
        self._transport = BoundedTransport(max_bytes=MAX_RESPONSE_BYTES, max_error_bytes=MAX_ERROR_BYTES,
                                           seconds=self.timeout)
        self._client = openai.OpenAI(api_key=key or PLACEHOLDER_KEY, base_url=base_url, timeout=self.timeout,
                                     max_retries=max_retries,
                                     http_client=openai.DefaultHttpxClient(transport=self._transport))
        self._redactor = Redactor([key])  # scrubs the key (and any bearer token) from answers and failures
        self._system = system_message()  # built once: a reference that cannot be built fails here, not mid-run

    def __repr__(self) -> str:
        return f"OpenAIProposer(model={self.model!r}, base_url={self.base_url!r})"

    def redact(self, text: str) -> str:
        """``text`` without this proposer's key or any bearer token (`opl.closedloop.redact`)."""
        return self._redactor.redact(text)

    def config(self) -> dict[str, Any]:
        """The settings to archive with a run; never the key (only where it came from)."""
        return {
            "proposer": self.name, "model": self.model, "base_url": self.base_url,
            "api_key_source": self._key_source, "structured": self.structured,
            "max_repairs": self.max_repairs, "max_retries": self.max_retries, "timeout": self.timeout,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    # -- the conversation -------------------------------------------------------------------------------

    def propose(self, context: ProposalContext, *, check: CheckFn) -> Proposal:
        """Ask for, check and repair one candidate (see the module docstring); never raises for the model."""
        messages = [{"role": "system", "content": self._system},
                    {"role": "user", "content": user_message(context)}]
        usage: dict[str, int] = {}
        answers = 0
        problems: list[str] = []

        def failed(reason: str) -> Proposal:
            return Proposal(text=None, change="", rationale="", failure=self.redact(reason), attempts=answers,
                            usage=usage, transcript=archived(messages))

        for round_ in range(1 + self.max_repairs):
            if round_:
                messages.append({"role": "user", "content": repair})  # sent only when another answer is asked
            try:
                content, finish_reason = self._ask(messages, usage)
            except _Unusable as error:
                return failed(str(error))
            answers += 1
            messages.append({"role": "assistant", "content": content})
            if finish_reason == "length":
                # Half a file would check with misleading errors (unclosed brackets, missing exit module).
                problems.append("the answer was cut off at the length limit")
                repair = repair_message(truncated=True)
                continue
            answer = extract_answer(content)
            if answer.opl is None:
                problems.append(answer.problem or "no file in the answer")
                repair = repair_message(missing=answer.problem)
                continue
            outcome = check(answer.opl)
            if outcome.ok:
                return Proposal(text=answer.opl, change=answer.change, rationale=answer.rationale,
                                risk=answer.risk, attempts=answers, usage=usage,
                                transcript=archived(messages))
            problems.append("opl check found errors" + (f" ({', '.join(outcome.codes)})" if outcome.codes else ""))
            repair = repair_message(diagnostics=outcome.rendered)
        return failed(f"no usable file after {answers} answer{'s' if answers != 1 else ''}: "
                      + "; ".join(problems))

    # -- one request, with retries and the structured-output fallback ------------------------------------

    def _use_structured(self) -> bool:
        if self.structured == "off":
            return False
        return self.structured == "json_schema" or self.structured_supported is not False

    def _ask(self, messages: list[dict[str, str]], usage: dict[str, int]) -> tuple[str, str | None]:
        """(content, finish_reason) of one answer, redacted; raises `_Unusable` when none could be had."""
        while True:
            structured = self._use_structured()
            try:
                body = self._request(messages, structured)
            except openai.BadRequestError as error:
                if structured and self.structured == "auto" and self._refuses_structured(error):
                    self.structured_supported = False  # remembered for the rest of the run
                    continue
                if self._token_limit == "max_tokens" and "max_completion_tokens" in _error_text(error):
                    self._token_limit = "max_completion_tokens"  # OpenAI's reasoning models; for the run
                    continue
                raise _Unusable(self._describe(error)) from None
            if structured:
                self.structured_supported = True
            break
        try:
            content, refusal, finish_reason, counts = _completion(_decoded(body))
        except _UsageKept as error:
            _add(usage, error.usage)
            raise
        _add(usage, counts)
        content = self.redact(content or "")
        if finish_reason == "length":
            return content, "length"
        if not content:
            return (f"(refused: {self.redact(refusal)})" if refusal else ""), finish_reason
        return content, finish_reason

    def _request(self, messages: list[dict[str, str]], structured: bool) -> bytes:
        """The body of one successful response (at most `MAX_RESPONSE_BYTES`), after the retries."""
        options: dict[str, Any] = {}
        if structured:
            options["response_format"] = {"type": "json_schema", "json_schema": ANSWER_SCHEMA}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.max_tokens is not None:
            options[self._token_limit] = self.max_tokens
        self._transport.sent = 0
        try:
            return self._read(messages, options)
        except openai.BadRequestError:
            raise  # the caller decides whether it rejects structured output
        except openai.OpenAIError as error:
            raise _Unusable(self._describe(error) + self._gave_up(error)) from None
        except httpx2.HTTPError as error:  # not wrapped by the client when raised past its retries
            raise _Unusable(f"the connection failed: {escaped(str(error), EXCERPT_CHARS)}") from None

    def _read(self, messages: list[dict[str, str]], options: dict[str, Any]) -> bytes:
        """Send one request (the client retrying it) and return its body, at most `MAX_RESPONSE_BYTES`."""
        create = self._client.chat.completions.with_raw_response.create
        body = create(model=self.model, messages=messages, **options).http_response.content
        if len(body) > MAX_RESPONSE_BYTES:  # the transport kept one byte past the cap to show it was passed
            raise _Unusable(f"the response is longer than {MAX_RESPONSE_BYTES:,} bytes: it was not "
                            f"read further (lower max_tokens, or ask the model for the file alone)")
        return body

    def _gave_up(self, error: openai.OpenAIError) -> str:
        """Why the client stopped retrying, for a failure it retries; empty for one it does not."""
        if isinstance(error, openai.APIStatusError):
            if _asked_too_long(error):
                return f"; the server asked to wait more than {MAX_RETRY_AFTER:.0f} s"
            if not (error.status_code in (408, 409, 429) or error.status_code >= 500):
                return ""
        elif not isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
            return ""
        attempts = self._transport.sent or 1  # a connection refused never reaches the transport's count
        return f"; gave up after {attempts} attempt{'s' if attempts != 1 else ''}"

    @staticmethod
    def _refuses_structured(error: openai.BadRequestError) -> bool:
        text = _error_text(error)
        return any(word in text for word in _STRUCTURED_REFUSALS)

    def _describe(self, error: Exception) -> str:
        if isinstance(error, openai.AuthenticationError):
            # Some servers echo (part of) the key in this message: say nothing of it.
            return "the endpoint refused the API key (401): check OPENAI_API_KEY"
        if isinstance(error, openai.APITimeoutError):
            if isinstance(error.__cause__, BodyTooSlow):
                return f"the response did not arrive whole within {self.timeout:g} s"
            return f"no response within {self.timeout:g} s"
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__
            return f"cannot connect to {self.base_url or 'the OpenAI API'}" + (f" ({cause})" if cause else "")
        if isinstance(error, openai.APIStatusError):
            return f"HTTP {error.status_code} from the endpoint: {_server_message(error)}"
        return f"{type(error).__name__}: {error}"



def _error_text(error: openai.BadRequestError) -> str:
    """The error's message and body, lower-cased, to look for the parameter a server refuses."""
    text = str(error.message).lower()
    try:
        text += json.dumps(error.body).lower()
    except (TypeError, ValueError):
        pass
    return text


def _add(usage: dict[str, int], counts: dict[str, int]) -> None:
    for field, value in counts.items():
        usage[field] = usage.get(field, 0) + value


def _decoded(body: bytes) -> Any:
    """The JSON value of a response body; `_Unusable` with a plain reason (and an escaped excerpt) if none."""
    if not body.strip():
        raise _Unusable("the endpoint's response is empty")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise _Unusable("the endpoint's response is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        text = body.decode("utf-8", errors="replace")
        if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string"):
            raise _Unusable(f"the endpoint's response is cut off: its JSON ends after {len(body):,} bytes "
                            f"({error.msg})") from None
        what = "an HTML page" if text.lstrip()[:1] == "<" else "not JSON"
        raise _Unusable(f"the endpoint's response is {what}, not a chat completion: starts "
                        f"{excerpt(text.lstrip())}") from None
