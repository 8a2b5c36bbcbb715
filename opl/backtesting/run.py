"""`opl backtest`: file → check → compile → data → cycles → (walk-forward band) → replay → result.

The backtest replays the strategy over the history in ``--data DIR`` with the
simulator's own replay (`opl.runtime.engine.replay`): the same strategy object
(`opl.simulation.run`'s translation of the file), the same hedge, margin, exercise, cost and
trigger rules, the same order of operations — only the months are given instead of drawn
(`opl.runtime.engine.historical`, `opl.backtesting.cycles`). Settings come from the file and
``--set`` exactly as for `opl simulate` (`opl.lang.experiment.settings`); the settings that describe a
simulation (paths, seed, horizon, price model, days per month, chunk) have no meaning
here and are listed in the notes when given.

With a ``delta_band`` exit trigger the band is fitted walk-forward
(`opl.backtesting.walkforward`) and the result holds the fits; the same history is also
replayed without the band (``baseline``), so its effect is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from opl.simulation.run import RunInputError

__all__ = ["backtest", "backtest_file", "prepare", "prepare_checked", "run_prepared", "Prepared",
           "BacktestInputError"]

#: Below this many sessions (a quarter) annualised figures are flagged as saying little.
SHORT_HISTORY = 63

_SIMULATION_ONLY = ("experiment.paths", "experiment.seed", "experiment.steps_per_day", "experiment.horizon",
                    "experiment.hit_rate", "experiment.sizes", "experiment.model", "model.", "sim.days_per_month",
                    "sim.chunk", "sim.exact_american")


class BacktestInputError(RunInputError):
    """The file has errors, or settings a backtest cannot run (located ``diagnostics``)."""


def _band_calls(doc):
    from opl.lang.deltaband import delta_band_calls

    items = tuple(doc.exit.triggers) + tuple(doc.exit.appended)
    return [(item, delta_band_calls(item)) for item in items]


def _strategy_with_band(checked, compiled, settings, notes):
    """The simulator's strategy object, with the items that hold a ``delta_band`` compiled for a history."""
    from opl.simulation.conditionforms import lower_condition
    from opl.runtime.engine.triggers import UnsupportedCondition, compile_condition
    from opl.lang.experiment.settings import SettingsError
    from opl.simulation.run import runtime_strategy

    doc = checked.document
    banded = [item for item, calls in _band_calls(doc) if calls]
    plain_exit = replace(doc.exit, triggers=[v for v in doc.exit.triggers if v not in banded],
                         appended=[v for v in doc.exit.appended if v not in banded])
    plain = replace(checked, document=replace(doc, exit=plain_exit))
    strategy = runtime_strategy(plain, compiled, settings, notes)
    extra = []
    for item in banded:
        try:
            extra.append(compile_condition(lower_condition(item, history=True)))
        except UnsupportedCondition as error:
            raise SettingsError(str(error), span=error.span or getattr(item, "span", None), code="E105",
                                help="supported triggers are listed in grammar/README.md §7.1") from None
    return replace(strategy, exit_triggers=tuple(strategy.exit_triggers) + tuple(extra))


def _band_spec(doc):
    from opl.lang.experiment.settings import SettingsError

    calls = [call for _, found in _band_calls(doc) for call in found]
    if not calls:
        return None
    specs = [call.spec for call in calls]
    for call, spec in zip(calls[1:], specs[1:]):
        if spec != specs[0]:
            raise SettingsError("a strategy has one delta band: give every `delta_band` the same arguments",
                                span=call.span, code="E105", help=f"the first is `{specs[0].text()}`")
    return specs[0]


def _equity_dates(futures, cycles):
    """A replay's equity dates: the first cycle's opening session, then every cycle's later sessions."""
    import pandas as pd

    days = futures["trading_date"]
    return pd.DatetimeIndex([days.iloc[cycles[0].start]]
                            + [d for c in cycles for d in days.iloc[c.start + 1:c.end + 1]])


