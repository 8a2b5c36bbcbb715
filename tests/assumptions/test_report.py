"""The assembled report on synthetic data: truth recovered, JSON contract keys, markdown and PNGs."""

from __future__ import annotations

import json

import pytest

from opl.hypotheses.report import run_assumptions
from opl.data.loaders import load
from opl.data.synth import synthesize


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    data = synthesize(seed=2, years=6, options=False)
    paths = data.write(out)
    futures = load(paths["futures"], kind="futures", limit=0.10, tick=5.0)
    signals = load(paths["signals"], kind="signals")
    factors = load(paths["factors"], kind="factors")
    return data, run_assumptions(futures=futures, signals=signals, factors=factors), out


def test_truth_hit_rate_is_recovered_within_its_interval(report):
    data, rep, _ = report
    truth = data.truth["hit_rate"]
    hr = rep.hit_rate
    # The report scores exactly the views the generator planted, so it counts the same hits...
    assert (hr.hits, hr.n) == (truth["hits"], truth["n_resolved"])
    # ...and the true rate lies inside both intervals.
    assert hr.wilson[0] <= truth["p_true"] <= hr.wilson[1]
    assert hr.clopper_pearson[0] <= truth["p_true"] <= hr.clopper_pearson[1]


def test_synthetic_random_walk_is_consistent_and_rolls_come_from_symbols(report):
    data, rep, _ = report
    assert rep.random_walk.verdict == "consistent"
    assert rep.data["rolls"]["method"] == "symbol"
    assert rep.data["rolls"]["count"] == len(data.truth["rolls"]) == rep.random_walk.n_excluded


def test_json_has_the_contract_keys_and_is_strict(report, tmp_path):
    _, rep, _ = report
    path = rep.write_json(tmp_path / "out.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    json.dumps(data, allow_nan=False)
    assert data["random_walk"]["verdict"] in ("consistent", "rejected")
    for key in ("estimate", "wilson", "clopper_pearson", "n"):
        assert key in data["hit_rate"]
    assert len(data["hit_rate"]["wilson"]) == 2
    assert data["factors"]["verdict"] in ("supported", "in-sample only", "not supported")
    assert data["stress"]["status"] == "not run"


def test_markdown_and_plots(report, tmp_path):
    _, rep, _ = report
    md = rep.write_markdown(tmp_path)
    text = md.read_text(encoding="utf-8")
    for name in ("acf.png", "variance_ratio.png", "hit_rate.png", "factors_oos.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
        assert f"]({name})" in text
    assert "## 1. Short-term random walk" in text and "What it means for the model" in text
    assert "| variance_ratio | q=2 |" in text and "| portmanteau | h=1 |" in text
    assert rep.summary().count("Implication:") == 3
