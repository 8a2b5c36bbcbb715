"""What the simulator's passes share: a variant of a replay (a size, a cost or margin scenario) does not
depend on the other variants of its pass, so a size sweep, the cost scenarios and the base case at the
scenarios' size can share one set of paths and one replay (`opl.simulation.run.Prepared`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opl.runtime.engine.replay import replay, replay_many
from opl.runtime.engine.runspec import Variant
from opl.lang.frontend import check_path
from opl.simulation.run import RunSettings, prepare, simulate_file

JUJUBE = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"
SMALL_RUN = ["experiment.horizon=2", "sim.workers=1"]


def _arrays(result, v: int) -> dict[str, np.ndarray]:
    out = {"monthly": result.monthly[v], "max_drawdown": result.max_drawdown[v], "peak_margin": result.peak_margin[v]}
    out.update({f"bucket {k}": a[v] for k, a in result.buckets.items()})
    out.update({f"counter {k}": a[v] for k, a in result.counters.items()})
    return out


def _assert_same(a, va: int, b, vb: int) -> None:
    left, right = _arrays(a, va), _arrays(b, vb)
    assert left.keys() == right.keys()
    for key in left:
        np.testing.assert_allclose(left[key], right[key], rtol=1e-9, atol=1e-9, err_msg=key)


@pytest.fixture(scope="module")
def jujube():
    """The jujube file (hedge, assignment, margin, exits, the adjustment module, guards) at 150 paths."""
    return prepare(check_path(JUJUBE), RunSettings(paths=150, overrides=tuple(SMALL_RUN)))


def test_a_variant_does_not_depend_on_the_other_variants_of_its_pass(jujube):
    sizes = (1.0, 2.0, 5.0, 10.0, 20.0)
    costs = (Variant(size=10.0, fee_factor=2.0), Variant(size=10.0, slippage_factor=3.0),
             Variant(size=10.0, margin_factor=1.5))
    together = replay(strategy=jujube.strategy, run=jujube.run, variants=tuple(Variant(size=s) for s in sizes) + costs)
    assert np.any(together.counters["hedge_trades"]) and np.any(together.buckets["adjustments"])
    for v, variant in enumerate(tuple(Variant(size=s) for s in sizes) + costs):
        alone = replay(strategy=jujube.strategy, run=jujube.run, variants=(variant,))
        _assert_same(together, v, alone, 0)


def test_the_scenarios_base_at_an_unswept_size_is_a_variant_of_the_cost_pass(jujube):
    sweep = jujube.sweep()
    results, (base, v) = jujube.scenarios(3.0, sweep=sweep)
    assert base is not sweep.replayed and len(base.variants) == 1 + sum(not p.market for p in jujube.plans)
    alone = prepare(check_path(JUJUBE), RunSettings(paths=150, overrides=(*SMALL_RUN, "experiment.sizes=[3]",
                                                                         "size=3"))).sweep()
    _assert_same(base, v, alone.replayed, 0)
    # At a swept size the base case is the sweep's own replay: no pass of its own.
    _, (same, index) = jujube.scenarios(5.0, sweep=sweep, kinds=())
    assert same is sweep.replayed and sweep.sizes[index] == 5.0


def test_simulate_file_replays_each_set_of_paths_once(monkeypatch):
    calls = []
    real = replay_many

    def counting(jobs, progress=None, **beside):
        calls.extend(len(v) for _, _, v in jobs)
        return real(jobs, progress=progress, **beside)

    monkeypatch.setattr("opl.runtime.engine.replay.replay_many", counting)
    result = simulate_file(JUJUBE, paths=60, overrides=SMALL_RUN)
    market = sum(s.name not in ("slippage", "fees_up", "margin_up") for s in result.scenarios)
    # The sweep (every size), one pass for the cost scenarios together, one per market scenario.
    assert calls == [len(result.sizes), 2] + [1] * market


def test_every_market_scenario_redraws_the_base_draws_it_does_not_change(jujube):
    from opl.runtime.engine.processes import PathGenerator

    def month(process, seed=7):
        gen = PathGenerator(spec=process, paths=400, price=jujube.run.price, month_years=30 / 365, seed=seed)
        gen.next_month()
        return gen.next_month()

    base = month(jujube.run.process)
    market = [p for p in jujube.plans if p.market]
    assert {p.name for p in market} == {"vol_up", "gap", "sr_shift", "hit_rate"}
    for plan in market:
        shocked, again = month(plan.process), month(plan.process)
        # Deterministic: the same seed gives the same scenario paths, bit for bit.
        assert np.array_equal(shocked.price, again.price) and np.array_equal(shocked.signal, again.signal)
        # Common random numbers: the signal is the base's; only what the scenario changes differs.
        assert np.array_equal(shocked.signal, base.signal), plan.name
        assert not np.array_equal(shocked.price, base.price), plan.name
        if plan.name != "hit_rate":
            assert np.array_equal(shocked.realised, base.realised), plan.name
    # sr_shift only adds a drift: every path's log price moves by the same amount each step (up to the daily limit).
    drift = np.diff(np.log(month(next(p for p in market if p.name == "sr_shift").process).price), axis=1) \
        - np.diff(np.log(base.price), axis=1)
    assert np.mean(np.isclose(drift, drift[0, 0])) > 0.95


def _same_pass(a, b) -> None:
    """Two pass results (`_replay_pass`'s first item) equal bit for bit."""
    for key in ("monthly", "max_drawdown", "peak_margin"):
        assert np.array_equal(a[key], b[key]), key
    for kind in ("buckets", "counters"):
        assert a[kind].keys() == b[kind].keys()
        for name in a[kind]:
            assert np.array_equal(a[kind][name], b[kind][name]), name


def test_a_lockstep_pass_gives_each_job_its_numbers_alone_drawing_each_month_once(jujube, monkeypatch):
    """The jobs of a simulation replayed in lockstep (`_replay_lockstep`: month m of every job, then m + 1)
    share a chunk's draws, the months of jobs on the same paths and the marks of jobs with the same legs,
    and each job gets the numbers it gets alone, bit for bit — ledgers, drawdowns, counters and the signal's
    hits. The shocks of a month are drawn once for all of them."""
    from dataclasses import replace

    import opl.runtime.engine.processes as processes
    import opl.runtime.engine.passes as passes_module
    from opl.runtime.engine.months import _Month

    run = replace(jujube.run, paths=60, chunk=30, months=2)
    market = {p.name: p for p in jujube.plans if p.market}
    sizes = (Variant(size=1.0), Variant(size=5.0))
    jobs = [(jujube.strategy, run, sizes),
            (jujube.strategy, run, (Variant(size=5.0, fee_factor=2.0),)),  # the same months and marks
            (replace(jujube.strategy, stop_loss=0.01), run, sizes)]  # the same marks, another account
    jobs += [(plan.strategy, replace(run, process=plan.process), (Variant(size=5.0),)) for plan in market.values()]
    group = ((0, 30), (1, 30))
    alone = [passes_module._replay_pass(s, r, v, group, None, False) for s, r, v in jobs]
    drawn = []
    real = processes.Draws.rng
    monkeypatch.setattr(processes.Draws, "rng", lambda self, stream, what=(): drawn.append(stream)
                        or real(self, stream, what))
    made = []
    real_month = _Month.__init__
    monkeypatch.setattr(_Month, "__init__", lambda self, *a: made.append(1) or real_month(self, *a))
    together = passes_module._replay_lockstep(jobs, group, None)
    for (got, trace, hits), (ref, _, ref_hits) in zip(together, alone):
        _same_pass(got, ref)
        assert hits == ref_hits and trace is None
    # Two chunks, two months: the shocks once a chunk-month for every job (all draw Student-t shocks alike).
    assert drawn.count("shocks") == 2 * 2
    # The first three jobs hold one set of marks a month; each market scenario its own.
    assert len(made) == 2 * (1 + len(market))


def test_jobs_of_the_same_passes_are_replayed_in_lockstep_cut_for_the_workers(jujube):
    """`_replay_jobs` replays jobs of the same passes and seed together (one task per pass in one process;
    runs of consecutive jobs giving each of several workers two tasks), given months alone, and every job's
    passes stay in chunk order; replay_many's results are each job's alone."""
    from dataclasses import replace

    import opl.runtime.engine.passes as passes_module

    run = replace(jujube.run, paths=50, chunk=10, months=1, workers=1)
    jobs = [(jujube.strategy, run, (Variant(size=1.0),))] * 5 + [(jujube.strategy, replace(run, seed=3), ())]
    plans = [[((0, 10), (1, 10), (2, 10)), ((3, 10), (4, 10))]] * 6
    one = passes_module._lockstep_tasks(jobs, plans, 1)
    assert one == [((0, 1, 2, 3, 4), plans[0][0]), ((0, 1, 2, 3, 4), plans[0][1]), ((5,), plans[0][0]),
                   ((5,), plans[0][1])]
    two = passes_module._lockstep_tasks(jobs, plans, 2)
    assert [t[0] for t in two] == [(0, 1, 2), (3, 4), (0, 1, 2), (3, 4), (5,), (5,)]
    # Six jobs of one pass for two workers (a completion's): four runs of 2, 2, 1 and 1 jobs, so each worker
    # replays three jobs — cut by twos, one worker replayed four while the other replayed two.
    single = [(jujube.strategy, run, ())] * 6
    assert [t[0] for t in passes_module._lockstep_tasks(single, [[plans[0][0]]] * 6, 2)] == [
        (0, 1), (2, 3), (4,), (5,)]
    given = replace(run, source=lambda chunk, paths: None)
    assert passes_module._lockstep_tasks([jobs[0], (jujube.strategy, given, ())], plans[:2], 1) == [
        ((0,), plans[0][0]), ((0,), plans[0][1]), ((1,), plans[0][0]), ((1,), plans[0][1])]
    market = [(p.strategy, replace(run, process=p.process, paths=30), (Variant(size=2.0),)) for p in jujube.plans
              if p.market]
    together = replay_many(market)
    for (strategy, r, variants), got in zip(market, together):
        alone = _arrays(replay(strategy=strategy, run=r, variants=variants), 0)
        assert all(np.array_equal(a, alone[key]) for key, a in _arrays(got, 0).items())


def test_marks_copied_from_a_month_on_partly_the_same_paths_are_the_computed_marks():
    """A series whose paths agree with another series' on some paths (`SeriesMarks.share`: a ``hit_rate``
    scenario's month and the base month) copies the marks the other has there, with their gamma or owing it,
    and computes the rest: every element the bits of marking it alone, and fewer marks computed."""
    from opl.runtime.engine import kernels
    from opl.runtime.engine.marking import SmileRule

    rng = np.random.default_rng(11)
    paths, steps = 800, 12
    forward = 10_400 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (paths, steps)), axis=1))
    vol = 0.25 * np.exp(rng.normal(0.0, 0.3, (paths, steps)))
    moved = rng.random(paths) < 0.5  # the other scenario's paths: half of them moved
    other = np.where(moved[:, None], forward * 1.01, forward)
    strike = np.round(forward[:, 0] / 100) * 100
    t = 30 / 365 * (steps - 1 - np.arange(steps)) / (steps - 1)
    common = dict(is_call=False, american=True, vol=vol, strike=strike, t=t, smile=SmileRule(), rate=0.015)
    alone = kernels.mark_series(forward=other, **common)
    source = kernels.SeriesMarks(forward=forward, **common)
    source.track()
    copied = kernels.SeriesMarks(forward=other, **common)
    copied.share(source, ~moved)
    asked, computed = [], []
    real = kernels.SeriesMarks._run
    for j in range(steps):
        source.mark(rng.random(paths) < 0.9, (j, j + 1), gamma=j % 2 == 0)  # owes its gamma on odd steps
        if j % 4 == 1:
            source.gamma_at(j, rng.random(paths) < 0.3)
        where = rng.random(paths) < 0.8
        asked.append(int(np.count_nonzero(where)))
        kernels.SeriesMarks._run = lambda self, need, j0, j1, gamma, count: computed.append(count) or real(
            self, need, j0, j1, gamma, count)
        try:
            copied.mark(where, (j, j + 1), gamma=j % 3 != 0)
        finally:
            kernels.SeriesMarks._run = real
        copied.gamma_at(j)
        for got, ref in zip((copied.value, copied.delta, copied.gamma, copied.exercise), alone):
            assert np.array_equal(got[where, j], ref[where, j])
    assert sum(computed) < 0.8 * sum(asked)


