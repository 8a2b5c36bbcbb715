"""The proposer that asks a model behind an OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama,
llama.cpp server, DeepSeek, Qwen, …) for the next candidate.

One `propose` call is one conversation:

1. the system message holds the task and the compact language reference (`opl.loop.reference`); the user
   message the current candidate, its results, the critic's diagnosis, the change history and the
   objective (`opl.loop.prompt`);
2. the model answers with a complete `.opl` file, a one-line change, a rationale and a risk note as a
   JSON object — enforced with ``response_format`` (JSON schema) where the endpoint supports it, found
   by `opl.loop.extract` in whatever shape the answer takes where it does not;
3. the file is checked (`CheckFn`); on errors the rendered diagnostics go back to the model, and an answer
   with no file or cut off at the length limit is asked again — at most ``max_repairs`` times;
4. connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff (``Retry-After``
   honoured) up to ``max_retries`` times per request.

Whatever goes wrong with the model or the endpoint ends in ``Proposal(text=None, failure=...)``; no
exception escapes `OpenAIProposer.propose`. ``Proposal.attempts`` counts the answers received (a request
that got none after its retries is not an answer); ``usage`` sums their token counts. The API key is given
to the client and nowhere else: it is not an attribute, not in `config`, not in a transcript or a failure
message.
"""

from __future__ import annotations

import json
import os
from time import sleep
from typing import Any, Literal

import openai

from opl.loop.extract import extract_answer
from opl.loop.prompt import ANSWER_SCHEMA, repair_message, system_message, user_message
from opl.loop.proposal import CheckFn, Proposal, ProposalContext

Structured = Literal["auto", "json_schema", "off"]

#: Sent as the key to local servers that need none (Ollama, llama.cpp): the client refuses to start without.
PLACEHOLDER_KEY = "no-key"

#: Longest wait honoured from a ``Retry-After`` header; a server asking for more is treated as unavailable.
MAX_RETRY_AFTER = 120.0

# What endpoints say when they reject structured output (OpenAI, vLLM, DeepSeek, llama.cpp, Ollama wordings).
_STRUCTURED_REFUSALS = ("response_format", "json_schema", "structured output", "guided", "schema")


class ProposerConfigError(ValueError):
    """The proposer cannot be set up as asked (no key and no endpoint, bad option); a usage error."""


class _Unusable(Exception):
    """A request that failed for good after its retries; the message is the failure recorded."""


def _retry_after(error: openai.APIStatusError) -> float | None:
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            return None  # an HTTP-date: fall back to our own backoff
    return None


