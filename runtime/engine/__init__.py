"""The replay engine: price processes, the book, marking, hedging, triggers, guards,
adjustments, exercise and the ledger, with the numba kernels beside the numpy reference."""
