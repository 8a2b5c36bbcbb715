"""What a run writes down: JSON-safe values and the versions of the packages that produced them."""

from __future__ import annotations

import functools
import math
import sys
from typing import Any

import numpy as np

#: The packages whose versions every result records (``python`` is added).
PACKAGES = ("opl", "numpy", "scipy", "pandas", "arch", "statsmodels", "openai")


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None, numpy scalars as plain numbers, dates as text.

    Containers are copied (tuples become lists); pandas timestamps and periods become ``str``.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    pd = sys.modules.get("pandas")  # only a caller that has pandas loaded can hand us its types
    if pd is not None and isinstance(value, (pd.Timestamp, pd.Period)):
        return str(value)
    return value


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """``{"python": ..., name: version or None}`` for each installed package of ``names`` (a new dict each call)."""
    return dict(_versions(tuple(names)))


@functools.lru_cache(maxsize=8)
def _versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """`package_versions`, looked up once a process: every simulation result records them, and each lookup
    scans the installed distributions' metadata (~20 ms; `opl loop` asked ~70 times a run)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # a source tree that was never installed
            out[name] = None
    return out