def _server_message(error: openai.APIStatusError) -> str:
    """The server's own error message (the client's ``message`` prefixes "Error code: N - ")."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
        message = body["message"].strip()
    else:
        message = str(error.message)
    return message if len(message) <= 500 else message[:499] + "…"  # an HTML error page stays readable


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
        Retries of one request after a connection error, timeout, 408, 429 or 5xx.
    timeout
        Seconds to wait for one response.
    backoff, max_backoff
        The first retry waits ``backoff`` seconds, each next one twice as long, at most ``max_backoff``;
        a ``Retry-After`` header of at most `MAX_RETRY_AFTER` seconds replaces the computed wait.
    structured
        ``"auto"`` asks for JSON-schema output and falls back to plain text for the rest of the run when the
        endpoint rejects it; ``"json_schema"`` always asks for it (a rejection is a failure); ``"off"``
        never asks.
    temperature, max_tokens
        Passed to the endpoint when given.
    """

    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 max_repairs: int = 2, max_retries: int = 3, timeout: float = 120.0, backoff: float = 1.0,
                 max_backoff: float = 30.0, structured: Structured = "auto", temperature: float | None = None,
                 max_tokens: int | None = None):
        if not model or not model.strip():
            raise ProposerConfigError("the openai proposer needs a model name (--model)")
        if structured not in ("auto", "json_schema", "off"):
            raise ProposerConfigError(f"structured must be auto, json_schema or off, not {structured!r}")
        for label, value in (("max_repairs", max_repairs), ("max_retries", max_retries)):
            if value < 0:
                raise ProposerConfigError(f"{label} must be 0 or more, not {value}")
        if timeout <= 0 or backoff < 0 or max_backoff < 0:
            raise ProposerConfigError("timeout must be positive and backoff times not negative")
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
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.structured: Structured = structured
        self.temperature = temperature
        self.max_tokens = max_tokens
        # None until the endpoint has answered a structured request (True) or rejected one (False).
        self.structured_supported: bool | None = None
        # Retries are ours (the client's are off) so their count and waits are configurable and testable.
        self._client = openai.OpenAI(api_key=key or PLACEHOLDER_KEY, base_url=base_url, timeout=self.timeout,
                                     max_retries=0)
        self._secret = key  # only to scrub it from error messages a server might echo
        self._system = system_message()  # built once: a reference that cannot be built fails here, not mid-run

    def __repr__(self) -> str:
        return f"OpenAIProposer(model={self.model!r}, base_url={self.base_url!r})"

    def config(self) -> dict[str, Any]:
        """The settings to archive with a run; never the key (only where it came from)."""
        return {
            "proposer": self.name, "model": self.model, "base_url": self.base_url,
            "api_key_source": self._key_source, "structured": self.structured,
            "max_repairs": self.max_repairs, "max_retries": self.max_retries, "timeout": self.timeout,
            "backoff": self.backoff, "max_backoff": self.max_backoff, "temperature": self.temperature,
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
            return Proposal(text=None, change="", rationale="", failure=self._scrub(reason), attempts=answers,
                            usage=usage, transcript=tuple(dict(m) for m in messages))

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
                                transcript=tuple(dict(m) for m in messages))
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
        """(content, finish_reason) of one answer; raises `_Unusable` when none could be had."""
        while True:
            structured = self._use_structured()
            try:
                response = self._request(messages, structured)
            except openai.BadRequestError as error:
                if structured and self.structured == "auto" and self._refuses_structured(error):
                    self.structured_supported = False  # remembered for the rest of the run
                    continue
                raise _Unusable(self._describe(error)) from None
            if structured:
                self.structured_supported = True
            break
        if response.usage is not None:
            for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
                usage[field] = usage.get(field, 0) + int(getattr(response.usage, field, 0) or 0)
        if not response.choices:
            raise _Unusable("the endpoint returned no choices")
        choice = response.choices[0]
        content = choice.message.content if choice.message is not None else None
        if choice.finish_reason == "length":
            return content or "", "length"
        if not content:
            refusal = getattr(choice.message, "refusal", None)
            return (f"(refused: {refusal})" if refusal else ""), choice.finish_reason
        return content, choice.finish_reason

    def _request(self, messages: list[dict[str, str]], structured: bool):
        options: dict[str, Any] = {}
        if structured:
            options["response_format"] = {"type": "json_schema", "json_schema": ANSWER_SCHEMA}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        retries = 0
        while True:
            try:
                return self._client.chat.completions.create(model=self.model, messages=messages, **options)
            except (openai.APIConnectionError, openai.APIStatusError) as error:
                if not self._retryable(error):
                    if isinstance(error, openai.BadRequestError):
                        raise  # the caller decides whether it rejects structured output
                    raise _Unusable(self._describe(error)) from None
                if retries >= self.max_retries:
                    raise _Unusable(f"{self._describe(error)}; gave up after {retries + 1} attempt"
                                    f"{'s' if retries else ''}") from None
                delay = self._delay(retries, error)
                if delay is None:
                    raise _Unusable(f"{self._describe(error)}; the server asked to wait more than "
                                    f"{MAX_RETRY_AFTER:.0f} s") from None
                sleep(delay)
                retries += 1
            except openai.OpenAIError as error:
                raise _Unusable(self._describe(error)) from None
            except ValueError as error:
                # A 200 whose body is not a chat completion (a proxy's HTML page, truncated JSON).
                raise _Unusable(f"the endpoint's response could not be read: {error}") from None

    @staticmethod
    def _retryable(error: openai.OpenAIError) -> bool:
        if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
            return True
        return isinstance(error, openai.APIStatusError) and (error.status_code in (408, 429)
                                                             or error.status_code >= 500)

    def _delay(self, retries: int, error: openai.OpenAIError) -> float | None:
        if isinstance(error, openai.APIStatusError):
            asked = _retry_after(error)
            if asked is not None:
                return None if asked > MAX_RETRY_AFTER else max(0.0, asked)
        return min(self.backoff * 2.0 ** retries, self.max_backoff)

    @staticmethod
    def _refuses_structured(error: openai.BadRequestError) -> bool:
        text = str(error.message).lower()
        try:
            text += json.dumps(error.body).lower()
        except (TypeError, ValueError):
            pass
        return any(word in text for word in _STRUCTURED_REFUSALS)

    def _describe(self, error: openai.OpenAIError) -> str:
        if isinstance(error, openai.AuthenticationError):
            # Some servers echo (part of) the key in this message: say nothing of it.
            return "the endpoint refused the API key (401): check OPENAI_API_KEY"
        if isinstance(error, openai.APITimeoutError):
            return f"no response within {self.timeout:g} s"
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__
            return f"cannot connect to {self.base_url or 'the OpenAI API'}" + (f" ({cause})" if cause else "")
        if isinstance(error, openai.APIStatusError):
            return f"HTTP {error.status_code} from the endpoint: {_server_message(error)}"
        return f"{type(error).__name__}: {error}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text
