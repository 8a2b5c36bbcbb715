"""`opl loop --proposer openai` against a hostile endpoint (issue 12): the scripted local server answers
with an echoed key, a file outside the run, /dev/zero, 30 MB, an HTML 200, truncated JSON and a hung
connection. The loop finishes; nothing outside the run is opened; the key appears nowhere under the run
folder nor on stdout/stderr; every failure is a plain reason; memory stays bounded."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.closedloop import llm

KEY = "sk-hostile-0123456789abcdefSECRET"
SMALL = """\
opl-lang 1.0
underlying Future(2026-05-15)
exchange CZCE
symbol CJ605
time 2026-01-05
price 10400
iv 0.28
rate 0.015
support 9900
resistance 11000
direction_intent RangeBound
vega_style Credit
S = short Option(Put, support-100, 30d) + short Option(Call, resistance+100, 30d)
capital 1000000
exit_mode first_hit
exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]
experiment {
  model garch
  seed 7
  horizon 1
  sizes [ 5, 10 ]
  target median_monthly_return >= 1% and loss_probability <= 25%
}
"""

_OPENED: list[str] = []
_RECORDING = [False]


def _audit(event, args):
    if _RECORDING[0] and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)  # cannot be removed: it records only while a test switches it on


def _with_calibration(name: str) -> str:
    return SMALL.replace("  model garch\n", f'  model garch\n  calibration file("{name}")\n')


@pytest.fixture
def hostile(openai_server, openai_server_module, monkeypatch):
    """The server scripted with one hostile reply per iteration (the proposer asks once per iteration)."""
    echoed = SMALL.replace("exit_mode", f"# Authorization: Bearer {KEY}\nexit_mode")
    openai_server.answer(json.dumps({"opl": echoed, "change": f"echo {KEY}", "rationale": f"Bearer {KEY}",
                                     "risk": f'{{"authorization": "{KEY}"}}'}))
    openai_server.answer_json(_with_calibration("../../outside/secret.json"), "read a file outside the run")
    openai_server.answer_json(_with_calibration("/dev/zero"), "read /dev/zero")
    huge = json.dumps(openai_server_module.completion("x" * 30_000_000)).encode()
    openai_server.replies.append(openai_server_module.Reply(raw=huge))
    openai_server.garbage(b"<html><body>Login to the proxy</body></html>")
    openai_server.garbage(b'{"id": "x", "choices": [{"index": 0, "message": {"content": "opl-lang 1.0\\nS = ')
    openai_server.stall(30.0)  # a hung connection: the client's own timeout ends it

    class Impatient(llm.OpenAIProposer):
        """One answer per iteration, no retry, a short timeout; records each proposal's peak memory."""

        peaks: list[int] = []

        def __init__(self, model, base_url=None, api_key=None, **options):
            super().__init__(model, base_url, api_key, max_repairs=0, max_retries=0, timeout=3.0)

        def propose(self, context, *, check):
            tracemalloc.start()
            try:
                return super().propose(context, check=check)
            finally:
                Impatient.peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()

    monkeypatch.setattr(llm, "OpenAIProposer", Impatient)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return openai_server, Impatient.peaks


def test_the_loop_survives_a_hostile_endpoint(hostile, tmp_path):
    server, peaks = hostile
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text('{"TOPSECRET": "abc123"}', encoding="utf-8")
    path = tmp_path / "small.opl"
    path.write_text(SMALL, encoding="utf-8")
    runs = tmp_path / "runs"
    args = ["loop", str(path), "--runs", str(runs), "--proposer", "openai", "--model", "test-model",
            "--base-url", server.url, "--max-iter", "7", "--converge-rounds", "10", "--paths", "60", "--holdout-paths", "60"]
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        run = CliRunner().invoke(main, args)
    finally:
        _RECORDING[0] = False
    output = run.output + (run.stderr if run.stderr_bytes is not None else "")
    assert run.exit_code == 0, output
    assert "Traceback" not in output and KEY not in output

    # Nothing outside the run was opened, neither the named files nor a device.
    for opened in _OPENED:
        assert "secret.json" not in opened and not opened.startswith("/dev/zero"), opened

    # The key is nowhere under the run folder.
    (root,) = runs.iterdir()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files and all(KEY.encode() not in p.read_bytes() for p in files)
    assert "# Authorization: ***" in (root / "iter_1" / "candidate.opl").read_text(encoding="utf-8")

    # Every iteration ended with a plain reason; the archive stays small.
    failures = [json.loads((root / f"iter_{k}" / "result.json").read_text(encoding="utf-8"))["proposal"]["failure"]
                for k in range(2, 8)]
    expected = ["E015", "E015", "the response is longer than 1,048,576 bytes",
                "the endpoint's response is an HTML page", "the endpoint's response is cut off",
                "no response within 3 s"]
    for failure, phrase in zip(failures, expected):
        assert phrase in failure and "Error(" not in failure, failure
    assert sum(p.stat().st_size for p in files) < 5_000_000
    # Each proposal (the 30 MB answer's included) stayed within a few MiB: it once peaked near 1 GB.
    assert len(peaks) == 7 and max(peaks) < 8 * llm.MAX_RESPONSE_BYTES, peaks
