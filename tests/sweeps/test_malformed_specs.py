"""A corpus of malformed sweep specs (`tests/sweeps/malformed/NN-*.yaml`, one realistic mistake each) run through
the real CLI: exit status 2, ONE line of error output naming the field, no traceback, nothing written, before
Ray starts.

    .venv/bin/python -m pytest tests/sweeps/test_malformed_specs.py -q

Each file's first line is `# expect: <field>`: the dotted spec path the error must name (`field '<field>'`),
`line N` for reading errors (encoding, YAML syntax, not a mapping), or `(file)` for an error about the whole
file (an empty one), which names the file and no field. `24-non-utf8.yaml` is a binary fixture (Latin-1
bytes): keep it that way (`test_the_non_utf8_fixture_is_still_not_utf8`).

The cases run in-process through `unlearn_sweep.cli.main` (the console entry `unlearn-sweep`, with sys.argv patched),
with `sweeps.operations.preflight.preflight` wrapped so that a spec that passes every check stops with
`ValidationPassed` instead of starting a sweep (and Ray must not be initialised); a few run as a real
`python -m unlearn_sweep.cli` subprocess (no Ray session in its RAY_TMPDIR). Cases 58-65 are the values that
used to fail only after Ray had started (data source, zoo size and model, data folder, hub data and lm-eval tasks
not cached offline): each names its spec field.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "malformed"
CASES = sorted(CORPUS.glob("[0-9][0-9]-*.yaml"))
WHOLE_FILE = "(file)"


class ValidationPassed(Exception):
    """Raised by the wrapped preflight: the spec passed every check (the case is not refused)."""


def expected(case: Path) -> str:
    first = case.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{case.name}: the first line must be '# expect: <field>'"
    return first.removeprefix("# expect: ").strip()


def machine_skip(case: Path) -> str | None:
    """Cases about this machine's limits (or caches) that do not hold on a bigger (or better stocked) one."""
    from sweeps.operations.preflight import _hub_dataset_missing, cuda_devices, usable_cpus
    from unlearning.models.zoo import zoo_data_dir

    if "gpus-on-cpu-host" in case.name and cuda_devices() > 0:
        return "this host has a CUDA device"
    if "cpus-64" in case.name and usable_cpus() >= 64:
        return "this host has 64 CPUs or more"
    if "size-not-generated" in case.name and zoo_data_dir("tiny").is_dir():
        return "this host has generated tofu-mini-tiny"
    for name, repo in (("hub-dataset-not-cached", "locuslab/TOFU"), ("lm-eval-task-not-cached", "cais/wmdp")):
        if name in case.name and not _hub_dataset_missing(repo):
            return f"this host has {repo} in its Hugging Face cache"
    return None


@pytest.fixture
def guarded(monkeypatch):
    """A spec that passes every check raises ValidationPassed where the sweep would start (after preflight)."""
    import sweeps.operations.preflight

    real = sweeps.operations.preflight.preflight

    def preflight_then_stop(spec, address=None, **kw):
        real(spec, address, **kw)
        raise ValidationPassed(spec.name)

    monkeypatch.setattr(sweeps.operations.preflight, "preflight", preflight_then_stop)


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int | str, str, str, float]:
    """`unlearn-sweep ARGS` in-process through the console entry: (exit code, stdout, stderr, seconds)."""
    from unlearn_sweep.cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["unlearn-sweep", *args])
    t0 = time.perf_counter()
    try:
        main()
        code: int | str = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    return code, out, err, seconds


@pytest.fixture(scope="module")
def timings(request):
    """Seconds per case, summarised at the end of the module (measured, not asserted)."""
    found: dict[str, float] = {}
    yield found
    if found:
        values = sorted(found.values())
        slowest = max(found, key=found.get)
        line = (f"malformed specs: {len(values)} cases, median {statistics.median(values):.3f}s, "
                f"max {values[-1]:.3f}s ({slowest}; the first case imports the CLI)")
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line("")
                reporter.write_line(line)


