"""The cluster manifests are valid: launcher YAMLs against Ray's own schema, KubeRay CRs against the CRDs' required fields.

    pytest tests/cluster/test_cluster_manifests.py

Launcher YAMLs (cluster/ray-cluster-*.yaml) are checked with jsonschema against ray/autoscaler/ray-schema.json
from the installed ray package, and through Ray's own prepare_config + validate_config (what `ray up` runs,
without touching a cloud). The KubeRay manifests are checked against the required-field lists of the KubeRay
CRDs, written out below from ray-project/kuberay:
  - ray-operator/config/crd/bases/ray.io_rayclusters.yaml (commit 1184bc872c08), openAPIV3Schema:
      spec.required                      = [headGroupSpec]
      spec.headGroupSpec.required        = [rayStartParams, template]
      spec.workerGroupSpecs[].required   = [groupName, maxReplicas, minReplicas, rayStartParams, template]
      <pod template>.spec.required       = [containers];  containers[].required = [name]
      volumes[].required = [name];  volumeMounts[].required = [mountPath, name];
      persistentVolumeClaim.required = [claimName];  rayStartParams: map of string to string
  - spec.authOptions.mode: enum [disabled, token] (KubeRay >= 1.5.1 API reference, type AuthOptions);
    token auth on RayJobs: kuberay PR #4210 (rayClusterSpec.authOptions.mode: token)
  - ray.io_rayjobs.yaml, generated from ray-operator/apis/ray/v1/rayjob_types.go (commit f6ef3f7b3263):
      every RayJobSpec field is optional (omitempty); rayClusterSpec is a RayClusterSpec (rules above);
      submissionMode is one of K8sJobMode, HTTPMode, InteractiveMode
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LAUNCHERS = ["ray-cluster-gpu.yaml", "ray-cluster-onprem.yaml"]

RAYCLUSTER_SPEC_REQUIRED = ["headGroupSpec"]
HEAD_GROUP_REQUIRED = ["rayStartParams", "template"]
WORKER_GROUP_REQUIRED = ["groupName", "maxReplicas", "minReplicas", "rayStartParams", "template"]
POD_SPEC_REQUIRED = ["containers"]
CONTAINER_REQUIRED = ["name"]
VOLUME_REQUIRED = ["name"]
VOLUME_MOUNT_REQUIRED = ["mountPath", "name"]
PVC_SOURCE_REQUIRED = ["claimName"]
AUTH_MODES = {"disabled", "token"}
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode"}
SHARED_CLAIM = "unlearn-sweep-shared"


def load(name: str):
    return yaml.safe_load((CLUSTER / name).read_text())


def load_all(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((CLUSTER / name).read_text()) if d is not None]


@pytest.fixture(scope="module")
def ray_schema() -> dict:
    import ray.autoscaler

    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    assert path.is_file(), f"the ray package ships no {path}"
    return json.loads(path.read_text())


# ---------------------------------------------------------------- launcher YAMLs (ray up)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_first_line_is_the_ray_up_command(name):
    first = (CLUSTER / name).read_text().splitlines()[0]
    assert first.startswith(f"# ray up cluster/{name}")


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_validates_against_ray_schema(name, ray_schema):
    jsonschema.validate(load(name), ray_schema)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_passes_rays_own_prepare_and_validate(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(load(name)))
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize("name", LAUNCHERS)
def test_broken_copy_with_unknown_top_level_key_fails(name, ray_schema):
    broken = load(name)
    broken["worker_nodes_typo"] = {"InstanceType": "m5.large"}
    with pytest.raises(jsonschema.ValidationError, match="worker_nodes_typo"):
        jsonschema.validate(broken, ray_schema)


def test_schema_rejects_fractional_custom_resource(ray_schema):
    broken = load("ray-cluster-gpu.yaml")
    broken["available_node_types"][broken["head_node_type"]]["resources"]["TRAIN_DRIVER_RESOURCE"] = 0.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, ray_schema)


def test_gpu_launcher_head_is_cpu_driver_node_and_workers_have_gpus():
    cfg = load("ray-cluster-gpu.yaml")
    assert cfg["provider"]["type"] == "aws"
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]["resources"]
    assert head.get("GPU", 0) == 0 and head["TRAIN_DRIVER_RESOURCE"] >= 1
    workers = {n: t for n, t in types.items() if n != cfg["head_node_type"]}
    assert any(t["resources"].get("GPU", 0) >= 1 for t in workers.values())
    # Trial drivers must never land on (preemptible) workers.
    assert all("TRAIN_DRIVER_RESOURCE" not in t["resources"] for t in workers.values())
    assert sum(t.get("max_workers", 0) for t in workers.values()) <= cfg["max_workers"]


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_installs_project_with_constraints_and_starts_ray(name):
    cfg = load(name)
    setup = "\n".join(cfg["setup_commands"])
    assert 'PIP_CONSTRAINT="$PWD/constraints.txt"' in setup and "-r requirements.txt" in setup
    assert "--no-deps -e ." in setup
    assert "/mnt/shared" in setup and "UNLEARN_SWEEP_CACHE=/mnt/shared/cache" in setup
    assert "~/unlearn-sweep" in cfg["file_mounts"]
    head = " ".join(cfg["head_start_ray_commands"])
    worker = " ".join(cfg["worker_start_ray_commands"])
    assert "ray start --head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    port = re.search(r"--port=(\d+)", head).group(1)
    assert f"ray start --address=$RAY_HEAD_IP:{port}" in worker


def test_onprem_launcher_lists_hosts_and_marks_head_for_drivers():
    cfg = load("ray-cluster-onprem.yaml")
    provider = cfg["provider"]
    assert provider["type"] == "local" and provider["head_ip"]
    assert isinstance(provider["worker_ips"], list) and cfg["max_workers"] == len(provider["worker_ips"])
    head = " ".join(cfg["head_start_ray_commands"])
    resources = json.loads(re.search(r"--resources='([^']+)'", head).group(1))
    assert resources["TRAIN_DRIVER_RESOURCE"] >= 1


# ---------------------------------------------------------------- KubeRay required fields


def _require(obj, keys, where, errors):
    if not isinstance(obj, dict):
        errors.append(f"{where}: expected a mapping, got {type(obj).__name__}")
        return
    errors.extend(f"{where}.{k}: required by the CRD, missing" for k in keys if k not in obj)


def _pod_errors(template, where, errors):
    _require(template, ["spec"], where, errors)
    spec = (template or {}).get("spec") or {}
    _require(spec, POD_SPEC_REQUIRED, f"{where}.spec", errors)
    volumes = {v.get("name") for v in spec.get("volumes", [])}
    for i, vol in enumerate(spec.get("volumes", [])):
        _require(vol, VOLUME_REQUIRED, f"{where}.spec.volumes[{i}]", errors)
        if "persistentVolumeClaim" in vol:
            _require(vol["persistentVolumeClaim"], PVC_SOURCE_REQUIRED,
                     f"{where}.spec.volumes[{i}].persistentVolumeClaim", errors)
    for i, c in enumerate(spec.get("containers", [])):
        _require(c, CONTAINER_REQUIRED, f"{where}.spec.containers[{i}]", errors)
        for j, m in enumerate(c.get("volumeMounts", [])):
            _require(m, VOLUME_MOUNT_REQUIRED, f"{where}.spec.containers[{i}].volumeMounts[{j}]", errors)
            if m.get("name") not in volumes:
                errors.append(f"{where}.spec.containers[{i}].volumeMounts[{j}]: no volume named {m.get('name')!r}")


def _start_params_errors(params, where, errors):
    if not isinstance(params, dict):
        errors.append(f"{where}: expected a mapping")
        return
    errors.extend(f"{where}.{k}: {v!r} must be a string (map[string]string)"
                  for k, v in params.items() if not isinstance(v, str))


def raycluster_spec_errors(spec) -> list[str]:
    """Every CRD rule listed in the module docstring that `spec` (a RayClusterSpec) breaks."""
    errors: list[str] = []
    _require(spec, RAYCLUSTER_SPEC_REQUIRED, "spec", errors)
    if errors:
        return errors
    head = spec["headGroupSpec"]
    _require(head, HEAD_GROUP_REQUIRED, "spec.headGroupSpec", errors)
    _start_params_errors(head.get("rayStartParams"), "spec.headGroupSpec.rayStartParams", errors)
    _pod_errors(head.get("template"), "spec.headGroupSpec.template", errors)
    for i, group in enumerate(spec.get("workerGroupSpecs", [])):
        where = f"spec.workerGroupSpecs[{i}]"
        _require(group, WORKER_GROUP_REQUIRED, where, errors)
        _start_params_errors(group.get("rayStartParams"), f"{where}.rayStartParams", errors)
        _pod_errors(group.get("template"), f"{where}.template", errors)
        lo, hi = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
        if not lo <= group.get("replicas", lo) <= hi:
            errors.append(f"{where}: replicas must lie in [minReplicas, maxReplicas]")
    mode = (spec.get("authOptions") or {}).get("mode")
    if mode is not None and mode not in AUTH_MODES:
        errors.append(f"spec.authOptions.mode: {mode!r} not in {sorted(AUTH_MODES)}")
    return errors


def _pod_templates(spec):
    yield spec["headGroupSpec"]["template"]
    for group in spec.get("workerGroupSpecs", []):
        yield group["template"]


def _check_unlearn_sweep_cluster(spec):
    """Our own conventions on top of the CRD: token auth, driver resource on the head, GPUs, shared PVC."""
    assert spec["authOptions"]["mode"] == "token"
    # KubeRay appends `--resources=<value>` to the `ray start` shell line: the shell must see one JSON word.
    (resources,) = shlex.split(spec["headGroupSpec"]["rayStartParams"]["resources"])
    assert json.loads(resources)["TRAIN_DRIVER_RESOURCE"] >= 1
    head_limits = spec["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert "nvidia.com/gpu" not in head_limits
    assert any(int(g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)) >= 1
               for g in spec["workerGroupSpecs"])
    for template in _pod_templates(spec):
        pod = template["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in pod["volumes"] if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        assert claims.get(mounts.get("/mnt/shared")) == SHARED_CLAIM


def test_raycluster_has_the_crd_required_fields_and_token_auth():
    doc = load("kuberay/raycluster.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayCluster") and doc["metadata"]["name"]
    assert raycluster_spec_errors(doc["spec"]) == []
    _check_unlearn_sweep_cluster(doc["spec"])


def test_required_field_checker_catches_what_the_crd_would_reject():
    spec = load("kuberay/raycluster.yaml")["spec"]
    broken = copy.deepcopy(spec)
    del broken["workerGroupSpecs"][0]["groupName"]
    del broken["headGroupSpec"]["rayStartParams"]
    broken["workerGroupSpecs"][0]["rayStartParams"] = {"num-cpus": 8}
    broken["authOptions"]["mode"] = "password"
    errors = raycluster_spec_errors(broken)
    assert "spec.workerGroupSpecs[0].groupName: required by the CRD, missing" in errors
    assert "spec.headGroupSpec.rayStartParams: required by the CRD, missing" in errors
    assert any("num-cpus" in e and "string" in e for e in errors)
    assert any(e.startswith("spec.authOptions.mode") for e in errors)


def test_rayjob_runs_a_sweep_on_a_token_auth_cluster_it_owns():
    doc = load("kuberay/rayjob.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayJob") and doc["metadata"]["name"]
    spec = doc["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["unlearn-sweep", "run"] and argv[2].endswith(".yaml")
    for flag in ("--address", "--tracking-uri", "--storage-path"):
        assert flag in argv
    assert argv[argv.index("--storage-path") + 1].startswith("/mnt/shared/")
    assert spec["submissionMode"] in SUBMISSION_MODES
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0
    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env and all(isinstance(v, str) for v in env.values()), "runtime_env env_vars values must be strings"
    assert env["MLFLOW_TRACKING_URI"] == argv[argv.index("--tracking-uri") + 1]
    assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec)
    assert raycluster_spec_errors(spec["rayClusterSpec"]) == []
    _check_unlearn_sweep_cluster(spec["rayClusterSpec"])


def test_shared_pvc_is_read_write_many():
    (pvc,) = load_all("kuberay/shared-storage.yaml")
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == SHARED_CLAIM
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_ray_version_matches_installed_ray_everywhere():
    import ray

    assert load("kuberay/raycluster.yaml")["spec"]["rayVersion"] == ray.__version__
    assert load("kuberay/rayjob.yaml")["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__
    base = re.search(r"^FROM (\S+)", (CLUSTER / "Dockerfile").read_text(), re.M).group(1)
    assert base.startswith(f"rayproject/ray:{ray.__version__}-")


# ---------------------------------------------------------------- MLflow + PostgreSQL manifests


@pytest.fixture(scope="module")
def mlflow_docs() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in load_all("kuberay/mlflow.yaml")}


def test_mlflow_manifests_parse_with_postgres_secret_and_artifact_pvc(mlflow_docs):
    kinds = sorted(k for k, _ in mlflow_docs)
    assert kinds == ["Deployment", "PersistentVolumeClaim", "Secret", "Service", "Service", "StatefulSet"]


def _one(docs, kind):
    (doc,) = [d for (k, _), d in docs.items() if k == kind]
    return doc


def _server_container_and_cmd(docs) -> tuple[dict, dict, list[str]]:
    deploy = _one(docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    script = " ".join(container["command"] + container["args"])
    return deploy, container, shlex.split(script[script.index("mlflow server"):])


@pytest.mark.slow  # importing mlflow.cli takes 3-10 s on 2 cores
def test_mlflow_server_args_are_options_of_the_installed_mlflow(mlflow_docs):
    from mlflow.cli import server

    _, _, cmd = _server_container_and_cmd(mlflow_docs)
    known = {opt for p in server.params for opt in p.opts}
    assert [a for a in cmd[2:] if a.startswith("--") and a not in known] == []


def test_mlflow_server_uses_the_postgres_service_and_secret(mlflow_docs):
    from importlib.metadata import version

    deploy, container, cmd = _server_container_and_cmd(mlflow_docs)
    assert container["image"].endswith(f":v{version('mlflow')}")
    uri = cmd[cmd.index("--backend-store-uri") + 1]
    m = re.fullmatch(r"postgresql(\+psycopg)?://(\w+)@([\w-]+):(\d+)/(\w+)", uri)
    assert m, f"{uri}: expected postgresql+psycopg://USER@HOST:PORT/DB (password via PGPASSWORD)"
    user, host, port, db = m.group(2), m.group(3), int(m.group(4)), m.group(5)
    assert cmd[cmd.index("--workers") + 1] == "1" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    ref = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    secret = mlflow_docs[("Secret", ref["name"])]
    assert ref["key"] in secret["stringData"]
    # The URI's host is the postgres Service, which selects the StatefulSet's pods on its port.
    svc = mlflow_docs[("Service", host)]
    sts = _one(mlflow_docs, "StatefulSet")
    assert sts["spec"]["serviceName"] == host
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert port in [p["port"] for p in svc["spec"]["ports"]]
    (pg,) = sts["spec"]["template"]["spec"]["containers"]
    assert pg["image"].startswith("postgres:")
    pg_env = {e["name"]: e for e in pg["env"]}
    assert pg_env["POSTGRES_USER"]["value"] == user and pg_env["POSTGRES_DB"]["value"] == db
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == ref
    # Artifacts: the served destination is a mounted PVC.
    dest = cmd[cmd.index("--artifacts-destination") + 1]
    pod = deploy["spec"]["template"]["spec"]
    (mount,) = [m for m in container["volumeMounts"] if dest.startswith(m["mountPath"])]
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert ("PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"]) in mlflow_docs
    # The mlflow Service routes to the Deployment's pods, on the port the RayJob's tracking URI names.
    web = mlflow_docs[("Service", "mlflow")]
    assert web["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    tracking = yaml.safe_load(load("kuberay/rayjob.yaml")["spec"]["runtimeEnvYAML"])["env_vars"]["MLFLOW_TRACKING_URI"]
    assert tracking == f"http://mlflow:{web['spec']['ports'][0]['port']}"
