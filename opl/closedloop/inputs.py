"""The data stage of a run (``opl loop --data synth|DIR``): data → assumption tests → calibration.

``--data synth`` writes the seeded synthetic jujube dataset (`opl.data.synth`, seed 1, six years, with
option chains and ``truth.json``) into the run's ``data/`` (in a forked process while the tests' modules are
imported here; nothing reads the files before they are whole); ``--data DIR`` reads the user's folder, which
must hold ``futures.csv`` and may hold ``signals.csv``, ``factors.csv``, ``options.csv`` and ``iv_summary.csv``
(contracts in ``data_contracts.md``) — or raw exchange/vendor files, which `opl.data.importer` imports into the
run's ``data/`` first (``data/import_log.md`` says every mapping, derivation and repair). Every file is validated by `opl.data.loaders`; a broken file stops the
run before any simulation with each problem located (``path:line: column: message``); ``--repair`` makes
the loaders' documented repairs (each one logged in the assumption report).

The assumption tests (`opl.hypotheses`) run once, claiming the initial file's hit rate (else 90%), and
write ``assumptions/`` (JSON, markdown, plots). The calibration (`opl.calibration.calibrate_dir`, when that
package is installed; in a forked process beside the tests, which it does not depend on) writes
``calibration/``. Their findings — the ``facts`` — go to the critic, which turns them into design fixes (the data's hit rate and its lower bound as a sensitivity, the calibrated
model), and into the final report. ``facts.json`` keeps them so ``--resume`` does not recompute them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable

from opl.data.importer import has_data_files, is_canonical
from opl.closedloop.archive import RunArchive
from opl.closedloop.forked import Beside, beside
from opl.errors import EXIT_FINDINGS, EXIT_USAGE, OplError

__all__ = ["DataInputError", "prepare_data", "DATA_FILES"]

DATA_FILES = {"futures": "futures.csv", "signals": "signals.csv", "factors": "factors.csv", "options": "options.csv"}


class DataInputError(OplError, ValueError):
    """The data folder is missing or a file breaks its contract; ``problems`` are located lines."""

    def __init__(self, message: str, problems: list[str] | None = None, *, usage: bool = False):
        super().__init__(message)
        self.problems = problems or []
        self.usage = usage  # a missing folder or file (exit 2) rather than a file breaking its contract (exit 1)
        self.exit_code = EXIT_USAGE if usage else EXIT_FINDINGS

    def lines(self) -> list[str]:
        return [f"error: {problem}" for problem in self.problems] + super().lines()


def _pack_limits(initial_text: str) -> tuple[float | None, float]:
    """Daily limit and futures tick of the file's rule pack (sharper roll detection), else (None, 0)."""
    try:
        from opl.lang.frontend import check_text
        from opl.compiler.strategy import compile_checked
        from opl.runtime.market.rules import load_pack

        compiled = compile_checked(check_text(initial_text), None)
        pack = load_pack(compiled.strategy.underlying.rule_pack)
        tick = pack.underlying.tick[0].step if pack.underlying.tick else 0.0
        return pack.underlying.daily_limit, float(tick)
    except Exception:  # noqa: BLE001 - only a refinement of roll detection; the defaults are documented
        return None, 0.0


