"""The mapping of a calibration onto the experiment block that ``opl simulate`` reads.

What the simulator reads (``opl.runtime.engine.processes``, ``opl.runtime.engine.marking``) and where
each value comes from:

=====================================  =====================================================
experiment block                       calibration
=====================================  =====================================================
``garch(alpha, beta, nu, vol)`` or     the chosen GARCH / GJR Student-t fit of the diffusion
``gjr(alpha, gamma, beta, nu, vol)``   (:mod:`opl.calibration.jumps`); ``vol`` the sample
                                       volatility of the diffusion's returns
``jump(intensity, mean, std)``         the jump estimate, only when jumps were found
``iv smile(spread, floor)``            the implied level against the model's volatility
                                       (option chains or the implied-volatility summary)
``iv smile(skew, curvature)``          the one-month smile of the option chains
=====================================  =====================================================

**The simulator's year.** A simulated month is 21 trading days lasting 30/365 of a year
(the options' tenor, ACT/365F), so a daily variance h is an annual σ² = h × 21 × 365/30
= 255.5·h in the simulator, not 252·h; the jump intensity per trading day maps the same
way. ``SIM_DAYS_PER_YEAR`` makes both conversions, so a simulated day has the variance
and the jump probability of an observed one.

**Long-run level.** ``vol`` is the sample standard deviation of the diffusion's daily
returns (jump days removed when jumps were found), not the fit's ω/(1 − persistence):
the simulator targets it (ω = h̄(1 − persistence)), and the sample level is well
determined where the fitted one is not (infinite for an integrated fit).

**Integrated fits.** The simulator needs persistence < 1. A fit at the bound
(persistence ≥ 0.999) keeps its α (and γ) — the response to a shock — and has β lowered
to make the persistence ``max_persistence`` (0.998, a half-life of 346 trading days);
the note says so.

**Implied spread.** The simulator marks at-the-money options at
``iv_ATM = max(floor, σ_t·(1 + spread))`` with σ_t the model's volatility (GARCH
conditional plus the jumps' variance). ``spread`` is the least-squares fit of that
line, 1 + spread = Σ iv_t·σ_t / Σ σ_t², over the days that have both an implied
volatility and the fit's σ_t; ``floor`` is the 1st percentile of the daily implied
level (the market's implied volatility stayed above it 99% of days). The implied level
is the chains' ATM volatility nearest one month when there are chains, else the
summary file's daily mean over all listed options (a little above ATM: it averages
the smile too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opl.runtime.engine.processes import PARAMETERS
from opl.lang.vocabulary import SMILE_PARAMETERS

__all__ = ["SIM_DAYS_PER_YEAR", "MAX_PERSISTENCE", "ExperimentBlock", "implied_spread", "build_block",
           "component_params", "apply_to_settings"]

SIM_DAYS_PER_YEAR = 21 * 365 / 30
MAX_PERSISTENCE = 0.998


def _pct(value: float, digits: int = 2) -> str:
    text = f"{value * 100:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _num(value: float, digits: int = 4) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


# How each parameter is written in the block: percentages for levels, plain numbers otherwise.
_FORMAT = {"vol": _pct, "mean": _pct, "std": _pct, "spread": _pct, "floor": _pct,
           "alpha": _num, "beta": _num, "gamma": _num, "skew": lambda v: _num(v, 3),
           "curvature": lambda v: _num(v, 3), "nu": lambda v: _num(v, 2), "intensity": lambda v: _num(v, 3)}


def _written(name: str, value: float) -> float:
    """The value the block's text gives back when parsed (so the result records what runs)."""
    text = _FORMAT[name](value)
    return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)


@dataclass
class ExperimentBlock:
    """Model components and implied-volatility settings, as the simulator reads them.

    ``model`` lists ``(component, {parameter: value})`` in block order; ``smile`` the
    ``iv smile(...)`` settings that were calibrated; ``notes`` every adjustment made.
    Values are rounded as written, so the block's text parses back to exactly them.
    """

    model: list[tuple[str, dict[str, float]]]
    smile: dict[str, float]
    vol: float
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    smile_notes: list[str] = field(default_factory=list)

    def lines(self, extra_components: tuple[str, ...] | list[str] = ()) -> list[str]:
        """The experiment-block lines, e.g. ``model garch(alpha=0.05, ...) + jump(...)``.

        ``extra_components`` (e.g. ``("regime",)``) are appended to the model line
        without parameters, for a file whose experiment needs them.
        """
        terms = []
        for name, params in self.model:
            args = ", ".join(f"{k}={_FORMAT[k](v)}" for k, v in params.items())
            terms.append(f"{name}({args})" if args else name)
        terms += [c for c in extra_components if c not in {n for n, _ in self.model}]
        out = [f"model {' + '.join(terms)}", "calibration historical"]
        if self.smile:
            out.append("iv smile(" + ", ".join(f"{k}={_FORMAT[k](v)}" for k, v in self.smile.items()) + ")")
        return out

    def text(self, extra_components: tuple[str, ...] | list[str] = (), comment: str | None = None) -> str:
        """An ``experiment { ... }`` block, with the notes as comments."""
        head = [f"# {line}" for line in (comment or "").splitlines()]
        head += [f"# note: {n}" for n in self.notes]
        body = [f"  {line}" for line in self.lines(extra_components)]
        return "\n".join(head + ["experiment {"] + body + ["}"]) + "\n"

    def to_dict(self) -> dict:
        return {"model": {name: params for name, params in self.model}, "smile": self.smile, "vol": self.vol,
                "notes": self.notes, "sources": self.sources, "lines": self.lines()}


