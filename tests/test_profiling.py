"""`python -m fastlstm.profiling`: the parts of a step, their FLOPs, each part alone, and
the layer modules left as they were."""

import pytest

from fastlstm import blas, layers, profiling, time_layers
from fastlstm.recurrence import forward_steps

SIZES = dict(vocab_size=50, wordvec_size=12, hidden_size=12)


@pytest.mark.parametrize("model,step,products", [("rnnlm", "train", 7), ("better", "eval", 3)])
def test_profile_names_every_product_and_recurrence(model, step, products):
    total, tokens, parts = profiling.profile_step(model, step, rounds=2, sizes=SIZES)
    assert tokens == {"train": 700, "eval": 350}[step]
    labels = [p["part"] for p in parts]
    assert sum(p["calls"] for p in parts if p["part"].startswith("product")) == products
    assert any(label.startswith("LSTM recurrence forward") for label in labels)
    assert any(label.startswith("LSTM recurrence backward") for label in labels) == (step == "train")
    assert labels[-1].startswith("the rest") and parts[-1]["alone"] is None
    assert all(p["seconds"] > 0 and p["alone"] > 0 for p in parts[:-1])
    assert sum(p["seconds"] for p in parts) == pytest.approx(total)
    assert all(p["gflops"] > 0 for p in parts if p["part"].startswith(("product", "LSTM")))
    assert layers.dot is blas.dot and time_layers.dot is blas.dot and time_layers.forward_steps is forward_steps


def test_recurrence_flops_count_the_per_step_products():
    gates = type("A", (), {"shape": (35, 20, 2600)})()
    assert profiling._steps_flops(gates) == 2 * 35 * 20 * 650 * 2600


def test_format_shows_each_part_and_the_bound_of_the_parts_alone():
    total, tokens, parts = profiling.profile_step("rnnlm", "train", rounds=1, sizes=SIZES)
    text = profiling.format_profile("rnnlm", "train", total, tokens, parts, peak=100.0)
    lines = text.splitlines()
    assert lines[0].startswith("rnnlm train:") and "tokens/s" in lines[0]
    assert len(lines) == 3 + len(parts)
    alone = sum(p["alone"] for p in parts[:-1])
    assert f"add up to {alone * 1e3:.1f} ms" in lines[-1] and "of the limit" in lines[-1]
