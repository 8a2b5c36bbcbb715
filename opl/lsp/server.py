"""``opl lsp``: the Language Server Protocol server (pygls) over stdio.

Every feature is a function of `opl.lsp.analysis.Analysis` in code points; this module
only converts positions to and from the client's encoding (UTF-16 unless the client
negotiates another) and shapes the answers as LSP types. Diagnostics are published on
open at once and on change after a pause in typing (`DEBOUNCE_SECONDS`), so a fast
typist does not queue a check per key.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from typing import TYPE_CHECKING

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

if TYPE_CHECKING:  # the front end is imported after `initialized` (`warm_up`), not before the handshake
    from opl.lang.diagnostics import Diagnostic, Fix
    from opl.lang.source import Span
    from opl.lsp.analysis import Analysis

DEBOUNCE_SECONDS = 0.25
SEVERITIES = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
              "note": lsp.DiagnosticSeverity.Information}
SYMBOL_KINDS = {"file": lsp.SymbolKind.File, "module": lsp.SymbolKind.Module,
                "namespace": lsp.SymbolKind.Namespace, "function": lsp.SymbolKind.Function,
                "variable": lsp.SymbolKind.Variable, "property": lsp.SymbolKind.Property,
                "struct": lsp.SymbolKind.Struct, "key": lsp.SymbolKind.Key}
COMPLETION_KINDS = {"field": lsp.CompletionItemKind.Field, "setting": lsp.CompletionItemKind.Property,
                    "primitive": lsp.CompletionItemKind.Class, "template": lsp.CompletionItemKind.Function,
                    "trigger": lsp.CompletionItemKind.Function, "action": lsp.CompletionItemKind.Method,
                    "value": lsp.CompletionItemKind.EnumMember, "keyword": lsp.CompletionItemKind.Keyword,
                    "snippet": lsp.CompletionItemKind.Snippet, "variable": lsp.CompletionItemKind.Variable,
                    "reference": lsp.CompletionItemKind.Reference, "function": lsp.CompletionItemKind.Function}


class OplLanguageServer(LanguageServer):
    """The server with one `Analysis` per open document version and the pending debounced checks."""

    def __init__(self) -> None:
        from importlib import metadata

        try:
            version = metadata.version("opl")
        except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            version = "0"
        super().__init__("opl", version)
        self.analyses: dict[str, tuple[int | None, Analysis]] = {}
        self.pending: dict[str, asyncio.Task] = {}
        self.settings_errors: dict[str, str | None] = {}  # shown once per document until it changes

    # -- documents ---------------------------------------------------------------------------
    def analysis(self, uri: str) -> Analysis:
        """The check of the document's current text (re-run when the text changed since)."""
        document = self.workspace.get_text_document(uri)
        cached = self.analyses.get(uri)
        if cached is not None and cached[0] == document.version and cached[1].text == document.source:
            return cached[1]
        from opl.lsp.analysis import analyse

        path = to_fs_path(uri) or uri
        result = analyse(path, document.source)
        self.analyses[uri] = (document.version, result)
        return result

    def publish(self, uri: str) -> None:
        """Check the document and publish its diagnostics; an internal failure is logged, not hidden."""
        try:
            analysis = self.analysis(uri)
        except Exception:  # a checker bug must not take the editor's server down with it
            self.window_log_message(lsp.LogMessageParams(lsp.MessageType.Error,
                                                         f"opl: checking {uri} failed:\n{traceback.format_exc()}"))
            return
        if analysis.settings_error and analysis.settings_error != self.settings_errors.get(uri):
            self.window_show_message(lsp.ShowMessageParams(
                lsp.MessageType.Error, f"opl: {analysis.settings_error} (checking with the defaults)"))
        self.settings_errors[uri] = analysis.settings_error
        version = self.workspace.get_text_document(uri).version
        diagnostics = [self.diagnostic(analysis, d) for d in analysis.report.sorted()]
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, diagnostics, version))

    async def publish_later(self, uri: str) -> None:
        await asyncio.sleep(DEBOUNCE_SECONDS)
        self.pending.pop(uri, None)
        self.publish(uri)

    # -- positions ---------------------------------------------------------------------------
    def position(self, analysis: Analysis, offset: int) -> lsp.Position:
        line, column = analysis.source.position(offset)
        text = analysis.source.line_text(line)
        return lsp.Position(line - 1, self.workspace.position_codec.client_num_units(text[:column - 1]))

    def range(self, analysis: Analysis, span: Span) -> lsp.Range:
        return lsp.Range(self.position(analysis, span.start), self.position(analysis, max(span.end, span.start)))

    def offset(self, analysis: Analysis, position: lsp.Position) -> int:
        lines = analysis.text.splitlines(keepends=True) or [""]
        server = self.workspace.position_codec.position_from_client_units(lines, position)
        return analysis.offset(server.line, server.character)

    # -- shapes ------------------------------------------------------------------------------
    def diagnostic(self, analysis: Analysis, diagnostic: Diagnostic) -> lsp.Diagnostic:
        from opl.lang.render.json_format import finding

        lines = [diagnostic.message]
        if diagnostic.help:
            lines.append(f"help: {diagnostic.help}")
        lines += [f"note: {note}" for note in diagnostic.notes]
        return lsp.Diagnostic(self.range(analysis, diagnostic.span), "\n".join(lines),
                              severity=SEVERITIES[diagnostic.severity], code=diagnostic.code, source="opl",
                              data=finding(analysis.source.path, diagnostic))

    def workspace_edit(self, uri: str, analysis: Analysis, fix: Fix) -> lsp.WorkspaceEdit:
        edits = [lsp.TextEdit(self.range(analysis, edit.span), edit.text) for edit in fix.edits]
        return lsp.WorkspaceEdit(changes={uri: edits})


