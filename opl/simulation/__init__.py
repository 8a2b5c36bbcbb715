"""The simulation stage: a checked document and its settings to Monte Carlo results.

``rules`` and ``conditionforms`` translate the file's rules (legs, guards, exit mode,
conditions, the adjustment module) into the runtime's typed objects; ``scenarios`` holds
one handler per stress and sensitivity; ``run`` sweeps sizes and scenarios."""
