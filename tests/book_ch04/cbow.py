# coding: utf-8
# CBOW (chapter 4): the mean of the context words' input embeddings predicts the target word,
# trained with negative sampling.
import sys
sys.path.append('..')
from fastlstm.np import *  # np
from fastlstm.layers import Embedding
from ch04.negative_sampling_layer import NegativeSamplingLoss


class CBOW:
    def __init__(self, vocab_size, hidden_size, window_size, corpus):
        V, H = vocab_size, hidden_size

        W_in = 0.01 * np.random.randn(V, H).astype('f')
        W_out = 0.01 * np.random.randn(V, H).astype('f')

        # one input Embedding per context position, all sharing W_in
        self.in_layers = [Embedding(W_in) for _ in range(2 * window_size)]
        self.ns_loss = NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5)

        self.params, self.grads = [], []
        for layer in self.in_layers + [self.ns_loss]:
            self.params += layer.params
            self.grads += layer.grads

        self.word_vecs = W_in  # the word vectors the chapter keeps

    def forward(self, contexts, target):
        h = 0
        for i, layer in enumerate(self.in_layers):
            h += layer.forward(contexts[:, i])
        h *= 1 / len(self.in_layers)
        return self.ns_loss.forward(h, target)

    def backward(self, dout=1):
        dout = self.ns_loss.backward(dout)
        dout *= 1 / len(self.in_layers)
        for layer in self.in_layers:
            layer.backward(dout)
        return None
