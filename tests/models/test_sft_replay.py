"""LMCleaner's zoo log replays the zoo's SFT run step by step (`unlearning.models.training_log._Replay` on
`unlearning.models.sft.SftRun`): stepping the run one update at a time ends on the weights `finetune_items` trains,
bit for bit, and every epoch's batches are one permutation of the items (each row once). The first replay drew a
new permutation for every batch, so it replayed another run than the zoo's (0.74 max |w| apart on tofu-mini/target).

    .venv/bin/python -m pytest tests/models/test_sft_replay.py -q
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from train_fixtures import TEMPLATE, make_model, make_tokenizer, qa_rows  # noqa: E402

from unlearning.methods.lmcleaner_log import flat  # noqa: E402
from unlearning.models.sft import SftRun, encode_rows, finetune_items  # noqa: E402

EPOCHS, BATCH, SEED = 3, 5, 7


def test_stepping_the_run_replays_finetune_bit_for_bit_with_each_row_once_per_epoch():
    tok = make_tokenizer()
    forget, retain = qa_rows()
    items = encode_rows(tok, TEMPLATE, forget + retain)   # 24 rows: 5 batches per epoch, the last one of 4
    trained = make_model(len(tok), seed=1)
    finetune_items(trained, items, tok.pad_token_id, epochs=EPOCHS, lr=3e-3, batch_size=BATCH, seed=SEED)

    replayed = make_model(len(tok), seed=1)
    run = SftRun(replayed, items, tok.pad_token_id, epochs=EPOCHS, lr=3e-3, batch_size=BATCH, seed=SEED)
    epochs: list[Counter] = [Counter() for _ in range(EPOCHS)]
    lrs = []
    while run.t < run.total:
        epoch = run.t // run.steps_per_epoch
        lr, rows, _loss, _tokens = run.step()
        epochs[epoch].update(rows)
        lrs.append(lr)
    assert run.total == EPOCHS * 5
    assert all(c == Counter(range(len(items))) for c in epochs)          # each row exactly once per epoch
    assert lrs[-1] < lrs[len(lrs) // 2] < lrs[0]                          # the one-cycle schedule's decay
    assert torch.equal(flat(trained.parameters()), flat(replayed.parameters()))
