"""The simulation stage: a checked document and its settings to Monte Carlo results."""
