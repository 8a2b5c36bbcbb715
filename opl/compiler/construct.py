"""Construction paths (spec §4): build a leg set from an intent, constraints and target Greeks.

All three paths work on one candidate set — calls and puts of one tenor on a strike
ladder around the price (the rule pack's grid when an exchange is given) — and end in
the rc6 order ``control_tune → ensure_max_risk → apply_premium_offset →
reality_check``:

* **A, stepwise** — start from ``MapIntentToO`` (one lot of each base leg, at the
  money for debit legs and about 25-delta for credit legs), then add the candidate
  leg that most reduces the distance to the targets, one lot at a time;
* **B, batch** — evaluate every member of the template families that fit the intent
  (straddles, strangles, iron condors, verticals, butterflies at several widths), keep
  the one closest to the targets, then tune its size globally;
* **C, target Greeks** — a linear programme (`scipy.optimize.linprog`) on soft
  Δ/Θ (and any other stated) targets with L1 slack, the premium sign fixed by
  ``vega_style``, then integer rounding and greedy fill of γ/vega.

Targets are position Greeks in the units of the compile table: delta in units of the
underlying, gamma per unit, vega per 1 vol point, theta per calendar day. Distances
are scaled by each Greek's magnitude on the candidate set so no unit dominates.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from opl.lang.estimates import DEFAULT_MULTIPLIER
from opl.lang.intent import allowed_delta_signs, canonical_intent, map_intent_to_o
from opl.errors import OplError

GREEKS = ("delta", "gamma", "vega", "theta")
Path = Literal["A", "B", "C"]


@dataclass
class BuildRequest:
    intent: str
    vega_style: str | None = None
    targets: dict[str, float] = field(default_factory=dict)
    price: float = 100.0
    iv: float = 0.25
    rate: float = 0.0
    time: _dt.date = field(default_factory=_dt.date.today)
    tenor_days: int = 30
    futures: bool = False
    multiplier: float = 100.0  # spec rc6 §1.2
    strike_step: float | None = None
    max_lots: int = 10
    max_risk: float | None = None
    capital_limit: float | None = None
    premium_offset: float | None = None
    path: Path = "C"


@dataclass(frozen=True)
class Candidate:
    option_type: str
    strike: float


@dataclass
class BuildResult:
    quantities: dict[Candidate, int]
    greeks: dict[str, float]
    premium: float
    worst_loss: float | None
    notes: list[str]
    text: str = ""


class BuildError(OplError, ValueError):
    """The request cannot be met (message says which constraint and why)."""


# --------------------------------------------------------------------------- candidates


def _step(request: BuildRequest) -> float:
    if request.strike_step:
        return request.strike_step
    raw = request.price * 0.025
    magnitude = 10 ** np.floor(np.log10(raw))
    return float(min((1, 2, 2.5, 5, 10), key=lambda m: abs(m * magnitude - raw)) * magnitude)


def candidates(request: BuildRequest) -> list[Candidate]:
    step = _step(request)
    atm = round(request.price / step) * step
    strikes = [atm + k * step for k in range(-6, 7) if atm + k * step > 0]
    return [Candidate(kind, float(k)) for k in strikes for kind in ("put", "call")]


def _unit_greeks(request: BuildRequest, cands: list[Candidate]) -> tuple[np.ndarray, np.ndarray]:
    """(Greek matrix [n, 4] per lot in table units, premium per lot)."""
    from opl.runtime.pricing import black as pricing

    g = pricing.greeks(is_call=np.array([c.option_type == "call" for c in cands]), underlying=request.price,
                       strike=np.array([c.strike for c in cands]), t=request.tenor_days / 365.0, vol=request.iv,
                       rate=request.rate, carry=0.0 if request.futures else request.rate,
                       carry_follows_rate=not request.futures)
    m = request.multiplier
    matrix = np.column_stack([g.delta * m, g.gamma * m, g.vega * m / 100, g.theta * m / 365])
    return matrix, np.asarray(g.price) * m


# --------------------------------------------------------------------------- objective


def _targets(request: BuildRequest) -> dict[str, float]:
    direction, _ = canonical_intent(request.intent, request.vega_style)
    targets = dict(request.targets)
    if "delta" not in targets:
        targets["delta"] = {"Bull": 0.3, "Bear": -0.3}.get(direction, 0.0) * request.multiplier
    return targets


def _style(request: BuildRequest) -> str | None:
    return canonical_intent(request.intent, request.vega_style)[1] or request.vega_style


def base_legs(request: BuildRequest):
    """The option base legs of ``MapIntentToO`` the built set must keep (spec §3.5, §4).

    The first all-option set of the intent (after ``vega_style`` filtering); an intent
    whose only sets hold the underlying gives none.
    """
    sets = map_intent_to_o(request.intent, _style(request))
    return next((s for s in sets if all(leg.instrument != "underlying" for leg in s)), ())


def _base_anchor(request: BuildRequest, cands: list[Candidate], leg) -> int:
    """The candidate a base leg starts on: at the money when bought, about 5% out when sold."""
    offset = 0.0 if leg.side > 0 else 0.05 * request.price * (1 if leg.instrument == "call" else -1)
    return _nearest(cands, leg.instrument, request.price + offset)


def _sellable(request: BuildRequest, c: Candidate) -> bool:
    """Only options at or out of the money are sold: an in-the-money short is a synthetic
    future in disguise and can cross the strangle's strikes (W411)."""
    return c.strike >= request.price if c.option_type == "call" else c.strike <= request.price


