"""Finding rule packs, and the few facts the checker reads from them — without numpy.

`opl check` estimates capital (E301) and worst loss (E302) with the contract
multiplier and margin rate of the file's exchange, but the checker must not import
numpy or pydantic (DESIGN.md). Discovery lives here so that `opl.runtime.market.rules`
(validation, numpy helpers) and the checker share it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PACKS_ENV = "OPL_PACKS_PATH"
BUILTIN_PACKS = Path(__file__).with_name("packs")


def search_dirs(extra: list[str | Path] | tuple = ()) -> list[Path]:
    env = os.environ.get(PACKS_ENV, "")
    user = [Path(p) for p in env.split(os.pathsep) if p.strip()]
    return [Path(p) for p in extra] + user + [BUILTIN_PACKS]


def available_packs(paths: list[str | Path] | tuple = ()) -> dict[str, Path]:
    """Names of the packs that can be loaded, mapped to their files.

    Search order: ``paths``, then the entries of ``OPL_PACKS_PATH``, then the
    built-in packs; an entry is a directory (its ``*.toml`` files) or a single
    ``.toml`` file. The first file of a name wins, so a user pack shadows a
    built-in one of the same name. Files are listed, not validated.
    """
    found: dict[str, Path] = {}
    for entry in search_dirs(paths):
        if entry.is_file() and entry.suffix == ".toml":
            files = [entry]
        elif entry.is_dir():
            files = sorted(entry.glob("*.toml"))
        else:
            continue  # a missing directory on the path is not an error, as with PATH
        for f in files:
            found.setdefault(f.stem, f)
    return found


def symbol_root(symbol: str) -> str:
    """``CJ605`` → ``CJ``; a bare root is returned upper-cased."""
    s = symbol.strip()
    m = re.match(r"^([A-Za-z]{1,3})\d{3,4}(?:\b|[-_ ]?[CPcp])", s)
    return m.group(1).upper() if m else s.upper()


@dataclass(frozen=True)
class PackFacts:
    """What the checker's estimates need from a pack (unvalidated, read as written)."""

    name: str
    currency: str
    multiplier: float
    margin_formula: str
    futures_rate: float
    otm_weight: float
    floor_weight: float
    rate: float = 0.0
    min_rate: float = 0.0
    put_cap_at_strike: bool = False
    combinations: tuple[str, ...] = ()


def pack_facts(exchange: str, symbol: str | None = None) -> PackFacts | None:
    """Facts of the pack covering ``symbol`` on ``exchange``; None when none does or it is unreadable."""
    root = None if symbol is None else symbol_root(symbol)
    specific, generic = [], []
    for name, path in available_packs().items():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # `opl compile` reports a broken pack; the checker only estimates
        names = {str(data.get("exchange", "")).upper()} | {str(a).upper() for a in data.get("exchange_aliases", [])}
        if exchange.upper() not in names:
            continue
        symbols = [str(s).upper() for s in data.get("symbols", [])]
        if root is None or root in symbols:
            specific.append((name, data))
        elif not symbols:
            generic.append((name, data))
    chosen = specific or generic
    if not chosen:
        return None
    name, data = chosen[0]
    option, margin = data.get("option", {}), data.get("margin", {})
    try:
        return PackFacts(name, str(data.get("currency", "")), float(option.get("multiplier", 1.0)),
                         str(margin.get("formula", "")), float(margin.get("futures_rate", 0.0)),
                         float(margin.get("otm_weight", 0.5)), float(margin.get("floor_weight", 0.5)),
                         float(margin.get("rate", 0.0)), float(margin.get("min_rate", 0.0)),
                         bool(margin.get("put_cap_at_strike", False)),
                         tuple(str(c) for c in margin.get("combinations", [])))
    except (TypeError, ValueError):
        return None