def _reopen_note(reopened) -> str:
    """What re-opening after band closes did (`opl.backtesting.reopen`)."""
    text = (f"reopen=next_day: {reopened.reopens} position(s) re-opened the session after a band close (strikes "
            "re-resolved there, the listed expiry nearest the tenor); k is chosen in-sample under the same rule, "
            "each k scored with the re-opens it causes (opl/backtesting/walkforward.py)")
    if reopened.dropped:
        text += f"; {reopened.dropped} planned cycle(s) dropped, re-opened positions still running then"
    if reopened.skipped:
        text += "; not re-opened: " + "; ".join(reopened.skipped)
    return text


def _dividend_notes(records: list[dict]) -> list[str]:
    """The cycles whose contracts went through an ex-dividend adjustment (`opl.backtesting.cycles._quotes`)."""
    adjusted = [r for r in records if r.get("adjustment", 1.0) != 1.0]
    if not adjusted:
        return []
    return [f"{len(adjusted)} cycle(s) held their contracts across an ex-dividend adjustment and were marked on "
            "those contracts (new strike and multiplier, followed by code), not on the new standard ones: "
            + ", ".join(f"{r['open'].date()} (multiplier ×{r['adjustment']:.4f})" for r in adjusted[:5])
            + (" …" if len(adjusted) > 5 else "")]


def _level_notes(marked, with_signals: bool) -> list[str]:
    """What re-anchoring the views and keeping the strikes in order did (`opl.backtesting.cycles`)."""
    notes = []
    if with_signals and marked.reanchored:
        notes.append(f"{marked.reanchored} cycle(s) trade a later contract than their view was issued on: its "
                     "support and resistance are re-anchored by the contracts' price ratio at each roll between"
                     + (f" ({marked.approximate_rolls} roll(s) approximately: no same-day prev_settlement, the "
                        "ratio of settlements a session apart)" if marked.approximate_rolls else ""))
    if marked.skipped:
        notes.append(f"{len(marked.skipped)} cycle(s) skipped, the account flat over them: "
                     + "; ".join(marked.skipped))
    return notes


def _inputs(market, cycles) -> dict:
    """Each data file as read (`opl.data.loaders.LoadResult.describe`), the futures' sessions accounted for:
    ``traded`` (inside a traded cycle) + ``before_first_cycle`` + ``between_cycles`` (waiting for the tenor's
    expiry, no cycle could open, a cycle skipped: the notes say which) + ``after_last_cycle`` = ``rows``."""
    import numpy as np

    inputs = {kind: dict(described) for kind, described in market.inputs.items()}
    n = len(market.futures)
    traded = np.zeros(n, dtype=bool)
    for cycle in cycles:
        traded[cycle.start:cycle.end + 1] = True
    first, last = cycles[0].start, cycles[-1].end
    inputs["futures"]["sessions"] = {"traded": int(traded.sum()), "before_first_cycle": int(first),
                                     "between_cycles": int((~traded[first:last + 1]).sum()),
                                     "after_last_cycle": int(n - 1 - last)}
    return inputs


@dataclass
class Prepared:
    """Everything a backtest replays, before the replay: the strategy, the marked cycles, the run."""

    file: str
    data: str
    strategy: object  # opl.runtime.engine.runspec.StrategySpec
    spec: object  # opl.lang.deltaband.DeltaBandSpec | None
    settings: object  # opl.lang.experiment.settings.SimSettings
    pack: object
    kind: str
    market: object  # opl.backtesting.market.MarketData
    cycles: list
    months: list
    records: list
    run: object  # opl.runtime.engine.runspec.RunSpec
    surfaces: object
    notes: list
    chain: object = None  # opl.backtesting.cycles.ChainIndex | None
    carry: float = 0.0
    #: Options on spot: each (date, expiry)'s parity cost of carry (`ChainIndex.parity_carries`), for the
    #: cycles marked later (re-opens) as the planned ones were.
    carries: dict | None = None


