"""Packaging: every package ships, the grammar and data files are inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"opl": "opl", "opl.grammar": "grammar", "opl.runtime": "runtime", "opl.strategies": "strategies"}


def _declared() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_declared():
    found = set()
    for package, folder in MAPPED.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            found.add(".".join((package,) + relative))
    assert found == _declared()


def test_wheel_contains_grammar_packs_and_strategies(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("opl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "opl/grammar/opl.lark" in names and "opl/grammar/README.md" in names
    assert "opl/lang/parser.py" in names and "opl/runtime/__init__.py" in names
    assert any(n.startswith("opl/strategies/") and n.endswith(".opl") for n in names)
