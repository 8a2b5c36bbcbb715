"""`opl mcp` through the SDK's own client over stdio: the server is started as a subprocess, as an agent's
host (Claude Desktop, an IDE) starts it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import jsonschema
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
BAD = (ROOT / "examples/tour/bad.opl").read_text(encoding="utf-8")
BULL_CALL = (ROOT / "examples/tour/bull_call.opl").read_text(encoding="utf-8")
JUJUBE = (ROOT / "examples/jujube/strangle.opl").read_text(encoding="utf-8")
CALIBRATED = JUJUBE.replace("calibration historical", 'calibration file("{name}")')


def _server(*options: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable,
                                 args=["-c", "import sys; from opl.cli import main; sys.exit(main())", "mcp",
                                       *options])


def _run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=240))


def _structured(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def test_an_agent_lists_the_tools_checks_compiles_simulates_and_reads_the_reference(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text('{"TOPSECRET": 1}', encoding="utf-8")
    root = tmp_path / "root"
    root.mkdir()

    async def session():
        async with Client(_server("--root", str(root), "--max-paths", "400", "--max-seconds", "60")) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == {"check", "explain", "compile", "payoff", "simulate"}
            assert tools["simulate"].input_schema["properties"]["paths"]["minimum"] == 10

            # check: a broken file is a result with located diagnostics, not an error.
            checked = _structured(await client.call_tool("check", {"text": BAD}))
            jsonschema.validate(checked, tools["check"].output_schema)
            assert checked["ok"] is False and checked["errors"] >= 1
            first = checked["diagnostics"][0]
            assert (first["code"], first["line"], first["column"]) == ("E101", 6, 41)
            assert first["file"] == "strategy.opl" and first["help"] == "did you mean `Stock`?"
            assert _structured(await client.call_tool("check", {"text": BULL_CALL}))["ok"] is True

            explained = _structured(await client.call_tool("explain", {"code": "e101"}))
            assert explained["code"] == "E101" and "primitive" in explained["text"]
            unknown = await client.call_tool("explain", {"code": "E999"})
            assert unknown.is_error and "unknown code `E999`" in unknown.content[0].text

            compiled = _structured(await client.call_tool("compile", {"text": BULL_CALL}))
            jsonschema.validate(compiled, tools["compile"].output_schema)
            assert [leg["strike"] for leg in compiled["legs"]] == [480.0, 500.0]
            payoff = _structured(await client.call_tool("payoff", {"text": BULL_CALL}))
            assert len(payoff["breakevens"]) == 1 and payoff["max_loss"] > 0 and payoff["max_profit"] > 0

            # A file may name a file only inside --root, by a relative path (E015, as `opl loop`'s candidates).
            escaping = CALIBRATED.replace("{name}", "../outside/secret.json")
            refused = _structured(await client.call_tool("check", {"text": escaping}))
            assert [d["code"] for d in refused["diagnostics"] if d["severity"] == "error"] == ["E015"]
            refused = await client.call_tool("simulate", {"text": escaping, "paths": 20})
            assert refused.is_error and "E015" in refused.content[0].text and "TOPSECRET" not in str(refused)

            # simulate: metrics with their Monte Carlo errors, bounded paths.
            simulated = _structured(await client.call_tool(
                "simulate", {"text": JUJUBE, "paths": 60, "seed": 3,
                             "settings": ["experiment.horizon=1", "experiment.sizes=[1]"]}))
            jsonschema.validate(simulated, tools["simulate"].output_schema)
            assert simulated["file"] == "strategy.opl" and simulated["run"]["paths"] == 60
            assert "median_monthly_return" in simulated["base"]["target_metrics"]
            assert "median_monthly_return" in simulated["base"]["standard_errors"]
            too_many = await client.call_tool("simulate", {"text": JUJUBE, "paths": 100_000})
            assert too_many.is_error and "more than this server allows (400)" in too_many.content[0].text
            invalid = await client.call_tool("simulate", {"text": JUJUBE, "paths": 1})
            assert invalid.is_error  # below the schema's minimum: refused before anything runs

            # A file that cannot be simulated: the located diagnostic, naming the text, not a temporary copy.
            located = await client.call_tool("simulate", {"text": BULL_CALL, "paths": 20})
            assert located.is_error and "error[E306]" in located.content[0].text
            assert "--> strategy.opl:" in located.content[0].text

            # The time bound: a run asked to stop after a fraction of a second is stopped and says so.
            stopped = await client.call_tool("simulate", {"text": JUJUBE, "paths": 400, "seconds": 0.05,
                                                          "settings": ["experiment.horizon=12"]})
            assert stopped.is_error and "did not finish within 0.05 s" in stopped.content[0].text

            reference = await client.read_resource("opl://reference")
            assert "OPL-Lang" in reference.contents[0].text

    _run(session())
