"""`opl lsp` driven by a real LSP client over stdio (pytest-lsp): the issue's "done when" list.

One server process serves the whole module (a fresh start per test would cost a second
each); every test opens its own file, so they do not see each other's documents.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import pytest_lsp
from click.testing import CliRunner
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from opl.cli import main as cli
from opl.lang.fmt import format_text

SERVER = [sys.executable, "-c", "import sys; from opl.cli import main; sys.exit(main())", "lsp"]
pytestmark = pytest.mark.asyncio(loop_scope="module")

# A non-BMP character before an error on line 4: UTF-16 columns differ from code points there.
BROKEN = ('opl-lang 1.0\n'
          'dirction_intent Bull\n'
          'symbol CJ605  # 红枣\n'
          'warn_if iv > 40% && "😀" && days_lft > 3d\n'
          'S = long Option(Put, 30d, 9800)\n'
          'exit_mode frist_hit\n')
PRICED = ('opl-lang 1.0\nunderlying Future(2026-05-15)\nexchange CZCE\nprice 10250\niv 0.25\nrate 0.02\n'
          'time 2026-01-05\ndirection_intent RangeBound\nvega_style Credit\n'
          'S = short Option(Put, 9800, 30d) + short Option(Call, 10700, 30d)\n'
          'exit_mode first_hit\nexit_triggers [ pnl_percent(<-25%), days_left(<2d) ]\n')


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=None))
    yield
    await lsp_client.shutdown_session()


def _check_json(path: Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["check", "--format", "json", str(path)])
    return json.loads(result.output)


async def _published(client: LanguageClient, uri: str) -> list[lsp.Diagnostic]:
    """Wait for diagnostics published for ``uri`` after the caller cleared its entry (others' pass by)."""
    for _ in range(400):
        if uri in client.diagnostics:
            return client.diagnostics[uri]
        await asyncio.sleep(0.025)
    raise AssertionError(f"no diagnostics published for {uri} within 10 s")


async def _open(client: LanguageClient, path: Path, text: str) -> list[lsp.Diagnostic]:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "opl", 1, text)))
    return await _published(client, uri)


def _utf16(text: str, line: int, column: int) -> int:
    """The UTF-16 column of a 1-based (line, code-point column) of ``text``."""
    prefix = text.splitlines()[line - 1][:column - 1] if line - 1 < len(text.splitlines()) else ""
    return len(prefix.encode("utf-16-le")) // 2


async def test_diagnostics_equal_opl_check_json(client: LanguageClient, tmp_path):
    path = tmp_path / "broken.opl"
    published = await _open(client, path, BROKEN)
    expected = _check_json(path)
    assert [d.data for d in published] == expected  # the same findings, in the same order
    assert {f["code"] for f in expected} >= {"E102", "E104", "E105"}
    for diagnostic, finding in zip(published, expected):
        assert diagnostic.code == finding["code"]
        assert diagnostic.severity == {"error": 1, "warning": 2, "note": 3}[finding["severity"]]
        assert diagnostic.message.splitlines()[0] == finding["message"]
        if finding["help"]:
            assert f"help: {finding['help']}" in diagnostic.message
        start, end = diagnostic.range.start, diagnostic.range.end
        assert (start.line, start.character) == (finding["line"] - 1,
                                                  _utf16(BROKEN, finding["line"], finding["column"]))
        assert (end.line, end.character) == (finding["end_line"] - 1,
                                             _utf16(BROKEN, finding["end_line"], finding["end_column"]))
    (astral,) = [d for d in published if d.code == "E106"]
    assert astral.range.start.character == astral.data["column"] - 1 + 1  # 😀 is two UTF-16 units


