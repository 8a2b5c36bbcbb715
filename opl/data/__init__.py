"""Market data: column contracts, validating loaders, roll handling and a synthetic dataset.

Typical use::

    from opl.data import load_futures, within_contract_returns

    bars = load_futures("futures.csv", limit=0.10, tick=5)   # DataError, located, if anything is wrong
    returns = within_contract_returns(bars.frame)             # roll-day returns excluded and counted

The synthetic dataset lives in :mod:`opl.data.synth` (imported on demand: it
pulls in the pricing kernel).
"""

from opl.data.contracts import CONTRACTS, FACTORS, FUTURES, OPTIONS, SIGNALS, Column, Contract
from opl.data.loaders import (
    DataError, LoadResult, Problem, Repair, load, load_factors, load_futures, load_options, load_signals,
    validate_frame,
)
from opl.data.rolls import ContractReturns, Rolls, classify_moves, detect_rolls, forward_moves, within_contract_returns

__all__ = [
    "CONTRACTS", "FUTURES", "OPTIONS", "SIGNALS", "FACTORS", "Column", "Contract",
    "DataError", "LoadResult", "Problem", "Repair", "load", "load_futures", "load_options", "load_signals",
    "load_factors", "validate_frame",
    "ContractReturns", "Rolls", "classify_moves", "detect_rolls", "forward_moves", "within_contract_returns",
]
