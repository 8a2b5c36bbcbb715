"""Backtests whose answers are known by hand, over constructed data directories.

* a flat path: a short straddle held to expiry earns its premium less the opening costs,
  and the interest on that cash at the file's rate;
* a path that ends above the strike: the call is exercised (assigned) at expiry, as the
  simulator does it, and the cycle keeps the premium less the intrinsic value and the
  assignment fee;
* a roll inside a cycle: the cycle is cut at the old contract's last session and the next
  opens on the new contract — no price path, and no P&L, crosses the roll.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opl.backtesting import backtest_file
from opl.runtime.engine.ledger import tick_size
from opl.runtime.market.rules import load_pack

STRADDLE = "short Option(Call, ATM, 30d) + short Option(Put, ATM, 30d)"
DATES = pd.bdate_range("2024-01-02", periods=23)  # 2024-01-31, session 21, is the expiry
EXPIRY = DATES[21]


def _costs_per_lot(premium: float) -> tuple[float, float]:
    """The SSE pack's opening cost of one short option (fee + broker + one tick of slippage) and assignment fee."""
    pack = load_pack("sse_50etf")
    fees = pack.fees.option
    slip = tick_size(pack.option.tick, premium) * pack.option.multiplier
    return fees.open_short + fees.broker + slip, fees.assignment


def _run(tmp_path, build, prices, strategy=STRADDLE, **kwargs):
    build.futures(tmp_path, DATES, prices, symbols=["510050"] * len(DATES))
    chain = build.etf_chain(tmp_path, DATES, prices, [EXPIRY])
    path = build.etf_file(tmp_path, strategy)
    result = backtest_file(path, data=tmp_path, overrides=["sim.guard_days=0"], **kwargs)
    return result, chain


def _premium(chain, k: float) -> float:
    day0 = chain[(chain["trading_date"] == DATES[0].strftime("%Y-%m-%d")) & np.isclose(chain["strike_price"], k)]
    return float(day0["settlement"].sum()) * 10_000


def test_flat_path_earns_the_premium_less_costs_and_its_interest(tmp_path, build):
    result, chain = _run(tmp_path, build, np.full(len(DATES), 3.0))
    premium = _premium(chain, 3.0)
    open_cost, _ = _costs_per_lot(premium / 2 / 10_000)
    cycle = result.cycles[0]
    assert len(result.cycles) == 1 and cycle["strikes"] == [3.0, 3.0] and cycle["exit"] == "expiry"
    assert cycle["premium"] == pytest.approx(premium)
    # The cash the sale brought in earns the file's rate (2%) over the cycle's calendar days.
    cash = premium - 2 * open_cost
    interest = cash * np.expm1(0.02 * (EXPIRY - DATES[0]).days / 365)
    assert cycle["pnl"] == pytest.approx(cash + interest, abs=1e-6)
    assert result.metrics.attribution["per_month"]["costs"] == pytest.approx(-2 * open_cost)
    assert result.metrics.attribution["per_month"]["interest"] == pytest.approx(interest)
    assert result.equity[-1] == pytest.approx(100_000 + cash + interest, abs=1e-6)


def test_a_path_through_the_strike_is_assigned_at_expiry(tmp_path, build):
    prices = np.concatenate([np.full(11, 3.0), np.linspace(3.0, 3.2, 11)[1:], [3.2, 3.2]])
    assert prices[21] == pytest.approx(3.2)
    result, chain = _run(tmp_path, build, prices)
    premium = _premium(chain, 3.0)
    open_cost, assignment = _costs_per_lot(premium / 2 / 10_000)
    cycle = result.cycles[0]
    # The call ends 0.2 in the money: exercised against the seller, who keeps premium − intrinsic
    # and the interest on the premium held until the expiry.
    assert cycle["exit"] == "expiry"
    interest = (premium - 2 * open_cost) * np.expm1(0.02 * (EXPIRY - DATES[0]).days / 365)
    assert cycle["pnl"] == pytest.approx(premium - 0.2 * 10_000 - 2 * open_cost - assignment + interest, abs=1e-6)
    assert result.metrics.exercise["assignment_share"] == 100.0
    assert result.metrics.attribution["per_month"]["premium"] == pytest.approx(premium - 2_000.0, abs=1e-6)


@pytest.mark.parametrize("with_symbols", [True, False])
def test_a_cycle_never_crosses_a_roll(tmp_path, build, with_symbols):
    dates = pd.bdate_range("2024-01-02", periods=45)
    prices = np.where(np.arange(45) < 15, 10_000.0, 12_000.0)  # a 20% roll jump, beyond the 10% limit
    symbols = ["CJ405"] * 15 + ["CJ409"] * 30 if with_symbols else None
    build.futures(tmp_path, dates, prices, symbols=symbols)
    path = tmp_path / "covered.opl"
    path.write_text("opl-lang 1.0\nunderlying Future(2024-09-13)\nexchange CZCE\nsymbol CJ409\ntime 2024-01-02\n"
                    "price 10000\niv 0.25\ncapital 1000000\n"
                    "S = short Option(Call, ATM+5%, 30d) + long Future\n"
                    "exit_triggers [ pnl_percent(<-1000%) ]\n", encoding="utf-8")
    result = backtest_file(path, data=tmp_path)
    first, second = result.cycles[0], result.cycles[1]
    assert first["ends"] == "roll" and first["exit"] == "cut" and first["close"] == str(dates[14].date())
    assert second["open"] == str(dates[15].date()) and second["strikes"][0] >= 12_000
    assert first["contract"] != second["contract"]
    # The long future is flat within each contract: carried across the roll it would have made 2,000 x 5.
    option_only = sum(c["premium"] for c in result.cycles)
    assert result.metrics.attribution["per_month"]["premium"] * len(result.cycles) <= option_only + 1e-6
    assert abs(result.performance["total_return"]) < 1.0


def test_a_short_history_says_its_annualised_figures_say_little(tmp_path, build):
    from opl.backtesting.run import SHORT_HISTORY

    result, _ = _run(tmp_path, build, np.full(len(DATES), 3.0))
    assert len(DATES) < SHORT_HISTORY
    assert any(note.startswith("only ") and "say little" in note for note in result.notes), result.notes