def backtest_file(path, *, data, overrides=(), market: dict | None = None, repair: bool = False, progress=None):
    """Backtest a file over the history in ``data``; see the module docstring.

    Parameters
    ----------
    path
        The ``.opl`` file.
    data
        The data directory (``futures.csv``, optional ``options.csv`` and ``signals.csv``).
    overrides
        ``--set key=value`` items (`opl.lang.experiment.settings.KEYS`).
    market
        Market overrides as for ``opl compile --market``.
    repair
        Make the data loaders' documented repairs (each listed in the notes).
    progress : callable, optional
        ``progress(done, total, stage)`` as the stages go (reading, marking the cycles, fitting
        the delta band, re-opening, replaying): ``opl backtest``'s bar.

    Raises
    ------
    BacktestInputError
        The file has errors or settings a backtest cannot run (located diagnostics).
    SettingsError
        A ``--set`` override is bad.
    DataError
        A data file breaks its contract (located: file, row, column).
    OSError
        The file or the data directory cannot be read.
    """
    return run_prepared(prepare(path, data=data, overrides=overrides, market=market, repair=repair,
                                progress=progress), progress=progress)


def _stage(progress, name: str, done: int = 0, total: int = 1) -> None:
    if progress is not None:
        progress(done, total, name)


def _staged(progress, name: str):
    """``progress`` narrowed to one stage: a ``(done, total)`` callback, or None."""
    return None if progress is None else lambda done, total: progress(done, total, name)


def backtest(checked, settings):
    """Backtest a checked file (`opl.check`'s result) over the history in ``settings.data`` (an
    `opl.simulation.run.RunSettings`: ``data``, ``overrides``, ``market``, ``repair``, ``progress`` as
    `backtest_file`'s); errors as `backtest_file`.

    The one backtest entry point (``opl backtest`` and the facade's `opl.backtesting` call it); nothing is written.
    """
    return run_prepared(prepare_checked(checked, data=settings.data, overrides=settings.overrides,
                                        market=settings.market, repair=settings.repair, progress=settings.progress),
                        progress=settings.progress)


def prepare(path, *, data, overrides=(), market: dict | None = None, repair: bool = False,
            progress=None) -> Prepared:
    """Check and compile the file, read the data, plan and mark the cycles (arguments and errors as
    `backtest_file`)."""
    from opl.lang.frontend import check_path

    return prepare_checked(check_path(path), data=data, overrides=overrides, market=market, repair=repair,
                           progress=progress)


def prepare_checked(checked, *, data, overrides=(), market: dict | None = None, repair: bool = False,
                    progress=None) -> Prepared:
    """`prepare` for a checked file: the backtest's settings and rule pack (`_backtest_setting`), the data
    with the forwards and volatility surfaces read from them (`_priced_history`), the option cycles marked
    on them (`_marked_cycles`) and the replay's run (`_history_run`)."""
    from opl.lang.experiment.settings import SettingsError
    from opl.simulation.run import checked_for_run

    if data is None:
        raise SettingsError("a backtest needs market data: give `data` (a folder with futures.csv)")
    path = checked.report.path
    checked, compiled, located = checked_for_run(checked, market, BacktestInputError, "backtest")
    notes: list[str] = []
    try:
        setting = _backtest_setting(checked, compiled.strategy, overrides, notes)
        spec = _band_spec(checked.document)
    except SettingsError as error:
        raise located(error) from None
    settings, pack, strategy, kind = setting
    ignored = sorted({item.partition("=")[0].strip() for item in overrides
                      if item.partition("=")[0].strip().startswith(_SIMULATION_ONLY)})
    if ignored:
        notes.append(f"settings of a simulation have no effect on a backtest: {', '.join(ignored)}")
    carry = strategy.rate if kind != "future" else 0.0
    _stage(progress, "reading the data")
    history = _priced_history(data, repair, setting, compiled.strategy, carry, notes)
    marked = _marked_cycles(history, strategy, pack, carry, notes, progress)
    run = _history_run(history, marked, compiled.strategy, strategy, settings, pack, notes)
    data_set = history.market
    notes += data_set.notes()
    if data_set.signals is None:
        notes.append("no signals.csv: support and resistance are the file's level widths around each cycle's open, "
                     "the direction flat")
    return Prepared(file=str(path), data=str(data), strategy=strategy, spec=spec,
                    settings=settings, pack=pack, kind=kind, market=data_set, cycles=marked.cycles,
                    months=marked.months, records=marked.records, run=run, surfaces=history.surfaces, notes=notes,
                    chain=history.chain, carry=carry, carries=history.carries)


