"""The Python facade: one function per stage, the same functions the ``opl`` commands call.

>>> import opl.api as api
>>> compiled = api.compile("examples/jujube/strangle.opl")            # doctest: +SKIP
>>> result = api.simulate("examples/jujube/strangle.opl", paths=200)  # doctest: +SKIP
>>> result.to_frame()                                                   # doctest: +SKIP

**Sources.** Every function that reads a strategy takes its ``source`` as

- a path: an `os.PathLike` (``pathlib.Path``), or a ``str`` of one line that ends in ``.opl`` or
  ``.json`` (the JSON leg form);
- the file's text: any other ``str`` (``path=`` then names it in diagnostics, default ``<string>``).

**Settings** are keyword-only and mirror the command line: ``paths=``, ``seed=``, ``data=``
(a data folder), ``market={...}`` (``--market``), and ``set=`` for ``--set``: a mapping
``{"experiment.horizon": 3, "size": 5}`` or ``key=value`` strings.

**Results** are typed objects with ``summary()``, ``to_dict()`` (the command's JSON),
``to_frame()`` / named frames (pandas), ``_repr_html_`` for Jupyter and ``plot_*`` methods
that return matplotlib Figures (the command's PNGs are drawn by the same functions).

**Errors.** A stage that cannot run raises an `opl.errors.OplError` (located diagnostics when
the problem is in the file; `OplError.render` prints them as ``opl check`` does). `check` is
the exception: its findings are its result (``result.report``).

**Files.** Nothing is written unless asked: `loop` writes its run folder into ``runs=``, which
it requires. Importing this module imports nothing numeric; each function imports its stage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from opl.hypotheses.report import AssumptionReport
    from opl.backtesting.result import BacktestResult
    from opl.calibration.result import CalibrationResult
    from opl.lang.checks import CheckOptions
    from opl.compiler.compiled import CompiledStrategy
    from opl.lang.frontend import CheckResult
    from opl.closedloop.run import LoopOutcome
    from opl.runtime.results.metrics import SimulationResult

__all__ = ["check", "compile", "simulate", "backtest", "calibrate", "assumptions", "loop", "is_path"]

def is_path(source) -> bool:
    """True when ``source`` names a file rather than holding its text (module docstring)."""
    if isinstance(source, os.PathLike):
        return True
    return isinstance(source, str) and "\n" not in source and source.lower().endswith((".opl", ".json"))


def _checked(source, *, path: str | None = None, options: "CheckOptions | None" = None) -> "CheckResult":
    from opl.lang.frontend import check_path, check_text

    if is_path(source):
        return check_path(source, options)
    if not isinstance(source, str):
        raise TypeError(f"a strategy is a path or the file's text, not {type(source).__name__}")
    return check_text(source, path or "<string>", options)


def _overrides(settings) -> tuple[str, ...]:
    """``set=`` as the ``--set key=value`` items the simulator reads."""
    if settings is None:
        return ()
    if isinstance(settings, str):
        return (settings,)
    if isinstance(settings, Mapping):
        return tuple(f"{key}={_setting(value)}" for key, value in settings.items())
    return tuple(str(item) for item in settings)


def _setting(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_setting(v) for v in value) + "]"
    return str(value)


# --------------------------------------------------------------------------- the stages


def check(source, path: str | None = None, options: "CheckOptions | None" = None, *, no_guard: Iterable[str] = (),
          confine: Iterable[str | os.PathLike] = ()) -> "CheckResult":
    """Parse, lower, normalise and check a strategy (``opl check``).

    Parameters
    ----------
    source
        A path or the file's text (module docstring).
    path
        The name diagnostics give text (default ``<string>``).
    options
        An `opl.lang.checks.CheckOptions`; or build one with ``no_guard`` (codes of the default guards to switch
        off, ``--no-guard``) and ``confine`` (folders the files the text names must be in, ``--confine``).

    Returns
    -------
    opl.lang.frontend.CheckResult
        ``report`` (the diagnostics), ``document`` and ``legs``; ``ok`` is False when there is an error.
        Findings are the result: a file with errors does not raise.
    """
    if options is None and (no_guard or confine):
        from opl.lang.checks import CheckOptions
        from opl.lang.fileaccess import FileAccess

        confine = tuple(confine)
        options = CheckOptions(no_guards=frozenset(no_guard), files=FileAccess.within(*confine) if confine else None)
    return _checked(source, path=path, options=options)


def compile(source, *, market: Mapping[str, Any] | None = None, path: str | None = None,
            options: "CheckOptions | None" = None) -> "CompiledStrategy":
    """Check and compile a strategy: resolved strikes and expiries, priced legs, Greeks (``opl compile``).

    ``market``: overrides of the file's market inputs (``price``, ``iv``, ``rate``, ``time``, ``support``,
    ``resistance``), as ``--market``; ``options``: the check's `opl.lang.checks.CheckOptions` (the project's
    defaults, `opl.lang.configuration.check_options`). Raises `opl.compiler.strategy.CompileError` (located)
    when it does not compile.
    """
    from opl.compiler.strategy import compiled_or_raise

    return compiled_or_raise(_checked(source, path=path, options=options), dict(market) if market else None)


def simulate(source, *, paths: int | None = None, seed: int | None = None, data=None, set=None,
             market: Mapping[str, Any] | None = None, progress: Callable[[int, int], None] | None = None,
             path: str | None = None, scheduler: str | None = None, workers: int | None = None) -> "SimulationResult":
    """Monte Carlo replay of a strategy with its experiment block (``opl simulate``).

    Parameters
    ----------
    source
        A path or the file's text.
    paths, seed
        Win over the experiment's.
    data
        A data folder the experiment's ``calibration`` fits to (``--data``), or an
        `opl.calibration.CalibrationResult`.
    set
        ``--set`` settings: ``{"experiment.horizon": 3, "size": 5}`` or ``"key=value"`` strings.
    market
        Market overrides (``--market``).
    progress
        Called with (units done, total units).
    scheduler, workers
        Run the path chunks on the Dask cluster of this scheduler address, or on ``workers`` local worker
        processes (``--scheduler``, ``--workers``; `opl.simulation.cluster`): the same numbers, bit for bit.

    Returns
    -------
    opl.runtime.results.metrics.SimulationResult
        ``summary()``, ``to_dict()`` (``--json``), ``to_frame()`` (metrics by size), ``frames()``,
        ``plot_returns()``, ``plot_drawdowns()``, ``plot_equity()``, ``plot_margin()``, ``plot_size_sweep()``.

    Raises
    ------
    opl.errors.OplError
        `opl.simulation.run.SimulationInputError` (located in the file), `opl.lang.experiment.settings.SettingsError` (a bad
        ``set``), a data or calibration error.
    """
    from opl.simulation.cluster import session
    from opl.simulation.run import RunSettings, simulate as run

    with session(scheduler, workers):
        return run(_checked(source, path=path), RunSettings(paths=paths, seed=seed, overrides=_overrides(set),
                                                            market=dict(market) if market else None, data=data,
                                                            progress=progress))


def backtest(source, *, data, set=None, market: Mapping[str, Any] | None = None, repair: bool = False,
             progress: Callable[[int, int, str], None] | None = None, path: str | None = None,
             scheduler: str | None = None, workers: int | None = None) -> "BacktestResult":
    """Replay a strategy over a market history in ``data`` (a folder with futures.csv; ``opl backtest``).

    Returns an `opl.backtesting.result.BacktestResult`: ``summary()``, ``to_dict()``, ``cycles_frame()``,
    ``trades_frame()``, ``equity_frame()``, ``plot_equity()``, ``plot_drawdowns()``, ``plot_delta()``,
    ``plot_trades()``. ``progress(done, total, stage)`` is called as the stages go. ``scheduler``/``workers``:
    the replays on a Dask cluster (`opl.simulation.cluster`), the same numbers. Raises `opl.errors.OplError`
    (a file error located in it; a data error located in the data file; an unreachable scheduler).
    """
    from opl.backtesting.run import backtest as run
    from opl.simulation.cluster import session
    from opl.simulation.run import RunSettings

    with session(scheduler, workers):
        return run(_checked(source, path=path), RunSettings(overrides=_overrides(set), market=dict(market) if market
                                                            else None, data=data, repair=repair, progress=progress))


def calibrate(data=None, *, futures=None, options=None, iv_summary=None, rate: float = 0.02,
              exercise: str | None = None, pack: str | None = None, criterion: str = "bic",
              jump_threshold: float = 4.5, window: int = 21, limit: float | None = None, tick: float = 0.0,
              repair: bool = False, progress: Callable[[int, int, str], None] | None = None) -> "CalibrationResult":
    """Fit the price model and the implied-volatility rule to data (``opl calibrate``).

    Give ``data`` (a folder: futures.csv, optional options.csv, iv_summary.csv) or ``futures`` (a path or a
    DataFrame) with optional ``options`` and ``iv_summary``. The result has ``summary()``, ``to_dict()``,
    ``block_text()`` (the experiment block). ``progress(done, total, stage)`` is called as the stages go.
    Raises `opl.errors.OplError` (data or calibration errors).
    """
    from opl.calibration import calibrate as run, calibrate_dir
    from opl.data.loaders import load

    if (data is None) == (futures is None):
        raise TypeError("give either data (a folder) or futures")
    settings = dict(rate=rate, style=exercise, pack=pack, criterion=criterion, jump_threshold=jump_threshold,
                    window_days=window, limit=limit, tick=tick, progress=progress)
    if data is not None:
        return calibrate_dir(data, repair=repair, **settings)
    if isinstance(futures, (str, os.PathLike)):
        if progress is not None:
            progress(0, 1, f"reading {futures}")
        futures = load(futures, kind="futures", repair=repair, limit=limit, tick=tick)
    if isinstance(options, (str, os.PathLike)):
        if progress is not None:
            progress(0, 1, f"reading {options}")
        options = load(options, kind="options", repair=repair)
    if isinstance(iv_summary, (str, os.PathLike)):
        from opl.data.iv_summary import load_iv_summary

        iv_summary = load_iv_summary(iv_summary)
    return run(futures=futures, options=options, iv_summary=iv_summary, **settings)


def assumptions(data=None, *, futures=None, signals=None, factors=None, strategy=None, paths: int | None = None,
                seed: int | None = None, calibrate: bool = True, alpha: float = 0.05, correction: str = "holm",
                horizon: int = 21, flat_band: float = 0.03, claim: float = 0.90, power: float = 0.80,
                limit: float | None = None, tick: float = 0.0, repair: bool = False) -> "AssumptionReport":
    """Test the plan's assumptions against data (``opl assumptions``): random walk, factors, the signals' hit
    rate and, with ``strategy`` (a path or text), the strategy's stress scenarios through the simulator.

    Give ``data`` (a folder with futures.csv and optional signals.csv, factors.csv) or ``futures`` (with
    optional ``signals`` and ``factors``), each a path. Returns an `opl.hypotheses.report.AssumptionReport`
    (``summary()``, ``to_dict()``). Raises `opl.errors.OplError`.
    """
    from opl.hypotheses.report import run_assumptions
    from opl.data.loaders import load

    if (data is None) == (futures is None):
        raise TypeError("give either data (a folder) or futures")
    if data is not None:
        found = {kind: Path(data) / f"{kind}.csv" for kind in ("futures", "signals", "factors")}
        futures, signals, factors = (p if p.is_file() else None for p in found.values())
        if futures is None:
            raise FileNotFoundError(2, "no futures.csv in the data folder", str(found["futures"]))
    loaded = {kind: load(p, kind=kind, repair=repair, **({"limit": limit, "tick": tick} if kind == "futures" else {}))
              for kind, p in (("futures", futures), ("signals", signals), ("factors", factors)) if p is not None}
    stress = None
    if strategy is not None:
        from opl.hypotheses.stress import stress_test
        from opl.calibration import calibrate as fit

        calibration = fit(futures=loaded["futures"], limit=limit, tick=tick) if calibrate else None
        stress = stress_test(_checked(strategy), paths=paths, seed=seed, calibration=calibration)
    from opl.errors import OplError

    try:
        return run_assumptions(futures=loaded["futures"], signals=loaded.get("signals"),
                               factors=loaded.get("factors"), alpha=alpha, horizon=horizon, flat_band=flat_band,
                               claim=claim, power=power, limit=limit, tick=tick, correction=correction, stress=stress)
    except OplError:  # the data load but cannot be tested (constant prices): a located data error
        raise
    except ValueError as error:  # a test that cannot run on these data: said of the futures file
        raise OplError(f"{loaded['futures'].file}: {error}") from None


def loop(source, *, runs, max_iter: int | None = None, proposer="builtin", paths: int | None = None,
         holdout_paths: int | None = None, seed: int | None = None, data=None, repair: bool = False, set=None,
         minutes: float | None = None, on_event: Callable[[str, dict], None] | None = None,
         scheduler: str | None = None, workers: int | None = None, batch: int | None = None) -> "LoopOutcome":
    """Improve a strategy in a closed loop (``opl loop``): propose, evaluate, criticise, revise; then the
    hold-out re-measure and the final report.

    Parameters
    ----------
    source
        A path or the file's text (text is written to ``runs``/strategy.opl, the file the run starts from).
    runs
        The folder the run folder is made in (required: the loop's archive is its record).
    max_iter
        Proposals after the baseline (default: the file's ``budget(iterations=…)``, else 20).
    proposer
        ``"builtin"`` (offline, deterministic) or any object with ``name`` and ``propose``
        (`opl.closedloop.proposal.Proposer`, e.g. `opl.closedloop.llm.OpenAIProposer`).
    paths, holdout_paths, seed, data, repair, set, minutes
        As ``opl loop``'s ``--paths``, ``--holdout-paths`` (default: theirs, `LoopSettings`), ``--seed``,
        ``--data`` (a folder or ``"synth"``), ``--repair``, ``--set``, ``--minutes``.
    on_event
        Called with (kind, payload) as the loop advances (``iteration`` events carry the record).
    scheduler, workers, batch
        ``--scheduler``, ``--workers``, ``--batch``: each round's ``batch`` candidates (default: the
        cluster's workers, else 1) evaluated side by side on a Dask cluster (`opl.simulation.cluster`).

    Returns
    -------
    opl.closedloop.run.LoopOutcome
        ``answer``, ``stop``, ``records``; ``summary()``, ``to_frame()`` (one row per iteration).
    """
    from opl.closedloop.run import LoopSettings, run_loop, start_run

    if is_path(source):
        file = Path(source)
    else:
        Path(runs).mkdir(parents=True, exist_ok=True)
        file = Path(runs) / "strategy.opl"
        file.write_text(source, encoding="utf-8")
    if proposer == "builtin":
        from opl.closedloop.builtin import BuiltinProposer

        proposer = BuiltinProposer()
    flags = {"max_iterations": max_iter, "minutes": minutes, "tokens": None, "cost": None, "token_price": None,
             "converge_rounds": None, "min_gain": None}
    from opl.simulation.cluster import session

    defaults = LoopSettings()
    with session(scheduler, workers) as cluster:
        settings = LoopSettings(paths=defaults.paths if paths is None else paths, seed=seed, data=data,
                                repair=repair, overrides=_overrides(set),
                                holdout_paths=defaults.holdout_paths if holdout_paths is None else holdout_paths,
                                batch=batch or (cluster.workers if cluster is not None else 1))
        config = proposer.config() if hasattr(proposer, "config") else {"proposer": proposer.name}
        archive = start_run(file, runs, settings, rules_flags=flags, proposer_config=config)
        return run_loop(archive, proposer, on_event=on_event, cluster=cluster)
