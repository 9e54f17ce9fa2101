"""The book's word-vector queries (`common.util`, chapters 2 to 4): cosine similarity, the
most similar words, analogies, row normalisation. They print as the book's do, and also
return what they print."""

import numpy as np


def cos_similarity(x, y, eps=1e-8):
    """Cosine similarity of the vectors x and y; eps keeps a zero vector from dividing by zero."""
    nx = x / (np.sqrt(np.sum(x ** 2)) + eps)
    ny = y / (np.sqrt(np.sum(y ** 2)) + eps)
    return np.dot(nx, ny)


def _ranked(similarity, id_to_word, skip, top):
    """[(word, similarity)] of the `top` most similar words, NaNs and the words in `skip` left out."""
    found = []
    for i in (-1 * similarity).argsort():
        if np.isnan(similarity[i]) or id_to_word[i] in skip:
            continue
        found.append((id_to_word[i], similarity[i]))
        if len(found) >= top:
            break
    return found


def _missing(words, word_to_id):
    """The first of words not in the vocabulary, printed as the book does; None when all are in it."""
    for word in words:
        if word not in word_to_id:
            print('%s is not found' % word)
            return word
    return None


def most_similar(query, word_to_id, id_to_word, word_matrix, top=5):
    """Print the `top` words whose rows of word_matrix are closest to query's by cosine
    similarity, and return them as [(word, similarity)] (None, after a message, for a word
    not in the vocabulary)."""
    if _missing([query], word_to_id):
        return None
    print('\n[query] ' + query)
    word_matrix = np.asarray(word_matrix)
    query_vec = word_matrix[word_to_id[query]]
    vocab_size = len(id_to_word)
    if len(word_matrix) < vocab_size:
        raise ValueError(f"word_matrix has {len(word_matrix)} rows for a vocabulary of {vocab_size} words")
    rows = word_matrix[:vocab_size]
    # cos_similarity of every row with the query, bit for bit: the rows scaled at once, then
    # one dot product per row (a matrix-vector product would round otherwise, and reorder ties)
    unit_rows = rows / (np.sqrt(np.sum(rows ** 2, axis=1, keepdims=True)) + 1e-8)
    unit_query = query_vec / (np.sqrt(np.sum(query_vec ** 2)) + 1e-8)
    similarity = np.array([np.dot(row, unit_query) for row in unit_rows], dtype=np.float64)
    found = _ranked(similarity, id_to_word, (query,), top)
    for word, sim in found:
        print(' %s: %s' % (word, sim))
    return found


def analogy(a, b, c, word_to_id, id_to_word, word_matrix, top=5, answer=None):
    """Print the `top` words closest to b - a + c ("a is to b as c is to ?"), leaving out a, b
    and c, and return them as [(word, similarity)]; with `answer`, first print its score."""
    if _missing((a, b, c), word_to_id):
        return None
    print('\n[analogy] ' + a + ':' + b + ' = ' + c + ':?')
    word_matrix = np.asarray(word_matrix)
    a_vec, b_vec, c_vec = (word_matrix[word_to_id[w]] for w in (a, b, c))
    query_vec = normalize(b_vec - a_vec + c_vec)
    similarity = np.dot(word_matrix, query_vec)
    if answer is not None:
        print("==>" + answer + ":" + str(np.dot(word_matrix[word_to_id[answer]], query_vec)))
    found = _ranked(similarity, id_to_word, (a, b, c), top)
    for word, sim in found:
        print(' {0}: {1}'.format(word, sim))
    return found


def normalize(x):
    """x scaled in place to unit length: a vector (1-D), or every row of a matrix (2-D); returns x."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"normalize takes a float array, scaled in place; got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 2:
        s = np.sqrt((x * x).sum(1))
        x /= s.reshape((s.shape[0], 1))
    elif x.ndim == 1:
        s = np.sqrt((x * x).sum())
        x /= s
    else:
        raise ValueError(f"normalize takes a vector or a matrix, got shape {x.shape}")
    return x
