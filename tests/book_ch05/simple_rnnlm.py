# coding: utf-8
import sys
sys.path.append('..')
import numpy as np
from fastlstm.time_layers import *


class SimpleRnnlm:
    """Chapter 5's language model: word vectors, a plain RNN, scores over the vocabulary."""

    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        randn = np.random.randn

        # draw the weights (float32, Xavier-scaled where they feed a layer)
        embed_W = (randn(V, D) / 100).astype('f')
        rnn_Wx = (randn(D, H) / np.sqrt(D)).astype('f')
        rnn_Wh = (randn(H, H) / np.sqrt(H)).astype('f')
        rnn_b = np.zeros(H).astype('f')
        affine_W = (randn(H, V) / np.sqrt(H)).astype('f')
        affine_b = np.zeros(V).astype('f')

        # the layers, in the order the data flows through them
        self.layers = [TimeEmbedding(embed_W),
                       TimeRNN(rnn_Wx, rnn_Wh, rnn_b, stateful=True),
                       TimeAffine(affine_W, affine_b)]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.rnn_layer = self.layers[1]

        # every layer's weights and gradients in one list each, for the optimizer
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]

    def forward(self, xs, ts):
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in self.layers[::-1]:
            dout = layer.backward(dout)
        return dout

    def reset_state(self):
        self.rnn_layer.reset_state()