def test_a_scenario_on_partly_the_base_paths_copies_the_base_marks_in_lockstep(jujube, monkeypatch):
    """``hit_rate`` changes the months of some paths only: replayed in lockstep after a job on the base paths
    with the same legs, it copies that job's marks on the paths that agree, and both get their numbers alone."""
    from dataclasses import replace

    from opl.runtime.engine import kernels
    import opl.runtime.engine.passes as passes_module

    run = replace(jujube.run, paths=60, chunk=60, months=2)
    hit = next(p for p in jujube.plans if p.name == "hit_rate")
    jobs = [(jujube.strategy, run, (Variant(size=5.0, fee_factor=2.0),)),
            (hit.strategy, replace(run, process=hit.process), (Variant(size=5.0),))]
    group = ((0, 60),)
    alone = [passes_module._replay_pass(s, r, v, group, None, False) for s, r, v in jobs]
    copies = []
    real = kernels.SeriesMarks._copied

    def counting(self, need, j, lazy):
        left, owes = real(self, need, j, lazy)
        copies.append(int(np.count_nonzero(need)) - int(np.count_nonzero(left)))
        return left, owes

    monkeypatch.setattr(kernels.SeriesMarks, "_copied", counting)
    together = passes_module._replay_lockstep(jobs, group, None)
    for (got, _, hits), (ref, _, ref_hits) in zip(together, alone):
        _same_pass(got, ref)
        assert hits == ref_hits
    assert sum(copies) > 0


