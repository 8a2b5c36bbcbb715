"""The run folder: numbered runs, atomic files, iterations written whole or not at all."""

from __future__ import annotations

import json

import pytest

from opl.closedloop.archive import ArchiveError, RunArchive


def _create(tmp_path, stem="strangle"):
    return RunArchive.create(tmp_path / "runs", stem, initial_text="opl-lang 1.0\n", settings={"seed": 7})


def test_runs_are_numbered_per_stem(tmp_path):
    a, b, c = _create(tmp_path), _create(tmp_path), _create(tmp_path, "other")
    assert [a.root.name, b.root.name, c.root.name] == ["strangle-001", "strangle-002", "other-001"]
    assert a.settings() == {"schema": "opl.loop.run/1", "seed": 7}
    assert (a.root / "initial.opl").read_text(encoding="utf-8") == "opl-lang 1.0\n"


def test_writes_leave_no_temporary_files(tmp_path):
    archive = _create(tmp_path)
    archive.write_json("deep/x.json", {"a": 1})
    archive.write_text("deep/x.json", json.dumps({"a": 2}))
    assert archive.read_json("deep/x.json") == {"a": 2}
    assert sorted(p.name for p in (archive.root / "deep").iterdir()) == ["x.json"]


def test_non_finite_numbers_are_refused_rather_than_written_as_invalid_json(tmp_path):
    with pytest.raises(ValueError):
        _create(tmp_path).write_json("bad.json", {"x": float("nan")})


def test_an_iteration_appears_whole_and_is_never_rewritten(tmp_path):
    archive = _create(tmp_path)
    archive.write_iteration(0, {"candidate.opl": "a", "result.json": '{"iteration": 0}'})
    assert archive.iteration_numbers() == [0] and archive.iterations() == [{"iteration": 0}]
    assert archive.candidate(0) == "a"
    with pytest.raises(ArchiveError, match="never rewritten"):
        archive.write_iteration(0, {"candidate.opl": "b", "result.json": "{}"})
    assert archive.candidate(0) == "a"


def test_open_drops_an_unfinished_iteration_and_keeps_the_finished_ones(tmp_path):
    archive = _create(tmp_path)
    archive.write_iteration(0, {"result.json": '{"iteration": 0}'})
    partial = archive.root / "iter_1.partial"
    partial.mkdir()
    (partial / "candidate.opl").write_text("half written", encoding="utf-8")
    reopened = RunArchive.open(archive.root)
    assert not partial.exists() and reopened.iteration_numbers() == [0]


def test_resume_removes_the_temporary_file_a_kill_during_a_write_left(tmp_path):
    # A real kill -9 between the temporary file's write and its `os.replace` (issue 12, item 10).
    import subprocess
    import sys
    import textwrap

    archive = _create(tmp_path)
    archive.write_text("change_log.md", "old log\n")
    (archive.root / "final").mkdir()
    script = textwrap.dedent(f"""
        import os, signal
        from opl.closedloop.archive import RunArchive
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        archive = RunArchive({str(archive.root)!r})
        archive.write_text("final/answer.md", "half")
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert done.returncode == -9
    script = script.replace('"final/answer.md", "half"', '"change_log.md", "new log"')
    assert subprocess.run([sys.executable, "-c", script], capture_output=True).returncode == -9
    left = sorted(p.name for p in archive.root.rglob("*.tmp"))
    assert len(left) == 2 and all(name.startswith((".change_log.md.", ".answer.md.")) for name in left)
    (archive.root / ".notes.tmp").write_text("not ours", encoding="utf-8")  # not a temporary name of the archive
    RunArchive.open(archive.root)
    assert sorted(p.name for p in archive.root.rglob("*.tmp")) == [".notes.tmp"]
    assert (archive.root / "change_log.md").read_text(encoding="utf-8") == "old log\n"


def test_open_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(ArchiveError, match="no run.json"):
        RunArchive.open(tmp_path)
    (tmp_path / "run.json").write_text('{"schema": "other/9"}', encoding="utf-8")
    with pytest.raises(ArchiveError, match="unknown schema"):
        RunArchive.open(tmp_path)
    (tmp_path / "run.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(ArchiveError, match=r"run.json:1:2"):
        RunArchive.open(tmp_path)


def test_every_file_written_is_scrubbed_of_the_key_and_bearer_tokens(tmp_path):
    from opl.closedloop.redact import Redactor

    key = "sk-live-abcdefghijklmnopqrstuvwxyz"
    archive = _create(tmp_path)
    archive.write_text("change_log.md", "Authorization: Bearer some-other-token\n")  # shapes, before the key is known
    archive.redact = Redactor([key]).redact
    archive.write_json("result.json", {"failure": f"echoed {key}"})
    archive.write_iteration(0, {"candidate.opl": f"# {key}\n", "transcript.json": f'{{"authorization": "{key}"}}'})
    written = "".join(p.read_text(encoding="utf-8") for p in archive.root.rglob("*") if p.is_file())
    assert key not in written and "some-other-token" not in written
    assert (archive.root / "iter_0" / "candidate.opl").read_text(encoding="utf-8") == "# ***\n"


def test_iteration_records_are_typed_and_round_trip_through_result_json():
    import json

    from opl.closedloop.records import Decision, IterationRecord, ProposalRecord

    decision = Decision(kind="design", accepted=True, why="design change", objective=0.5, best_iteration=3,
                        best_objective=0.5, best_target_met=False, design_version=2, parameter_version=1,
                        dropped=({"component": "jump", "test": "LR"},))
    record = IterationRecord(iteration=3, parent=1, candidate_sha="abc", proposal=ProposalRecord(
        change="c", rationale="r", attempts=2, usage={"prompt_tokens": 5}), evaluation=None, diagnosis=None,
        decision=decision, seconds=1.5, text="opl-lang 1.0\n")
    data = json.loads(json.dumps(record.to_dict()))
    assert data["schema"] == "opl.loop.iteration/1" and data["decision"]["version"] == "v2.1"
    assert list(data["decision"])[:3] == ["kind", "accepted", "why"] and data["decision"]["dropped"][0]["test"] == "LR"
    assert list(data["proposal"]) == ["change", "rationale", "risk", "move", "failure", "attempts", "usage"]
    again = IterationRecord.from_dict(data)
    assert again.to_dict() == record.to_dict() and "text" not in data
    # A baseline archived before the records were typed (a 4-key proposal) still reads.
    old = dict(data, proposal={"change": "the file as written", "rationale": "baseline", "risk": "", "move": None})
    assert IterationRecord.from_dict(old).proposal.attempts == 0
