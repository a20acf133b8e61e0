"""Suite-wide test setup: offline hub, loopback-only Ray, CPU DeepSpeed, and the prepared tiny zoo.

    bash scripts/test.sh                 # the whole suite, as CI runs it
    bash scripts/test.sh -m "not slow"   # fast unit tests only

The `prepared_zoo` fixture builds the default sweep's zoo models (target + retain90, about 2.5 minutes on 2
cores the first time, then cached under $UNLEARN_SWEEP_CACHE or ~/.cache/unlearn-sweep) and is shared by every
slow test that needs trained models; `full_zoo` adds base, retain95 and retain99 (about 3 minutes more) for
the memorisation tests.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

for key, value in {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "DS_ACCELERATOR": "cpu", "TORCH_EXTENSIONS_DIR": str(REPO / ".cache" / "torch_extensions"),
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "TOKENIZERS_PARALLELISM": "false",
    "UNLEARN_SWEEP_NO_WARM_CACHE": "1",  # no background warm-up outliving a test (tests/sweeps/test_warm_cache.py)
}.items():
    os.environ.setdefault(key, value)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory) -> Path:
    """An empty MLflow SQLite database with its schema. The migrations take 5-15 s on 2 cores, so the result is
    kept in the repo's ignored .cache/ per MLflow version and copied by the tests that need a store."""
    import shutil

    import mlflow
    from mlflow import MlflowClient

    cached = REPO / ".cache" / "test-mlflow" / f"mlflow-{mlflow.__version__}.db"
    if not cached.is_file():
        fresh = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
        MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copy(fresh, tmp)
        os.replace(tmp, cached)  # atomic: a concurrent session sees the whole file or none
    return cached


@pytest.fixture(scope="session")
def prepared_zoo():
    """The default tofu-mini zoo (built on first use, then a cache hit): returns (ZooConfig, manifest)."""
    from unlearning.models.prepare import prepare
    from unlearning.models.zoo import ZooConfig

    cfg = ZooConfig()
    return cfg, prepare(cfg)


@pytest.fixture(scope="session")
def full_zoo(prepared_zoo):
    """Every model of the default zoo (base, target, retain90/95/99): returns (ZooConfig, manifest)."""
    from unlearning.models.prepare import prepare

    cfg, _ = prepared_zoo
    return cfg, prepare(cfg, models="all")
