"""JensUn (nmndeep/JensUn-Unlearning @ 9d0cfd5101cb, `src/trainer/unlearn/jensun.py`): Jensen-Shannon divergence to
a fixed refusal token pattern on forget answers.

The target pattern (tau_1..tau_k) is repeated over the answer positions of each sample (the j-th scored
answer token of a row gets tau_{j mod k}); q_t = onehot(tau); p_theta and q clamped at eps=1e-9;
JSD_t = KL(p||m)/2 + KL(q||m)/2 with m = (p+q)/2; L_forget = token mean over scored answer tokens.
Retain (default "JSD"): token-mean JSD between p_ref and p_theta on retain answers (needs ref_model);
"NLL" and "KL" also work. Defaults gamma=1, alpha=1.

``faithful_eps`` (default False) moves the epsilons to where JensUn's code has them (nmndeep/JensUn-Unlearning
``jensun_multitok_loss`` / ``jensun_retain_loss``): forget - p and q clamped at eps first and m = (p_c+q_c)/2
built from the clamped values; retain - unclamped log-softmax log-probs with only log m clamped at 1e-10.
The default builds m from the unclamped p and q and clamps m itself (m = clamp((p+q)/2, eps)), so m is the
exact mixture of the two distributions wherever it exceeds eps. The two forms differ by <= 1e-4 relative
(below bf16 resolution); the default is kept so that earlier sweep results stay comparable. (The
reference's +1e-8 in the forget token-count denominator changes the loss by <= 1e-8 relative, below
float32 resolution, and is not reproduced.)

The token ids are tokenizer specific and must be given, e.g. for " No idea":

    ids = jensun_target_ids(tokenizer)                      # tokenizer(" No idea") without specials
    out = build_method("JensUn", target_token_ids=ids).loss(model, batch, ref_model=ref)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (IGNORE_INDEX, ForgetTerms, Method, RetainConfig, check_positive,
                                     inputs_of, jsd, jsd_reference_eps, logits_of)

DEFAULT_TARGET_TEXT = " No idea"


@dataclass
class JensUnConfig(RetainConfig):
    """target_token_ids (required; the tokenizer's ids of " No idea" in the paper), eps=1e-9 (clamp),
    gamma=1, alpha=1, retain_loss_type="JSD" ("NLL", "KL"), faithful_eps=False (True = JensUn's epsilon
    placement, see the module doc)."""

    target_token_ids: list[int] = field(default_factory=list)
    eps: float = 1e-9
    retain_loss_type: str = "JSD"
    faithful_eps: bool = False


def jensun_target_ids(tokenizer: Any, text: str = DEFAULT_TARGET_TEXT) -> list[int]:
    """Token ids of ``text`` without special tokens (works with any HF tokenizer)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def jensun_token_losses(logits: Tensor, labels: Tensor, target_ids: list[int], eps: float,
                        faithful_eps: bool = False) -> ForgetTerms:
    """JSD_t(p_theta, onehot(pattern)) at every scored answer position (token unit)."""
    vocab = logits.shape[-1]
    mask = labels[:, 1:] != IGNORE_INDEX
    pattern = torch.tensor(target_ids, device=labels.device, dtype=torch.long)
    if int(pattern.max()) >= vocab or int(pattern.min()) < 0:
        raise ConfigError("JensUn", field="target_token_ids", value=list(target_ids),
                          fix=f"every target id must lie in [0, {vocab - 1}] (the model's vocabulary)")
    answer_pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    q = F.one_hot(pattern[answer_pos % len(target_ids)], vocab).to(torch.float32)
    p = F.softmax(logits[:, :-1, :].float(), dim=-1)
    return ForgetTerms((jsd_reference_eps if faithful_eps else jsd)(p, q, eps), "token", mask)


class JensUn(Method):
    """JSD-based unlearning towards a refusal pattern."""

    name = "JensUn"
    config_cls = JensUnConfig
    unit = "token"

    def validate(self) -> None:
        super().validate()
        ids = self.config.target_token_ids
        if not isinstance(ids, (list, tuple)) or not ids or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise ConfigError(self.name, field="target_token_ids", value=ids,
                              fix="give a non-empty list of token ids, e.g. "
                                  "jensun_target_ids(tokenizer) for ' No idea'")
        self.config.target_token_ids = list(ids)
        check_positive(self.name, "eps", self.config.eps)
        if not isinstance(self.config.faithful_eps, bool):
            raise ConfigError(self.name, field="faithful_eps", value=self.config.faithful_eps, fix="use true or false")

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        return jensun_token_losses(logits_of(model, forget), forget["labels"],
                                   self.config.target_token_ids, self.config.eps, self.config.faithful_eps)
