"""The console script starts the long numeric commands again once with glibc's heap on huge pages."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import pytest

from opl.cli import allocator
from opl.cli.allocator import TUNABLE, restart_args

ROOT = Path(__file__).resolve().parents[1]
LINUX = {"platform": "linux", "libc": "glibc 2.36", "thp": "always [madvise] never\n"}


def test_a_simulation_on_a_glibc_with_the_tunable_restarts_with_it_and_keeps_the_environment():
    env = restart_args(["simulate", "x.opl", "--paths", "100"], {"PATH": "/bin"}, **LINUX)
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": TUNABLE}


def test_the_users_other_tunables_are_kept_and_the_setting_appended():
    env = restart_args(["loop", "x.opl"], {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, **LINUX)
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"


@pytest.mark.parametrize("argv, env, overrides", [
    (["check", "x.opl"], {}, {}),  # a short command: opl check stays fast
    (["--help"], {}, {}),
    ([], {}, {}),
    (["simulate", "x.opl"], {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, {}),  # the user's choice
    (["simulate", "x.opl"], {"GLIBC_TUNABLES": TUNABLE}, {}),  # the restarted process itself
    (["simulate", "x.opl"], {"OPL_HUGEPAGES": "0"}, {}),
    (["simulate", "x.opl"], {}, {"platform": "darwin"}),
    (["simulate", "x.opl"], {}, {"libc": "glibc 2.34"}),  # before the tunable existed
    (["simulate", "x.opl"], {}, {"libc": None}),  # musl or unknown
    (["simulate", "x.opl"], {}, {"libc": "glibc unknown"}),
    (["simulate", "x.opl"], {}, {"thp": "always madvise [never]\n"}),
    (["simulate", "x.opl"], {}, {"thp": None}),  # no transparent huge pages in this kernel
])
def test_nothing_restarts_where_it_cannot_help_or_the_user_decided(argv, env, overrides):
    assert restart_args(argv, env, **{**LINUX, **overrides}) is None


def _linux_here(monkeypatch, tmp_path, argv):
    thp = tmp_path / "enabled"
    thp.write_text(LINUX["thp"], encoding="ascii")
    monkeypatch.setattr(allocator, "_THP", thp)
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.os, "confstr", lambda name: "glibc 2.36", raising=False)
    monkeypatch.setattr(allocator.sys, "argv", argv)
    monkeypatch.setattr(allocator.sys, "orig_argv", [sys.executable, *argv], raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv("OPL_HUGEPAGES", raising=False)


def test_the_restart_runs_the_same_interpreter_and_arguments_with_the_tunable(monkeypatch, tmp_path):
    argv = ["/bin/opl", "loop", "x.opl", "--paths", "100"]
    _linux_here(monkeypatch, tmp_path, argv)
    calls = []
    monkeypatch.setattr(allocator.os, "execve", lambda exe, args, env: calls.append((exe, args, env)))
    allocator.restart_with_huge_pages()
    [(exe, args, env)] = calls
    assert exe == sys.executable
    assert args == [sys.executable, *argv]
    assert env["GLIBC_TUNABLES"] == TUNABLE
    assert env["PATH"] == os.environ["PATH"]


def test_a_failed_restart_runs_the_command_as_is(monkeypatch, tmp_path):
    _linux_here(monkeypatch, tmp_path, ["/bin/opl", "simulate", "x.opl"])

    def refused(*args):
        raise PermissionError("execve refused")

    monkeypatch.setattr(allocator.os, "execve", refused)
    assert allocator.restart_with_huge_pages() is None


def test_opl_check_never_restarts(monkeypatch, tmp_path):
    _linux_here(monkeypatch, tmp_path, ["/bin/opl", "check", "x.opl"])
    monkeypatch.setattr(allocator.os, "execve", lambda *a: pytest.fail("opl check restarted"))
    allocator.restart_with_huge_pages()


def test_the_console_script_is_the_entry_that_restarts():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["opl"] == "opl.cli:run"