async def test_an_edit_updates_the_diagnostics(client: LanguageClient, tmp_path):
    path = tmp_path / "edited.opl"
    before = await _open(client, path, BROKEN)
    assert "E102" in [d.code for d in before]
    uri = path.as_uri()
    fixed = BROKEN.replace("dirction_intent", "direction_intent")
    client.diagnostics.pop(uri)
    for version, text in enumerate((BROKEN[:40], fixed[:-5], fixed), start=2):  # half-typed texts first
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=version), [lsp.TextDocumentContentChangeWholeDocument(text)]))
    after = await _published(client, uri)
    path.write_text(fixed, encoding="utf-8")
    assert [d.data for d in after] == _check_json(path)
    assert "E102" not in [d.code for d in after]


async def test_hover_on_a_leg_shows_its_greeks(client: LanguageClient, tmp_path):
    path = tmp_path / "priced.opl"
    await _open(client, path, PRICED)
    line = PRICED.splitlines().index(next(li for li in PRICED.splitlines() if li.startswith("S =")))
    column = PRICED.splitlines()[line].index("Option(Put") + 3
    result = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(path.as_uri()), lsp.Position(line, column)))
    compiled = json.loads(CliRunner().invoke(cli, ["compile", "--format", "json", str(path)]).output)
    put = compiled["legs"][0]
    text = result.contents.value
    for greek in ("delta", "gamma", "vega", "theta", "rho", "charm"):
        assert greek in text
    assert f"{put['greeks']['delta']:+.6g}" in text
    assert f"{put['greeks']['vega'] * 0.01:+.6g}" in text and "per 1% of volatility" in text
    assert f"strike {put['strike']:g}" in text and put["expiry"] in text


async def test_hover_on_a_field_and_a_code(client: LanguageClient, tmp_path):
    path = tmp_path / "fields.opl"
    text = PRICED + "warn_if days_left > 30d  # opl: ignore[W402]\n"
    await _open(client, path, text)
    uri = lsp.TextDocumentIdentifier(path.as_uri())
    lines = text.splitlines()
    field = await client.text_document_hover_async(lsp.HoverParams(uri, lsp.Position(lines.index("price 10250"), 1)))
    assert "underlying price" in field.contents.value
    code_line = len(lines) - 1
    code = await client.text_document_hover_async(lsp.HoverParams(
        uri, lsp.Position(code_line, lines[code_line].index("W402") + 1)))
    assert "W402" in code.contents.value and "warning" in code.contents.value


async def test_completion_after_exit_mode_lists_the_modes(client: LanguageClient, tmp_path):
    path = tmp_path / "complete.opl"
    text = "opl-lang 1.0\nS = short Option(Put, 9800, 30d)\nexit_mode \n"
    await _open(client, path, text)
    result = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(path.as_uri()), lsp.Position(2, len("exit_mode "))))
    labels = [item.label for item in result.items]
    assert labels == ["first_hit", "all_required", "machine_decide"]
    resolved = await client.completion_item_resolve_async(result.items[0])
    assert "first_hit" in resolved.documentation.value


async def test_formatting_returns_opl_fmt_text(client: LanguageClient, tmp_path):
    path = tmp_path / "messy.opl"
    text = "opl-lang 1.0\nS=short   Option(Put,9800,30d)+short Option( Call ,10700 , 30d)\nexit_mode   first_hit\n"
    await _open(client, path, text)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        lsp.TextDocumentIdentifier(path.as_uri()), lsp.FormattingOptions(2, True)))
    assert len(edits) == 1 and edits[0].range.start == lsp.Position(0, 0)
    assert edits[0].new_text == format_text(text).text != text


async def test_code_action_fixes_a_misspelt_field(client: LanguageClient, tmp_path):
    path = tmp_path / "typo.opl"
    published = await _open(client, path, BROKEN)
    typo = next(d for d in published if d.code == "E102")
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(path.as_uri()), typo.range, lsp.CodeActionContext([typo])))
    assert [a.title for a in actions] == ["replace `dirction_intent` with `direction_intent`"]
    (edit,) = actions[0].edit.changes[path.as_uri()]
    assert edit.new_text == "direction_intent" and edit.range == typo.range


