"""Datasets, named as in the book: ``from fastlstm.dataset import ptb`` (or ``sequence``, ``spiral``)."""
