"""``opl loop FILE --max-iter N --runs DIR [--proposer builtin|openai] [--model M] [--base-url URL]
[--resume RUN] [--data synth|DIR]``: propose, evaluate, criticise and revise until the target is met,
progress stalls or the budget runs out; then the hold-out re-measure and the final report.

Exit codes: 0 the loop ran to a stop (whether or not the target is reachable — the answer is in the
report); 1 the file has errors, a data file breaks its contract, or the file as written cannot be
simulated; 2 usage or I/O error (bad option, unreadable file, a run folder that cannot be resumed, an
OpenAI proposer without key or endpoint); 3 no proposal could be obtained at all (the proposer failed on
every iteration, e.g. an endpoint that refused every call): nothing was searched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from opl.cli.options import FiniteFloatRange, cluster_options, cluster_session
from opl.cli.report import EXIT_FINDINGS, EXIT_OK, handled
from opl.closedloop.evaluate import DEFAULT_HOLDOUT_PATHS, DEFAULT_PATHS

#: The loop ran but never obtained a proposal (module docstring).
EXIT_NO_PROPOSAL = 3


@click.command("loop")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--max-iter", "max_iter", type=click.IntRange(0, 10_000), default=None,
              help="Proposals after the baseline (default: the file's budget(iterations=…), else 20).")
@click.option("--runs", "runs", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Folder that holds the runs; each run gets <file stem>-NNN inside it.")
@click.option("--proposer", type=click.Choice(["builtin", "openai"]), default=None,
              help="Who proposes candidates (default builtin: offline, deterministic).")
@click.option("--model", "model", default=None, help="Model name for --proposer openai.")
@click.option("--base-url", "base_url", default=None,
              help="OpenAI-compatible endpoint for --proposer openai (vLLM, Ollama, llama.cpp, DeepSeek, …, e.g. "
                   "http://127.0.0.1:11434/v1). The key is read from OPENAI_API_KEY; a local server needs none.")
@click.option("--resume", "resume", type=click.Path(file_okay=False), default=None,
              help="Continue this run folder after its last finished iteration.")
@click.option("--data", "data", default=None, metavar="synth|DIR",
              help="Market data: `synth` writes the synthetic jujube dataset into the run; DIR holds futures.csv "
                   "(+ signals.csv, factors.csv, options.csv, iv_summary.csv), or raw exchange/vendor files, "
                   "imported into the run's data/ first (`opl data import`, logged). Runs the assumption tests "
                   "and the calibration.")
@click.option("--repair", is_flag=True, help="Make the data loaders' documented repairs (each one logged).")
@click.option("--paths", type=click.IntRange(50, 1_000_000), default=DEFAULT_PATHS, show_default=True,
              help="Paths per candidate (every candidate sees the same seed).")
@click.option("--holdout-paths", "holdout_paths", type=click.IntRange(50, 10_000_000), default=DEFAULT_HOLDOUT_PATHS,
              show_default=True, help="Paths of the final re-measure on fresh seeds.")
@click.option("--seed", type=click.IntRange(0, 2**62), default=None,
              help="Seed of the search (default: the experiment's seed, else 0); the hold-out uses seed + 1000003.")
@click.option("--minutes", type=FiniteFloatRange(0, min_open=True), default=None, help="Wall-time budget.")
@click.option("--tokens", type=click.IntRange(1), default=None, help="Token budget of the proposer.")
@click.option("--cost", type=FiniteFloatRange(0, min_open=True), default=None,
              help="Cost budget of the proposer, in the currency of --token-price.")
@click.option("--token-price", "token_price", default=None, metavar="IN,OUT",
              help="Prices per million prompt and completion tokens (e.g. 0.15,0.60), for --cost.")
@click.option("--converge-rounds", "converge_rounds", type=click.IntRange(1), default=None,
              help="Iterations without gain before stopping (default 5).")
@click.option("--min-gain", "min_gain", type=FiniteFloatRange(0), default=None,
              help="Smallest relative objective gain that counts, in percent (default 0.1).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A simulator setting for every candidate of the run (keys: opl/lang/experiment/settings.py).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the answer.")
@click.option("--batch", "batch", type=click.IntRange(1, 1024), default=None, metavar="K",
              help="Candidates proposed from the same best and evaluated side by side per round (default: the "
                   "cluster's workers with --scheduler/--workers, else 1; a resumed run keeps its own).")
@cluster_options
@handled
def loop(file: str | None, max_iter: int | None, runs: str, proposer: str | None, model: str | None,
         base_url: str | None, resume: str | None, data: str | None, repair: bool, paths: int, holdout_paths: int,
         seed: int | None, minutes: float | None, tokens: int | None, cost: float | None,
         token_price: str | None, converge_rounds: int | None,
         min_gain: float | None, overrides: tuple[str, ...], quiet: bool, batch: int | None, scheduler: str | None,
         workers: int | None) -> None:
    """Improve FILE's strategy and experiment design in a closed loop; answer whether its target is reachable."""
    from opl.closedloop.run import LoopSettings, open_run, run_loop, start_run

    flags = {"max_iterations": max_iter, "minutes": minutes, "tokens": tokens, "cost": cost,
             "token_price": _token_price(token_price), "converge_rounds": converge_rounds,
             "min_gain": None if min_gain is None else min_gain / 100}
    if file is None and resume is None:
        raise click.UsageError("give FILE, or --resume RUN to continue a run")
    if cost is not None and token_price is None and resume is None:
        raise click.UsageError("--cost needs --token-price IN,OUT (currency per million prompt and completion tokens)")
    _check_overrides(overrides)
    if data is not None and data != "synth":
        from opl.data.importer import has_data_files, is_canonical
        from opl.closedloop.inputs import DATA_FILES

        if not Path(data).is_dir():
            raise click.UsageError(f"--data {data}: not a folder (give `synth` or a folder with futures.csv)")
        raw = has_data_files(data) and not is_canonical(data)
        if not raw and not (Path(data) / DATA_FILES["futures"]).is_file():
            raise click.UsageError(f"--data {data}: no {DATA_FILES['futures']} in the folder")
    with cluster_session(scheduler, workers) as session:  # before any work: an unreachable scheduler is exit 2
        if resume is not None:
            archive = open_run(resume, rules_flags=flags, batch=batch)
            if file is not None and Path(file).read_text(encoding="utf-8", errors="replace") != \
                    archive.path("initial.opl").read_text(encoding="utf-8"):
                raise click.UsageError(f"{file} is not the file run {resume} started from (initial.opl)")
            recorded = archive.settings().get("proposer", {})
            agent = _proposer(proposer or recorded.get("proposer", "builtin"), model or recorded.get("model"),
                              base_url or recorded.get("base_url"))
        else:
            agent = _proposer(proposer or "builtin", model, base_url)
            settings = LoopSettings(paths=paths, seed=seed, holdout_paths=holdout_paths, data=data, repair=repair,
                                    overrides=tuple(overrides),
                                    batch=batch or (session.cluster.workers if session.cluster is not None else 1))
            config = agent.config() if hasattr(agent, "config") else {"proposer": agent.name}
            archive = start_run(file, runs, settings, rules_flags=flags, proposer_config=config)
        from opl.closedloop.redact import redact

        scrub = getattr(agent, "redact", None) or redact  # the key never reaches stdout/stderr either
        printer = _Printer(quiet, archive.root, scrub)
        with printer:
            outcome = run_loop(archive, agent, on_event=printer.event, cluster=session.cluster)
    click.echo("")
    click.echo(scrub(_plain(outcome.answer)))
    click.echo(scrub(f"stop: {outcome.stop.kind.replace('_', ' ')} — {outcome.stop.reason}"))
    if outcome.report is not None:
        click.echo(f"report: {outcome.report}")
    if outcome.stop.kind == "baseline_failed":
        error = (outcome.records[0].get("evaluation") or {}).get("error") or ""
        click.echo(scrub(error), err=True, nl=False)
        sys.exit(EXIT_FINDINGS)
    if outcome.no_proposal:
        sys.exit(EXIT_NO_PROPOSAL)
    sys.exit(EXIT_OK)