def implied_spread(iv: pd.Series, model_vol: pd.Series) -> dict:
    """Least-squares spread of ``iv`` over ``model_vol`` on their common dates, and the floor."""
    both = pd.concat([iv.rename("iv"), model_vol.rename("model")], axis=1, join="inner").dropna()
    if not len(both):
        return {"days": 0, "spread": None, "floor": None}
    x, y = both["model"].to_numpy(), both["iv"].to_numpy()
    return {"days": int(len(both)), "first": str(both.index[0].date()), "last": str(both.index[-1].date()),
            "spread": float((x @ y) / (x @ x) - 1.0), "iv_mean": float(y.mean()), "model_vol_mean": float(x.mean()),
            "floor": float(np.quantile(iv.dropna().to_numpy(), 0.01)),
            "rmse": float(np.sqrt(np.mean((y - x * (x @ y) / (x @ x)) ** 2)))}


def _garch_params(fit, vol: float, max_persistence: float, notes: list[str]) -> dict[str, float]:
    alpha, gamma, beta = fit.alpha, max(fit.gamma, 0.0), fit.beta
    if alpha + beta + 0.5 * gamma >= max_persistence:
        new_beta = max(0.0, max_persistence - alpha - 0.5 * gamma)
        notes.append(f"the {fit.kind} fit is integrated (persistence {fit.persistence:.4f}); β lowered from "
                     f"{beta:.4f} to {new_beta:.4f} so the simulator's persistence is {max_persistence:g} "
                     f"(half-life {math.log(0.5) / math.log(max_persistence):.0f} trading days)")
        beta = new_beta
    nu = fit.nu
    low = PARAMETERS[fit.kind]["nu"][0]
    if nu < low:
        notes.append(f"the fitted ν = {nu:.2f} is below what the simulator accepts ({low:g}): ν = {low:g} used")
        nu = low
    params = {"alpha": alpha}
    if fit.kind == "gjr":
        params["gamma"] = gamma
    params.update({"beta": beta, "nu": nu, "vol": vol})
    return {k: _written(k, v) for k, v in params.items()}


def component_params(name: str, *, fits: dict, vol: float, jumps, max_persistence: float = MAX_PERSISTENCE,
                     notes: list[str]) -> dict[str, float] | None:
    """Calibrated parameters of one model component (``None``: nothing to calibrate, e.g. ``regime``).

    ``fits`` maps ``"garch"``/``"gjr"`` to the diffusion's fits, ``jumps`` is the
    :class:`opl.calibration.jumps.JumpEstimate`.
    """
    if name in ("garch", "gjr"):
        fit = fits[name]
        if name == "gjr" and fit.gamma < 0:
            notes.append(f"the GJR fit has γ = {fit.gamma:.4f} < 0, which the simulator cannot run: γ = 0 used")
        return _garch_params(fit, vol, max_persistence, notes)
    if name == "gbm":
        return {"vol": _written("vol", vol)}
    if name == "jump":
        if not jumps.found:
            notes.append(f"no jumps beyond the Student-t tails ({jumps.count} day{'s' if jumps.count != 1 else ''} beyond "
                         f"{jumps.threshold:g} sd, {jumps.expected_false:.1f} expected without jumps): "
                         "jump intensity 0")
            return {"intensity": 0.0}
        std = jumps.std if math.isfinite(jumps.std) else 0.0
        if not math.isfinite(jumps.std):
            notes.append("one jump found: its size is used with no spread (std 0)")
        return {k: _written(k, v) for k, v in (("intensity", jumps.per_day * SIM_DAYS_PER_YEAR),
                                               ("mean", jumps.mean), ("std", std))}
    return None


