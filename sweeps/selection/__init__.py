"""Choosing among a sweep's evaluated points: Pareto fronts and what is shown or exported from them.

`pareto` (non-dominated set, hypervolume, knee), `pareto_table` (`unlearn-sweep pareto`, the end of a sweep),
`export` (chosen points as `unlearn-sweep train` configs), `terminal` (consoles and tables sized to the output,
used by the Pareto table and by the layers above). Below search and operations; it reads recording's results
file and the spec.
"""