async def test_code_action_swaps_strike_and_tenor(client: LanguageClient, tmp_path):
    path = tmp_path / "swap.opl"
    published = await _open(client, path, BROKEN)
    swapped = next(d for d in published if "swapped" in d.message)
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(path.as_uri()), swapped.range, lsp.CodeActionContext([swapped])))
    edits = actions[0].edit.changes[path.as_uri()]
    assert sorted(e.new_text for e in edits) == ["30d", "9800"]


async def test_symbols_and_definition(client: LanguageClient, tmp_path):
    path = tmp_path / "outline.opl"
    text = ("opl-lang 1.0\nprice 480\niv 0.25\nwings = long Option(Put, 440, 30d) + long Option(Call, 520, 30d)\n"
            "S = short Straddle(480, 30d) + wings\nexit_mode first_hit\nexperiment {\n  paths 1000\n  seed 7\n}\n")
    await _open(client, path, text)
    uri = lsp.TextDocumentIdentifier(path.as_uri())
    found = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(uri))
    names = [s.name for s in found]
    assert names == ["opl-lang 1.0", "market", "wings", "S", "exit module", "experiment"]
    strategy = found[names.index("S")]
    assert strategy.detail == "strategy" and len(strategy.children) == 4
    assert [c.name for c in found[names.index("experiment")].children] == ["paths", "seed"]
    line = 4
    location = await client.text_document_definition_async(lsp.DefinitionParams(
        uri, lsp.Position(line, text.splitlines()[line].index("wings") + 2)))
    assert location.range.start == lsp.Position(3, 0)


async def test_the_server_reads_the_settings_opl_check_reads(client: LanguageClient, tmp_path):
    (tmp_path / "opl.toml").write_text('ignore = ["W405"]\n', encoding="utf-8")
    path = tmp_path / "configured.opl"
    text = "opl-lang 1.0\nS = short Option(Call, 500, 30d)  # opl: ignore[W404]\ncapital_limit 1\n"
    published = await _open(client, path, text)
    assert [d.data for d in published] == _check_json(path)
    assert not {"W404", "W405"} & {d.code for d in published}
    (tmp_path / "opl.toml").write_text("ignore = []\n", encoding="utf-8")
    client.diagnostics.pop(path.as_uri())
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
        [lsp.FileEvent((tmp_path / "opl.toml").as_uri(), lsp.FileChangeType.Changed)]))
    republished = await _published(client, path.as_uri())
    assert "W405" in {d.code for d in republished}
    assert [d.data for d in republished] == _check_json(path)


async def test_code_action_adds_the_missing_header(client: LanguageClient, tmp_path):
    path = tmp_path / "headless.opl"
    published = await _open(client, path, "S = long Option(Put, 9800, 30d)\nexit_mode first_hit\n")
    missing = next(d for d in published if d.code == "E004")
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(path.as_uri()), missing.range, lsp.CodeActionContext([missing])))
    assert [a.title for a in actions] == ["add `opl-lang 1.0` as the first line"]
    (edit,) = actions[0].edit.changes[path.as_uri()]
    assert edit.new_text == "opl-lang 1.0\n" and edit.range == lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))


async def test_a_bad_configuration_is_shown_and_the_file_still_checked(client: LanguageClient, tmp_path):
    (tmp_path / "opl.toml").write_text('selct = ["W4"]\n', encoding="utf-8")
    path = tmp_path / "misconfigured.opl"
    published = await _open(client, path, "opl-lang 1.0\ndirction_intent Bull\n")
    assert "E102" in {d.code for d in published}  # checked with the defaults
    for _ in range(200):
        if any("did you mean `select`" in m.message for m in client.messages):
            break
        await asyncio.sleep(0.025)
    (shown,) = [m for m in client.messages if "opl.toml" in m.message]
    assert shown.type == lsp.MessageType.Error and "did you mean `select`" in shown.message
