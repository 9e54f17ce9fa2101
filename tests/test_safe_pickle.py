"""Weight files are data: the book's params pickles load, anything that would run code is refused unrun."""

import os
import pickle

import numpy as np
import pytest

from fastlstm.safe_pickle import UnsafePickle, load_arrays

ARRAYS = [np.arange(6, dtype=np.float16).reshape(2, 3), np.ones(3, np.float32),
          np.asfortranarray(np.arange(4.0).reshape(2, 2)), np.zeros((0,)), np.array(1.5)]


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("container", [list, tuple])
def test_arrays_load_at_every_protocol(tmp_path, protocol, container):
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps(container(ARRAYS), protocol=protocol))
    got = load_arrays(path)
    assert [a.dtype for a in got] == [a.dtype for a in ARRAYS]
    for a, b in zip(got, ARRAYS):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("where", ["alone", "nested"])
def test_code_is_refused_and_never_runs(tmp_path, protocol, where):
    marker = tmp_path / "ran"
    obj = _RunsCode(str(marker)) if where == "alone" else [np.zeros(2), [np.ones(1), _RunsCode(str(marker))]]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    with pytest.raises(UnsafePickle, match="posix.mkdir|os.mkdir|nt.mkdir"):
        load_arrays(path)
    assert not marker.exists()


@pytest.mark.parametrize("obj,match", [
    ({"a": 1}, "holds a dict"),
    ([np.zeros(2), 3], "item 1 is a int"),
    ([np.array(["x"], dtype=object)], "would call|dtype object"),
])
def test_other_data_is_refused(tmp_path, obj, match):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(UnsafePickle, match=match):
        load_arrays(path)


@pytest.mark.parametrize("data", [b"", b"not a pickle", pickle.dumps(ARRAYS)[:40]])
def test_garbage_and_truncated_files_are_refused(tmp_path, data):
    path = tmp_path / "bad.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickle, match="not a readable params pickle"):
        load_arrays(path)
