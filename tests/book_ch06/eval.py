# coding: utf-8
import sys
sys.path.append('..')
from rnnlm import Rnnlm
from better_rnnlm import BetterRnnlm
from fastlstm.dataset import ptb
from fastlstm.util import eval_perplexity


if __name__ == '__main__':
    model = Rnnlm()
    # model = BetterRnnlm()

    # load the trained parameters
    model.load_params()

    corpus, _, _ = ptb.load_data('test')

    model.reset_state()
    ppl_test = eval_perplexity(model, corpus)
    print('test perplexity: ', ppl_test)