def _backtest_setting(checked, model, overrides, notes: list[str]) -> tuple:
    """(settings, rule pack, strategy, underlying kind) of a backtest of the compiled ``model``: the experiment's
    settings with ``overrides``, one step per session, the pack with the settings' margin method, the runtime
    strategy with the file's delta band. Raises SettingsError (located by the caller) when the underlying
    cannot be backtested or a setting is bad."""
    from opl.lang.experiment.settings import SettingsError, parse_overrides
    from opl.runtime.market.margin import with_margin_method
    from opl.runtime.market.rules import load_pack
    from opl.simulation.run import settings_from

    doc = checked.document
    kind = model.underlying.kind
    if kind not in ("future", "etf") or model.underlying.rule_pack is None:
        span = doc.underlying.span if doc.underlying is not None and doc.underlying.span else doc.strategy.span
        raise SettingsError("`opl backtest` needs options on a future or an ETF with an exchange rule pack "
                            "(e.g. `underlying Future(2026-05-15)` with `exchange CZCE`, or `underlying ETF` "
                            "with `exchange SSE`)", span=span, code="E306")
    settings, _ = settings_from(doc, model)
    settings = parse_overrides(list(overrides), settings)
    if settings.steps_per_day != 1:
        # A history has one step per session: a hedge period counts those (not the experiment's steps).
        notes.append(f"the experiment's `steps_per_day {settings.steps_per_day}` is a simulation setting: the "
                     "history has one step per session")
        settings = replace(settings, steps_per_day=1)
    pack = with_margin_method(load_pack(model.underlying.rule_pack), settings.margin_method)
    strategy = _strategy_with_band(checked, model, settings, notes)
    return settings, pack, replace(strategy, contract_size=pack.underlying.contract_size), kind


@dataclass(frozen=True)
class _History:
    """The data as read (`market`) and what pricing reads off them: the option chain's index, the forwards
    of its rows, the parity carries of European options on spot, the volatility surfaces."""

    market: object  # opl.backtesting.market.MarketData
    chain: object  # opl.backtesting.cycles.ChainIndex | None
    forwards: object
    carries: dict | None
    surfaces: object


def _priced_history(data, repair: bool, setting: tuple, model, carry: float, notes: list[str]) -> _History:
    """The data folder read with the pack's rules and the surfaces fitted to its chain (or the file's
    volatility without one); DataError when the futures have fewer than two sessions."""
    import numpy as np

    from opl.backtesting.cycles import ChainIndex
    from opl.backtesting.market import load_market
    from opl.backtesting.surface import build_surfaces
    from opl.data.loaders import DataError, Problem

    settings, pack, strategy, kind = setting
    data_set = load_market(data, pack=pack, repair=repair)
    futures = data_set.futures
    if len(futures) < 2:
        raise DataError([Problem(data_set.files["futures"], None, None,
                                 "a backtest needs at least two sessions of futures bars")])
    chain = ChainIndex(data_set.options, futures) if data_set.options is not None else None
    forwards = chain.forwards(futures) if chain is not None else None
    if forwards is not None and np.any(~np.isfinite(forwards)):
        notes.append(f"{int(np.sum(~np.isfinite(forwards)))} option rows are on a contract the futures series does "
                     "not hold that day: no cycle trades them")
    default_vol = model.market.iv / (1.0 + settings.iv_spread) if model.market.iv else 0.25
    american = any(leg.american for leg in strategy.legs)
    # European options on spot (an ETF): the chain's parity forward, not the spot, carries the dividends.
    carries = chain.parity_carries(futures, strategy.rate) if chain is not None and kind != "future" and \
        not american else None
    if carries:
        notes.append(f"options on spot: each cycle is priced and hedged on its chain's put–call parity forward "
                     f"(cost of carry at the open, median {np.median(list(carries.values())):+.2%}; "
                     f"the rate alone: {strategy.rate:+.2%})")
    surfaces = build_surfaces(futures=futures, options=data_set.options, forwards=forwards, smile=strategy.smile,
                              default_vol=default_vol, rate=strategy.rate, carry=carry,
                              american=american, notes=notes, carries=carries)
    return _History(data_set, chain, forwards, carries, surfaces)


