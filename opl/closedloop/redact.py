"""Keeping credentials out of everything `opl loop` archives or prints.

A proxy or a model may echo the request's ``Authorization`` header (or the key alone) in its answer; the
answer then flows into ``candidate.opl``, the transcript, the summaries, the change log and the report.
`Redactor` replaces, in any text:

* every secret it was given (the run's API key) wherever it occurs and in the encodings an echo may take
  (`encoded_forms`): JSON-escaped (once or twice, ``/`` as ``\\/``), URL-encoded, base64 (standard and
  URL-safe alphabets, at each of the three alignments it can take inside a longer encoded text, so also
  inside ``Basic`` credentials or an encoded header dump) — each also when split across lines (a line
  break, or an escaped ``\\n``, between any two characters, as base64 is wrapped at 64 or 76);
* the value of any bearer token (``Bearer <token>``, also ``Bearer%20<token>`` or ``Bearer+<token>`` in a
  URL) and of any ``Authorization`` header, in header form
  (``Authorization: …``) or as a JSON or Python mapping entry (``"authorization": "…"``);
* anything shaped like an OpenAI-style key (``sk-…``, ``sk-proj-…``), the key of another account included.

The replacement is `MASK`. The proposer applies it to every answer as it arrives, and the run folder
applies it again to every file it writes (`opl.closedloop.archive.RunArchive`), so a secret that reached a
record by another way is still not written.

>>> Redactor(["sk-abc123"]).redact('{"Authorization": "Bearer sk-abc123"} and sk-abc123')
'{"Authorization": "***"} and ***'
"""

from __future__ import annotations

import base64
import json
import re
from typing import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "Redactor", "encoded_forms", "redact"]

MASK = "***"

# The value after `Authorization`, as a header line or a mapping entry (quoted or not); up to the closing
# quote, else the line end or a backslash (a JSON-escaped newline of an answer not yet decoded).
_AUTHORIZATION = re.compile(
    r"""(?P<head>\bauthorization["']?\s*[:=]\s*)(?:(?P<quote>["'])(?:\\.|(?!(?P=quote))[^\r\n\\])*(?P=quote)|[^\r\n,;}\]"'\\]+)""",
    re.I)
_BEARER = re.compile(r"(?P<head>\bbearer(?:\s+|%20|\+))(?P<value>[A-Za-z0-9._~+/=%-]{4,})", re.I)
_KEY_SHAPE = re.compile(r"\bsk-(?:proj-|ant-|or-)?[A-Za-z0-9_-]{16,}")


# What may split a secret across lines: a line break, or the escaped one of a JSON string.
_SPLIT = r"(?:\r?\n|\\r\\n|\\n)?"


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters that encode only ``secret``'s bits, for each alignment it can take in a longer
    encoded text (0, 1 or 2 bytes before it in its 3-byte group) and each alphabet."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret).decode("ascii")
        first, last = -(-8 * offset // 6), 8 * (offset + len(secret)) // 6  # characters wholly inside the secret
        core = encoded[first:last]
        cores.update({core, core.replace("+", "-").replace("/", "_")})
    return cores


def encoded_forms(secret: str) -> set[str]:
    """``secret`` as it may be echoed: itself, JSON-escaped (once, twice, with ``\\/``), URL-encoded
    (``%XX`` for reserved characters or for every byte, upper or lower case hex) and base64 (`_base64_cores`)."""
    forms = {secret}
    once = json.dumps(secret)[1:-1]
    forms.update({once, json.dumps(once)[1:-1], once.replace("/", "\\/")})
    raw = secret.encode("utf-8")
    every = "".join(f"%{byte:02X}" for byte in raw)
    forms.update({quote(secret, safe=""), quote_plus(secret, safe=""), every, every.lower()})
    forms.update(_base64_cores(raw))
    return {form for form in forms if len(form) >= 4}


class Redactor:
    """Replace ``secrets`` (in every `encoded_forms`, also split across lines) and the token shapes of the
    module docstring by `MASK` in text.

    Parameters
    ----------
    secrets
        Exact strings never to write (empty or very short strings are ignored: masking every ``a`` would
        only garble the text).
    """

    def __init__(self, secrets: Iterable[str | None] = ()):
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                forms.update(encoded_forms(secret))
        # Longest first, so a form is masked whole before a shorter one inside it could be.
        ordered = sorted(forms, key=len, reverse=True)
        self._split = re.compile("|".join(_SPLIT.join(re.escape(c) for c in form) for form in ordered)) \
            if ordered else None

    def redact(self, text: str) -> str:
        """``text`` with every secret and token value replaced by `MASK`."""
        if not text:
            return text
        if self._split is not None:
            text = self._split.sub(MASK, text)
        text = _AUTHORIZATION.sub(lambda m: m.group("head") + (m.group("quote") or "") + MASK
                                  + (m.group("quote") or ""), text)
        text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
        return _KEY_SHAPE.sub(MASK, text)

    __call__ = redact


def redact(text: str) -> str:
    """`Redactor.redact` without a known secret: token shapes only."""
    return _PLAIN.redact(text)


_PLAIN = Redactor()