def _keeps_base(cands: list[Candidate], q: np.ndarray, base) -> bool:
    """True when every base leg is held: at least one lot on its side of its option type."""
    for leg in base:
        lots = sum(max(leg.side * q[i], 0.0) for i, c in enumerate(cands) if c.option_type == leg.instrument)
        if lots < 1:
            return False
    return True


class _Objective:
    """Scaled L1 distance to the targets, plus penalties for the wrong premium sign and for max_risk."""

    def __init__(self, request: BuildRequest, matrix: np.ndarray, premium: np.ndarray,
                 cands: list[Candidate] | None = None) -> None:
        self.request, self.cands = request, cands
        self.targets = _targets(request)
        self.index = [GREEKS.index(name) for name in self.targets]
        self.goal = np.array(list(self.targets.values()))
        self.scale = np.maximum(np.abs(matrix[:, self.index]).max(axis=0), 1e-12)
        self.matrix, self.premium = matrix, premium
        self.style = _style(request)

    def greeks(self, q: np.ndarray) -> np.ndarray:
        return q @ self.matrix

    def direction_kept(self, q: np.ndarray) -> bool:
        """The net delta has a sign the intent allows (a Bull book is never net short)."""
        delta = float(q @ self.matrix[:, 0])
        sign = 0 if abs(delta) < 0.05 * self.request.multiplier else (1 if delta > 0 else -1)
        return sign in allowed_delta_signs(self.request.intent)

    def __call__(self, q: np.ndarray) -> float:
        miss = np.abs((self.greeks(q)[self.index] - self.goal) / self.scale).sum()
        net = float(q @ self.premium)
        wrong_style = (self.style == "Credit" and net > 0) or (self.style == "Debit" and net < 0)
        penalty = 10.0 if wrong_style or not q.any() or not self.direction_kept(q) else 0.0
        if self.request.max_risk is not None and self.cands is not None and q.any():
            loss, unbounded = _worst_loss(self.request, self.cands, q)
            penalty += 10.0 if unbounded else 10.0 * max(loss / self.request.max_risk - 1, 0.0)
        return float(miss + 0.01 * np.abs(q).sum() + penalty)


# --------------------------------------------------------------------------- paths


