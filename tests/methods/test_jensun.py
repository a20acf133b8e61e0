"""JensUn (nmndeep/JensUn-Unlearning @ 9d0cfd5101cb): JSD to a cyclic refusal pattern on answer tokens, JSD retain
to the reference."""

from __future__ import annotations

import math

import pytest
import torch

from methods_oracle import close, logits, softmax64
from unlearning.errors import ConfigError
from unlearning.methods import build_method
from unlearning.methods.jensun import jensun_target_ids


def _jsd(p, q, eps=1e-9):
    m = ((p + q) / 2).clamp(min=eps)
    pc, qc = p.clamp(min=eps), q.clamp(min=eps)
    return 0.5 * float((pc * (pc.log() - m.log())).sum()) + 0.5 * float((qc * (qc.log() - m.log())).sum())


def test_jensun_forget_and_retain(model, ref_model, batch):
    ids = [5, 9, 17]
    out = build_method("JensUn", target_token_ids=ids, gamma=1.5).loss(model, batch, ref_model=ref_model)
    part, rpart = batch["forget"], batch["retain"]
    with torch.no_grad():
        lf = logits(model, part)
        lr, lref = logits(model, rpart), logits(ref_model, rpart)
    forget = []
    for b in range(4):
        j = 0  # position inside this row's answer
        for t in range(lf.shape[1] - 1):
            if int(part["labels"][b, t + 1]) == -100:
                continue
            q = torch.zeros(lf.shape[-1], dtype=torch.float64)
            q[ids[j % len(ids)]] = 1.0
            forget.append(_jsd(softmax64(lf[b, t]), q))
            j += 1
    retain = [_jsd(softmax64(lref[b, t]), softmax64(lr[b, t])) for b in range(4)
              for t in range(lr.shape[1] - 1) if int(rpart["labels"][b, t + 1]) != -100]
    assert all(0 <= v <= math.log(2) + 1e-9 for v in forget)
    assert close(out.forget_loss, sum(forget) / len(forget), tol=1e-4)
    assert close(out.retain_loss, sum(retain) / len(retain), tol=1e-4)
    assert close(out.loss, 1.5 * out.forget_loss + out.retain_loss)
    assert build_method("JensUn", target_token_ids=ids).needs_ref_model


def test_jensun_target_ids_required_and_checked(model, batch):
    with pytest.raises(ConfigError, match="target_token_ids"):
        build_method("JensUn")
    with pytest.raises(ConfigError, match="vocabulary"):
        build_method("JensUn", target_token_ids=[48], alpha=0.0).loss(model, batch)


def test_jensun_target_ids_from_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"[UNK]": 0, "[BOS]": 1, "No": 7, "idea": 3}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", bos_token="[BOS]")
    assert jensun_target_ids(tok) == [7, 3]
