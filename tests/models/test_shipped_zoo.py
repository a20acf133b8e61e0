"""The default zoo pair shipped in the clone (`unlearning.models.shipped_zoo`): `prepare` copies it bit for bit into
an empty cache, the copied models behave as their record says on the data this code writes (the target memorises
the forget split, the retain model does not), and a damaged file, other data or another tokenizer are refused with
the reason, so the model is trained here instead.

    .venv/bin/python -m pytest tests/models/test_shipped_zoo.py -q
"""

from __future__ import annotations

import json
import shutil

import pytest

from unlearning.data.tofu import load_tofu
from unlearning.models import shipped_zoo
from unlearning.models.prepare import memorisation_row, prepare
from unlearning.models.zoo import DEFAULT_MODELS, ZooConfig, zoo_dir

SHIPPED = sorted(shipped_zoo.SHIPPED_ROOT.glob(f"*-{ZooConfig().key()}"))


def _record() -> dict:
    return json.loads((SHIPPED[0] / shipped_zoo.RECORD).read_text())


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_default_pair_is_shipped_for_the_default_config_and_verifies():
    assert len(SHIPPED) == 1, f"no shipped zoo for the default config's key {ZooConfig().key()}: run " \
                              "`python scripts/ship_zoo.py` after changing the zoo recipe"
    assert shipped_zoo.check(SHIPPED[0]) is None
    record = _record()
    assert record["models"] == list(DEFAULT_MODELS) and record["key"] == ZooConfig().key()
    assert {"target/model.safetensors", "retain90/model.safetensors", "tokenizer/tokenizer.json"} <= set(record["sha256"])


def test_prepare_copies_the_shipped_pair_and_the_models_memorise_as_recorded(empty_cache):
    logs: list[str] = []
    manifest = prepare(ZooConfig(), log=logs.append)
    root = zoo_dir(ZooConfig())
    assert str(root).startswith(str(empty_cache))
    assert manifest["shipped"] == ["target", "retain90"] and "target" not in manifest["timings_s"]   # nothing trained
    record = _record()
    for rel, digest in record["sha256"].items():
        assert shipped_zoo.sha256(root / rel) == digest, rel
    assert any("shipped weights" in line and "--force" in line for line in logs), logs
    # the copies are the models the record describes, on the data this code just wrote: measured again here
    splits = {s: load_tofu(s, root / "data") for s in ("forget10", "retain_perturbed")}
    for name in DEFAULT_MODELS:
        row = memorisation_row(root, name, splits)
        for split, value in row.items():
            assert value == pytest.approx(record["memorisation"][name][split], rel=2e-3), (name, split)
    assert record["memorisation"]["target"]["forget10"] > 3 * record["memorisation"]["retain90"]["forget10"]
    again = prepare(ZooConfig(), log=logs.append)
    assert again["cached"] is True


def _copy(tmp_path):
    ship = tmp_path / "ship"
    shutil.copytree(SHIPPED[0], ship / SHIPPED[0].name)
    return ship, ship / SHIPPED[0].name


def _data(tmp_path):
    from unlearning.data.tofu_mini import write

    return write(ZooConfig().data, tmp_path / "data")


def test_a_damaged_file_is_refused_with_its_reason(tmp_path):
    ship, folder = _copy(tmp_path)
    data = _data(tmp_path)
    assert shipped_zoo.shipped_for(ZooConfig().key(), data, root=ship) is not None
    weights = folder / "retain90" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])       # a truncated checkout
    logs: list[str] = []
    assert shipped_zoo.shipped_for(ZooConfig().key(), data, root=ship, log=logs.append) is None
    assert len(logs) == 1 and "retain90/model.safetensors does not match its SHA-256" in logs[0], logs
    assert "training them here" in logs[0]


def test_other_data_or_another_tokenizer_are_refused(tmp_path):
    ship, folder = _copy(tmp_path)
    data = _data(tmp_path)
    with open(data / "forget10.jsonl", "a") as f:
        f.write(json.dumps({"question": "Q?", "answer": "A."}) + "\n")
    logs: list[str] = []
    assert shipped_zoo.shipped_for(ZooConfig().key(), data, root=ship, log=logs.append) is None
    assert "differs from the data the shipped models were trained on" in logs[0], logs
    assert shipped_zoo.shipped_for("0123456789ab", data, root=ship) is None     # no shipped zoo for that key

    release = shipped_zoo.shipped_for(ZooConfig().key(), _data(tmp_path / "fresh"), root=ship)
    zoo = tmp_path / "zoo"
    (zoo / "tokenizer").mkdir(parents=True)
    (zoo / "tokenizer" / "tokenizer.json").write_text("{}")
    logs.clear()
    assert shipped_zoo.install(release, zoo, DEFAULT_MODELS, logs.append) == []
    assert not (zoo / "target").exists() and "tokenizer differs" in logs[0], logs
