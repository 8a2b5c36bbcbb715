"""The front end, numpy-free: source, parse, lower to the typed document, checks, normalise, fmt,
diagnostics and their renderers, the vocabulary and the language reference."""
