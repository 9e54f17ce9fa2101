"""The book's language models on fastlstm's layers: chapter 5's SimpleRnnlm, chapter 6's
Rnnlm and BetterRnnlm, their chapter 7 text generators RnnlmGen and BetterRnnlmGen, and two
regularised models of chapter 6's family: VariationalRnnlm (BetterRnnlm with variational
dropout) and AwdRnnlm (AWD-LSTM).

Initialisation scales, layer order and `params` order are the book's, and the weights
come from NumPy's global generator as in the book, so `np.random.seed` fixes them.
`dtype` is float32 as in the book; float64 trains like the study notebook.
"""

import numpy as np

from fastlstm import regularisers, time_layers
from fastlstm.base_model import BaseModel
from fastlstm.generate import generate
from fastlstm.threads import single_threaded_blas


class _LayerStack(BaseModel):
    """A model that is a list of time layers followed by a loss layer."""

    layer_kit = time_layers  # the module the layers come from; the reference models swap it
    penalty = 0.0  # the loss terms besides the cross-entropy in the last forward (AR and TAR)

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
        after the first call, nothing is allocated. Recurrent states advance as in forward.
        BLAS goes to one thread once for the whole pass (the lanes share its products)."""
        with single_threaded_blas():
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


def _better_weights(V, D, H, dtype):
    """(embed_W, (Wx, Wh, b) of the first LSTM, those of the second, the output bias) of
    BetterRnnlm's shape, drawn from NumPy's global generator in the book's order."""
    rn = np.random.randn
    embed_W = (rn(V, D) / 100).astype(dtype)
    lstm1 = ((rn(D, 4 * H) / np.sqrt(D)).astype(dtype), (rn(H, 4 * H) / np.sqrt(H)).astype(dtype),
             np.zeros(4 * H, dtype=dtype))
    lstm2 = ((rn(H, 4 * H) / np.sqrt(H)).astype(dtype), (rn(H, 4 * H) / np.sqrt(H)).astype(dtype),
             np.zeros(4 * H, dtype=dtype))
    return embed_W, lstm1, lstm2, np.zeros(V, dtype=dtype)


class BetterRnnlm(_LayerStack):
    """Embedding -> Dropout -> LSTM -> Dropout -> LSTM -> Dropout -> Affine, with the
    output weight tied to the embedding (the Affine holds `embed_W.T`)."""

    def __init__(self, vocab_size=10000, wordvec_size=650, hidden_size=650, dropout_ratio=0.5, dtype=np.float32):
        L = self.layer_kit
        embed_W, lstm1, lstm2, affine_b = _better_weights(vocab_size, wordvec_size, hidden_size, dtype)

        self.layers = [
            L.TimeEmbedding(embed_W),
            L.TimeDropout(dropout_ratio),
            L.TimeLSTM(*lstm1, stateful=True),
            L.TimeDropout(dropout_ratio),
            L.TimeLSTM(*lstm2, stateful=True),
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


class _Regularised(_LayerStack):
    """A tied language model whose layers drop while training (`drop_layers`: each follows
    the `train_flg` of forward) and whose loss may add AR and TAR (`penalties`: {index i:
    a term on the output of layers[i]}, from `penalty_kit`)."""

    penalty_kit = regularisers  # where AR and TAR come from; the reference models swap it

    def _penalise(self, alpha, beta, dropped_index, raw_index):
        """AR on the output of layers[dropped_index], TAR on that of layers[raw_index]; none at 0."""
        K = self.penalty_kit
        self.penalties = {}
        if alpha:
            self.penalties[dropped_index] = K.ActivationRegularisation(alpha)
        if beta:
            self.penalties[raw_index] = K.TemporalActivationRegularisation(beta)

    def _set_train_flg(self, train_flg):
        for layer in self.drop_layers:
            layer.train_flg = train_flg

    def predict(self, xs, train_flg=False):
        self._set_train_flg(train_flg)
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs, ts, train_flg=True):
        """The mean cross-entropy plus AR and TAR (`penalty`) while training; train_flg=False
        (as eval_perplexity passes) evaluates the cross-entropy without dropout."""
        self._set_train_flg(train_flg)
        self.penalty = 0.0
        if self._fast_evaluation(train_flg):
            return self._evaluate(xs, ts)
        for i, layer in enumerate(self.layers):
            xs = layer.forward(xs)
            if train_flg and i in self.penalties:
                self.penalty += self.penalties[i].forward(xs)
        return self.loss_layer.forward(xs, ts) + self.penalty

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for i in reversed(range(len(self.layers))):
            if i in self.penalties:
                dout = self.penalties[i].backward(dout)
            dout = self.layers[i].backward(dout)
        return dout

    def reset_state(self):
        for layer in self.lstm_layers:
            layer.reset_state()


