"""The replay engine: price processes, the book, marking, hedging, triggers, guards,
adjustments, exercise and the ledger (the numpy reference), with its compiled twins, the numba
kernels, in the `opl.runtime.engine.kernels` package beside it."""