def _check_overrides(overrides: tuple[str, ...]) -> None:
    """Bad ``--set`` items are usage errors before any run folder is made."""
    from opl.lang.experiment.settings import SettingsError, SimSettings, parse_overrides

    try:
        parse_overrides(list(overrides), SimSettings())
    except SettingsError as error:
        raise click.UsageError(f"--set {error.key or ''}: {error}" + (f" ({error.help})" if error.help else "")) \
            from None


def _token_price(text: str | None) -> tuple[float, float] | None:
    """``IN,OUT`` (per million prompt / completion tokens) as two finite, non-negative numbers."""
    if text is None:
        return None
    import math

    parts = text.split(",")
    try:
        prices = tuple(float(p) for p in parts)
    except ValueError:
        prices = ()
    if len(prices) != 2 or not all(math.isfinite(p) and p >= 0 for p in prices):
        raise click.UsageError(f"--token-price {text}: give two non-negative numbers IN,OUT, e.g. 0.15,0.60")
    return prices


def _proposer(name: str, model: str | None, base_url: str | None):
    if name == "builtin":
        if model or base_url:
            raise click.UsageError("--model and --base-url are for --proposer openai")
        from opl.closedloop.builtin import BuiltinProposer

        return BuiltinProposer()
    from opl.closedloop.llm import OpenAIProposer, ProposerConfigError

    try:
        return OpenAIProposer(model or "", base_url)
    except ProposerConfigError as error:
        raise click.UsageError(str(error)) from None


