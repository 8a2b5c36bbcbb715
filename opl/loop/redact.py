"""Keeping credentials out of everything `opl loop` archives or prints.

A proxy or a model may echo the request's ``Authorization`` header (or the key alone) in its answer; the
answer then flows into ``candidate.opl``, the transcript, the summaries, the change log and the report.
`Redactor` replaces, in any text:

* every secret it was given (the run's API key) wherever it occurs, also JSON-escaped;
* the value of any bearer token (``Bearer <token>``) and of any ``Authorization`` header, in header form
  (``Authorization: …``) or as a JSON or Python mapping entry (``"authorization": "…"``);
* anything shaped like an OpenAI-style key (``sk-…``, ``sk-proj-…``), the key of another account included.

The replacement is `MASK`. The proposer applies it to every answer as it arrives, and the run folder
applies it again to every file it writes (`opl.loop.archive.RunArchive`), so a secret that reached a
record by another way is still not written.

>>> Redactor(["sk-abc123"]).redact('{"Authorization": "Bearer sk-abc123"} and sk-abc123')
'{"Authorization": "***"} and ***'
"""

from __future__ import annotations

import json
import re
from typing import Iterable

__all__ = ["MASK", "Redactor", "redact"]

MASK = "***"

# The value after `Authorization`, as a header line or a mapping entry (quoted or not); up to the closing
# quote, else the line end or a backslash (a JSON-escaped newline of an answer not yet decoded).
_AUTHORIZATION = re.compile(
    r"""(?P<head>\bauthorization["']?\s*[:=]\s*)(?:(?P<quote>["'])(?:\\.|(?!(?P=quote))[^\r\n\\])*(?P=quote)|[^\r\n,;}\]"'\\]+)""",
    re.I)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{4,})", re.I)
_KEY_SHAPE = re.compile(r"\bsk-(?:proj-|ant-|or-)?[A-Za-z0-9_-]{16,}")


class Redactor:
    """Replace ``secrets`` (and the token shapes of the module docstring) by `MASK` in text.

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
                forms.add(secret)
                forms.add(json.dumps(secret)[1:-1])  # as it appears inside a JSON string
        self._secrets = tuple(sorted(forms, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with every secret and token value replaced by `MASK`."""
        if not text:
            return text
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _AUTHORIZATION.sub(lambda m: m.group("head") + (m.group("quote") or "") + MASK
                                  + (m.group("quote") or ""), text)
        text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
        return _KEY_SHAPE.sub(MASK, text)

    __call__ = redact


def redact(text: str) -> str:
    """`Redactor.redact` without a known secret: token shapes only."""
    return _PLAIN.redact(text)


_PLAIN = Redactor()
