"""Peak memory of a BetterRnnlm training step at the book's sizes stays within 1.5x the floor
of parameters, gradients and the activations backward needs."""

from fastlstm.benchmark import step_memory, training_memory_floor


def test_training_memory_floor_counts_what_a_step_cannot_do_without():
    floor = training_memory_floor("better")
    # 13.27 M weights, 19.78 M gradients (the tied weight twice), 15.19 M activations, float32
    assert round(floor["params"], 1) == 50.6
    assert round(floor["grads"], 1) == 75.4
    assert round(floor["activations"], 1) == 57.9


def test_better_rnnlm_training_step_stays_within_one_and_a_half_floors():
    figures = step_memory([("better", "fastlstm", "train")])["better/fastlstm/train"]
    assert figures is not None, "the peak resident memory cannot be reset on this system"
    floor = training_memory_floor("better")["total"]
    assert figures["total"] <= 1.5 * floor, f"{figures['total']:.0f} MiB against a floor of {floor:.0f} MiB"