def _path_c(request, cands, objective) -> np.ndarray:
    """Mixed-integer LP (HiGHS via `scipy.optimize.milp`): whole lots, soft targets with L1 slack."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n, k = len(cands), len(objective.index)
    a = objective.matrix[:, objective.index].T / objective.scale[:, None]  # k × n
    # variables: long lots (n), short lots (n), slack+ (k), slack- (k)
    cost = np.concatenate([np.full(2 * n, 0.01), np.ones(2 * k)])
    rows = [(np.hstack([a, -a, -np.eye(k), np.eye(k)]), objective.goal / objective.scale,
             objective.goal / objective.scale)]
    rows += _style_rows(objective, k) + _risk_rows(request, cands, k) + _direction_rows(request, objective, k)
    rows.append((np.concatenate([np.ones(2 * n), np.zeros(2 * k)])[None, :], 1, np.inf))  # at least one lot
    constraints = [LinearConstraint(*row) for row in rows]
    lower, upper = _lot_bounds(request, cands, k)
    integrality = np.concatenate([np.ones(2 * n), np.zeros(2 * k)])
    if request.premium_offset:
        # credit ≥ share × debit is linear in the lots: solve with it first; without it (and the
        # greedy offset step, W403/E303) only when max_risk or the targets leave no room for it
        offset = np.concatenate([-request.premium_offset * objective.premium, objective.premium, np.zeros(2 * k)])
        solution = milp(cost, constraints=[*constraints, LinearConstraint(offset[None, :], 0, np.inf)],
                        integrality=integrality, bounds=Bounds(lower, upper), options={"time_limit": 10})
        if solution.x is not None:
            return np.round(solution.x[:n] - solution.x[n:2 * n])
    solution = milp(cost, constraints=constraints, integrality=integrality,
                    bounds=Bounds(lower, upper), options={"time_limit": 10})
    if solution.x is None:
        raise BuildError(f"no leg set meets the targets under the constraints ({solution.message})")
    return np.round(solution.x[:n] - solution.x[n:2 * n])


# `_path_c`'s constraint rows, (matrix, low, high) each, over the variables (long lots, short lots, slacks).
def _style_rows(objective, k: int) -> list[tuple]:
    """A credit book's net premium below zero, a debit book's above."""
    if objective.style not in ("Credit", "Debit"):
        return []
    sign = 1.0 if objective.style == "Credit" else -1.0
    row = np.concatenate([sign * objective.premium, -sign * objective.premium, np.zeros(2 * k)])
    return [(row[None, :], -np.inf, -1e-6 * abs(objective.premium).max())]


def _risk_rows(request, cands, k: int) -> list[tuple]:
    """``max_risk``: the expiry P&L at least -max_risk, and no net short calls."""
    if request.max_risk is None:
        return []
    # the expiry P&L is piecewise linear with kinks at the strikes: bounding it there, at 0 and far
    # above (with no net short calls) bounds it everywhere
    grid = _payoff_matrix(request, cands)
    prices = np.linspace(0.0, 4 * max(request.price, max(c.strike for c in cands)), grid.shape[0])
    at = [int(np.argmin(np.abs(prices - c.strike))) for c in cands] + [0, grid.shape[0] - 1]
    pnl = grid[sorted(set(at))]
    calls = np.array([1.0 if c.option_type == "call" else 0.0 for c in cands])
    return [(np.hstack([pnl, -pnl, np.zeros((len(pnl), 2 * k))]), -request.max_risk, np.inf),
            (np.concatenate([calls, -calls, np.zeros(2 * k)])[None, :], 0, np.inf)]


def _direction_rows(request, objective, k: int) -> list[tuple]:
    """The intent's direction as a hard constraint on the book's delta (a Bull book is net long delta)."""
    signs = allowed_delta_signs(request.intent)
    if signs == {-1, 0, 1}:
        return []
    flat = 0.05 * request.multiplier  # the band `direction_kept` calls flat
    delta = np.concatenate([objective.matrix[:, 0], -objective.matrix[:, 0], np.zeros(2 * k)])
    low = flat if min(signs) == 1 else -flat if 0 in signs and min(signs) == 0 else -np.inf
    high = -flat if max(signs) == -1 else flat if max(signs) == 0 else np.inf
    return [(delta[None, :], low, high)]


def _lot_bounds(request, cands, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The variables' bounds: up to ``max_lots`` a side, none sold that may not be, the base legs kept."""
    n = len(cands)
    upper = np.concatenate([np.full(2 * n, request.max_lots), np.full(2 * k, np.inf)])
    lower = np.zeros(2 * n + 2 * k)
    for i, c in enumerate(cands):
        if not _sellable(request, c):
            upper[n + i] = 0
    for leg in base_legs(request):  # the mapped base legs survive the solve (spec §4.3 starts from them)
        i = _base_anchor(request, cands, leg)
        held, opposite = (i, n + i) if leg.side > 0 else (n + i, i)
        lower[held], upper[opposite] = 1, 0
    return lower, upper


