"""One rule for levels a file leaves to the signals: `opl check` notes I401, `opl simulate` runs.

Before, the checker said support/resistance "come from the signals at simulation" while
`opl simulate --market price=…,iv=…` stopped with E306 "needs `support`".
"""

from __future__ import annotations

from pathlib import Path

import opl
from opl.simulation.run import simulate_file

ROOT = Path(__file__).resolve().parents[2]
SR = ROOT / "strategies" / "jujube_sr_strangle.opl"


def test_levels_left_to_the_signals_check_with_i401_and_simulate():
    codes = {d.code for d in opl.check_file(SR).report.diagnostics}
    assert codes == {"I401"}
    result = simulate_file(SR, paths=20, seed=3, market={"price": 10400.0, "iv": 0.25, "time": __import__("datetime").date(2026, 1, 5)},
                           overrides=["experiment.horizon=1"])
    notes = " ".join(result.to_dict()["notes"])
    assert "support 9,880" in notes and "resistance 10,920" in notes and "I401" in notes
