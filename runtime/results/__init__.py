"""Results of a replay: metrics with Monte Carlo standard errors, records and reports."""
