"""ForgetRetainDataset: per-rank retain draws, DistributedSampler order, IDK alternates, cached log-probs.

Run: pytest tests/train/test_data.py -q
"""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from torch.utils.data import DistributedSampler

from train_fixtures import TEMPLATE, make_model
from unlearning.data.tokenization import encode_qa
from unlearning.errors import DataError
from unlearning.methods import build_method
from unlearning.methods.idk_answers import load_idk_answers
from unlearning.methods.reference import frozen_copy
from unlearning.train.data import build_forget_retain, epoch_indices, micro_batches_per_epoch


@pytest.fixture
def data(tok, rows):
    forget, retain = rows
    return build_forget_retain(tok, TEMPLATE, forget, retain, max_length=128, with_idk=True, seed=0)


def _draws(data, seed: int, rank: int, n: int = 40) -> list[int]:
    data.start(seed, rank)
    return [data.draw_retain() for _ in range(n)]


def test_length_is_forget_and_items_pair_forget_with_retain(data, tok, rows):
    forget, retain = rows
    assert len(data) == len(forget) == 8
    item = data[3]
    assert item["forget"]["input_ids"] == encode_qa(tok, TEMPLATE, forget[3]["question"], forget[3]["answer"],
                                                    128)["input_ids"]
    retain_ids = [encode_qa(tok, TEMPLATE, r["question"], r["answer"], 128)["input_ids"] for r in retain]
    assert item["retain"]["input_ids"] in retain_ids


def test_retain_draws_per_rank_follow_the_documented_seed(data, rows):
    # independent: sha256("retain:<seed>:<rank>") -> first 8 bytes little endian, 63 bits; torch.randint
    for seed, rank in [(0, 0), (0, 1), (3, 1)]:
        digest = hashlib.sha256(f"retain:{seed}:{rank}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
        expected = [int(torch.randint(len(rows[1]), (1,), generator=gen)) for _ in range(40)]
        assert _draws(data, seed, rank) == expected


def test_retain_draws_differ_across_ranks_and_repeat_per_seed_rank(data):
    r0, r1 = _draws(data, 0, 0), _draws(data, 0, 1)
    assert r0 != r1                                  # OU #139 drew the same on every rank
    assert _draws(data, 0, 0) == r0 and _draws(data, 0, 1) == r1
    assert _draws(data, 1, 0) != _draws(data, 0, 1)  # no seed+rank collision
    assert len(set(r0)) > 5                          # uniform over 16 retain rows, not stuck


def test_generator_state_round_trip(data):
    data.start(0, 1)
    for _ in range(5):
        data.draw_retain()
    state = data.state_dict()
    after = [data.draw_retain() for _ in range(10)]
    data.start(7, 0)
    data.load_state_dict(state)
    assert [data.draw_retain() for _ in range(10)] == after and data.rank == 1


@pytest.mark.parametrize("n,world", [(8, 1), (8, 2), (7, 2), (5, 3)])
def test_epoch_order_matches_distributed_sampler(n, world):
    for epoch in range(3):
        for rank in range(world):
            sampler = DistributedSampler(list(range(n)), num_replicas=world, rank=rank, shuffle=True, seed=11)
            sampler.set_epoch(epoch)
            assert epoch_indices(n, epoch, 11, rank, world) == list(sampler)


def test_micro_batches_cover_the_rank_share(data):
    batches = data.micro_batches(epoch=1, rank=1, world=2, batch_size=3)
    assert [len(b) for b in batches] == [3, 1]           # ceil(8/2)=4 rows per rank, batch 3
    assert micro_batches_per_epoch(8, 3, 2) == 2 == math.ceil(math.ceil(8 / 2) / 3)
    flat = [i for b in data.micro_batches(0, 0, 2, 2) + data.micro_batches(0, 1, 2, 2) for i in b]
    assert sorted(flat) == list(range(8))


def test_idk_alternate_is_fixed_per_example_and_asks_the_forget_question(data, tok, rows):
    answers = load_idk_answers()
    forget = rows[0]
    for i in range(len(data)):
        ids = data[i]["idk"]["input_ids"]
        assert ids == data[i]["idk"]["input_ids"]     # same on every read (cacheable)
        matches = [a for a in answers
                   if encode_qa(tok, TEMPLATE, forget[i]["question"], a, 128)["input_ids"] == ids]
        assert matches, f"row {i}: the idk item is not the forget question with a bundled IDK answer"


def test_collate_pads_cached_logps_to_each_part(data, tok):
    model = make_model(len(tok), seed=3)
    data.attach_ref_logps(model, keys=("forget", "idk"), batch_size=3)
    batch = data.collate([0, 5, 2])
    for key in ("forget", "idk"):
        ids, labels = batch[key]["input_ids"], batch[key]["labels"]
        cached = batch[f"{key}_ref_logps"]
        assert cached.shape == (3, ids.shape[1] - 1)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=batch[key]["attention_mask"]).logits, -1)
        for b in range(3):
            for t in range(ids.shape[1] - 1):
                y = int(labels[b, t + 1])
                want = float(logp[b, t, y]) if y != -100 else 0.0
                assert abs(float(cached[b, t]) - want) < 1e-5


@pytest.mark.parametrize("name", ["NPO", "IdkDPO", "TNPO", "DrNPO"])
def test_cached_reference_gives_the_live_loss(tok, rows, name):
    forget, retain = rows
    model, ref = make_model(len(tok), seed=1), make_model(len(tok), seed=2)
    method = build_method(name)
    data = build_forget_retain(tok, TEMPLATE, forget, retain, with_idk=True, seed=0)
    data.start(0, 0)
    live_batch = data.collate([1, 4, 6, 7])
    data.attach_ref_logps(ref, keys=method.needs_ref_logps)
    data.start(0, 0)
    cached_batch = data.collate([1, 4, 6, 7])
    live = method.loss(model, live_batch, ref_model=ref).loss
    cached = method.loss(model, cached_batch, ref_model=None).loss
    assert abs(float(live.detach()) - float(cached.detach())) < 1e-5


def test_attach_rejects_unknown_part(data, tok):
    with pytest.raises(DataError, match="keys"):
        data.attach_ref_logps(frozen_copy(make_model(len(tok))), keys=("retain",))


def test_empty_sets_are_refused(tok, rows):
    with pytest.raises(DataError, match="forget"):
        build_forget_retain(tok, TEMPLATE, [], rows[1])
    with pytest.raises(DataError, match="row 1"):
        build_forget_retain(tok, TEMPLATE, rows[0], [{"question": "q", "answer": "a"}, {"question": "q"}])
