"""The experiment block's semantics, numpy-free: its settings with their defaults and
``--set`` overrides, and the estimated cost of a run that the checker bounds."""
