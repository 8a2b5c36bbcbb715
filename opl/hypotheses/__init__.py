"""Tests of the plan's assumptions against market data (``opl assumptions``).

* :func:`random_walk_tests` — is the futures price a random walk over 1–21 days?
* :func:`hit_rate` — how often is the spot team's direction view right?
* :func:`factor_tests` — do monthly supply/demand factors forecast next month?
* :func:`stress_test` — does the strategy meet its target under its stress scenarios (the simulator)?
* :func:`run_assumptions` — all of them on loaded data, with JSON, markdown and plots.

Each result has a ``verdict``, a plain-language ``plain`` sentence, an
``implication`` for the simulation model, ``summary()`` and ``to_dict()``.
"""

from opl.hypotheses.factors import FactorResult, factor_tests, monthly_returns
from opl.hypotheses.hit_rate import HitRateResult, claim_power, hit_rate, intervals, sample_size_for_claim
from opl.hypotheses.random_walk import HORIZONS, RandomWalkResult, RandomWalkTest, random_walk_tests
from opl.hypotheses.report import AssumptionReport, run_assumptions
from opl.hypotheses.stress import ScenarioVerdict, StressReport, stress_test

__all__ = [
    "FactorResult", "factor_tests", "monthly_returns",
    "HitRateResult", "claim_power", "hit_rate", "intervals", "sample_size_for_claim",
    "HORIZONS", "RandomWalkResult", "RandomWalkTest", "random_walk_tests",
    "AssumptionReport", "run_assumptions", "ScenarioVerdict", "StressReport", "stress_test",
]