def _greedy(q: np.ndarray, objective, request, steps: int = 200) -> np.ndarray:
    """Greedy fill: the one-lot change that lowers the objective most, until none does."""
    q, cands = q.copy(), objective.cands
    base = base_legs(request) if cands is not None and _keeps_base(cands, q, base_legs(request)) else ()
    best = objective(q)
    for _ in range(steps):
        trial_best, move = best, None
        for i in range(len(q)):
            for delta in (1, -1):
                if abs(q[i] + delta) > request.max_lots or (
                        q[i] + delta < 0 and cands is not None and not _sellable(request, cands[i])):
                    continue
                q[i] += delta
                value = objective(q) if not base or _keeps_base(cands, q, base) else np.inf
                q[i] -= delta
                if value < trial_best - 1e-12:
                    trial_best, move = value, (i, delta)
        if move is None:
            break
        q[move[0]] += move[1]
        best = trial_best
    return q


def _nearest(cands, kind, strike) -> int:
    options = [i for i, c in enumerate(cands) if c.option_type == kind]
    return min(options, key=lambda i: abs(cands[i].strike - strike))


def _path_a(request, cands, objective) -> np.ndarray:
    q = _base_position(request, cands)
    return _greedy(q, objective, request)


def _base_position(request, cands) -> np.ndarray:
    """One lot of each base leg on its anchor strike (``MapIntentToO``'s start)."""
    q = np.zeros(len(cands))
    for leg in base_legs(request):
        q[_base_anchor(request, cands, leg)] += leg.side
    return q


def _families(request, cands) -> list[np.ndarray]:
    n, price = len(cands), request.price
    step = _step(request)
    out = []

    def legs(*items):
        q = np.zeros(n)
        for kind, strike, side in items:
            q[_nearest(cands, kind, strike)] += side
        return q

    for w in range(0, 5):
        for sign in (1, -1):
            out.append(sign * legs(("put", price - w * step, 1), ("call", price + w * step, 1)))  # straddle/strangle
        for wing in (1, 2):
            lo, hi = price - w * step, price + w * step
            out.append(legs(("put", lo - wing * step, 1), ("put", lo, -1), ("call", hi, -1),
                            ("call", hi + wing * step, 1)))  # iron condor / butterfly
            out.append(-out[-1])
    for w in range(1, 4):
        for kind in ("call", "put"):
            out.append(legs((kind, price - w * step, 1), (kind, price + w * step, -1)))  # verticals
            out.append(-out[-1])
            out.append(legs((kind, price - w * step, 1), (kind, price, -2), (kind, price + w * step, 1)))
    return out


def _path_b(request, cands, objective) -> np.ndarray:
    base = base_legs(request)
    fitting = [q for q in _families(request, cands) if _keeps_base(cands, q, base)]
    best = min(fitting or [_base_position(request, cands)], key=objective)
    scaled = min((best * m for m in range(1, request.max_lots + 1)
                  if np.abs(best * m).max() <= request.max_lots), key=objective)  # global size tweak
    return scaled


# --------------------------------------------------------------------------- rc6 pipeline


def _payoff_matrix(request, cands) -> np.ndarray:
    """P&L at expiry per lot of each candidate on a price grid (grid × candidates); cached per request."""
    key = (id(request), len(cands))
    if _PAYOFF_CACHE.get("key") != key:
        prices = np.linspace(0.0, 4 * max(request.price, max(c.strike for c in cands)), 2001)
        strikes = np.array([c.strike for c in cands])
        calls = np.array([c.option_type == "call" for c in cands])
        intrinsic = np.where(calls, np.maximum(prices[:, None] - strikes, 0), np.maximum(strikes - prices[:, None], 0))
        _, premium = _unit_greeks(request, cands)
        _PAYOFF_CACHE.update(key=key, value=intrinsic * request.multiplier - premium)
    return _PAYOFF_CACHE["value"]


