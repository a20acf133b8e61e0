"""The build steps both embedded zoos share (`unlearning.models.zoo_build`): which models a `prepare --models`
value means (one-line errors naming the field), and a manifest that counts only for its own config and only
for models whose weights are there.

    .venv/bin/python -m pytest tests/models/test_zoo_build.py -q
"""

from __future__ import annotations

import json

import pytest

from unlearning.errors import ConfigError
from unlearning.models.muse_prepare import resolve_muse_models
from unlearning.models.prepare import resolve_models
from unlearning.models.zoo_build import build_locked, is_complete, read_manifest, write_manifest


def test_models_asked_for():
    assert resolve_models(None) == ("target", "retain90")
    assert resolve_models("all") == ("base", "target", "retain99", "retain95", "retain90")
    assert resolve_models("retain95, target,retain95") == ("retain95", "target")
    assert resolve_muse_models(None) == resolve_muse_models("all") == ("target", "retain")
    for bad, call in (("retain80", resolve_models), ("retain90", resolve_muse_models), ("", resolve_models)):
        with pytest.raises(ConfigError) as err:
            call(bad)
        line = str(err.value)
        assert "\n" not in line and "'models'" in line and "'all'" in line, line


def test_manifest_counts_only_for_its_config_and_the_weights_on_disk(tmp_path):
    write_manifest(tmp_path, {"key": "k1", "memorisation": {"target": {"forget10": 0.7}}})
    assert read_manifest(tmp_path, "k1")["memorisation"]["target"] == {"forget10": 0.7}
    assert read_manifest(tmp_path, "k2") is None                      # another config's zoo
    assert not is_complete(tmp_path, "k1", ("target", "retain90"), ("target",))   # no weights yet
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "config.json").write_text("{}")
    assert is_complete(tmp_path, "k1", ("target", "retain90"), ("target",))
    assert not is_complete(tmp_path, "k1", ("target", "retain90"), ("target", "retain90"))
    assert not is_complete(tmp_path, "k2", ("target", "retain90"), ("target",))


def test_build_runs_once_and_then_reads_the_cache(tmp_path):
    calls = []

    def build():
        calls.append(1)
        (tmp_path / "target").mkdir(exist_ok=True)
        (tmp_path / "target" / "config.json").write_text("{}")
        manifest = {"key": "k", "memorisation": {"target": {}}}
        write_manifest(tmp_path, manifest)
        return {**manifest, "cached": False}

    ready = lambda: is_complete(tmp_path, "k", ("target",), ("target",))  # noqa: E731
    assert build_locked(tmp_path, "k", ready, build)["cached"] is False
    assert build_locked(tmp_path, "k", ready, build)["cached"] is True
    assert len(calls) == 1
    assert json.loads((tmp_path / "manifest.json").read_text())["key"] == "k"
