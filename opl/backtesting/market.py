"""The market a backtest replays: a data directory read against the data contracts.

``--data DIR`` holds the files `opl data synth` writes (examples/jujube/data_contracts.md):

``futures.csv``  required: daily bars of the underlying — a futures series (one contract,
                 or the exchange's continuous main contract) or an ETF;
``options.csv``  optional: the daily option chains (settlements to mark at);
``signals.csv``  optional: the spot team's support, resistance and direction views.

``--data`` may also name a futures file alone (the exchange's continuous series in
``../shared/data/jujube``): no chain, no views.

Each file is validated by `opl.data.loaders` (a bad cell is a `DataError` naming file,
row and column); with ``repair=True`` the loaders' documented repairs are made and listed
in the notes. Rolls are found by `opl.data.rolls.detect_rolls` (the ``symbol`` column
when there is one, else the jump rule with the rule pack's daily limit), and every
session is labelled with its *contract*: a backtest's price path never runs across a roll.
The chain's ``contract_multiplier`` must be the rule pack's (else a chain of another
product: an error at the row), except for a dividend-adjusted contract of a chain with
contract codes: a multiplier up to :data:`MAX_ADJUSTMENT` times the pack's (SSE: 10,220
after an ex-dividend date) is accepted, and such a contract is carried by its code through
its life (`opl.backtesting.cycles`). Options on a contract the futures series does not hold
that day cannot be marked against their underlying; the cycles never pick them, and the
backtest's notes count them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opl.data.loaders import DataError, Problem, Repair, load
from opl.data.rolls import Rolls, detect_rolls
from opl.data.sessions import calendar_problems
from opl.runtime.engine.ledger import tick_size

__all__ = ["MarketData", "load_market", "FILES"]

FILES = {"futures": "futures.csv", "options": "options.csv", "signals": "signals.csv"}


@dataclass
class MarketData:
    """Validated frames of one data directory, with each session's contract."""

    directory: str
    futures: pd.DataFrame  # trading_date, settlement, ..., contract (str)
    options: pd.DataFrame | None
    signals: pd.DataFrame | None
    rolls: Rolls
    files: dict[str, str]
    repairs: list[Repair] = field(default_factory=list)
    option_lines: np.ndarray | None = None
    calendar_notes: list[str] = field(default_factory=list)  # dates before the pack's calendar (kept, stated)
    inputs: dict = field(default_factory=dict)  # per file: `opl.data.loaders.LoadResult.describe`

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.futures["trading_date"])

    def notes(self) -> list[str]:
        out = [f"rolls: {self.rolls.count} in the futures series ({self.rolls.method} rule); no price path crosses "
               "one"] + self.calendar_notes
        if self.repairs:
            shown = "; ".join(str(r) for r in self.repairs[:3])
            more = f" and {len(self.repairs) - 3} more" if len(self.repairs) > 3 else ""
            out.append(f"{len(self.repairs)} data repair(s) made (--repair): {shown}{more}")
        return out


def _path(directory: Path, kind: str) -> Path | None:
    for suffix in (".csv", ".parquet", ".pq"):
        candidate = directory / (kind + suffix)
        if candidate.exists():
            return candidate
    return None


def load_market(directory: str | os.PathLike, *, pack, repair: bool = False) -> MarketData:
    """Read ``futures``, ``options`` and ``signals`` from ``directory`` (module docstring).

    Raises
    ------
    DataError
        A file breaks its contract, or the files contradict each other (located).
    FileNotFoundError
        The directory or its ``futures`` file is missing.
    """
    root = Path(directory)
    if root.is_file():  # a lone futures series (e.g. an exchange's continuous contract), no chain, no views
        futures_path, root = root, None
    elif not root.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory or file")
    else:
        futures_path = _path(root, "futures")
    if futures_path is None:
        raise FileNotFoundError(f"{directory}: no futures.csv (the underlying's daily bars; see "
                                "examples/jujube/data_contracts.md)")
    fut = load(futures_path, kind="futures", repair=repair)
    past, calendar_notes = calendar_problems(fut.frame["trading_date"], pack, file=str(futures_path),
                                             lines=fut.lines, within=False)
    if past:  # expiries and day counts past the listed holidays would be silently off
        raise DataError(past)
    repairs = list(fut.repairs)
    frame = fut.frame.reset_index(drop=True)
    limit = pack.underlying.daily_limit
    tick = tick_size(pack.underlying.tick, float(frame["settlement"].median())) if len(frame) else 0.0
    rolls = detect_rolls(frame, limit=limit, tick=tick)
    if "symbol" in frame.columns:
        contract = frame["symbol"].astype(str).to_numpy()
    else:
        # No symbols: number the contracts between detected rolls.
        contract = np.array([f"contract {i + 1}" for i in np.cumsum(rolls.mask)], dtype=object)
    frame["contract"] = contract
    files = {"futures": str(futures_path)}
    inputs = {"futures": fut.describe()}
    options = lines = None
    opt_path = _path(root, "options") if root is not None else None
    if opt_path is not None:
        opt = load(opt_path, kind="options", repair=repair)
        repairs += opt.repairs
        options, lines = opt.frame.reset_index(drop=True), np.asarray(opt.lines)
        files["options"] = str(opt_path)
        inputs["options"] = opt.describe()
        _check_chain(options, lines, str(opt_path), pack)
    signals = None
    sig_path = _path(root, "signals") if root is not None else None
    if sig_path is not None:
        sig = load(sig_path, kind="signals", repair=repair)
        repairs += sig.repairs
        signals = sig.frame.reset_index(drop=True)
        files["signals"] = str(sig_path)
        inputs["signals"] = sig.describe()
    return MarketData(directory=str(directory), futures=frame, options=options, signals=signals, rolls=rolls,
                      files=files, repairs=repairs, option_lines=lines, calendar_notes=calendar_notes,
                      inputs=inputs)


MAX_ADJUSTMENT = 1.25  # dividend adjustments raise the multiplier by the dividend yield: a few percent


def _check_chain(options: pd.DataFrame, lines: np.ndarray, file: str, pack) -> None:
    problems = []
    mult = options["contract_multiplier"].to_numpy(dtype=float)
    standard = np.abs(mult - pack.option.multiplier) <= 1e-9 * pack.option.multiplier
    if "symbol" in options.columns:
        ratio = mult / pack.option.multiplier
        standard |= (ratio > 1.0) & (ratio <= MAX_ADJUSTMENT)
    wrong = np.flatnonzero(~standard)
    for i in wrong[:20]:
        problems.append(Problem(file, int(lines[i]), "contract_multiplier",
                                f"{mult[i]:g} is not the rule pack's multiplier {pack.option.multiplier:g} "
                                f"({pack.name}): a chain of another product?"))
    if problems:
        raise DataError(problems)
