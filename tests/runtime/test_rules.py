"""Rule packs: loading, discovery, validation errors, strike/tick helpers, contract codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from opl.runtime.market.rules import (
    BUILTIN_PACKS,
    PACKS_ENV,
    ContractCodeError,
    RulePack,
    RulePackError,
    available_packs,
    contract_month,
    load_pack,
    pack_for,
    parse_contract,
    resolve_year_digit,
)

CZCE_TEXT = (BUILTIN_PACKS / "czce_cj.toml").read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _no_user_packs(monkeypatch):
    # A developer's own OPL_PACKS_PATH must not change what these tests see.
    monkeypatch.delenv(PACKS_ENV, raising=False)


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ built-in packs

@pytest.mark.parametrize("name", ["czce_cj", "sse_50etf", "us_equity"])
def test_builtin_packs_load(name):
    pack = load_pack(name)
    assert isinstance(pack, RulePack)
    assert pack.name == name
    assert Path(pack.source).name == f"{name}.toml"


def test_available_packs_lists_builtins():
    assert {"czce_cj", "sse_50etf", "us_equity"} <= set(available_packs())


def test_czce_jujube_contract_facts():
    pack = load_pack("czce_cj")
    assert pack.exchange == "CZCE" and pack.currency == "CNY"
    assert pack.underlying.kind == "future"
    assert pack.underlying.contract_size == 5.0
    assert pack.underlying.tick[0].step == 5.0
    assert pack.underlying.delivery_months == (1, 3, 5, 7, 9, 12)
    assert pack.underlying.daily_limit == 0.10
    assert pack.option.style == "american"
    assert pack.option.settlement == "futures_position"
    assert pack.option.auto_exercise_itm is True
    assert pack.margin.formula == "czce_dce"
    assert pack.margin.futures_rate == 0.12
    assert pack.margin.broker_addon == 0.03  # a separate field, not folded into the 12%


def test_sse_and_us_contract_facts():
    sse, us = load_pack("sse_50etf"), load_pack("us_equity")
    assert sse.option.multiplier == 10000.0 and sse.option.style == "european"
    assert sse.option.tick[0].step == 0.0001
    assert (sse.margin.rate, sse.margin.min_rate, sse.margin.put_cap_at_strike) == (0.12, 0.07, True)
    assert us.option.multiplier == 100.0 and us.option.style == "american"
    assert (us.margin.rate, us.margin.min_rate, us.margin.put_cap_at_strike) == (0.20, 0.10, False)


def test_fee_schedule_actions():
    sse = load_pack("sse_50etf").fees.option
    # Seller opening is charged the settlement fee only (the handling fee is waived).
    assert sse.rate("open", short=True, include_broker=False) == 0.3
    assert sse.rate("open", include_broker=False) == 1.6
    assert sse.rate("open") == 1.6 + 2.0  # broker commission on top
    assert sse.rate("exercise") == 0.6    # no broker commission on exercise
    cj = load_pack("czce_cj").fees
    assert cj.futures is not None and cj.futures.rate("close_today", include_broker=False) == 3.0


# ------------------------------------------------------------------ pack_for

@pytest.mark.parametrize("exchange, symbol, expected", [
    ("CZCE", "CJ605", "czce_cj"),
    ("czce", "cj2605", "czce_cj"),
    ("ZCE", "CJ605C11000", "czce_cj"),
    ("CZCE", None, "czce_cj"),
    ("SSE", "510050", "sse_50etf"),
    ("CBOE", "AAPL", "us_equity"),
    ("US", "SPY", "us_equity"),
])
def test_pack_for(exchange, symbol, expected):
    assert pack_for(exchange, symbol).name == expected


def test_pack_for_unknown_product_is_a_clear_error():
    with pytest.raises(RulePackError, match="no rule pack covers AP605 on CZCE"):
        pack_for("CZCE", "AP605")
    with pytest.raises(RulePackError, match="no rule pack covers LME"):
        pack_for("LME")


# ------------------------------------------------------------------ user packs

def test_user_pack_found_through_env_path(tmp_path, monkeypatch):
    text = (CZCE_TEXT.replace('exchange = "CZCE"', 'exchange = "DCE"')
            .replace('exchange_aliases = ["ZCE", "ZCZC", "XZCE"]', 'exchange_aliases = []')
            .replace('symbols = ["CJ"]', 'symbols = ["M"]'))
    _write(tmp_path / "mine", "dce_m", text)
    monkeypatch.setenv(PACKS_ENV, str(tmp_path / "missing") + ":" + str(tmp_path / "mine"))
    assert "dce_m" in available_packs()
    assert pack_for("DCE", "m2605").name == "dce_m"
    assert load_pack("dce_m").exchange == "DCE"


def test_user_pack_shadows_builtin_of_same_name(tmp_path, monkeypatch):
    _write(tmp_path, "czce_cj", CZCE_TEXT.replace("futures_rate = 0.12", "futures_rate = 0.15"))
    monkeypatch.setenv(PACKS_ENV, str(tmp_path))
    assert load_pack("czce_cj").margin.futures_rate == 0.15


def test_explicit_path_and_paths_argument(tmp_path):
    path = _write(tmp_path, "local_cj", CZCE_TEXT)
    assert load_pack(path).name == "local_cj"
    assert load_pack(str(path)).name == "local_cj"
    assert load_pack("local_cj", paths=[tmp_path]).name == "local_cj"
    with pytest.raises(RulePackError, match="no rule pack named 'local_cj'"):
        load_pack("local_cj")


# ------------------------------------------------------------------ invalid packs

@pytest.mark.parametrize("old, new, field", [
    ("{ upto = 20000.0, step = 200.0 }", "{ upto = 20000.0, step = -200.0 }", "option.strike_grid[1].step"),
    ("multiplier = 5.0 ", "multipler = 5.0 ", "option.multipler"),
    ("futures_rate = 0.12", "futures_rate = 12", "margin.futures_rate"),
    ('style = "american"', 'style = "bermudan"', "option.style"),
    ("n = 3\nday = 15", "n = 0\nday = 15", "option.expiry[1].n"),
    ('formula = "czce_dce"', 'formula = "sse_etf"', "margin"),
    ("delivery_months = [1, 3, 5, 7, 9, 12]", "delivery_months = [1, 13]", "underlying.delivery_months"),
])
def test_bad_pack_names_file_and_field(tmp_path, old, new, field):
    assert old in CZCE_TEXT
    path = _write(tmp_path, "bad", CZCE_TEXT.replace(old, new, 1))
    with pytest.raises(RulePackError) as info:
        load_pack(path)
    err = info.value
    assert str(path.resolve()) in str(err)
    assert f"field `{field}`" in str(err)
    assert err.field and f"field `{err.field}`" in str(err)  # the first problem, for tools
    assert "Traceback" not in str(err)


def test_missing_section_is_named(tmp_path):
    text = CZCE_TEXT.split("[margin]")[0]  # drops margin and fees
    with pytest.raises(RulePackError, match=r"field `margin`: Field required"):
        load_pack(_write(tmp_path, "short", text))


def test_toml_syntax_error_names_file(tmp_path):
    path = _write(tmp_path, "broken", CZCE_TEXT.replace("tick = 5.0", "tick = = 5.0"))
    with pytest.raises(RulePackError, match=r"broken\.toml: not valid TOML"):
        load_pack(path)


def test_name_must_match_file(tmp_path):
    path = _write(tmp_path, "one", 'name = "two"\n' + CZCE_TEXT)
    with pytest.raises(RulePackError, match="field `name`"):
        load_pack(path)


def test_missing_file(tmp_path):
    with pytest.raises(RulePackError, match="not found"):
        load_pack(tmp_path / "nope.toml")


def test_bands_must_increase(tmp_path):
    text = CZCE_TEXT.replace("{ upto = 20000.0, step = 200.0 }", "{ upto = 5000.0, step = 200.0 }")
    with pytest.raises(RulePackError, match="`upto` bounds must increase"):
        load_pack(_write(tmp_path, "order", text))


def test_invalid_user_pack_on_path_fails_pack_for_loudly(tmp_path, monkeypatch):
    _write(tmp_path, "zz_bad", CZCE_TEXT.replace("contract_size = 5.0", "contract_size = -5.0"))
    monkeypatch.setenv(PACKS_ENV, str(tmp_path))
    with pytest.raises(RulePackError, match=r"(?s)zz_bad\.toml.*underlying\.contract_size"):
        pack_for("CZCE", "CJ605")


# ------------------------------------------------------------------ strikes and ticks

def test_strike_grid_spacing_by_band():
    cj = load_pack("czce_cj")
    # Bands (UNVERIFIED for CJ, see the pack): <=10000: 100, <=20000: 200, above: 400.
    np.testing.assert_array_equal(cj.strike_grid([8000.0, 10000.0, 10000.5, 18000.0, 25000.0]),
                                  [100.0, 100.0, 200.0, 200.0, 400.0])
    sse = load_pack("sse_50etf")
    assert sse.strike_grid(2.8) == 0.05 and sse.strike_grid(3.0) == 0.05
    assert sse.strike_grid(3.01) == 0.1 and sse.strike_grid(7.0) == 0.25
    assert isinstance(sse.strike_grid(2.8), float)


def test_snap_strike_near_band_edge():
    cj = load_pack("czce_cj")
    # 10099 lies in the 200 band, whose grid is 10000, 10200, ...: nearest is 10000.
    np.testing.assert_array_equal(cj.snap_strike([10099.0, 10150.0, 9951.0, 9949.0]),
                                  [10000.0, 10200.0, 10000.0, 9900.0])
    assert cj.snap_strike(10050.0, "up") == 10200.0
    assert cj.snap_strike(10050.0, "down") == 10000.0
    assert cj.snap_strike(10200.0, "down") == 10200.0  # already listed: unchanged
    assert load_pack("sse_50etf").snap_strike(2.45) == 2.45  # 2.45 / 0.05 is not exact in binary


def test_nearest_strikes_walk_the_band_steps():
    cj = load_pack("czce_cj")
    # F = 10030: ATM 10000; below in steps of 100, above in steps of 200.
    np.testing.assert_array_equal(cj.nearest_strikes(10030.0, n=3),
                                  [9700.0, 9800.0, 9900.0, 10000.0, 10200.0, 10400.0, 10600.0])
    sse = load_pack("sse_50etf")
    np.testing.assert_allclose(sse.nearest_strikes(2.98, n=2), [2.9, 2.95, 3.0, 3.1, 3.2])
    assert list(cj.nearest_strikes(10030.0, n=0)) == [10000.0]


def test_round_to_tick():
    cj = load_pack("czce_cj")
    np.testing.assert_array_equal(cj.round_to_tick([150.4, 150.6]), [150.0, 151.0])
    assert cj.round_to_tick(10002.0, instrument="underlying") == 10000.0
    assert cj.round_to_tick(10002.5, instrument="underlying") == 10005.0  # half up
    assert cj.round_to_tick(10001.0, instrument="underlying", mode="up") == 10005.0
    us = load_pack("us_equity")
    # $0.01 below $3, $0.05 from there on.
    np.testing.assert_allclose(us.round_to_tick([2.994, 3.02, 3.03]), [2.99, 3.00, 3.05])
    assert load_pack("sse_50etf").round_to_tick(0.12346) == 0.1235
    with pytest.raises(ValueError, match="mode"):
        cj.round_to_tick(1.0, mode="sideways")


def test_contract_value():
    assert load_pack("czce_cj").contract_value(10000.0, 2) == 100000.0  # 10000 CNY/t x 5 t x 2


# ------------------------------------------------------------------ contract codes

def test_parse_czce_three_digit_code():
    code = parse_contract("CJ605", reference=dt.date(2026, 1, 5))
    assert (code.root, code.year, code.month) == ("CJ", 2026, 5)
    assert code.contract_month == dt.date(2026, 5, 1)
    assert code.option_type is None and code.strike is None


@pytest.mark.parametrize("text, root, year, month, kind, strike", [
    ("CJ605C11000", "CJ", 2026, 5, "call", 11000.0),
    ("CJ605P11400", "CJ", 2026, 5, "put", 11400.0),
    ("cj2605", "CJ", 2026, 5, None, None),
    ("m2605-C-3000", "M", 2026, 5, "call", 3000.0),
    ("SR601", "SR", 2026, 1, None, None),
])
def test_parse_codes(text, root, year, month, kind, strike):
    code = parse_contract(text, reference=dt.date(2026, 1, 5))
    assert (code.root, code.year, code.month, code.option_type, code.strike) == (root, year, month, kind, strike)


def test_year_digit_relative_to_reference():
    # CJ001 read in May 2019 (first CJ listing) is Jan 2020; read in Aug 2026 it is Jan 2030,
    # because a contract more than a year past its month is taken as the next decade's.
    assert resolve_year_digit(0, 1, dt.date(2019, 5, 6)) == 2020
    assert resolve_year_digit(0, 1, dt.date(2026, 8, 21)) == 2030
    assert resolve_year_digit(5, 9, dt.date(2026, 8, 21)) == 2025   # CJ509: expired last year
    assert resolve_year_digit(6, 5, dt.date(2026, 8, 21)) == 2026
    assert resolve_year_digit(9, 12, dt.date(2019, 5, 6)) == 2019


@pytest.mark.parametrize("bad", ["CJ", "CJ6055", "CJ613", "605", "CJ605X100", ""])
def test_bad_codes(bad):
    with pytest.raises(ContractCodeError):
        parse_contract(bad, reference=dt.date(2026, 1, 5))


def test_contract_month_forms():
    ref = dt.date(2026, 1, 5)
    expected = dt.date(2026, 5, 1)
    for value in ("2026-05", (2026, 5), dt.date(2026, 5, 17), dt.datetime(2026, 5, 17, 9), "CJ605"):
        assert contract_month(value, reference=ref) == expected


def test_one_digit_year_needs_the_quote_date():
    # CJ605 means May 2026 when quoted in 2026 but May 2036 when quoted in 2036: without the
    # date the code was quoted on, the decade would silently follow the clock (issue 15 item 5).
    with pytest.raises(ContractCodeError, match="one-digit year"):
        parse_contract("CJ605")
    with pytest.raises(ContractCodeError, match="one-digit year"):
        contract_month("CJ605")
    assert parse_contract("CJ2605").contract_month == dt.date(2026, 5, 1)  # four digits need no date
    assert parse_contract("CJ605", reference=dt.date(2036, 1, 5)).year == 2036