def test_a_scenario_on_partly_the_base_paths_copies_the_stored_base_marks(jujube, monkeypatch):
    """`opl loop`'s workers read the base months' marks from the month store (`MonthStore.reader`): a
    ``hit_rate`` scenario copies them on the paths that agree and gets its numbers alone."""
    from dataclasses import replace

    from opl.runtime.engine import kernels, monthstore
    import opl.runtime.engine.passes as passes_module

    run = replace(jujube.run, paths=60, chunk=60, months=2)
    hit = next(p for p in jujube.plans if p.name == "hit_rate")
    group, variants = ((0, 60),), (Variant(size=5.0),)
    store = monthstore.MonthStore()
    with monthstore.sharing(store):
        passes_module._replay_pass(jujube.strategy, run, variants, group, None, False)  # the base months, marked
    alone = passes_module._replay_pass(hit.strategy, replace(run, process=hit.process), variants, group, None, False)
    copies = []
    real = kernels.SeriesMarks._copied

    def counting(self, need, j, lazy):
        left, owes = real(self, need, j, lazy)
        copies.append(int(np.count_nonzero(need)) - int(np.count_nonzero(left)))
        return left, owes

    monkeypatch.setattr(kernels.SeriesMarks, "_copied", counting)
    with monthstore.sharing(store.reader()):
        got = passes_module._replay_pass(hit.strategy, replace(run, process=hit.process), variants, group, None,
                                         False)
    _same_pass(got[0], alone[0])
    assert got[2] == alone[2] and sum(copies) > 0


