"""Dividend-adjusted SSE contracts inferred from a chain without contract codes (opl.data.adjustments),
and a straddle held across the ex-date marked on its own contract (examples/etf50)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.data.importer import import_files
from opl.data.loaders import DataError
from opl.data.synth import synthesize
from opl.runtime.market.calendars import is_trading_day
from opl.runtime.market.rules import load_pack

KEY = ["trading_date", "option_type", "strike_price", "expiry", "settlement", "contract_multiplier"]
def _straddle() -> str:
    """The etf50 example without its delta band: held to the guard, so it spans the ex-date."""
    text = open("examples/etf50/straddle.opl", encoding="utf-8").read()
    start = text.index("  delta_band(")
    return text[:start] + text[text.index("\n", start) + 1:]


@pytest.fixture(scope="module")
def etf():
    """A year of the etf50 profile on the SSE pack's calendar, one ex-dividend date (2019-12-02)."""
    pack = load_pack("sse_50etf")
    data = synthesize(seed=1, years=1, profile="etf50", start="2019-05-06")
    on_calendar = lambda f: f[[is_trading_day(pack, d.date()) for d in f["trading_date"]]].reset_index(drop=True)
    return data, on_calendar(data.options), on_calendar(data.futures)


def _raw(tmp, options: pd.DataFrame, futures: pd.DataFrame, drop: list[str]):
    tmp.mkdir(parents=True, exist_ok=True)
    options.drop(columns=drop).to_csv(tmp / "chain.csv", index=False, date_format="%Y-%m-%d")
    futures.drop(columns=["symbol"]).to_csv(tmp / "etf.csv", index=False, date_format="%Y-%m-%d")
    return tmp


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[KEY + ["symbol"]].copy()
    out["trading_date"], out["expiry"] = pd.to_datetime(out["trading_date"]), pd.to_datetime(out["expiry"])
    out["contract_multiplier"] = out["contract_multiplier"].astype(float)
    return out.sort_values(KEY + ["symbol"]).reset_index(drop=True)


@pytest.mark.parametrize("drop", [["symbol", "underlying_symbol", "contract_multiplier"],
                                  ["symbol", "underlying_symbol"]], ids=["no multipliers", "multipliers"])
def test_adjusted_contracts_are_inferred_and_linked_without_codes(etf, tmp_path, drop):
    data, options, futures = etf
    (div,) = data.truth["dividends"]
    result = import_files([_raw(tmp_path / "raw", options, futures, drop)], tmp_path / "out", pack="sse_50etf")
    imported = pd.read_csv(tmp_path / "out" / "options.csv", dtype={"symbol": str})
    # Every row back under the contract code (and multiplier) the generator wrote: the adjusted contracts'
    # rows before and after the ex-date share one code, the new standard ones at the old strikes another.
    pd.testing.assert_frame_equal(_rows(imported), _rows(options), check_exact=False, rtol=1e-12)
    assert (imported["contract_multiplier"] == div["multiplier"]).sum() > 0
    (line,) = [d for f in result.files for d in f.derivations if "dividend-adjusted" in d]
    assert f"ex-dividend adjustment on {div['ex_date']}" in line
    assert f"multiplier 10,000 → {div['multiplier']:,.0f}" in line
    assert line in result.log.read_text(encoding="utf-8")


def test_naive_codes_would_follow_the_strike(etf, tmp_path):
    """Without the inference a derived code names the strike: the old contract and the new standard one at
    its strike would be one series — what the link prevents (a check that the fixture exercises it)."""
    _, options, _ = etf
    adjusted = options[options["symbol"].str[11] == "A"]
    before = adjusted[adjusted["contract_multiplier"] == 10_000]
    standard_after = options[(options["symbol"].str[11] == "M") & (options["expiry"].isin(adjusted["expiry"]))
                             & (options["trading_date"] > adjusted.loc[adjusted["contract_multiplier"] > 10_000,
                                                                       "trading_date"].min())]
    assert len(set(before["strike_price"]) & set(standard_after["strike_price"])) > 3


