"""The memory allocator's setting for the long numeric commands: glibc's heap on transparent huge pages.

A simulation or a loop streams through arrays of tens of megabytes and forks workers that write their
working set afresh; with glibc's heap on 4 KiB pages that costs page faults and TLB misses. glibc (2.35 and
later) backs its heap with transparent huge pages when the tunable ``glibc.malloc.hugetlb=1`` is set, and
the tunable is read only when a process starts, so the ``opl`` console script starts itself again with it
once, before anything is imported, for the commands listed in `COMMANDS`. Measured on the README's main job
(three pairs, interleaved, this project's two-core machine): page faults 3.67M -> 2.81M, system time 14.5 ->
11.4 s, user time 156.7 -> 147.3 s, the same report byte for byte; the memory does not move. Results do not
depend on where the allocator places memory.

Nothing happens where it cannot help or the user decided: another OS or C library, a glibc before 2.35,
transparent huge pages ``never``, ``GLIBC_TUNABLES`` already naming the tunable (the user's choice, and the
re-started process's own mark), or ``OPL_HUGEPAGES=0``. The short commands (``opl check`` must stay fast)
and the library (`opl.api`, a notebook) never re-start anything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["COMMANDS", "TUNABLE", "restart_args", "restart_with_huge_pages"]

#: The commands worth a second interpreter start (~30 ms): they run for seconds to minutes.
COMMANDS = frozenset({"simulate", "loop", "backtest"})
TUNABLE = "glibc.malloc.hugetlb=1"
_THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
_MIN_GLIBC = (2, 35)  # the first glibc with the hugetlb tunable


def restart_args(argv: Sequence[str], env: Mapping[str, str], *, platform: str, libc: str | None,
                 thp: str | None) -> dict[str, str] | None:
    """The environment to start ``argv`` again with, or None to run as is.

    Parameters
    ----------
    argv
        The command's arguments after the program (``sys.argv[1:]``).
    env
        The process's environment.
    platform
        ``sys.platform``.
    libc
        ``os.confstr("CS_GNU_LIBC_VERSION")`` (``"glibc 2.36"``), None when unknown.
    thp
        The text of ``/sys/kernel/mm/transparent_hugepage/enabled`` (``"always [madvise] never"``), None
        when absent.
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS or platform != "linux" or env.get("OPL_HUGEPAGES") == "0":
        return None
    tunables = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables or not _glibc_at_least(libc, _MIN_GLIBC):
        return None
    if thp is None or "[never]" in thp:
        return None
    out = dict(env)
    out["GLIBC_TUNABLES"] = f"{tunables}:{TUNABLE}" if tunables else TUNABLE
    return out


def _glibc_at_least(libc: str | None, version: tuple[int, int]) -> bool:
    name, _, number = (libc or "").partition(" ")
    try:
        found = tuple(int(x) for x in number.split(".")[:2])
    except ValueError:
        return False
    return name == "glibc" and len(found) == 2 and found >= version


def restart_with_huge_pages() -> None:
    """Start this ``opl`` process again with `TUNABLE` when `restart_args` says so (never returns then).

    A failed ``execve`` (a vanished interpreter, a sandbox that forbids it) leaves the command running as is.
    """
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        libc = None
    try:
        thp = _THP.read_text(encoding="ascii")
    except OSError:
        thp = None
    env = restart_args(sys.argv[1:], os.environ, platform=sys.platform, libc=libc, thp=thp)
    if env is None:
        return
    args = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, args, env)
    except OSError:
        return
