# coding: utf-8
# Negative sampling (chapter 4): the score of a word is the dot product of the hidden vector
# with that word's output embedding; the loss asks for 1 on the target, 0 on sampled words.
import sys
sys.path.append('..')
from fastlstm.np import *  # np and the GPU switch
from fastlstm.layers import Embedding, SigmoidWithLoss
import collections


class EmbeddingDot:
    def __init__(self, W):
        self.embed = Embedding(W)
        self.params = self.embed.params
        self.grads = self.embed.grads
        self.cache = None

    def forward(self, h, idx):
        rows = self.embed.forward(idx)
        self.cache = (h, rows)
        return np.sum(rows * h, axis=1)

    def backward(self, dout):
        h, rows = self.cache
        dout = dout.reshape(dout.shape[0], 1)
        self.embed.backward(dout * h)
        return dout * rows


class UnigramSampler:
    def __init__(self, corpus, power, sample_size):
        self.sample_size = sample_size
        counts = collections.Counter()
        for word_id in corpus:
            counts[word_id] += 1
        self.vocab_size = len(counts)

        # word frequencies raised to `power`, as probabilities
        self.word_p = np.zeros(self.vocab_size)
        for word_id in range(self.vocab_size):
            self.word_p[word_id] = counts[word_id]
        self.word_p = np.power(self.word_p, power)
        self.word_p /= np.sum(self.word_p)

    def get_negative_sample(self, target):
        batch_size = target.shape[0]
        if GPU:
            # the book's GPU shortcut: one draw with replacement, which may hit the target
            return np.random.choice(self.vocab_size, size=(batch_size, self.sample_size),
                                    replace=True, p=self.word_p)

        negative_sample = np.zeros((batch_size, self.sample_size), dtype=np.int32)
        for row in range(batch_size):
            p = self.word_p.copy()
            p[target[row]] = 0  # never the target itself
            p /= p.sum()
            negative_sample[row, :] = np.random.choice(self.vocab_size, size=self.sample_size,
                                                       replace=False, p=p)
        return negative_sample


class NegativeSamplingLoss:
    def __init__(self, W, corpus, power=0.75, sample_size=5):
        self.sample_size = sample_size
        self.sampler = UnigramSampler(corpus, power, sample_size)
        # layer 0 scores the target, layers 1.. the negative samples
        self.loss_layers = [SigmoidWithLoss() for _ in range(sample_size + 1)]
        self.embed_dot_layers = [EmbeddingDot(W) for _ in range(sample_size + 1)]

        self.params, self.grads = [], []
        for layer in self.embed_dot_layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, h, target):
        batch_size = target.shape[0]
        negative_sample = self.sampler.get_negative_sample(target)

        score = self.embed_dot_layers[0].forward(h, target)
        loss = self.loss_layers[0].forward(score, np.ones(batch_size, dtype=np.int32))

        negative_label = np.zeros(batch_size, dtype=np.int32)
        for k in range(self.sample_size):
            score = self.embed_dot_layers[1 + k].forward(h, negative_sample[:, k])
            loss += self.loss_layers[1 + k].forward(score, negative_label)
        return loss

    def backward(self, dout=1):
        dh = 0
        for loss_layer, embed_dot in zip(self.loss_layers, self.embed_dot_layers):
            dscore = loss_layer.backward(dout)
            dh += embed_dot.backward(dscore)
        return dh