class VariationalRnnlm(_Regularised):
    """BetterRnnlm's layers and weights with variational dropout (Gal and Ghahramani, 2016):
    Embedding -> Dropout -> LSTM -> Dropout -> LSTM -> Dropout -> Affine, tied, where each
    Dropout is locked (one mask per sequence for all time steps, `dropout_ratio`), each LSTM
    drops its h_{t-1} with one mask per sequence (`recurrent_dropout`) and may drop
    connections of Wh (`weight_drop`), and the embedding may drop whole words
    (`embed_dropout`); AR (`alpha`) and TAR (`beta`) are off by default. The weights are
    drawn as BetterRnnlm draws them, so one seed gives both models the same start."""

    def __init__(self, vocab_size=10000, wordvec_size=650, hidden_size=650, dropout_ratio=0.5,
                 recurrent_dropout=0.3, embed_dropout=0.3, weight_drop=0.0, alpha=0.0, beta=0.0, dtype=np.float32):
        L = self.layer_kit
        embed_W, lstm1, lstm2, affine_b = _better_weights(vocab_size, wordvec_size, hidden_size, dtype)
        recurrent = dict(stateful=True, recurrent_dropout=recurrent_dropout, weight_drop=weight_drop)

        self.layers = [
            L.TimeEmbedding(embed_W, dropout=embed_dropout),
            L.TimeDropout(dropout_ratio, locked=True),
            L.TimeLSTM(*lstm1, **recurrent),
            L.TimeDropout(dropout_ratio, locked=True),
            L.TimeLSTM(*lstm2, **recurrent),
            L.TimeDropout(dropout_ratio, locked=True),
            L.TimeAffine(embed_W.T, affine_b),  # weight tying
        ]
        self.loss_layer = L.TimeSoftmaxWithLoss()
        self.lstm_layers = [self.layers[2], self.layers[4]]
        self.drop_layers = self.layers[:6]
        self._penalise(alpha, beta, dropped_index=5, raw_index=4)
        self._collect_params()


class AwdRnnlm(_Regularised):
    """AWD-LSTM (Merity, Keskar and Socher, 2017), tied: Embedding (embedding dropout) ->
    locked Dropout (`input_dropout`) -> `num_layers` LSTMs with weight drop on Wh, a locked
    Dropout (`hidden_dropout`) between them -> locked Dropout (`dropout`) -> Affine with
    the embedding's weight. Every LSTM is `hidden_size` wide but the last, which is
    `wordvec_size` wide for the tying. AR on the last dropped output, TAR on the last raw
    output. The defaults are AWD-LSTM's published PTB values (docs/design.md); the weights
    are drawn as the book draws its models' (normal, scaled by 1 / sqrt(fan-in))."""

    def __init__(self, vocab_size=10000, wordvec_size=400, hidden_size=1150, num_layers=3, dropout=0.4,
                 hidden_dropout=0.25, input_dropout=0.4, embed_dropout=0.1, weight_drop=0.5, alpha=2.0, beta=1.0,
                 dtype=np.float32):
        if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"num_layers must be an integer >= 1, got {num_layers!r}")
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn
        L = self.layer_kit
        embed_W = (rn(V, D) / 100).astype(dtype)
        self.layers = [L.TimeEmbedding(embed_W, dropout=embed_dropout), L.TimeDropout(input_dropout, locked=True)]
        self.lstm_layers = []
        for i in range(num_layers):
            width_in, width = (D if i == 0 else H), (D if i == num_layers - 1 else H)
            Wx = (rn(width_in, 4 * width) / np.sqrt(width_in)).astype(dtype)
            Wh = (rn(width, 4 * width) / np.sqrt(width)).astype(dtype)
            lstm = L.TimeLSTM(Wx, Wh, np.zeros(4 * width, dtype=dtype), stateful=True, weight_drop=weight_drop)
            last = i == num_layers - 1
            self.layers += [lstm, L.TimeDropout(dropout if last else hidden_dropout, locked=True)]
            self.lstm_layers.append(lstm)
        self.layers.append(L.TimeAffine(embed_W.T, np.zeros(V, dtype=dtype)))  # weight tying
        self.loss_layer = L.TimeSoftmaxWithLoss()
        self.drop_layers = self.layers[:-1]
        self._penalise(alpha, beta, dropped_index=len(self.layers) - 2, raw_index=len(self.layers) - 3)
        self._collect_params()
