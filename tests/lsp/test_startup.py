"""The language server starts without the numeric engine and loads it only for a leg's Greeks."""

from __future__ import annotations

import sys

PRICED = ('opl-lang 1.0\nunderlying Future(2026-05-15)\nexchange CZCE\nprice 10250\niv 0.25\ntime 2026-01-05\n'
          'S = short Option(Put, 9800, 30d) + short Option(Call, 10700, 30d)\nexit_mode first_hit\n')


# The real server process, with an import hook that appends every numeric module it imports to the
# file OPL_NUMERIC_LOG names.
GUARDED_SERVER = (
    "import os, sys\n"
    "class Guard:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('numpy', 'scipy', 'pandas'):\n"
    "            with open(os.environ['OPL_NUMERIC_LOG'], 'a') as log:\n"
    "                log.write(name + '\\n')\n"
    "        return None\n"
    "sys.meta_path.insert(0, Guard())\n"
    "from opl.cli import main\n"
    "sys.exit(main())\n"
)


def test_the_running_server_imports_numpy_only_for_a_legs_greeks(tmp_path):
    import asyncio
    import os

    from lsprotocol import types as lsp
    from pytest_lsp import client_capabilities, make_test_lsp_client

    log = tmp_path / "numeric.log"
    log.touch()
    path = tmp_path / "priced.opl"
    path.write_text(PRICED, encoding="utf-8")
    uri, doc = path.as_uri(), lsp.TextDocumentIdentifier(path.as_uri())
    leg_line = PRICED.splitlines().index(next(li for li in PRICED.splitlines() if li.startswith("S =")))

    async def session() -> tuple[str, str]:
        client = make_test_lsp_client()
        env = {**os.environ, "OPL_NUMERIC_LOG": str(log)}
        await client.start_io(sys.executable, "-c", GUARDED_SERVER, "lsp", env=env)
        try:
            await client.initialize_session(lsp.InitializeParams(capabilities=client_capabilities("neovim")))
            client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "opl", 1, PRICED)))
            for _ in range(400):
                if uri in client.diagnostics:
                    break
                await asyncio.sleep(0.025)
            await client.text_document_completion_async(lsp.CompletionParams(doc, lsp.Position(1, 0)))
            await client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(3, 1)))
            await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(doc))
            await client.text_document_formatting_async(lsp.DocumentFormattingParams(doc, lsp.FormattingOptions(2, True)))
            await client.text_document_code_action_async(lsp.CodeActionParams(
                doc, lsp.Range(lsp.Position(0, 0), lsp.Position(9, 0)), lsp.CodeActionContext([])))
            await client.text_document_definition_async(lsp.DefinitionParams(doc, lsp.Position(leg_line, 0)))
            await asyncio.sleep(0.5)  # the background warm-up has finished by now
            before = log.read_text()
            hover = await client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(leg_line, 12)))
            assert "gamma" in hover.contents.value
            return before, log.read_text()
        finally:
            await client.shutdown_session()
            await client.stop()

    before, after = asyncio.run(session())
    assert before == ""  # open, diagnostics, completion, a field's hover, symbols, formatting, code actions,
    # definitions and the background warm-up: nothing numeric
    assert "numpy" in after.split()
