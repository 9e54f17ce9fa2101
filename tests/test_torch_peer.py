"""PyTorch's CPU LSTM as the peer of `fastlstm bench --peer torch` (fastlstm.torch_peer): it does
the same work as fastlstm's steps, and the bench reports it; without torch, one line saying how
to install it. Tests that need torch skip where it is not installed."""

import json
import sys

import numpy as np
import pytest

from fastlstm import benchmark, cli, models
from fastlstm.optimizer import SGD
from fastlstm.training_step import train_step

TINY = {"vocab_size": 50, "wordvec_size": 8, "hidden_size": 8}
MODELS = {"rnnlm": (models.Rnnlm, TINY), "better": (models.BetterRnnlm, {**TINY, "dropout_ratio": 0.5})}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def peer():
    pytest.importorskip("torch")
    from fastlstm import torch_peer
    return torch_peer


def book_model(name, dtype=np.float64, **sizes):
    cls, kwargs = MODELS[name]
    np.random.seed(0)
    return cls(**{**kwargs, **sizes}, dtype=dtype)


def batch(N=4, T=5, seed=1):
    return np.random.default_rng(seed).integers(0, TINY["vocab_size"], size=(2, N, T))


@pytest.mark.parametrize("name", MODELS)
def test_the_peer_evaluates_as_fastlstm(peer, name):
    """The same weights, float64: the same losses, call after call (the state carries over),
    dropout off (BetterRnnlm's ratio is 0.5)."""
    book = book_model(name)
    xs, ts = batch()
    evaluate = peer.make_step(peer.from_book(book), "eval", xs, ts, benchmark.LR, benchmark.MAX_GRAD)
    for _ in range(3):
        assert evaluate() == pytest.approx(float(book.forward(xs, ts, train_flg=False)), abs=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_a_training_step_of_the_peer_is_fastlstms(peer, name):
    """Float64, dropout 0: each step gives the loss and the updated weights of fastlstm's
    train_step (clipped, SGD), in torch's layout, weights tied as the book ties them."""
    book = book_model(name, dropout_ratio=0.0) if name == "better" else book_model(name)
    net = peer.from_book(book)
    assert (net.out.weight is net.embed.weight) == (name == "better")
    xs, ts = batch()
    max_grad = 0.05  # below every step's norm: the clipping takes part
    step = peer.make_step(net, "train", xs, ts, benchmark.LR, max_grad)
    optimizer = SGD(benchmark.LR)
    for _ in range(3):
        loss, norm = train_step(book, optimizer, xs, ts, max_grad)
        assert norm > max_grad
        assert step() == pytest.approx(loss, abs=1e-10)
        expected = peer.torch_layout(book)
        state = {key: w.detach().numpy() for key, w in net.state_dict().items()}
        assert state.keys() == expected.keys()
        for key, w in expected.items():
            np.testing.assert_allclose(state[key], w, rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name, step", [("rnnlm", "train"), ("rnnlm", "eval"), ("better", "eval")])
def test_the_bench_steps_start_from_fastlstms_weights_in_float32(peer, name, step):
    """benchmark.make_step's peer runs torch's float32 path (oneDNN) on fastlstm's weights and
    batch: its first two losses are fastlstm's to float32's precision (BetterRnnlm's training
    draws other dropout masks, so it is left out)."""
    fast, _ = benchmark.make_step(name, "fastlstm", step, TINY)
    torch_step, tokens = benchmark.make_step(name, "torch", step, TINY)
    assert tokens == np.prod(benchmark.STEPS[step])
    for _ in range(2):
        expected = fast()
        expected = expected[0] if step == "train" else float(expected)
        assert torch_step() == pytest.approx(expected, rel=1e-5)


def test_the_peer_takes_only_the_books_two_models(peer):
    np.random.seed(0)
    with pytest.raises(TypeError, match="expected the book's Rnnlm or BetterRnnlm"):
        peer.from_book(models.VariationalRnnlm(**TINY))


def test_bench_rows_and_table_have_the_peer(peer):
    rows = benchmark.model_throughput(["rnnlm", "better"], quick=True, sizes=TINY, peak_size=64, memory=False,
                                      settle=0, peers=("torch",))
    for r in rows:
        rounds = benchmark.TIMING[True]["fastlstm"]["repeat"]
        assert len(r["torch_round_tokens_per_s"]) == len(r["torch_peaks_gflops"]) == rounds  # timed as fastlstm
        assert r["torch_tokens_per_s"] == pytest.approx(np.median(r["torch_round_tokens_per_s"]))
        assert r["torch_gflops"] == pytest.approx(r["torch_tokens_per_s"] * r["flop_per_token"] / 1e9)
        ratios = np.divide(r["fastlstm_round_tokens_per_s"], r["torch_round_tokens_per_s"])
        assert r["speedup_torch"] == pytest.approx(np.median(ratios))
        assert benchmark.row_peaks(r) == r["fastlstm_peaks_gflops"] + r["numpy_peaks_gflops"] + r["torch_peaks_gflops"]
    table = benchmark.format_throughput(rows)
    head = table.splitlines()[0]
    assert head.index("fastlstm tok/s") < head.index("NumPy tok/s") < head.index("PyTorch tok/s")
    assert head.endswith("vs NumPy vs PyTorch")
    line = table.splitlines()[2]
    assert line.startswith("rnnlm  train")
    assert line.endswith(f"{rows[0]['speedup']:10.2f}x{rows[0]['speedup_torch']:10.2f}x")
    assert f"{rows[0]['torch_fraction']:7.1%}" in line
    by_round = table.split("fastlstm's tok/s over PyTorch's round by round")[1]
    ratio = rows[1]["fastlstm_round_tokens_per_s"][0] / rows[1]["torch_round_tokens_per_s"][0]
    assert f"  rnnlm  eval  {ratio:.2f}x" in by_round


def test_step_memory_of_the_peer(peer):
    mib = benchmark.step_memory([("rnnlm", "torch", "train")], TINY)["rnnlm/torch/train"]
    if sys.platform.startswith("linux") and mib is not None:
        assert 0 <= mib["step"] <= mib["total"] < 100  # torch's own libraries loaded before: not counted


def test_bench_command_prints_the_peer(peer, capsys, monkeypatch, tmp_path):
    rows = benchmark.model_throughput(["rnnlm"], quick=True, sizes=TINY, peak_size=64, memory=False, settle=0,
                                      peers=("torch",))
    calls = []
    monkeypatch.setattr(benchmark, "model_throughput", lambda *args, **kwargs: calls.append(kwargs) or rows)
    out_json = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--models", "rnnlm", "--peer", "torch", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert calls[0]["peers"] == ("torch",)
    command = f"fastlstm bench --quick --threads 1 --models rnnlm --peer torch --json {out_json}"
    assert out.splitlines()[0] == f"command: {command}"
    description = f"PyTorch {peer.torch.__version__}, torch.nn.LSTM time-major (batch_first=False), oneDNN"
    assert f"peer: {description}" in out
    saved = json.loads(out_json.read_text())
    assert saved["command"] == command and saved["peer"].startswith(description)
    assert saved["rows"][0]["speedup_torch"] == rows[0]["speedup_torch"]


def test_bench_peer_without_torch_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.delitem(sys.modules, "fastlstm.torch_peer", raising=False)
    monkeypatch.setattr(benchmark, "model_throughput", lambda *args, **kwargs: pytest.fail("measured without a peer"))
    assert cli.main(["bench", "--quick", "--peer", "torch"]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # refused before anything is printed or measured
    assert err == "fastlstm bench: error: the PyTorch peer needs torch, which is not installed: pip install torch\n"
