"""The estimated cost of a simulation (issue 12, item 5): `opl check` refuses an experiment whose
paths × months × days × steps × variants exceed `opl.lang.limits.MAX_PATH_STEPS` (E207)."""

from __future__ import annotations

from pathlib import Path

import pytest

import opl
from opl.lang import limits
from opl.lang.experiment.cost import experiment_cost

ROOT = Path(__file__).resolve().parents[2]

FILE = """opl-lang 1.0
S = long Option(Call, 480, 14d)
exit_triggers [ expiry_passed() ]
experiment {{
  paths {paths}
  steps_per_day {steps}
  sizes [1, 2, 5]
  stress [ vol_up(+50%), gap(-8%) ]
}}
"""


def test_the_estimate_multiplies_every_factor():
    exp = opl.check(FILE.format(paths=1000, steps=4)).document.experiment
    cost = experiment_cost(exp)
    assert (cost.paths, cost.months, cost.days_per_month, cost.steps_per_day, cost.variants) == (1000, 12, 21, 4, 9)
    assert cost.path_steps == 1000 * 12 * 21 * 4 * 9
    assert experiment_cost(exp, paths=10).path_steps == cost.path_steps // 100
    assert experiment_cost(None).path_steps == 2000 * 12 * 21


@pytest.mark.parametrize("paths, steps, refused", [(100_000, 96, True), (50, 96, False), (10_000, 1, False)])
def test_the_checker_refuses_an_experiment_above_the_bound(paths, steps, refused):
    text = FILE.format(paths=paths, steps=steps)
    errors = [d for d in opl.check(text).report.diagnostics if d.severity == "error"]
    if refused:
        assert [(d.code, d.span.line) for d in errors] == [("E207", 4)]
        assert f"above the bound of {limits.MAX_PATH_STEPS:,}" in errors[0].message
    else:
        assert errors == []


def test_no_shipped_file_is_refused():
    for path in [*ROOT.glob("strategies/*.opl"), *ROOT.glob("examples/*/*.opl")]:
        assert not [d for d in opl.check_file(path).report.diagnostics if d.code == "E207" and
                    "path-steps" in d.message], path