def test_a_family_of_jobs_is_cut_into_one_run_for_the_workers(jujube):
    """The scenarios' jobs in `_lockstep_tasks`' runs: ``hit_rate`` (a family with the cost pass on the base
    paths: `passmonths._family`) beside the cost pass, so that it copies its marks; every job's chunks in order.
    Two equal passes for two workers: every job in each pass's task (their draws made once a chunk); three
    passes for two workers: cut into runs again."""
    from dataclasses import replace

    import opl.runtime.engine.passes as passes_module

    run = replace(jujube.run, paths=50, chunk=25, months=1)
    market = [p for p in jujube.plans if p.market]
    jobs = [(jujube.strategy, run, (Variant(size=1.0, fee_factor=2.0),))] + [
        (p.strategy, replace(run, process=p.process), (Variant(size=1.0),)) for p in market]
    hit = 1 + next(n for n, p in enumerate(market) if p.name == "hit_rate")
    assert hit == len(jobs) - 1
    plans = [[((0, 25),), ((1, 25),)]] * len(jobs)
    tasks = passes_module._lockstep_tasks(jobs, plans, 2)
    assert [t[0] for t in tasks] == [(0, hit, 1, 2, 3), (0, hit, 1, 2, 3)]
    assert [t[1] for t in tasks] == plans[0]
    three = [[((0, 25),), ((1, 25),), ((2, 25),)]] * len(jobs)
    tasks = passes_module._lockstep_tasks(jobs, three, 2)
    assert [t[0] for t in tasks] == [(0, hit, 1), (2, 3)] * 3


