"""A pinned copy of the default zoo pair (`unlearning.models.pinned_zoo`, kept outside git): pinned from this
machine's prepared zoo, `prepare` copies it bit for bit into an empty cache, the copied models behave as their record
says on the data this code writes (the target memorises the forget split, the retain model does not), and a damaged
file, other data or another tokenizer are refused with the reason, so the model is trained here instead.

    .venv/bin/python -m pytest tests/models/test_pinned_zoo.py -q
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from unlearning.data.tofu import load_tofu
from unlearning.models import pinned_zoo
from unlearning.models.prepare import memorisation_row, prepare
from unlearning.models.zoo import DEFAULT_MODELS, ZooConfig, zoo_dir

pytestmark = pytest.mark.slow   # pins the session's prepared zoo (trained on first use)


@pytest.fixture(scope="module")
def pinned(prepared_zoo, tmp_path_factory):
    """(root of pinned zoos, the pinned folder) made from the session's prepared default zoo."""
    cfg, manifest = prepared_zoo
    root = tmp_path_factory.mktemp("pinned")
    return root, pinned_zoo.write(zoo_dir(cfg), DEFAULT_MODELS, manifest, out_root=root)


def _record(folder) -> dict:
    return json.loads((folder / pinned_zoo.RECORD).read_text())


@pytest.fixture
def empty_cache(tmp_path, monkeypatch, pinned):
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(pinned_zoo.PINNED_ENV, str(pinned[0]))
    return tmp_path / "cache"


def test_the_pinned_pair_verifies_and_no_weights_are_in_the_repository(pinned):
    _, folder = pinned
    assert pinned_zoo.check(folder) is None
    record = _record(folder)
    assert record["models"] == list(DEFAULT_MODELS) and record["key"] == ZooConfig().key()
    assert {"target/model.safetensors", "retain90/model.safetensors", "tokenizer/tokenizer.json"} <= set(record["sha256"])
    repo = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(["git", "ls-files", "*.safetensors"], cwd=repo, capture_output=True, text=True).stdout
    assert tracked.strip() == "", tracked


def test_prepare_copies_the_pinned_pair_and_the_models_memorise_as_recorded(empty_cache, pinned):
    logs: list[str] = []
    manifest = prepare(ZooConfig(), log=logs.append)
    root = zoo_dir(ZooConfig())
    assert str(root).startswith(str(empty_cache))
    assert manifest["pinned"] == ["target", "retain90"] and "target" not in manifest["timings_s"]   # nothing trained
    record = _record(pinned[1])
    for rel, digest in record["sha256"].items():
        assert pinned_zoo.sha256(root / rel) == digest, rel
    assert any("pinned weights" in line and "--force" in line for line in logs), logs
    # the copies are the models the record describes, on the data this code just wrote: measured again here
    splits = {s: load_tofu(s, root / "data") for s in ("forget10", "retain_perturbed")}
    for name in DEFAULT_MODELS:
        row = memorisation_row(root, name, splits)
        for split, value in row.items():
            assert value == pytest.approx(record["memorisation"][name][split], rel=2e-3), (name, split)
    assert record["memorisation"]["target"]["forget10"] > 3 * record["memorisation"]["retain90"]["forget10"]
    again = prepare(ZooConfig(), log=logs.append)
    assert again["cached"] is True


def _copy(tmp_path, pinned):
    store = tmp_path / "store"
    shutil.copytree(pinned[1], store / pinned[1].name)
    return store, store / pinned[1].name


def _data(tmp_path):
    from unlearning.data.tofu_mini import write

    return write(ZooConfig().data, tmp_path / "data")


def test_a_damaged_file_is_refused_with_its_reason(tmp_path, pinned):
    store, folder = _copy(tmp_path, pinned)
    data = _data(tmp_path)
    assert pinned_zoo.pinned_for(ZooConfig().key(), data, root=store) is not None
    weights = folder / "retain90" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])       # a truncated checkout
    logs: list[str] = []
    assert pinned_zoo.pinned_for(ZooConfig().key(), data, root=store, log=logs.append) is None
    assert len(logs) == 1 and "retain90/model.safetensors does not match its SHA-256" in logs[0], logs
    assert "training them here" in logs[0]


def test_other_data_or_another_tokenizer_are_refused(tmp_path, pinned):
    store, folder = _copy(tmp_path, pinned)
    data = _data(tmp_path)
    with open(data / "forget10.jsonl", "a") as f:
        f.write(json.dumps({"question": "Q?", "answer": "A."}) + "\n")
    logs: list[str] = []
    assert pinned_zoo.pinned_for(ZooConfig().key(), data, root=store, log=logs.append) is None
    assert "differs from the data the pinned models were trained on" in logs[0], logs
    assert pinned_zoo.pinned_for("0123456789ab", data, root=store) is None     # no pinned zoo for that key

    release = pinned_zoo.pinned_for(ZooConfig().key(), _data(tmp_path / "fresh"), root=store)
    zoo = tmp_path / "zoo"
    (zoo / "tokenizer").mkdir(parents=True)
    (zoo / "tokenizer" / "tokenizer.json").write_text("{}")
    logs.clear()
    assert pinned_zoo.install(release, zoo, DEFAULT_MODELS, logs.append) == []
    assert not (zoo / "target").exists() and "tokenizer differs" in logs[0], logs
