"""fastlstm.dataset.ptb: the book's corpus and vocabulary, where files are found, checksums, download.

No test reaches the network or the real ~/.cache: the cache lies in tmp_path and downloads
come from a local HTTP server.
"""

import http.server
import re
import shutil
import socket
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from fastlstm.dataset import ptb

NAMES = list(ptb.SHA256)
COUNTS = {"train": 929_589, "valid": 73_760, "test": 82_430}


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """The user cache folder, inside tmp_path; local URLs bypass any proxy."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "fastlstm" / "ptb"


@pytest.fixture
def server(ptb_dir, monkeypatch):
    """A local stand-in for URL_BASE. `files`: name -> bytes served; `declared`: name -> a
    Content-Length to announce instead of the true one; `hits`: the names requested."""
    srv = SimpleNamespace(files={n: (ptb_dir / n).read_bytes() for n in NAMES}, declared={}, hits=[])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.lstrip("/")
            srv.hits.append(name)
            if name not in srv.files:
                return self.send_error(404)
            body = srv.files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(srv.declared.get(name, len(body))))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    monkeypatch.setattr(ptb, "URL_BASE", f"http://127.0.0.1:{httpd.server_port}/")
    yield srv
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def book(ptb_dir):
    """The book's loader written out independently: {split: corpus}, word_to_id, id_to_word."""
    def words(split):
        with open(ptb_dir / f"ptb.{split}.txt") as f:
            return f.read().replace("\n", "<eos>").strip().split()

    word_to_id, id_to_word = {}, {}
    for word in words("train"):
        if word not in word_to_id:
            id_to_word[len(word_to_id)] = word
            word_to_id[word] = len(word_to_id)
    return {s: np.array([word_to_id[w] for w in words(s)]) for s in COUNTS}, word_to_id, id_to_word


def copies(folder, ptb_dir, names=NAMES):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(ptb_dir / name, folder / name)
    return folder


@pytest.mark.parametrize("split", COUNTS)
def test_same_as_book(book, split):
    corpora, word_to_id, id_to_word = book
    corpus, w2i, i2w = ptb.load_data(split)  # through FASTLSTM_DATA, which conftest sets
    assert corpus.dtype == np.int64 and len(corpus) == COUNTS[split]
    np.testing.assert_array_equal(corpus, corpora[split])
    assert w2i == word_to_id and i2w == id_to_word
    assert len(w2i) == 10_000 and i2w[0] == "aer" and "<eos>" in w2i
    assert ptb.load_vocab() == (word_to_id, id_to_word)


def test_val_bad_type_and_fresh_copies():
    corpus, w2i, i2w = ptb.load_data("val")
    np.testing.assert_array_equal(corpus, ptb.load_data("valid")[0])
    corpus[:] = -1
    w2i.clear()
    i2w.clear()
    corpus, w2i, i2w = ptb.load_data("val")
    assert corpus.min() == 0 and len(w2i) == len(i2w) == 10_000
    with pytest.raises(ValueError, match="'train', 'val', 'valid' or 'test'"):
        ptb.load_data("dev")


def test_cache_folder(tmp_path, monkeypatch, user_cache):
    assert ptb.cache_dir() == user_cache
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ptb.cache_dir() == tmp_path / "home" / ".cache" / "fastlstm" / "ptb"


def test_resolution_order(ptb_dir, tmp_path, monkeypatch, server, user_cache):
    empty = tmp_path / "empty"
    empty.mkdir()
    user_cache.mkdir(parents=True)
    (user_cache / "ptb.train.txt").write_text("not the cached file\n")  # would be refused if read

    monkeypatch.setenv("FASTLSTM_DATA", str(empty))
    assert len(ptb.load_vocab(ptb_dir)[0]) == 10_000  # data_dir beats FASTLSTM_DATA
    with pytest.raises(ptb.DataNotFoundError, match=re.escape(str(empty / "ptb.train.txt"))):
        ptb.load_vocab()  # FASTLSTM_DATA lacking the files is an error, not a fall-through
    monkeypatch.setenv("FASTLSTM_DATA", str(ptb_dir))
    assert len(ptb.load_vocab()[0]) == 10_000  # FASTLSTM_DATA beats the cache

    monkeypatch.delenv("FASTLSTM_DATA")
    copies(user_cache, ptb_dir)
    assert len(ptb.load_data("test")[0]) == COUNTS["test"]  # the cache beats the download
    assert server.hits == []


def test_modified_copy_is_refused(ptb_dir, tmp_path):
    folder = copies(tmp_path / "copy", ptb_dir)
    assert len(ptb.load_data("test", folder)[0]) == COUNTS["test"]
    with open(folder / "ptb.test.txt", "a") as f:
        f.write("one more line\n")
    with pytest.raises(ptb.ChecksumError, match=re.escape(str(folder / "ptb.test.txt"))) as err:
        ptb.load_data("test", folder)
    assert ptb.SHA256["ptb.test.txt"] in str(err.value)


def test_download_into_cache(server, monkeypatch, capsys, user_cache):
    monkeypatch.delenv("FASTLSTM_DATA")
    assert len(ptb.load_data("test")[0]) == COUNTS["test"]
    assert sorted(server.hits) == ["ptb.test.txt", "ptb.train.txt"]
    assert sorted(p.name for p in user_cache.iterdir()) == ["ptb.test.txt", "ptb.train.txt"]
    assert "5,101,618/5,101,618 bytes (100%)" in capsys.readouterr().err
    ptb.load_data("test")
    assert len(server.hits) == 2


@pytest.mark.parametrize("fault", ["corrupt", "truncated"])
def test_failed_download_leaves_nothing(server, monkeypatch, user_cache, fault):
    monkeypatch.delenv("FASTLSTM_DATA")
    good = server.files["ptb.train.txt"]
    if fault == "corrupt":
        server.files["ptb.train.txt"] = good.replace(b"aer", b"air", 1)
    else:
        server.files["ptb.train.txt"], server.declared["ptb.train.txt"] = good[:100_000], len(good)
    error = ptb.ChecksumError if fault == "corrupt" else ptb.DataNotFoundError
    with pytest.raises(error, match="ptb.train.txt"):
        ptb.load_vocab()
    assert list(user_cache.iterdir()) == []


def test_offline_error_names_all_three_ways(monkeypatch, user_cache):
    monkeypatch.delenv("FASTLSTM_DATA")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(ptb, "URL_BASE", f"http://127.0.0.1:{port}/")
    with pytest.raises(FileNotFoundError) as err:
        ptb.load_data()
    message = str(err.value)
    for way in ("data_dir", "--data", "FASTLSTM_DATA", str(user_cache), f"{ptb.URL_BASE}ptb.train.txt"):
        assert way in message
    assert list(user_cache.iterdir()) == []