def test_a_sweeps_metrics_are_computed_side_by_side_each_as_alone(jujube, monkeypatch):
    # The metrics of a sweep's sizes (a hold-out's fourteen at 50,000 paths: ~2 s of the calling process's
    # serial work) run in threads; each is the number run_metrics gives alone.
    import threading

    import opl.runtime.results.metrics as metrics_module
    from opl.runtime.engine.passes import _cores
    from opl.runtime.results.metrics import run_metrics

    if _cores() < 2:
        pytest.skip("one core: computed one after the other")
    sweep = jujube.sweep()
    alone = [run_metrics(sweep.replayed, v).to_dict() for v in sweep.indices]
    where = []
    real = metrics_module.run_metrics
    monkeypatch.setattr(metrics_module, "run_metrics",
                        lambda result, v, **kw: where.append(threading.current_thread()) or real(result, v, **kw))
    again = jujube.at(sweep.sizes, (sweep.replayed, sweep.indices))
    assert [m.to_dict() for _, m, _ in again.rows] == alone
    assert len(where) == len(sweep.sizes) and threading.main_thread() not in where


def test_a_sweeps_standard_errors_added_later_are_the_errors_computed_with_its_metrics(jujube):
    # `opl simulate` picks the scenarios' size from its sweep's metrics without their standard errors and adds
    # these while the scenarios' workers run (`Sweep.add_errors`): the same numbers, once.
    whole = jujube.sweep()
    sweep = jujube.sweep(errors=False)
    assert sweep.errors_pending and all(not m.standard_errors for _, m, _ in sweep.rows)
    assert sweep.scenario_size() == whole.scenario_size() and sweep.recommended == whole.recommended
    sweep.add_errors()
    assert [(s, m.to_dict(), h) for s, m, h in sweep.rows] == [(s, m.to_dict(), h) for s, m, h in whole.rows]
    assert all(m.standard_errors for _, m, _ in sweep.rows) and not sweep.errors_pending
    rows = sweep.rows
    sweep.add_errors()
    assert sweep.rows is rows


@pytest.mark.parametrize("workers", [1, 2])
def test_replay_many_does_the_callers_work_once_beside_the_replays(jujube, workers):
    # Forked workers replay while this process does ``meanwhile``; without them it is done before. Either way
    # once, and the jobs' numbers are their own.
    import os
    from dataclasses import replace

    run = replace(jujube.run, workers=workers, paths=300, chunk=150)
    jobs = [(jujube.strategy, run, (Variant(size=1.0),)),
            (jujube.strategy, run, (Variant(size=2.0, slippage_factor=3.0),))]
    calls, finished = [], []
    together = replay_many(jobs, meanwhile=lambda: calls.append(os.getpid()), finished=finished.extend)
    assert calls == [os.getpid()]
    # Every job handed over once, as soon as it is complete: the result returned.
    assert sorted(i for i, _ in finished) == [0, 1] and all(result is together[i] for i, result in finished)
    for (strategy, run, variants), result in zip(jobs, together):
        _assert_same(result, 0, replay(strategy=strategy, run=replace(run, workers=1), variants=variants), 0)
    assert replay_many([], meanwhile=lambda: calls.append(0)) == [] and calls[-1] == 0


def test_scenario_metrics_measured_as_their_jobs_finish_are_the_metrics_computed_at_the_end(jujube):
    # `opl simulate` computes a scenario job's metrics as soon as its passes are in (`ScenarioJobs.measured`),
    # while the workers replay the others; `finish` reads them: the numbers it computes itself.
    planned = jujube.scenario_jobs(5.0)
    results = replay_many(planned.jobs)
    at_end, _ = planned.finish(results)
    planned.measured([(0, results[0]), (2, results[2])])
    assert set(planned.early) == {(0, 0), (0, 1), (2, 0)}
    read, _ = planned.finish(results)
    assert [(p.name, m.to_dict()) for p, m in read] == [(p.name, m.to_dict()) for p, m in at_end]
    assert read[[p.name for p, _ in read].index(planned.market_plans[1].name)][1] is planned.early[(2, 0)][1]


