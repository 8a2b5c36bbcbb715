"""Files an `.opl` names (issue 12, item 1): a confined check (`opl loop`'s candidates, `opl check --confine`)
refuses every name outside the allowed folders with E015 before anything is opened; a user's own file reads
only regular files under the cap; a value from the file is quoted only as a short escaped excerpt."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import opl
from opl.lang import limits
from opl.lang.checks import CheckOptions
from opl.cli import main
from opl.lang.fileaccess import FileAccess, NamedFileError, quoted, read_regular

ROOT = Path(__file__).resolve().parents[2]
STRANGLE = (ROOT / "examples" / "jujube" / "strangle.opl").read_text(encoding="utf-8")


def _naming(name: str) -> str:
    text = STRANGLE.replace("  calibration historical\n", f'  calibration file("{name}")\n')
    assert name in text
    return text


@pytest.fixture
def folders(tmp_path):
    run, data, outside = tmp_path / "run", tmp_path / "data", tmp_path / "outside"
    for folder in (run, data, outside, run / "sub"):
        folder.mkdir()
    (run / "calib.json").write_text("{}", encoding="utf-8")
    (data / "fit.json").write_text("{}", encoding="utf-8")
    (outside / "secret.json").write_text('{"TOPSECRET": 1}', encoding="utf-8")
    (run / "link.json").symlink_to(outside / "secret.json")
    (run / "inner.json").symlink_to(run / "calib.json")  # a link that stays inside is a file like any other
    os.mkfifo(run / "pipe.json")
    with open(run / "big.json", "wb") as handle:
        handle.truncate(limits.MAX_NAMED_FILE_BYTES + 1)  # sparse: the size is what counts
    return FileAccess.within(run, data), tmp_path


@pytest.mark.parametrize("name, why", [
    ("../outside/secret.json", "leaves the allowed folders (`..`)"),
    ("sub/../../outside/secret.json", "leaves the allowed folders (`..`)"),
    ("sub\\\\..\\\\calib.json", "leaves the allowed folders (`..`)"),
    ("/etc/passwd", "is an absolute path"),
    ("/dev/zero", "is an absolute path"),
    ("/dev/stdin", "is an absolute path"),
    ("~/calib.json", "is an absolute path"),
    ("C:/calib.json", "is an absolute path"),
    ("link.json", "is a symbolic link leading outside the allowed folders"),
    ("pipe.json", "is a FIFO (named pipe), not a regular file"),
    ("sub", "is a folder, not a regular file"),
    ("big.json", f"is {limits.MAX_NAMED_FILE_BYTES + 1:,} bytes, above the cap of {limits.MAX_NAMED_FILE_BYTES:,} bytes"),
    ("absent.json", "is not a file in"),
])
def test_a_confined_check_refuses_every_name_outside_the_folders(folders, name, why):
    access, _ = folders
    text = _naming(name)
    line = text.splitlines().index(f'  calibration file("{name}")') + 1
    result = opl.check(text, "candidate.opl", CheckOptions(files=access))
    errors = [d for d in result.report.diagnostics if d.severity == "error"]
    assert [(d.code, d.span.line) for d in errors] == [("E015", line)]
    assert why in errors[0].message
    # The same file checked as a user's own file: no confinement, no E015.
    assert not [d for d in opl.check(text, "mine.opl").report.diagnostics if d.code == "E015"]


@pytest.mark.parametrize("name", ["calib.json", "fit.json", "inner.json"])
def test_a_confined_check_accepts_regular_files_inside(folders, name):
    access, _ = folders
    result = opl.check(_naming(name), "candidate.opl", CheckOptions(files=access))
    assert result.ok, [d.message for d in result.report.diagnostics]


def test_the_check_opens_nothing(folders, monkeypatch):
    access, _ = folders
    opened = []
    real_open, real_builtin_open = os.open, open
    me = threading.get_ident()  # other threads of the test process (a Dask client's monitor) are not the check

    def watched_os_open(path, *a, **k):
        if threading.get_ident() == me:
            opened.append(path)
        return real_open(path, *a, **k)

    def watched_open(*a, **k):
        if threading.get_ident() != me:
            return real_builtin_open(*a, **k)
        opened.append(a[0])
        pytest.fail(f"opened {a[0]}")

    monkeypatch.setattr(os, "open", watched_os_open)
    monkeypatch.setattr("builtins.open", watched_open)
    for name in ("pipe.json", "link.json", "../outside/secret.json", "calib.json"):
        opl.check(_naming(name), "candidate.opl", CheckOptions(files=access))
    assert opened == []


def test_opl_check_confine_on_the_command_line(folders):
    access, tmp_path = folders
    path = tmp_path / "candidate.opl"
    path.write_text(_naming("../outside/secret.json"), encoding="utf-8")
    confine = [arg for root in access.roots for arg in ("--confine", str(root))]
    run = CliRunner().invoke(main, ["check", *confine, "--format", "concise", str(path)])
    assert run.exit_code == 1 and "E015" in run.output and "Traceback" not in run.output
    assert CliRunner().invoke(main, ["check", "--format", "concise", str(path)]).exit_code == 0
    assert CliRunner().invoke(main, ["explain", "E015"]).exit_code == 0


def test_reading_refuses_devices_fifos_and_big_files_without_blocking(folders):
    access, tmp_path = folders
    run = access.roots[0]
    assert read_regular(run / "calib.json") == b"{}"
    result: dict = {}

    def attempt(path):
        try:
            read_regular(path)
        except NamedFileError as error:
            result[str(path)] = str(error)

    for path in (Path("/dev/zero"), run / "pipe.json", run / "big.json", Path("/dev/null")):
        worker = threading.Thread(target=attempt, args=(path,), daemon=True)
        worker.start()
        worker.join(timeout=5)
        assert not worker.is_alive(), f"reading {path} blocked"
    assert "character device, not a regular file" in result["/dev/zero"]
    assert "FIFO" in result[str(run / "pipe.json")]
    assert "above the cap" in result[str(run / "big.json")]
    with pytest.raises(NamedFileError):
        read_regular(run / "calib.json", max_bytes=1)


def test_a_user_file_naming_dev_zero_or_a_fifo_is_a_located_error(folders):
    from opl.simulation.run import SimulationInputError, simulate_file

    _, tmp_path = folders
    for name in ("/dev/zero", "run/pipe.json"):
        path = tmp_path / "mine.opl"
        path.write_text(_naming(name), encoding="utf-8")
        with pytest.raises(SimulationInputError) as info:
            simulate_file(path, paths=10, overrides=["experiment.horizon=1"])
        (diag,) = info.value.diagnostics
        assert diag.code == "E306" and "not a regular file" in diag.message


def test_values_from_a_calibration_file_are_quoted_short_and_escaped(tmp_path):
    from opl.calibration.stored import StoredCalibrationError, load_calibration

    secret = "TOPSECRET-" + "abc123" * 40 + "\u2028forged line"
    path = tmp_path / "calib.json"
    path.write_text(json.dumps({"inputs": {}, "settings": {"periods_per_year": secret}}), encoding="utf-8")
    with pytest.raises(StoredCalibrationError) as info:
        load_calibration(path)
    message = str(info.value)
    assert "TOPSECRET-abc123" in message and secret not in message and "\u2028" not in message
    assert len(message) < len(str(path)) + 150
    assert quoted("a\nb\u2028c") == "'a\\nb\\u2028c'"


def test_checking_an_endless_file_reads_only_past_the_size_bound():
    # `opl check /dev/zero` (or `opl simulate` of it) read until memory ran out.
    result = opl.check_file("/dev/zero")
    assert [(d.code, d.message) for d in result.report.diagnostics] == \
        [("E008", f"file is more than {limits.MAX_BYTES} bytes, above the limit of {limits.MAX_BYTES}")]
