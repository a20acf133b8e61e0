"""The Ray a sweep runs on: start a local one sized for the spec or join a cluster, and read its resources.

    from sweeps.operations.ray_cluster import init_ray, cluster_resources, local_ray_cpus
    session = init_ray(spec, address=None)       # a local Ray on 127.0.0.1 (None: a cluster, or Ray already up)
    cluster_resources()                          # {"CPU": 2.0, "GPU": 0.0} of the connected Ray
    local_ray_cpus(spec)                         # the CPUs a local Ray declares for the spec

Used by the sweep service (`sweeps.operations.service.run_sweep`, which re-exports these names) and by the
plan's machine probe (`sweeps.operations.overview`); it imports nothing else of `sweeps`, so both can use it without a circle.
`LOOPBACK_ENV` holds the Ray settings a local sweep runs with (set as defaults before Ray starts).
"""

from __future__ import annotations

import math
import os
from typing import Any

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
                "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "60", "RAY_AIR_NEW_OUTPUT": "0",
                "TUNE_GLOBAL_CHECKPOINT_S": "1",  # snapshot Tune's state often: a resume loses as little as possible
                "RAY_DEDUP_LOGS": "1",
                # no idle workers started with Ray: Tune's trial actors never run in them (an actor gets a worker of
                # its own), so they only imported torch & co. (`trainables.warm_imports`) beside the driver's shared
                # work and were stopped unused (seen in raylet.out: 4 workers started for 2 trials, 2 now)
                "RAY_prestart_worker_first_driver": "0"}


def local_ray_cpus(spec: Any) -> int:
    """The CPUs a local Ray declares for `spec`: this machine's, and at least one trial's worth."""
    from trainables.trial import uses_ray_train

    res = spec.resources.model_dump()
    # a Train-driving trial holds 0.01 CPU beside its workers: declare one spare logical CPU for it
    return max(os.cpu_count() or 1, math.ceil(res["workers"] * res["cpus"] + (0.01 if uses_ray_train(res) else 0)))


def init_ray(spec: Any, address: str | None) -> str | None:
    """Connect to `address` (a running cluster) or start a local one on 127.0.0.1 sized for the spec; returns
    the local Ray's session folder (None when connecting to a cluster or when Ray is already up)."""
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    from trainables.trial import uses_ray_train

    if ray.is_initialized():
        return None
    env = {"env_vars": {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
                                                     "DS_ACCELERATOR", "TORCH_EXTENSIONS_DIR",
                                                     "UNLEARN_SWEEP_CACHE", "MLFLOW_DISABLE_TELEMETRY",
                                                     "HF_HUB_DISABLE_PROGRESS_BARS", "TOKENIZERS_PARALLELISM",
                                                     "UNLEARN_SWEEP_PROGRESS_WRITE_S")
                        if k in os.environ}}
    from trainables.warm_imports import ENV_OFF, SETUP_HOOK

    if os.environ.get(ENV_OFF) != "1":  # every worker imports torch & co. as it starts, not on a trial's clock
        env["worker_process_setup_hook"] = SETUP_HOOK
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=True)
        return None
    # the local Ray listens on 127.0.0.1 only and lives as long as this driver: no token to set up (a
    # cluster's token authentication is the cluster's business: it applies with --address)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    res = spec.resources.model_dump()
    ctx = ray.init(num_cpus=local_ray_cpus(spec), num_gpus=None, include_dashboard=uses_ray_train(res),
                   runtime_env=env, object_store_memory=512 * 1024 * 1024, log_to_driver=True, configure_logging=True,
                   logging_level="WARNING")
    return (getattr(ctx, "address_info", None) or {}).get("session_dir")


def cluster_resources() -> dict[str, float]:
    import ray

    total = ray.cluster_resources()
    return {"CPU": float(total.get("CPU", 0)), "GPU": float(total.get("GPU", 0))}
