# coding: utf-8
import sys
sys.path.append('..')
from fastlstm.optimizer import SGD
from fastlstm.trainer import RnnlmTrainer
from fastlstm.util import eval_perplexity
from fastlstm.dataset import ptb
from rnnlm import Rnnlm


# hyperparameters
batch_size = 20
wordvec_size = 100
hidden_size = 100  # number of elements of the RNN's hidden state vector
time_size = 35  # size over which the RNN is unrolled
lr = 20.0
max_epoch = 4
max_grad = 0.25

# load the training data
corpus, word_to_id, id_to_word = ptb.load_data('train')
corpus_test, _, _ = ptb.load_data('test')
vocab_size = len(word_to_id)
xs = corpus[:-1]
ts = corpus[1:]

# build the model
model = Rnnlm(vocab_size, wordvec_size, hidden_size)
optimizer = SGD(lr)
trainer = RnnlmTrainer(model, optimizer)

# train with gradient clipping
trainer.fit(xs, ts, max_epoch, batch_size, time_size, max_grad,
            eval_interval=20)
trainer.plot(ylim=(0, 500))

# evaluate on the test data
model.reset_state()
ppl_test = eval_perplexity(model, corpus_test)
print('test perplexity: ', ppl_test)

# save the parameters
model.save_params()
