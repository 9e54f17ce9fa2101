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
from fastlstm.checks import converted_weights
from fastlstm.files import atomic_write
from fastlstm.safe_pickle import load_arrays
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
        The file is read as data (fastlstm.safe_pickle: a file that would run code is refused
        unrun) and checked whole against the model, after conversion to its dtype; a mismatch
        raises (FileNotFoundError, ValueError) naming the file and the problem, and leaves the
        model untouched.
        """
        file_name = self._file(file_name)
        if not os.path.isfile(file_name):
            raise FileNotFoundError(f"no params file: {os.path.abspath(file_name)}")
        params = self._params()
        loaded = converted_weights(load_arrays(file_name), params, file_name, type(self).__name__)
        for p, a in zip(params, loaded):
            if gpu.is_device_array(p):
                p.copy_to_device(a)  # in p's memory order, F for a tied W.T
            else:
                p[...] = a
