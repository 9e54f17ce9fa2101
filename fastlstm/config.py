"""The book's `common.config`: set `GPU = True` before building a model to run it on the CUDA kernels."""

GPU = False
