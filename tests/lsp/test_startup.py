"""The language server starts without the numeric engine and loads it only for a leg's Greeks."""

from __future__ import annotations

import subprocess
import sys

PRICED = ('opl-lang 1.0\nunderlying Future(2026-05-15)\nexchange CZCE\nprice 10250\niv 0.25\ntime 2026-01-05\n'
          'S = short Option(Put, 9800, 30d) + short Option(Call, 10700, 30d)\nexit_mode first_hit\n')


def test_server_loads_no_numeric_module_until_a_hover_needs_greeks(tmp_path):
    script = (
        "import sys\n"
        "from opl.lsp import server\n"
        "from opl.lsp.analysis import analyse\n"
        "from opl.lsp.completion import completions\n"
        "from opl.lsp.hover import hover\n"
        "from opl.lsp.outline import symbols\n"
        "from opl.lang.fixes import concrete_fixes\n"
        "from opl.lang.fmt import format_text\n"
        "text = sys.argv[1]\n"
        "a = analyse('x.opl', text)\n"
        "completions(text, len(text), []); symbols(a); format_text(text)\n"
        "[concrete_fixes(d, a.source) for d in a.report.diagnostics]\n"
        "hover(a, text.index('price'))\n"
        "numeric = lambda: sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'pandas'))\n"
        "assert not numeric(), numeric()\n"
        "assert 'gamma' in hover(a, text.index('Option(Put')).text\n"
        "assert 'numpy' in numeric()\n"
    )
    subprocess.run([sys.executable, "-c", script, PRICED], check=True)


# The real server process, with an import hook that records the first numeric module it imports
# (and the request being served then) in the file OPL_NUMERIC_LOG names.
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
        env = {**__import__("os").environ, "OPL_NUMERIC_LOG": str(log)}
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
            await asyncio.sleep(0.5)  # the background warm-up has finished by now
            before = log.read_text()
            hover = await client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(leg_line, 12)))
            assert "gamma" in hover.contents.value
            return before, log.read_text()
        finally:
            await client.shutdown_session()
            await client.stop()

    before, after = asyncio.run(session())
    assert before == ""  # open, diagnostics, completion, a field's hover, symbols, formatting: nothing numeric
    assert "numpy" in after.split()
