"""fastlstm.generate's sampling: np.random.choice's draw to the index, its errors, and the
book's generation loop's words."""

import numpy as np
import pytest

from fastlstm import models
from fastlstm.functions import softmax
from fastlstm.generate import choice, generate

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_choice_draws_as_numpy(dtype):
    """The same index, dtype and shape, and the generator left in the same state."""
    rng = np.random.default_rng(13)
    for trial in range(60):
        n = int(rng.integers(1, 3000))
        p = softmax((rng.standard_normal(n) * rng.uniform(0.1, 30)).astype(dtype))
        np.random.seed(trial)
        want = np.random.choice(len(p), size=1, p=p)
        state = np.random.get_state()[1].copy()
        np.random.seed(trial)
        got = choice(p)
        assert got.dtype == want.dtype and got.shape == want.shape and got[0] == want[0]
        np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("p", [[0.5, 0.6], [1.2, -0.2], [np.nan, 1.0], [], [[0.5, 0.5]]])
def test_choice_refuses_what_numpy_refuses_without_drawing(p):
    p = np.asarray(p, dtype=np.float64)
    np.random.seed(1)
    with pytest.raises(ValueError) as expected:
        np.random.choice(len(p), size=1, p=p)
    np.random.seed(1)
    with pytest.raises(ValueError) as got:
        choice(p)
    assert str(got.value) == str(expected.value)
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    with pytest.raises(ValueError):
        choice(p)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_generate_writes_the_book_loops_words():
    """fastlstm's generate against the book's loop (softmax, then np.random.choice) on the same model."""
    np.random.seed(4)
    model = models.RnnlmGen(vocab_size=50, wordvec_size=8, hidden_size=9)
    for p in model.params:
        p *= 20  # a peaked distribution, so that a wrong draw shows
    state = model.get_state()
    np.random.seed(7)
    words = model.generate(3, skip_ids=[5, 6], sample_size=60)
    model.set_state(state)
    np.random.seed(7)
    book = [3]
    x = 3
    while len(book) < 60:
        sampled = np.random.choice(50, size=1, p=softmax(model.predict(np.array(x).reshape(1, 1)).flatten()))
        if sampled[0] not in (5, 6):
            x = sampled
            book.append(int(sampled[0]))
    assert words == book and not {5, 6} & set(words[1:])
    assert generate(model, 3, sample_size=1) == [3]