_PAYOFF_CACHE: dict = {}


def _worst_loss(request, cands, q) -> tuple[float, bool]:
    payoff = _payoff_matrix(request, cands) @ q
    calls = sum(q[i] for i, c in enumerate(cands) if c.option_type == "call")
    return float(-min(payoff.min(), 0.0)), calls < 0


def ensure_max_risk(request, cands, q, notes) -> np.ndarray:
    if request.max_risk is None:
        return q
    q = q.copy()
    for _ in range(4 * request.max_lots):
        loss, unbounded = _worst_loss(request, cands, q)
        if not unbounded and loss <= request.max_risk:
            return q
        if unbounded:  # buy the farthest call as a wing
            q[max((i for i, c in enumerate(cands) if c.option_type == "call"), key=lambda i: cands[i].strike)] += 1
            notes.append("ensure_max_risk: bought a call wing to cap the upside loss")
        elif np.abs(q).max() > 1 and _keeps_base(cands, np.sign(q) * np.maximum(np.abs(q) - 1, 0),
                                                 base_legs(request)):
            q = np.sign(q) * np.maximum(np.abs(q) - 1, 0)
            notes.append("ensure_max_risk: reduced every leg by one lot")
        else:
            q[min((i for i, c in enumerate(cands) if c.option_type == "put"), key=lambda i: cands[i].strike)] += 1
            notes.append("ensure_max_risk: bought a put wing to cap the downside loss")
    raise BuildError(f"E302: no leg set that keeps the intent's base legs fits within max_risk "
                     f"{request.max_risk:,.4g}")


def apply_premium_offset(request, cands, q, notes, objective: _Objective) -> np.ndarray:
    """Sell out-of-the-money options until the credit covers ``premium_offset`` of the debit.

    Best effort under the intent and ``max_risk`` (rc6 §4.1: cost second): a sale that
    would break ``max_risk`` stops here with W403; a sale that would turn the net delta
    against the intent, or no option left to sell, is E303 (unattainable).
    """
    share = request.premium_offset
    if not share:
        return q
    premium = objective.premium
    q = q.copy()
    for _ in range(2 * request.max_lots):
        debit, credit = float(np.clip(q, 0, None) @ premium), float(-np.clip(q, None, 0) @ premium)
        if debit <= 0 or credit >= share * debit:
            return q
        best = _offset_leg(request, cands, q, premium, share * debit - credit)
        if best is None:
            break
        trial = q.copy()
        trial[best] -= 1
        if not objective.direction_kept(trial):
            break
        if request.max_risk is not None and (lambda r: r[1] or r[0] > request.max_risk)(
                _worst_loss(request, cands, trial)):
            notes.append(f"W403: premium_offset reduced to {credit / debit:.0%} to satisfy max_risk")
            return q
        q = trial
        notes.append(f"apply_premium_offset: sold one {cands[best].option_type} at {cands[best].strike:g}")
    raise BuildError(f"E303: premium_offset {share:.0%} cannot be attained: no further out-of-the-money "
                     f"option can be sold without turning the position against `{request.intent}`")


