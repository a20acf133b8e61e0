"""Evaluation points and stops in optimizer steps (`unlearning.train.schedule`).

Run: pytest tests/train/test_schedule.py -q
"""

from unlearning.train.schedule import epoch_label, eval_points, step_at


def test_whole_and_fractional_epochs_map_to_steps():
    assert step_at(1, 4) == 4 and step_at(1.5, 4) == 6 and step_at(0.25, 4) == 1 and step_at(3, 7) == 21
    assert step_at(1 / 3, 3) == 1 and step_at(2 / 3, 3) == 2


def test_eval_points_every_fraction_every_epoch_every_other_and_only_the_end():
    assert eval_points(2, 4, 0.5) == {2: 0.5, 4: 1, 6: 1.5, 8: 2}
    assert eval_points(3, 4, 1) == {4: 1, 8: 2, 12: 3}
    assert eval_points(5, 2, 2) == {4: 2, 8: 4, 10: 5}          # the last epoch is always a point
    assert eval_points(3, 4, None) == {12: 3}
    assert eval_points(2.5, 4, 1) == {4: 1, 8: 2, 10: 2.5}       # a fractional stop is a point too


def test_points_closer_than_a_step_keep_the_first_label_and_labels_are_tidy():
    assert eval_points(1, 2, 0.25) == {1: 0.5, 2: 1}             # 0.25 rounds to step 0; 0.75 and 1 share step 2
    assert epoch_label(2.0) == 2 and isinstance(epoch_label(2.0), int) and epoch_label(1 / 3) == 0.3333
