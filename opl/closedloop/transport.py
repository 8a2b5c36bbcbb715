"""The HTTP transport under the OpenAI client: every response body read whole, within a byte cap and a deadline.

The `openai` client retries connection errors, timeouts, 408, 409, 429 and 5xx itself (``max_retries``,
``Retry-After`` honoured up to two minutes). What it does not bound is the body: an error body is read to its
end (``response.read()``) however long it is, and a body trickled a few bytes at a time resets the read
timeout at every byte. `BoundedTransport` sits between the client and the network and, for every response:

* reads the body (decompressed: a gzip bomb counts by what it inflates to) before handing it on, and keeps at
  most one byte past its cap — `max_bytes` for a successful response, `max_error_bytes` for a 4xx/5xx — so
  the caller sees that the cap was passed and nothing beyond it is ever held;
* raises `BodyTooSlow` (an ``httpx2.ReadTimeout``) when the body has not arrived whole ``seconds`` after the
  request was sent, which the client retries as the timeout it is;
* counts the requests sent (`sent`), retries included, so a failure can say how many attempts it took.
"""

from __future__ import annotations

from time import monotonic

import httpx2

__all__ = ["BodyTooSlow", "BoundedTransport"]

# Headers that describe the body as it came over the wire, no longer true of the decoded, cut body handed on.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class BodyTooSlow(httpx2.ReadTimeout):
    """The response's body did not arrive whole within the deadline."""


class BoundedTransport(httpx2.BaseTransport):
    """Read each response body whole, within a byte cap and a deadline (see the module docstring).

    Parameters
    ----------
    max_bytes
        Bytes of a successful response's body kept at most (one more is kept to show the cap was passed).
    max_error_bytes
        The same for a response with status 400 or more.
    seconds
        Time from sending the request to the body's last byte.
    inner
        The transport that talks to the network (default ``httpx2.HTTPTransport()``).
    """

    def __init__(self, *, max_bytes: int, max_error_bytes: int, seconds: float,
                 inner: httpx2.BaseTransport | None = None):
        self.max_bytes = max_bytes
        self.max_error_bytes = max_error_bytes
        self.seconds = seconds
        self.sent = 0
        self._inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent += 1
        started = monotonic()
        response = self._inner.handle_request(request)
        limit = self.max_bytes if response.status_code < 400 else self.max_error_bytes
        # A response over the raw stream, only to read it decoded (`iter_bytes` undoes the content encoding).
        wire = httpx2.Response(response.status_code, headers=response.headers, stream=response.stream,
                               request=request)
        body = bytearray()
        try:
            for chunk in wire.iter_bytes():
                body += chunk
                if len(body) > limit:
                    del body[limit + 1:]
                    break  # closing mid-body drops the connection: the rest is never read
                if monotonic() - started > self.seconds:
                    raise BodyTooSlow(f"the body did not arrive whole within {self.seconds:g} s", request=request)
        finally:
            wire.close()
        headers = [(name, value) for name, value in response.headers.multi_items()
                   if name.lower() not in _WIRE_HEADERS]
        return httpx2.Response(response.status_code, headers=headers, content=bytes(body), request=request,
                               extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()