def test_corpus_size_and_headers():
    assert len(CASES) >= 40
    fields = [expected(c) for c in CASES]
    assert all(fields)
    numbers = [c.name[:2] for c in CASES]
    assert len(set(numbers)) == len(numbers), "two cases share a number"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_malformed_spec_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys, guarded,
                                                              timings):
    reason = machine_skip(case)
    if reason:
        pytest.skip(reason)
    work = tmp_path / "work"  # the default storage (runs/sweeps) is relative: it lands here
    work.mkdir()
    monkeypatch.chdir(work)
    field = expected(case)
    try:
        code, out, err, seconds = run_cli(["run", str(case)], monkeypatch, capsys)
    except ValidationPassed:
        pytest.fail(f"{case.name} passed validation: the mistake ({field}) was not caught")
    timings[case.stem] = seconds
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"error: {case}"), line
    if field == WHOLE_FILE:
        assert "field '" not in line and ". Fix: " in line, line
    else:
        assert f"field '{field}'" in line, line
    assert "Traceback" not in out + err
    assert out.strip() == "", out
    assert list(work.iterdir()) == [], f"{case.name} wrote {list(work.rglob('*'))}"
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized(), f"{case.name} started Ray"


SUBPROCESS_CASES = [c for c in CASES if c.name.split("-", 1)[1] in (
    "non-utf8.yaml", "duplicate-key.yaml", "gpus-on-cpu-host.yaml", "tofu-without-retain-reference.yaml",
    "data-source-size-typo.yaml")]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.stem for c in SUBPROCESS_CASES])