def _chain(strikes_before, strikes_after, ex_day=3, days=5):
    """A chain of one expiry without codes; from session ``ex_day`` on, ``strikes_after`` are listed too."""
    rows = []
    for j, day in enumerate(pd.bdate_range("2024-06-03", periods=days)):
        listed = list(strikes_before) + (list(strikes_after) if j >= ex_day else [])
        for k in listed:
            for kind in ("C", "P"):
                rows.append({"trading_date": day.date().isoformat(), "option_type": kind, "strike_price": k,
                             "expiry": "2024-06-26", "close": 0.05})
    return pd.DataFrame(rows)


def test_an_ambiguous_factor_is_a_located_error(tmp_path):
    # One adjusted strike between two listed ones: 2.40 × 0.9800 and 2.45 × 0.9600 both give 2.352.
    _chain([2.40, 2.45], [2.352]).to_csv(tmp_path / "chain.csv", index=False)
    with pytest.raises(DataError) as caught:
        import_files([tmp_path / "chain.csv"], tmp_path / "out", pack="sse_50etf", parity=False)
    problem = caught.value.problems[0]
    assert problem.column == "strike_price" and problem.row == 2 + 3 * 4 + 4  # the first 2.352 row
    assert "2 different factors explain the strikes equally well" in problem.message


def test_a_chain_on_the_grid_is_left_alone(tmp_path):
    _chain([2.40, 2.45], [2.50]).to_csv(tmp_path / "chain.csv", index=False)
    result = import_files([tmp_path / "chain.csv"], tmp_path / "out", pack="sse_50etf", parity=False)
    assert not [d for f in result.files for d in f.derivations if "dividend-adjusted" in d]
    symbols = pd.read_csv(tmp_path / "out" / "options.csv", dtype={"symbol": str})["symbol"]
    assert symbols.str.match(r"^510050[CP]2406M\d{5}$").all()


def _backtest(strategy, data) -> dict:
    out = data.parent / f"{data.name}.json"
    result = CliRunner().invoke(main, ["backtest", str(strategy), "--data", str(data), "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))


def test_a_straddle_held_across_the_ex_date_is_marked_on_its_contract(etf, tmp_path):
    data, options, futures = etf
    (div,) = data.truth["dividends"]
    ratio = div["multiplier"] / 10_000
    strategy = tmp_path / "straddle.opl"
    strategy.write_text(_straddle(), encoding="utf-8")
    # The code-less file (as a vendor delivers it), imported by --data: the straddle opened before the
    # ex-date is marked on its own contracts to the end, never on the new standard ones at its strike.
    raw = _raw(tmp_path / "raw", options, futures, ["symbol", "underlying_symbol", "contract_multiplier"])
    run = _backtest(strategy, raw)
    ex = pd.Timestamp(div["ex_date"])
    (held,) = [c for c in run["cycles"] if pd.Timestamp(c["open"]) < ex <= pd.Timestamp(c["close"])]
    assert held["dividend_adjustment"] == pytest.approx(ratio, abs=1e-12)
    assert held["marks_from_chain"] == held["marks"]
    assert any("across an ex-dividend adjustment" in n for n in run["notes"])
    assert all(c["dividend_adjustment"] == 1.0 for c in run["cycles"] if c is not held)
    # The contracts it held: at its last session they trade at the adjusted strike and multiplier.
    (k,) = set(held["strikes"])
    code = f"A{int(round(k * 1000)):05d}"
    last = options[(options["trading_date"] == pd.Timestamp(held["close"])) & options["symbol"].str.endswith(code)]
    assert len(last) == 2 and set(last["contract_multiplier"]) == {div["multiplier"]}
    assert set(np.round(last["strike_price"], 3)) == {round(k * div["strike_factor"], 3)}
