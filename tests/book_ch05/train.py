# coding: utf-8
import sys
sys.path.append('..')
from fastlstm.optimizer import SGD
from fastlstm.trainer import RnnlmTrainer
from fastlstm.dataset import ptb
from simple_rnnlm import SimpleRnnlm


# the chapter's settings
batch_size = 10
wordvec_size = 100
hidden_size = 100
time_size = 5  # steps that truncated BPTT unrolls at a time
lr = 0.1
max_epoch = 100

# a small corpus: the first 1000 words of the training split
corpus, word_to_id, id_to_word = ptb.load_data('train')
corpus = corpus[:1000]
vocab_size = int(max(corpus) + 1)
xs = corpus[:-1]  # inputs
ts = corpus[1:]  # targets: each next word

model = SimpleRnnlm(vocab_size, wordvec_size, hidden_size)
trainer = RnnlmTrainer(model, SGD(lr))
trainer.fit(xs, ts, max_epoch, batch_size, time_size)
trainer.plot()
