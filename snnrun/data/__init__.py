"""Datasets, chosen with ``data=<name>``."""

from .base import DATASETS, DataSplits, Dataset, ImageParams, LoaderParams, TensorBatches, random_shift
from . import builtin, events, idx, temporal  # noqa: F401

__all__ = ["DATASETS", "DataSplits", "Dataset", "ImageParams", "LoaderParams", "TensorBatches", "random_shift"]
