"""The data of a `fastlstm` command: Penn Treebank (fastlstm.dataset.ptb) or a text folder of one's
own (fastlstm.dataset.corpus), and the vocabulary a run keeps in its folder as vocab.txt, which
`fastlstm eval` and `fastlstm generate` read back.

--data names a PTB folder (ptb.train.txt, ...) or a text folder (train.txt, ...); without it PTB is
found as fastlstm.dataset.ptb says. PTB reads exactly as before: its checksums, the book's ids.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastlstm.dataset import corpus, ptb, vocabulary
from fastlstm.dataset.vocabulary import Vocabulary
from fastlstm.errors import UserError

SPLITS = corpus.SPLITS


@dataclass
class Data:
    """The token ids of each split ('train', 'valid', 'test': 1-D integer arrays) and their Vocabulary."""

    splits: dict
    vocab: Vocabulary
    name: str  # "PTB", or the text folder


def is_text(data_dir):
    """Whether --data names a text folder of one's own rather than PTB; DataNotFoundError when it holds
    neither, UserError when it holds both."""
    has_ptb = data_dir is not None and (Path(data_dir) / ptb.KEY_FILE["train"]).is_file()
    if not corpus.is_text_folder(data_dir):
        if data_dir is not None and not has_ptb:
            raise ptb.DataNotFoundError(f"{Path(data_dir) / ptb.KEY_FILE['train']} not found: --data {data_dir} must "
                                        "hold PTB's ptb.train.txt, ptb.valid.txt and ptb.test.txt, or your own "
                                        "train.txt, valid.txt and test.txt")
        return False
    if has_ptb:
        raise UserError(f"--data {data_dir} holds both ptb.train.txt and train.txt: keep PTB's files or your own "
                        "train.txt, valid.txt and test.txt, not both")
    return True


def load(data_dir, vocab_size=None):
    """The Data that `fastlstm train` trains on; vocab_size (a text folder only) limits the vocabulary."""
    if is_text(data_dir):
        found = corpus.load(data_dir, vocab_size)
        return Data(found.splits, found.vocab, str(data_dir))
    if vocab_size is not None:
        raise UserError(f"--vocab-size applies to a folder of your own text (train.txt, valid.txt, test.txt); "
                        f"PTB's vocabulary is the book's {len(ptb_vocab(data_dir)):,} words")
    splits = {}
    for split in SPLITS:
        splits[split], word_to_id, _ = ptb.load_data(split, data_dir)
    return Data(splits, Vocabulary(word_to_id, "PTB"), "PTB")


def ptb_vocab(data_dir):
    """PTB's Vocabulary (ids in order of first appearance in ptb.train.txt, as in the book)."""
    word_to_id, _ = ptb.load_vocab(data_dir)
    return Vocabulary(word_to_id, "PTB")


def run_vocab(params, vocab_file=None):
    """The Vocabulary of the run whose weights are `params`: vocab_file, else vocab.txt beside params;
    None when neither is there (weights saved by the book's code)."""
    path = Path(vocab_file) if vocab_file is not None else Path(params).parent / vocabulary.FILE
    if vocab_file is None and not path.is_file():
        return None
    try:
        vocab = vocabulary.read(path)
    except FileNotFoundError:
        raise UserError(f"--vocab {path}: no such file") from None
    if hashlib.sha256(vocabulary.text(vocab.words)).hexdigest() == ptb.VOCAB_SHA256:
        vocab.name = "PTB"
    return vocab


def vocab_for(params, vocab_file, data_dir):
    """The vocabulary that weights `params` were trained with: the run's (run_vocab), else PTB's.
    UserError for a text folder without a run's vocabulary."""
    vocab = run_vocab(params, vocab_file)
    if vocab is not None:
        return vocab
    if is_text(data_dir):
        raise UserError(f"no {vocabulary.FILE} beside {params}: name the vocabulary of the run that trained it "
                        "with --vocab FILE")
    return ptb_vocab(data_dir)


def split_ids(split, data_dir, vocab):
    """The token ids of one split of --data by `vocab` (a word outside it is <unk>). On PTB the book's
    ids, for which `vocab` must be PTB's."""
    if is_text(data_dir):
        return corpus.encode(corpus.text_files(data_dir)[split], vocab)
    ids, word_to_id, _ = ptb.load_data(split, data_dir)
    if vocab.words != list(word_to_id):
        raise UserError(f"{vocab.name} is not PTB's vocabulary: evaluate these weights on the text they were "
                        "trained on (--data)")
    return ids
