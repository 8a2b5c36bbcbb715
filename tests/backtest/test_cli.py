"""`opl backtest` end to end: the etf50 example, the jujube strangle on synthetic and real data,
stable JSON, the report, reproducibility, and located errors for bad files, data and settings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from opl.backtesting.walkforward import K_GRID
from opl.cli import main
from opl.data.synth import synthesize

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "jujube" / "cj_continuous_daily.csv"
ETF50 = "examples/etf50/straddle.opl"
JUJUBE = "examples/jujube/strangle.opl"
TOP_KEYS = ["baseline", "cycles", "data", "delta_band", "file", "metrics", "notes", "performance", "run", "schema",
            "strategy"]


@pytest.fixture(scope="module")
def etf_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("etf50")
    synthesize(seed=1, years=2, profile="etf50").write(out)
    return out


@pytest.fixture(scope="module")
def jujube_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("jujube")
    synthesize(seed=3, years=2).write(out)
    return out


def _invoke(*args):
    return CliRunner().invoke(main, ["backtest", *map(str, args)])


def _etf50_end_to_end(path, data_dir, tmp_path, spec):
    out, report = tmp_path / "out.json", tmp_path / "report"
    result = _invoke(path, "--data", data_dir, "--json", out, "--report", report)
    assert result.exit_code == 0, result.output
    assert "cycles traded" in result.output and "without the delta band" in result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(data) == TOP_KEYS and data["schema"] == "opl.backtest/1"
    assert sorted(data["performance"]) == ["annual_return", "cycles", "cycles_traded", "exits", "max_drawdown",
                                           "sharpe", "total_return", "winning_share"]
    band = data["delta_band"]
    assert band["spec"] == {"k": "auto", "objective": "max_drawdown", "reopen": "next_day", "grid": list(K_GRID),
                            **spec}
    assert band["after_first_fit"]["strategy"]["total_return"] is not None and band["windows"]
    assert all(f["margin"] is not None and f["tied"] for f in band["fits"] if f["k"] is not None)
    fitted = [f for f in band["fits"] if f["k"] is not None]
    assert fitted and all(f["k"] in K_GRID and f["sigma"] > 0 for f in fitted)
    assert data["performance"]["exits"]["delta_band"] > 0
    assert data["run"]["rule_pack"] == "sse_50etf" and data["run"]["underlying"] == "etf"
    for name in ("report.md", "equity.png", "drawdown.png", "delta.png", "trades.png"):
        assert (report / name).stat().st_size > 0
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "## Delta band, walk-forward" in text and "## Cycles" in text
    assert "Mean P&L a cycle by source: options P&L (premium less buy-back/expiry value)" in text


def test_etf50_example_end_to_end_on_a_year(tmp_path):
    # The example's whole path (walk-forward band, report, JSON) on one year of data with a 120-day window:
    # the shipped file's 365-day window needs two years, a 30-s walk-forward (the slow test below).
    synthesize(seed=4, years=1, profile="etf50").write(tmp_path / "data")
    text = Path(ETF50).read_text(encoding="utf-8")
    assert "delta_band(k=auto, window=365d, objective=max_drawdown, step=30d)" in text
    path = tmp_path / "straddle.opl"
    path.write_text(text.replace("window=365d", "window=120d").replace("step=30d", "step=45d"), encoding="utf-8")
    _etf50_end_to_end(path, tmp_path / "data", tmp_path, {"window_days": 120.0, "step_days": 45.0})


@pytest.mark.slow
def test_etf50_example_end_to_end(etf_dir, tmp_path):
    _etf50_end_to_end(ETF50, etf_dir, tmp_path, {"window_days": 365.0, "step_days": 30.0})


def test_jujube_strangle_on_synthetic_data(jujube_dir):
    result = _invoke(JUJUBE, "--data", jujube_dir, "--json", "-")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # Reproducible: the same file and data give the same JSON (checked here rather than on the etf50 example,
    # whose walk-forward makes a second run cost half a minute of the default suite).
    again = _invoke(JUJUBE, "--data", jujube_dir, "--json", "-")
    assert again.exit_code == 0 and json.loads(again.output) == data
    assert data["delta_band"] is None and data["baseline"] is None
    assert data["run"]["rule_pack"] == "czce_cj"
    cycles = data["cycles"]
    assert len(cycles) >= 8 and {c["ends"] for c in cycles} <= {"expiry", "roll", "data"}
    # Each cycle trades the chain's strikes of one contract, on the 100 grid.
    assert all(k % 100 == 0 for c in cycles for k in c["strikes"])
    # It sells the strangle the file says: the short put below the short call (on main, 5 of 13 cycles
    # sold both at one strike: old-contract levels clipped to the new contract's lowest strike) ...
    types = [leg["type"] for leg in data["strategy"]["legs"]]
    for c in cycles:
        strikes = dict(zip(types, c["strikes"]))
        assert strikes["put"] < strikes["call"], c
    # ... of the 30-day tenor, not the one to three months to the next listed expiry after a roll.
    assert all((pd.Timestamp(c["expiry"]) - pd.Timestamp(c["open"])).days <= 33 for c in cycles)
    assert sum(c["marks_from_chain"] for c in cycles) > 0
    # The file's adjustment module runs (its rolls re-strike at quoted series), and the ledger adds up.
    assert data["metrics"]["adjustments"]["rounds_per_month"] > 0
    assert not any("adjust" in note for note in data["notes"])
    total = data["metrics"]["attribution"]["per_month"]["total"] * len(cycles)
    assert total == pytest.approx(sum(c["pnl"] for c in cycles), abs=1e-6)
    assert total == pytest.approx(data["performance"]["total_return"] / 100 * data["run"]["capital"], abs=1e-6)


@pytest.mark.skipif(not REAL.exists(), reason="the real jujube data (../shared/data) is absent")
def test_real_continuous_jujube_series():
    bad = _invoke(JUJUBE, "--data", REAL)
    assert bad.exit_code == 1
    assert "cj_continuous_daily.csv:650: column `settlement`" in bad.output and "--repair" in bad.output
    result = _invoke(JUJUBE, "--data", REAL, "--repair", "--json", "-")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # The exchange's series rolls six times by its price (../shared/data/README.md) and 19 more times by its
    # open interest (opl data rolls lists each with its evidence); no cycle spans one.
    assert any("rolls: 23 in the futures series (evidence rule)" in n for n in data["notes"])
    assert data["data"]["surfaces"] == ["realised"]
    ends = [c["ends"] for c in data["cycles"]]
    assert ends.count("roll") >= 1 and len(ends) > 60


def _etf_copy(etf_dir, tmp_path) -> Path:
    for name in ("futures.csv", "options.csv", "signals.csv"):
        (tmp_path / name).write_bytes((etf_dir / name).read_bytes())
    return tmp_path


def test_a_chain_of_another_product_is_a_located_error(etf_dir, tmp_path):
    data = _etf_copy(etf_dir, tmp_path)
    options = pd.read_csv(data / "options.csv", dtype=str)
    options.loc[1, "contract_multiplier"] = "5"
    options.to_csv(data / "options.csv", index=False)
    result = _invoke(ETF50, "--data", data)
    assert result.exit_code == 1
    assert "options.csv:3: column `contract_multiplier`: 5 is not the rule pack's multiplier 10000" in result.output
    assert "Traceback" not in result.output


def test_a_bad_cell_is_a_located_error(etf_dir, tmp_path):
    data = _etf_copy(etf_dir, tmp_path)
    futures = pd.read_csv(data / "futures.csv", dtype=str)
    futures.loc[9, "settlement"] = "abc"
    futures.to_csv(data / "futures.csv", index=False)
    result = _invoke(ETF50, "--data", data)
    assert result.exit_code == 1 and "futures.csv:11: column `settlement`" in result.output


@pytest.mark.parametrize("args,code,words", [
    (["--data", "no/such/dir"], 2, "no such directory"),
    (["--set", "hedge.kep=10%"], 2, "unknown setting `hedge.kep`"),
    (["--set", "size=1.5"], 2, "whole lots"),
])
def test_usage_errors(etf_dir, args, code, words):
    if args[0] != "--data":
        args = ["--data", str(etf_dir), *args]
    result = _invoke(ETF50, *args)
    assert result.exit_code == code and words in result.output


def test_empty_directory_is_an_io_error(tmp_path):
    result = _invoke(ETF50, "--data", tmp_path)
    assert result.exit_code == 2 and "no futures.csv" in result.output


@pytest.mark.parametrize("old,new,code,words", [
    ("underlying ETF", "underlying Stock", "E306", "needs options on a future or an ETF"),
    ("  pnl_percent(<-100%),", "  pnl_percent(<-100%), delta_band(k=2),", "E105", "one delta band"),
    ("S = short Option(Call", "S = short Swap(Call", "E101", "unknown primitive"),
])
def test_file_errors_are_located(etf_dir, tmp_path, old, new, code, words):
    text = Path(ETF50).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "variant.opl"
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = _invoke(path, "--data", etf_dir)
    assert result.exit_code == 1
    assert f"error[{code}]" in result.output and words in result.output and "variant.opl:" in result.output


def test_example_file_checks_clean_and_is_the_one_shown():
    import re

    import opl

    report = opl.check_file(ETF50).report
    assert not report.has_errors
    readme = Path("examples/etf50/README.md").read_text(encoding="utf-8")
    shown = re.search(r"\[`straddle.opl`\]\(straddle.opl\):\n\n```\n(.*?)```", readme, re.S).group(1)
    text = Path(ETF50).read_text(encoding="utf-8")
    assert all(line in text for line in shown.strip().splitlines())
    assert "opl data synth --profile etf50 --out data/etf50" in readme
    assert "opl backtest examples/etf50/straddle.opl --data data/etf50 --report out/etf50" in readme


def test_a_history_hedges_per_session_whatever_the_experiments_steps_per_day(jujube_dir, tmp_path):
    # The file's `steps_per_day 4` is a simulation setting; a backtest has one step per session, so `every 1d`
    # hedges every session (it was every fourth: 1d x 4 steps), and a note says the setting does not apply.
    from opl.backtesting.run import prepare

    path = tmp_path / "four.opl"
    path.write_text(Path(JUJUBE).read_text(encoding="utf-8").replace("steps_per_day 1", "steps_per_day 4"),
                    encoding="utf-8")
    prepared = prepare(path, data=jujube_dir)
    assert prepared.strategy.hedge.every == 1
    assert any("`steps_per_day 4` is a simulation setting" in n for n in prepared.notes)


@pytest.mark.slow  # a whole etf50 walk-forward for its progress stages; the default suite runs it once already
def test_a_long_backtest_reports_its_stages(etf_dir):
    from opl.backtesting import backtest_file

    seen = []
    backtest_file(ETF50, data=etf_dir, progress=lambda done, total, stage=None: seen.append((stage, done, total)))
    stages = list(dict.fromkeys(s for s, _, _ in seen))
    assert stages == ["reading the data", "marking the cycles", "fitting the delta band (walk-forward)",
                      "re-opening after band closes", "replaying"]
    for stage in stages[1:4]:
        counts = [(d, t) for s, d, t in seen if s == stage]
        assert [d for d, _ in counts] == list(range(counts[0][1])) and counts[0][1] > 1
