# coding: utf-8
# skip-gram (chapter 4): the target word's input embedding predicts each context word,
# one negative-sampling loss per context position.
import sys
sys.path.append('..')
from fastlstm.layers import *  # np and the layers
from ch04.negative_sampling_layer import NegativeSamplingLoss


class SkipGram:
    def __init__(self, vocab_size, hidden_size, window_size, corpus):
        V, H = vocab_size, hidden_size
        rn = np.random.randn

        W_in = 0.01 * rn(V, H).astype('f')
        W_out = 0.01 * rn(V, H).astype('f')

        self.in_layer = Embedding(W_in)
        self.loss_layers = [NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5)
                            for _ in range(2 * window_size)]

        self.params, self.grads = [], []
        for layer in [self.in_layer] + self.loss_layers:
            self.params += layer.params
            self.grads += layer.grads

        self.word_vecs = W_in

    def forward(self, contexts, target):
        h = self.in_layer.forward(target)
        loss = 0
        for i, layer in enumerate(self.loss_layers):
            loss += layer.forward(h, contexts[:, i])
        return loss

    def backward(self, dout=1):
        dh = 0
        for layer in self.loss_layers:
            dh += layer.backward(dout)
        self.in_layer.backward(dh)
        return None
