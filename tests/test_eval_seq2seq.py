"""eval_seq2seq: the book's exact-match check of one generated answer, and its printout."""

import numpy as np
import pytest

from fastlstm.util import eval_seq2seq

ID_TO_CHAR = dict(enumerate("0123456789+_ "))
CHAR_TO_ID = {c: i for i, c in ID_TO_CHAR.items()}


class Answering:
    """A model whose generate answers with fixed ids, recording how it was called."""

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def generate(self, question, start_id, sample_size):
        self.calls.append((question.copy(), start_id, sample_size))
        return list(self.answer)


def ids(text):
    return np.array([[CHAR_TO_ID[c] for c in text]])


def test_right_and_wrong_answers(capsys):
    question, correct = ids("12+34  "), ids("_46  ")
    model = Answering(ids("46  ")[0])
    assert eval_seq2seq(model, question, correct, ID_TO_CHAR) == 1
    (q, start_id, size), = model.calls
    assert start_id == CHAR_TO_ID["_"] and size == 4 and (q == question).all()
    assert capsys.readouterr().out == ""

    wrong = Answering(ids("47  ")[0])
    assert eval_seq2seq(wrong, question[:, ::-1], correct, ID_TO_CHAR, verbos=True, is_reverse=True) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Q 12+34  " and out[1] == "T 46  "  # the question read back in its own order
    assert out[2].endswith("47  ") and "\u2612" in out[2] and out[3] == "---"


def test_numpy_ids_from_generate_and_a_short_answer():
    model = Answering([np.int64(4), np.intp(6)])
    assert eval_seq2seq(model, ids("1+3"), ids("_46"), ID_TO_CHAR, verbos=False) == 1
    with pytest.raises(ValueError, match="start symbol and at least one character"):
        eval_seq2seq(model, ids("1+3"), ids("_"), ID_TO_CHAR)
