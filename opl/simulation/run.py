"""`opl simulate`: file → check → compile → settings → replay → metrics, with the size sweep
and the stress/sensitivity scenarios of the experiment block.

>>> result = simulate_file("examples/jujube/strangle.opl", paths=200, overrides=["experiment.horizon=1"])
>>> sorted(result.to_dict())[:4]
['base', 'file', 'model', 'notes']

**Size sweep.** Every size of the experiment's ``sizes`` (lots: each leg's quantity ×
size) is replayed on the same paths (common random numbers); ``recommended_size`` is
the smallest and largest size of the longest unbroken run of swept sizes at which the
``target`` holds, or null with the reason.

**Scenarios.** ``stress`` and ``sensitivity`` scenarios run beside the base case on the
same seed, at the lower end of the recommended size (the base size when there is none),
each with pass/fail against the target.
``slippage``, ``fees_up`` and ``margin_up`` only change costs and margin, so they are
replayed together as variants on the base paths (same seed, same draws); the others
change the market and get a pass of their own. Every scenario is a surprise — the options
are opened at the unshocked market's prices, then the market does the scenario's thing —
and its exact definition (`opl.simulation.scenarios`, one handler per name) is printed with its
results (``ScenarioResult.definition``).

**Passes.** `prepare` checks, compiles, calibrates and sets up the file without replaying;
its `Prepared` run then replays the sweep (one pass, a variant per size) and the scenarios at
a size (one pass for the cost scenarios together, one per market scenario). A variant does
not depend on the other variants of its pass, so the base case at a swept size is read from
the sweep, never replayed again (`opl loop`'s evaluator picks its own size and shares the
sweep the same way). Sizes are not derived from each other by scaling: whole-lot hedges,
margin calls, the capital check at the open and the adjustment module's margin aborts are
not linear in size, so every size is replayed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from opl.lang.experiment.settings import CAPITAL_MARGIN_MULTIPLE, SettingsError, SimSettings, parse_overrides
from opl.errors import OplError

__all__ = ["simulate", "simulate_file", "prepare", "RunSettings", "SimulationInputError", "SettingsError"]

COST_SCENARIOS = ("slippage", "fees_up", "margin_up")


class RunInputError(OplError):
    """The file has errors (``diagnostics``, located in ``report``'s source) — nothing was run."""

    def __init__(self, report, diagnostics):
        super().__init__("; ".join(d.message for d in diagnostics), report=report, diagnostics=diagnostics)


class SimulationInputError(RunInputError):
    """The file has errors, or settings the simulator cannot run — nothing was simulated."""


@dataclass(kw_only=True)
class RunSettings:
    """What a run takes besides the checked file: the command line's options, the facade's keywords.

    Every field left at its default leaves the file's own setting (its experiment block) in force.

    Parameters
    ----------
    paths, seed
        ``--paths`` / ``--seed`` (win over everything else).
    overrides
        ``--set key=value`` items (`opl.lang.experiment.settings.KEYS`).
    market
        Market overrides as for ``opl compile --market``.
    data
        ``--data``: a data directory (or an ``opl.calibration.CalibrationResult``) that ``calibration
        historical`` (the default) fits the price model and the implied-volatility rule to; for
        ``opl backtest`` the market history.
    repair
        ``--repair`` (backtest): make the data loaders' documented repairs.
    files
        An `opl.lang.fileaccess.FileAccess` when the file is confined (`opl loop`'s candidates): the
        ``calibration file`` it names is looked up in those folders, not next to the file (E015).
    progress
        Called with (units done, total units) as the replay advances.
    deadline
        A `time.monotonic` time at which the run, if still going, stops (within one step of each path
        chunk being replayed, or one table of a new time grid) and raises
        `opl.runtime.engine.deadline.DeadlinePassed`; `opl loop` sets it to the end of ``--minutes``.
    """

    paths: int | None = None
    seed: int | None = None
    overrides: tuple[str, ...] = ()
    market: dict | None = None
    data: object = None
    repair: bool = False
    files: object = None
    progress: Callable[[int, int], None] | None = None
    deadline: float | None = None


def checked_for_run(checked, market: dict | None, error: type[RunInputError], doing: str, *,
                    levels_from_signals: bool = False):
    """Compile a checked file (an `opl.lang.frontend.CheckResult`) for a run (`opl simulate`, `opl backtest`).

    Returns ``(checked, compiled, located)``: ``located(settings_error)`` turns a `SettingsError` with a
    span into ``error`` with one diagnostic labelled "cannot {doing} this" (one without a span is returned
    as is). Raises ``error`` when the file does not compile.

    ``levels_from_signals``: the run sets support and resistance each month (the simulator's
    level rule), so a file that leaves them out — `opl check` says so with I401 — is compiled
    at the rule's levels around the opening price, and the compiled notes say so.
    """
    from opl.compiler.strategy import compile_checked
    from opl.lang.diagnostics import Diagnostic

    market, filled = _run_time_levels(checked, market) if levels_from_signals else (market, [])
    compiled = compile_checked(checked, market)
    if compiled.ok and filled:
        compiled.strategy = compiled.strategy.model_copy(
            update={"notes": compiled.strategy.notes + tuple(filled)})
    if not compiled.ok:
        raise error(checked.report, compiled.diagnostics)

    def located(settings_error: SettingsError):
        if settings_error.span is None:
            return settings_error
        return error(checked.report, [Diagnostic(settings_error.code, str(settings_error), settings_error.span,
                                                 f"cannot {doing} this", settings_error.help)])

    return checked, compiled, located


def _run_time_levels(checked, market: dict | None) -> tuple[dict | None, list[str]]:
    """Support/resistance the file leaves to the signals (I401), at the simulator's default widths."""
    from opl.runtime.engine.legspec import Levels

    doc = checked.document
    given = dict(market or {})
    price = given.get("price", doc.market.price if doc is not None else None)
    if doc is None or price is None:
        return market, []
    widths = Levels()
    notes = []
    for anchor, level in (("support", price * (1 - widths.support_width)),
                          ("resistance", price * (1 + widths.resistance_width))):
        if given.get(anchor) is None and getattr(doc.market, anchor) is None and any(
                getattr(leg.strike, "anchor", None) == anchor for leg in checked.legs):
            given[anchor] = level
            notes.append(f"`{anchor}` comes from the signals each month (I401); the opening legs are priced at "
                         f"the simulator's level rule, {anchor} {level:,.6g} "
                         f"({'-' if anchor == 'support' else '+'}{widths.support_width:.0%} of the price)")
    return given, notes


def source_text(report, span) -> str:
    """The file's text under ``span`` (empty when there is none)."""
    return report.source.excerpt(span)


def _calendar_note(pack, days_per_month: int) -> str:
    """What of the pack's trading calendar a simulation uses, and its span (stated in every run)."""
    from opl.runtime.market.calendars import coverage

    return (f"{coverage(pack)}; a simulated month is {days_per_month} sessions, so the calendar dates only the "
            "listed expiries `opl compile` prices the file's legs to (a note says when one lies outside it)")


def default_capital(settings: SimSettings, compiled, currency: str, notes: list[str]) -> None:
    """Without `capital` in the file, returns are measured against a multiple of the opening margin."""
    if settings.capital is not None:
        return
    per_leg = settings.margin_method == "per_leg"
    margin = (compiled.totals.margin_per_leg if per_leg else compiled.totals.margin) or 0.0
    settings.capital = CAPITAL_MARGIN_MULTIPLE * margin * settings.size
    how = "every leg margined alone" if per_leg else "the exchange's combinations applied"
    notes.append(f"no `capital` in the file: returns are measured against {CAPITAL_MARGIN_MULTIPLE:g} x the "
                 f"opening margin at size {settings.size:g} ({how}) = {settings.capital:,.0f} {currency}")
    if settings.capital <= 0:
        raise SettingsError("no `capital` in the file and the strategy posts no margin: set `capital`", key="capital")


def hedge_steps(every_days: float, steps_per_day: int, notes: list[str]) -> int:
    """The hedge's period in steps: ``every Nd`` counts trading days (sessions), rounded half up to whole steps.

    The hedge trades only in sessions, so its period counts them, as ``sim.days_per_month``
    does (21 in a simulated month); tenors and ``days_left`` count calendar days. A period
    that is not a whole number of steps is rounded half up, at least one step, with a note;
    so is a whole number of weeks, whose calendar reading would be 5 sessions a week.
    """
    exact = every_days * steps_per_day
    steps = max(1, math.floor(exact + 0.5))
    per_day = f"{steps_per_day} step{'s' if steps_per_day > 1 else ''} a day"
    if abs(steps - exact) > 1e-9:
        shorter = (" — shorter than one step; raise `experiment.steps_per_day` to hedge more often"
                   if exact < 1 else "")
        notes.append(f"hedge every {every_days:g}d is {exact:g} steps at {per_day}: rounded to every {steps} "
                     f"step{'s' if steps > 1 else ''} ({steps / steps_per_day:g} trading day"
                     f"{'s' if steps != steps_per_day else ''}){shorter}")
    if every_days >= 7 and abs(every_days / 7 - round(every_days / 7)) < 1e-9:
        notes.append(f"hedge every {every_days:g}d counts trading days (sessions): about "
                     f"{every_days * 7 / 5:g} calendar days; a weekly hedge is `every {every_days * 5 / 7:g}d`")
    return steps


def settings_from(doc, compiled) -> tuple[SimSettings, dict]:
    """The simulator's settings from the file (experiment block, hedge, capital) and their spans by key."""
    s = SimSettings()
    spans: dict = {}
    exp = doc.experiment
    if exp is not None:
        for name in ("paths", "seed", "steps_per_day", "horizon_months", "hit_rate"):
            if getattr(exp, name) is not None:
                setattr(s, name, getattr(exp, name))
        s.sizes = tuple(exp.sizes)
        s.components = [c.name for c in exp.model]
        s.model_params = {c.name: dict(c.params) for c in exp.model}
        for key, value in exp.smile.items():
            setattr(s, f"iv_{key}", value)
        spans = {c.name: c.span for c in exp.model}
        spans["experiment"] = exp.span
    risk = doc.risk
    s.margin_buffer = risk.margin_buffer or 0.0
    s.stop_loss = risk.stop_loss
    s.capital = risk.capital or doc.constraints.capital_limit
    if doc.hedge is not None:
        s.hedge_every_days, s.hedge_band = doc.hedge.every_days or 1.0, doc.hedge.band or 0.0
        s.hedge_keep, s.hedge_along = doc.hedge.keep, doc.hedge.along
    m = compiled.market
    if m.support is not None:
        s.support_width = max(0.0, (m.price - m.support) / m.price)
    if m.resistance is not None:
        s.resistance_width = max(0.0, (m.resistance - m.price) / m.price)
    return s, spans


def runtime_strategy(checked, compiled, settings: SimSettings, notes: list[str], *, mixed_tenors: bool = False):
    """The file's strategy in runtime form. ``mixed_tenors`` lets option legs have different tenors: the
    month is the shortest one and the longer legs are sold back at market at its end (runtime/README.md);
    without it (given months, `opl backtest`) they are a located error."""
    from opl.runtime.engine.legspec import Levels
    from opl.runtime.engine.marking import SmileRule
    from opl.runtime.engine.runspec import StrategySpec
    from opl.simulation.rules import adjust_spec, compile_located, guard_rules, score_rule

    doc = checked.document
    legs, numbers, futures_legs, leg_tenors = _option_legs(checked, compiled, notes)
    legs, tenor = _one_month(legs, leg_tenors, doc, notes, mixed_tenors)
    score = score_rule(doc)
    triggers = [compile_located(value) for value in tuple(doc.exit.triggers) + tuple(doc.exit.appended)]
    adjust = adjust_spec(checked, settings, tenor_days=tenor, american=legs[0].american)
    guards = guard_rules(doc, checked.report)
    hedge = _hedge_spec(settings, notes)
    levels = Levels(support_width=0.05 if settings.support_width is None else settings.support_width,
                    resistance_width=0.05 if settings.resistance_width is None else settings.resistance_width)
    structure = (settings.structure_delta, settings.structure_gamma, settings.structure_vega)
    uses_gamma = (adjust is not None and adjust.needs_gamma) or (score is not None and score.needs_gamma) or \
        _reads_structure(doc)
    return StrategySpec(
        legs=tuple(legs), futures=sum(qty for _, qty in futures_legs), tenor_days=tenor,
        multiplier=compiled.legs[0].multiplier, contract_size=0.0, hedge=hedge,
        assignment=_assignment_spec(doc.assignment), exit_mode=doc.exit.mode,
        exit_triggers=tuple(triggers), guard_days=settings.guard_days, stop_loss=settings.stop_loss,
        margin_buffer=settings.margin_buffer, levels=levels,
        smile=SmileRule(spread=settings.iv_spread, floor=settings.iv_floor, skew=settings.iv_skew,
                        curvature=settings.iv_curvature), rate=compiled.market.rate, greeks=uses_gamma,
        leg_numbers=tuple(numbers), futures_legs=tuple(futures_legs), score=score,
        score_threshold=settings.score_threshold, adjust=adjust, guards=guards, bands=structure)


def _option_legs(checked, compiled, notes: list[str]) -> tuple[list, list[int], list[tuple[int, float]], list[float]]:
    """The file's option legs in runtime form, their leg numbers, the futures legs (number, signed lots) and each
    option leg's tenor in days; a leg the simulator does not trade (or none at all) is a located E105."""
    from opl.lang.legs import AbsoluteStrike, DaysTenor
    from opl.simulation.rules import option_leg

    legs, numbers, futures_legs, leg_tenors = [], [], [], []
    for index, (leg, built) in enumerate(zip(checked.legs, compiled.legs)):
        if leg.kind == "future":
            futures_legs.append((index, leg.signed_qty))
            continue
        if not leg.is_option:
            raise SettingsError(f"`opl simulate` trades options and futures; a `{leg.kind}` leg is not simulated yet",
                                span=leg.span, code="E105")
        if isinstance(leg.strike, AbsoluteStrike):
            notes.append(f"leg {built.index}: the absolute strike {leg.strike} is kept every month")
        leg_tenors.append(leg.tenor.days if isinstance(leg.tenor, DaysTenor) else built.tenor_days)
        legs.append(option_leg(leg, american=built.exercise == "american"))
        numbers.append(index)
    if not legs:
        raise SettingsError("nothing to simulate: the strategy has no option legs", span=checked.document.strategy.span,
                            code="E105")
    return legs, numbers, futures_legs, leg_tenors


def _one_month(legs: list, leg_tenors: list[float], doc, notes: list[str], mixed_tenors: bool) -> tuple[list, float]:
    """The legs and the month's tenor: the shortest, the longer legs' extra days kept when ``mixed_tenors``
    (sold back at market at the month's end), else different tenors are a located E105."""
    tenors = set(leg_tenors)
    month = min(tenors)
    if len(tenors) > 1 and mixed_tenors:
        legs = [replace(leg, extra_days=days - month) for leg, days in zip(legs, leg_tenors)]
        notes.append(f"option legs of different tenors ({', '.join(f'{t:g}d' for t in sorted(tenors))}): each month "
                     f"lasts the shortest, {month:g} days; the longer legs are sold back at market when it ends and "
                     "opened afresh with the next month")
    elif len(tenors) > 1:
        raise SettingsError("the simulator rolls one expiry a month: give every option leg the same tenor "
                            f"(found {', '.join(f'{t:g}d' for t in sorted(tenors))})", span=doc.strategy.span,
                            code="E105")
    return legs, float(month)


def _hedge_spec(settings: SimSettings, notes: list[str]):
    """The futures hedge of the settings (`opl.runtime.engine.hedging.HedgeSpec`), None without one."""
    from opl.runtime.engine.hedging import HedgeSpec

    if settings.hedge_every_days is None and settings.hedge_keep is None:
        return None
    steps = hedge_steps(settings.hedge_every_days or 1.0, settings.steps_per_day, notes)
    keep = settings.hedge_keep or 0.0
    along = settings.hedge_along if settings.hedge_along not in (None, "none") else ("direction" if keep else "none")
    return HedgeSpec(every=steps, band=settings.hedge_band or 0.0, keep=keep, along=along)


def _assignment_spec(policy):
    """The file's assignment policy as the runtime reads it (the default policy without one)."""
    from opl.runtime.engine.exercise import AssignmentSpec

    if policy is None:
        return AssignmentSpec()
    return AssignmentSpec(action=policy.action, storage_per_day=policy.storage_per_day,
                          funding_rate=policy.funding_rate, basis=policy.basis, hold_days=policy.hold_days)


def _reads_structure(doc) -> bool:
    """Whether an exit trigger, the adjustment's rules or a guard reads `structure_destabilised` (the replay
    then keeps the legs' gammas)."""
    from opl.lang import ir

    return any(ir.calls(value, "structure_destabilised")
               for value in (*doc.exit.triggers, *doc.exit.appended, doc.adjust.when, doc.adjust.abort_if,
                             *(g.condition for g in doc.guards)) if value is not None)


def _calibrate(doc, settings: SimSettings, data, notes: list[str], path, files=None) -> dict | None:
    """The experiment's ``calibration`` with ``--data`` (or its file): see :mod:`opl.calibration.modes`.

    ``calibration file("…")`` is relative to the `.opl`; with ``files`` (a confined file, `opl.lang.fileaccess`)
    it must be an allowed file of those folders instead (E015).
    """
    exp = doc.experiment
    method = exp.calibration if exp is not None and exp.calibration is not None else "historical"
    named = exp.calibration_file if exp is not None else None
    if data is None and named is None:
        if method == "file":
            raise SettingsError("`calibration file` names no file: write `calibration file(\"calib.json\")` "
                                "(relative to this file) or pass --data calib.json (`opl calibrate --json` writes it)",
                                span=exp.calibration_span, code="E306")
        if exp is not None and exp.calibration is not None:
            notes.append(f"`calibration {method}` without --data uses the documented defaults (a rough fit to "
                         "CZCE jujube 2019-2026, opl/runtime/processes.py) for every model parameter the file does "
                         "not write itself; pass --data DIR to calibrate")
        return None
    from opl.calibration.modes import calibrate_settings
    from opl.calibration.stored import StoredCalibrationError

    where = Path(path).parent / named if named is not None else None
    if named is not None and files is not None:
        from opl.lang.fileaccess import NamedFileError

        try:
            where = files.resolve(named)
        except NamedFileError as error:
            raise SettingsError(f"`calibration file`: {error}", span=exp.calibration_span, code="E015") from None
    try:
        record = calibrate_settings(method, settings, data=data, calibration_file=where,
                                    file_smile=set(exp.smile) if exp is not None else ())
    except StoredCalibrationError as error:
        raise SettingsError(str(error), span=exp.calibration_span if exp is not None else None,
                            code="E306") from None
    notes.extend(record["notes"])
    return record


def _vols(settings: SimSettings) -> tuple:
    """What can set the price model's volatility: ``model.vol`` and the components' ``vol=``."""
    return settings.vol, tuple(sorted((c, p["vol"]) for c, p in settings.model_params.items() if "vol" in p))


def price_process(settings: SimSettings, compiled, pack, spans, notes, vol_origin: str = "the settings"):
    """The price process the settings describe (calibrated parameters already merged into ``settings``)."""
    from opl.runtime.engine.processes import ModelError, process_spec

    components = list(settings.components) or ["gbm"]
    if settings.hit_rate is not None and "regime" not in components:
        components.append("regime")
        notes.append("the experiment's direction signal adds the `regime` component to the price model")
    for name in settings.model_params:
        if name not in components:
            raise SettingsError(f"`model.{name}...` sets a parameter of `{name}`, which is not in the model "
                                f"({' + '.join(components)})", key=f"model.{name}")
    vol = settings.vol
    if vol is None:
        vol = compiled.market.iv / (1.0 + settings.iv_spread) if compiled.market.iv else 0.25
    try:
        spec = process_spec(components=[(c, settings.model_params.get(c, {})) for c in components], vol=vol,
                            hit_rate=settings.hit_rate)
    except ModelError as error:
        raise SettingsError(str(error), span=spans.get(error.component) or spans.get("experiment"),
                            key=f"model.{error.component}" if error.component else None) from None
    _note_unused_iv(settings, compiled.market.iv, spec.vol, notes, vol_origin)
    return replace(spec, limit=pack.underlying.daily_limit)


def _note_unused_iv(settings: SimSettings, iv: float | None, vol: float, notes: list[str], vol_origin: str) -> None:
    """Say so when a `vol` of the model (or ``vol_origin``: the calibration, --set) overrides the file's `iv`."""
    component = next((c for c in ("gbm", "garch", "gjr") if "vol" in settings.model_params.get(c, {})), None)
    if not iv or (component is None and settings.vol is None):
        return
    origin = f"{vol_origin} (`{component}(vol=...)`)" if component is not None else f"{vol_origin} (`model.vol`)"
    notes.append(f"`iv {iv:g}` is not used: the price model's volatility is {vol:.1%}, set by {origin}, and the "
                 f"options are marked at the model's implied volatility max(floor, sigma x (1 + spread)); without a "
                 f"`vol` the model would take iv / (1 + spread) = {iv / (1.0 + settings.iv_spread):.1%}")


def target_clauses(target, report) -> list:
    """The `and`-joined clauses of an experiment target (`opl.lang.ir`), each checked on its own."""
    from opl.lang import ir

    return ir.clauses(target, "and")


def _recommend(rows, target, target_text, report) -> tuple[dict | None, str | None]:
    if target is None:
        return None, "the experiment has no `target`"
    from opl.simulation.rules import target_verdict

    passing = [size for size, _, holds in rows if holds]
    if not passing:
        best_size, best, _ = max(rows, key=lambda r: (r[1].exercise["skipped_share"] < 100.0,
                                                      r[1].monthly_return["median"]))
        failing = [source_text(report, c.span) for c in target_clauses(target, report)
                   if target_verdict(c, best.target_values()) is False]
        sizes = ", ".join(f"{s:g}" for s, _, _ in rows)
        return None, (f"`{target_text}` fails at every size swept ({sizes}); at size {best_size:g} (best median "
                      f"{best.monthly_return['median']:+.2f}%) `{'`, `'.join(f for f in failing if f)}` fail")
    runs, current = [], []
    for size, _, holds in rows:
        if holds:
            current.append(size)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    best = max(runs, key=len)
    return {"low": best[0], "high": best[-1]}, None


def simulate_file(path, *, paths: int | None = None, seed: int | None = None, overrides=(),
                  market: dict | None = None, progress: Callable[[int, int], None] | None = None, data=None,
                  files=None, deadline: float | None = None):
    """Read, check and `simulate` a file; the keywords are `RunSettings`' fields.

    Raises
    ------
    OSError
        The file cannot be read; otherwise as `simulate`.
    """
    from opl.lang.frontend import check_path

    return simulate(check_path(path), RunSettings(paths=paths, seed=seed, overrides=tuple(overrides), market=market,
                                                  progress=progress, data=data, files=files, deadline=deadline))


def simulate(checked, settings: RunSettings | None = None):
    """Simulate a checked file (`opl.check`'s result) with its experiment block; see the module docstring.

    The one simulation entry point: ``opl simulate``, the facade's `opl.simulation.run`, ``opl assumptions
    --strategy`` and the loop's evaluator (through `prepare`, on each candidate's text, without writing it
    to a file) call it. Nothing is written anywhere.

    Parameters
    ----------
    checked
        The front end's result for the file (`opl.lang.frontend.CheckResult`); its path names the file in the
        result and locates a relative ``calibration file``.
    settings
        What the run takes besides the file (`RunSettings`); default: the file as written.

    Returns
    -------
    opl.runtime.results.metrics.SimulationResult
        What came from ``settings.data`` is in ``result.model["calibration"]``.

    Raises
    ------
    SimulationInputError
        The file has errors, or a setting of the file cannot be simulated (located diagnostics).
    SettingsError
        A ``--set`` override is bad (``key`` names it).
    OSError
        The data cannot be read.
    opl.runtime.engine.deadline.DeadlinePassed
        ``settings.deadline`` passed before the run finished; nothing of it is returned.
    opl.data.DataError, opl.calibration.CalibrationError
        The data break their contract or cannot be calibrated (located messages).
    """
    from opl.runtime.engine.deadline import until

    settings = settings or RunSettings()
    with until(settings.deadline):
        prepared = prepare(checked, settings)
        cost_plans = [p for p in prepared.plans if not p.market]
        tick = _ticker(settings.progress,
                       (1 + len(prepared.plans) - len(cost_plans) + bool(cost_plans)) * prepared.path_months)
        sweep, size, reason, scenarios = _sweep_and_scenarios(prepared, tick, keep=bool(cost_plans))
        size_given = any(str(o).partition("=")[0].strip() == "size" for o in settings.overrides)
        return prepared.result(sweep, scenarios, size=size, reason=reason, plot_given_size=size_given)


#: What `_sweep_and_scenarios` keeps of the sweep's months and marks at most: the twelve months of 30,000 paths
#: and the jujube strangle's two legs marked where the sweep held them are about 530 MB.
SWEEP_STORE_BYTES = 640 * 2**20


def _sweep_and_scenarios(prepared: "Prepared", tick: Callable[[int], None], *, keep: bool) -> tuple:
    """The sweep, the scenario size and reason, and the scenarios at that size (`Prepared.scenarios`).

    The cost scenarios replay the sweep's paths with its legs, so the sweep's months and marks are kept
    (`opl.runtime.engine.monthstore.MonthStore` of incomplete marks) for them: their pass marks only what it
    holds that the sweep did not (a fifth of the jujube file's marks were the cost pass marking the sweep's
    again). The store holds what the sweep makes in this process: all of it at one process (``sim.workers=1``)
    or one pass of chunks (10,000 paths), nothing when forked workers replay the sweep's passes (they keep
    nothing). Only with cost scenarios to read it (``keep``), not under a store in force already (the loop's,
    which keeps every mark) nor on a cluster; the store goes with this call.
    """
    from opl.runtime.engine import monthstore
    from opl.runtime.engine.replay import REMOTE

    store = None
    if keep and monthstore.current() is None and REMOTE.get() is None:
        store = monthstore.MonthStore(SWEEP_STORE_BYTES, complete_marks=False)
    with monthstore.sharing(store):
        # The sweep's standard errors (most of its metrics' work) wait until the scenarios' workers run: the size
        # pick reads none of them, and here they would hold both cores' next work back (~0.15 s at 50,000 paths).
        sweep = prepared.sweep(progress=tick, errors=False)
    size, reason = sweep.scenario_size()
    # Read only: what the scenarios make is not kept (a put would push out the months still to be read).
    with monthstore.sharing(store.reader() if store is not None else None):
        scenarios, _ = prepared.scenarios(size, sweep=sweep, progress=tick, meanwhile=sweep.add_errors)
    sweep.add_errors()  # (no scenarios to wait for)
    return sweep, size, reason, scenarios


def _ticker(progress: Callable[[int, int], None] | None, total: int) -> Callable[[int], None]:
    """A replay's progress callback (path-months done) that reports (done, ``total``) to ``progress``."""
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    return tick


def prepare(checked, settings: RunSettings | None = None) -> "Prepared":
    """Compile, calibrate and set up a checked file for its replays, without replaying anything.

    The arguments and the errors are `simulate`'s (``settings.progress`` is not used: the passes take
    their own). The `Prepared` run replays the size
    sweep (`Prepared.sweep`) and the scenarios at a size (`Prepared.scenarios`) on the same
    seed and paths, so a caller that picks the scenarios' size by its own rule (`opl loop`'s
    evaluator) shares the sweep's paths and replays instead of running them again.
    """
    from opl.runtime.market.margin import with_margin_method
    from opl.runtime.market.rules import load_pack
    from opl.simulation.scenarios import scenario_plans

    given = settings or RunSettings()
    # ``settings`` becomes the simulator's resolved `SimSettings` below; the run's inputs are read first.
    path, overrides, market = checked.report.path, given.overrides, given.market
    paths, seed, data, files = given.paths, given.seed, given.data, given.files
    checked, compiled, located = checked_for_run(checked, market, SimulationInputError, "simulate",
                                                 levels_from_signals=True)
    doc, strategy_model = checked.document, compiled.strategy
    notes: list[str] = list(strategy_model.notes)

    try:
        _require_futures_pack(doc, strategy_model)
        settings, spans = settings_from(doc, strategy_model)
        written_vol = _vols(settings)
        calibration = _calibrate(doc, settings, data, notes, path, files)
        calibrated_vol = _vols(settings)
        settings = parse_overrides(list(overrides), settings)
        if paths is not None:
            settings.paths = paths
        if seed is not None:
            settings.seed = seed
        pack = with_margin_method(load_pack(strategy_model.underlying.rule_pack), settings.margin_method)
        strategy = runtime_strategy(checked, strategy_model, settings, notes, mixed_tenors=True)
        strategy = replace(strategy, contract_size=pack.underlying.contract_size)
        final_vol = _vols(settings)
        vol_origin = ("`--set`" if final_vol != calibrated_vol else
                      "the calibration" if calibrated_vol != written_vol else "the file's model")
        process = price_process(settings, strategy_model, pack, spans, notes, vol_origin=vol_origin)
        plans = scenario_plans(doc, checked.report, process, strategy)
    except SettingsError as error:
        raise located(error) from None

    default_capital(settings, strategy_model, pack.currency, notes)
    notes.append(_calendar_note(pack, settings.days_per_month))
    sizes = sorted(set(settings.sizes) | {settings.size})
    for size in sizes:
        _whole_lots(strategy, size)
    run = _run_spec(settings, process, pack, strategy_model.market.price)
    target = doc.experiment.target if doc.experiment is not None else None
    return Prepared(path=str(path), checked=checked, settings=settings, strategy=strategy, run=run, plans=plans,
                    sizes=tuple(sizes), notes=notes, calibration=calibration, target=target,
                    target_text=source_text(checked.report, target.span) if target is not None else None)


def _require_futures_pack(doc, strategy_model) -> None:
    """The simulator's market: options on a future with an exchange rule pack, else a located E306."""
    if strategy_model.underlying.kind != "future" or strategy_model.underlying.rule_pack is None:
        # a file whose legs the compiler built from its intent has no strategy line to point at
        span = next((node.span for node in (doc.underlying, doc.strategy) if node is not None and node.span), None)
        raise SettingsError("`opl simulate` needs options on a future with an exchange rule pack "
                            "(e.g. `underlying Future(2026-05-15)` and `exchange CZCE`)", span=span, code="E306")


def _run_spec(settings: SimSettings, process, pack, price: float):
    """The replays' `opl.runtime.engine.runspec.RunSpec` of the resolved settings."""
    from opl.runtime.engine.runspec import RunSpec

    return RunSpec(process=process, pack=pack, price=price, capital=settings.capital,
                   paths=settings.paths, months=settings.horizon_months, steps_per_day=settings.steps_per_day,
                   days_per_month=settings.days_per_month, seed=settings.seed, chunk=settings.chunk,
                   option_ticks=settings.option_slippage_ticks, futures_ticks=settings.futures_slippage_ticks,
                   exact_american=settings.exact_american, engine=settings.engine,
                   cash_rate=settings.cash_rate, margin_rate=settings.margin_rate, workers=settings.workers)


def _whole_lots(strategy, size: float) -> None:
    for leg in strategy.legs:
        lots = leg.qty * size
        if abs(lots - round(lots)) > 1e-9:
            raise SettingsError(f"size {size:g} gives {lots:g} lots of a leg: sizes must give whole lots",
                                key="experiment.sizes")


@dataclass
class Sweep:
    """The base case replayed at one or more sizes on one set of paths (`Prepared.sweep`, `Prepared.at`)."""

    replayed: object  # opl.runtime.engine.runspec.ReplayResult
    sizes: tuple[float, ...]
    indices: tuple[int, ...]  # each size's variant in ``replayed``
    base_size: float  # the run's size (`--set size=`), one of ``sizes``
    rows: list  # (size, RunMetrics, target holds) per size
    never: set  # sizes whose capital never covers the opening margin
    recommended: dict | None
    reason: str | None
    notes: list[str] = field(default_factory=list)  # what this sweep adds to the run's notes

    errors_pending: bool = False  # the rows' metrics lack their standard errors (`Prepared.sweep`, `add_errors`)

    def base_metrics(self):
        """The `opl.runtime.results.metrics.RunMetrics` of the base size."""
        return self.rows[self.sizes.index(self.base_size)][1]

    def add_errors(self) -> None:
        """Give the rows' metrics their standard errors when `Prepared.sweep` left them out (once)."""
        if not self.errors_pending:
            return
        self.errors_pending = False
        filled = metrics_of([(self.replayed, v) for v in self.indices], without=[m for _, m, _ in self.rows])
        self.rows = [(size, metrics, holds) for (size, _, holds), metrics in zip(self.rows, filled)]

    def scenario_size(self) -> tuple[float, str]:
        """The size `opl simulate` runs its scenarios at, and why (module docstring)."""
        if self.recommended:
            return self.recommended["low"], "the low end of the recommended size"
        # Nothing recommended: the sweep's best median (the smaller size on a tie), not an arbitrary base size.
        best = max(self.rows, key=lambda r: (r[0] not in self.never, r[1].monthly_return["median"], -r[0]))[0]
        return best, "no size is recommended: the swept size with the best median monthly return"


@dataclass
class Prepared:
    """A file ready to replay (`prepare`): its runtime strategy, run, scenario plans and notes.

    Every replay of a `Prepared` run uses its seed and paths: the sweep's sizes, the cost
    scenarios (variants on the same paths) and the market scenarios (their own pass, the same
    draws — `opl.runtime.engine.processes` keeps one random stream per source of randomness).
    """

    path: str
    checked: object
    settings: SimSettings
    strategy: object  # opl.runtime.engine.runspec.StrategySpec
    run: object  # opl.runtime.engine.runspec.RunSpec
    plans: list
    sizes: tuple[float, ...]
    notes: list[str]
    calibration: dict | None
    target: object
    target_text: str | None

    @property
    def path_months(self) -> int:
        """Path-months of one pass (the unit of `simulate_file`'s progress)."""
        return self.run.paths * self.run.months

    def verdict(self, metrics) -> bool | None:
        """Whether the file's target holds for ``metrics`` (None: no target, or undecidable)."""
        from opl.simulation.rules import target_verdict

        return target_verdict(self.target, metrics.target_values())

    def sweep(self, *, progress: Callable[[int], None] | None = None, errors: bool = True,
              meanwhile: Callable[[], None] | None = None) -> Sweep:
        """Replay the base case at every size of the sweep, on one set of paths.

        ``errors=False``: the sizes' metrics without their standard errors, which nothing of the sweep reads
        (`Sweep.add_errors` adds them: the numbers computed here). ``meanwhile``: the caller's work done while
        the sweep is replayed (`opl.runtime.engine.replay.replay_many`)."""
        from opl.runtime.engine.replay import replay_many

        replayed = replay_many([self.sweep_job()], progress=progress, meanwhile=meanwhile)[0]
        if errors:
            return self.swept(replayed)
        indices = tuple(range(len(self.sizes)))
        sweep = self.at(self.sizes, (replayed, indices), base_size=self.settings.size,
                        metrics=metrics_of([(replayed, v) for v in indices], errors=False))
        sweep.errors_pending = True
        return sweep

    def sweep_job(self) -> tuple:
        """The sweep's replay as a (strategy, run, variants) job of `opl.runtime.engine.replay.replay_many`, a
        variant per size, for a caller that replays it beside other jobs (`swept` reads its result)."""
        from opl.runtime.engine.runspec import Variant

        fee = self.settings.fee_factor
        return self.strategy, self.run, tuple(Variant(size=s, fee_factor=fee) for s in self.sizes)

    def swept(self, replayed) -> Sweep:
        """The `Sweep` of `sweep_job`'s ``replayed`` result."""
        return self.at(self.sizes, (replayed, tuple(range(len(self.sizes)))), base_size=self.settings.size)

    def at(self, sizes: tuple[float, ...], replayed: tuple, *, base_size: float | None = None,
           metrics: list | None = None) -> Sweep:
        """The `Sweep` of ``sizes`` read from ``replayed`` = ``(ReplayResult, variant of each size)``;
        ``base_size`` defaults to the first size (a single-size run at that size). ``metrics``: the sizes'
        `opl.runtime.results.metrics.RunMetrics` when the caller has them already (else computed here)."""
        result, indices = replayed
        if metrics is None:
            metrics = metrics_of([(result, v) for v in indices])
        # A size whose opening margin the capital never covers skips every month: its flat zero P&L would
        # otherwise "hold" a loss-probability target and win the best-median pick over any size that trades.
        never = {s for s, m in zip(sizes, metrics) if m.exercise["skipped_share"] >= 100.0}
        notes = [f"size {', '.join(f'{s:g}' for s in sorted(never))} never opens a position: the capital "
                 f"({self.settings.capital:,.0f}) does not cover the opening margin, so no month is traded; such a "
                 "size cannot meet the target"] if never else []
        rows = [(s, m, False if s in never else self.verdict(m)) for s, m in zip(sizes, metrics)]
        recommended, reason = _recommend(rows, self.target, self.target_text, self.checked.report)
        return Sweep(replayed=result, sizes=tuple(sizes), indices=tuple(indices),
                     base_size=sizes[0] if base_size is None else base_size, rows=rows, never=never,
                     recommended=recommended, reason=reason, notes=notes)

    def scenarios(self, size: float, *, sweep: Sweep | None = None, kinds: tuple[str, ...] = ("stress", "sensitivity"),
                  progress: Callable[[int], None] | None = None,
                  meanwhile: Callable[[], None] | None = None) -> tuple[list, tuple | None]:
        """Replay the scenarios of ``kinds`` at ``size``; returns ``([(plan, RunMetrics)], base)``.

        Cost and margin scenarios are variants of one pass on the base paths; market scenarios get
        a pass each, side by side (`opl.runtime.engine.replay.replay_many`). ``base`` is ``(ReplayResult,
        variant)`` of the base case at ``size``: the sweep's own replay when it swept ``size`` (a variant does
        not depend on the other variants of its pass), else one more variant of the cost pass (or a pass of
        its own); None when neither ``sweep`` is given nor a pass was needed. ``meanwhile``: the caller's work
        done while the scenarios are replayed (`opl.runtime.engine.replay.replay_many`).
        """
        from opl.runtime.engine.replay import replay_many

        planned = self.scenario_jobs(size, sweep=sweep, kinds=kinds)
        # Each job's metrics as soon as its passes are in, while the workers replay the others (`ScenarioJobs.measured`).
        beside = {"finished": planned.measured} if meanwhile is None else {"meanwhile": meanwhile,
                                                                           "finished": planned.measured}
        return planned.finish(replay_many(planned.jobs, progress=progress, **beside))

    def scenario_jobs(self, size: float, *, sweep: Sweep | None = None,
                      kinds: tuple[str, ...] = ("stress", "sensitivity")) -> "ScenarioJobs":
        """The replays `scenarios` runs, as jobs for a caller that replays them beside its own."""
        from opl.runtime.engine.runspec import Variant

        _whole_lots(self.strategy, size)
        fee = self.settings.fee_factor
        plans = [p for p in self.plans if p.kind in kinds]
        cost_plans = [p for p in plans if not p.market]
        base = (sweep.replayed, sweep.indices[sweep.sizes.index(size)]) if sweep is not None and size in sweep.sizes \
            else None
        variants = [] if base is not None or sweep is None else [Variant(size=size, fee_factor=fee)]
        for plan in cost_plans:
            factors = dict(plan.factors)
            factors["fee_factor"] = fee * factors.get("fee_factor", 1.0)
            variants.append(Variant(size=size, **factors))
        market_plans = [p for p in plans if p.market]
        jobs = [(self.strategy, self.run, tuple(variants))] if variants else []
        jobs += [(plan.strategy, replace(self.run, process=plan.process), (Variant(size=size, fee_factor=fee),))
                 for plan in market_plans]
        return ScenarioJobs(jobs=jobs, plans=plans, cost_plans=cost_plans, market_plans=market_plans,
                            base=base, costs=bool(variants), base_variant=len(variants) > len(cost_plans))

    def result(self, sweep: Sweep, scenarios: list, *, size: float, reason: str, plot_given_size: bool = False):
        """The `SimulationResult` of a sweep and the scenarios run at ``size`` (for ``reason``).

        The plots show the sweep's base size when ``plot_given_size`` (`--set size=`), else ``size``.
        """
        from opl.runtime.results.metrics import ScenarioResult, SimulationResult

        import numpy as np

        run = self.run
        rows = sweep.rows
        base_index = sweep.sizes.index(sweep.base_size)
        # The plots show the size the user asked for (`--set size=`), else the size the scenarios run at: the
        # file's base size of 1 lot is rarely the one in question when it sweeps sizes.
        plot_index = base_index if plot_given_size or size not in sweep.sizes else sweep.sizes.index(size)
        plotted, plot_variant = sweep.replayed, sweep.indices[plot_index]
        plot_size = {"size": sweep.sizes[plot_index], "reason": "the base size" if plot_index == base_index else reason}
        monthly = plotted.monthly[plot_variant]
        equity = run.capital + np.concatenate([np.zeros((monthly.shape[0], 1)), np.cumsum(monthly, axis=1)], axis=1)
        return SimulationResult(
            file=self.path, run=self._run_record(sweep), model=self._model_record(sweep.replayed.signal_hits),
            strategy=_strategy_record(self.strategy),
            target=self.target_text, base=rows[base_index][1], base_holds=rows[base_index][2], sizes=rows,
            recommended_size=sweep.recommended, recommended_reason=sweep.reason,
            scenario_size={"size": size, "reason": reason} if scenarios else None,
            scenarios=[ScenarioResult(name=p.name, kind=p.kind, text=p.text, size=size, metrics=m,
                                      holds=self.verdict(m), definition=p.definition) for p, m in scenarios],
            notes=self.notes + sweep.notes, plot_size=plot_size, equity=equity,
            drawdowns=plotted.max_drawdown[plot_variant], peak_margin=plotted.peak_margin[plot_variant],
            monthly_returns=monthly / run.capital)

    def _run_record(self, sweep: Sweep) -> dict:
        """The result's ``run``: paths, seed, calendar, capital, the pack and its margin, rates and versions."""
        from opl.runtime.results.records import package_versions

        run, strategy, pack = self.run, self.strategy, self.run.pack
        cash_rate = strategy.rate if run.cash_rate is None else run.cash_rate
        return {"paths": run.paths, "seed": run.seed, "horizon_months": run.months,
                "steps_per_day": run.steps_per_day, "days_per_month": run.days_per_month,
                "tenor_days": strategy.tenor_days, "capital": run.capital, "currency": pack.currency,
                "rule_pack": pack.name, "margin_method": self.settings.margin_method,
                "margin_combinations": list(pack.margin.combinations), "size": sweep.base_size,
                "sizes": list(sweep.sizes),
                "chunk": run.chunk, "price": run.price, "rate": strategy.rate,
                "cash_rate": cash_rate, "margin_rate": cash_rate if run.margin_rate is None else run.margin_rate,
                "versions": package_versions()}

    def _model_record(self, hits) -> dict:
        """The result's ``model``: the price process, the implied-volatility rule, the levels, the signal's
        realised hit rate (``hits``: right, called) and the calibration."""
        process, strategy = self.run.process, self.strategy
        return {"components": list(process.components), "vol": process.vol,
                "garch": _asdict(process.garch), "jump": _asdict(process.jump), "regime": _asdict(process.regime),
                "daily_limit": process.limit, "implied": _asdict(strategy.smile),
                "levels": _asdict(strategy.levels),
                "realised_hit_rate": hits[0] / hits[1] if hits[1] else None, "calibration": self.calibration}


@dataclass
class ScenarioJobs:
    """The replays of `Prepared.scenarios` (``jobs``, for `opl.runtime.engine.replay.replay_many`) and how
    their results become the scenarios' rows (`finish`)."""
    jobs: list
    plans: list
    cost_plans: list
    market_plans: list
    base: tuple | None  # the sweep's replay and variant at the size, when it swept it
    costs: bool  # the first job is the cost pass (the cost scenarios' variants)
    base_variant: bool  # the cost pass's first variant is the base case at the size
    early: dict = field(default_factory=dict)  # (job, variant) -> (the job's result, its metrics): `measured`

    def _wanted(self, i: int, result) -> list[tuple]:
        """The scenarios' (plan, (result, variant)) of job ``i`` (its result ``result``)."""
        if self.costs and i == 0:
            first = 1 if self.base_variant else 0
            return [(plan, (result, first + k)) for k, plan in enumerate(self.cost_plans)]
        return [(self.market_plans[i - self.costs], (result, 0))]

    def measured(self, complete: list) -> None:
        """Compute the scenarios' metrics of the jobs ``complete`` ((job, result) pairs) now, side by side
        (`opl.runtime.engine.replay.replay_many`'s ``finished``: while the workers replay the other jobs);
        `finish` reads them, the numbers it would compute."""
        wanted = [(i, result, at) for i, result in complete for _, at in self._wanted(i, result)]
        for (i, result, (_, v)), metrics in zip(wanted, metrics_of([at for _, _, at in wanted])):
            self.early[(i, v)] = (result, metrics)

    def finish(self, passes: list) -> tuple[list, tuple | None]:
        """``([(plan, RunMetrics)], base)`` from the jobs' results, in the jobs' order (`Prepared.scenarios`)."""
        passes, base, wanted = list(passes), self.base, []
        for i, result in enumerate(passes):
            for plan, (_, v) in self._wanted(i, result):
                kept = self.early.get((i, v))
                wanted.append((plan, (result, v), kept[1] if kept is not None and kept[0] is result else None))
        if self.costs and self.base_variant:
            base = (passes[0], 0)
        late = iter(metrics_of([at for _, at, metrics in wanted if metrics is None]))
        results = [(plan, next(late) if metrics is None else metrics) for plan, _, metrics in wanted]
        order = {id(p): n for n, p in enumerate(self.plans)}
        results.sort(key=lambda pr: order[id(pr[0])])
        return results, base


def metrics_of(variants: list[tuple], *, errors: bool = True, without: list | None = None) -> list:
    """`opl.runtime.results.metrics.run_metrics` of each ``(ReplayResult, variant)``, in order (``errors=False``:
    without their standard errors); ``without``: those metrics computed without their errors already, to which
    the errors are added (`opl.runtime.results.metrics.with_errors`).

    Side by side in threads when there are several: numpy's sorts and reductions, most of the work, run
    outside the interpreter's lock, and the replay's workers are idle meanwhile (a hold-out's fourteen sizes
    at 50,000 paths are ~2 s of it). Each is the number computed alone: the threads share only read arrays.
    """
    from concurrent.futures import ThreadPoolExecutor

    from opl.runtime.engine.passes import _cores
    from opl.runtime.results.metrics import run_metrics, with_errors

    if without is not None:
        tasks = [(with_errors, (metrics, result, v)) for metrics, (result, v) in zip(without, variants)]
    else:
        tasks = [(lambda result, v: run_metrics(result, v, errors=errors), pair) for pair in variants]
    threads = min(len(tasks), _cores())
    if threads < 2:
        return [f(*args) for f, args in tasks]
    with ThreadPoolExecutor(max_workers=threads) as pool:  # joined here: no thread outlives it into a fork
        return list(pool.map(lambda task: task[0](*task[1]), tasks))


def _asdict(obj):
    from dataclasses import asdict, is_dataclass

    return asdict(obj) if obj is not None and is_dataclass(obj) else obj


def _strategy_record(strategy) -> dict:
    """The result's ``strategy``: the legs, futures, hedge, assignment, exits, risk, adjustment and guards."""
    return {"legs": [{"type": "call" if leg.is_call else "put", "side": "long" if leg.side > 0 else "short",
                      "qty": leg.qty, "strike": _asdict(leg.strike), "american": leg.american}
                     for leg in strategy.legs],
            "futures": strategy.futures,
            "hedge": _asdict(strategy.hedge), "assignment": _asdict(strategy.assignment),
            "exit_mode": strategy.exit_mode, "exit_triggers": len(strategy.exit_triggers),
            "guard_days": strategy.guard_days, "stop_loss": strategy.stop_loss,
            "margin_buffer": strategy.margin_buffer,
            "score_fn": strategy.score.name if strategy.score is not None else None,
            "adjust": None if strategy.adjust is None else {
                "playbook": [a.text for a in strategy.adjust.playbook],
                "cooldown_days": strategy.adjust.cooldown_days, "on_abort": strategy.adjust.on_abort},
            "guards": [{"kind": g.kind, "rule": g.text} for g in strategy.guards]}
