"""Trial types: what one trial is, from its design rows to a simulated answer.

`crowdkit.trials.base` defines the interface, `crowdkit.trials.registry` maps names to
types, and each type is a package of its own (`crowdkit.trials.twoafc`, the paper's 2-AFC).
"""
