"""JSON Schemas of every JSON output, generated from pydantic models: `opl schema NAME` prints one.

Each output is a model here (the compiled strategy is `opl.compiler.compiled.CompiledStrategy` itself). A model names
every top-level key of its output and forbids others, so a key added to an output without its schema fails
the tests that validate real outputs (tests/test_schemas.py); the nested tables an output carries from its
stage (a fit's diagnostics, a scenario's definition) are objects whose keys the stage documents.

**Versions.** Every schema has an ``$id`` naming the output and its version, ``urn:opl:schema:NAME:V``. An
output that carries its own version (``"schema": "opl.simulate/1"``) has it pinned as a constant, the same
version as the ``$id``'s. A change that removes or retypes a key is a new version.

>>> sorted(SCHEMAS)[:3]
['assumptions', 'backtest', 'calibrate']
>>> json_schema("check")["$id"]
'urn:opl:schema:check:1'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from opl.compiler.compiled import CompiledStrategy

__all__ = ["SCHEMAS", "OutputSchema", "json_schema"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Table = dict[str, Any]  # a nested object whose keys its stage documents


class _Closed(BaseModel):
    """An object whose keys are all named here."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------- check


class Finding(_Closed):
    """One diagnostic of `opl check --format json` (`opl.lang.render.json_format`): lines and columns 1-based,
    ``end_column`` exclusive."""

    file: str
    code: str = Field(pattern=r"^[EWI]\d{3}$")
    severity: Literal["error", "warning", "info"]
    message: str
    line: int = Field(ge=1)
    column: int = Field(ge=1)
    end_line: int = Field(ge=1)
    end_column: int = Field(ge=1)
    help: str | None
    label: str | None
    notes: list[str]


class CheckOutput(RootModel[list[Finding]]):
    """`opl check --format json`: every finding of every file, in order."""


# ------------------------------------------------------------------------------------------- simulate


class Metrics(_Closed):
    """The metrics of one run at one size (`opl.runtime.results.metrics.RunMetrics.to_dict`); percentages of capital."""

    size: float
    paths: int
    months: int
    monthly_return: Table
    loss_probability: float | None
    max_drawdown: Table
    cvar: Table
    attribution: Table
    margin: Table
    exercise: Table
    trades: Table
    adjustments: Table
    guards: Table
    target_metrics: dict[str, float | None]
    standard_errors: dict[str, float | None] = Field(description="The Monte Carlo error of each target metric.")


class SizeRow(_Closed):
    size: float
    holds: bool | None
    metrics: Metrics


class ScenarioRow(_Closed):
    name: str
    kind: Literal["stress", "sensitivity"]
    scenario: str
    size: float
    holds: bool | None
    definition: str
    metrics: Metrics


class SimulateOutput(_Closed):
    """`opl simulate --json`."""

    schema_: Literal["opl.simulate/1"] = Field(alias="schema")
    file: str
    run: Table
    model: Table
    strategy: Table
    target: Table | str | None
    base: Metrics
    sizes: list[SizeRow]
    recommended_size: Table | None
    recommended_size_reason: str | None
    scenario_size: Table | None
    scenarios: list[ScenarioRow]
    notes: list[str]


# ------------------------------------------------------------------------------------------- backtest


class BacktestCycle(_Closed):
    cycle: int
    open: str
    close: str | None
    contract: str | None
    expiry: str | None
    ends: str
    sessions: int
    open_price: float
    strikes: list[float | None]
    support: float | None
    resistance: float | None
    direction: float | None
    view_date: str | None
    level_factor: float | None
    dividend_adjustment: float = Field(description="M'/M of the contracts the cycle held at its end.")
    opened: bool
    premium: float | None
    pnl: float | None
    exit: str | None
    reopened: bool
    planned: int
    marks_from_chain: int
    marks: int


class BacktestData(_Closed):
    directory: str
    files: dict[str, str]
    inputs: dict[str, Table] = Field(description="Each file read: rows used, repairs (rows in = rows + rows "
                                                 "dropped); the futures' sessions traded or not.")
    surfaces: list[str]


