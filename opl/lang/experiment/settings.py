"""Settings of a simulation: the file's experiment block, its defaults and ``--set`` overrides.

Precedence, lowest first: built-in defaults (below and in the runtime modules), the
file (experiment block, hedge rule, risk controls, market), ``--set key=value``, then
``--paths`` / ``--seed``. Every ``--set`` key is listed in ``KEYS``; an unknown key or a
bad value is a `SettingsError` naming it.

Defaults that are choices of this simulator, not of the language:

* ``paths``: the experiment's ``paths``, else 2,000 — the default grammar/README.md §10
  documents; a few seconds a run, enough for medians and p95s to ±0.1 point; write ``paths``
  or pass ``--paths`` (e.g. 50,000) for the tails (p99, CVaR99);
* ``capital``: ``capital`` (risk controls), else ``capital_limit``, else 3 × the opening
  exchange margin of the strategy at size 1 — a desk that keeps two thirds of its account
  free; the choice is printed in the notes;
* ``size``: 1, the file's quantities; ``sizes`` the experiment's, else ``[size]``;
* support/resistance widths: the file's levels relative to its ``price``, else 5%;
* annual volatility of the price model: a ``vol=`` model parameter, else the file's
  ``iv`` / (1 + implied spread) — the realised level that leaves the file's implied
  volatility as the market's — else 25%.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from opl.lang import limits
from opl.lang.vocabulary import SMILE_PARAMETERS
from opl.errors import EXIT_USAGE, OplError

__all__ = ["SettingsError", "SimSettings", "KEYS", "parse_overrides", "DEFAULT_PATHS", "CAPITAL_MARGIN_MULTIPLE"]

DEFAULT_PATHS = 2_000
CAPITAL_MARGIN_MULTIPLE = 3.0


class SettingsError(OplError, ValueError):
    """A bad setting; ``key`` is the ``--set`` key, ``span`` the file location when it came from the file.

    Not located in a file it is a usage error (exit 2); the run turns one with a ``span`` into the
    run's located error (`opl.simulation.run.checked_for_run`).
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, key: str | None = None, span=None, code: str = "E207",
                 help: str | None = None):
        super().__init__(message, help=help)
        self.key, self.span, self.code = key, span, code

    def lines(self) -> list[str]:
        where = f"--set {self.key}: " if self.key else ""
        return [f"error: {where}{self}"] + ([f"  = help: {self.help}"] if self.help else [])


@dataclass(kw_only=True)
class SimSettings:
    """Resolved settings (what `opl.simulation.run` runs and what the JSON's ``run`` records)."""

    paths: int = DEFAULT_PATHS
    seed: int = 0
    steps_per_day: int = 1
    horizon_months: int = 12
    hit_rate: float | None = None
    size: float = 1.0
    sizes: tuple[float, ...] = ()
    capital: float | None = None
    margin_buffer: float = 0.0
    margin_method: str = "combination"  # the pack's combination margin, or every leg alone (per_leg)
    stop_loss: float | None = None
    hedge_every_days: float | None = None
    hedge_band: float | None = None
    hedge_keep: float | None = None
    hedge_along: str | None = None
    iv_spread: float = 0.08
    iv_floor: float = 0.10
    iv_skew: float = -0.2
    iv_curvature: float = 2.0
    support_width: float | None = None
    resistance_width: float | None = None
    option_slippage_ticks: float = 1.0
    futures_slippage_ticks: float = 1.0
    fee_factor: float = 1.0
    cash_rate: float | None = None  # interest on the strategy's cash (None: the file's rate)
    margin_rate: float | None = None  # what margin deposits earn (None: the cash rate)
    vol: float | None = None
    components: list[str] = field(default_factory=list)
    model_params: dict[str, dict[str, float]] = field(default_factory=dict)
    days_per_month: int = 21
    chunk: int = 10_000
    exact_american: bool = False
    engine: str = "fast"
    workers: int = 0
    guard_days: float = 2.0
    adjust_cooldown: float = 5.0
    adjust_on_abort: str = "exit"
    score_threshold: float | None = None
    structure_delta: float = 0.25
    structure_gamma: float = 0.10
    structure_vega: float = 0.5


