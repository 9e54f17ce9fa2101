"""PyTorch's CPU LSTM as the peer of `fastlstm bench --peer torch`: the book's Rnnlm and
BetterRnnlm on torch.nn (Embedding, Dropout, nn.LSTM, Linear), built from a book model's weights,
and training and evaluation steps that do the work of benchmark.make_step's.

Importing this module imports torch, which fastlstm does not require: benchmark.load_peer turns
its absence into the install command, and nothing else in fastlstm imports this module.
"""

import os

import numpy as np

import fastlstm
from fastlstm import models


def _import_torch():
    """torch, its OpenMP started as a user of PyTorch runs it: fastlstm sets OMP_WAIT_POLICY=PASSIVE
    for its own OpenMP (fastlstm/__init__.py), which slows torch's many short parallel regions
    (docs/performance.md); OpenMP reads it once, when torch loads it. A policy the user set stays."""
    ours = fastlstm._SETS_OMP_WAIT_POLICY and os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"
    if ours:
        del os.environ["OMP_WAIT_POLICY"]
    try:
        import torch
    finally:
        if ours:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return torch


torch = _import_torch()
try:
    torch.set_num_interop_threads(1)  # the steps run no inter-op work: no pool of idle threads beside the intra-op one
except RuntimeError:  # set before, or inter-op work has started: it can no longer change
    pass

# torch.nn.LSTM's gate blocks (i, f, g, o), as blocks of the book's 4H axis (f, g, i, o)
GATES_FROM_BOOK = [2, 0, 1, 3]


class LanguageModel(torch.nn.Module):
    """Embedding -> Dropout -> nn.LSTM (`layers`, dropout between them) -> Dropout -> Linear, the
    output weight tied to the embedding's with `tied`: the book's Rnnlm (one layer, no dropout)
    and BetterRnnlm (two layers, dropout 0.5, tied). Stateful: (h, c) carry over from call to call,
    detached (truncated BPTT, as the book's stateful TimeLSTM). The book's LSTM has one bias:
    nn.LSTM's second, bias_hh, stays zero and is not trained, so the gradient norm is the book's.
    nn.LSTM runs time-major (batch_first=False), the faster layout here (docs/performance.md)."""

    def __init__(self, vocab_size, wordvec_size, hidden_size, layers=1, dropout_ratio=0.0, tied=False,
                 dtype=torch.float32):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, wordvec_size, dtype=dtype)
        self.drop = torch.nn.Dropout(dropout_ratio) if dropout_ratio else torch.nn.Identity()
        self.lstm = torch.nn.LSTM(wordvec_size, hidden_size, layers, dropout=dropout_ratio if layers > 1 else 0.0,
                                  dtype=dtype)
        self.out = torch.nn.Linear(hidden_size, vocab_size, dtype=dtype)
        if tied:
            self.out.weight = self.embed.weight
        for k in range(layers):
            getattr(self.lstm, f"bias_hh_l{k}").requires_grad_(False).zero_()
        self.state = None

    def forward(self, xs, ts):
        """The mean softmax cross-entropy of the scores of word ids xs against targets ts, both (T, N)
        (time-major), ts of -1 ignored as by the book's TimeSoftmaxWithLoss."""
        ys, state = self.lstm(self.drop(self.embed(xs)), self.state)
        self.state = tuple(s.detach() for s in state)
        scores = self.out(self.drop(ys))
        return torch.nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]), ts.reshape(-1), ignore_index=-1)


def _gates(a):
    """a (..., 4H) with its gate blocks in torch's order."""
    H = a.shape[-1] // 4
    return a.reshape(*a.shape[:-1], 4, H)[..., GATES_FROM_BOOK, :].reshape(a.shape)


def _check_book_model(model):
    if not isinstance(model, (models.Rnnlm, models.BetterRnnlm)):
        raise TypeError(f"expected the book's Rnnlm or BetterRnnlm (fastlstm's or the NumPy reference's), "
                        f"got {type(model).__name__}")


def torch_layout(model):
    """{LanguageModel's state_dict name: array} of the weights of a book Rnnlm or BetterRnnlm:
    gate blocks reordered and each LSTM matrix transposed to (4H, in), the book's bias as bias_ih
    beside a zero bias_hh, the output weight as (V, H)."""
    _check_book_model(model)
    embed_W = model.layers[0].params[0]
    W, b = model.layers[-1].params
    weights = {"embed.weight": embed_W, "out.weight": W.T, "out.bias": b}
    for k, layer in enumerate(model.lstm_layers):
        Wx, Wh, bias = layer.params
        weights |= {f"lstm.weight_ih_l{k}": _gates(Wx).T, f"lstm.weight_hh_l{k}": _gates(Wh).T,
                    f"lstm.bias_ih_l{k}": _gates(bias), f"lstm.bias_hh_l{k}": np.zeros_like(bias)}
    return {name: np.ascontiguousarray(w) for name, w in weights.items()}


def from_book(model):
    """A LanguageModel with the sizes, dropout ratio, tying and weights (copied) of a book Rnnlm
    or BetterRnnlm, in its weights' dtype."""
    weights = torch_layout(model)
    embed_W, (W, _) = model.layers[0].params[0], model.layers[-1].params
    drops = getattr(model, "drop_layers", [])
    net = LanguageModel(*embed_W.shape, W.shape[0], len(model.lstm_layers), drops[0].dropout_ratio if drops else 0.0,
                        tied=np.shares_memory(W, embed_W), dtype=getattr(torch, embed_W.dtype.name))
    net.load_state_dict({name: torch.from_numpy(w) for name, w in weights.items()})
    return net


def make_step(net, step, xs, ts, lr, max_grad, seed=0):
    """One step of LanguageModel `net` on word ids xs and targets ts (N, T), as a call that
    returns the loss, on fastlstm's thread count. 'train': forward, mean loss, backward,
    clipping of the gradients' global norm at max_grad (the book's rule: max_grad / (norm +
    1e-6) where below 1), an SGD update at lr; 'eval': forward and loss, dropout off, no
    autograd. Dropout masks come from torch's generator, seeded with `seed`."""
    torch.set_num_threads(fastlstm.get_num_threads())
    torch.manual_seed(seed)
    xs, ts = (torch.from_numpy(np.ascontiguousarray(a.T, dtype=np.int64)) for a in (xs, ts))
    if step == "eval":
        net.eval()

        def evaluate():
            with torch.no_grad():
                return net(xs, ts).item()
        return evaluate
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr)

    def train():
        optimizer.zero_grad()
        loss = net(xs, ts)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad)
        optimizer.step()
        return loss.item()
    return train


def describe():
    """The peer in words: torch's version, the LSTM's layout and backend, its threads."""
    return (f"PyTorch {torch.__version__}, torch.nn.LSTM time-major (batch_first=False), oneDNN "
            f"{'on' if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else 'off'}, "
            f"{torch.get_num_threads()} intra-op threads, {torch.get_num_interop_threads()} inter-op")
