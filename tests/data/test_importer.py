"""`opl data import`: every header alias, every derivation, GBK files, located refusals, raw-folder --data."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.data.aliases import ALIAS_TABLE, ALIASES, canonical_header, header_key
from opl.data.importer import import_files, is_canonical, resolve_data
from opl.data.loaders import DataError, load

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "jujube"
DOC = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "data_contracts.md"

FUTURES = pd.DataFrame({
    "trading_date": ["2024-06-03", "2024-06-04", "2024-06-05"], "symbol": ["CJ501"] * 3,
    "open": [10000, 10050, 10100], "high": [10100, 10150, 10200], "low": [9950, 10000, 10050],
    "close": [10050, 10100, 10150], "settlement": [10040, 10090, 10140],
    "prev_settlement": [10000, 10040, 10090], "volume": [1200, 1300, 1250], "open_interest": [5000, 5100, 5200],
    "total_turnover": [60_000_000, 65_000_000, 63_000_000],
})
OPTIONS = pd.DataFrame({
    "trading_date": ["2024-06-03", "2024-06-03"], "symbol": ["CJ501C10000", "CJ501P10000"],
    "open": [500, 440], "high": [520, 460], "low": [480, 420], "close": [510, 450], "settlement": [505, 445],
    "prev_settlement": [500, 450], "volume": [10, 12], "open_interest": [100, 120], "total_turnover": [25000, 26000],
    "strike_price": [10000, 10000], "option_type": ["C", "P"], "expiry": ["2024-12-11", "2024-12-11"],
    "contract_multiplier": [5, 5], "underlying_symbol": ["CJ501", "CJ501"],
})
SIGNALS = pd.DataFrame({"date": ["2024-06-03", "2024-07-01"], "support": [9500, 9600], "resistance": [10500, 10600],
                        "direction": ["up", "flat"], "source": ["desk", "desk"]})
FACTORS = pd.DataFrame({"month": ["2024-05", "2024-06"], "inventory": [0.1, -0.2]})
IV = pd.DataFrame({"date": ["2024-06-21", "2024-06-24"], "iv_mean": [29.43, 31.32], "iv_min": [25.49, 27.32],
                   "iv_max": [37.77, 40.63], "iv_std": [3.47, 3.64], "contracts": [132, 140],
                   "volume": ["18257", "19133"]})
#: Which sample file each canonical column is tested in, under what name it is written there.
HOME = {"support": (SIGNALS, "signals"), "resistance": (SIGNALS, "signals"), "direction": (SIGNALS, "signals"),
        "source": (SIGNALS, "signals"), "month": (FACTORS, "factors"), "strike_price": (OPTIONS, "options"),
        "option_type": (OPTIONS, "options"), "expiry": (OPTIONS, "options"),
        "contract_multiplier": (OPTIONS, "options"), "underlying_symbol": (OPTIONS, "options"),
        **{c: (IV, "iv_summary") for c in ("iv_mean", "iv_min", "iv_max", "iv_std", "contracts")}}
CASES = [(spelling, alias.canonical, alias.scale) for alias in ALIAS_TABLE for spelling in alias.spellings]


def _write(frame: pd.DataFrame, path: Path, encoding: str = "utf-8") -> Path:
    frame.to_csv(path, index=False, encoding=encoding)
    return path


@pytest.mark.parametrize("spelling,canonical,scale", CASES, ids=[c[0] for c in CASES])
def test_every_header_alias_is_imported_as_its_column(tmp_path, spelling, canonical, scale):
    base, role = HOME.get(canonical, (FUTURES, "futures"))
    written = {"futures": "trading_date", "options": "trading_date"}.get(role)
    source = {"signals": "date", "iv_summary": "date"}.get(role, written)
    column = source if canonical == "trading_date" else canonical
    if canonical == "trading_date" and role == "futures":
        column = "trading_date"
    frame = base.rename(columns={column: spelling})
    # Upper case and a full-width bracket read the same (header_key folds them).
    frame.columns = [c.upper().replace("(", "（") if c == spelling else c for c in frame.columns]
    raw = _write(frame, tmp_path / "raw.csv")
    result = import_files([raw], tmp_path / "out")
    assert result.files[0].role == role
    target = {"signals": "date", "factors": "month", "iv_summary": "date"}.get(role, "trading_date") \
        if canonical == "trading_date" else canonical
    out = pd.read_csv(result.written[role], dtype=str)
    assert target in out.columns
    expected = base[column].astype(str).tolist()
    got = out[target].tolist()
    if scale != 1.0:
        assert [float(g) for g in got] == [float(e) * scale for e in expected]
        assert "multiplied by 10,000" in result.log.read_text(encoding="utf-8")
    elif canonical not in ("trading_date", "month", "expiry", "date"):
        assert [str(g) for g in got] == [str(e) for e in expected]
    assert f"`{frame.columns[list(base.columns).index(column)]}` → `{target}`" in \
        result.log.read_text(encoding="utf-8")


def test_every_spelling_folds_to_a_unique_key():
    assert len(ALIASES) == sum(len(a.spellings) for a in ALIAS_TABLE)
    assert canonical_header(" 成交量（手） ") == "volume"
    assert canonical_header("\ufeff交易日期") == "trading_date"
    assert header_key("Open  Interest") == "open interest"


def test_the_alias_table_is_documented_as_it_is():
    text = DOC.read_text(encoding="utf-8")
    for alias in ALIAS_TABLE:
        row = f"| `{alias.canonical}` | " + ", ".join(f"`{s}`" for s in alias.spellings) + f" | {alias.meaning} |"
        assert row in text, row


def test_chinese_exchange_files_in_gbk(tmp_path):
    """A Chinese-headed GBK bar file and an option file import; the log says the encoding and every mapping."""
    bars = FUTURES.drop(columns=["symbol", "total_turnover"]).rename(columns={
        "trading_date": "交易日期", "open": "开盘价", "high": "最高价", "low": "最低价", "close": "收盘价",
        "settlement": "结算价", "prev_settlement": "前结算价", "volume": "成交量", "open_interest": "持仓量"})
    opts = OPTIONS.drop(columns=["total_turnover"]).rename(columns={
        "trading_date": "交易日期", "symbol": "合约代码", "open": "开盘价", "high": "最高价", "low": "最低价",
        "close": "收盘价", "settlement": "结算价", "prev_settlement": "前结算价", "volume": "成交量",
        "open_interest": "持仓量", "strike_price": "执行价", "option_type": "看涨/看跌", "expiry": "到期日",
        "contract_multiplier": "合约乘数", "underlying_symbol": "标的合约"})
    opts["看涨/看跌"] = ["看涨", "看跌"]
    folder = tmp_path / "raw"
    folder.mkdir()
    _write(bars, folder / "行情.csv", encoding="gbk")
    _write(opts, folder / "期权.csv", encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        (folder / "行情.csv").read_text(encoding="utf-8")
    result = import_files([folder], tmp_path / "out", parity=False)
    assert sorted(f.role for f in result.files) == ["futures", "options"]
    log = result.log.read_text(encoding="utf-8")
    assert "read as gb18030, not UTF-8" in log
    assert "`看涨/看跌` → `option_type`" in log and "`结算价` → `settlement`" in log
    fut = load(result.written["futures"], kind="futures").frame
    assert fut["settlement"].tolist() == [10040, 10090, 10140]
    opt = load(result.written["options"], kind="options").frame
    assert opt["option_type"].tolist() == ["C", "P"]


# --------------------------------------------------------------------------- derivations


def test_settlement_and_range_from_closes_only(tmp_path):
    raw = _write(pd.DataFrame({"日期": ["2024-06-03", "2024-06-04"], "收盘价": [2.512, 2.530]}), tmp_path / "etf.csv")
    result = import_files([raw], tmp_path / "out")
    fut = load(result.written["futures"], kind="futures").frame
    assert fut["settlement"].tolist() == [2.512, 2.530]
    assert (fut["open"] == fut["close"]).all() and (fut["high"] == fut["low"]).all()
    log = result.log.read_text(encoding="utf-8")
    assert "`settlement` := `close`" in log and "zero range" in log


def test_option_settlement_from_close(tmp_path):
    raw = _write(OPTIONS.drop(columns=["settlement"]), tmp_path / "opt.csv")
    result = import_files([raw], tmp_path / "out")
    opt = load(result.written["options"], kind="options").frame
    assert opt["settlement"].tolist() == [510, 450]
    assert "`settlement` := `close`" in result.log.read_text(encoding="utf-8")


def test_type_strike_underlying_and_expiry_from_czce_codes(tmp_path):
    raw = _write(OPTIONS.drop(columns=["option_type", "strike_price", "expiry", "underlying_symbol"]),
                 tmp_path / "opt.csv")
    result = import_files([raw], tmp_path / "out", pack="czce_cj")
    opt = load(result.written["options"], kind="options").frame
    assert opt["option_type"].tolist() == ["C", "P"]
    assert opt["strike_price"].tolist() == [10000, 10000]
    assert opt["underlying_symbol"].tolist() == ["CJ501", "CJ501"]
    # Contract month 2501 (>= 2401): the 3rd-to-last trading day on or before 15 Dec 2024 (a Sunday) is Wed 11 Dec.
    assert [d.date().isoformat() for d in opt["expiry"]] == ["2024-12-11", "2024-12-11"]
    assert "from the option codes in `symbol`" in result.log.read_text(encoding="utf-8")


def test_expiry_from_codes_needs_a_pack(tmp_path):
    raw = _write(OPTIONS.drop(columns=["expiry"]), tmp_path / "opt.csv")
    with pytest.raises(DataError) as info:
        import_files([raw], tmp_path / "out")
    assert any(p.column == "expiry" and "missing required" in p.message for p in info.value.problems)


def test_symbol_and_underlying_from_expiry_type_and_strike(tmp_path):
    raw = _write(OPTIONS.drop(columns=["symbol", "underlying_symbol"]), tmp_path / "opt.csv")
    result = import_files([raw], tmp_path / "out", pack="czce_cj")
    opt = load(result.written["options"], kind="options").frame
    assert opt["symbol"].tolist() == ["CJ501C10000", "CJ501P10000"]
    assert opt["underlying_symbol"].tolist() == ["CJ501", "CJ501"]
    log = result.log.read_text(encoding="utf-8")
    assert "`symbol` := underlying + type + strike" in log and "`underlying_symbol` from the expiry" in log


def test_etf_symbol_from_terms(tmp_path):
    frame = pd.DataFrame({"date": ["2024-01-02"] * 2, "call_put": ["认购", "认沽"], "expiry": ["2024-01-24"] * 2,
                          "strike": [2.4, 2.4], "close": [0.052, 0.031]})
    result = import_files([_write(frame, tmp_path / "opt.csv")], tmp_path / "out", pack="sse_50etf")
    opt = load(result.written["options"], kind="options").frame
    assert opt["symbol"].tolist() == ["510050C2401M02400", "510050P2401M02400"]
    assert opt["contract_multiplier"].tolist() == [10_000, 10_000]
    assert opt["settlement"].tolist() == [0.052, 0.031]


def test_multiplier_from_the_pack_and_refused_without_one(tmp_path):
    raw = _write(OPTIONS.drop(columns=["contract_multiplier"]), tmp_path / "opt.csv")
    result = import_files([raw], tmp_path / "out", pack="czce_cj")
    assert load(result.written["options"], kind="options").frame["contract_multiplier"].tolist() == [5, 5]
    assert "`contract_multiplier` := 5 (the czce_cj pack" in result.log.read_text(encoding="utf-8")
    with pytest.raises(DataError) as info:
        import_files([raw], tmp_path / "out2")
    problem = info.value.problems[0]
    assert (problem.file, problem.row, problem.column) == (str(raw), 1, "contract_multiplier")
    assert "--pack" in problem.message
    assert not (tmp_path / "out2").exists()


def test_slash_dates_are_repaired_and_logged(tmp_path):
    frame = FUTURES.assign(trading_date=["2024/6/3", "2024/6/4", "2024/6/5"])
    result = import_files([_write(frame, tmp_path / "f.csv")], tmp_path / "out")
    fut = load(result.written["futures"], kind="futures").frame
    assert fut["trading_date"].dt.day.tolist() == [3, 4, 5]
    assert "3 dates written Y/M/D read as ISO dates" in result.log.read_text(encoding="utf-8")


def test_zero_settlement_repaired_and_logged(tmp_path):
    frame = FUTURES.assign(settlement=[10040, 0, 10140])
    result = import_files([_write(frame, tmp_path / "f.csv")], tmp_path / "out")
    assert load(result.written["futures"], kind="futures").frame["settlement"].tolist() == [10040, 10100, 10140]
    assert "f.csv:3: column `settlement`: settlement missing or 0: replaced by the close" in \
        result.log.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- refusals


def test_a_file_of_unknown_role_is_refused_at_its_header(tmp_path):
    raw = _write(pd.DataFrame({"foo": ["a"], "bar": ["b"]}), tmp_path / "what.csv")
    runner = CliRunner()
    res = runner.invoke(main, ["data", "import", str(raw), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert f"{raw}:1: cannot tell what this file holds (columns: foo, bar)" in res.output
    assert not (tmp_path / "out").exists()


def test_two_headers_meaning_one_column_are_refused(tmp_path):
    raw = _write(FUTURES.assign(收盘价=FUTURES["close"]), tmp_path / "f.csv")
    with pytest.raises(DataError) as info:
        import_files([raw], tmp_path / "out")
    assert "`收盘价` and `close` both mean `close`" in info.value.problems[0].message


def test_a_bad_cell_is_located_in_the_source_file(tmp_path):
    frame = FUTURES.rename(columns={"close": "收盘价"}).astype(str)
    frame.loc[1, "收盘价"] = "abc"
    raw = _write(frame, tmp_path / "f.csv")
    with pytest.raises(DataError) as info:
        import_files([raw], tmp_path / "out")
    p = info.value.problems[0]
    assert (p.file, p.row, p.column) == (str(raw), 3, "close")


def test_files_of_one_role_are_merged_and_overlaps_refused(tmp_path):
    a = _write(FUTURES.iloc[:2], tmp_path / "a.csv")
    b = _write(FUTURES.iloc[2:], tmp_path / "b.csv")
    result = import_files([b, a], tmp_path / "out")
    assert load(result.written["futures"], kind="futures").frame["close"].tolist() == [10050, 10100, 10150]
    c = _write(FUTURES.iloc[1:].assign(close=[10110, 10150]), tmp_path / "c.csv")
    with pytest.raises(DataError) as info:
        import_files([a, c], tmp_path / "out2")
    assert f"also in {a}:3" in info.value.problems[0].message


def test_the_cli_writes_the_layout_and_the_log(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    _write(FUTURES, folder / "bars.csv")
    _write(SIGNALS, folder / "views.csv")
    _write(FACTORS, folder / "f.csv")
    _write(IV, folder / "iv.csv")
    res = CliRunner().invoke(main, ["data", "import", str(folder), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["factors.csv", "futures.csv", "import_log.md", "iv_summary.csv", "signals.csv"]
    assert is_canonical(tmp_path / "out") and not is_canonical(folder)


# --------------------------------------------------------------------------- --data of the commands


def _raw_folder(tmp_path: Path) -> Path:
    from opl.data.synth import synthesize

    from opl.runtime.market.calendars import is_trading_day
    from opl.runtime.market.rules import load_pack

    data = synthesize(seed=2, years=2, options=False)
    # An exchange's file has no row on the days it is closed (the synthetic calendar is a stand-in).
    cj = load_pack("czce_cj")
    open_days = data.futures["trading_date"].map(lambda d: is_trading_day(cj, d.date()))
    fut = data.futures[open_days].drop(columns=["symbol", "prev_settlement"]).rename(columns={
        "trading_date": "交易日期", "open": "开盘价", "high": "最高价", "low": "最低价", "close": "收盘价",
        "settlement": "结算价", "volume": "成交量", "open_interest": "持仓量", "total_turnover": "成交额"})
    folder = tmp_path / "raw"
    folder.mkdir()
    fut.to_csv(folder / "cj_daily.csv", index=False, encoding="gbk", date_format="%Y-%m-%d")
    return folder


def test_resolve_data_imports_a_raw_folder_once(tmp_path):
    folder = _raw_folder(tmp_path)
    target, result = resolve_data(folder, into=tmp_path / "imported")
    assert target == str(tmp_path / "imported") and result.files[0].role == "futures"
    assert resolve_data(target) == (target, None)
    assert resolve_data(None) == (None, None)


def test_calibrate_takes_a_raw_folder(tmp_path):
    folder = _raw_folder(tmp_path)
    res = CliRunner().invoke(main, ["calibrate", "--data", str(folder)])
    assert res.exit_code == 0, res.output
    assert re.search(r"note: --data .* holds raw files: imported futures .*import_log\.md", res.output)
    assert "Experiment block:" in res.output


def test_a_raw_folder_that_cannot_be_imported_is_a_located_error(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    _write(pd.DataFrame({"foo": ["a"]}), folder / "x.csv")
    res = CliRunner().invoke(main, ["calibrate", "--data", str(folder)])
    assert res.exit_code == 1
    assert f"{folder / 'x.csv'}:1: cannot tell what this file holds" in res.output


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_the_teams_jujube_files_import(tmp_path):
    result = import_files([SHARED], tmp_path / "out", pack="czce_cj")
    roles = {Path(f.source).name: f.role for f in result.files}
    assert roles == {"cj_continuous_daily.csv": "futures", "cj_option_iv_daily.csv": "iv_summary"}
    log = result.log.read_text(encoding="utf-8")
    assert "`hold` → `open_interest`" in log and "`日均隐含波动率(%)` → `iv_mean`" in log
    assert log.count("settlement missing or 0: replaced by the close") == 2
    assert re.search(r"rolls: 2\d \(evidence rule.*2021-07-28 \(price \+ open interest\)", log)
    fut = load(result.written["futures"], kind="futures").frame
    assert len(fut) == 1773 and (fut["settlement"] > 0).all()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_calibrate_on_the_teams_raw_folder(tmp_path):
    res = CliRunner().invoke(main, ["calibrate", "--data", str(SHARED)])
    assert res.exit_code == 0, res.output
    assert "Implied volatility summary" in res.output and "1773 days" in res.output


@pytest.mark.parametrize("column, drop", [
    ("trading_date", ["option_type", "strike_price", "expiry", "underlying_symbol"]),
    ("expiry", ["symbol", "underlying_symbol"]),
])
def test_a_date_with_a_time_zone_is_located_not_a_traceback(tmp_path, column, drop):
    frame = OPTIONS.drop(columns=drop).astype({column: str})
    frame.loc[1, column] = frame.loc[1, column][:10] + "T15:00:00+08:00"  # pandas: "Mixed timezones detected"
    with pytest.raises(DataError) as info:
        import_files([_write(frame, tmp_path / "opt.csv")], tmp_path / "out", pack="czce_cj")
    assert (info.value.row, info.value.column) == (3, column) and "time zone" in info.value.message


def test_assumptions_take_a_raw_folder(tmp_path):
    folder = _raw_folder(tmp_path)
    res = CliRunner().invoke(main, ["assumptions", "--data", str(folder), "--json", str(tmp_path / "a.json")])
    assert res.exit_code == 0, res.output
    assert "holds raw files: imported futures" in res.output
    assert "random_walk" in (tmp_path / "a.json").read_text(encoding="utf-8")
    both = CliRunner().invoke(main, ["assumptions", "--data", str(folder), "--futures", str(folder / "cj_daily.csv")])
    assert both.exit_code == 2 and "either --futures FILE or --data DIR" in both.output


def test_simulate_takes_a_raw_folder(tmp_path):
    folder = _raw_folder(tmp_path)
    strategy = tmp_path / "small.opl"
    strategy.write_text("opl-lang 1.0\nunderlying Future(2026-05-15)\nexchange CZCE\nsymbol CJ605\n"
                        "time 2026-01-05\nprice 10400\niv 0.28\nrate 0.015\n"
                        "S = short Option(Put, 9800, 30d) + short Option(Call, 11000, 30d)\ncapital 1000000\n"
                        "experiment {\n  model gbm\n  seed 7\n  horizon 1\n  sizes [ 5 ]\n}\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["simulate", str(strategy), "--data", str(folder), "--paths", "100", "-q",
                                    "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert "holds raw files: imported futures" in res.output
    assert "import-" in (tmp_path / "s.json").read_text(encoding="utf-8")


CZCE_REPORT = """郑州商品交易所期权每日行情表(2024-06-21)
交易日期   |合约代码     |昨结算    |今开盘    |最高价    |最低价    |今收盘    |今结算    |涨跌1     |成交量(手)|持仓量    |成交额(万元)|DELTA     |
2024-06-21 |CJ501C11400  |500.00    |510.00    |520.00    |480.00    |505.00    |502.00    |5.00      |1,200     |3,400     |30.12     |0.4512    |
2024-06-21 |CJ501P11400  |450.00    |440.00    |460.00    |420.00    |445.00    |448.00    |-5.00     |1,100     |3,100     |24.55     |-0.5488   |
"""


def test_a_czce_daily_option_report_as_published(tmp_path):
    """GBK, a title line, `|` separators, codes only: type, strike, underlying, expiry, multiplier derived."""
    path = tmp_path / "OPTIONDATA_CJ.txt"
    path.write_bytes(CZCE_REPORT.encode("gbk"))
    result = import_files([path], tmp_path / "out", pack="czce_cj")
    opt = load(result.written["options"], kind="options").frame
    assert opt["symbol"].tolist() == ["CJ501C11400", "CJ501P11400"]
    assert opt["strike_price"].tolist() == [11400, 11400] and opt["option_type"].tolist() == ["C", "P"]
    assert [d.date().isoformat() for d in opt["expiry"]] == ["2024-12-11"] * 2
    assert opt["settlement"].tolist() == [502, 448] and opt["volume"].tolist() == [1200, 1100]
    assert opt["total_turnover"].tolist() == [301_200, 245_500]
    log = result.log.read_text(encoding="utf-8")
    assert "skipped as a title" in log and "`|`-separated exchange report" in log
    assert "not in the alias table, not written: `涨跌1`, `DELTA`" in log
    bad = tmp_path / "bad.txt"
    bad.write_bytes(CZCE_REPORT.replace("|0.4512    |", "|0.4512    |9|").encode("gbk"))
    with pytest.raises(DataError) as info:
        import_files([bad], tmp_path / "out2", pack="czce_cj")
    assert info.value.problems[0].row == 3 and "14 fields where the header has 13" in info.value.problems[0].message