def _number(text: str, *, percent: bool = True) -> float:
    raw = text.strip()
    scale = 1.0
    if percent and raw.endswith("%"):
        raw, scale = raw[:-1], 0.01
    value = float(raw) * scale
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError
    return value


def _integer(text: str) -> int:
    value = float(text.strip())
    if value != int(value):
        raise ValueError
    return int(value)


def _sizes(text: str) -> tuple[float, ...]:
    items = [t for t in text.strip().strip("[]").replace(";", ",").split(",") if t.strip()]
    if not items:
        raise ValueError
    return tuple(_number(t, percent=False) for t in items)


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _choice(*choices: str):
    def parse(text: str) -> str:
        if text.strip() not in choices:
            raise ValueError
        return text.strip()

    parse.__doc__ = " | ".join(choices)
    return parse


def _components(text: str) -> list[str]:
    names = [t.strip() for t in text.replace(" ", "").split("+") if t.strip()]
    if not names:
        raise ValueError
    return names


# key → (attribute, parser, (low, high) or None, what it means)
KEYS: dict[str, tuple[str, object, tuple[float, float] | None, str]] = {
    "experiment.paths": ("paths", _integer, (1, 10_000_000), "number of paths"),
    "experiment.seed": ("seed", _integer, (0, 2**63 - 1), "random seed"),
    "experiment.steps_per_day": ("steps_per_day", _integer, (1, 96), "steps per trading day"),
    "experiment.horizon": ("horizon_months", _integer, (1, 600), "horizon in months"),
    "experiment.hit_rate": ("hit_rate", _number, (0.0, 1.0), "direction signal hit rate"),
    "experiment.sizes": ("sizes", _sizes, (1e-9, limits.MAX_SIZE), "sizes to sweep, e.g. [1,2,5]"),
    "experiment.model": ("components", _components, None, "price model, e.g. garch+jump+regime"),
    "size": ("size", lambda t: _number(t, percent=False), (1e-9, limits.MAX_SIZE), "base position size (× file quantities)"),
    "capital": ("capital", lambda t: _number(t, percent=False), (1e-9, 1e15), "account capital"),
    "margin_buffer": ("margin_buffer", _number, (0.0, 1.0), "margin headroom before forced liquidation"),
    "margin.method": ("margin_method", _choice("combination", "per_leg"), None,
                      "combination (the rule pack's straddles, strangles, spreads) | per_leg"),
    "stop_loss": ("stop_loss", _number, (0.0, 1.0), "monthly stop loss, share of capital"),
    "hedge.every": ("hedge_every_days", _number, (1e-6, 365.0), "hedge period in days"),
    "hedge.band": ("hedge_band", _number, (0.0, 100.0), "hedge band, share of position lots"),
    "hedge.keep": ("hedge_keep", _number, (0.0, 1.0), "kept exposure"),
    "hedge.along": ("hedge_along", _choice("direction", "long", "short"), None, "direction | long | short"),
    # The implied-volatility rule, also written `iv smile(...)` in the experiment block (same bounds).
    **{f"iv.{name}": (f"iv_{name}", _number, (low, high), what)
       for name, (low, high, what) in SMILE_PARAMETERS.items()},
    "levels.support_width": ("support_width", _number, (0.0, 0.9), "support below the month's open"),
    "levels.resistance_width": ("resistance_width", _number, (0.0, 5.0), "resistance above the month's open"),
    "costs.option_slippage_ticks": ("option_slippage_ticks", _number, (0.0, 1000.0), "option slippage, ticks"),
    "costs.futures_slippage_ticks": ("futures_slippage_ticks", _number, (0.0, 1000.0), "futures slippage, ticks"),
    "costs.fee_factor": ("fee_factor", _number, (0.0, 1000.0), "multiplier on the pack's fees"),
    "costs.margin_rate": ("margin_rate", _number, (-0.1, 1.0),
                          "interest a year the broker pays on margin deposits (default: the cash rate)"),
    "costs.cash_rate": ("cash_rate", _number, (-0.1, 1.0),
                        "interest a year on the strategy's cash (default: the file's rate)"),
    "model.vol": ("vol", _number, (0.001, 5.0), "annual volatility of the price model"),
    "sim.days_per_month": ("days_per_month", _integer, (1, 31), "trading days per simulated month"),
    "sim.chunk": ("chunk", _integer, (1, 1_000_000), "paths per chunk"),
    "sim.exact_american": ("exact_american", _bool, None,
                           "price every American mark with the finite-difference solver itself, not its tables "
                           "(validation: about 0.6 ms a mark)"),
    "sim.engine": ("engine", _choice("fast", "reference"), None,
                   "fast (compiled kernels) | reference (the numpy replay they are tested against)"),
    "sim.workers": ("workers", _integer, (0, 256), "processes replaying chunks side by side (0: one per core)"),
    "sim.guard_days": ("guard_days", _number, (0.0, 365.0), "days_left exit guard"),
    "adjust.cooldown": ("adjust_cooldown", _number, (0.0, 365.0), "days between adjustment rounds"),
    "adjust.on_abort": ("adjust_on_abort", _choice("exit", "skip"), None, "exit | skip"),
    "exit.score_threshold": ("score_threshold", _number, (-1e6, 1e6), "machine_decide score threshold"),
    "structure.delta": ("structure_delta", _number, (0.0, 100.0), "structure_destabilised delta band, x N lots"),
    "structure.gamma": ("structure_gamma", _number, (0.0, 100.0),
                        "structure_destabilised gamma band, delta lots per 1% per option lot"),
    "structure.vega": ("structure_vega", _number, (0.0, 100.0),
                       "structure_destabilised vega band, % of capital per vol point"),
}


