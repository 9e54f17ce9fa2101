"""Text folders of one's own (fastlstm.dataset.corpus, tokens, vocabulary; fastlstm.run_data): the
tokens and vocabulary against a plain Python reference, the cache (reused, rebuilt when the text
changes or the cache is damaged, moved to the user cache when the folder cannot be written), and the
`fastlstm` command on such a folder, bad input included."""

import os
import shutil
import tracemalloc
from collections import Counter

import numpy as np
import pytest

import fastlstm
from fastlstm import cli, files, run_data
from fastlstm.checkpoint import Checkpoint
from fastlstm.dataset import corpus, ptb, tokens, vocabulary
from fastlstm.dataset.corpus import CACHE
from generated_text import write_corpus

UNK, EOS = "<unk>", "<eos>"
SMALL = ["--threads", "1", "--wordvec-size", "16", "--hidden-size", "16", "--batch-size", "4", "--time-size", "8",
         "--eval-iters", "1", "--eval-interval", "4", "--seed", "3"]


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """The user cache, inside tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "fastlstm"


@pytest.fixture(autouse=True, scope="module")
def restore_threads():
    """--threads 1 sets the thread count of the whole test process: put it back afterwards."""
    threads = fastlstm.get_num_threads()
    yield
    fastlstm.set_num_threads(threads)


def reference_tokens(path):
    """PTB's convention written plainly: each line's words, then '<eos>'."""
    with open(path, encoding="utf-8") as f:
        return [token for line in f for token in (*line.split(), EOS)]


def reference_vocab(train, size=None):
    """<unk> and the size - 1 most frequent other words, most frequent first (ties: the first seen),
    <unk> where its own count ranks it, last when train lacks it."""
    ranked = [word for word, _ in Counter(train).most_common()]  # equal counts in the order first seen
    others = [word for word in ranked if word != UNK]
    size = size or len(others) + 1
    kept = set(others[:size - 1]) | {UNK}
    return [word for word in ranked if word in kept] + ([] if UNK in ranked else [UNK])


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A generated corpus of a few million tokens, and its tokens read by the reference."""
    folder = write_corpus(tmp_path_factory.mktemp("big"), {"train": 3_000_000, "valid": 150_000, "test": 150_000})
    return folder, {split: reference_tokens(folder / f"{split}.txt") for split in corpus.SPLITS}


@pytest.mark.parametrize("size", [None, 5000])
def test_ids_and_vocabulary_match_a_plain_python_reference(big, size, capsys):
    folder, text = big
    built = corpus.load(folder, size)
    words = reference_vocab(text["train"], size)
    assert built.vocab.words == words
    assert (built.cache / "vocab.txt").read_text().split("\n")[:-1] == words
    word_to_id = {word: i for i, word in enumerate(words)}
    for split in corpus.SPLITS:
        ids = built.splits[split]
        assert isinstance(ids, np.memmap) and ids.dtype == np.int32 and not ids.flags.writeable
        expected = np.array([word_to_id.get(token, word_to_id[UNK]) for token in text[split]], np.int32)
        np.testing.assert_array_equal(ids, expected)
    assert built.cache == folder / CACHE / f"vocab-{size or 'all'}"
    err = capsys.readouterr().err
    for what in ("counting the words of", "writing the token ids of"):
        assert f"{what} {folder / 'train.txt'}: 100%, {len(text['train']):,} tokens, " in err
    assert "M tokens/s" in err


def test_the_ranking_rules():
    counts = Counter("b a c a b <eos> d <eos>".split())  # a, b and <eos> twice: the first seen first
    assert vocabulary.from_counts(counts) == ["b", "a", "<eos>", "c", "d", UNK]
    assert vocabulary.from_counts(counts, 6) == ["b", "a", "<eos>", "c", "d", UNK]
    assert vocabulary.from_counts(counts, 3) == ["b", "a", UNK]
    with_unk = Counter("x <unk> y <unk> x <unk> z".split())
    assert vocabulary.from_counts(with_unk) == [UNK, "x", "y", "z"]  # <unk> at its own count's rank
    assert vocabulary.from_counts(with_unk, 2) == [UNK, "x"]
    rare_unk = Counter("x x y y <unk> z z".split())
    assert vocabulary.from_counts(rare_unk, 3) == ["x", "y", UNK]
    with pytest.raises(ValueError, match="--vocab-size 7 is larger than the vocabulary of the training text: 6 words, "
                                         "<unk> included"):
        vocabulary.from_counts(counts, 7)
    with pytest.raises(ValueError, match="at least 2"):
        vocabulary.from_counts(counts, 1)


