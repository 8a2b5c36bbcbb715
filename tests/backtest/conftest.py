"""Builders for the backtest tests: small data directories whose answers are known by hand."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from opl.runtime.pricing.black import price as bsm

ETF_HEAD = """opl-lang 1.0
underlying ETF
exchange SSE
time 2024-01-02
price 3.0
iv 0.2
rate 0.02
capital 100000
"""


def write_futures(directory, dates, prices, *, symbols=None) -> None:
    prices = np.asarray(prices, dtype=float)
    frame = pd.DataFrame({"trading_date": pd.DatetimeIndex(dates).strftime("%Y-%m-%d")})
    if symbols is not None:
        frame["symbol"] = symbols
    for col in ("open", "high", "low", "close", "settlement"):
        frame[col] = prices
    frame.to_csv(directory / "futures.csv", index=False)


def write_etf_chain(directory, dates, prices, expiries, *, vol=0.2, rate=0.02,
                    strikes=(2.8, 2.9, 3.0, 3.1, 3.2, 3.3)) -> pd.DataFrame:
    """Front-month European chain on the spot (carry = rate), settlements floored at the 0.0001 tick."""
    rows = []
    expiries = pd.DatetimeIndex(expiries)
    for day, s in zip(pd.DatetimeIndex(dates), prices):
        ahead = expiries[expiries >= day]
        if not len(ahead):
            continue
        expiry = ahead[0]
        t = (expiry - day).days / 365.0
        for k in strikes:
            for kind in ("C", "P"):
                value = float(bsm(is_call=kind == "C", underlying=s, strike=k, t=t, vol=vol, rate=rate, carry=rate))
                rows.append({"trading_date": day.strftime("%Y-%m-%d"),
                             "symbol": f"510050{kind}{expiry:%y%m}M{round(k * 1000):05d}",
                             "open": None, "high": None, "low": None, "close": None,
                             "settlement": max(value, 0.0001), "strike_price": k, "option_type": kind,
                             "expiry": expiry.strftime("%Y-%m-%d"), "contract_multiplier": 10000,
                             "underlying_symbol": "510050"})
    frame = pd.DataFrame(rows)
    frame.to_csv(directory / "options.csv", index=False)
    return frame


def etf_file(directory, strategy: str, triggers: str = "pnl_percent(<-1000%)"):
    path = directory / "strategy.opl"
    path.write_text(ETF_HEAD + f"S = {strategy}\nexit_mode first_hit\nexit_triggers [ {triggers} ]\n",
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def build():
    """The builders above (test modules cannot import conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(futures=write_futures, etf_chain=write_etf_chain, etf_file=etf_file)
