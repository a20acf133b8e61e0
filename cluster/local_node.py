"""Helpers for `cluster/local-cluster.sh`: join a loopback-only worker node, and find/stop this cluster's processes.

    python cluster/local_node.py worker --address 127.0.0.1:6380 --temp-dir /tmp/unlearn-sweep-ray/worker \
        --num-cpus 1 --resources '{"worker_node": 1}'
    python cluster/local_node.py pids --temp-root /tmp/unlearn-sweep-ray --gcs-port 6380   # JSON list of pids
    python cluster/local_node.py stop --temp-root /tmp/unlearn-sweep-ray --gcs-port 6380   # SIGTERM, then SIGKILL

Why a worker launcher at all: Ray only keeps every socket on 127.0.0.1 with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
and with that setting `ray start --address=...` refuses to start a non-head node ("Multi-node Ray clusters are
not supported"); with it set to 1, Ray rewrites 127.0.0.1 to the machine's external address. So the worker node
is started the way `ray start` (non-head branch) and `ray.cluster_utils.Cluster.add_node` start one: a
`RayParams` handed to `ray._private.node.Node`. That is a private Ray API, pinned by requirements.txt
(ray 2.60.0); tests/cluster/test_local_cluster_scripts.py fails loudly if a Ray upgrade breaks it.

`stop` ends only this cluster's processes (those whose command line names the temp root or the GCS address,
and their descendants), never other Ray instances on the machine; `ray stop --force` ends every Ray
process of the user and is what `local-cluster.sh stop --all` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterable


def _require_loopback_mode() -> None:
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        sys.exit("local_node.py: set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 so Ray keeps every address on "
                 "127.0.0.1 (local-cluster.sh does this)")


def start_worker(address: str, temp_dir: str, num_cpus: int, resources: dict[str, float],
                 object_store_memory: int | None) -> str:
    """Start a worker node of the cluster at `address` with every socket on 127.0.0.1; returns its node id."""
    _require_loopback_mode()
    import ray._private.node
    import ray._private.parameter
    import ray._private.utils

    params = ray._private.parameter.RayParams(
        gcs_address=address,
        node_ip_address="127.0.0.1",
        node_name="127.0.0.1-worker",
        num_cpus=num_cpus,
        num_gpus=0,
        resources=resources,
        object_store_memory=object_store_memory,
        temp_dir=temp_dir,
        # Random free ports, so the node never collides with the head (or another Ray) on this machine.
        node_manager_port=0,
        min_worker_port=0,
        max_worker_port=0,
        dashboard_agent_listen_port=None,
        include_log_monitor=True,
    )
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False,
                                  connect_only=False)
    ray._private.utils.write_ray_address(address, node.get_temp_dir_path())
    return node.node_id


def cluster_processes(temp_root: str, gcs_port: int) -> list:
    """This cluster's live processes: command line names the temp root or the GCS address, plus descendants."""
    import psutil

    markers = (temp_root.rstrip("/") + "/", f"127.0.0.1:{gcs_port}")
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.pid == os.getpid() or not any(m in cmdline for m in markers):
            continue
        found[proc.pid] = proc
        try:
            for child in proc.children(recursive=True):
                found[child.pid] = child
        except psutil.NoSuchProcess:
            pass
    return [p for p in found.values() if _alive(p)]


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop(procs: Iterable, grace_s: float = 3.0) -> list[int]:
    """SIGTERM the processes, SIGKILL what is left after `grace_s`; returns the pids that were signalled."""
    import psutil

    procs = list(procs)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return sorted(p.pid for p in procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="start a loopback-only worker node")
    w.add_argument("--address", required=True, help="GCS address of the head, e.g. 127.0.0.1:6380")
    w.add_argument("--temp-dir", required=True, help="this node's own Ray temp dir (absolute, short path)")
    w.add_argument("--num-cpus", type=int, default=1)
    w.add_argument("--resources", default="{}", help='JSON custom resources, e.g. {"worker_node": 1}')
    w.add_argument("--object-store-memory", type=int, default=None, help="bytes")
    for name in ("pids", "stop"):
        p = sub.add_parser(name, help=f"{name} this cluster's processes")
        p.add_argument("--temp-root", required=True)
        p.add_argument("--gcs-port", type=int, required=True)
    args = parser.parse_args(argv)

    if args.cmd == "worker":
        try:
            resources = json.loads(args.resources)
        except json.JSONDecodeError as exc:
            sys.exit(f"local_node.py worker: --resources {args.resources!r} is not JSON ({exc}); "
                     'write e.g. \'{"worker_node": 1}\'')
        node_id = start_worker(args.address, args.temp_dir, args.num_cpus, resources, args.object_store_memory)
        print(f"worker node {node_id} joined {args.address} on 127.0.0.1")
    elif args.cmd == "pids":
        print(json.dumps(sorted(p.pid for p in cluster_processes(args.temp_root, args.gcs_port))))
    else:
        pids = stop(cluster_processes(args.temp_root, args.gcs_port))
        print(f"stopped {len(pids)} processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