def test_console_entry_behaves_the_same(case, tmp_path):
    """The same through a real process (`python -m unlearn_sweep.cli run FILE`), as a user's shell runs it; Ray's
    temp folder (RAY_TMPDIR) is this test's, so a Ray that started would leave its session there."""
    reason = machine_skip(case)
    if reason:
        pytest.skip(reason)
    assert len(SUBPROCESS_CASES) == 5
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "RAY_TMPDIR": str(tmp_path / "ray")}
    proc = subprocess.run([sys.executable, "-m", "unlearn_sweep.cli", "run", str(case)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and f"field '{expected(case)}'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert list(work.iterdir()) == []
    assert not (tmp_path / "ray").exists(), "Ray started"


def test_the_corpus_mistakes_are_the_only_ones(tmp_path, monkeypatch, capsys, guarded):
    """The spec the cases are written from passes every check (so each case fails for its own mistake only)."""
    source = (CORPUS / "04-num-trials-zero.yaml").read_text(encoding="utf-8")
    fixed = tmp_path / "valid.yaml"
    fixed.write_text(source.replace("num_trials: 0", "num_trials: 4"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationPassed):
        run_cli(["run", str(fixed)], monkeypatch, capsys)
    assert not (tmp_path / "runs").exists()


def test_the_non_utf8_fixture_is_still_not_utf8():
    data = (CORPUS / "24-non-utf8.yaml").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


# --------------------------------------------------------------------------------------------------
# strict YAML reading (specs, search-space presets, train configs)


def test_read_yaml_encodings(tmp_path):
    from unlearning.errors import ConfigError
    from unlearning.yaml_io import read_yaml

    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: x\nlr: 1e-5\n")  # a UTF-8 byte-order mark is fine; 1e-5 is a float
    assert read_yaml(bom) == {"name": "x", "lr": 1e-5}
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes("name: x\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"field 'line 1'.*UTF-16"):
        read_yaml(utf16)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: x\n\ndescription: Müller\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"field 'line 3'.*save the file as UTF-8"):
        read_yaml(latin)
    control = tmp_path / "control.yaml"
    control.write_text("name: x\nseed: 1\x07\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"field 'line 2'.*not allowed in YAML"):
        read_yaml(control)


def test_duplicate_keys_at_any_depth(tmp_path):
    from unlearning.errors import ConfigError
    from unlearning.yaml_io import read_yaml

    path = tmp_path / "dup.yaml"
    path.write_text("objectives:\n  - {name: a, mode: max}\n  - name: b\n    mode: max\n    mode: min\n")
    with pytest.raises(ConfigError, match=r"field 'objectives\.1\.mode'.*lines 4 and 5"):
        read_yaml(path)
    # anchors, aliases and merge keys are not duplicates
    path.write_text("base: &b {lr: 1}\none: {<<: *b, epochs: 2}\ntwo: *b\n")
    assert read_yaml(path)["one"] == {"lr": 1, "epochs": 2}
    # the same text under different parents is fine
    path.write_text("a: {x: 1}\nb: {x: 1}\n")
    assert read_yaml(path) == {"a": {"x": 1}, "b": {"x": 1}}


def test_train_config_and_presets_read_strictly(tmp_path):
    from search_spaces.loader import read_yaml as preset_reader
    from unlearning.errors import ConfigError
    from unlearning.train.config import load_train_config
    from unlearning.yaml_io import read_yaml

    assert preset_reader is read_yaml  # search-space presets go through the same reader
    cfg = yaml.safe_load((REPO / "configs" / "train" / "npo_tofu_mini.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False) + "method:\n  name: SimNPO\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"field 'method'.*given twice"):
        load_train_config(path)
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"the file is empty"):
        load_train_config(path)


# --------------------------------------------------------------------------------------------------
# preflight: what only this machine can tell


def _spec(tmp_path, **over):
    from sweeps.spec import parse_spec

    raw = yaml.safe_load((CORPUS / "04-num-trials-zero.yaml").read_text(encoding="utf-8"))
    raw["budget"]["num_trials"] = 4
    raw["storage"] = str(tmp_path / "runs")
    raw.update(over)
    return parse_spec(raw, where="spec.yaml")


def test_preflight_cluster_leaves_resources_to_the_post_connect_check(tmp_path):
    from sweeps.operations.preflight import preflight
    from unlearning.errors import ConfigError

    spec = _spec(tmp_path, resources={"cpus": 512, "gpus": 8, "workers": 4})
    preflight(spec, address="auto")  # the cluster may have them: checked after connecting
    with pytest.raises(ConfigError, match=r"field 'resources.cpus'"):
        preflight(spec, address=None)
    assert not (tmp_path / "runs").exists()


def test_preflight_storage_must_be_a_folder(tmp_path):
    from sweeps.operations.preflight import preflight
    from unlearning.errors import ConfigError

    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"field 'storage'.*is a file"):
        preflight(_spec(tmp_path))
    spec = _spec(tmp_path, storage=str(tmp_path / "ok"),
                 tracking={"uri": f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"})
    with pytest.raises(ConfigError, match=r"field 'tracking.uri'.*is a file"):
        preflight(spec)


def test_preflight_offline_hub_model_must_be_cached(tmp_path, monkeypatch):
    from sweeps.operations.preflight import preflight
    from unlearning.errors import ConfigError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    spec = _spec(tmp_path, models=[{"name": "org/not-downloaded", "retain_model": "org/not-downloaded-retain"}],
                 data={"source": "hub", "forget_split": "forget10"})
    with pytest.raises(ConfigError, match=r"field 'models.0.name'.*not in the local cache"):
        preflight(spec)


def test_preflight_local_tofu_source_needs_the_forget_split(tmp_path):
    from sweeps.operations.preflight import preflight
    from unlearning.errors import ConfigError

    data = tmp_path / "tofu-data"
    data.mkdir()
    (data / "retain90.jsonl").write_text("")
    spec = _spec(tmp_path, models=[{"name": "org/m", "retain_model": "org/m-retain90"}],
                 data={"source": str(data), "forget_split": "forget10"})
    with pytest.raises(ConfigError, match=r"field 'data.source'.*forget10"):
        preflight(spec)


def test_preflight_a_read_only_tracking_folder_is_named_and_left_to_tracking_optional(tmp_path, tmpfs):
    from sweeps.operations.preflight import preflight
    from unlearning.errors import ConfigError

    ro = tmpfs("ro", read_only=True)
    spec = _spec(tmp_path, tracking={"uri": f"sqlite:///{ro / 'mlflow.db'}"})
    with pytest.raises(ConfigError, match=r"field 'tracking.uri'.*read-only file system \(EROFS\)"):
        preflight(spec)
    preflight(spec, tracking_optional=True)  # open_tracker turns tracking off with the same cause
    assert not (tmp_path / "runs").exists()