class BacktestOutput(_Closed):
    """`opl backtest --json`."""

    schema_: Literal["opl.backtest/1"] = Field(alias="schema")
    file: str
    data: BacktestData
    run: Table
    strategy: Table
    performance: Table
    metrics: Metrics
    baseline: Table | None
    delta_band: Table | None
    cycles: list[BacktestCycle]
    notes: list[str]


# ------------------------------------------------------------------------------- calibrate, assumptions


class CalibrateOutput(_Closed):
    """`opl calibrate --json`."""

    inputs: Table
    settings: Table
    realised: Table
    garch: Table
    jumps: Table
    surface: Table | None
    iv_summary: Table | None
    implied: Table | None
    block: Table
    versions: dict[str, str | None]


class AssumptionsOutput(_Closed):
    """`opl assumptions --json`."""

    opl_version: str
    versions: dict[str, str | None]
    settings: Table
    data: Table
    random_walk: Table
    hit_rate: Table
    factors: Table | None
    stress: Table | None


# ----------------------------------------------------------------------------------------------- loop


class LoopProposal(_Closed):
    change: str
    rationale: str
    risk: str
    move: Any = None
    failure: str | None = None
    attempts: int | None = None
    usage: dict[str, int] | None = None


class LoopDecision(_Closed):
    kind: Literal["baseline", "parameter", "design", "failed"]
    accepted: bool
    why: str
    objective: float | None
    best_iteration: int
    best_objective: float | None
    best_target_met: bool
    design_version: int
    parameter_version: int
    version: str
    tradeoff: Literal["return", "drawdown"] | None
    dropped: list[Table] | None = None
    stopped: Literal["budget_minutes"] | None = Field(
        default=None, description="The evaluation was stopped at the end of --minutes.")


class LoopResult(_Closed):
    """An iteration's ``result.json`` in an `opl loop` run folder."""

    schema_: Literal["opl.loop.iteration/1"] = Field(alias="schema")
    iteration: int = Field(ge=0)
    parent: int | None
    candidate_sha: str | None
    proposal: LoopProposal
    evaluation: Table | None
    diagnosis: Table | None
    decision: LoopDecision
    seconds: float = Field(description="The wall time the iteration added to the run (a round's shared equally).")
    round: dict[str, int] | None = Field(
        default=None, description="The --batch round it belongs to: its first iteration and its size.")


class LoopRun(_Closed):
    """The ``run.json`` of an `opl loop` run folder: its settings, fixed when it starts."""

    schema_: Literal["opl.loop.run/1"] = Field(alias="schema")
    created: str
    file: str
    target: Table
    evaluation: Table
    stops: Table
    proposer: Table
    data: str | None
    repair: bool
    claim: float | None
    versions: dict[str, str | None]
    sessions: list[str]
    batch: int | None = Field(default=None, ge=1, description="Candidates proposed and evaluated per round.")


# ------------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class OutputSchema:
    """One JSON output: its model, version and what writes it."""

    model: type[BaseModel]
    version: int
    written_by: str


SCHEMAS: dict[str, OutputSchema] = {
    "check": OutputSchema(CheckOutput, 1, "opl check --format json"),
    "compile": OutputSchema(CompiledStrategy, 1, "opl compile --format json"),
    "simulate": OutputSchema(SimulateOutput, 1, "opl simulate --json"),
    "backtest": OutputSchema(BacktestOutput, 1, "opl backtest --json"),
    "calibrate": OutputSchema(CalibrateOutput, 1, "opl calibrate --json"),
    "assumptions": OutputSchema(AssumptionsOutput, 1, "opl assumptions --json"),
    "loop-result": OutputSchema(LoopResult, 1, "opl loop: RUN/iter_K/result.json"),
    "loop-run": OutputSchema(LoopRun, 1, "opl loop: RUN/run.json"),
}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of output ``name``, with its ``$schema`` dialect, versioned ``$id`` and title."""
    entry = SCHEMAS[name]
    schema = entry.model.model_json_schema(by_alias=True)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": f"urn:opl:schema:{name}:{entry.version}",
            "title": schema.pop("title", name), "x-written-by": entry.written_by, **schema}
