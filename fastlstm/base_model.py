"""The book's `common.base_model`: params/grads lists and saving/loading weights in the book's pickle format.

The file is a pickled list of float16 arrays, one per entry of `params` (a tied weight
appears twice, once transposed), so weights move freely between the book's code and
fastlstm. Saving writes a temporary file and renames it; loading checks the whole file
against the model before writing into the existing arrays. A model on the GPU saves host
copies in the same format, and loads through the host, so files move freely between the two.
"""

import os
import pickle

import numpy as np

from fastlstm import gpu
from fastlstm.files import atomic_write
from fastlstm.util import to_cpu


class BaseModel(gpu.HostPickled):
    """Base of the models: subclasses set `params` and `grads` and define forward and backward.
    A model on the GPU pickles and deep-copies its device arrays through the host."""

    def __init__(self):
        self.params, self.grads = None, None

    def forward(self, *args):
        raise NotImplementedError

    def backward(self, *args):
        raise NotImplementedError

    def _file(self, file_name):
        if file_name is None:
            return self.__class__.__name__ + ".pkl"
        return os.fspath(file_name)

    def _params(self):
        if self.params is None:
            raise RuntimeError(f"{type(self).__name__}.params is None: the model must set its params first")
        return self.params

    def save_params(self, file_name=None):
        """Write params as float16 to file_name (default `ClassName.pkl`), atomically.

        Refuses (ValueError, nothing written) a param that holds NaN or inf or overflows
        float16, since such a file could not be loaded back.
        """
        file_name = self._file(file_name)
        with np.errstate(over="ignore"):  # overflow is reported below, by index
            params = [to_cpu(p).astype(np.float16) for p in self._params()]
        for i, p in enumerate(params):
            if not np.isfinite(p).all():
                raise ValueError(f"params[{i}] holds NaN or inf, or values beyond float16's range (65504); "
                                 f"not saved to {file_name}")
        atomic_write(file_name, lambda f: pickle.dump(params, f))

    def load_params(self, file_name=None):
        """Copy the weights in file_name (default `ClassName.pkl`) into the existing param arrays.

        Writing in place keeps tied weights tied and `layer.params` the same objects.
        The file is checked first; a mismatch raises (FileNotFoundError, ValueError)
        naming the file and the problem, and leaves the model untouched. Like any pickle,
        load only files you trust.
        """
        file_name = self._file(file_name)
        if not os.path.isfile(file_name):
            raise FileNotFoundError(f"no params file: {os.path.abspath(file_name)}")
        with open(file_name, "rb") as f:
            try:
                loaded = pickle.load(f)
            except Exception as e:
                raise ValueError(f"{file_name} is not a readable params pickle: {e!r}") from e
        if not isinstance(loaded, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in loaded):
            raise ValueError(f"{file_name} does not hold a list of numpy arrays (the book's params format), "
                             f"but {type(loaded).__name__}")
        params = self._params()
        if len(loaded) != len(params):
            raise ValueError(f"{file_name} holds {len(loaded)} arrays, but {type(self).__name__} has "
                             f"{len(params)} params")
        for i, (p, a) in enumerate(zip(params, loaded)):
            if a.shape != p.shape:
                raise ValueError(f"{file_name}: array {i} has shape {a.shape}, expected {p.shape}")
            if not np.issubdtype(a.dtype, np.floating):
                raise ValueError(f"{file_name}: array {i} has dtype {a.dtype}, expected a float dtype")
            if not np.isfinite(a).all():
                raise ValueError(f"{file_name}: array {i} holds NaN or inf values")
        for p, a in zip(params, loaded):
            if gpu.is_device_array(p):
                p.copy_to_device(np.asarray(a, dtype=p.dtype))  # in p's memory order, F for a tied W.T
            else:
                p[...] = a
