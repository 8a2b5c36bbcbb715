"""opl: check, compile, simulate and improve option strategies written in OPL-Lang.

The facade (sqlglot style) — each verb runs one stage and takes a path or the file's text plus
keyword settings (`opl.api`, where they are documented): ``check``, ``compile``, ``simulate``,
``backtest``, ``calibrate``, ``assumptions``, ``loop``. The stages themselves are the noun
packages (`opl.lang`, `opl.compiler`, `opl.simulation`, `opl.backtesting`, `opl.calibration`,
`opl.hypotheses`, `opl.closedloop`), so importing one never replaces a verb.

>>> import opl
>>> result = opl.check("opl-lang 1.0\\nS = long Option(Call, 480, 14d)\\n")
>>> [d.code for d in result.report.diagnostics]
['W404']

``opl.parse`` gives the syntax tree, ``opl.check`` the diagnostics with the lowered
document and the normalised legs (its findings are its result), ``opl.compile`` the priced
legs; every later verb raises `OplError` (located diagnostics) when it cannot run.
Importing ``opl`` imports nothing numeric: each verb imports its stage when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opl.errors import OplError

if TYPE_CHECKING:  # pragma: no cover
    from opl.backtesting.result import BacktestResult
    from opl.calibration.result import CalibrationResult
    from opl.closedloop.run import LoopOutcome
    from opl.compiler.compiled import CompiledStrategy
    from opl.hypotheses.report import AssumptionReport
    from opl.lang.checks import CheckOptions
    from opl.lang.frontend import CheckResult
    from opl.lang.parser import ParseResult
    from opl.runtime.results.metrics import SimulationResult

__all__ = ["parse", "check", "check_file", "compile", "simulate", "backtest", "calibrate", "assumptions", "loop",
           "OplError"]


def parse(text: str, path: str = "<string>") -> "ParseResult":
    """Parse OPL-Lang text into its syntax tree (with syntax diagnostics)."""
    from opl.lang.parser import parse as _parse

    return _parse(text, path)


def check(source, path: str | None = None, options: "CheckOptions | None" = None, **settings) -> "CheckResult":
    """Run the whole front end on a file's text (or a path): parse, lower, normalise and check (`opl.api.check`).

    ``options``: an `opl.lang.checks.CheckOptions` (guards switched off; ``files`` confines the files the text
    names to some folders, E015); or ``no_guard=`` and ``confine=``.
    """
    from opl.api import check as _check

    return _check(source, path, options, **settings)


def check_file(path, options=None) -> "CheckResult":
    """Read and check a file (.opl, or the JSON leg form .json); ``options`` as for `check`."""
    from opl.lang.frontend import check_path

    return check_path(path, options)


def compile(source, **settings) -> "CompiledStrategy":
    """Check and compile a strategy (a path or its text): priced legs and Greeks (`opl.api.compile`)."""
    from opl.api import compile as _compile

    return _compile(source, **settings)


def simulate(source, **settings) -> "SimulationResult":
    """Monte Carlo replay of a strategy with its experiment block (`opl.api.simulate`: ``paths=``, ``seed=``,
    ``data=``, ``set={...}``, ``market={...}``)."""
    from opl.api import simulate as _simulate

    return _simulate(source, **settings)


def backtest(source, **settings) -> "BacktestResult":
    """Replay a strategy over a market history (`opl.api.backtest`: ``data=`` required, ``set=``, ``repair=``)."""
    from opl.api import backtest as _backtest

    return _backtest(source, **settings)


def calibrate(data=None, **settings) -> "CalibrationResult":
    """Fit the price model and the implied-volatility rule to data (`opl.api.calibrate`)."""
    from opl.api import calibrate as _calibrate

    return _calibrate(data, **settings)


def assumptions(data=None, **settings) -> "AssumptionReport":
    """Test the plan's assumptions against data (`opl.api.assumptions`; ``strategy=`` adds its stress test)."""
    from opl.api import assumptions as _assumptions

    return _assumptions(data, **settings)


def loop(source, **settings) -> "LoopOutcome":
    """Improve a strategy in a closed loop (`opl.api.loop`; ``runs=`` required: the run folder goes there)."""
    from opl.api import loop as _loop

    return _loop(source, **settings)