def test_tokens_follow_ptb_convention(tmp_path, monkeypatch):
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbfa b\r\n\n  c\td  \ne\xc3\xa9")  # BOM, CRLF, an empty line, no final newline
    expected = ["a", "b", EOS, EOS, "c", "d", EOS, "eé", EOS]
    assert [t for block in tokens.blocks(path) for t in block] == expected
    monkeypatch.setattr(tokens, "BLOCK", 3)  # lines longer than a block are carried over whole
    assert [t for block in tokens.blocks(path) for t in block] == expected
    path.write_bytes(b"a b\n   ")  # a last line without a word ends without <eos>
    assert [t for block in tokens.blocks(path) for t in block] == ["a", "b", EOS]


def test_a_line_without_end_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tokens, "BLOCK", 4)
    monkeypatch.setattr(tokens, "LONGEST_LINE", 10)
    path = tmp_path / "t.txt"
    path.write_text("a b\nc d\n" + "x" * 20 + "\n")
    with pytest.raises(tokens.TextError, match=f"{path}: line 3 runs over 10 bytes without a line break"):
        list(tokens.blocks(path))


def test_ptb_reads_as_the_book_reads_it(ptb_dir):
    for name in ptb.SHA256:
        book = ptb._words(ptb_dir / name)
        assert [t for block in tokens.blocks(ptb_dir / name) for t in block] == book