def _offset_leg(request, cands, q, premium, needed: float) -> int | None:
    """The option to sell next for ``premium_offset``.

    Out of the money, of a type the position holds long, beyond its long strike and no more
    lots than are held long — so a long call becomes a debit vertical (golden sample 5)
    and the offset finances the position without turning it around. Of those, the farthest
    strike whose premium alone covers what is still ``needed``; else the richest.
    """
    held = [c for i, c in enumerate(cands) if q[i] > 0]
    longs = {kind: pick(c.strike for c in held if c.option_type == kind)
             for kind, pick in (("call", max), ("put", min)) if any(c.option_type == kind for c in held)}

    def spare(kind: str) -> float:  # long lots of the type not yet financed by a short one
        return sum(q[i] for i, c in enumerate(cands) if c.option_type == kind)

    def otm_beyond(c: Candidate, strike: float) -> bool:
        return c.strike > max(strike, request.price) if c.option_type == "call" else c.strike < min(strike, request.price)

    spreads = [i for i, c in enumerate(cands)
               if -request.max_lots < q[i] <= 0 and c.option_type in longs and spare(c.option_type) >= 1
               and otm_beyond(c, longs[c.option_type])]
    # then naked sales the intent allows (Bull may sell puts: spec §3.5) — these add risk, so
    # max_risk can cut the offset short here (W403)
    allowed = {leg.instrument for s in map_intent_to_o(request.intent) for leg in s if leg.side < 0}
    naked = [i for i, c in enumerate(cands) if -request.max_lots < q[i] <= 0 and c.option_type in allowed
             and otm_beyond(c, request.price)]
    usable = spreads or naked
    enough = [i for i in usable if premium[i] >= needed]
    if enough:
        return min(enough, key=lambda i: premium[i])
    return max(usable, key=lambda i: premium[i], default=None)


def build(request: BuildRequest) -> BuildResult:
    """Run one construction path and the rc6 enforcement steps; render the `.opl` text."""
    cands = candidates(request)
    matrix, premium = _unit_greeks(request, cands)
    objective = _Objective(request, matrix, premium, cands)
    q = {"A": _path_a, "B": _path_b, "C": _path_c}[request.path](request, cands, objective)
    notes: list[str] = []
    q = _greedy(q, objective, request)  # control_tune
    q = ensure_max_risk(request, cands, q, notes)
    q = apply_premium_offset(request, cands, q, notes, objective)
    if not q.any() and request.max_risk is not None:
        raise BuildError(f"no leg set with exposure fits within max_risk {request.max_risk:,.4g}")
    if not q.any():
        raise BuildError("the targets are met by an empty position; state a target or an intent with exposure")
    greeks = dict(zip(GREEKS, (float(v) for v in q @ matrix)))
    loss, unbounded = _worst_loss(request, cands, q)
    quantities = {c: int(v) for c, v in zip(cands, q) if v}
    result = BuildResult(quantities, greeks, float(q @ premium), None if unbounded else loss, notes)
    result.text = render_opl(request, result)
    return result


def render_opl(request: BuildRequest, result: BuildResult) -> str:
    """The built strategy as a `.opl` file (reality_check runs `opl check` on it)."""
    def num(x: float) -> str:
        return f"{x:g}"

    def tenor_leg(c: Candidate, qty: int) -> str:
        side = "long" if qty > 0 else "short"
        lots = f"{abs(qty)}×" if abs(qty) != 1 else ""
        return f"{lots}{side} Option({c.option_type.capitalize()}, {num(c.strike)}, {request.tenor_days}d)"

    legs = sorted(result.quantities.items(), key=lambda kv: (kv[0].strike, kv[0].option_type))
    lines = ["opl-lang 1.0",
             f"# built by `opl build` (path {request.path}): " + ", ".join(
                 f"{k} {v:+.4g}" for k, v in result.greeks.items()),
             *(f"# {note}" for note in result.notes),
             f"price {num(request.price)}", f"iv {num(request.iv)}", f"rate {num(request.rate)}",
             f"time {request.time.isoformat()}", f"direction_intent {request.intent}"]
    if request.vega_style:
        lines.append(f"vega_style {request.vega_style}")
    if request.multiplier != DEFAULT_MULTIPLIER:
        lines.append(f"granularity {num(request.multiplier)}")
    for name in ("max_risk", "capital_limit"):
        if getattr(request, name) is not None:
            lines.append(f"{name} {num(getattr(request, name))}")
    if request.premium_offset is not None:
        lines.append(f"premium_offset {num(request.premium_offset * 100)}%")
    lines.append("S = " + " + ".join(tenor_leg(c, q) for c, q in legs))
    lines += ["exit_mode first_hit", "exit_triggers [ pnl_percent(>50%), pnl_percent(<-100%), days_left(<2d) ]"]
    return "\n".join(lines) + "\n"
