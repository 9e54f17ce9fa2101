"""`python -m fastlstm.profiling`: the parts of a step, their FLOPs, and the layer modules
left as they were."""

import pytest

from fastlstm import blas, layers, profiling, time_layers
from fastlstm.recurrence import forward_steps

SIZES = dict(vocab_size=50, wordvec_size=12, hidden_size=12)


@pytest.mark.parametrize("model,step,products", [("rnnlm", "train", 7), ("better", "eval", 3)])
def test_profile_names_every_product_and_recurrence(model, step, products):
    total, tokens, parts = profiling.profile_step(model, step, rounds=2, sizes=SIZES)
    assert tokens == {"train": 700, "eval": 350}[step]
    labels = [p[0] for p in parts]
    assert sum(p[1] for p in parts if p[0].startswith("product")) == products
    assert any(label.startswith("LSTM recurrence forward") for label in labels)
    assert any(label.startswith("LSTM recurrence backward") for label in labels) == (step == "train")
    assert labels[-1].startswith("the rest")
    assert all(p[2] > 0 for p in parts[:-1]) and sum(p[2] for p in parts) == pytest.approx(total)
    assert layers.dot is blas.dot and time_layers.dot is blas.dot and time_layers.forward_steps is forward_steps


def test_recurrence_flops_count_the_per_step_products():
    gates = type("A", (), {"shape": (35, 20, 2600)})()
    assert profiling._steps_flops(gates) == 2 * 35 * 20 * 650 * 2600


def test_format_shows_time_share_and_gflops_of_each_part():
    total, tokens, parts = profiling.profile_step("rnnlm", "train", rounds=1, sizes=SIZES)
    text = profiling.format_profile("rnnlm", "train", total, tokens, parts)
    lines = text.splitlines()
    assert lines[0].startswith("rnnlm train:") and "tokens/s" in lines[0]
    assert len(lines) == 2 + len(parts)
    product = next(line for line in lines if "product" in line)
    assert product.split()[-1].replace(".", "").isdigit()  # its GFLOP/s
