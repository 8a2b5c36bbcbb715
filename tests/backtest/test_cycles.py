"""The backtest sells the strangle the file says (issue 11 item 8).

* a view issued on one contract is re-anchored to the contract a later cycle trades, by the
  two contracts' same-day prices at the roll (``prev_settlement``), approximately without;
* listed strikes never turn a strangle into a straddle or cross its legs: such a cycle is
  skipped with a note, never traded as another position;
* a cycle sells the tenor's options and lasts their life: with a chain that lists one
  expiry two months out, the account waits flat for the session nearest the tenor;
* the report's plots: trades.png's legend carries the bars' colours, delta.png says when
  the file has no band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opl.backtesting import backtest_file
from opl.backtesting.cycles import level_factors, strike_problem
from opl.runtime.engine.legspec import OptionLeg, StrikeRule
from opl.runtime.market.rules import load_pack

STRANGLE = "short Option(Put, support-100, 30d) + short Option(Call, resistance+100, 30d)"
CJ_HEAD = ("opl-lang 1.0\nunderlying Future(2024-09-13)\nexchange CZCE\nsymbol CJ409\ntime 2024-01-02\n"
           "price 10000\niv 0.25\nsupport 9500\nresistance 10500\ncapital 1000000\n")


def _leg(is_call, anchor, value):
    return OptionLeg(is_call=is_call, side=-1, qty=1, american=True,
                     strike=StrikeRule(kind="relative", anchor=anchor, value=value))


PUT, CALL = _leg(False, "support", -100), _leg(True, "resistance", 100)
ATM_PUT, ATM_CALL = _leg(False, "price", 0), _leg(True, "price", 0)


def test_listed_strikes_never_merge_or_cross_a_strangles_legs():
    assert strike_problem([PUT, CALL], [9400, 10600], [9400, 10600]) is None
    merged = strike_problem([PUT, CALL], [9800, 11850], [11800, 11800])
    assert merged and "9800" in merged and "11800" in merged
    assert strike_problem([PUT, CALL], [9400, 10600], [10700, 10600]) is not None
    # The file's levels themselves put the short put above the short call: both in the money.
    crossed = strike_problem([PUT, CALL], [10900, 9900], [10900, 9900])
    assert crossed and "both in the money" in crossed
    # A straddle's legs share one spec: one strike is what it says.
    assert strike_problem([ATM_PUT, ATM_CALL], [10000, 10000], [10000, 10000]) is None


def _two_contracts(tmp_path, *, prev: bool):
    """CJ405 at 10,000 for 15 sessions, then CJ409 at 12,000 (its prev_settlement on the roll day:
    11,880, its price on CJ405's last session); a view on CJ405's first day."""
    dates = pd.bdate_range("2024-01-02", periods=45)
    prices = np.where(np.arange(45) < 15, 10_000.0, 12_000.0)
    frame = pd.DataFrame({"trading_date": dates.strftime("%Y-%m-%d"),
                          "symbol": ["CJ405"] * 15 + ["CJ409"] * 30})
    for col in ("open", "high", "low", "close", "settlement"):
        frame[col] = prices
    if prev:
        frame["prev_settlement"] = np.concatenate([[10_000.0], prices[:-1]])
        frame.loc[15, "prev_settlement"] = 11_880.0
    frame.to_csv(tmp_path / "futures.csv", index=False)
    pd.DataFrame({"date": [dates[0].strftime("%Y-%m-%d")], "support": [9500], "resistance": [10500],
                  "direction": ["flat"]}).to_csv(tmp_path / "signals.csv", index=False)
    path = tmp_path / "strangle.opl"
    path.write_text(CJ_HEAD + f"S = {STRANGLE}\nexit_triggers [ pnl_percent(<-1000%) ]\n", encoding="utf-8")
    return dates, frame, path


def _by_type(result, cycle):
    legs = result.strategy["legs"]
    return {leg["type"]: k for leg, k in zip(legs, cycle["strikes"])}


def test_level_factors_use_the_same_day_prices_of_both_contracts(tmp_path):
    _, frame, _ = _two_contracts(tmp_path, prev=True)
    frame["contract"] = frame["symbol"]
    factors, approximate = level_factors(frame)
    assert approximate == 0 and factors[14] == 1.0 and factors[15] == pytest.approx(11_880 / 10_000)
    factors, approximate = level_factors(frame.drop(columns="prev_settlement"))
    assert approximate == 1 and factors[15] == pytest.approx(12_000 / 10_000)


@pytest.mark.parametrize("prev", [True, False])
def test_a_view_from_the_old_contract_is_re_anchored_to_the_new_one(tmp_path, prev):
    dates, _, path = _two_contracts(tmp_path, prev=prev)
    result = backtest_file(path, data=tmp_path)
    first, second = result.cycles[0], result.cycles[1]
    assert first["contract"] == "CJ405" and first["support"] == 9500 and first["level_factor"] == 1.0
    ratio = 11_880 / 10_000 if prev else 1.2
    assert second["contract"] == "CJ409" and second["view_date"] == str(dates[0].date())
    assert second["support"] == pytest.approx(9500 * ratio) and second["resistance"] == pytest.approx(10500 * ratio)
    # Old levels on the new contract (12,000) would sell a 10,600 call 1,400 in the money.
    strikes = _by_type(result, second)
    assert strikes["put"] < 12_000 < strikes["call"]
    pack = load_pack("czce_cj")
    assert strikes["call"] == float(pack.snap_strike(10500 * ratio + 100))
    assert strikes["put"] == float(pack.snap_strike(9500 * ratio - 100))
    assert any("re-anchored" in n for n in result.notes)
    assert any("approximately" in n for n in result.notes) is (not prev)


def _etf_strangle(tmp_path, build, expiries, strikes=None, periods=70):
    dates = pd.bdate_range("2024-01-02", periods=periods)
    prices = np.full(len(dates), 3.0)
    build.futures(tmp_path, dates, prices, symbols=["510050"] * len(dates))
    chain = build.etf_chain(tmp_path, dates, prices, expiries, **({"strikes": strikes} if strikes else {}))
    path = build.etf_file(tmp_path, "short Option(Put, ATM-5%, 30d) + short Option(Call, ATM+5%, 30d)")
    return dates, chain, path


def test_a_cycle_sells_the_tenors_options_and_lasts_their_life(tmp_path, build):
    # One expiry listed, 86 days out: the options sold at the first session would be a quarter's.
    dates, _, path = _etf_strangle(tmp_path, build, [pd.Timestamp("2024-03-28")])
    result = backtest_file(path, data=tmp_path, overrides=["sim.guard_days=0"])
    (cycle,) = result.cycles
    opened = pd.Timestamp(cycle["open"])
    assert abs((pd.Timestamp(cycle["expiry"]) - opened).days - 30) <= 1
    assert cycle["close"] == cycle["expiry"] and cycle["exit"] == "expiry"
    assert any("waiting for the session whose listed expiry is nearest the 30-day tenor" in n for n in result.notes)
    # The account is flat, not absent, before the open: the series runs from the first session it waited on.
    assert result.equity[0] == result.run["capital"] and len(result.equity) == len(result.dates)


def test_a_cycle_whose_listed_strikes_merge_the_legs_is_skipped_with_a_note(tmp_path, build):
    expiries = [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-28")]
    dates, chain, path = _etf_strangle(tmp_path, build, expiries, periods=42)
    # January's chain lists only 3.3 and above: the 2.85 put and the 3.15 call would both be sold at 3.3.
    january = pd.DatetimeIndex(chain["expiry"]) == expiries[0]
    chain = chain[~january | (chain["strike_price"] >= 3.3)]
    chain.to_csv(tmp_path / "options.csv", index=False)
    result = backtest_file(path, data=tmp_path, overrides=["sim.guard_days=0"])
    assert [c["expiry"] for c in result.cycles] == ["2024-02-28"]
    strikes = _by_type(result, result.cycles[0])
    assert strikes["put"] < 3.0 < strikes["call"]
    skipped = [n for n in result.notes if "skipped" in n]
    assert skipped and "2024-01" in skipped[0] and "3.3" in skipped[0]


def test_trades_legend_carries_the_bar_colours_and_delta_says_there_is_no_band(tmp_path, build):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from opl.backtesting.report import delta_figure, trades_figure

    dates, _, path = _two_contracts(tmp_path, prev=True)
    result = backtest_file(path, data=tmp_path)
    figure = trades_figure(result)
    try:
        ax = figure.axes[0]
        bars = {tuple(p.get_facecolor()) for p in ax.patches}
        legend = ax.get_legend()
        handles = {t.get_text(): tuple(h.get_facecolor()) for t, h in zip(legend.get_texts(), legend.legend_handles)}
        assert set(handles) == {c["exit"] for c in result.cycles}
        assert set(handles.values()) == bars
    finally:
        plt.close(figure)
    figure = delta_figure(result)
    try:
        assert "no delta band" in figure.axes[0].get_title()
    finally:
        plt.close(figure)