def prepare_data(archive: RunArchive, source: str, *, initial_text: str, claim: float | None,
                 repair: bool = False, progress=None, meanwhile: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the data stage into ``archive`` (once; later calls read ``facts.json``) and return the facts.

    ``meanwhile``: work of this process that needs none of the facts, done once the assumption tests are
    written and before the calibration forked beside them is waited for (the loop loads its simulation engine
    there, which its baseline needs next: on the jujube data the calibration outlasts the tests by ~0.25 s).

    Raises
    ------
    DataInputError
        ``source`` is not ``synth`` nor a folder with ``futures.csv``, or a file breaks its contract.
    """
    if archive.path("facts.json").is_file():
        return archive.read_json("facts.json")
    note = progress or (lambda stage: None)
    folder = archive.path("data")
    writing = None
    if source == "synth":
        note("synthetic data")
        # Written in a forked process while this one imports the tests' modules below (~0.6 s beside ~1 s):
        # both were the stage's first seconds on one core. The files are the same wherever they are written.
        writing = beside(_synthetic, folder)
        origin = {"kind": "synth", "seed": 1, "years": 6, "folder": "data"}
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise DataInputError(f"--data {source}: not a folder (give `synth` or a folder with futures.csv)",
                                 usage=True)
        origin = {"kind": "folder", "folder": os.path.abspath(folder)}
        if has_data_files(folder) and not is_canonical(folder):
            note("import of raw files")
            folder = _import(archive, folder, initial_text)
            origin = {"kind": "imported", "source": os.path.abspath(source), "folder": str(folder),
                      "log": str(folder / "import_log.md")}
        if not (folder / DATA_FILES["futures"]).is_file():
            raise DataInputError(f"--data {source}: no futures series ({DATA_FILES['futures']}, or bars among the "
                                 "raw files)", usage=True)
    note("assumption tests")
    # The calibration reads the same files but nothing the tests make: it runs in a forked process meanwhile
    # (the stage was one core's work, ~3.5 s of tests then ~1.8 s of calibration on the jujube data). The tests'
    # modules are imported first, so that process inherits what it shares with them (~700 modules: scipy.stats,
    # arch) instead of importing them again.
    try:
        importlib.import_module("opl.hypotheses.report")
        if writing is not None:
            writing.result()
    finally:  # (closed whatever happens: an open pool keeps this process's objects frozen, `forkpool`)
        if writing is not None:
            writing.close()
    calibrating = beside(_calibrated, folder, repair)
    try:
        assumptions = _assumptions(archive, folder, initial_text=initial_text, claim=claim, repair=repair)
        if meanwhile is not None:
            meanwhile()
        calibration = _calibration(archive, note, calibrating)
    finally:
        calibrating.close()
    facts = {"origin": origin, "assumptions": assumptions, "calibration": calibration,
             "untested": untested(folder, claim=claim)}
    archive.write_json("facts.json", facts)
    return facts


def _synthetic(folder: Path) -> None:
    """The seeded synthetic jujube dataset of ``--data synth`` written into ``folder``."""
    from opl.data.synth import synthesize

    synthesize(seed=1, years=6).write(folder)


def _import(archive: RunArchive, source: Path, initial_text: str) -> Path:
    """The raw files of ``source`` imported (`opl.data.importer`) into the run's ``data/``, logged there."""
    from opl.data.importer import import_files
    from opl.data.loaders import DataError
    from opl.runtime.market.rules import RulePackError

    target = archive.path("data")
    try:
        import_files([source], target, pack=_pack_name(initial_text))
    except DataError as error:
        raise DataInputError(f"--data {source}: raw files that `opl data import` cannot map",
                             [str(p) for p in error.problems]) from None
    except RulePackError as error:
        raise DataInputError(f"--data {source}: {error}") from None
    except OSError as error:
        raise DataInputError(f"--data {source}: {error.strerror or error}", usage=True) from None
    return target


def untested(folder: Path, *, claim: float | None) -> list[str]:
    """What the data in ``folder`` cannot test, in words for the first lines of the loop's output and report."""
    names = {p.stem for p in Path(folder).iterdir() if p.is_file()}
    out = []
    if "signals" not in names:
        out.append(f"no signals: the direction hit rate ({claim or 0.90:.0%}) is assumed, not measured")
    if "options" not in names and "iv_summary" in names:
        out.append("no option chain: implied volatility comes from the IV summary (its level and dispersion; the "
                   "smile keeps the simulator's defaults), and options are never marked at market prices")
    elif "options" not in names:
        out.append("no option data: implied volatility is the price model's, with no market check")
    if "factors" not in names:
        out.append("no factors: the supply/demand factor relation is not tested")
    return out


def _pack_name(initial_text: str) -> str | None:
    try:
        from opl.lang.frontend import check_text
        from opl.compiler.strategy import compile_checked

        return compile_checked(check_text(initial_text), None).strategy.underlying.rule_pack
    except Exception:  # noqa: BLE001 - the baseline reports a bad file; the import then runs without a pack
        return None


def _load(folder: Path, kind: str, **kwargs):
    from opl.data.loaders import DataError, load, shown

    path = folder / DATA_FILES[kind]
    if not path.is_file():
        return None
    try:
        return load(path, kind=kind, **kwargs)
    except DataError as error:
        raise DataInputError(f"{path}: not a valid {kind} file", shown(error.problems)) from None
    except OSError as error:
        raise DataInputError(f"{path}: {error.strerror or error}", usage=True) from None


def _assumptions(archive: RunArchive, folder: Path, *, initial_text: str, claim: float | None,
                 repair: bool) -> dict[str, Any]:
    from opl.hypotheses.report import run_assumptions
    from opl.data.loaders import DataError, shown

    limit, tick = _pack_limits(initial_text)
    futures = _load(folder, "futures", limit=limit, tick=tick, repair=repair)
    signals, factors = _load(folder, "signals", repair=repair), _load(folder, "factors", repair=repair)
    try:
        report = run_assumptions(futures=futures, signals=signals, factors=factors, limit=limit, tick=tick,
                                 claim=claim or 0.90)
    except DataError as error:  # the data load but cannot be tested (constant prices)
        raise DataInputError(f"{folder / DATA_FILES['futures']}: cannot be tested", shown(error.problems)) from None
    except ValueError as error:
        raise DataInputError(f"{folder / DATA_FILES['futures']}: {error}") from None
    report.write_markdown(archive.path("assumptions"))  # creates the folder
    report.write_json(archive.path("assumptions/assumptions.json"))
    data = report.to_dict()
    data["summary"] = report.summary()
    return data


def _calibrated(folder: Path, repair: bool) -> dict[str, Any] | None:
    """`opl.calibration.calibrate_dir` of ``folder`` as the facts keep it; None when the package does not provide
    it (the loop then runs uncalibrated)."""
    try:
        module = importlib.import_module("opl.calibration")
    except ImportError:
        return None
    calibrate_dir = getattr(module, "calibrate_dir", None)
    if calibrate_dir is None:
        return None
    try:
        result = calibrate_dir(folder, repair=repair)
    except (ValueError, OSError) as error:
        return {"error": str(error), "experiment_lines": []}
    return {"summary": result.summary(), "experiment_lines": list(result.experiment_lines()),
            "result": result.to_dict()}


def _calibration(archive: RunArchive, note, calibrating: Beside) -> dict[str, Any] | None:
    """The calibration's facts (`_calibrated`, started beside the assumption tests), written into ``archive``'s
    ``calibration/``."""
    out = calibrating.result()
    if out is None:
        return None
    note("calibration")
    if "result" not in out:
        return out
    archive.write_json("calibration/calibration.json", out["result"])
    archive.write_text("calibration/calibration.md", "# Calibration\n\n```\n" + out["summary"].rstrip() + "\n```\n\n"
                       "Experiment lines:\n\n```\n" + "\n".join(out["experiment_lines"]) + "\n```\n")
    return out
