"""`opl backtest`: replay a strategy over a market history with the simulator's replay.

>>> from opl.backtesting import backtest_file                                    # doctest: +SKIP
>>> result = backtest_file("examples/etf50/straddle.opl", data="data/etf50")  # doctest: +SKIP
>>> result.performance["max_drawdown"]                                        # doctest: +SKIP

Modules: `opl.backtesting.market` (the data directory), `opl.backtesting.cycles` (option
cycles, strikes, marks), `opl.backtesting.surface` (implied volatility where the chain has
no settlement), `opl.backtesting.walkforward` (the delta band's walk-forward fit),
`opl.backtesting.run` (the facade), `opl.backtesting.result` and `opl.backtesting.report`.
"""

from opl.backtesting.run import BacktestInputError, backtest_file

__all__ = ["backtest_file", "BacktestInputError"]
