"""``opl data synth``: seeded, realistic, and accepted by the loaders it was written for."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opl.data.loaders import load
from opl.data.synth import FILES, synthesize


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    data = synthesize(seed=5, years=2)
    return data, data.write(out)


def test_same_seed_same_data_other_seed_other_data():
    a = synthesize(seed=3, years=1, options=False)
    b = synthesize(seed=3, years=1, options=False)
    c = synthesize(seed=4, years=1, options=False)
    pd.testing.assert_frame_equal(a.futures, b.futures)
    pd.testing.assert_frame_equal(a.signals, b.signals)
    assert a.truth == b.truth
    assert not a.futures["close"].equals(c.futures["close"])


def test_every_file_passes_its_loader(written):
    data, paths = written
    assert set(paths) == {*FILES, "truth"}
    futures = load(paths["futures"], kind="futures", limit=0.10, tick=5.0)
    options = load(paths["options"], kind="options")
    signals = load(paths["signals"], kind="signals")
    factors = load(paths["factors"], kind="factors")
    assert len(futures.frame) == len(data.futures) and not futures.repairs
    assert len(options.frame) == len(data.options)
    assert signals.frame["direction"].isin(["up", "down", "flat"]).all()
    assert list(factors.frame.columns) == ["month", *data.truth["params"]["factor_betas"]]


def test_futures_look_like_jujube(written):
    data, _ = written
    f = data.futures
    assert 5_000 < f["close"].median() < 16_000
    for col in ("open", "high", "low", "close", "settlement", "prev_settlement"):
        assert (f[col] % 5 == 0).all(), col
    within = f["symbol"].eq(f["symbol"].shift())
    assert (f["prev_settlement"].iloc[1:][within.iloc[1:]].to_numpy()
            == f["settlement"].shift().iloc[1:][within.iloc[1:]].to_numpy()).all()
    returns = np.log(f["close"]).diff()[within]
    assert 0.10 < returns.std() * np.sqrt(252) < 0.50


def test_rolls_every_one_to_three_months_with_big_level_jumps(written):
    data, _ = written
    rolls = data.truth["rolls"]
    gaps = np.diff(pd.to_datetime([r["trading_date"] for r in rolls])).astype("timedelta64[D]").astype(int)
    assert gaps.min() >= 20 and gaps.max() <= 100
    assert min(abs(r["jump"]) for r in rolls) > np.log(1.10)


def test_option_chain_grid_and_prices(written):
    data, _ = written
    o = data.options
    assert (o["strike_price"] % 100 == 0).all()
    assert set(o["option_type"]) == {"C", "P"}
    assert (o["contract_multiplier"] == 5).all()
    assert (o["expiry"] >= o["trading_date"]).all()
    assert (o["settlement"] >= 1).all()
    # Put-call parity on Black-76 prices holds to the option tick and the discount.
    day = o[o["trading_date"] == o["trading_date"].iloc[0]]
    calls = day[day["option_type"] == "C"].set_index("strike_price")["settlement"]
    puts = day[day["option_type"] == "P"].set_index("strike_price")["settlement"]
    fut = data.futures.set_index("trading_date").loc[day["trading_date"].iloc[0], "settlement"]
    parity = (calls - puts) - (fut - calls.index.to_numpy())
    assert np.abs(parity).max() < 0.01 * fut


def test_truth_records_parameters_and_the_hit_definition(written):
    data, paths = written
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    assert truth["params"]["seed"] == 5 and truth["params"]["years"] == 2
    assert truth["hit_rate"]["p_true"] == data.truth["params"]["hit_rate"]
    assert truth["hit_rate"]["n_signals"] == len(data.signals)
    assert {"betas", "rho", "relation"} <= set(truth["factors"])
    assert "garch_omega" in truth["generator"]
