"""Fixtures for the method tests: a tiny random Llama, a frozen reference and hand-built batches.

Run: pytest tests/methods -q
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from methods_oracle import make_batch, make_llama

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _models():
    return make_llama(seed=0), make_llama(seed=1)


@pytest.fixture
def model(_models):
    """The trainable tiny Llama (fresh gradients each test)."""
    m = _models[0]
    m.zero_grad(set_to_none=True)
    return m


@pytest.fixture
def ref_model(_models):
    """A *different* frozen tiny Llama, so reference-dependent terms are not trivially zero."""
    return _models[1]


@pytest.fixture
def batch():
    return make_batch(seed=0)
