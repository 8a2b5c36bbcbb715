"""`opl loop --data RAW`: a folder of raw exchange files is imported into the run, and the first lines say
what the data cannot test."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.closedloop.inputs import untested

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "jujube"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
FAST = ["--paths", "60", "--holdout-paths", "60", "--max-iter", "0"]


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x\n", encoding="utf-8")
    return folder


def test_untested_names_each_missing_kind(tmp_path):
    bare = untested(_touch(tmp_path / "a", "futures.csv", "iv_summary.csv"), claim=0.9)
    assert bare[0] == "no signals: the direction hit rate (90%) is assumed, not measured"
    assert bare[1].startswith("no option chain: implied volatility comes from the IV summary")
    assert bare[2] == "no factors: the supply/demand factor relation is not tested"
    assert untested(_touch(tmp_path / "b", "futures.csv"), claim=0.8)[1].startswith("no option data")
    full = _touch(tmp_path / "c", "futures.csv", "signals.csv", "options.csv", "factors.csv")
    assert untested(full, claim=0.9) == []


def _raw_folder(tmp_path: Path) -> Path:
    from opl.data.synth import synthesize

    from opl.runtime.market.calendars import is_trading_day
    from opl.runtime.market.rules import load_pack

    data = synthesize(seed=4, years=2, options=False)
    folder = tmp_path / "raw"
    folder.mkdir()
    # An exchange's file has no row on the days it is closed (the synthetic calendar is a stand-in).
    cj = load_pack("czce_cj")
    bars = data.futures[data.futures["trading_date"].map(lambda d: is_trading_day(cj, d.date()))]
    bars.drop(columns=["symbol", "prev_settlement"]).rename(columns={
        "trading_date": "交易日期", "close": "收盘价", "settlement": "结算价", "open_interest": "持仓量"}).to_csv(
        folder / "cj.csv", index=False, encoding="gbk", date_format="%Y-%m-%d")
    return folder


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
S = short Option(Put, support-100, 30d) + short Option(Call, resistance+100, 30d)
capital 1000000
experiment {
  model gbm
  signal direction hit_rate 0.9
  seed 7
  horizon 2
  sizes [ 5 ]
  target median_monthly_return >= 1%
}
"""


def test_loop_imports_a_raw_folder_and_says_first_what_it_cannot_test(tmp_path):
    folder = _raw_folder(tmp_path)
    small = tmp_path / "small.opl"
    small.write_text(SMALL, encoding="utf-8")
    result = CliRunner().invoke(main, ["loop", str(small), "--runs", str(tmp_path / "runs"), "--data",
                                       str(folder), *FAST])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1] == "data: import of raw files"
    first = "\n".join(lines[:8])
    assert "not tested on data: no signals: the direction hit rate (90%) is assumed, not measured" in first
    run = next((tmp_path / "runs").iterdir())
    log = (run / "data" / "import_log.md").read_text(encoding="utf-8")
    assert "`交易日期` → `trading_date`" in log and "read as gb18030" in log
    report = (run / "report.md").read_text(encoding="utf-8")
    head = report.split("## ")[0]
    assert "**Not tested on data:** no signals: the direction hit rate (90%) is assumed, not measured." in head
    assert "[data/import_log.md](data/import_log.md)" in report


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_loop_on_the_teams_jujube_folder(tmp_path):
    result = CliRunner().invoke(main, ["loop", str(EXAMPLE), "--runs", str(tmp_path / "runs"), "--data",
                                       str(SHARED), *FAST])
    assert result.exit_code == 0, result.output
    assert "not tested on data: no option chain: implied volatility comes from the IV summary" in result.output
