"""The AKShare adapter on recorded frames (a fake `akshare` module): never the network."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opl.data.akshare import (AkshareNetworkError, AkshareUnavailable, etf_daily, etf_option_history, fetch,
                              fetch_etf, futures_daily, option_chain)
from opl.data.loaders import DataError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "akshare"


def _fake(*, futures_columns=None) -> types.ModuleType:
    module = types.ModuleType("akshare")
    module.calls = []

    def futures_zh_daily_sina(symbol):
        module.calls.append(("futures_zh_daily_sina", symbol))
        frame = pd.read_csv(FIXTURES / "futures_zh_daily_sina_CJ0.csv")
        return frame.rename(columns=futures_columns or {})

    def option_hist_czce(symbol, trade_date):
        module.calls.append(("option_hist_czce", symbol, trade_date))
        path = FIXTURES / f"option_hist_czce_CJ_{trade_date}.csv"
        # AKShare returns an empty frame for a day it has no report for.
        return pd.read_csv(path) if symbol == "红枣期权" and path.exists() else pd.DataFrame()

    def fund_etf_hist_sina(symbol):
        module.calls.append(("fund_etf_hist_sina", symbol))
        return pd.read_csv(FIXTURES / f"fund_etf_hist_sina_{symbol}.csv")

    def option_sse_codes_sina(symbol, trade_date, underlying):
        module.calls.append(("option_sse_codes_sina", symbol, trade_date, underlying))
        codes = pd.read_csv(FIXTURES / f"option_sse_codes_sina_{underlying}_{trade_date}.csv", dtype=str)
        return codes[codes["side"] == symbol].drop(columns="side").reset_index(drop=True)

    def option_sse_greeks_sina(symbol):
        terms = pd.read_csv(FIXTURES / "option_sse_greeks_sina.csv", dtype=str)
        return terms[terms["id"] == symbol].drop(columns="id").reset_index(drop=True)

    def option_sse_daily_sina(symbol):
        module.calls.append(("option_sse_daily_sina", symbol))
        bars = pd.read_csv(FIXTURES / "option_sse_daily_sina.csv", dtype={"id": str})
        return bars[bars["id"] == symbol].drop(columns="id").reset_index(drop=True)

    for function in (futures_zh_daily_sina, option_hist_czce, fund_etf_hist_sina, option_sse_codes_sina,
                     option_sse_greeks_sina, option_sse_daily_sina):
        setattr(module, function.__name__, function)
    return module


@pytest.fixture
def ak(monkeypatch):
    module = _fake()
    monkeypatch.setitem(sys.modules, "akshare", module)
    return module


def test_without_akshare_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "akshare", None)
    with pytest.raises(AkshareUnavailable, match=r'pip install -e "\.\[akshare\]"'):
        futures_daily("CJ0")


def test_futures_bars_map_onto_the_contract(ak):
    result = futures_daily("CJ0")
    f = result.frame
    assert ak.calls == [("futures_zh_daily_sina", "CJ0")]
    assert len(f) == 320 and "symbol" not in f.columns  # the main series: rolls by the jump rule
    assert {"trading_date", "open", "high", "low", "close", "settlement", "volume", "open_interest"} <= set(f.columns)
    assert f["trading_date"].dtype.kind == "M" and result.file == "akshare:futures_zh_daily_sina(CJ0)"
    raw = pd.read_csv(FIXTURES / "futures_zh_daily_sina_CJ0.csv")
    np.testing.assert_array_equal(f["settlement"], raw["settle"])
    np.testing.assert_array_equal(f["open_interest"], raw["hold"])
    window = futures_daily("CJ0", start="2025-01-01", end="2025-01-31").frame
    assert window["trading_date"].min() >= pd.Timestamp("2025-01-01")
    assert window["trading_date"].max() <= pd.Timestamp("2025-01-31") and len(window) > 10
    # One contract carries its code, so rolls are exact.
    assert set(futures_daily("CJ2505").frame["symbol"]) == {"CJ2505"}


def test_a_vendor_column_change_is_a_located_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "akshare", _fake(futures_columns={"settle": "settlement_price"}))
    with pytest.raises(DataError) as info:
        futures_daily("CJ0")
    assert info.value.file == "akshare:futures_zh_daily_sina(CJ0)" and info.value.column == "settle"


def test_an_option_report_maps_onto_the_options_contract(ak):
    result = option_chain("CJ", "2025-02-26")
    o = result.frame
    assert ak.calls == [("option_hist_czce", "红枣期权", "20250226")]
    row = o[o["symbol"] == "CJ505C10000"].iloc[0]
    assert row["underlying_symbol"] == "CJ505" and row["option_type"] == "C" and row["strike_price"] == 10000
    assert row["expiry"] == pd.Timestamp("2025-04-11") and row["contract_multiplier"] == 5.0
    assert set(o["expiry"]) == {pd.Timestamp("2025-04-11"), pd.Timestamp("2025-06-11")}
    raw = pd.read_csv(FIXTURES / "option_hist_czce_CJ_20250226.csv")
    untraded = int((raw["成交量(手)"] == 0).sum())
    assert int(o["close"].isna().sum()) == untraded > 0
    assert any(f"{untraded} options did not trade" in n for n in result.notes)
    traded = raw[raw["成交量(手)"] > 0].iloc[0]
    got = o[o["symbol"] == traded["合约代码"]].iloc[0]
    assert float(got["total_turnover"]) == pytest.approx(traded["成交额(万元)"] * 10_000)
    assert "exchange_iv" in o.columns and "exchange_delta" in o.columns


def test_bad_codes_and_empty_days_are_located_errors(ak, monkeypatch):
    with pytest.raises(DataError, match="no rows"):
        option_chain("CJ", "2025-03-03")
    frame = pd.read_csv(FIXTURES / "option_hist_czce_CJ_20250226.csv")
    frame.loc[3, "合约代码"] = "CJ505X10000"
    monkeypatch.setattr(ak, "option_hist_czce", lambda symbol, trade_date: frame)
    with pytest.raises(DataError) as info:
        option_chain("CJ", "2025-02-26")
    assert info.value.row == 4 and info.value.column == "合约代码" and "CJ505X10000" in info.value.message
    with pytest.raises(ValueError, match="no AKShare option mapping"):
        option_chain("ZZ", "2025-02-26")


def test_fetched_data_calibrate(ak, tmp_path):
    from opl.calibration import calibrate_dir

    paths = fetch("CJ", tmp_path, option_days=3)
    assert set(paths) == {"futures", "options"}
    result = calibrate_dir(tmp_path, rate=0.015, limit=0.10, tick=5.0)
    # The chains' smile (iv = 0.28 + 0.05x + 1.2x², BAW settlements on the 1 CNY tick) comes back.
    window = result.surface.window
    assert window["atm"] == pytest.approx(0.28, abs=0.005)
    assert window["skew"] == pytest.approx(0.05 / 0.28, abs=0.05)
    assert window["curvature"] == pytest.approx(1.2 / 0.28, rel=0.15)
    assert result.surface.forward_sources == {"parity": len(result.surface.points)}


def test_opl_data_fetch_cli(ak, tmp_path, monkeypatch):
    from opl.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["data", "fetch", "--source", "akshare", "--symbol", "CJ", "--out", str(tmp_path),
                               "--option-days", "2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "futures.csv").is_file() and (tmp_path / "options.csv").is_file()
    monkeypatch.setitem(sys.modules, "akshare", None)
    res = runner.invoke(main, ["data", "fetch", "--source", "akshare", "--symbol", "CJ", "--out", str(tmp_path)])
    assert res.exit_code == 2 and 'pip install -e ".[akshare]"' in res.output


def test_the_etfs_bars_map_onto_the_bar_contract(ak):
    result = etf_daily("510050")
    f = result.frame
    raw = pd.read_csv(FIXTURES / "fund_etf_hist_sina_sh510050.csv")
    assert ak.calls == [("fund_etf_hist_sina", "sh510050")] and len(f) == len(raw)
    assert set(f["symbol"]) == {"510050"}  # one instrument: no rolls
    np.testing.assert_array_equal(f["settlement"], raw["close"])
    assert any("settlement := close" in n for n in result.notes)


def test_an_sse_option_month_maps_onto_the_options_contract(ak):
    result = etf_option_history("510050", "202412")
    o = result.frame
    daily = pd.read_csv(FIXTURES / "option_sse_daily_sina.csv", dtype={"id": str})
    assert len(o) == len(daily) and set(o["symbol"]) == set(daily["id"])  # the contract ID, stable for life
    row = o[o["symbol"] == "10008001"].iloc[0]
    first = daily[daily["id"] == "10008001"].iloc[0]
    assert row["option_type"] == "C" and row["expiry"] == pd.Timestamp("2024-12-25")  # the pack's 4th Wednesday
    assert row["settlement"] == row["close"] == first["收盘"] and row["contract_multiplier"] == 10_000
    assert row["strike_price"] == pytest.approx(float(row["strike_price"])) and row["underlying_symbol"] == "510050"
    assert set(o.loc[o["symbol"].between("10008010", "10008018"), "option_type"]) == {"P"}
    # The adjusted call without its put is left out and named, never given its current strike for its old bars.
    (note,) = [n for n in result.notes if "left out" in n]
    assert note.startswith("dividend-adjusted 10008021 (510050C2412A03000) left out: its put is not listed")
    assert ("option_sse_daily_sina", "10008021") not in ak.calls


def test_an_adjusted_sse_pair_is_carried_as_its_own_contracts(ak):
    """510050C/P2412A02850: 2.85 × 10,000 until the ex-date the parity of its own prices shows, 2.79 × 10,217 from
    it (the recorded data's dividend: 0.06 on 2024-12-02, previous close 2.829, so g = 0.97879)."""
    result = etf_option_history("510050", "202412")
    o = result.frame
    for cid, kind in (("10008019", "C"), ("10008020", "P")):
        rows = o[o["symbol"] == cid].sort_values("trading_date")
        before = rows["trading_date"] < pd.Timestamp("2024-12-02")
        assert before.sum() == 2 and (~before).sum() == 17 and set(rows["option_type"]) == {kind}
        assert set(rows.loc[before, "strike_price"]) == {2.85} and set(rows.loc[~before, "strike_price"]) == {2.79}
        assert set(rows.loc[before, "contract_multiplier"]) == {10_000}
        assert set(rows.loc[~before, "contract_multiplier"]) == {10_217}  # round(10,000 / g), g = 2.76 / 2.829
    (note,) = [n for n in result.notes if n.startswith("dividend-adjusted 10008019")]
    assert "ex-date 2024-12-02" in note and "strike 2.85 × 10,000 before, 2.79 × 10,217 from it" in note
    # The ETF's bars were fetched once to date it (fetch_etf passes its own and fetches none).
    assert ak.calls.count(("fund_etf_hist_sina", "sh510050")) == 1


def test_an_adjusted_pair_parity_cannot_date_is_left_out_with_the_reason(ak, monkeypatch):
    flat = pd.read_csv(FIXTURES / "fund_etf_hist_sina_sh510050.csv")
    flat["close"] = 2.8  # an ETF that never moves: S − (C − P) jumps every session the option prices do
    result = etf_option_history("510050", "202412", etf=flat.rename(columns={"date": "trading_date"}))
    assert not (result.frame["symbol"] == "10008019").any()
    (note,) = [n for n in result.notes if n.startswith("dividend-adjusted 10008019")]
    assert "left out: parity shows no single ex-date" in note


def test_fetched_etf_options_calibrate_to_their_smile(ak, tmp_path):
    from opl.calibration import calibrate_dir

    paths, notes = fetch_etf("510050", ["202412"], tmp_path)
    assert set(paths) == {"futures", "options"} and any("202412: " in n for n in notes)
    result = calibrate_dir(tmp_path, rate=0.015, pack="sse_50etf")
    assert result.settings["style"] == "european" and result.settings["spot_underlying"]
    # iv = 0.20 − 0.10x + 0.8x² (Black–Scholes, carry = rate): the level comes back from parity forwards.
    assert result.surface.window["atm"] == pytest.approx(0.20, abs=0.005)
    assert result.surface.window["skew"] == pytest.approx(-0.10 / 0.20, abs=0.1)


def _offline(monkeypatch, ak, error: Exception):
    def unreachable(**kwargs):
        raise error

    for name in ("futures_zh_daily_sina", "fund_etf_hist_sina"):
        monkeypatch.setattr(ak, name, unreachable)


@pytest.mark.parametrize("error", [ConnectionError("Max retries exceeded: Name or service not known"),
                                   TimeoutError("timed out")], ids=["no network", "timeout"])
def test_a_network_failure_is_said_as_such_and_writes_nothing(ak, tmp_path, monkeypatch, error):
    from opl.cli import main

    _offline(monkeypatch, ak, error)
    with pytest.raises(AkshareNetworkError, match=r"^network: akshare\.futures_zh_daily_sina\(symbol='CJ0'\)"):
        futures_daily("CJ0")
    out = tmp_path / "out"
    for args in (["--symbol", "CJ"], ["--symbol", "510050", "--month", "202412"]):
        res = CliRunner().invoke(main, ["data", "fetch", "--source", "akshare", *args, "--out", str(out)])
        assert res.exit_code == 2 and res.output.startswith("error: network: akshare.")
        assert "could not reach its source" in res.output and "no network?" in res.output
        assert str(out) not in res.output and not out.exists()


def test_a_vendor_exception_that_is_not_the_networks_propagates(ak, monkeypatch):
    monkeypatch.setattr(ak, "futures_zh_daily_sina", lambda **kw: (_ for _ in ()).throw(KeyError("data")))
    with pytest.raises(KeyError):
        futures_daily("CJ0")


def test_an_expiry_past_the_packs_calendar_is_a_located_error(ak, monkeypatch):
    # The rule packs list the exchanges' closures through 2026: a series whose expiry falls in 2027 cannot be dated.
    with pytest.raises(DataError) as info:
        etf_option_history("510050", "202701")
    assert info.value.column == "month" and "2027-01-27" in info.value.message
    assert "outside the sse_50etf calendar: holidays listed 2007-01-01 … 2026-12-31" in info.value.message
    assert not any(call[0] == "option_sse_codes_sina" for call in ak.calls)  # refused before fetching
    frame = pd.read_csv(FIXTURES / "option_hist_czce_CJ_20250226.csv")
    frame["合约代码"] = frame["合约代码"].str.replace("CJ507", "CJ703").str.replace("CJ505", "CJ701")
    monkeypatch.setattr(ak, "option_hist_czce", lambda symbol, trade_date: frame)
    with pytest.raises(DataError) as info:
        option_chain("CJ", "2026-12-01")
    first = int(np.flatnonzero(frame["合约代码"].str.startswith("CJ703").to_numpy())[0]) + 1
    (problem,) = info.value.problems
    assert (problem.row, problem.column) == (first, "合约代码")
    assert problem.message.startswith("the expiry of the options on CJ703 by the czce_cj pack's rule, 2027-02-11")
