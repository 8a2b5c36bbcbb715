"""Project configuration and suppression, as ruff does it: ``[tool.opl]`` or ``opl.toml``.

The configuration of a file is the nearest ``opl.toml``, or ``pyproject.toml`` with a
``[tool.opl]`` table, in its folder or a parent (in one folder ``opl.toml`` wins; a
``pyproject.toml`` without ``[tool.opl]`` is passed over). Keys::

    select = ["W4", "I"]            # codes or prefixes to report (default: every code)
    ignore = ["W405"]               # codes or prefixes not to report
    per-file-ignores = { "scratch/*.opl" = ["W404"] }   # globs relative to the file's folder
    exchange = "CZCE"               # the exchange of a file that names none
    [market]                        # [tool.opl.market]: market inputs of a file that gives none
    rate = 0.02

Between ``select`` and ``ignore`` the more specific prefix wins (``select = ["W405"]``
keeps W405 under ``ignore = ["W4"]``), ``ignore`` on a tie; per-file ignores always
win. On a line, ``# opl: ignore[W405, I401]`` suppresses those codes for findings on
that line (``# opl: ignore`` every code). Errors are never suppressed — a file with an
error does not compile, so hiding it only hides why — and a configuration that ignores
only error codes is refused. `opl check` (every format, SARIF included) and `opl lsp` read the
same `Settings`, `opl compile`/`opl payoff` its defaults; `opl check --show-suppressed` lists
what was suppressed and why.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from opl.lang import vocabulary as vocab
from opl.lang.codes import CODES
from opl.lang.diagnostics import Diagnostic, FileReport, did_you_mean
from opl.errors import EXIT_USAGE, OplError

CONFIG_FILES = ("opl.toml", "pyproject.toml")  # searched in this order in each folder
MARKET_KEYS = ("price", "iv", "rate", "time", "support", "resistance")
_INLINE = re.compile(r"#\s*opl:\s*ignore(?:\[([^\]]*)\])?", re.I)


class ConfigError(OplError, ValueError):
    """A configuration file that cannot be used; the message names the file and the key. A usage error (exit 2)."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one file (`settings_for`)."""

    path: Path | None = None  # the file read; None: the defaults
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exchange: str | None = None
    market: tuple[tuple[str, Any], ...] = ()

    @property
    def root(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def file_ignores(self, file: str | Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The per-file-ignores entries whose glob matches ``file`` (relative to the configuration's folder)."""
        if self.root is None:
            return ()
        try:
            relative = Path(file).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return ()
        name = relative.rsplit("/", 1)[-1]
        return tuple((glob, codes) for glob, codes in self.per_file_ignores
                     if fnmatch.fnmatchcase(relative, glob) or ("/" not in glob and fnmatch.fnmatchcase(name, glob)))

    def reason(self, code: str, file: str | Path) -> str | None:
        """Why ``code`` is not reported for ``file`` under these settings, or None when it is."""
        if CODES[code].severity == "error":
            return None
        where = self.path.name if self.path is not None else "settings"
        for glob, codes in self.file_ignores(file):
            if any(code.startswith(prefix) for prefix in codes):
                return f"per-file-ignores `{glob}` in {where}"
        rules = [(len(p), 0, p) for p in self.select if code.startswith(p)]
        rules += [(len(p), 1, p) for p in self.ignore if code.startswith(p)]
        if not self.select:
            rules.append((0, 0, ""))
        if not rules:
            return f"not in `select` of {where}"
        _, ignored, prefix = max(rules)
        return f"`ignore = [\"{prefix}\"]` in {where}" if ignored else None


@dataclass(frozen=True)
class Suppressed:
    """A finding not reported, and why."""

    diagnostic: Diagnostic
    reason: str


# --------------------------------------------------------------------------- reading


def _codes(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: `{key}` must be a list of codes, e.g. [\"W405\"]")
    for prefix in value:
        if not any(code.startswith(prefix) for code in CODES) or not prefix:
            guess = did_you_mean(prefix, list(CODES))
            raise ConfigError(f"{path}: `{key}`: `{prefix}` is not a code or a prefix of one"
                              + (f" (did you mean `{guess}`?)" if guess else "; `opl explain --list` lists them"))
        if key != "select" and all(CODES[c].severity == "error" for c in CODES if c.startswith(prefix)):
            raise ConfigError(f"{path}: `{key}`: `{prefix}` names only errors, which are never ignored "
                              "(a file with an error does not compile)")
    return tuple(value)


def _per_file(value: Any, key: str, path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: `{key}` must be a table of glob = [codes]")
    return tuple((glob, _codes(codes, f"{key}.\"{glob}\"", path)) for glob, codes in value.items())


def _exchange(value: Any, key: str, path: Path) -> str:
    if value not in vocab.EXCHANGES:
        raise ConfigError(f"{path}: `{key}` must be one of {', '.join(vocab.EXCHANGES)}, found {value!r}")
    return value


def _market_value(name: str, value: Any, path: Path) -> Any:
    if name == "time":
        if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            return value
        try:
            return _dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: `market.time` must be a date (2026-01-05), found {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{path}: `market.{name}` must be a number, found {value!r}")
    if name != "rate" and value <= 0 or name == "iv" and value > 5:
        raise ConfigError(f"{path}: `market.{name}` is out of range: {value!r}")
    return float(value)


def _market(value: Any, key: str, path: Path) -> tuple[tuple[str, Any], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: `{key}` must be a table, e.g. [tool.opl.market] rate = 0.02")
    for name in value:
        if name not in MARKET_KEYS:
            guess = did_you_mean(name, MARKET_KEYS)
            raise ConfigError(f"{path}: unknown key `market.{name}`"
                              + (f" (did you mean `{guess}`?)" if guess else f"; keys: {', '.join(MARKET_KEYS)}"))
    return tuple((name, _market_value(name, v, path)) for name, v in value.items())


# key → (Settings field, reader)
KEYS: dict[str, tuple[str, Callable[[Any, str, Path], Any]]] = {
    "select": ("select", _codes),
    "ignore": ("ignore", _codes),
    "per-file-ignores": ("per_file_ignores", _per_file),
    "exchange": ("exchange", _exchange),
    "market": ("market", _market),
}


def _table(path: Path) -> dict | None:
    """The opl table of a configuration file: the whole ``opl.toml``, ``[tool.opl]`` of a pyproject."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("opl")
        return table if isinstance(table, dict) else None
    return data


def read_settings(path: Path) -> Settings:
    """The settings of one configuration file (`ConfigError` on an unknown key or a bad value)."""
    table = _table(path) or {}
    values: dict[str, Any] = {"path": path}
    for key, value in table.items():
        if key not in KEYS:
            guess = did_you_mean(key, list(KEYS))
            raise ConfigError(f"{path}: unknown key `{key}`"
                              + (f" (did you mean `{guess}`?)" if guess else f"; keys: {', '.join(KEYS)}"))
        name, reader = KEYS[key]
        values[name] = reader(value, key, path)
    return Settings(**values)


def find_config(file: str | Path) -> Path | None:
    """The configuration file nearest ``file``: its folder first, then each parent."""
    start = Path(file).resolve()
    for folder in ([start] if start.is_dir() else []) + list(start.parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if candidate.is_file() and (name != "pyproject.toml" or _table(candidate) is not None):
                return candidate
    return None


_CACHE: dict[Path, tuple[tuple[int, int], Settings]] = {}


def settings_for(file: str | Path) -> Settings:
    """The settings of ``file`` (cached per configuration file until it changes)."""
    config = find_config(file)
    if config is None:
        return Settings()
    status = config.stat()
    stamp = (status.st_mtime_ns, status.st_size)
    cached = _CACHE.get(config)
    if cached is None or cached[0] != stamp:
        cached = (stamp, read_settings(config))
        _CACHE[config] = cached
    return cached[1]


# --------------------------------------------------------------------------- applying


def inline_ignores(text: str) -> dict[int, frozenset[str] | None]:
    """Line → the codes ``# opl: ignore[...]`` names there (None: every code)."""
    from opl.lang.parser import scan_comments

    found: dict[int, frozenset[str] | None] = {}
    for comment in scan_comments(text):
        match = _INLINE.search(comment.text)
        if match:
            codes = match.group(1)
            found[comment.line] = None if codes is None else frozenset(
                c.strip().upper() for c in codes.split(",") if c.strip())
    return found


def _inline_reason(diagnostic: Diagnostic, lines: dict[int, frozenset[str] | None]) -> str | None:
    if CODES[diagnostic.code].severity == "error":
        return None
    span = diagnostic.span
    for line in range(span.line, max(span.end_line, span.line) + 1):
        if line in lines and (lines[line] is None or diagnostic.code in lines[line]):
            return f"`# opl: ignore` on line {line}"
    return None


def apply_settings(report: FileReport, settings: Settings) -> tuple[FileReport, list[Suppressed]]:
    """Split a report into what is reported and what the settings or inline comments suppress."""
    lines = inline_ignores(report.source.text) if "opl:" in report.source.text else {}
    kept: list[Diagnostic] = []
    suppressed: list[Suppressed] = []
    for diagnostic in report.diagnostics:
        reason = settings.reason(diagnostic.code, report.path) or _inline_reason(diagnostic, lines)
        if reason is None:
            kept.append(diagnostic)
        else:
            suppressed.append(Suppressed(diagnostic, reason))
    return FileReport(report.source, kept), suppressed


def with_suppressed(report: FileReport, suppressed: list[Suppressed]) -> FileReport:
    """The report with its suppressed findings added back, each noting why (``--show-suppressed``)."""
    shown = [replace(s.diagnostic, notes=s.diagnostic.notes + (f"suppressed by {s.reason}",)) for s in suppressed]
    return FileReport(report.source, report.diagnostics + shown)


def describe(settings: Settings, file: str | Path) -> str:
    """``opl check --show-settings``: the settings that apply to ``file``, one key a line."""
    def codes(values) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    matched = settings.file_ignores(file)
    lines = [f"file = \"{file}\"",
             f"configuration = \"{settings.path}\"" if settings.path else "configuration = none (defaults)",
             f"select = {codes(settings.select)}" + ("  # every code" if not settings.select else ""),
             f"ignore = {codes(settings.ignore)}",
             "per-file-ignores = {" + ", ".join(f'"{g}" = {codes(c)}' for g, c in settings.per_file_ignores) + "}",
             "per-file-ignores matching this file = {" + ", ".join(f'"{g}" = {codes(c)}' for g, c in matched) + "}",
             f"exchange = {settings.exchange!r}" if settings.exchange else "exchange = none",
             "market = {" + ", ".join(f"{k} = {v}" for k, v in settings.market) + "}"]
    return "\n".join(lines)


def check_options(settings: Settings, base: "CheckOptions | None" = None) -> "CheckOptions":
    """The checker's options with the project's defaults (exchange, market) of ``settings``."""
    from opl.lang.checks import CheckOptions

    return replace(base or CheckOptions(), exchange=settings.exchange, market=settings.market)
