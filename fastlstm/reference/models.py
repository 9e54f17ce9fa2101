"""The book's SimpleRnnlm, Rnnlm and BetterRnnlm built from the plain-NumPy reference layers, for tests and
benchmarks only."""

from fastlstm import models
from fastlstm.reference import numpy_layers


class SimpleRnnlm(models.SimpleRnnlm):
    layer_kit = numpy_layers


class Rnnlm(models.Rnnlm):
    layer_kit = numpy_layers


class BetterRnnlm(models.BetterRnnlm):
    layer_kit = numpy_layers