def parse_overrides(items: list[str] | tuple[str, ...], settings: SimSettings) -> SimSettings:
    """Apply ``key=value`` items to ``settings``; ``model.<component>.<param>=value`` sets a model parameter.

    Raises
    ------
    SettingsError
        Unknown key (with a suggestion), malformed item, or a value of the wrong kind or range.
    """
    from opl.lang.diagnostics import did_you_mean

    out = replace(settings, model_params={k: dict(v) for k, v in settings.model_params.items()},
                  components=list(settings.components))
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingsError(f"`{item}`: expected key=value", key=key or None)
        if key.startswith("model.") and key.count(".") == 2:
            _, component, param = key.split(".")
            try:
                value = _number(text)
            except ValueError:
                raise SettingsError(f"`{item}`: `{text}` is not a number", key=key) from None
            out.model_params.setdefault(component, {})[param] = value
            continue
        spec = KEYS.get(key)
        if spec is None:
            guess = did_you_mean(key, list(KEYS))
            raise SettingsError(f"unknown setting `{key}`", key=key,
                                help=f"did you mean `{guess}`?" if guess else "keys: " + ", ".join(KEYS) +
                                ", model.<component>.<parameter>")
        attr, parser, bounds, what = spec
        try:
            value = parser(text)
        except ValueError:
            kind = getattr(parser, "__doc__", None) or what
            raise SettingsError(f"`{item}`: `{text.strip()}` is not a valid {kind}", key=key) from None
        if bounds is not None:
            values = value if isinstance(value, tuple) else (value,)
            if any(not bounds[0] <= v <= bounds[1] for v in values):
                raise SettingsError(f"`{key}` must lie between {bounds[0]:g} and {bounds[1]:,g}, found "
                                    f"{text.strip()}", key=key)
        setattr(out, attr, value)
    return out
