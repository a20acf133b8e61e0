"""Running a sweep: the service (`service.run_sweep`) and what it needs around the Tune run.

`service` (spec in, front out), `preflight` (the spec against this machine), `ray_cluster` (start or join Ray),
`driver_lock` (one driver per sweep folder), `interrupts` (Ctrl-C / SIGTERM), `shared` (what every trial of a
search shares, prepared once), `overview` with `overview_model` and `overview_probe` (`unlearn-sweep plan`),
`outcome` (the exit status). The top layer of `sweeps`: it may import search, selection, recording and spec.
"""
