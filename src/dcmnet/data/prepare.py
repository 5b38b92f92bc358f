"""``prepare_datasets``: load ESP data (any supported format) and split it, in one call.

The name and argument order follow the original tool
(``prepare_datasets(key, num_train, num_valid, filename)``).
"""
from __future__ import annotations

import numpy as np

from dcmnet.data.dataset import Dataset


def _seed_from_key(key) -> int:
    if key is None:
        return 0
    if isinstance(key, (int, np.integer)):
        return int(key)
    import jax
    data = np.asarray(jax.random.key_data(key) if jax.dtypes.issubdtype(
        key.dtype, jax.dtypes.prng_key) else key).ravel()
    return int(data[-1]) % (2**31 - 1)


def prepare_datasets(key=0, num_train: int | None = None, num_valid: int | None = None,
                     filename=None, verbose: bool = True, natoms: int | None = None
                     ) -> tuple[Dataset, Dataset]:
    """Load ESP data and split it into training and validation sets.

    Args:
        key: an int seed or a ``jax.random.PRNGKey`` for the split.
        num_train, num_valid: molecule counts (None: all molecules, about 90/10).
        filename: one path or a list of paths (canonical or mmml-style NPZ); None or
            empty uses the bundled dataset.
        verbose: print what was detected in each file.
        natoms: accepted for scripts written for the original tool and ignored (a note
            is printed): dcmnet stores molecules ragged and infers every atom count.
    Returns:
        ``(train, valid)`` datasets.
    Raises:
        DataError: unreadable files or more molecules requested than available.
    """
    from dcmnet.data.loader import load_dataset
    from dcmnet.data.split import split_indices

    if natoms is not None:
        import sys
        print(f"note: natoms={natoms} is ignored: dcmnet infers the number of atoms of "
              "every molecule from the data (molecules of any size can be mixed).",
              file=sys.stderr)
    data = load_dataset(filename or None, verbose=verbose)
    tr, va = split_indices(len(data), num_train, num_valid, seed=_seed_from_key(key))
    return data.subset(tr), data.subset(va)
