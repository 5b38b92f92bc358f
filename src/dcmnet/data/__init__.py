"""Data layer: canonical ragged dataset, file readers, splits and padded batches."""
from dcmnet.data.batching import (BatchIterator, bucket_shapes, iter_predictions,
                                  iterate_batches, make_batch, pad_sizes, prediction_plan,
                                  stack_batches)
from dcmnet.data.dataset import Dataset
from dcmnet.data.readers.npz import read_npz
from dcmnet.data.loader import (bundled_dataset_path, detect_format, load_dataset,
                                load_dataset_with_report)
from dcmnet.data.mmml import read_mmml_npz, write_mmml_npz
from dcmnet.data.readers import ReadOptions
from dcmnet.data.split import load_split, save_split, split_indices

__all__ = [
    "Dataset", "load_dataset", "load_dataset_with_report", "bundled_dataset_path",
    "read_mmml_npz", "write_mmml_npz", "split_indices", "save_split", "load_split",
    "iterate_batches", "make_batch", "pad_sizes", "bucket_shapes", "BatchIterator",
    "stack_batches", "iter_predictions", "prediction_plan", "read_npz", "detect_format", "ReadOptions", "prepare_datasets",
]


def __getattr__(name):
    """Lazy re-export of :func:`dcmnet.data.prepare.prepare_datasets`."""
    if name == "prepare_datasets":
        from dcmnet.data.prepare import prepare_datasets
        return prepare_datasets
    raise AttributeError(f"module 'dcmnet.data' has no attribute {name!r}")
