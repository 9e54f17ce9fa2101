# coding: utf-8
# seq2seq with attention (chapter 8): the decoder sees all of the encoder's hidden states.
import sys
sys.path.append('..')
from fastlstm.time_layers import *
from ch07.seq2seq import Encoder, Seq2seq
from ch08.attention_layer import TimeAttention


class AttentionEncoder(Encoder):
    def forward(self, xs):
        return self.lstm.forward(self.embed.forward(xs))

    def backward(self, dhs):
        dout = self.lstm.backward(dhs)
        return self.embed.backward(dout)


class AttentionDecoder:
    def __init__(self, vocab_size, wordvec_size, hidden_size):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.randn

        embed_W = (rn(V, D) / 100).astype('f')
        lstm_Wx = (rn(D, 4 * H) / np.sqrt(D)).astype('f')
        lstm_Wh = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
        lstm_b = np.zeros(4 * H).astype('f')
        affine_W = (rn(2 * H, V) / np.sqrt(2 * H)).astype('f')
        affine_b = np.zeros(V).astype('f')

        self.embed = TimeEmbedding(embed_W)
        self.lstm = TimeLSTM(lstm_Wx, lstm_Wh, lstm_b, stateful=True)
        self.attention = TimeAttention()
        self.affine = TimeAffine(affine_W, affine_b)

        self.params, self.grads = [], []
        for layer in (self.embed, self.lstm, self.attention, self.affine):
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, xs, enc_hs):
        self.lstm.set_state(enc_hs[:, -1])
        dec_hs = self.lstm.forward(self.embed.forward(xs))
        c = self.attention.forward(enc_hs, dec_hs)
        return self.affine.forward(np.concatenate((c, dec_hs), axis=2))

    def backward(self, dscore):
        dout = self.affine.backward(dscore)
        H = dout.shape[2] // 2
        dc, ddec_hs0 = dout[:, :, :H], dout[:, :, H:]
        denc_hs, ddec_hs1 = self.attention.backward(dc)
        dout = self.lstm.backward(ddec_hs0 + ddec_hs1)
        denc_hs[:, -1] += self.lstm.dh  # the encoder's last h also started the decoder
        self.embed.backward(dout)
        return denc_hs

    def generate(self, enc_hs, start_id, sample_size):
        sampled = []
        sample_id = start_id
        self.lstm.set_state(enc_hs[:, -1])
        for _ in range(sample_size):
            x = np.array([sample_id]).reshape((1, 1))
            dec_hs = self.lstm.forward(self.embed.forward(x))
            c = self.attention.forward(enc_hs, dec_hs)
            score = self.affine.forward(np.concatenate((c, dec_hs), axis=2))

            sample_id = np.argmax(score.flatten())
            sampled.append(sample_id)
        return sampled


class AttentionSeq2seq(Seq2seq):
    def __init__(self, vocab_size, wordvec_size, hidden_size):
        args = vocab_size, wordvec_size, hidden_size
        self.encoder = AttentionEncoder(*args)
        self.decoder = AttentionDecoder(*args)
        self.softmax = TimeSoftmaxWithLoss()

        self.params = self.encoder.params + self.decoder.params
        self.grads = self.encoder.grads + self.decoder.grads
