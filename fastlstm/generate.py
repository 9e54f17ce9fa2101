"""Text generation as the book's chapter 7 RnnlmGen does it: feed one word id at a time to a
stateful model, sample the next from softmax(score), skip the words the book skips."""

import difflib
import functools

import numpy as np

from fastlstm.functions import softmax
from fastlstm.kernels.sampling import choice_cdf, search_normalized

SKIP_WORDS = ("N", "<unk>", "$")  # the book's generate_text.py skips these


def generate(model, start_id, skip_ids=None, sample_size=100):
    """sample_size word ids, start_id first, each next one drawn as np.random.choice draws it from
    the model's softmax (choice). A skipped draw feeds the previous input again (the book's loop,
    kept as is)."""
    word_ids = [start_id]
    x = start_id
    while len(word_ids) < sample_size:
        x = np.array(x).reshape(1, 1)
        score = model.predict(x)
        p = softmax(score.flatten())
        sampled = choice(p)
        if (skip_ids is None) or (sampled[0] not in skip_ids):
            x = sampled
            word_ids.append(int(sampled[0]))
    return word_ids


def choice(p):
    """np.random.choice(len(p), size=1, p=p) for a 1-D p: the same draw from NumPy's global
    generator, the same index and the same errors, with the cdf made in one compiled pass
    (kernels/sampling.py)."""
    p = np.asarray(p)
    cdf = np.empty(p.shape[0] if p.ndim == 1 else 0)
    if p.ndim != 1 or p.dtype.kind != "f" or not choice_cdf(p, _choice_atol(p.dtype), cdf):
        return np.random.choice(len(p), size=1, p=p)  # raises NumPy's error (or draws, as NumPy would)
    u = np.random.random_sample((1,))
    return np.array([search_normalized(cdf, u[0])], dtype=np.intp)


@functools.lru_cache(maxsize=None)
def _choice_atol(dtype):
    """The tolerance within which NumPy's choice wants the probabilities to sum to 1."""
    return max(np.sqrt(np.finfo(np.float64).eps), np.sqrt(np.finfo(dtype).eps))


def to_text(word_ids, id_to_word):
    """The words joined by spaces, each '<eos>' turned into a full stop and a line break, as the book prints them."""
    return ' '.join(id_to_word[i] for i in word_ids).replace(' <eos>', '.\n')


def close_words(word, word_to_id, n=5):
    """Up to n vocabulary words spelled like word, for an 'unknown word' message."""
    return difflib.get_close_matches(word, list(word_to_id), n=n)
