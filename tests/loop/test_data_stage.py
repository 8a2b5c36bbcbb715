"""The data stage (`opl.closedloop.inputs.prepare_data`): ``--data synth``'s files are written in a forked
process beside the loop's imports, and the assumption tests and the calibration read them only once whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from opl.closedloop import inputs
from opl.closedloop.archive import RunArchive
from opl.data.synth import synthesize


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir())}


def test_synth_files_are_whole_before_the_tests_and_the_calibration_read_them(tmp_path, monkeypatch):
    seen = {}

    def assumptions(archive, folder, **kwargs):  # runs here, after the forked writer is waited for
        seen["tests"] = _digests(folder)
        return {}

    def calibrated(folder, repair):  # runs in the calibration's forked process: what it returns is pickled back
        return {"error": "not run", "experiment_lines": [], "digests": _digests(folder)}

    monkeypatch.setattr(inputs, "_assumptions", assumptions)
    monkeypatch.setattr(inputs, "_calibrated", calibrated)
    archive = RunArchive(tmp_path / "run")
    facts = inputs.prepare_data(archive, "synth", initial_text="", claim=None)
    synthesize(seed=1, years=6).write(tmp_path / "here")
    expected = _digests(tmp_path / "here")
    assert set(expected) >= {"futures.csv", "options.csv", "signals.csv", "factors.csv", "truth.json"}
    assert seen["tests"] == expected
    assert facts["calibration"]["digests"] == expected
    assert _digests(archive.path("data")) == expected


def test_meanwhile_runs_once_after_the_tests_and_before_the_calibration_is_waited_for(tmp_path, monkeypatch):
    order = []

    def assumptions(archive, folder, **kwargs):
        order.append("tests")
        return {}

    def calibration(archive, note, calibrating):
        order.append("calibration read")
        return calibrating.result()

    monkeypatch.setattr(inputs, "_assumptions", assumptions)
    monkeypatch.setattr(inputs, "_calibrated", lambda folder, repair: None)
    monkeypatch.setattr(inputs, "_calibration", calibration)
    inputs.prepare_data(RunArchive(tmp_path / "run"), "synth", initial_text="", claim=None,
                        meanwhile=lambda: order.append("meanwhile"))
    assert order == ["tests", "meanwhile", "calibration read"]


def test_the_synth_writer_is_closed_when_the_tests_modules_fail_to_import(tmp_path, monkeypatch):
    import gc

    def broken(name):
        raise ImportError(f"no module named {name}")

    monkeypatch.setattr(inputs.importlib, "import_module", broken)
    with pytest.raises(ImportError):
        inputs.prepare_data(RunArchive(tmp_path / "run"), "synth", initial_text="", claim=None)
    assert gc.get_freeze_count() == 0  # no pool left open