def build_block(*, garch, jumps, diffusion_returns: pd.Series, implied: dict | None, smile: dict | None,
                max_persistence: float = MAX_PERSISTENCE) -> ExperimentBlock:
    """The block of a calibration.

    Parameters
    ----------
    garch : GarchSelection
        The diffusion's fits and the chosen one.
    jumps : JumpEstimate
    diffusion_returns : pandas.Series
        Daily returns of the diffusion (jump days removed when jumps were found).
    implied : dict, optional
        :func:`implied_spread`'s result.
    smile : dict, optional
        The one-month smile of the chains (``SurfaceResult.window``).
    """
    notes: list[str] = []
    vol = float(np.std(diffusion_returns.dropna().to_numpy(), ddof=1) * math.sqrt(SIM_DAYS_PER_YEAR))
    chosen = garch.chosen
    model = [(chosen, component_params(chosen, fits=garch.fits, vol=vol, jumps=jumps,
                                       max_persistence=max_persistence, notes=notes))]
    sources = {f"{chosen}": f"{chosen.upper()}(1,1)-t fit ({garch.criterion.upper()}: {garch.reason}); vol = sample "
               "volatility of the diffusion's daily returns x sqrt(255.5)"}
    if jumps.found:
        model.append(("jump", component_params("jump", fits=garch.fits, vol=vol, jumps=jumps, notes=notes)))
        sources["jump"] = f"{jumps.count} jump days beyond {jumps.threshold:g} sd, net of the Student-t's expected"
    else:
        notes.append(f"no jump component: {jumps.count} day{'s' if jumps.count != 1 else ''} beyond {jumps.threshold:g} sd against "
                     f"{jumps.expected_false:.1f} expected from the Student-t alone")
    fitted: dict[str, float] = {}
    if implied and implied.get("spread") is None:
        notes.append(f"the implied level ({implied['source']}) has no day in common with the futures: the "
                     "implied spread and floor keep the simulator's defaults")
    elif implied:
        fitted.update(spread=implied["spread"], floor=implied["floor"])
        sources["iv.spread"] = (f"least squares of the implied level on the model's volatility over "
                                f"{implied['days']} days ({implied['source']}); floor its 1st percentile")
    if smile and smile.get("skew") is not None:
        fitted.update(skew=smile["skew"], curvature=smile["curvature"])
        sources["iv.skew"] = f"median one-month smile of the chains over the last {smile['days']} days"
    settings, smile_notes = {}, []
    for key, value in fitted.items():
        low, high, what = SMILE_PARAMETERS[key]
        if not low <= value <= high:
            smile_notes.append(f"the fitted {what} ({key} {value:.4g}) is outside what the simulator accepts "
                         f"[{low:g}, {high:g}]: {min(max(value, low), high):g} used")
            value = min(max(value, low), high)
        settings[key] = _written(key, value)
    return ExperimentBlock(model=model, smile=settings, vol=vol, notes=notes + smile_notes, sources=sources,
                           smile_notes=smile_notes)


def apply_to_settings(settings, calibration, *, file_smile=()) -> dict:
    """Fill a simulation's settings from a calibration, for ``opl simulate --data``.

    Precedence, lowest first: the simulator's defaults, this calibration, what the file
    writes explicitly (a model parameter such as ``garch(alpha=0.05)``, an ``iv
    smile(...)`` parameter named in ``file_smile``), then ``--set``. Each component of the
    file's model (``gbm`` when it names none) gets its calibrated parameters:
    ``garch``/``gjr`` the fit of that kind (whichever the criterion chose), ``jump`` the
    jump estimate (intensity 0 when the data show none), ``regime`` nothing (the hit
    rate is the file's). ``settings`` (an ``opl.lang.experiment.settings.SimSettings``) is changed in
    place.

    Returns
    -------
    dict
        ``applied`` (setting → value), ``kept_from_file`` (settings the file wrote) and
        ``notes``, recorded in the simulation's ``model.calibration``.
    """
    notes: list[str] = []
    applied: dict[str, float] = {}
    kept: list[str] = []
    block = calibration.block
    names = list(settings.components) or ["gbm"]
    for name in names:
        params = component_params(name, fits=calibration.garch.fits, vol=block.vol, jumps=calibration.jumps,
                                  notes=notes)
        if params is None:
            continue
        written = settings.model_params.setdefault(name, {})
        for key, value in params.items():
            if key in written:
                kept.append(f"{name}.{key}")
                continue
            written[key] = value
            applied[f"{name}.{key}"] = value
    if calibration.jumps.found and "jump" not in names:
        notes.append(f"the data show {calibration.jumps.intensity:.2f} jumps a year but the file's model has no "
                     "`jump` component: add `+ jump` to simulate them")
    settings.vol = _written("vol", block.vol)
    applied["vol"] = settings.vol
    for key, value in block.smile.items():
        if key in file_smile:
            kept.append(f"iv.{key}")
            continue
        setattr(settings, f"iv_{key}", value)
        applied[f"iv.{key}"] = value
    if not block.smile:
        notes.append("no option data: the implied-volatility rule keeps its defaults")
    return {"applied": applied, "kept_from_file": kept, "notes": notes + list(block.smile_notes)}