def test_jobs_whose_months_the_store_holds_are_a_task_each_and_get_their_numbers_alone(jujube):
    """`opl loop`'s completion: the scenario jobs' months made here and stored (`_months_made_here`), nothing
    left for a lockstep run to share, so each job is a task of its own (`_lockstep_tasks`) for two workers;
    without the months in the store they stay cut in runs. Every job's numbers are its own alone."""
    from dataclasses import replace

    from opl.runtime.engine import monthstore
    import opl.runtime.engine.passes as passes_module

    run = replace(jujube.run, paths=40, chunk=40, months=1, workers=2)
    market = [p for p in jujube.plans if p.market]
    jobs = [(jujube.strategy, run, (Variant(size=1.0, fee_factor=2.0),))] + [
        (p.strategy, replace(run, process=p.process), (Variant(size=1.0),)) for p in market]
    plans = [[((0, 40),)]] * len(jobs)
    cut = [t[0] for t in passes_module._lockstep_tasks(jobs, plans, 2)]
    assert len(cut) < len(jobs)
    alone = [replay(strategy=s, run=replace(r, workers=1), variants=v) for s, r, v in jobs]
    store = monthstore.MonthStore()
    with monthstore.sharing(store):
        passes_module._months_made_here(jobs, plans)
        assert sorted(t[0] for t in passes_module._lockstep_tasks(jobs, plans, 2)) == [(i,) for i in range(len(jobs))]
        assert len(passes_module._lockstep_tasks(jobs, plans, 1)) == 1  # one process: one lockstep run still
        together = replay_many(jobs)
    for got, one in zip(together, alone):
        mine, theirs = _arrays(got, 0), _arrays(one, 0)
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
        assert got.signal_hits == one.signal_hits


def test_simulate_keeps_the_sweeps_marks_for_the_cost_scenarios(monkeypatch):
    """`opl simulate` keeps the sweep's months and marks (`_sweep_and_scenarios`: a store of incomplete marks):
    the cost scenarios' pass, on the sweep's paths with its legs, reads the sweep's marks and marks only what it
    holds that the sweep did not — here nothing —, and the result is the one made without the kept marks."""
    import json

    from opl.runtime.engine import kernels
    import opl.runtime.engine.passes as passes_module
    import opl.simulation.run as run_module

    marked, current = [], [None]
    real_run, real_month = kernels.SeriesMarks._run, passes_module._JobReplay.month

    def counting(self, need, j0, j1, gamma, marks):
        marked.append((current[0], marks))
        return real_run(self, need, j0, j1, gamma, marks)

    def month(self, m):
        current[0] = len(self.account.sizes)  # the sweep's five sizes, the cost pass's two scenarios, one
        return real_month(self, m)

    monkeypatch.setattr(kernels.SeriesMarks, "_run", counting)
    monkeypatch.setattr(passes_module._JobReplay, "month", month)

    def simulated() -> tuple[dict, int, int]:
        marked.clear()
        result = simulate_file(JUJUBE, paths=60, overrides=SMALL_RUN)
        cost_marks = sum(n for variants, n in marked if variants == 2)  # the pass of slippage and fees_up
        return json.loads(json.dumps(result.to_dict(), default=str)), sum(n for _, n in marked), cost_marks

    kept, kept_marks, kept_cost = simulated()
    monkeypatch.setattr(run_module, "SWEEP_STORE_BYTES", 0)  # nothing fits: every pass marks its own months
    alone, alone_marks, alone_cost = simulated()
    assert kept == alone
    # (a market scenario on partly the base paths copies more of them: what the sweep marked too)
    assert alone_cost > 0 and kept_cost == 0 and kept_marks <= alone_marks - alone_cost


def test_simulate_keeps_no_months_without_cost_scenarios(monkeypatch, tmp_path):
    """A file whose scenarios all change the market (or with none) has no pass to read the sweep's months: no
    store is made for them, so a large one-process run holds no more than its passes' working sets."""
    from opl.runtime.engine import monthstore

    made = []
    real = monthstore.MonthStore.__init__

    def recording(self, *args, **kwargs):
        made.append(kwargs.get("complete_marks", True))
        real(self, *args, **kwargs)

    monkeypatch.setattr(monthstore.MonthStore, "__init__", recording)
    text = JUJUBE.read_text()
    market_only = tmp_path / "market_only.opl"
    market_only.write_text(text.replace("  stress [ vol_up(+50%), gap(-8%), slippage(x3), sr_shift(-3%) ]\n",
                                        "  stress [ gap(-8%) ]\n")
                           .replace("  sensitivity [ fees_up(x2), hit_rate(0.7) ]\n", "  sensitivity [ hit_rate(0.7) ]\n"))
    assert market_only.read_text() != text
    simulate_file(market_only, paths=60, overrides=SMALL_RUN)
    assert made == []
    simulate_file(JUJUBE, paths=60, overrides=SMALL_RUN)  # fees_up and slippage: the cost pass reads them
    assert made and set(made) == {False}  # the store of incomplete marks (and its reader)
