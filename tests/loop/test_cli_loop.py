"""`opl loop` on the command line: the built-in proposer end to end with no network, the data stage,
resume, and every bad input as a clear error with the right exit code."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from opl.cli import main

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
hedge delta with Future every 1d band 0.05 keep 10% along direction
capital 1000000
exit_mode first_hit
exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]
experiment {
  model garch + jump
  signal direction hit_rate 0.9
  seed 7
  horizon 2
  sizes [ 5, 10, 20 ]
  sensitivity [ hit_rate(0.7) ]
  target median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%
}
"""
FAST = ["--paths", "60", "--holdout-paths", "60"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt fails the test: the built-in proposer must need no network."""
    def refuse(self, address):
        raise AssertionError(f"network access to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.opl"
    path.write_text(SMALL, encoding="utf-8")
    return path


def _run(*args):
    return CliRunner().invoke(main, ["loop", *map(str, args)])


def test_the_builtin_loop_runs_offline_and_answers(tmp_path, small):
    result = _run(small, "--runs", tmp_path / "runs", "--max-iter", 2, *FAST)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "small-001"
    assert f"run: {run}" in result.output
    assert "iter  0 v1.1   baseline" in result.output and "iter  2" in result.output
    assert "stop: budget iterations" in result.output and f"report: {run / 'report.md'}" in result.output
    answer = [line for line in result.output.splitlines() if line.startswith(("Yes.", "No.", "Not confirmed."))]
    assert answer, result.output
    assert json.loads((run / "run.json").read_text())["proposer"] == {"proposer": "builtin"}


def test_data_synth_runs_the_assumption_tests_and_feeds_their_findings_to_the_design(tmp_path, small):
    result = _run(small, "--runs", tmp_path / "runs", "--data", "synth", "--max-iter", 1, *FAST)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "small-001"
    assert (run / "data" / "futures.csv").is_file() and (run / "data" / "truth.json").is_file()
    assumptions = json.loads((run / "assumptions" / "assumptions.json").read_text())
    estimate = assumptions["hit_rate"]["estimate"]
    assert assumptions["hit_rate"]["claim"] == 0.9 and estimate < 0.9
    # Iteration 1 is the design revision: the data's hit rate replaces the claimed 90%.
    candidate = (run / "iter_1" / "candidate.opl").read_text()
    assert f"signal direction hit_rate {estimate:.2f}" in candidate
    assert "Direction hit rate" in (run / "report.md").read_text()


def test_resume_continues_a_finished_budget_with_a_larger_one(tmp_path, small):
    first = _run(small, "--runs", tmp_path / "runs", "--max-iter", 1, *FAST)
    assert first.exit_code == 0, first.output
    run = tmp_path / "runs" / "small-001"
    again = _run("--resume", run, "--max-iter", 2)
    assert again.exit_code == 0, again.output
    assert "(done) iter  0" in again.output and "(done) iter  1" in again.output and "\niter  2" in again.output
    assert (run / "iter_2" / "result.json").is_file() and not (run / "iter_3").exists()


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "give FILE, or --resume RUN"),
    (["{small}", "--set", "hedge.bandd=1"], 2, "unknown setting `hedge.bandd`"),
    (["{small}", "--model", "m"], 2, "--model and --base-url are for --proposer openai"),
    (["{small}", "--proposer", "openai", "--model", "m"], 2, "OPENAI_API_KEY"),
    (["{small}", "--data", "{tmp}/nowhere"], 2, "not a folder"),
    (["{small}", "--data", "{tmp}"], 2, "no futures.csv"),
    (["--resume", "{tmp}"], 2, "not an `opl loop` run"),
    (["{small}", "--cost", "1"], 2, "--cost needs --token-price"),
    (["{small}", "--cost", "1", "--token-price", "0.15"], 2, "two non-negative numbers"),
    (["{small}", "--cost", "1", "--token-price", "a,b"], 2, "two non-negative numbers"),
])
def test_usage_errors_exit_2_without_a_run(tmp_path, small, args, code, message):
    result = _run(*(a.format(small=small, tmp=tmp_path) for a in args), "--runs", tmp_path / "runs")
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_file_with_errors_exits_1_with_located_diagnostics(tmp_path):
    bad = tmp_path / "bad.opl"
    bad.write_text(SMALL.replace("Option(Put,", "Option(Putt,"), encoding="utf-8")
    result = _run(bad, "--runs", tmp_path / "runs", *FAST)
    assert result.exit_code == 1
    assert f"--> {bad}:13:" in result.output and "fix them before starting a loop" in result.output


def test_a_data_file_breaking_its_contract_exits_1_with_the_line(tmp_path, small):
    data = tmp_path / "data"
    data.mkdir()
    (data / "futures.csv").write_text("trading_date,open,high,low,close,settlement\n"
                                      "2024-01-02,10000,10100,9900,10050,10040\n"
                                      "2024-01-03,10050,abc,9950,10000,10010\n", encoding="utf-8")
    result = _run(small, "--runs", tmp_path / "runs", "--data", data, *FAST)
    assert result.exit_code == 1, result.output
    assert "futures.csv:3" in result.output and "high" in result.output


def test_constant_prices_stop_the_loop_with_a_located_cause_not_a_traceback(tmp_path, small):
    data = tmp_path / "data"
    data.mkdir()
    days = [d.strftime("%Y-%m-%d") for d in __import__("pandas").bdate_range("2022-01-03", periods=400)]
    (data / "futures.csv").write_text("trading_date,open,high,low,close,settlement\n" + "".join(
        f"{d},9000,9000,9000,9000,9000\n" for d in days), encoding="utf-8")
    result = _run(small, "--runs", tmp_path / "runs", "--data", data, *FAST)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert "futures.csv:2: column `close`: the close never changes (lines 2–401)" in result.output


def test_resume_refuses_another_file(tmp_path, small):
    assert _run(small, "--runs", tmp_path / "runs", "--max-iter", 0, *FAST).exit_code == 0
    other = tmp_path / "other.opl"
    other.write_text(SMALL.replace("band 0.05", "band 0.1"), encoding="utf-8")
    result = _run(other, "--resume", tmp_path / "runs" / "small-001")
    assert result.exit_code == 2 and "is not the file run" in result.output


def test_a_binary_file_exits_1_with_the_checkers_e007_and_no_run(tmp_path, small):
    binary = tmp_path / "binary.opl"
    binary.write_bytes(b"opl-lang 1.0\n\x8d\xff\x00junk")
    result = _run(binary, "--runs", tmp_path / "runs", *FAST)
    assert result.exit_code == 1, result.output
    assert "error[E007]" in result.output and f"--> {binary}" in result.output
    assert not isinstance(result.exception, UnicodeDecodeError)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # Resuming with a binary FILE is the same usage error as with any other file (was a traceback).
    assert _run(small, "--runs", tmp_path / "runs", "--max-iter", 0, *FAST).exit_code == 0
    resumed = _run(binary, "--resume", tmp_path / "runs" / "small-001")
    assert resumed.exit_code == 2 and "is not the file run" in resumed.output
