"""Fixtures for the training-loop tests: one tiny tokenizer, QA rows and one memorised tiny Llama.

Run: pytest tests/train -q        (-m "not slow" skips DeepSpeed)
"""

from __future__ import annotations

import copy
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from train_fixtures import TEMPLATE, make_model, make_tokenizer, qa_rows

torch.set_num_threads(1)
# the tiny BPE merges "Answer: " + the answer's first word; encode_qa warns about it for every row
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="session")
def rows():
    return qa_rows()


@pytest.fixture(scope="session")
def _memorised_state(tok, rows):
    """A 64-wide, 2-layer Llama fine-tuned ~3 s on the 8 forget + 16 retain rows (answer prob ~0.97)."""
    from unlearning.models.sft import finetune

    forget, retain = rows
    model = make_model(len(tok), seed=0, hidden=64)
    finetune(model, tok, TEMPLATE, forget + retain, epochs=50, lr=5e-3, batch_size=8, seed=0)
    return copy.deepcopy(model.state_dict())


@pytest.fixture
def memorised(tok, _memorised_state):
    """A fresh copy of the memorised model (train mode)."""
    model = make_model(len(tok), seed=0, hidden=64)
    model.load_state_dict(_memorised_state)
    model.train()
    return model
