"""Upper bounds every config shares (a value past them is a typo that would otherwise cost hours).

    from unlearning.data.limits import MAX_LENGTH
    max_length: int = Field(512, ge=8, le=MAX_LENGTH)

It imports nothing of the project, so the train config and the evaluation settings both read it.
"""

# tokenisation truncation: TOFU items are < 512 tokens (open-unlearning truncates at 512), MUSE texts at 2048
MAX_LENGTH = 32768
