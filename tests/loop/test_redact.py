"""`opl.closedloop.redact`: the run's key never written, in any encoding an echo may give it."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote, urlencode

import pytest

from opl.closedloop.redact import MASK, Redactor, redact

KEY = "sk-test-0123456789/SECRET+key=="  # '/', '+' and '=' make its encodings differ from it


def _wrapped(text: str, width: int) -> str:
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


def _basic(user: str) -> str:
    return base64.b64encode(f"{user}:{KEY}".encode()).decode()


ECHOES = {
    "plain": f"the key is {KEY}.",
    "json-escaped": json.dumps({"headers": {"x": KEY}}),
    "json twice": json.dumps(json.dumps({"x": KEY})),
    "json with escaped slashes": '{"x": "' + KEY.replace("/", "\\/") + '"}',
    "url-encoded": "https://proxy/?" + urlencode({"key": KEY}),
    "url-encoded, quote": "key=" + quote(KEY, safe=""),
    "every byte percent-encoded": "".join(f"%{b:02x}" for b in KEY.encode()),
    "base64 alone": base64.b64encode(KEY.encode()).decode(),
    "base64 url-safe": base64.urlsafe_b64encode(KEY.encode()).decode(),
    "basic credentials, offset 0": "Proxy-Authorization: Basic " + _basic("ab"),
    "basic credentials, offset 1": "X-Basic " + _basic("a"),
    "basic credentials, offset 2": "X-Basic " + _basic(""),
    "base64 of a header dump": base64.b64encode(f"GET / HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\n".encode()).decode(),
    "split across lines": f"key: {KEY[:10]}\n{KEY[10:]}",
    "split by an escaped newline": json.dumps(f"{KEY[:7]}\n{KEY[7:]}"),
    "base64 wrapped at 76": _wrapped(base64.b64encode(("x" * 50 + KEY + "y" * 50).encode()).decode(), 76),
    "base64 wrapped at 8": _wrapped(base64.b64encode(KEY.encode()).decode(), 8),
}


@pytest.mark.parametrize("form", sorted(ECHOES))
def test_every_encoding_of_the_key_is_masked(form):
    text = ECHOES[form]
    out = Redactor([KEY]).redact(text)
    assert MASK in out, (form, out)
    # No decoding of what is left gives the key back (the edges of a base64 core keep at most a few bits).
    assert KEY not in out and KEY[4:-4] not in out.replace("\n", "").replace("\\n", "")
    for decode in (lambda t: base64.b64decode(t + "==", validate=False), lambda t: base64.urlsafe_b64decode(t + "==")):
        for token in out.replace("\n", "").split():
            try:
                assert KEY[4:-4].encode() not in decode(token), (form, out)
            except ValueError:
                pass


def test_bearer_tokens_in_urls_are_masked():
    assert redact("Authorization=Bearer%20abcdefgh1234") == "Authorization=***"
    assert redact("?auth=Bearer%20abcdefgh1234&x=1") == "?auth=Bearer%20***&x=1"
    assert redact("?auth=Bearer+abcdefgh1234") == "?auth=Bearer+***"


def test_ordinary_text_is_left_alone():
    text = "strangle at the 0.2 delta; base64 is not a key; the key word is 'key'."
    assert Redactor([KEY]).redact(text) == text


def test_redacting_a_large_answer_stays_fast():
    text = ("opl-lang 1.0\nS = strangle(delta 0.2)\n" * 30_000)[:1_048_576]
    redactor = Redactor([KEY])
    started = time.perf_counter()
    assert redactor.redact(text) == text
    assert time.perf_counter() - started < 2.0
