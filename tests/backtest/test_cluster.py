"""`opl backtest --scheduler`: the history's replays run as tasks of a real Dask cluster (tests/conftest.py)
and the JSON is the in-process one, byte for byte."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from opl.cli import main
from opl.data.synth import synthesize

JUJUBE = "examples/jujube/strangle.opl"


@pytest.fixture(scope="module")
def jujube_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("jujube")
    synthesize(seed=3, years=1).write(out)
    return out


def test_the_scheduler_gives_the_in_process_json(dask_cluster, jujube_dir):
    args = ["backtest", JUJUBE, "--data", str(jujube_dir), "--json", "-", "--quiet"]
    here = CliRunner().invoke(main, args, env={"OPL_SCHEDULER": ""})
    there = CliRunner().invoke(main, [*args, "--scheduler", dask_cluster.scheduler_address])
    assert here.exit_code == 0, here.output
    assert there.exit_code == 0, there.output
    assert there.stdout == here.stdout
