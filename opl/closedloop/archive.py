"""The run folder (``--runs DIR``): atomic writes, one folder per finished iteration, resume.

Layout of a run ``DIR/<stem>-NNN/``::

    run.json            the run's fixed settings (seeds, paths, target, stop rules, proposer; never a key)
    initial.opl         the file the run started from
    define_metrics.md   the objective and the metrics (written at the start)
    data_contracts.md   the data contracts (copied from examples/jujube/data_contracts.md)
    data/, assumptions/, calibration/   the data stage, when the run has data
    iter_0/ … iter_k/   candidate.opl, config.json, result.json, summary.md (+ transcript.json)
    change_log.md       change, reason, metric impact and risk note of every iteration (rewritten each time)
    report.md, final/   the final report, its plots and the hold-out re-measure

**Atomicity.** A file is written to a temporary name in its folder and moved over the target with
`os.replace`; an iteration's folder is filled as ``iter_k.partial/`` and renamed to ``iter_k/`` in one
step once all its files are written. So an ``iter_k/`` folder is always complete, and a run killed at any
moment loses at most the iteration it was computing: ``--resume`` removes leftover ``*.partial`` folders
and the temporary files of writes a kill interrupted (``.NAME.PID.tmp``, anywhere in the run), and
continues after the last complete iteration, recomputing nothing that finished.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from opl.closedloop.redact import redact
from opl.errors import EXIT_USAGE, OplError

__all__ = ["RunArchive", "ArchiveError"]

SCHEMA = "opl.loop.run/1"
_ITER = re.compile(r"^iter_(\d+)$")
# The temporary name `_atomic_write` gives a file before it replaces the target.
_TEMPORARY = re.compile(r"^\..+\.\d+\.tmp$")


class ArchiveError(OplError, ValueError):
    """The folder is not a run this version of `opl loop` can resume; a usage error (exit 2)."""

    exit_code = EXIT_USAGE


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = _temporary_name(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class RunArchive:
    """One run folder.

    Every text it writes passes through ``redact`` first (default `opl.closedloop.redact.redact`, bearer tokens
    and key shapes; `opl.closedloop.run.run_loop` sets the proposer's, which also knows the run's key), so no
    credential is written whichever way it reached a record.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.redact: Callable[[str], str] = redact

    # ------------------------------------------------------------------ create / open

    @classmethod
    def create(cls, runs: str | os.PathLike, stem: str, *, initial_text: str, settings: dict[str, Any]) -> "RunArchive":
        """Create ``runs/<stem>-NNN`` (the next free number) with ``run.json`` and ``initial.opl``."""
        runs = Path(runs)
        runs.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "run"
        taken = [int(m.group(1)) for p in runs.iterdir() if (m := re.fullmatch(re.escape(stem) + r"-(\d+)", p.name))]
        number = max(taken, default=0) + 1
        while True:
            root = runs / f"{stem}-{number:03d}"
            try:
                root.mkdir()
                break
            except FileExistsError:  # another run took the number meanwhile
                number += 1
        archive = cls(root)
        archive.write_text("initial.opl", initial_text)
        archive.write_json("run.json", {"schema": SCHEMA, **settings})
        return archive

    @classmethod
    def open(cls, root: str | os.PathLike) -> "RunArchive":
        """Open an existing run for ``--resume``; removes unfinished ``*.partial`` iteration folders and the
        temporary files of interrupted writes."""
        root = Path(root)
        if not (root / "run.json").is_file():
            raise ArchiveError(f"{root}: not an `opl loop` run (no run.json)")
        archive = cls(root)
        settings = archive.read_json("run.json")
        if settings.get("schema") != SCHEMA:
            raise ArchiveError(f"{root}/run.json: unknown schema {settings.get('schema')!r} (expected {SCHEMA})")
        for leftover in root.glob("iter_*.partial"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in root.rglob(".*.tmp"):
            # A kill between the write and the `os.replace` leaves the temporary file; the target is intact.
            if _TEMPORARY.match(leftover.name) and leftover.is_file() and not leftover.is_symlink():
                leftover.unlink(missing_ok=True)
        return archive

    # ------------------------------------------------------------------ files

    def path(self, relative: str) -> Path:
        return self.root / relative

    def write_text(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, self.redact(text).encode("utf-8"))
        return path

    def write_json(self, relative: str, data: Any) -> Path:
        return self.write_text(relative, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")

    def read_json(self, relative: str) -> Any:
        try:
            return json.loads((self.root / relative).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ArchiveError(f"{self.root / relative}:{error.lineno}:{error.colno}: {error.msg}") from None

    def settings(self) -> dict[str, Any]:
        return self.read_json("run.json")

    # ------------------------------------------------------------------ iterations

    def iteration_numbers(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.root.iterdir() if p.is_dir() and (m := _ITER.match(p.name)))

    def iterations(self) -> list[dict[str, Any]]:
        """The ``result.json`` of every complete iteration, in order."""
        out = []
        for k in self.iteration_numbers():
            out.append(self.read_json(f"iter_{k}/result.json"))
        return out

    def candidate(self, iteration: int) -> str:
        return (self.root / f"iter_{iteration}" / "candidate.opl").read_text(encoding="utf-8")

    def write_iteration(self, iteration: int, files: dict[str, str]) -> Path:
        """Write an iteration's files into ``iter_k.partial/`` and rename it to ``iter_k/`` at once."""
        final = self.root / f"iter_{iteration}"
        if final.exists():
            raise ArchiveError(f"{final} exists: an iteration is never rewritten")
        partial = self.root / f"iter_{iteration}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir()
        for name, text in files.items():
            _atomic_write(partial / name, self.redact(text).encode("utf-8"))
        os.replace(partial, final)
        return final
