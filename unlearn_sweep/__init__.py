"""The `unlearn-sweep` command line: the top layer, over the sweep service (`sweeps`) and the reports (`dashboards`).

    unlearn-sweep --help            # (the console script: unlearn_sweep.cli:main)
    python -m unlearn_sweep.cli --help
"""