def _plain(markdown: str) -> str:
    return markdown.replace("**", "").replace("`", "")


class _Printer:
    """Progress lines on stdout; a spinner naming the current pass on a terminal."""

    def __init__(self, quiet: bool, root: Path, scrub):
        self.quiet = quiet
        self.root = root
        self.scrub = scrub
        self.status = None

    def __enter__(self):
        if not self.quiet:
            click.echo(f"run: {self.root}")
            if sys.stderr.isatty():
                from rich.console import Console

                self.status = Console(stderr=True).status("starting", spinner="dots")
                self.status.start()
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.stop()
        return False

    def _spin(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)

    def event(self, kind: str, payload: dict) -> None:
        handler = None if self.quiet else self._EVENTS.get(kind)
        if handler is not None:
            handler(self, payload)

    def _stage(self, payload: dict) -> None:
        self._spin(f"data: {payload['stage']}")
        click.echo(f"data: {payload['stage']}")

    def _untested(self, payload: dict) -> None:
        click.echo(f"not tested on data: {payload['text']}")

    def _proposing(self, payload: dict) -> None:
        self._spin(f"iteration {payload['iteration']}: proposing from iteration {payload['best_iteration']}")

    def _pass(self, payload: dict) -> None:
        self._spin(f"simulating: {payload['stage']}")

    def _holdout(self, payload: dict) -> None:
        click.echo(f"hold-out: iteration {payload['iteration']} on {payload['paths']:,} fresh paths "
                   f"(seed {payload['seed']})")
        self._spin("hold-out re-measure")

    def _exhausted(self, payload: dict) -> None:
        click.echo(self.scrub(f"proposer: {payload['reason']}"))

    def _iteration(self, payload: dict, *, resumed: bool = False) -> None:
        click.echo(self.scrub(_line(payload["record"], resumed=resumed)))

    def _resumed(self, payload: dict) -> None:
        self._iteration(payload, resumed=True)

    #: The loop's events this display shows, each with its handler; any other kind is not shown.
    _EVENTS = {"stage": _stage, "untested": _untested, "proposing": _proposing, "pass": _pass, "holdout": _holdout,
               "exhausted": _exhausted, "iteration": _iteration, "resumed": _resumed}

def _line(record: dict, *, resumed: bool) -> str:
    d, p, ev = record["decision"], record["proposal"], record.get("evaluation")
    head = f"{'(done) ' if resumed else ''}iter {record['iteration']:>2} {d['version']:<6} {d['kind']:<9}"
    change = p.get("change") or p.get("failure") or ""
    if ev is not None and ev.get("ok"):
        v = ev["base"]["target_metrics"]
        numbers = (f"objective {ev['objective']:.3f} at size {ev['size']:g} (mean {v['mean_monthly_return']:+.2f}%, "
                   f"median {v['median_monthly_return']:+.2f}%, loss {v['loss_probability']:.1f}%, "
                   f"dd p95 {v['max_drawdown_p95']:.1f}%)")
    elif ev is not None:
        numbers = "cannot be simulated"
    else:
        numbers = "not evaluated"
    verdict = "accepted" if d["accepted"] else "rejected"
    best = d["best_objective"]
    return f"{head} {change}\n           {numbers} — {verdict}, best {best:.3f}" if best is not None and best == best \
        and best != float("inf") else f"{head} {change}\n           {numbers} — {verdict}"
