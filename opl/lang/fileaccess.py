"""Files an `.opl` names (``calibration file("…")``): where they may be, and how they are read.

Two rules, one per kind of author:

* **A confined file** — a candidate of `opl loop`, written by a model, or any file checked with
  ``opl check --confine DIR`` — may name only a relative path to a regular file inside one of the allowed
  folders (the run folder and the ``--data`` folder): an absolute path, a ``..`` component, a symbolic link
  leading out, a device, a FIFO, a socket, a folder, a missing file and a file above
  `opl.lang.limits.MAX_NAMED_FILE_BYTES` are refused with E015 by `opl check`, from the path and ``stat``
  alone — nothing is opened.
* **A user's own file** (`opl simulate`, `opl backtest`) may name any relative or absolute path, but
  `read_regular` reads only a regular file under the same size cap: ``/dev/zero``, ``/dev/stdin`` or a FIFO
  are refused without a read that could hang or exhaust memory.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from opl.lang import limits
from opl.errors import OplError

__all__ = ["FileAccess", "NamedFileError", "read_regular", "quoted"]

#: Characters of a name or a value from a file quoted in a message.
QUOTE_CHARS = 60


class NamedFileError(OplError, ValueError):
    """A named file is refused (the message says why) or cannot be read."""


def quoted(value: object, limit: int = QUOTE_CHARS) -> str:
    """A short, escaped, one-line quote of untrusted text: at most ``limit`` characters, control, non-ASCII
    and line-breaking characters (U+2028 too) escaped, so a value from a file cannot forge lines or leak
    more than a glimpse of itself.

    >>> quoted("TOPSECRET\\nline two")
    "'TOPSECRET\\\\nline two'"
    """
    text = value if isinstance(value, str) else repr(value)
    escaped = json.dumps(text[:limit], ensure_ascii=True)[1:-1]
    return f"'{escaped}'" + ("…" if len(text) > limit else "")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _size_refusal(size: int, cap: int) -> str | None:
    return None if size <= cap else f"is {size:,} bytes, above the cap of {cap:,} bytes"


@dataclass(frozen=True)
class FileAccess:
    """The folders a confined file may name files in; a relative name is looked up in each, in order.

    Parameters
    ----------
    roots
        The allowed folders (``opl loop``: the run folder, then the ``--data`` folder).
    max_bytes
        The size cap (default `opl.lang.limits.MAX_NAMED_FILE_BYTES`).
    """

    roots: tuple[Path, ...]
    max_bytes: int = limits.MAX_NAMED_FILE_BYTES

    @classmethod
    def within(cls, *roots: str | os.PathLike | None) -> "FileAccess":
        """The access of the given folders (None entries skipped)."""
        return cls(tuple(Path(r) for r in roots if r is not None))

    def _where(self) -> str:
        return " or ".join(str(r) for r in self.roots) or "no folder"

    def locate(self, name: str) -> tuple[Path | None, str | None]:
        """(the file, None) when ``name`` is allowed, else (None, why not); reads no file (``stat`` only)."""
        if not name.strip():
            return None, "names no file"
        if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or name.startswith("~") \
                or PureWindowsPath(name).drive:
            return None, "is an absolute path"
        parts = PureWindowsPath(name).parts  # splits on `/` and `\` alike
        if ".." in parts:
            return None, "leaves the allowed folders (`..`)"
        for root in self.roots:
            candidate = root / name
            try:
                info = os.stat(candidate)  # follows links: the target is what would be read
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as error:
                return None, f"cannot be examined ({getattr(error, 'strerror', None) or error})"
            real, top = os.path.realpath(candidate), os.path.realpath(root)
            if os.path.commonpath([real, top]) != top:
                return None, "is a symbolic link leading outside the allowed folders"
            if not stat.S_ISREG(info.st_mode):
                return None, f"is {_kind(info.st_mode)}, not a regular file"
            too_big = _size_refusal(info.st_size, self.max_bytes)
            if too_big:
                return None, too_big
            return candidate, None
        return None, f"is not a file in {self._where()}"

    def resolve(self, name: str) -> Path:
        """The allowed file ``name`` names; `NamedFileError` saying why not."""
        path, refusal = self.locate(name)
        if path is None:
            raise NamedFileError(f"{quoted(name)} {refusal}")
        return path


def read_regular(path: str | os.PathLike, max_bytes: int = limits.MAX_NAMED_FILE_BYTES) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``max_bytes``; `NamedFileError` otherwise.

    The file is opened without blocking (a FIFO with no writer would block an ordinary open) and examined
    through the open descriptor, so what is read is what was examined; at most ``max_bytes + 1`` bytes are
    read even if the file grows meanwhile.

    Raises
    ------
    FileNotFoundError, PermissionError, OSError
        As ``open`` raises them.
    NamedFileError
        Not a regular file, or above the cap.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NamedFileError(f"{path}: {_kind(info.st_mode)}, not a regular file: not read")
        too_big = _size_refusal(info.st_size, max_bytes)
        if too_big:
            raise NamedFileError(f"{path}: {too_big}: not read")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = handle.read(max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    if total > max_bytes:
        raise NamedFileError(f"{path}: grew above the cap of {max_bytes:,} bytes while read: not read")
    return b"".join(chunks)
