"""`delta_band(..., reopen=next_day|never)` (issue 14 item 5; ../shared/seeds/003_*, claim 3).

* next_day: the session after a band close a fresh position opens — the file's legs struck at
  that session's at-the-money strike, on the listed expiry nearest the tenor — and it is
  itself under the band; never: flat until the next planned cycle;
* the cycles tile the history without overlap and the ledger adds up;
* the headline is reported after the first fit beside the whole period, with a per-window
  table whose out-of-sample returns add up to the after-first-fit return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opl.backtesting.result import performance
from opl.backtesting.run import prepare, run_prepared
from opl.data.synth import synthesize


def _file(root, reopen: str):
    text = open("examples/etf50/straddle.opl", encoding="utf-8").read()
    start = text.index("delta_band(")
    band = f"delta_band(k=0.5, window=120d, objective=max_drawdown, step=45d{reopen})"
    path = root / f"straddle{len(reopen)}.opl"
    path.write_text(text[:start] + band + text[text.index(")", start) + 1:], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reopen")
    synthesize(seed=4, years=1, profile="etf50").write(root / "data")
    out = {}
    for name, arg in (("default", ""), ("next_day", ", reopen=next_day"), ("never", ", reopen=never")):
        p = prepare(_file(root, arg), data=root / "data")
        out[name] = (p, run_prepared(p))
    return out


def test_default_is_the_seeds_next_day(runs):
    _, default = runs["default"]
    _, explicit = runs["next_day"]
    assert default.delta_band["spec"]["reopen"] == "next_day"
    assert default.cycles == explicit.cycles
    # The output says the fit follows the traded rule: k is scored with the re-opens it causes.
    (note,) = [n for n in default.notes if n.startswith("reopen=next_day")]
    assert "k is chosen in-sample under the same rule, each k scored with the re-opens it causes" in note


def test_next_day_reopens_at_the_money_on_the_tenors_expiry(runs):
    p, result = runs["next_day"]
    sessions = pd.DatetimeIndex(p.market.futures["trading_date"])
    settle = p.market.futures["settlement"].to_numpy(dtype=float)
    options = p.market.options
    cycles = result.cycles
    reopened = [c for c in cycles if c["reopened"]]
    assert reopened and any(c["exit"] == "delta_band" for c in reopened)  # a re-opened position is banded too
    for before, after in zip(cycles, cycles[1:]):
        if not after["reopened"]:
            continue
        assert before["exit"] == "delta_band" and before["ends"] == "reopen"
        close = sessions.get_loc(pd.Timestamp(before["close"]))
        opened = sessions.get_loc(pd.Timestamp(after["open"]))
        assert opened == close + 1  # the next session
        day = sessions[opened]
        listed = options[pd.DatetimeIndex(options["trading_date"]) == day]
        listed = listed[listed["contract_multiplier"] == 10_000]  # dividend-adjusted contracts are never opened
        expiries = sorted({pd.Timestamp(e) for e in listed["expiry"] if (pd.Timestamp(e) - day).days >= 1})
        nearest = min(expiries, key=lambda e: (abs((e - day).days - 30), e))
        assert pd.Timestamp(after["expiry"]) == nearest
        strikes = listed.loc[pd.DatetimeIndex(listed["expiry"]) == nearest, "strike_price"].unique()
        atm = strikes[np.argmin(np.abs(strikes - settle[opened]))]
        assert after["strikes"] == [atm, atm]
    # Every band close before a cycle's last session is followed by a re-open.
    for before, after in zip(cycles, cycles[1:]):
        if before["exit"] == "delta_band" and before["close"] != before["expiry"]:
            closed_at = sessions.get_loc(pd.Timestamp(before["close"]))
            if closed_at + 1 < sessions.get_loc(pd.Timestamp(before["expiry"])):
                assert after["reopened"], (before, after)
    assert any(f"{len(reopened)} position(s) re-opened" in n for n in result.notes)


def test_never_stays_flat_until_the_next_planned_cycle(runs):
    p, never = runs["never"]
    _, nxt = runs["next_day"]
    assert not any(c["reopened"] for c in never.cycles)
    assert [c["open"] for c in never.cycles] == [str(r["open"].date()) for r in p.records]
    assert len(nxt.cycles) > len(never.cycles)
    assert never.performance["exits"]["delta_band"] > 0


@pytest.mark.parametrize("name", ["next_day", "never"])
def test_cycles_tile_the_history_and_the_ledger_adds_up(runs, name):
    _, result = runs[name]
    cycles = result.cycles
    for a, b in zip(cycles, cycles[1:]):
        assert pd.Timestamp(b["open"]) >= pd.Timestamp(a["close"])
    planned = [c["planned"] for c in cycles]
    assert planned == sorted(planned)  # the fits' cycle numbers (planned cycles) stay traceable
    assert all(b["planned"] == a["planned"] for a, b in zip(cycles, cycles[1:]) if b["reopened"])
    total = sum(c["pnl"] for c in cycles)
    assert total == pytest.approx(result.performance["total_return"] / 100 * result.run["capital"], abs=1e-6)


def test_after_the_first_fit_and_the_windows(runs):
    _, result = runs["next_day"]
    band = result.delta_band
    first = pd.Timestamp(band["first_fit"])
    i = int(result.dates.searchsorted(first)) - 1
    by_hand = performance(result.equity[i:], result.dates[i:], result.run["capital"])
    assert band["after_first_fit"]["strategy"] == pytest.approx(by_hand)
    # The windows tile the history from the first fit: their returns add up to it, with and without the band.
    windows = band["windows"]
    assert len(windows) == len(band["fits"]) and windows[-1]["until"] is None
    assert sum(w["return"] for w in windows) == pytest.approx(band["after_first_fit"]["strategy"]["total_return"])
    assert sum(w["baseline_return"] for w in windows) == pytest.approx(
        band["after_first_fit"]["baseline"]["total_return"])
    assert sum(w["band_closes"] for w in windows) == sum(
        c["exit"] == "delta_band" for c in result.cycles if pd.Timestamp(c["open"]) >= first)
    summary = result.summary()
    assert f"after the first fit ({band['first_fit']})" in summary


def test_a_cycle_cut_by_head_is_the_cut_cycle_marked_anew(runs):
    """The in-sample fit cuts marked cycles (`head`) instead of marking each cut again: the same marks."""
    from dataclasses import replace

    from opl.backtesting.reopen import Reopener, head

    p, _ = runs["next_day"]
    reopener = Reopener(p, size=1.0, fee_factor=1.0)
    checked = 0
    for cycle, month in zip(p.cycles, p.months):
        if cycle.end - cycle.start < 6:
            continue
        for steps in (1, 4):
            (_, marked, record), _ = reopener.mark(replace(cycle, end=cycle.start + steps, expires=False,
                                                           ends="reopen"), False)
            cut = head(month, steps)
            assert cut.n == marked.n == steps and not cut.expires and not marked.expires
            for name in ("price", "t", "days_left", "span", "atm", "support", "resistance", "signal"):
                np.testing.assert_array_equal(getattr(cut, name), getattr(marked, name), err_msg=name)
            assert cut.step_days == marked.step_days
            for name in ("value", "delta", "exercise", "strikes"):
                for a, b in zip(getattr(cut, name), getattr(marked, name)):
                    np.testing.assert_array_equal(a, b, err_msg=name)
            checked += 1
        if checked >= 6:
            break
    assert checked >= 6
