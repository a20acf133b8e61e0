"""Where evaluation points and early stops fall: epochs (fractions allowed) mapped to optimizer steps.

An evaluation point is named by its epoch (1, 1.5, 2, ...; 0 = before unlearning) and happens after the
optimizer step `step_at(epoch)`: whole epochs end their epoch, a fraction f of epoch e falls after
round(f * steps_per_epoch) steps of epoch e+1. The loop (evaluation, `stop_after_epoch`), the sweep (point
labels) and export (exact replay of a point) all use these functions, so a point and its replay stop at the
same step.

    eval_points(epochs=3, steps_per_epoch=4, every=0.5)   # {2: 0.5, 4: 1, 6: 1.5, 8: 2, 10: 2.5, 12: 3}
    step_at(1.5, steps_per_epoch=4)                        # 6
    epoch_label(2.0), epoch_label(1.25)                    # 2, 1.25
"""

from __future__ import annotations

import math

EPOCH_DIGITS = 4  # epoch labels are rounded to this many decimals (0.3333 for every: 1/3)


def epoch_label(epoch: float) -> int | float:
    """An epoch as it is shown and stored: an int when whole (1, not 1.0), else rounded to 4 decimals."""
    rounded = round(float(epoch), EPOCH_DIGITS)
    return int(rounded) if rounded == int(rounded) else rounded


def step_at(epoch: float, steps_per_epoch: int) -> int:
    """The optimizer step after which the point `epoch` is evaluated (see the module docstring)."""
    whole = math.floor(epoch + 1e-9)
    frac = epoch - whole
    return whole * steps_per_epoch + int(round(frac * steps_per_epoch))


def eval_points(epochs: float, steps_per_epoch: int, every: float | None) -> dict[int, int | float]:
    """{optimizer step: epoch label} of the evaluation points of a run of `epochs` epochs: every `every`
    epochs and always at the end. Points that round to the same step share it under the label closest to
    that step's true position (a whole epoch wins); points that round to step 0 are dropped."""
    labels = [k * every for k in range(1, int((epochs + 1e-9) // every) + 1)] if every else []
    points: dict[int, int | float] = {}
    for epoch in [*labels, epochs]:
        step = step_at(epoch, steps_per_epoch)
        if step <= 0:
            continue
        here = step / steps_per_epoch
        if step not in points or abs(epoch - here) < abs(points[step] - here) - 1e-9:
            points[step] = epoch_label(epoch)
    return dict(sorted(points.items()))
