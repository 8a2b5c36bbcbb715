"""examples/jujube/data_contracts.md stays in step with the contracts and messages in the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opl.data.contracts import CONTRACTS

DOC = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "data_contracts.md"
SECTIONS = {"futures": "## Futures", "options": "## Option chains", "signals": "## Signals",
            "factors": "## Monthly factors"}


def section(text: str, kind: str) -> str:
    start = text.index(SECTIONS[kind])
    end = text.find("\n## ", start + 3)
    return text[start:end]


@pytest.mark.parametrize("kind", sorted(CONTRACTS))
def test_every_column_is_documented_in_its_section(kind):
    text = DOC.read_text(encoding="utf-8")
    body = section(text, kind)
    # Options inherit the futures bar columns, which their section refers to rather than repeats.
    inherited = section(text, "futures") if kind == "options" else ""
    for column in CONTRACTS[kind].columns:
        assert f"`{column.name}`" in body + inherited, (kind, column.name)
        row = re.search(rf"^\| `{column.name}` \|[^|]*\| (yes|no) \|", body + inherited, re.M)
        if row and kind != "options":
            assert (row.group(1) == "yes") == column.required, (kind, column.name)


@pytest.mark.parametrize("kind", ["futures", "options"])
def test_every_alias_is_documented(kind):
    text = DOC.read_text(encoding="utf-8")
    for alias in CONTRACTS[kind].aliases:
        assert f"`{alias}`" in text, alias


def test_documented_error_messages_are_the_codes(tmp_path):
    from opl.data.loaders import DataError, load_futures

    text = DOC.read_text(encoding="utf-8")
    path = tmp_path / "f.csv"
    path.write_text("trading_date,open,high,low,close,settlement\n"
                    "2024-06-03,10000,9990,10010,10000,abc\n"
                    "2024-06-03,10000,10100,9900,0,10000\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_futures(path)
    assert len(info.value.problems) == 4
    for problem in info.value.problems:
        # Numbers and quoted values vary; the wording must be the documented one.
        parts = re.split(r"('[^']*'|\d[\d,.]*)", problem.message)
        pattern = "".join(re.escape(p) if i % 2 == 0 else ".+?" for i, p in enumerate(parts))
        assert re.search(pattern, text), problem.message
