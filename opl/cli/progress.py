"""A progress bar for the long commands (``simulate``, ``calibrate``, ``backtest``).

Shown with rich on standard error, and only when that is a terminal: piped or
redirected output, ``--quiet`` and JSON on standard output get none. The commands'
library functions take a plain callback ``progress(done, total, stage=None)``; the bar
names the stage it is in (``inverting option prices``) and its count.
"""

from __future__ import annotations

import sys

__all__ = ["ProgressBar"]


class ProgressBar:
    """Context manager: a callback ``(done, total, stage=None)`` for a bar on a terminal, else ``None``.

    Parameters
    ----------
    label : str
        What the bar says before a stage is named (``simulating``).
    quiet : bool
        No bar at all (``--quiet``, or the result goes to standard output as JSON).
    """

    def __init__(self, label: str, quiet: bool = False):
        self.label = label
        self.quiet = quiet
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.quiet or not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=None)
        return self.update

    def update(self, done: int, total: int, stage: str | None = None) -> None:
        self.bar.update(self.task, completed=done, total=total, description=stage or self.label)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
