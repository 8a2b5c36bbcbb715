"""Seeded, vectorised price paths for the Monte Carlo replay: GBM, GARCH/GJR, Merton jumps
and a direction regime, alone or combined (``garch + jump + regime``).

Every path is a futures price on a grid of trading days, ``steps_per_day`` steps a day;
a simulated *month* has ``days_per_month`` trading days (21 by default) and lasts the
options' tenor in calendar time (30 days → ``month_years = 30/365``), so the variance of
one month is σ²·month_years, the convention of the pricers (ACT/365F, DESIGN.md).

The log price moves per step by::

    Δ ln F = μ_m / n  −  ½ h_step  +  √h_step · z  +  J  −  λ·dt·(e^{m_J + ½ s_J²} − 1)

with n the steps of the month, μ_m the month's regime drift (0 without ``regime``),
h_step the step's variance (σ²·dt for GBM; the GARCH day variance split evenly over the
day's steps), z a standard normal or a Student-t scaled to unit variance, and J the sum
of a Poisson(λ·dt) number of N(m_J, s_J²) jumps. The last term compensates the jumps, so
without regime drift F is a martingale, as a futures price is under the pricing measure.

GARCH(1,1) and GJR run per trading day on the day's diffusive shock ε_d (the sum of the
day's √h·z; jumps do not feed the recursion)::

    h_{d+1} = ω + (α + γ·1[ε_d < 0])·ε_d² + β·h_d,     ω = h̄·(1 − α − β − γ/2)

so the unconditional day variance is h̄ = σ²·month_years/days_per_month, and h is capped
at the variance of an annual volatility ``cap`` (150% by default: Student-t shocks with a
persistence near 1 otherwise let a few paths in 10,000 reach volatilities of 300% and
more, where jujube's realised volatility peaked at 57% over 21 days and 86% over 5
days, 2019-2026). The recursion
is a loop over days with every path in one numpy array (arch's per-path simulate is
orders of magnitude slower at 50,000 paths); the fast engine (``engine="fast"``) hands the
same draws to a compiled pass per path (`opl.runtime.engine.kernels.paths`) with the same
result up to rounding. Paths start at h̄.
With several steps a day, the volatility forecast written at a step (``MonthPaths.vol``,
which drives implied volatility, the marks and the hedge's delta) is the day's own h_d at
the day's intraday steps and h_{d+1} only at the day's close, when ε_d is known: every
quantity at a step uses only the shocks up to that step (no look-ahead).

**Direction regime.** Each month and path draws a signal S ∈ {Up, Down, Flat} with
probabilities (``up``, ``down``, 1 − up − down); then a uniform U: when U < hit_rate the
realised state R equals S, otherwise R is drawn uniformly from the two other states.
The month's drift is μ_m = R·``drift`` (Up +1, Down −1, Flat 0), a log-price drift per
month. So P(R = S) = hit_rate exactly, and the signal — which sets the sign of the hedge's
kept exposure — is right with that probability. The ``drift`` stress scenario adds
−S·value to μ_m (a drift against the signal).

Defaults (``DEFAULTS``) are a rough fit to CZCE jujube, ../shared/data/jujube: within-
contract daily log returns 2019-2026 (roll days dropped) have an annual volatility of
25% (22% over the last 500 days); a GJR-GARCH(1,1)-t fit (arch) gives α ≈ 0.031,
γ ≈ 0.022, β ≈ 0.958, ν ≈ 2.9; listed CJ options traded at 27% implied volatility on
average (median 26%), about 8% above the realised level — the default implied spread of
`opl.runtime.engine.marking.SmileRule`. The defaults take ν = 4 (ν < 3 gives shocks of infinite
kurtosis, whose sample variance never settles); jumps default to 2 a year of N(0, 4%).

**Surprises (stress scenarios).** What a scenario changes in the market is unannounced:
the options of a month are opened at the model's forecast (the ``vol`` column at the
open), then the paths move with it. ``Surprise(vol=k)`` multiplies the diffusive moves
(and the compensator) by k and the jump sizes by k from the month's first step, and the
forecast written to those steps — hence the implied volatility of the marks and the
hedge's delta — is k times the model's; ``Surprise(jump=...)`` replaces the jumps the same
way. The GARCH recursion runs on the model's shocks, so the next month opens at the
model's forecast again: every month is a fresh surprise. ``gap`` moves the price at the
open of one random trading day, ``drift`` and ``drift_against`` add monthly drifts; none
of them enters the options' prices.

**Price limit.** With ``limit`` set (the rule pack's ``daily_limit``: 10% for CZCE
jujube) no trading day closes more than the limit away from the previous close (log
moves within ±ln(1 + limit)); the part of a move beyond it carries into the next day, as
a limit-locked market reopens. Trading at the limit price is assumed possible, which is
optimistic for a desk caught on the wrong side of a locked market.

Random streams: one `numpy.random.SeedSequence` per chunk spawns separate generators for
the shocks, the jumps, the signal and the gap scenario, so a scenario that changes one of
them (``gap``, ``hit_rate``) leaves the other draws — common random numbers — unchanged.
Generators of the same chunk replayed side by side (a simulation's scenarios) can take
their draws from one `Draws`: a month's draws of a stream are made once for every
generator that would make the same ones (the same stream, the same parameters), and only
the current month's are kept.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np
from opl.errors import OplError

__all__ = ["GarchParams", "JumpParams", "RegimeParams", "Surprise", "ProcessSpec", "MonthPaths", "PathGenerator",
           "Draws", "simulate", "ModelError", "DEFAULTS", "PARAMETERS", "process_spec"]


class ModelError(OplError, ValueError):
    """A bad price-model setting; ``component`` and ``param`` say where (for a located error)."""

    def __init__(self, message: str, *, component: str | None = None, param: str | None = None):
        super().__init__(message)
        self.component = component
        self.param = param


@dataclass(frozen=True, kw_only=True)
class GarchParams:
    """GARCH(1,1) (γ = 0) or GJR-GARCH(1,1); ``nu`` None: normal shocks, else Student-t(ν);
    ``cap`` the largest annual volatility the conditional variance may reach. In the
    experiment block ``garch(nu=0)`` asks for normal shocks."""

    alpha: float = 0.03
    beta: float = 0.955
    gamma: float = 0.0
    nu: float | None = 4.0
    cap: float = 1.5

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta + 0.5 * self.gamma


@dataclass(frozen=True, kw_only=True)
class JumpParams:
    """Merton jumps: ``intensity`` per year, log-jump sizes N(``mean``, ``std``²)."""

    intensity: float = 2.0
    mean: float = 0.0
    std: float = 0.04

    @property
    def annual_variance(self) -> float:
        return self.intensity * (self.mean**2 + self.std**2)


@dataclass(frozen=True, kw_only=True)
class RegimeParams:
    """Direction regime (module docstring): signal probabilities, hit rate, monthly log drift."""

    hit_rate: float
    drift: float = 0.02
    up: float = 0.4
    down: float = 0.4


@dataclass(frozen=True, kw_only=True)
class Surprise:
    """What the market has not priced (the ``vol_up``, ``vol_down`` and ``jump_intensity``
    scenarios): each month opens at the model's volatility forecast, then from the month's
    first step the paths move with the diffusive volatility × ``vol`` and the jumps
    ``jump`` (None: the model's, their sizes × ``vol``), and the forecast written to those
    steps (so the implied volatility of the marks) follows the realised model. Every month
    is a fresh surprise: the next open is priced on the model again."""

    vol: float = 1.0
    jump: JumpParams | None = None


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    """The whole price model of a run, scenarios included.

    ``vol`` is the annual diffusive volatility (the GARCH unconditional level);
    ``gap`` a log-price gap log(1 + value) at the open of one uniformly drawn trading day
    of every month and path; ``drift_against`` the ``drift`` scenario's monthly drift
    against the signal; ``drift`` a monthly log drift (the ``sr_shift`` scenario);
    ``surprise`` what the paths do that the month's opening prices do not know (`Surprise`);
    ``limit`` the exchange's daily price limit (a fraction, e.g. 0.10; None: no limit).
    """

    vol: float = 0.25
    garch: GarchParams | None = None
    jump: JumpParams | None = None
    regime: RegimeParams | None = None
    gap: float | None = None
    drift_against: float = 0.0
    drift: float = 0.0
    surprise: Surprise | None = None
    limit: float | None = None

    @property
    def components(self) -> tuple[str, ...]:
        names = ["garch" if self.garch and self.garch.gamma == 0 else "gjr" if self.garch else "gbm"]
        names += [n for n, p in (("jump", self.jump), ("regime", self.regime)) if p is not None]
        return tuple(names)

    @property
    def realised_vol_factor(self) -> float:
        """The diffusive volatility's factor from each month's first step (1 without a surprise)."""
        return self.surprise.vol if self.surprise is not None else 1.0

    @property
    def realised_jump(self) -> JumpParams | None:
        """The jumps the paths make after each month's open (the model's without a surprise)."""
        if self.surprise is None:
            return self.jump
        if self.surprise.jump is not None:
            return self.surprise.jump
        k = self.surprise.vol
        return replace(self.jump, mean=self.jump.mean * k, std=self.jump.std * k) if self.jump else None


DEFAULTS = {"vol": 0.25, "garch": GarchParams(), "gjr": GarchParams(alpha=0.02, gamma=0.03, beta=0.955),
            "jump": JumpParams(), "regime_drift": 0.02}

#: Parameters each model component accepts, with their valid ranges (inclusive bounds).
PARAMETERS: dict[str, dict[str, tuple[float, float]]] = {
    "gbm": {"vol": (0.001, 5.0)},
    "garch": {"alpha": (0.0, 1.0), "beta": (0.0, 1.0), "nu": (2.05, 1000.0), "vol": (0.001, 5.0),
              "cap": (0.01, 10.0)},
    "gjr": {"alpha": (0.0, 1.0), "beta": (0.0, 1.0), "gamma": (0.0, 1.0), "nu": (2.05, 1000.0),
            "vol": (0.001, 5.0), "cap": (0.01, 10.0)},
    "jump": {"intensity": (0.0, 365.0), "mean": (-1.0, 1.0), "std": (0.0, 1.0)},
    "regime": {"drift": (-1.0, 1.0), "up": (0.0, 1.0), "down": (0.0, 1.0), "hit_rate": (0.0, 1.0)},
}


def process_spec(*, components: list[tuple[str, dict[str, float]]], vol: float,
                 hit_rate: float | None) -> ProcessSpec:
    """Build a `ProcessSpec` from the experiment's ``model`` terms, validating every parameter.

    Parameters
    ----------
    components
        ``[("garch", {"alpha": 0.05}), ("jump", {}), ...]`` in the order written.
    vol
        Annual volatility used when no component sets ``vol``.
    hit_rate
        The experiment's ``signal direction hit_rate``; ``regime`` needs one (or its own
        ``hit_rate=`` parameter).

    Raises
    ------
    ModelError
        Unknown component or parameter, a value out of range, ``garch`` with ``gjr``,
        a non-stationary GARCH (α + β + γ/2 ≥ 1), signal probabilities above 1, or a
        regime without a hit rate.
    """
    seen: dict[str, dict[str, float]] = {}
    for name, params in components:
        if name not in PARAMETERS:
            raise ModelError(f"unknown price model `{name}` (models: {', '.join(PARAMETERS)})", component=name)
        if name in seen:
            raise ModelError(f"price model `{name}` is given twice", component=name)
        for key, value in params.items():
            bounds = PARAMETERS[name].get(key)
            if bounds is None:
                raise ModelError(f"`{name}` has no parameter `{key}` (parameters: {', '.join(PARAMETERS[name])})",
                                 component=name, param=key)
            if key == "nu" and value == 0:
                continue  # nu=0 asks for normal shocks
            if not (np.isfinite(value) and bounds[0] <= value <= bounds[1]):
                raise ModelError(f"`{name}({key}=...)` must lie between {bounds[0]:g} and {bounds[1]:g}, "
                                 f"found {value:g}", component=name, param=key)
        seen[name] = params
    if "garch" in seen and "gjr" in seen:
        raise ModelError("choose one of `garch` and `gjr` (gjr is garch with an asymmetry γ)", component="gjr")
    base = next((seen[n]["vol"] for n in ("gbm", "garch", "gjr") if "vol" in seen.get(n, {})), vol)
    spec = ProcessSpec(vol=base)
    for name in ("garch", "gjr"):
        if name in seen:
            p = seen[name]
            d = DEFAULTS[name]
            nu = p.get("nu", d.nu)
            garch = GarchParams(alpha=p.get("alpha", d.alpha), beta=p.get("beta", d.beta),
                                gamma=p.get("gamma", d.gamma), nu=None if nu == 0 else nu, cap=p.get("cap", d.cap))
            if garch.persistence >= 1.0:
                raise ModelError(f"`{name}` is not stationary: α + β + γ/2 = {garch.persistence:.4g} must be < 1",
                                 component=name, param="beta")
            spec = replace(spec, garch=garch)
    if "jump" in seen:
        spec = replace(spec, jump=JumpParams(**{**DEFAULTS["jump"].__dict__, **seen["jump"]}))
    if "regime" in seen:
        p = seen["regime"]
        rate = p.get("hit_rate", hit_rate)
        if rate is None:
            raise ModelError("`regime` needs a hit rate: add `signal direction hit_rate 0.9` to the experiment",
                             component="regime")
        up, down = p.get("up", 0.4), p.get("down", 0.4)
        if up + down > 1.0 + 1e-12:
            raise ModelError(f"`regime(up=..., down=...)` probabilities sum to {up + down:g} > 1",
                             component="regime", param="up")
        spec = replace(spec, regime=RegimeParams(hit_rate=rate, drift=p.get("drift", DEFAULTS["regime_drift"]),
                                                 up=up, down=down))
    return spec


class MonthPaths(NamedTuple):
    """One simulated month of one chunk.

    ``price`` (paths, n + 1): futures price at the open and after each step; ``vol``
    (paths, n + 1): the annual volatility forecast known at each point (diffusive GARCH
    or GBM level plus the jumps' variance), which drives implied volatility; ``signal``
    and ``realised`` (paths,): −1, 0, +1 (Down, Flat, Up), zeros without a regime.
    """

    price: np.ndarray
    vol: np.ndarray
    signal: np.ndarray
    realised: np.ndarray


_STREAMS = ("shocks", "jumps", "signal", "gap")  # the chunk's SeedSequence spawns one child each, in this order


class _Ahead:
    """One draw made on this process's drawing thread (`Draws`' next month), handed over by `result`.

    One long-lived thread a process, not one a draw: starting a thread waits for it to run, which on a
    busy machine cost milliseconds a draw. A forked child makes its own (its parent's is not running there).
    """

    _thread: tuple[int, ThreadPoolExecutor] | None = None  # (the process id it belongs to, the thread)
    running: "set[Future]" = set()  # the draws under way in this process (a fork waits for them)

    def __init__(self, draw, rng: np.random.Generator):
        if _Ahead._thread is None or _Ahead._thread[0] != os.getpid():
            _Ahead._thread = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="opl-draws-ahead"))
        self._future = _Ahead._thread[1].submit(draw, rng)
        _Ahead.running.add(self._future)
        self._future.add_done_callback(_Ahead.running.discard)

    def result(self):
        """The draw (its error raised here, where the draws are asked for)."""
        return self._future.result()

    @classmethod
    def finish_all(cls) -> None:
        """Wait for every draw under way and stop the drawing thread (the next draw ahead starts another): a
        process forked while a thread draws would inherit its generator locked, and none is left running at
        a fork."""
        wait(list(cls.running))
        if cls._thread is not None and cls._thread[0] == os.getpid():
            cls._thread[1].shutdown(wait=True)
        cls._thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_Ahead.finish_all)


def _threads_allowed() -> bool:
    """Whether this process may draw on a second thread: the compiled engine's thread pool is allowed here
    (not a forked worker, which shares the cores with the others: `opl.runtime.engine.kernels.serial_only`)."""
    from opl.runtime.engine import kernels

    return kernels.available() and kernels.threads_allowed()


class Draws:
    """The random draws of one chunk (``seed``: its `numpy.random.SeedSequence`), month by month, shared by
    the generators of that chunk replayed side by side (`PathGenerator` ``draws``).

    A month's draws of a stream depend on the stream's seed, the month and what is drawn (the
    distribution's parameters and the shape) only: the first generator to ask for them draws them from
    that stream's generator, the others get the same arrays (never written to). A stream drawn with other
    parameters (another Student-t ν, another jump intensity) gets a generator of its own from the same
    seed, so every generator gets exactly the draws it would make alone. Only the current month's draws
    are kept: generators ask month by month, in step (a month's draws are dropped when the next month's
    are first asked for).

    ``ahead``: each draw's next one (the next month's, the same parameters, from the same generator right
    after it) is made on another thread while the month's steps run (numpy's generators release the
    interpreter's lock while they fill an array), so the draws are the same numbers in the same order; by
    default where the compiled engine may use threads here, and not after month ``months - 1``.
    """

    def __init__(self, seed: np.random.SeedSequence, *, shared: bool = True, ahead: bool | None = None,
                 months: int | None = None):
        self._seeds = dict(zip(_STREAMS, seed.spawn(len(_STREAMS))))
        self._rngs: dict[tuple, np.random.Generator] = {}
        self.shared = shared  # False: one generator's own draws, not kept once handed over
        self.month = 0
        self._kept: dict[tuple, object] = {}
        self.ahead = _threads_allowed() if ahead is None else ahead
        self.months = months  # the months that will be asked for (None: unknown, every next one is drawn ahead)
        self._ahead: dict[tuple, _Ahead] = {}  # per generator, its next draw under way

    def rng(self, stream: str, what: tuple = ()) -> np.random.Generator:
        """The generator of ``stream`` for the draws ``what`` (its parameters): one per (stream, what)."""
        key = (stream, *what)
        found = self._rngs.get(key)
        if found is None:
            found = self._rngs[key] = np.random.default_rng(self._seeds[stream])
        return found

    def take(self, month: int, stream: str, what: tuple, draw):
        """Month ``month``'s draws ``what`` of ``stream``: ``draw(generator)`` the first time they are asked for,
        the same objects afterwards (``month`` never goes back: the months of the generators are in step)."""
        if month != self.month:
            if month < self.month:
                raise ValueError(f"month {month}'s draws were asked for after month {self.month}'s")
            self.month, self._kept = month, {}
        key = (stream, *what)
        if not self.shared:
            return self._next(key, stream, what, draw)
        if key not in self._kept:
            self._kept[key] = self._next(key, stream, what, draw)
        return self._kept[key]

    def _next(self, key: tuple, stream: str, what: tuple, draw):
        """The next draw of the generator of ``key`` (made ahead, or now), and the one after it started."""
        rng = self.rng(stream, what)
        ahead = self._ahead.pop(key, None)
        out = ahead.result() if ahead is not None else draw(rng)
        if self.ahead and (self.months is None or self.month + 1 < self.months):
            self._ahead[key] = _Ahead(draw, rng)
        return out


@dataclass(kw_only=True)
class PathGenerator:
    """Month-by-month generator for one chunk of paths; the state (price, GARCH variance)
    carries from one month to the next.

    Parameters
    ----------
    spec
        The price model.
    paths
        Paths in this chunk.
    price
        Futures price at the start.
    month_years
        Calendar length of a month in years (the options' tenor / 365).
    days_per_month, steps_per_day
        Trading days per month and steps per day: n = days × steps_per_day steps a month.
    seed
        An int or a `numpy.random.SeedSequence` (one per chunk).
    engine
        ``"reference"``: the month in numpy, day by day over every path; ``"fast"``: the same
        draws handed to one compiled pass per path (`opl.runtime.engine.kernels.paths`), the
        same paths up to rounding (the reference where numba is missing).
    draws
        The chunk's `Draws`, shared with other generators of the same chunk (its seed is then
        ``draws``'; ``seed`` is not read); None: the generator draws alone from ``seed``.
    months
        The months that will be asked for, when known: its own draws are not made ahead past them.
    """

    spec: ProcessSpec
    paths: int
    price: float
    month_years: float
    days_per_month: int = 21
    steps_per_day: int = 1
    seed: int | np.random.SeedSequence = 0
    engine: Literal["reference", "fast"] = "reference"
    draws: Draws | None = None
    months: int | None = None
    _state: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.draws is None:
            seq = self.seed if isinstance(self.seed, np.random.SeedSequence) else np.random.SeedSequence(self.seed)
            self.draws = Draws(seq, shared=False, months=self.months)
        self.month = 0  # the month `next_month` makes next: the draws it asks for are that month's
        self.day_var = self.spec.vol**2 * self.month_years / self.days_per_month
        self._state = {"log_f": np.full(self.paths, np.log(self.price)), "h": np.full(self.paths, self.day_var),
                       "carry": np.zeros(self.paths)}

    @property
    def steps(self) -> int:
        return self.days_per_month * self.steps_per_day

    @property
    def dt(self) -> float:
        """Calendar years per step."""
        return self.month_years / self.steps

    @property
    def _nu(self) -> float | None:
        return self.spec.garch.nu if self.spec.garch is not None else None

    @property
    def _shock_scale(self) -> float:
        """The factor that gives the drawn shocks unit variance (a Student-t's; 1 for normal shocks)."""
        nu = self._nu
        return 1.0 if nu is None else float(np.sqrt((nu - 2.0) / nu))

    def _draw(self, stream: str, what: tuple, draw):
        """This month's draws ``what`` of ``stream`` (`Draws.take`): shared with the generators of the chunk
        that make the same ones."""
        return self.draws.take(self.month, stream, what, draw)

    def _raw_shocks(self, shape: tuple[int, ...]) -> np.ndarray:
        """The shocks as drawn, before `_shock_scale`."""
        nu = self._nu
        return self._draw("shocks", (nu, shape), lambda rng: rng.standard_normal(shape) if nu is None
                          else rng.standard_t(nu, shape))

    def _shocks(self, shape: tuple[int, ...]) -> np.ndarray:
        z = self._raw_shocks(shape)
        # A Student-t scaled to unit variance, so h keeps its meaning as the variance.
        return z if self._nu is None else z * self._shock_scale

    def _regime(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.paths
        regime = self.spec.regime
        if regime is None:
            zero = np.zeros(p, dtype=np.int8)
            return zero, zero.copy()
        u_signal, u_hit, u_other = self._draw("signal", (p,), lambda rng: (rng.random(p), rng.random(p),
                                                                            rng.random(p)))  # drawn always: CRN
        signal = np.where(u_signal < regime.up, 1, np.where(u_signal < regime.up + regime.down, -1, 0))
        # A miss picks one of the two other states with equal chance: shift by 1 or 2 in the cycle.
        other = ((signal + 1 + np.where(u_other < 0.5, 1, 2)) % 3) - 1
        realised = np.where(u_hit < regime.hit_rate, signal, other)
        return signal.astype(np.int8), realised.astype(np.int8)

    @property
    def _jumps(self) -> JumpParams | None:
        """The jumps the paths make (None: none, or a zero intensity)."""
        jump = self.spec.realised_jump
        return None if jump is None or jump.intensity == 0 else jump

    @property
    def _compensator(self) -> float:
        jump = self._jumps
        return jump.intensity * self.dt * np.expm1(jump.mean + 0.5 * jump.std**2)

    def _jump_draws(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The month's jump counts and normals, (paths, n) each (None without jumps)."""
        jump = self._jumps
        if jump is None:
            return None
        lam, shape = jump.intensity * self.dt, (self.paths, n)
        return self._draw("jumps", (lam, shape), lambda rng: (rng.poisson(lam, shape), rng.standard_normal(shape)))

    def _jump_terms(self, n: int) -> np.ndarray:
        draws = self._jump_draws(n)
        if draws is None:
            return np.zeros((self.paths, n))
        jump, (counts, normal) = self._jumps, draws
        sizes = counts * jump.mean + np.sqrt(counts) * jump.std * normal
        return sizes - self._compensator

    def _gap_steps(self) -> np.ndarray | None:
        """Per path, the step whose open gaps this month: the first of a uniformly drawn trading day."""
        if self.spec.gap is None:
            return None
        days, p = self.days_per_month, self.paths
        return self._draw("gap", (days, p), lambda rng: rng.integers(0, days, p)) * self.steps_per_day

    def _vol_forecast(self, h_day: np.ndarray, *, realised: bool = True) -> np.ndarray:
        """Annual volatility forecast from the day variance ``h_day``: the model's at a month's open
        (``realised`` False), the realised model's (with the surprise) at its later steps."""
        k = self.spec.realised_vol_factor if realised else 1.0
        jump = self.spec.realised_jump if realised else self.spec.jump
        diffusive = k * k * h_day * self.days_per_month / self.month_years
        jumps = jump.annual_variance if jump is not None else 0.0
        return np.sqrt(diffusive + jumps)

    def _limit(self, increments: np.ndarray) -> np.ndarray:
        """Hold every day's move within the price limit; the excess carries into the next day
        (a limit-locked market opens the next day where the locked move left off)."""
        spd = self.steps_per_day
        bound = np.log1p(self.spec.limit)
        carry = self._state["carry"]
        out = np.empty_like(increments)
        for d in range(self.days_per_month):
            cols = slice(d * spd, (d + 1) * spd)
            day = increments[:, cols].copy()
            day[:, 0] += carry
            path = np.clip(np.cumsum(day, axis=1), -bound, bound)
            out[:, cols] = np.diff(path, axis=1, prepend=0.0)
            carry = day.sum(axis=1) - path[:, -1]
        self._state["carry"] = carry
        return out

    def next_month(self, out: tuple[np.ndarray, np.ndarray, int] | None = None) -> MonthPaths:
        """Simulate the next month for every path of the chunk; ``out``: (price, vol, offset), step-major
        (n + 1, P) arrays of a month of several chunks that this one's paths are written into from column
        ``offset`` (its ``price`` and ``vol`` are then their views)."""
        signal, realised = self._regime()
        drift = np.zeros(self.paths)
        if self.spec.regime is not None:
            drift = realised * self.spec.regime.drift
        drift = drift - signal * self.spec.drift_against + self.spec.drift
        if self.engine == "fast" and _compiled():
            price, vols = self._compiled_month(drift, out)
        else:
            price, vols = self._reference_month(drift)
            if out is not None:
                columns = slice(out[2], out[2] + self.paths)
                out[0][:, columns], out[1][:, columns] = price.T, vols.T
                price, vols = out[0][:, columns].T, out[1][:, columns].T
        self.month += 1
        return MonthPaths(price, vols, signal, realised)

    def _reference_month(self, drift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The month's price and volatility (paths, n + 1) in numpy, day by day over every path."""
        spec, p, spd, n = self.spec, self.paths, self.steps_per_day, self.steps
        z = self._shocks((p, n))
        increments = self._jump_terms(n) + (drift / n)[:, None]
        day = self._gap_steps()
        if day is not None:
            # Overnight: the move into the first step of a uniformly drawn trading day.
            increments[np.arange(p), day] += np.log1p(spec.gap)
        h = self._state["h"]
        k = spec.realised_vol_factor  # the surprise scales the moves, not the variance recursion
        vols = np.empty((p, n + 1))
        vols[:, 0] = self._vol_forecast(h, realised=False)
        if spec.garch is None:
            step_var = self.day_var / spd
            increments += k * np.sqrt(step_var) * z - 0.5 * k * k * step_var
            vols[:, 1:] = self._vol_forecast(h)[:, None]
        else:
            g = spec.garch
            omega = self.day_var * (1.0 - g.persistence)
            h_cap = g.cap**2 * self.month_years / self.days_per_month
            for d in range(self.days_per_month):
                cols = slice(d * spd, (d + 1) * spd)
                eps = np.sqrt(h / spd)[:, None] * z[:, cols]
                increments[:, cols] += k * eps - 0.5 * k * k * (h / spd)[:, None]
                shock = eps.sum(axis=1)
                # Inside the day only the day's own variance is known; the next day's, which
                # needs the whole day's shock, is written at the close (no look-ahead).
                vols[:, cols.start + 1:cols.stop] = self._vol_forecast(h)[:, None]
                h = np.minimum(omega + (g.alpha + g.gamma * (shock < 0)) * shock * shock + g.beta * h, h_cap)
                vols[:, cols.stop] = self._vol_forecast(h)
            self._state["h"] = h
        if spec.limit is not None:
            increments = self._limit(increments)
        log_f = self._state["log_f"][:, None] + np.concatenate([np.zeros((p, 1)), np.cumsum(increments, axis=1)],
                                                                axis=1)
        self._state["log_f"] = log_f[:, -1].copy()
        return np.exp(log_f), vols

    @cached_property
    def _model(self):
        """The constants of `_compiled_month`'s kernel."""
        from opl.runtime.engine.kernels.paths import MonthModel

        spec, k, jump, g = self.spec, self.spec.realised_vol_factor, self._jumps, self.spec.garch
        step_var = self.day_var / self.steps_per_day
        return MonthModel(
            days=self.days_per_month, spd=self.steps_per_day, z_scale=self._shock_scale, jumps=jump is not None,
            jump_mean=jump.mean if jump else 0.0, jump_std=jump.std if jump else 0.0,
            compensator=float(self._compensator) if jump else 0.0,
            gap_log=float(np.log1p(spec.gap)) if spec.gap is not None else 0.0, k=k, half_kk=0.5 * k * k,
            garch=g is not None, step_scale=k * float(np.sqrt(step_var)), step_drift=0.5 * k * k * step_var,
            omega=self.day_var * (1.0 - g.persistence) if g else 0.0, alpha=g.alpha if g else 0.0,
            gamma=g.gamma if g else 0.0, beta=g.beta if g else 0.0,
            h_cap=g.cap**2 * self.month_years / self.days_per_month if g else 0.0,
            limit=spec.limit is not None, bound=float(np.log1p(spec.limit)) if spec.limit is not None else 0.0,
            years=self.month_years, open_jumps=spec.jump.annual_variance if spec.jump else 0.0,
            jumps_var=spec.realised_jump.annual_variance if spec.realised_jump else 0.0)

    def _compiled_month(self, drift: np.ndarray, out: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`_reference_month` from the same draws, in one compiled pass per path (into ``out``: `next_month`)."""
        from opl.runtime.engine import kernels

        n = self.steps
        z = self._raw_shocks((self.paths, n))
        counts, normal = self._jump_draws(n) or (_NO_COUNTS, _NO_NORMALS)
        gap = self._gap_steps()
        return kernels.paths.month(self._model, z=z, counts=counts, normal=normal,
                                   gap_col=np.full(self.paths, -1, dtype=np.int64) if gap is None else gap,
                                   drift=np.ascontiguousarray(drift, dtype=np.float64), log_f=self._state["log_f"],
                                   h=self._state["h"], carry=self._state["carry"], out=out)


# The kernel's jump draws where a month has none: arrays of the right types, never read.
_NO_COUNTS, _NO_NORMALS = np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1))


def _compiled() -> bool:
    """Whether the compiled month can run (numba importable); imported only when a fast month is asked for."""
    from opl.runtime.engine import kernels

    return kernels.available()


def simulate(*, spec: ProcessSpec, paths: int, months: int, price: float, month_years: float = 30 / 365,
             days_per_month: int = 21, steps_per_day: int = 1, seed: int = 0,
             engine: Literal["reference", "fast"] = "reference") -> MonthPaths:
    """Whole paths over ``months`` months (months joined end to end; for tests and studies).

    Returns a `MonthPaths` with ``price`` and ``vol`` of shape (paths, months·n + 1) and
    ``signal``/``realised`` of shape (paths, months).
    """
    gen = PathGenerator(spec=spec, paths=paths, price=price, month_years=month_years,
                        days_per_month=days_per_month, steps_per_day=steps_per_day, seed=seed, engine=engine,
                        months=months)
    parts = [gen.next_month() for _ in range(months)]
    price_ = np.concatenate([parts[0].price[:, :1]] + [m.price[:, 1:] for m in parts], axis=1)
    vol = np.concatenate([parts[0].vol[:, :1]] + [m.vol[:, 1:] for m in parts], axis=1)
    return MonthPaths(price_, vol, np.stack([m.signal for m in parts], axis=1),
                      np.stack([m.realised for m in parts], axis=1))
