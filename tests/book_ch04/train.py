# coding: utf-8
# Train CBOW (or skip-gram) word vectors on PTB and keep them in cbow_params.pkl (chapter 4).
import sys
sys.path.append('..')
from fastlstm import config
# to run on a GPU, set it here:
# config.GPU = True
from fastlstm.np import *
import pickle
from fastlstm.trainer import Trainer
from fastlstm.optimizer import Adam
from cbow import CBOW
from skip_gram import SkipGram
from fastlstm.util import create_contexts_target, to_cpu, to_gpu
from fastlstm.dataset import ptb


# settings
window_size = 5
hidden_size = 100
batch_size = 100
max_epoch = 10

# data
corpus, word_to_id, id_to_word = ptb.load_data('train')
vocab_size = len(word_to_id)
contexts, target = create_contexts_target(corpus, window_size)
if config.GPU:
    contexts, target = to_gpu(contexts), to_gpu(target)

# model, optimizer, trainer
model = CBOW(vocab_size, hidden_size, window_size, corpus)
# model = SkipGram(vocab_size, hidden_size, window_size, corpus)
optimizer = Adam()
trainer = Trainer(model, optimizer)

trainer.fit(contexts, target, max_epoch, batch_size)
trainer.plot()

# keep the word vectors and the vocabulary for eval.py
word_vecs = model.word_vecs
if config.GPU:
    word_vecs = to_cpu(word_vecs)
params = {}
params['word_vecs'] = word_vecs.astype(np.float16)
params['word_to_id'] = word_to_id
params['id_to_word'] = id_to_word
pkl_file = 'cbow_params.pkl'  # or 'skipgram_params.pkl'
with open(pkl_file, 'wb') as f:
    pickle.dump(params, f, -1)