def _marked_cycles(history: _History, strategy, pack, carry: float, notes: list[str], progress):
    """The option cycles the history can trade, planned at the strategy's tenor and marked
    (`opl.backtesting.cycles.mark_cycles`); DataError when none fits or none can be traded."""
    from opl.backtesting.cycles import mark_cycles, plan_cycles
    from opl.data.loaders import DataError, Problem

    data_set, futures, chain = history.market, history.market.futures, history.chain
    plan = plan_cycles(futures, chain, tenor_days=strategy.tenor_days)
    if not plan.cycles:
        raise DataError([Problem(data_set.files.get("options", data_set.files["futures"]), None, None,
                                 "no option cycle fits in the data: no session lists an expiry at least a day "
                                 "ahead on the contract held" if chain is not None else
                                 "no option cycle fits in the data: every contract ends within a session")])
    if plan.skipped:
        notes.append(f"{plan.skipped} session(s) could not open a cycle (no expiry listed ahead on the contract "
                     "held, or the contract's last session)")
    if plan.waited:
        notes.append(f"{plan.waited} session(s) flat, waiting for the session whose listed expiry is nearest the "
                     f"{strategy.tenor_days:g}-day tenor (the options sold are the tenor's)")
    marked = mark_cycles(plan.cycles, futures=futures, chain=chain, signals=data_set.signals, strategy=strategy,
                         surfaces=history.surfaces, pack=pack, carry=carry, carries=history.carries,
                         progress=_staged(progress, "marking the cycles"))
    if not marked.cycles:
        raise DataError([Problem(data_set.files["futures"], None, None,
                                 "no option cycle can be traded: " + "; ".join(marked.skipped[:3]))])
    notes += _level_notes(marked, data_set.signals is not None)
    return marked


def _history_run(history: _History, marked, model, strategy, settings, pack, notes: list[str]):
    """The replay's `RunSpec` over the marked cycles' months (one path), with the default capital stated;
    SettingsError when the size does not give whole lots of every leg."""
    from opl.lang.experiment.settings import SettingsError
    from opl.runtime.engine.runspec import RunSpec
    from opl.simulation.run import default_capital

    default_capital(settings, model, pack.currency, notes)
    for leg in strategy.legs:
        lots = leg.qty * settings.size
        if abs(lots - round(lots)) > 1e-9:
            raise SettingsError(f"size {settings.size:g} gives {lots:g} lots of a leg: sizes must give whole lots",
                                key="size")
    futures = history.market.futures
    return RunSpec(process=None, pack=pack, price=float(futures["settlement"].iloc[marked.cycles[0].start]),
                   capital=settings.capital, paths=1, months=len(marked.months), chunk=1,
                   option_ticks=settings.option_slippage_ticks, futures_ticks=settings.futures_slippage_ticks,
                   cash_rate=settings.cash_rate, margin_rate=settings.margin_rate)


