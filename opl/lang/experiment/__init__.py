"""The experiment block's semantics: settings and their overrides, the rules the simulator
applies, the stress and sensitivity scenarios, and the estimated cost of a run."""
