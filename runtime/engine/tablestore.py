"""The American tables kept on disk between processes: solved once per machine, read afterwards.

`opl.runtime.engine.marking.prepare_tables` solves a month's early-exercise tables with the finite-difference
marches of `opl.runtime.pricing.american_fd`. Every run of a strategy asks for the same tables (a table depends
only on its type, time to expiry, rate and carry), yet each process solved them again before its first replay:
loading the marches' compiled code from numba's cache (~0.2 s) and the marches (~0.25 s of CPU for the jujube
strangle's two types), on the path from the start of the process to its first forked worker, with one core
mostly idle. Here the tables a call solved are written once, as the bytes ``prepare_tables`` made, and a later
process asking for the same tables reads them (~5 ms): the same numbers, bit for bit.

**What a file is keyed by.** Everything the bytes depend on: the texts of the solver (and of the pricers it
falls back on) and of `marking` (their grids, constants and the arithmetic after the marches), the versions of
numpy, scipy, numba and llvmlite and the host CPU (the compiled marches and numpy's loops are the machine's), the
tables' type, rate, carry and times (their exact bits). Another solver, grid or machine is another key: nothing
stale is read.

**Where.** ``OPL_TABLES_DIR`` when set (empty: nothing kept); else the ``__pycache__`` beside this module, where
numba keeps the kernels' cache, when it is writable; else nothing is kept. A file is written whole under a
temporary name and renamed, so a reader never sees a part of one; at most `KEPT` files are kept, the least
recently read going first. A file that cannot be read is solved again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["load", "save", "folder"]

#: At most this many files (a month's tables of one type are ~5.5 MB at 21 expiries).
KEPT = 16
_HERE = Path(__file__).resolve().parent
# marking's grids and arithmetic after the marches; the solver; what it prices by where the marches do not serve.
_SOURCES = (_HERE / "marking.py", *(_HERE.parent / "pricing" / name for name in ("american_fd.py", "american.py",
                                                                                  "black.py")))
_FORMAT = b"opl-american-tables-1"


def folder() -> Path | None:
    """Where the tables are kept, or None when nowhere (module docstring)."""
    given = os.environ.get("OPL_TABLES_DIR")
    if given == "":
        return None
    place = Path(given) if given is not None else _HERE / "__pycache__" / "american-tables"
    try:
        place.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return place if os.access(place, os.W_OK) else None


@lru_cache(maxsize=1)
def _machine() -> bytes | None:
    """What the bytes depend on besides the call: the sources, the libraries' versions and the host CPU (None
    when any of them cannot be known: then nothing is kept)."""
    try:
        import llvmlite
        import llvmlite.binding as llvm
        import numba
        import scipy

        digest = hashlib.sha256(_FORMAT)
        for path in _SOURCES:
            digest.update(path.read_bytes())
        digest.update(f"{np.__version__} {scipy.__version__} {numba.__version__} {llvmlite.__version__}".encode())
        digest.update(llvm.get_host_cpu_name().encode())
        digest.update(llvm.get_host_cpu_features().flatten().encode())
    except Exception:  # no numba, a source not shipped, a CPU llvmlite cannot describe: solve every time
        return None
    return digest.digest()


def _path(place: Path, is_call: bool, times: list[float], rate: float, carry: float) -> Path | None:
    machine = _machine()
    if machine is None:
        return None
    digest = hashlib.sha256(machine)
    digest.update(np.array([float(is_call), rate, carry, *times], dtype=np.float64).tobytes())
    return place / f"{digest.hexdigest()[:40]}.npy"


def load(is_call: bool, times: list[float], rate: float, carry: float) -> tuple[np.ndarray, ...] | None:
    """The (eep, d_eep, boundary) arrays `save` kept for these arguments, or None."""
    place = folder()
    if place is None:
        return None
    path = _path(place, is_call, times, rate, carry)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            arrays = tuple(np.load(f, allow_pickle=False) for _ in range(3))
    except (OSError, ValueError, EOFError):
        return None
    try:
        os.utime(path)  # recently read: kept longest
    except OSError:
        pass
    n = len(times)
    if arrays[0].shape[:1] != (n,) or arrays[1].shape != arrays[0].shape or arrays[2].shape[:1] != (n,):
        return None
    return arrays


def save(is_call: bool, times: list[float], rate: float, carry: float, arrays: tuple[np.ndarray, ...]) -> None:
    """Keep ``arrays`` (eep, d_eep, boundary) for these arguments; nothing when there is nowhere to keep them."""
    place = folder()
    if place is None:
        return
    path = _path(place, is_call, times, rate, carry)
    if path is None:
        return
    try:
        f = tempfile.NamedTemporaryFile(dir=place, suffix=".part", delete=False)
    except OSError:
        return
    try:
        with f:
            for a in arrays:
                np.save(f, np.ascontiguousarray(a), allow_pickle=False)
        os.replace(f.name, path)
    except OSError:
        _remove(Path(f.name))
        return
    _trim(place)


def _trim(place: Path) -> None:
    """Keep the `KEPT` most recently used files, and no part of a file whose writer died an hour ago."""
    files, now = [], time.time()
    for path in place.iterdir():
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if path.suffix == ".npy":
            files.append((mtime, path))
        elif path.suffix == ".part" and now - mtime > 3600:
            _remove(path)
    for _, path in sorted(files, reverse=True)[KEPT:]:
        _remove(path)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
