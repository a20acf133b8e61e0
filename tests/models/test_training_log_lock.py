"""The zoo's training log is recorded once when several trials ask for it together (two LMCleaner trials of one
sweep start at the same moment): one records under a file lock into a scratch folder renamed into place, the others
wait and read the finished folder. The recording itself (a replay of the zoo's SFT, minutes) is replaced by a slow
writer here; the lock, the scratch folder and the rename are the real ones.

    .venv/bin/python -m pytest tests/models/test_training_log_lock.py -q
"""

from __future__ import annotations

import json
import threading
import time

from unlearning.models import training_log


def test_concurrent_askers_record_once_and_never_see_a_half_written_folder(tmp_path, monkeypatch):
    calls = []

    def slow_record(name, folder, log):
        calls.append(folder)
        folder.mkdir(parents=True)
        (folder / "steps.jsonl").write_text("{}\n")
        time.sleep(0.5)                                     # the other asker arrives while this one writes
        (folder / "meta.json").write_text(json.dumps({"source": {"replay": training_log.REPLAY_VERSION}}))

    monkeypatch.setattr(training_log, "_record", slow_record)
    folder = tmp_path / "training-logs" / "zoo-target"
    seen = []

    def ask():
        if not (folder / "meta.json").is_file():
            training_log._record_once("tofu-mini/target", folder, log=lambda m: None)
        seen.append(sorted(p.name for p in folder.iterdir()))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and calls[0].name.endswith(".partial")   # recorded once, never into the final folder
    assert seen == [["meta.json", "steps.jsonl"]] * 3
    # a log of an older replay is recorded again (once)
    (folder / "meta.json").write_text(json.dumps({"source": {"replay": training_log.REPLAY_VERSION - 1}}))
    training_log._record_once("tofu-mini/target", folder, log=lambda m: None)
    assert len(calls) == 2 and training_log._current(folder)
    assert not calls[0].exists()                                    # the scratch folder was renamed into place
