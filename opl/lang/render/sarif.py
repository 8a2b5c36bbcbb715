"""SARIF 2.1.0 output for code-scanning tools (GitHub code scanning, IDE viewers).

One run, tool ``opl``; the rules are the codes that occur, described from the code
table; each diagnostic is a result located by a region. Columns are Python characters,
i.e. Unicode code points, which the run declares with ``columnKind`` so that viewers do
not read them as UTF-16 units (they differ past the Basic Multilingual Plane). A result
carries ``fixes`` when the finding has a concrete fix (`opl.lang.fixes`): the same edits the
language server offers as code actions.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from opl.lang.codes import CODES, explain
from opl.lang.diagnostics import Diagnostic, FileReport, Fix
from opl.lang.source import Span

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"


def _package_metadata() -> tuple[str | None, str | None]:
    """(version, project URL) of the installed ``opl`` distribution, when known.

    The URL is read from the package metadata rather than written here so that SARIF
    never points viewers at an address the project has not declared.
    """
    from importlib import metadata

    try:
        meta = metadata.metadata("opl")
    except metadata.PackageNotFoundError:
        return None, None
    urls = [entry.split(",", 1)[-1].strip() for entry in meta.get_all("Project-URL") or []]
    home = meta.get("Home-page")
    if home and home != "UNKNOWN":
        urls.insert(0, home)
    return meta.get("Version"), next((u for u in urls if u.startswith(("https://", "http://"))), None)


def _uri(path: str) -> str:
    """A relative URI reference for a path as the user gave it."""
    return quote(path.replace("\\", "/"), safe="/:")


def _rule(code: str) -> dict[str, Any]:
    entry = CODES[code]
    return {
        "id": code,
        "shortDescription": {"text": entry.title},
        "fullDescription": {"text": entry.explanation},
        "help": {"text": explain(code)},
        "defaultConfiguration": {"level": entry.severity},
    }


def _region(span: Span) -> dict[str, int]:
    return {
        "startLine": span.line,
        "startColumn": max(span.column, 1),
        "endLine": max(span.end_line, span.line),
        "endColumn": max(span.end_column, 1),
    }


def _fix(path: str, fix: Fix) -> dict[str, Any]:
    """A SARIF fix: the same replacements `opl lsp` offers as a code action (`opl.lang.fixes`)."""
    replacements = [{"deletedRegion": _region(edit.span), "insertedContent": {"text": edit.text}}
                    for edit in fix.edits]
    return {"description": {"text": fix.title},
            "artifactChanges": [{"artifactLocation": {"uri": _uri(path)}, "replacements": replacements}]}


def _result(report: FileReport, diagnostic: Diagnostic, rule_index: int) -> dict[str, Any]:
    from opl.lang.fixes import concrete_fixes

    path, span = report.path, diagnostic.span
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(path)}}
    if span.line >= 1:  # SARIF regions are 1-based; line 0 means "somewhere in the file"
        physical["region"] = _region(span)
    result: dict[str, Any] = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": diagnostic.severity,
        "message": {"text": diagnostic.message},
        "locations": [{"physicalLocation": physical}],
    }
    fixes = concrete_fixes(diagnostic, report.source)
    if fixes:
        result["fixes"] = [_fix(path, fix) for fix in fixes]
    extras = {
        key: value
        for key, value in (("label", diagnostic.label), ("help", diagnostic.help), ("notes", list(diagnostic.notes)))
        if value
    }
    if extras:
        result["properties"] = extras
    return result


def sarif_log(reports: list[FileReport]) -> dict[str, Any]:
    """The SARIF log as a dict.

    Parameters
    ----------
    reports
        The reports to convert, in order.

    Returns
    -------
    dict
        A SARIF 2.1.0 log with one run; ``results`` is empty when nothing was found.
    """
    found = [(report, d) for report in reports for d in report.sorted()]
    codes = sorted({d.code for _, d in found})
    index = {code: i for i, code in enumerate(codes)}
    version, home = _package_metadata()
    driver: dict[str, Any] = {"name": "opl"}
    if version:
        driver["version"] = version
    if home:
        driver["informationUri"] = home
    driver["rules"] = [_rule(code) for code in codes]
    return {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "columnKind": "unicodeCodePoints",
                "results": [_result(report, d, index[d.code]) for report, d in found],
            }
        ],
    }


def render(reports: list[FileReport], *, color: bool = False) -> str:
    """The SARIF log as JSON text, indented by 2, with a final newline.

    Parameters
    ----------
    reports
        The reports to convert.
    color
        Ignored.

    Returns
    -------
    str
        The SARIF document.
    """
    return json.dumps(sarif_log(reports), indent=2, ensure_ascii=False) + "\n"
