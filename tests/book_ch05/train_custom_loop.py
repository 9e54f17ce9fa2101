# coding: utf-8
import sys
sys.path.append('..')
import matplotlib.pyplot as plt
import numpy as np
from fastlstm.optimizer import SGD
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
data_size = len(xs)
print('corpus size: %d, vocabulary size: %d' % (len(corpus), vocab_size))

model = SimpleRnnlm(vocab_size, wordvec_size, hidden_size)
optimizer = SGD(lr)

# row i of every batch reads the stream from its own offset on, so that the hidden
# state carried from one batch to the next continues the same text
iters_per_epoch = data_size // (batch_size * time_size)
jump = data_size // batch_size
offsets = [i * jump for i in range(batch_size)]
time_idx = 0
ppl_list = []

for epoch in range(max_epoch):
    total_loss, loss_count = 0, 0
    for it in range(iters_per_epoch):
        batch_x = np.empty((batch_size, time_size), dtype='i')
        batch_t = np.empty((batch_size, time_size), dtype='i')
        for t in range(time_size):
            for i, offset in enumerate(offsets):
                batch_x[i, t] = xs[(offset + time_idx) % data_size]
                batch_t[i, t] = ts[(offset + time_idx) % data_size]
            time_idx += 1

        loss = model.forward(batch_x, batch_t)
        model.backward()
        optimizer.update(model.params, model.grads)
        total_loss += loss
        loss_count += 1

    # the epoch's perplexity
    ppl = np.exp(total_loss / loss_count)
    print('| epoch %d | perplexity %.2f' % (epoch + 1, ppl))
    ppl_list.append(float(ppl))

x = np.arange(len(ppl_list))
plt.plot(x, ppl_list, label='train')
plt.xlabel('epochs')
plt.ylabel('perplexity')
plt.show()