server = OplLanguageServer()


def warm_up() -> None:
    """Import the checker and build the parser while the editor is still idle after the handshake."""
    from opl.lang.parser import _lark
    from opl.lsp import analysis  # noqa: F401

    _lark()


@server.feature(lsp.INITIALIZED)
def initialized(ls: OplLanguageServer, params: lsp.InitializedParams) -> None:
    threading.Thread(target=warm_up, name="opl-warm-up", daemon=True).start()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: OplLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: OplLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    previous = ls.pending.pop(uri, None)
    if previous is not None:
        previous.cancel()
    ls.pending[uri] = asyncio.ensure_future(ls.publish_later(uri))


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: OplLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def watched_files_changed(ls: OplLanguageServer, params: lsp.DidChangeWatchedFilesParams) -> None:
    """An opl.toml or pyproject.toml changed (the client watches them): every open file is checked again."""
    ls.analyses.clear()
    for uri in list(ls.workspace.text_documents):
        ls.publish(uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: OplLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    pending = ls.pending.pop(uri, None)
    if pending is not None:
        pending.cancel()
    ls.analyses.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: OplLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    from opl.lsp.hover import hover as hover_at

    analysis = ls.analysis(params.text_document.uri)
    found = hover_at(analysis, ls.offset(analysis, params.position))
    if found is None:
        return None
    return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, found.text), ls.range(analysis, found.span))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=[" ", "(", "[", ","], resolve_provider=True))
def completion(ls: OplLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    from opl.lsp.completion import completions
    from opl.lsp.outline import bindings

    analysis = ls.analysis(params.text_document.uri)
    items = completions(analysis.text, ls.offset(analysis, params.position), list(bindings(analysis)))
    return lsp.CompletionList(False, [
        lsp.CompletionItem(item.label, kind=COMPLETION_KINDS[item.kind], detail=item.detail or None,
                           insert_text=item.insert,
                           insert_text_format=lsp.InsertTextFormat.Snippet if item.snippet else None,
                           data={"word": item.label.split(" ")[0]})
        for item in items])


@server.feature(lsp.COMPLETION_ITEM_RESOLVE)
def completion_resolve(ls: OplLanguageServer, item: lsp.CompletionItem) -> lsp.CompletionItem:
    from opl.lsp.docs import documentation

    word = item.data.get("word") if isinstance(item.data, dict) else None
    text = documentation(word) if word else None
    if text:
        item.documentation = lsp.MarkupContent(lsp.MarkupKind.Markdown, text)
    return item


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: OplLanguageServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    """The whole document as `opl fmt` prints it; nothing when the file has syntax errors (as `opl fmt`)."""
    from opl.lang.fmt import format_text

    analysis = ls.analysis(params.text_document.uri)
    result = format_text(analysis.text, analysis.source.path)
    if result.diagnostics or result.error or not result.changed:
        if result.diagnostics or result.error:
            ls.window_show_message(lsp.ShowMessageParams(
                lsp.MessageType.Warning, "opl fmt: left unchanged: " + (result.error or "the file has syntax errors")))
        return []
    whole = lsp.Range(lsp.Position(0, 0), ls.position(analysis, len(analysis.text)))
    return [lsp.TextEdit(whole, result.text)]


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
def code_action(ls: OplLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    from opl.lang.fixes import concrete_fixes

    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    start, end = ls.offset(analysis, params.range.start), ls.offset(analysis, params.range.end)
    actions = []
    for diagnostic in analysis.diagnostics_at(start, end):
        fixes = concrete_fixes(diagnostic, analysis.source)
        for fix in fixes:
            actions.append(lsp.CodeAction(fix.title, kind=lsp.CodeActionKind.QuickFix,
                                          diagnostics=[ls.diagnostic(analysis, diagnostic)],
                                          is_preferred=len(fixes) == 1, edit=ls.workspace_edit(uri, analysis, fix)))
    return actions


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(ls: OplLanguageServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    from opl.lsp.outline import symbols

    analysis = ls.analysis(params.text_document.uri)

    def shape(symbol) -> lsp.DocumentSymbol:
        return lsp.DocumentSymbol(symbol.name or "?", SYMBOL_KINDS[symbol.kind], ls.range(analysis, symbol.span),
                                  ls.range(analysis, symbol.selection), detail=symbol.detail or None,
                                  children=[shape(child) for child in symbol.children] or None)

    return [shape(symbol) for symbol in symbols(analysis)]


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: OplLanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    from opl.lsp.outline import definition as bound_at

    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    span = bound_at(analysis, ls.offset(analysis, params.position))
    return None if span is None else lsp.Location(uri, ls.range(analysis, span))


def main() -> None:
    """Serve over stdin/stdout until the client says exit."""
    logging.basicConfig(level=logging.WARNING)
    server.start_io()
