"""BaseModel.save_params / load_params: the book's pickle format, tied weights, refusals, atomic writes."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from fastlstm import base_model
from fastlstm.base_model import BaseModel


class TiedModel(BaseModel):
    """Params as BetterRnnlm collects them: embed_W first, its transposed view last (weight tying)."""

    def __init__(self, seed=0, V=20, H=6, dtype=np.float32):
        rng = np.random.default_rng(seed)
        self.embed_W = rng.standard_normal((V, H)).astype(dtype)
        self.Wx = rng.standard_normal((H, 4 * H)).astype(dtype)
        self.b = rng.standard_normal(V).astype(dtype)
        self.params = [self.embed_W, self.Wx, self.embed_W.T, self.b]
        self.grads = [np.zeros_like(p) for p in self.params]


def snapshot(model):
    return [p.copy() for p in model.params]


def assert_unchanged(model, before):
    for p, b in zip(model.params, before):
        np.testing.assert_array_equal(p, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_identity_and_tying(tmp_path, dtype):
    src, dst = TiedModel(0, dtype=dtype), TiedModel(1, dtype=dtype)
    path = tmp_path / "w.pkl"
    src.save_params(path)
    ids = [id(p) for p in dst.params]
    dst.load_params(str(path))
    assert [id(p) for p in dst.params] == ids
    for p, s in zip(dst.params, src.params):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, s.astype(np.float16).astype(dtype))
    assert np.shares_memory(dst.params[0], dst.params[2])
    dst.embed_W[0, 0] = 42.0
    assert dst.params[2][0, 0] == 42.0


def test_file_is_the_books_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = TiedModel()
    model.save_params()
    assert os.listdir(tmp_path) == ["TiedModel.pkl"]
    with open("TiedModel.pkl", "rb") as f:
        loaded = pickle.load(f)
    assert type(loaded) is list and len(loaded) == 4
    for a, p in zip(loaded, model.params):
        assert type(a) is np.ndarray and a.dtype == np.float16 and a.shape == p.shape


def test_loads_a_file_written_by_the_book(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = TiedModel(3)
    with open("TiedModel.pkl", "wb") as f:
        pickle.dump([p.astype(np.float16) for p in src.params], f)
    dst = TiedModel(4)
    dst.load_params()
    np.testing.assert_array_equal(dst.embed_W, src.embed_W.astype(np.float16).astype(np.float32))


def write(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.mark.parametrize("content, message", [
    ({"W": np.zeros(3)}, "does not hold a list of numpy arrays"),
    ([np.zeros((20, 6)), "W"], "does not hold a list of numpy arrays"),
    ([np.zeros((20, 6), np.float16)] * 3, "holds 3 arrays, but TiedModel has 4 params"),
    ([np.zeros((20, 6)), np.zeros((6, 24)), np.zeros((20, 6)), np.zeros(20)],
     r"array 2 has shape \(20, 6\), expected \(6, 20\)"),
    ([np.zeros((20, 6)), np.full((6, 24), np.nan), np.zeros((6, 20)), np.zeros(20)], "array 1 holds NaN or inf"),
    ([np.zeros((20, 6)), np.zeros((6, 24)), np.zeros((6, 20)), np.full(20, np.inf)], "array 3 holds NaN or inf"),
    ([np.zeros((20, 6)), np.zeros((6, 24)), np.zeros((6, 20)), np.zeros(20, complex)], "array 3 has dtype complex128"),
])
def test_load_refuses_bad_files_before_writing(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    write(path, content)
    model = TiedModel()
    before = snapshot(model)
    with pytest.raises(ValueError, match=message) as info:
        model.load_params(path)
    assert str(path) in str(info.value)
    assert_unchanged(model, before)


def test_load_refuses_missing_and_garbage_files(tmp_path):
    model = TiedModel()
    before = snapshot(model)
    with pytest.raises(FileNotFoundError, match="no params file: .*missing.pkl"):
        model.load_params(tmp_path / "missing.pkl")
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="garbage.pkl is not a readable params pickle"):
        model.load_params(tmp_path / "garbage.pkl")
    assert_unchanged(model, before)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "w.pkl"
    TiedModel(0).save_params(path)
    good = path.read_bytes()

    def broken_dump(obj, f):
        f.write(b"half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(base_model.pickle, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        TiedModel(1).save_params(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["w.pkl"]


def test_save_refuses_unsavable_values(tmp_path):
    model = TiedModel()
    model.b[3] = 1e5  # beyond float16's range: would be written as inf
    with pytest.raises(ValueError, match=r"params\[3\] holds NaN or inf, or values beyond float16"):
        model.save_params(tmp_path / "w.pkl")
    model.b[3] = np.nan
    with pytest.raises(ValueError, match=r"params\[3\]"):
        model.save_params(tmp_path / "w.pkl")
    assert os.listdir(tmp_path) == []


def test_base_model_contract(tmp_path):
    model = BaseModel()
    assert model.params is None and model.grads is None
    with pytest.raises(NotImplementedError):
        model.forward(1, 2)
    with pytest.raises(NotImplementedError):
        model.backward()
    with pytest.raises(RuntimeError, match="params is None"):
        model.save_params(tmp_path / "w.pkl")
    write(Path(tmp_path / "w.pkl"), [])
    with pytest.raises(RuntimeError, match="params is None"):
        model.load_params(tmp_path / "w.pkl")
