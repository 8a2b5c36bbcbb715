"""Pricing kernel speed: vectorised numpy against per-option baselines, measured in one run.

Prints, for each task, the time per option of the vectorised kernel over N options
(default 1,000,000) and of each per-option baseline over a smaller sample, and the
ratio (how many times faster the vectorised kernel is per option). Baselines:

* a pure-Python loop (``math`` only) computing the same price and six Greeks;
* QuantLib's per-option engines (AnalyticEuropeanEngine, BaroneAdesiWhaley), when
  QuantLib is installed (it is a test extra, never a runtime dependency);
* for American options, the reference binomial tree of ``opl.runtime.pricing.american``;
* for implied volatility, ``scipy.optimize.brentq`` on one option at a time.

Usage::

    python benchmarks/bench_pricing.py [--n 1000000] [--seed 7]

Timings are wall-clock best-of-``--repeat``; only the ratios are meant to be
compared across machines.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from opl.runtime.pricing.american import american_greeks, baw_price, binomial_price
from opl.runtime.pricing.implied import implied_vol
from opl.runtime.pricing.black import greeks, price

try:  # optional baseline
    import QuantLib as ql
except ImportError:  # pragma: no cover - depends on the environment
    ql = None


def _market(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    # The jujube-like domain: futures options, 7 days to 1 year, 15% to 60% vol, F/K 0.8 to 1.2.
    return dict(is_call=rng.random(n) < 0.5, underlying=rng.uniform(80.0, 120.0, n), strike=np.full(n, 100.0),
                t=rng.integers(7, 366, n) / 365.0, vol=rng.uniform(0.15, 0.6, n), rate=np.full(n, 0.02),
                carry=np.zeros(n))


def _sample(market: dict[str, np.ndarray], m: int) -> dict[str, np.ndarray]:
    return {key: value[:m] for key, value in market.items()}


def _rows(market: dict[str, np.ndarray]):
    return zip(*(market[key].tolist() for key in ("is_call", "underlying", "strike", "t", "vol", "rate", "carry")))


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------- baselines

def _python_greeks(call: bool, s: float, k: float, t: float, v: float, r: float, b: float) -> tuple:
    """Price and the six Greeks of one option in plain Python (same formulas as opl.runtime.pricing.black)."""
    sd = v * math.sqrt(t)
    d1 = (math.log(s / k) + (b + 0.5 * v * v) * t) / sd
    d2 = d1 - sd
    cf, df = math.exp((b - r) * t), math.exp(-r * t)
    sign = 1.0 if call else -1.0
    n1, n2 = 0.5 * math.erfc(-sign * d1 / math.sqrt(2)), 0.5 * math.erfc(-sign * d2 / math.sqrt(2))
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    value = sign * (cf * s * n1 - df * k * n2)
    delta = sign * cf * n1
    gamma = cf * pdf / (s * sd)
    vega = cf * s * pdf * math.sqrt(t)
    theta = -cf * s * pdf * v / (2 * math.sqrt(t)) - sign * (b - r) * cf * s * n1 - sign * r * df * k * n2
    rho = -t * value
    charm = -cf * (pdf * (b / sd - d2 / (2 * t)) + sign * (b - r) * n1)
    return value, delta, gamma, vega, theta, rho, charm


def _quantlib_loop(market: dict[str, np.ndarray], american: bool) -> Callable[[], None]:
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot, vol, rate, div = ql.SimpleQuote(100.0), ql.SimpleQuote(0.2), ql.SimpleQuote(0.02), ql.SimpleQuote(0.02)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot), ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(div), dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(rate), dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol), dc)))
    engine = (ql.BaroneAdesiWhaleyApproximationEngine(process) if american
              else ql.AnalyticEuropeanEngine(process))

    def run() -> None:
        # One live option at a time: options kept alive would all be notified of every quote change.
        for call, s, k, t, v, r, b in _rows(market):
            spot.setValue(s), vol.setValue(v), rate.setValue(r), div.setValue(r - b)
            expiry = today + int(round(t * 365))
            exercise = ql.AmericanExercise(today, expiry) if american else ql.EuropeanExercise(expiry)
            option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k), exercise)
            option.setPricingEngine(engine)
            if american:
                option.NPV()  # QuantLib's BAW engine gives no Greeks
            else:
                (option.NPV(), option.delta(), option.gamma(), option.vega(), option.theta(), option.rho())

    return run


def _python_price(call: bool, s: float, k: float, t: float, v: float, r: float, b: float) -> float:
    sd = v * math.sqrt(t)
    d1 = (math.log(s / k) + (b + 0.5 * v * v) * t) / sd
    sign = 1.0 if call else -1.0
    return sign * (math.exp((b - r) * t) * s * 0.5 * math.erfc(-sign * d1 / math.sqrt(2))
                   - math.exp(-r * t) * k * 0.5 * math.erfc(-sign * (d1 - sd) / math.sqrt(2)))


def _brentq_loop(market: dict[str, np.ndarray], prices: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        for (call, s, k, t, _, r, b), p in zip(_rows(market), prices.tolist()):
            brentq(lambda v: _python_price(call, s, k, t, v, r, b) - p, 1e-6, 10.0, xtol=1e-14)

    return run


# ---------------------------------------------------------------------------- report

def _report(task: str, n: int, vector_time: float, baselines: list[tuple[str, int, float]]) -> None:
    per = vector_time / n
    print(f"\n{task}")
    print(f"  {'vectorised (opl.runtime)':<34} {n:>9,d} options  {vector_time:8.3f} s  {per * 1e9:10.1f} ns/option")
    for name, m, seconds in baselines:
        base = seconds / m
        print(f"  {name:<34} {m:>9,d} options  {seconds:8.3f} s  {base * 1e9:10.1f} ns/option"
              f"  -> vectorised is {base / per:9.1f}x faster")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="options in the vectorised runs")
    parser.add_argument("--loop", type=int, default=20_000, help="options in the per-option Python baselines")
    parser.add_argument("--tree", type=int, default=40, help="options priced on the reference tree")
    parser.add_argument("--steps", type=int, default=1001, help="steps of the reference tree")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    market = _market(args.n, rng)
    small = _sample(market, args.loop)
    print(f"opl pricing benchmark: n={args.n:,d}, seed={args.seed}, numpy {np.__version__}"
          + (f", QuantLib {ql.__version__}" if ql else ", QuantLib not installed"))

    t_vec = _best(lambda: greeks(**market), args.repeat)
    base = [("pure-Python loop", args.loop, _best(lambda: [_python_greeks(*row) for row in _rows(small)], 1))]
    if ql:
        base.append(("QuantLib AnalyticEuropeanEngine", args.loop, _best(_quantlib_loop(small, False), 1)))
    _report("European price + 6 Greeks (Black-76)", args.n, t_vec, base)

    t_vec = _best(lambda: baw_price(**market), args.repeat)
    tree = _sample(market, args.tree)
    base = [(f"binomial tree, {args.steps} steps", args.tree,
             _best(lambda: binomial_price(**tree, steps=args.steps), 1))]
    if ql:
        base.append(("QuantLib BaroneAdesiWhaley engine", args.loop, _best(_quantlib_loop(small, True), 1)))
    _report("American price (Barone-Adesi-Whaley)", args.n, t_vec, base)

    t_vec = _best(lambda: american_greeks(**market), 1)
    base = [(f"binomial tree price only, {args.steps} st.", args.tree,
             _best(lambda: binomial_price(**tree, steps=args.steps), 1))]
    _report("American price + 6 Greeks (BAW, bumped)", args.n, t_vec, base)

    prices = price(**market)
    quote = {key: value for key, value in market.items() if key != "vol"}
    t_vec = _best(lambda: implied_vol(price=prices, **quote), 1)
    m = min(args.loop, 5_000)
    base = [("scipy brentq per option", m, _best(_brentq_loop(_sample(market, m), prices[:m]), 1))]
    _report("Implied volatility (European)", args.n, t_vec, base)


if __name__ == "__main__":
    main()
