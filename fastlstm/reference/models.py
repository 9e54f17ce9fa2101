"""fastlstm's models built from the plain-NumPy reference layers, for tests and benchmarks only."""

from fastlstm import models
from fastlstm.reference import numpy_layers


class SimpleRnnlm(models.SimpleRnnlm):
    layer_kit = numpy_layers


class Rnnlm(models.Rnnlm):
    layer_kit = numpy_layers


class BetterRnnlm(models.BetterRnnlm):
    layer_kit = numpy_layers


class VariationalRnnlm(models.VariationalRnnlm):
    layer_kit = penalty_kit = numpy_layers


class AwdRnnlm(models.AwdRnnlm):
    layer_kit = penalty_kit = numpy_layers
