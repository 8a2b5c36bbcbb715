"""A kernel's real calls in the jujube replay, for the benchmarks that time kernels on them (issue 13).

Synthetic arguments miss what makes a kernel slow or fast on the desk's question — how many series a
book holds, how many paths hold them, which branches the paths take — so `bench_marks.py` and
`bench_steps.py` time their kernels on the calls a replay of the jujube strangle makes: in this
process (one worker, so every call is seen here), over two months. `captured` wraps the named
kernels of a module for that replay, hands every ``stride``-th call of each to ``keep`` — which copies
what it needs, since the replay goes on writing the arrays in place — and puts the kernels back
whatever happens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import opl

JUJUBE = Path(__file__).resolve().parents[1] / "examples" / "jujube" / "strangle.opl"
SETTINGS = {"sim.workers": "1", "experiment.horizon": "2"}


def warm() -> None:
    """A small replay of the same settings: every kernel the capture sees loaded (or compiled) before it."""
    opl.simulate(str(JUJUBE), paths=200, set=SETTINGS)


def captured(module, names: tuple[str, ...], keep: Callable[[str, tuple], None], *, paths: int,
             stride: int) -> None:
    """Replay the jujube strangle on ``paths`` paths with ``module``'s kernels ``names`` wrapped: every
    ``stride``-th call of each (counted per kernel, from the middle of the first stride) is passed to
    ``keep(name, args)`` before the kernel runs on it."""
    originals = {name: getattr(module, name) for name in names}
    seen = dict.fromkeys(names, 0)

    def wrapped(name: str):
        kernel = originals[name]

        def call(*args):
            seen[name] += 1
            if seen[name] % stride == stride // 2:
                keep(name, args)
            return kernel(*args)
        return call

    for name in names:
        setattr(module, name, wrapped(name))
    try:
        opl.simulate(str(JUJUBE), paths=paths, set=SETTINGS)
    finally:
        for name, kernel in originals.items():
            setattr(module, name, kernel)
