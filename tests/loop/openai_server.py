"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests: the real `openai` client talks to it.

Each ``POST /v1/chat/completions`` takes the next scripted reply from a queue (a chat completion, an error
status, a delay longer than the client's timeout, a body that is not JSON, a body trickled a few bytes at
a time) and records the request's body
and headers. ``GET /v1/models`` lists the one model. With ``reject_response_format`` set, any request that
asks for ``response_format`` gets a 400 naming it, as servers without structured output answer, without
taking a reply from the queue. An empty queue answers 418 (not retried by any client), so a test that
asks more than it scripted fails visibly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted response: ``status`` with a JSON ``body`` (or ``raw`` bytes), after ``delay`` seconds;
    with ``trickle`` the body is sent 16 bytes at a time, ``trickle`` seconds apart."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes
    received: float = 0.0  # time.monotonic() when it arrived: the waits between retries are measured


def completion(content: str | None, *, finish_reason: str = "stop", model: str = "test-model",
               prompt_tokens: int = 100, completion_tokens: int = 50) -> dict[str, Any]:
    """A chat-completion body as OpenAI's API returns it."""
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


class OpenAIServer:
    """The server; use as a context manager (``with OpenAIServer() as server: ... server.url``)."""

    def __init__(self, *, model: str = "test-model", reject_response_format: bool = False):
        self.model = model
        self.reject_response_format = reject_response_format
        self.replies: deque[Reply] = deque()
        self.requests: list[Request] = []
        self.cut_off = 0  # replies whose body the client stopped reading before its end
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -----------------------------------------------------------------------------------

    def answer(self, content: str | None, *, finish_reason: str = "stop", prompt_tokens: int = 100,
               completion_tokens: int = 50) -> OpenAIServer:
        """Queue a completion whose message is ``content``."""
        self.replies.append(Reply(body=completion(content, finish_reason=finish_reason, model=self.model,
                                                  prompt_tokens=prompt_tokens,
                                                  completion_tokens=completion_tokens)))
        return self

    def answer_json(self, opl: str, change: str = "a change", rationale: str = "a reason") -> OpenAIServer:
        """Queue a completion holding the JSON answer ``{opl, change, rationale}``."""
        return self.answer(json.dumps({"opl": opl, "change": change, "rationale": rationale}))

    def error(self, status: int, message: str = "scripted error", *, headers: dict[str, str] | None = None,
              kind: str = "server_error") -> OpenAIServer:
        """Queue an error status with an OpenAI-style error body."""
        self.replies.append(Reply(status=status, body=error_body(message, kind=kind), headers=headers or {}))
        return self

    def stall(self, seconds: float) -> OpenAIServer:
        """Queue a reply that comes only after ``seconds`` (longer than the client's timeout)."""
        self.replies.append(Reply(body=completion("too late", model=self.model), delay=seconds))
        return self

    def garbage(self, raw: bytes = b"<html>502 Bad Gateway</html>") -> OpenAIServer:
        """Queue a 200 whose body is not JSON."""
        self.replies.append(Reply(raw=raw, headers={"Content-Type": "application/json"}))
        return self

    def trickle(self, content: str, seconds: float) -> OpenAIServer:
        """Queue a completion whose body arrives 16 bytes every ``seconds`` (no single read times out)."""
        self.replies.append(Reply(body=completion(content, model=self.model), trickle=seconds))
        return self

    # -- inspection ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- serving -------------------------------------------------------------------------------------

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if request.method == "GET" and request.path.rstrip("/").endswith("/models"):
                return Reply(body={"object": "list", "data": [{"id": self.model, "object": "model",
                                                               "created": 0, "owned_by": "test"}]})
            if request.method != "POST" or not request.path.endswith("/chat/completions"):
                return Reply(status=404, body=error_body(f"no route {request.method} {request.path}"))
            if request.body is None:
                return Reply(status=400, body=error_body("the body is not JSON"))
            if self.reject_response_format and "response_format" in request.body:
                return Reply(status=400, body=error_body("response_format is not supported by this server",
                                                         param="response_format"))
            if not self.replies:
                return Reply(status=418, body=error_body("test server: no scripted reply left"))
            return self.replies.popleft()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                  body if isinstance(body, dict) else None, raw, time.monotonic())
                reply = server._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if reply.trickle:
                        for start in range(0, len(payload), 16):
                            self.wfile.write(payload[start:start + 16])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    server.cut_off += 1  # the client gave up (timeout, or enough read) before the end

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        return Handler

    def __enter__(self) -> OpenAIServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a stalled reply must not hold up the test's end
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
