"""The compact language reference sent to models: complete where it matters, bounded, its example clean."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from opl.lang.codes import CODES
from opl.lang.frontend import check_text
from opl.closedloop import reference
from opl.closedloop.reference import (
    MAX_REFERENCE_CHARS,
    REQUIRED_SECTIONS,
    compact_reference,
    language_reference,
    split_sections,
)


def _readme() -> str:
    return resources.files("opl.grammar").joinpath("README.md").read_text(encoding="utf-8")


def test_within_bound_and_shorter_than_the_full_reference():
    text = language_reference()
    assert len(text) <= MAX_REFERENCE_CHARS
    assert len(text) < len(_readme())


@pytest.mark.parametrize("title", REQUIRED_SECTIONS)
def test_key_sections_present(title):
    headings = [line for line in language_reference().splitlines() if line.startswith("##")]
    assert any(title in h for h in headings), title


def test_tooling_sections_and_generator_markers_left_out():
    text = language_reference()
    assert "Canonical form" not in text
    assert "Normalisation (spec" not in text
    assert "<!--" not in text


def test_every_diagnostic_code_listed():
    text = language_reference()
    missing = [code for code in CODES if f"`{code}`" not in text]
    assert not missing


def test_vocabularies_listed():
    text = language_reference()
    for name in ("pnl_percent(", "days_left(", "hedge_gamma(", "vol_up(", "budget(", "IronCondor(",
                 "median_monthly_return", "take_delivery(", "steps_per_day"):
        assert name in text, name


def test_embedded_complete_files_check_clean():
    blocks = re.findall(r"```opl\n(.*?)```", language_reference(), flags=re.S)
    assert blocks, "the reference embeds a complete example"
    for block in blocks:
        result = check_text(block, "example.opl")
        assert result.ok, [d.code for d in result.report.diagnostics]
        assert block.startswith("opl-lang 1.0")


def test_headings_in_code_fences_are_not_sections():
    markdown = "# T\n\n## 1. A\n```\n## not a heading\n```\n### 1.1 B\ntext\n## 2. C\n"
    titles = [s.title for s in split_sections(markdown)]
    assert titles == ["T", "A", "B", "C"]


def test_omitted_section_takes_its_subsections():
    required = "\n".join(f"## {i}. {t}\nbody {i}\n" for i, t in enumerate(REQUIRED_SECTIONS))
    markdown = f"# T\n{required}## 90. Canonical form\ngone\n### 90.1 Sub\nalso gone\n## 91. Kept\nstays\n"
    text = compact_reference(markdown)
    assert "gone" not in text and "Sub" not in text
    assert "stays" in text


def test_missing_required_section_is_an_error():
    with pytest.raises(ValueError, match="Triggers"):
        compact_reference(_readme().replace("### 7.1 Triggers", "### 7.1 Trig"))


def test_oversized_reference_refused(monkeypatch):
    monkeypatch.setattr(reference, "MAX_REFERENCE_CHARS", 1000)
    language_reference.cache_clear()
    try:
        with pytest.raises(ValueError, match="more than the bound"):
            language_reference()
    finally:
        language_reference.cache_clear()
