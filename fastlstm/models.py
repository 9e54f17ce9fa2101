"""The book's language models on fastlstm's layers: chapter 5's SimpleRnnlm, chapter 6's
Rnnlm and BetterRnnlm, and their chapter 7 text generators RnnlmGen and BetterRnnlmGen.

Initialisation scales, layer order and `params` order are the book's, and the weights
come from NumPy's global generator as in the book, so `np.random.seed` fixes them.
`dtype` is float32 as in the book; float64 trains like the study notebook.
"""

import numpy as np

from fastlstm import time_layers
from fastlstm.base_model import BaseModel
from fastlstm.generate import generate


class _LayerStack(BaseModel):
    """A model that is a list of time layers followed by a loss layer."""

    layer_kit = time_layers  # the module the layers come from; the reference models swap it

    def _collect_params(self):
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def _evaluate(self, xs, ts):
        """The loss alone, through each layer's `infer`: nothing is kept for backward and,
        after the first call, nothing is allocated. Recurrent states advance as in forward."""
        for layer in self.layers:
            xs = layer.infer(xs)
        return self.loss_layer.infer(xs, ts)

    def _fast_evaluation(self, train_flg):
        return not train_flg and self.layer_kit is time_layers

    def predict(self, xs):
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs, ts, train_flg=True):
        """The mean loss; train_flg=False (as eval_perplexity passes) skips what backward needs."""
        if self._fast_evaluation(train_flg):
            return self._evaluate(xs, ts)
        score = self.predict(xs)
        return self.loss_layer.forward(score, ts)


class SimpleRnnlm(_LayerStack):
    """Chapter 5's model: Embedding -> RNN (stateful) -> Affine -> softmax loss."""

    def __init__(self, vocab_size=10000, wordvec_size=100, hidden_size=100, dtype=np.float32):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        L = self.layer_kit
        embed_W = (rn(V, D) / 100).astype(dtype)
        rnn_Wx = (rn(D, H) / np.sqrt(D)).astype(dtype)
        rnn_Wh = (rn(H, H) / np.sqrt(H)).astype(dtype)
        rnn_b = np.zeros(H, dtype=dtype)
        affine_W = (rn(H, V) / np.sqrt(H)).astype(dtype)
        affine_b = np.zeros(V, dtype=dtype)

        self.layers = [
            L.TimeEmbedding(embed_W),
            L.TimeRNN(rnn_Wx, rnn_Wh, rnn_b, stateful=True),
            L.TimeAffine(affine_W, affine_b),
        ]
        self.loss_layer = L.TimeSoftmaxWithLoss()
        self.rnn_layer = self.layers[1]
        self._collect_params()

    def reset_state(self):
        self.rnn_layer.reset_state()


class Rnnlm(_LayerStack):
    """Embedding -> LSTM (stateful) -> Affine -> softmax loss."""

    def __init__(self, vocab_size=10000, wordvec_size=100, hidden_size=100, dtype=np.float32):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        L = self.layer_kit
        embed_W = (rn(V, D) / 100).astype(dtype)
        lstm_Wx = (rn(D, 4 * H) / np.sqrt(D)).astype(dtype)
        lstm_Wh = (rn(H, 4 * H) / np.sqrt(H)).astype(dtype)
        lstm_b = np.zeros(4 * H, dtype=dtype)
        affine_W = (rn(H, V) / np.sqrt(H)).astype(dtype)
        affine_b = np.zeros(V, dtype=dtype)

        self.layers = [
            L.TimeEmbedding(embed_W),
            L.TimeLSTM(lstm_Wx, lstm_Wh, lstm_b, stateful=True),
            L.TimeAffine(affine_W, affine_b),
        ]
        self.loss_layer = L.TimeSoftmaxWithLoss()
        self.lstm_layer = self.layers[1]
        self.lstm_layers = [self.lstm_layer]
        self._collect_params()

    def reset_state(self):
        self.lstm_layer.reset_state()


class BetterRnnlm(_LayerStack):
    """Embedding -> Dropout -> LSTM -> Dropout -> LSTM -> Dropout -> Affine, with the
    output weight tied to the embedding (the Affine holds `embed_W.T`)."""

    def __init__(self, vocab_size=10000, wordvec_size=650, hidden_size=650, dropout_ratio=0.5, dtype=np.float32):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        L = self.layer_kit
        embed_W = (rn(V, D) / 100).astype(dtype)
        lstm_Wx1 = (rn(D, 4 * H) / np.sqrt(D)).astype(dtype)
        lstm_Wh1 = (rn(H, 4 * H) / np.sqrt(H)).astype(dtype)
        lstm_b1 = np.zeros(4 * H, dtype=dtype)
        lstm_Wx2 = (rn(H, 4 * H) / np.sqrt(H)).astype(dtype)
        lstm_Wh2 = (rn(H, 4 * H) / np.sqrt(H)).astype(dtype)
        lstm_b2 = np.zeros(4 * H, dtype=dtype)
        affine_b = np.zeros(V, dtype=dtype)

        self.layers = [
            L.TimeEmbedding(embed_W),
            L.TimeDropout(dropout_ratio),
            L.TimeLSTM(lstm_Wx1, lstm_Wh1, lstm_b1, stateful=True),
            L.TimeDropout(dropout_ratio),
            L.TimeLSTM(lstm_Wx2, lstm_Wh2, lstm_b2, stateful=True),
            L.TimeDropout(dropout_ratio),
            L.TimeAffine(embed_W.T, affine_b),  # weight tying
        ]
        self.loss_layer = L.TimeSoftmaxWithLoss()
        self.lstm_layers = [self.layers[2], self.layers[4]]
        self.drop_layers = [self.layers[1], self.layers[3], self.layers[5]]
        self._collect_params()

    def predict(self, xs, train_flg=False):
        for layer in self.drop_layers:
            layer.train_flg = train_flg
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs, ts, train_flg=True):
        """The mean loss; train_flg=False (as eval_perplexity passes) evaluates without dropout
        and skips what backward needs."""
        if self._fast_evaluation(train_flg):
            for layer in self.drop_layers:
                layer.train_flg = False
            return self._evaluate(xs, ts)
        score = self.predict(xs, train_flg)
        return self.loss_layer.forward(score, ts)

    def reset_state(self):
        for layer in self.lstm_layers:
            layer.reset_state()


class RnnlmGen(Rnnlm):
    """Rnnlm that writes text, as the book's chapter 7 RnnlmGen: one word at a time, each drawn
    from the softmax of the scores with np.random.choice (fastlstm.generate.generate)."""

    def generate(self, start_id, skip_ids=None, sample_size=100):
        """sample_size word ids, start_id first; a draw in skip_ids is drawn again."""
        return generate(self, start_id, skip_ids, sample_size)

    def get_state(self):
        return self.lstm_layer.h, self.lstm_layer.c

    def set_state(self, state):
        self.lstm_layer.set_state(*state)


class BetterRnnlmGen(BetterRnnlm):
    """BetterRnnlm that writes text, as the book's chapter 7 BetterRnnlmGen (dropout off: predict's
    train_flg defaults to False)."""

    def generate(self, start_id, skip_ids=None, sample_size=100):
        """sample_size word ids, start_id first; a draw in skip_ids is drawn again."""
        return generate(self, start_id, skip_ids, sample_size)

    def get_state(self):
        return [(layer.h, layer.c) for layer in self.lstm_layers]

    def set_state(self, states):
        for layer, state in zip(self.lstm_layers, states):
            layer.set_state(*state)