def run_prepared(p: Prepared, progress=None):
    """Fit the band walk-forward (when the file has one) and replay the history; a `BacktestResult`."""
    import pandas as pd

    from opl.backtesting.result import BacktestResult
    from opl.runtime.engine.historical import GivenMonths
    from opl.runtime.engine.replay import replay
    from opl.runtime.engine.runspec import Variant
    from opl.runtime.results.records import package_versions

    settings, notes = p.settings, list(p.notes)
    variant = Variant(size=settings.size, fee_factor=settings.fee_factor)
    band, baseline, traded, records, cycles = None, None, p.months, p.records, p.cycles
    if p.spec is not None:
        band, baseline, traded, records, cycles = _band_passes(p, variant, notes, progress)
    run = replace(p.run, months=len(traded))
    _stage(progress, "replaying")
    result = replay(strategy=p.strategy, run=replace(run, source=GivenMonths.factory(traded)), variants=(variant,),
                    trace=True)
    notes += _history_notes(p, records, cycles)
    futures = p.market.futures
    dates, base_dates = _equity_dates(futures, cycles), _equity_dates(futures, p.cycles)
    first, last = min(cycles[0].start, p.cycles[0].start), max(cycles[-1].end, p.cycles[-1].end)
    calendar = pd.DatetimeIndex(futures["trading_date"].iloc[first:last + 1])
    return BacktestResult.build(
        file=p.file, data=p.data, files=p.market.files, inputs=_inputs(p.market, cycles), settings=settings,
        strategy=p.strategy, pack=p.pack,
        kind=p.kind, cycles=records, dates=dates, result=result, baseline=baseline, band=band,
        notes=notes, versions=package_versions(), surfaces=p.surfaces.names, months=traded, calendar=calendar,
        baseline_dates=base_dates)


def _band_passes(p: Prepared, variant, notes: list[str], progress):
    """The delta band's passes: the walk-forward fit, the replay without the band (the baseline) and, with
    ``reopen next_day``, the months re-opened after a band close; returns (band, baseline, the months to trade,
    their records, their cycles)."""
    import numpy as np
    import pandas as pd

    from opl.backtesting.reopen import Reopener, reopen_after_band
    from opl.backtesting.walkforward import walk_forward
    from opl.runtime.engine.historical import GivenMonths
    from opl.runtime.engine.replay import replay

    size, fee_factor, months = p.settings.size, p.settings.fee_factor, p.months
    reopener = Reopener(p, size=size, fee_factor=fee_factor)
    band = walk_forward(months, opens=pd.DatetimeIndex([r["open"] for r in p.records]),
                        closes=pd.DatetimeIndex([r["close"] for r in p.records]), strategy=p.strategy, run=p.run,
                        spec=p.spec, size=size, fee_factor=fee_factor,
                        progress=_staged(progress, "fitting the delta band (walk-forward)"), reopener=reopener)
    baseline = replay(strategy=p.strategy, run=replace(p.run, source=GivenMonths.factory(
        [m.with_band((np.zeros(m.n + 1), np.full(m.n + 1, np.nan))) for m in months])), variants=(variant,),
        trace=True)
    if p.spec.reopen != "next_day":
        return band, baseline, band.months, p.records, p.cycles
    reopened = reopen_after_band(p, band, size=size, fee_factor=fee_factor,
                                 progress=_staged(progress, "re-opening after band closes"), reopener=reopener)
    notes.append(_reopen_note(reopened))
    return band, baseline, reopened.months, reopened.records, reopened.cycles


def _history_notes(p: Prepared, records, cycles) -> list[str]:
    """The notes on the history replayed: the marks from the chain, the dividends, a history too short."""
    marks = sum(r["marks"] for r in records)
    chain_marks = sum(r["marks_from_chain"] for r in records)
    notes = [f"marks: {chain_marks:,} of {marks:,} option marks at the chain's settlements; the rest, and the "
             f"at-the-money volatility, from the surface ({' / '.join(p.surfaces.names)})"]
    notes += _dividend_notes(records)
    sessions = cycles[-1].end - cycles[0].start + 1
    if sessions < SHORT_HISTORY:
        notes.append(f"only {sessions} sessions: the annualised return and the Sharpe ratio of so short a history "
                     "say little (a quarter, 63 sessions, is the least they need)")
    return notes
