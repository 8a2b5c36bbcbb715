"""`opl mcp`: OPL-Lang for agents — a Model Context Protocol server over stdio (the official ``mcp`` SDK).

Tools (each takes the file's **text**, never a path to read; outputs are structured, their JSON Schemas
published with the tool list):

``check``     every diagnostic, located (line, column, code, message, help), as `opl check --format json`;
``explain``   the long explanation of a diagnostic code, as `opl explain`;
``compile``   the compiled strategy (legs, strikes, expiries, prices, Greeks), as `opl compile --format json`;
``payoff``    the P&L profile at the first expiry (breakevens, extremes) on a price grid, as `opl payoff`;
``simulate``  the Monte Carlo metrics (by size, scenarios, recommended size, notes): `opl simulate --json`
              (its schema, `opl schema simulate`, is the tool's output schema),
              with the path count capped (`ServerLimits.max_paths`) and the run stopped at
              `ServerLimits.max_seconds` (`opl.runtime.engine.deadline`): an agent cannot start an hour-long job.

Resource: ``opl://reference`` — the language reference (``grammar/README.md``).

**Files.** A file's text may name one file, ``calibration file("…")``. It is confined exactly as a candidate
of `opl loop` is (E015, `opl.lang.fileaccess`): a relative path to a regular file inside the root given at start
(``opl mcp --root DIR``), no absolute path, no ``..``, no link leading out, no device, under the size cap;
without ``--root`` no file may be named at all. Nothing else is read and nothing is written but a temporary
copy of the text the simulator runs on.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from opl.compiler.compiled import CompiledStrategy
from opl.schemas import Finding, SimulateOutput

__all__ = ["ServerLimits", "build_server", "serve"]

#: How long a `simulate` call may run by default (seconds), and how many paths it may ask for.
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_MAX_PATHS = 5_000
#: Paths of a `simulate` call that gives none: enough for a first look, a few seconds.
DEFAULT_PATHS = 500
#: The name a text is checked under (diagnostics name it; no such file is read or written).
TEXT_NAME = "strategy.opl"

OplText = Annotated[str, Field(description="The OPL-Lang file's text (not a path).", min_length=1,
                               max_length=262_144)]
Market = Annotated[dict[str, float] | None, Field(
    default=None, description="Market overrides as `opl compile --market`: price, iv, rate, support, resistance.")]


@dataclass(frozen=True)
class ServerLimits:
    """What a client may ask of the server: the folder named files must be in (None: no file at all), the
    longest simulation and its most paths."""

    root: Path | None = None
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_paths: int = DEFAULT_MAX_PATHS


class CheckResult(BaseModel):
    """`check`: whether the file has errors, and every finding."""

    ok: bool = Field(description="No error (warnings allowed).")
    errors: int
    warnings: int
    diagnostics: list[Finding]


class Explanation(BaseModel):
    code: str
    title: str
    severity: str
    text: str


class Payoff(BaseModel):
    """`payoff`: the P&L (currency) at ``dates`` over ``prices``; breakevens and extremes at the first expiry."""

    prices: list[float]
    dates: list[str] = Field(description="Today, half-way, the first expiry.")
    pnl: list[list[float]] = Field(description="One row per date, one value per price.")
    breakevens: list[float]
    max_profit: float | None = Field(description="None: unbounded.")
    max_loss: float | None = Field(description="None: unbounded.")
    summary: str


def _access(limits: ServerLimits):
    from opl.lang.fileaccess import FileAccess

    return FileAccess.within(limits.root)


def _checked(text: str, limits: ServerLimits):
    import opl
    from opl.lang.checks import CheckOptions

    return opl.check(text, TEXT_NAME, CheckOptions(files=_access(limits)))


def _located(report, diagnostics) -> str:
    """The rendered diagnostics, rustc style, naming the text as `TEXT_NAME` (not a temporary copy)."""
    from opl.lang.diagnostics import FileReport
    from opl.lang.render import render
    from opl.lang.source import SourceFile

    return render([FileReport(SourceFile(TEXT_NAME, report.source.text), list(diagnostics))], "full")


def check_text(text: str, limits: ServerLimits) -> CheckResult:
    from opl.lang.render.json_format import finding

    report = _checked(text, limits).report
    findings = [Finding(**finding(report.path, d)) for d in report.sorted()]
    errors = sum(f.severity == "error" for f in findings)
    return CheckResult(ok=errors == 0, errors=errors, warnings=sum(f.severity == "warning" for f in findings),
                       diagnostics=findings)


def explain_code(code: str) -> Explanation:
    from mcp.server.mcpserver.exceptions import ToolError

    from opl.lang.codes import CODES, explain
    from opl.lang.diagnostics import did_you_mean

    code = code.strip().upper()
    text = explain(code)
    if text is None:
        guess = did_you_mean(code, list(CODES))
        raise ToolError(f"unknown code `{code}`" + (f"; did you mean `{guess}`?" if guess else ""))
    entry = CODES[code]
    return Explanation(code=code, title=entry.title, severity=entry.severity, text=text)


def compiled(text: str, market: dict | None, limits: ServerLimits):
    from mcp.server.mcpserver.exceptions import ToolError

    from opl.compiler.strategy import compile_checked

    checked = _checked(text, limits)
    result = compile_checked(checked, market or {})
    if not result.ok:
        raise ToolError("the file does not compile:\n" + _located(checked.report, result.diagnostics))
    return result.strategy


def payoff_of(text: str, market: dict | None, limits: ServerLimits) -> Payoff:
    from opl.compiler.payoff import payoff_curves

    curves = payoff_curves(compiled(text, market, limits))
    return Payoff(prices=[float(p) for p in curves.prices], dates=[str(d) for d in curves.dates],
                  pnl=[[float(v) for v in row] for row in curves.pnl], breakevens=list(curves.breakevens),
                  max_profit=None if curves.profit_unbounded else curves.max_profit,
                  max_loss=None if curves.loss_unbounded else curves.max_loss, summary=curves.summary())


def simulate_text(text: str, limits: ServerLimits, *, paths: int, seed: int | None, settings: list[str],
                  seconds: float | None) -> SimulateOutput:
    from mcp.server.mcpserver.exceptions import ToolError

    from opl.runtime.engine.deadline import DeadlinePassed
    from opl.lang.experiment.settings import SettingsError
    from opl.simulation.run import SimulationInputError, simulate_file

    if paths > limits.max_paths:
        raise ToolError(f"paths {paths:,} is more than this server allows ({limits.max_paths:,}); ask for fewer")
    budget = min(seconds or limits.max_seconds, limits.max_seconds)
    # One process: forking workers from a server's threads is unsafe, and the paths are few.
    overrides = list(settings) + ["sim.workers=1"]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="opl-mcp-") as folder:
        path = Path(folder) / TEXT_NAME
        path.write_text(text, encoding="utf-8")
        try:
            result = simulate_file(path, paths=paths, seed=seed, overrides=overrides, files=_access(limits),
                                   deadline=started + budget)
        except SimulationInputError as error:
            raise ToolError("the file cannot be simulated:\n" + _located(error.report, error.diagnostics)) \
                from None
        except SettingsError as error:
            raise ToolError(f"setting `{error.key}`: {error}" if error.key else str(error)) from None
        except DeadlinePassed:
            raise ToolError(f"the simulation did not finish within {budget:g} s: ask for fewer paths, a shorter "
                            "horizon (`experiment.horizon=N`) or fewer sizes") from None
    data = result.to_dict()
    data["file"] = TEXT_NAME  # not the temporary copy's path
    return SimulateOutput.model_validate(data)


def _reference() -> str:
    from opl.lang.reference import reference_text

    return reference_text()


def build_server(limits: ServerLimits):
    """The MCP server with its tools and the reference resource (module docstring)."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        "opl", version=_version(),
        instructions="OPL-Lang: option strategies as text. `check` a file first (located diagnostics; "
                     "`explain` a code), then `compile` it (legs, prices, Greeks), draw its `payoff`, and "
                     "`simulate` it (Monte Carlo metrics by size and scenario). Read opl://reference for the "
                     "language. Pass the file's text, not a path.")

    @server.tool(description="Check an OPL-Lang file's text: every diagnostic, located (line, column), with "
                             "its code, message and help. A broken file is a result, not an error.")
    def check(text: OplText) -> CheckResult:
        return check_text(text, limits)

    @server.tool(description="The long explanation of a diagnostic code, e.g. E101.")
    def explain(code: Annotated[str, Field(pattern=r"^\s*[A-Za-z]\d{3}\s*$", description="A code like E101.")]
                ) -> Explanation:
        return explain_code(code)

    @server.tool(name="compile", description="Compile an OPL-Lang file's text: legs with resolved strikes and "
                                             "expiries, prices and Greeks, the totals.")
    def compile_(text: OplText, market: Market = None) -> CompiledStrategy:
        return compiled(text, market, limits)

    @server.tool(description="The strategy's P&L profile over a price grid today, half-way and at the first "
                             "expiry, with breakevens and the largest profit and loss.")
    def payoff(text: OplText, market: Market = None) -> Payoff:
        return payoff_of(text, market, limits)

    @server.tool(description=f"Simulate an OPL-Lang file's text with its experiment block: metrics by size "
                             f"(monthly return, loss probability, drawdown, CVaR, each with its Monte Carlo "
                             f"error), scenarios, recommended size. At most {limits.max_paths:,} paths and "
                             f"{limits.max_seconds:g} s.")
    def simulate(text: OplText,
                 paths: Annotated[int, Field(ge=10, description="Monte Carlo paths.")] = DEFAULT_PATHS,
                 seed: Annotated[int | None, Field(ge=0, description="Seed (default: the file's).")] = None,
                 settings: Annotated[list[str], Field(
                     description="`--set key=value` items, e.g. experiment.horizon=3, experiment.sizes=[1,2].",
                     max_length=32)] = [],  # noqa: B006 - pydantic copies defaults
                 seconds: Annotated[float | None, Field(gt=0, description="Stop after this many seconds "
                                                                            "(at most the server's limit).")] = None,
                 ) -> SimulateOutput:
        return simulate_text(text, limits, paths=paths, seed=seed, settings=settings, seconds=seconds)

    @server.resource("opl://reference", name="reference", title="OPL-Lang reference", mime_type="text/markdown",
                     description="The language reference (grammar/README.md): syntax, blocks, codes.")
    def reference() -> str:
        return _reference()

    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opl")
    except PackageNotFoundError:
        return "0"


def serve(limits: ServerLimits) -> None:
    """Serve over stdio until the client closes the connection."""
    build_server(limits).run("stdio")
