"""`opl backtest`: replay a strategy over a market history with the simulator's replay.

>>> from opl.backtest import backtest_file                                    # doctest: +SKIP
>>> result = backtest_file("examples/etf50/straddle.opl", data="data/etf50")  # doctest: +SKIP
>>> result.performance["max_drawdown"]                                        # doctest: +SKIP

Modules: `opl.backtest.market` (the data directory), `opl.backtest.cycles` (option
cycles, strikes, marks), `opl.backtest.surface` (implied volatility where the chain has
no settlement), `opl.backtest.walkforward` (the delta band's walk-forward fit),
`opl.backtest.run` (the facade), `opl.backtest.result` and `opl.backtest.report`.
"""

from opl.backtest.run import BacktestInputError, backtest_file

__all__ = ["backtest_file", "BacktestInputError"]
