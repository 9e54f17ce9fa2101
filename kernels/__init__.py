"""Compiled kernels of fastlstm: plain functions on arrays, with no layer or model logic.

Dimension letters used throughout: N batch, T time steps, D input width, H hidden width,
V vocabulary size, M = N*T rows. Every kernel writes into preallocated outputs; the
callers in `fastlstm` validate shapes, dtypes and token ids before calling in, since
Numba does not check bounds.
"""