def test_building_holds_neither_the_text_nor_the_ids_whole(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "data", {"train": 300_000, "valid": 3_000, "test": 3_000}, words=1000)
    monkeypatch.setattr(tokens, "BLOCK", 1 << 12)  # blocks far smaller than the text, so that what
    monkeypatch.setattr(files, "_READ", 1 << 12)  # grows with the text stands out
    text_bytes, id_bytes = (folder / "train.txt").stat().st_size, 4 * 300_000
    tracemalloc.start()
    try:
        built = corpus.load(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(built.splits["train"]) > 300_000
    assert peak < min(text_bytes, id_bytes) / 2, (peak, text_bytes, id_bytes)


# ------------------------------------------------------------------------------------ the cache

@pytest.fixture
def small(tmp_path):
    return write_corpus(tmp_path / "small", {"train": 20_000, "valid": 2_000, "test": 2_000}, words=500)


def _ids(found):
    return {split: np.array(ids) for split, ids in found.splits.items()}


def test_the_cache_is_reused_and_built_again_when_a_file_changes(small, monkeypatch, capsys):
    first = corpus.load(small, 300)
    entry = first.cache
    stamps = {p.name: p.stat().st_mtime_ns for p in entry.iterdir()}
    capsys.readouterr()
    build = corpus._build
    monkeypatch.setattr(corpus, "_build", lambda *args: pytest.fail("built again"))
    again = corpus.load(small, 300)
    assert capsys.readouterr().err == ""
    assert {p.name: p.stat().st_mtime_ns for p in entry.iterdir()} == stamps
    for split, ids in _ids(first).items():
        np.testing.assert_array_equal(again.splits[split], ids)

    monkeypatch.setattr(corpus, "_build", build)
    with open(small / "test.txt", "a") as f:
        f.write("w1 w2 w3\n")
    changed = corpus.load(small, 300)
    err = capsys.readouterr().err
    assert f"{entry} is not used: the text changed since it was built" in err and "building the token ids" in err
    assert list(changed.splits["test"][-4:]) == [changed.vocab.ids[w] for w in ("w1", "w2", "w3", EOS)]
    assert len(changed.splits["test"]) == len(first.splits["test"]) + 4


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated ids": lambda e: (e / "train.npy").write_bytes((e / "train.npy").read_bytes()[:-100]),
    "a byte of an id changed": lambda e: _flip_last_byte(e / "valid.npy"),
    "ids of another dtype": lambda e: np.save(e / "test.npy", np.load(e / "test.npy").astype(np.int64)),
    "an object array": lambda e: np.save(e / "test.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True),
    "an empty file": lambda e: (e / "train.npy").write_bytes(b""),
    "the vocabulary edited": lambda e: (e / "vocab.txt").write_text("a\nb\n"),
    "a manifest of garbage": lambda e: (e / "manifest.json").write_bytes(b"\x00\xff{"),
    "a manifest of another kind": lambda e: (e / "manifest.json").write_text('{"format": "other"}'),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_cache_is_built_again(small, damage, capsys):
    good = corpus.load(small)
    expected = _ids(good)
    DAMAGE[damage](good.cache)
    capsys.readouterr()
    again = corpus.load(small)
    err = capsys.readouterr().err
    assert f"{good.cache} is not used: " in err and "building the token ids" in err, err
    for split, ids in expected.items():
        np.testing.assert_array_equal(again.splits[split], ids)
    assert again.vocab.words == good.vocab.words


def test_a_missing_manifest_is_built_again_silently(small, capsys):
    good = corpus.load(small)
    (good.cache / "manifest.json").unlink()
    capsys.readouterr()
    corpus.load(small)
    err = capsys.readouterr().err
    assert "is not used" not in err and "building the token ids" in err


def test_text_that_changes_while_the_cache_is_built_is_refused(small, monkeypatch):
    monkeypatch.setattr(corpus, "sha256_of", lambda path: "0" * 64)  # as if the text was other when hashed
    with pytest.raises(corpus.CorpusError, match=f"{small / 'train.txt'} changed while it was read; try again"):
        corpus.load(small)
    assert not (small / CACHE / "vocab-all" / "manifest.json").exists()


def test_a_folder_that_cannot_be_written_caches_in_the_user_cache(small, user_cache, capsys):
    (small / CACHE).write_text("in the way")  # the cache folder cannot be made (as root, mode bits stop nothing)
    found = corpus.load(small)
    err = capsys.readouterr().err
    assert f"cannot write in {small / CACHE}" in err and f"the token ids are cached in {found.cache}" in err
    assert found.cache.parent.parent == user_cache / "corpora"
    again = corpus.load(small)
    assert again.cache == found.cache and "building" not in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_caches_in_the_user_cache(small, user_cache, capsys):
    small.chmod(0o555)
    try:
        found = corpus.load(small)
    finally:
        small.chmod(0o755)
    assert found.cache.parent.parent == user_cache / "corpora" and "Permission denied" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the command

def train(out, *flags):
    return cli.main(["train", "--out", str(out), *SMALL, *flags])


def one_line_error(capsys, message):
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1, err
    return err


def test_train_eval_generate_and_resume_on_a_text_folder(small, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--data", str(small), "--vocab-size", "300", "--max-iters", "6", "--save-every", "3") == 0
    built = corpus.load(small, 300)
    assert (out / "vocab.txt").read_text() == (built.cache / "vocab.txt").read_text()
    output = capsys.readouterr().out
    assert "Rnnlm: vocabulary 300" in output
    logged = float(output.rsplit("test perplexity: ", 1)[1].split()[0])

    assert cli.main(["eval", "--data", str(small), "--params", str(out / "best.pkl"), "--eval-iters", "1"]) == 0
    assert f"test perplexity: {logged:.2f}" in capsys.readouterr().out  # the run's ids, from its vocab.txt
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(out / "best.pkl", elsewhere / "best.pkl")
    assert cli.main(["eval", "--data", str(small), "--params", str(elsewhere / "best.pkl"), "--vocab",
                     str(out / "vocab.txt"), "--eval-iters", "1"]) == 0
    assert f"test perplexity: {logged:.2f}" in capsys.readouterr().out

    assert cli.main(["generate", "--params", str(out / "best.pkl"), "--start", "w1", "--length", "20", "--seed", "1"]) == 0
    words = capsys.readouterr().out.replace(".\n", f" {EOS} ").split()
    assert len(words) == 20 and words[0] == "w1" and set(words) <= set(built.vocab.words) - {UNK}

    assert cli.main(["train", "--out", str(out), "--data", str(small), "--resume", "--max-iters", "8"]) == 0
    assert "resuming" in capsys.readouterr().out


@pytest.mark.parametrize("model,name", [("variational", "VariationalRnnlm"), ("awd", "AwdRnnlm")])
def test_the_regularised_models_train_evaluate_and_resume_on_a_text_folder(small, tmp_path, model, name, capsys):
    out = tmp_path / "run"
    assert train(out, "--model", model, "--data", str(small), "--vocab-size", "300", "--max-iters", "4") == 0
    assert (out / "vocab.txt").read_text() == (corpus.load(small, 300).cache / "vocab.txt").read_text()
    output = capsys.readouterr().out
    assert f"{name}: vocabulary 300" in output
    logged = float(output.rsplit("test perplexity: ", 1)[1].split()[0])
    for params in ("best.pkl", "checkpoint.npz"):  # the checkpoint holds ASGD's state for awd
        assert cli.main(["eval", "--data", str(small), "--params", str(out / params), "--model", model,
                         "--eval-iters", "1"]) == 0
        printed = capsys.readouterr().out
        assert f"{name} (V=300, D=16, H=16" in printed
        if params == "best.pkl":  # the weights the run tested, their ids read by its vocab.txt
            assert f"test perplexity: {logged:.2f}" in printed
    assert cli.main(["generate", "--params", str(out / "best.pkl"), "--model", model, "--start", "w1",
                     "--length", "10", "--seed", "1"]) == 0
    words = capsys.readouterr().out.replace(".\n", f" {EOS} ").split()
    assert len(words) == 10 and words[0] == "w1" and set(words) <= set(corpus.load(small, 300).vocab.words) - {UNK}
    assert cli.main(["train", "--out", str(out), "--data", str(small), "--resume", "--max-iters", "6"]) == 0
    saved = Checkpoint.read(out / "checkpoint.npz")
    assert saved.position.total_iterations == 6 and saved.config["vocab_size"] == 300


def test_resuming_on_other_text_is_refused(small, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--data", str(small), "--max-iters", "2") == 0
    other = write_corpus(tmp_path / "other", {"train": 20_000, "valid": 2_000, "test": 2_000}, words=500, seed=7)
    capsys.readouterr()
    assert cli.main(["train", "--out", str(out), "--data", str(other), "--resume"]) == 1
    one_line_error(capsys, f"{out / 'vocab.txt'} is not the vocabulary of {other}")
    assert cli.main(["train", "--out", str(out), "--data", str(small), "--resume", "--vocab-size", "50"]) == 1
    one_line_error(capsys, "--vocab-size 50 differs from the checkpoint's None")


def _files(folder, **texts):
    folder.mkdir()
    for name, data in texts.items():
        (folder / f"{name}.txt").write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


LINES = "".join(f"w{i % 7} w{i % 5} w{i % 3}\n" for i in range(200))  # 800 tokens


@pytest.mark.parametrize("texts,flags,status,message", [
    (dict(train=LINES, valid=LINES), [], 1, "test.txt not found: a text folder holds train.txt, valid.txt and test.txt"),
    (dict(train="", valid=LINES, test=LINES), [], 1, "train.txt holds no words"),
    (dict(train="\n\n\n", valid=LINES, test=LINES), [], 1, "train.txt holds no words (only empty lines)"),
    (dict(train=LINES, valid=LINES, test=LINES), ["--vocab-size", "0"], 2, "--vocab-size: must be > 1, got 0"),
    (dict(train=LINES, valid=LINES, test=LINES), ["--vocab-size", "1"], 2, "--vocab-size: must be > 1, got 1"),
    (dict(train=LINES, valid=LINES, test=LINES), ["--vocab-size", "100"], 1,
     "--vocab-size 100 is larger than the vocabulary of the training text: 9 words, <unk> included"),
    (dict(train=LINES + "\x00\x01\x02 binary\n", valid=LINES, test=LINES), [], 1,
     "train.txt: a NUL byte on line 201: a binary file, not text"),
    (dict(train=np.random.default_rng(0).bytes(4096).replace(b"\x00", b"\x01"), valid=LINES, test=LINES), [], 1,
     "train.txt: not UTF-8 text: byte 0x"),
    (dict(train=LINES, valid=LINES + "caf\u00e9\n".encode("latin-1").decode("latin-1"), test=LINES), [], 0, ""),
    (dict(train=LINES, valid=LINES.encode() + "caf\u00e9\n".encode("latin-1"), test=LINES), [], 1,
     "valid.txt: not UTF-8 text: byte 0xe9 on line 201; convert the file to UTF-8"),
    (dict(train=LINES, valid="w1 w2\n", test=LINES), [], 1,
     "the valid split of {data} holds 3 tokens; evaluating needs at least 351"),
    (dict(train=LINES, valid=LINES, test=LINES, **{"ptb.train": LINES}), [], 1, "holds both ptb.train.txt and train.txt"),
])
def test_bad_text_is_refused_in_one_line_before_anything_is_written(tmp_path, texts, flags, status, message, capsys):
    data, out = _files(tmp_path / "data", **texts), tmp_path / "out"
    try:
        code = train(out, "--data", str(data), "--max-iters", "1", *flags)
    except SystemExit as e:  # argparse: usage and the error on stderr
        code = e.code
    assert code == status
    if status:
        one_line_error(capsys, message.format(data=data))
        assert not out.exists()


def test_vocab_size_is_for_text_folders_only(ptb_dir, tmp_path, capsys):
    assert train(tmp_path / "out", "--data", str(ptb_dir), "--vocab-size", "500") == 1
    one_line_error(capsys, "--vocab-size applies to a folder of your own text (train.txt, valid.txt, test.txt); "
                           "PTB's vocabulary is the book's 10,000 words")
    assert not (tmp_path / "out").exists()
    assert train(tmp_path / "out", "--data", str(tmp_path)) == 1
    one_line_error(capsys, f"{tmp_path / 'ptb.train.txt'} not found: --data {tmp_path} must hold PTB's ptb.train.txt, "
                           "ptb.valid.txt and ptb.test.txt, or your own train.txt, valid.txt and test.txt")


def test_eval_and_generate_refuse_a_vocabulary_they_cannot_use(small, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--data", str(small), "--vocab-size", "300", "--max-iters", "2") == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "best.pkl", alone / "best.pkl")
    capsys.readouterr()
    assert cli.main(["eval", "--data", str(small), "--params", str(alone / "best.pkl")]) == 1
    one_line_error(capsys, f"no vocab.txt beside {alone / 'best.pkl'}: name the vocabulary of the run that trained it "
                           "with --vocab FILE")
    assert cli.main(["eval", "--params", str(out / "best.pkl")]) == 1  # on PTB, without --data
    one_line_error(capsys, f"{out / 'vocab.txt'} is not PTB's vocabulary")
    assert cli.main(["eval", "--params", str(alone / "best.pkl"), "--vocab", str(tmp_path / "none.txt")]) == 1
    one_line_error(capsys, f"--vocab {tmp_path / 'none.txt'}: no such file")
    bad = {"twice.txt": "a\nb\na\n", "empty-line.txt": "a\n\nb\n", "two-words.txt": "a b\n", "binary.txt": b"a\n\x00\n",
           "latin-1.txt": "caf\u00e9\n".encode("latin-1"), "short.txt": "a\nb\n"}
    messages = {"twice.txt": "'a' is there twice", "empty-line.txt": "line 2 is empty", "two-words.txt": "line 1 is not one word",
                "binary.txt": "a NUL byte on line 2", "latin-1.txt": "not UTF-8 text",
                "short.txt": "has a vocabulary of 300 words, but"}
    no_unk = (out / "vocab.txt").read_text().replace(f"{UNK}\n", "zzz\n")
    bad["no-unk.txt"], messages["no-unk.txt"] = no_unk, "which has no <unk>"
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data.encode() if isinstance(data, str) else data)
        for command in (["eval", "--data", str(small)], ["generate", "--start", "a"]):
            argv = [*command, "--params", str(alone / "best.pkl"), "--vocab", str(tmp_path / name)]
            if name == "no-unk.txt" and command[0] == "generate":
                continue  # generating needs no word outside the vocabulary
            assert cli.main(argv) == 1, (name, command)
            one_line_error(capsys, messages[name])
    short = tmp_path / "short"
    shutil.copytree(small, short, ignore=shutil.ignore_patterns(CACHE))
    (short / "test.txt").write_text("w1 w2\n")
    assert cli.main(["eval", "--data", str(short), "--params", str(out / "best.pkl")]) == 1
    one_line_error(capsys, "the test split holds 3 tokens; evaluating needs at least 351")


def test_a_runs_vocab_txt_of_ptbs_words_is_ptbs(ptb_dir, tmp_path):
    vocabulary.write(tmp_path / "vocab.txt", ptb.load_vocab(ptb_dir)[0])
    assert run_data.run_vocab(tmp_path / "best.pkl").name == "PTB"
    vocabulary.write(tmp_path / "vocab.txt", list(ptb.load_vocab(ptb_dir)[0])[::-1])
    assert run_data.run_vocab(tmp_path / "best.pkl").name == str(tmp_path / "vocab.txt")
