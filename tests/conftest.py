"""Shared fixtures: small real subsets of the bundled dataset."""
import os

# Runtime shape checks (jaxtyping + beartype, docs/conventions.md "Dimension names") of the
# annotated modules; installed before dcmnet is first imported. DCMNET_SHAPE_CHECKS=0: off
# (and off without beartype, which the test extra installs).
SHAPE_CHECKED = ("dcmnet.electrostatics", "dcmnet.model", "dcmnet.training.loss",
                 "dcmnet.data.batching")
if os.environ.get("DCMNET_SHAPE_CHECKS", "1") != "0":
    import importlib.util

    assert importlib.util.find_spec("beartype"), "pip install beartype (or DCMNET_SHAPE_CHECKS=0)"
    from jaxtyping import install_import_hook
    install_import_hook(SHAPE_CHECKED, "beartype.beartype(conf=beartype.BeartypeConf("
                        "is_pep484_tower=True))")  # an int is a float, as in PEP 484

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dcmnet.data.loader import bundled_dataset_path  # noqa: E402
from dcmnet.data.dataset import Dataset  # noqa: E402

#: tiny model settings that keep tests fast
TINY = dict(n_dcm=2, features=8, max_degree=1, num_iterations=1, num_basis_functions=8)


def bundled_subset(names, per_molecule, offset=0) -> Dataset:
    """``per_molecule`` conformers of each named bundled molecule (starting at ``offset``)."""
    ds = Dataset.load(bundled_dataset_path())
    idx = []
    for n in names:
        where = np.flatnonzero(ds.name == n)
        assert len(where) >= offset + per_molecule, n
        idx += list(where[offset:offset + per_molecule])
    return ds.subset(idx)


@pytest.fixture(scope="session")
def small_npz(tmp_path_factory):
    """16 conformers: water, methanol, acetate (−1) and methylammonium (+1), canonical NPZ."""
    ds = bundled_subset(["water", "methanol", "acetate", "methylammonium"], 4)
    return ds.save(tmp_path_factory.mktemp("data") / "small.npz")


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory, small_npz):
    """A tiny DCM-net trained for 2 epochs on ``small_npz`` (analysis/plot/predict tests)."""
    from rich.console import Console

    from dcmnet.training.runner import run_training

    out = tmp_path_factory.mktemp("analysis_exp")
    _, _, exp_dir = run_training(
        "tiny", output_dir=str(out), data_files=[str(small_npz)], num_epochs=2,
        batch_size=4, progress=False, table_every=0, console=Console(quiet=True), **TINY)
    return exp_dir


@pytest.fixture(scope="session", autouse=True)
def _session_compile_cache(tmp_path_factory):
    """JAX's persistent compilation cache for the whole test session (a fresh, empty folder
    in the pytest temp folder): the many tiny trainings, predictions and exports compile the
    same small programs again and again (new model objects, new processes); sharing the
    compiled programs saves most of the test time and changes no result (the same program
    is compiled the same way). Exported through ``JAX_COMPILATION_CACHE_DIR`` too, so the
    ``python -m dcmnet`` subprocesses of the kill/resume tests share it. Restored at the end."""
    import os

    import jax
    try:
        from jax._src import compilation_cache
    except ImportError:                                    # private API moved: no speed-up
        yield None
        return
    path = tmp_path_factory.getbasetemp() / "jax_compile_cache"
    keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    old = {k: getattr(jax.config, k) for k in keys}
    env = {"JAX_COMPILATION_CACHE_DIR": str(path),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    compilation_cache.reset_cache()
    yield path
    for k, v in old.items():
        jax.config.update(k, v)
    for k, v in old_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def jax_compile_cache(_session_compile_cache):
    """The session's persistent compilation cache folder (None without it); modules that
    start processes of their own (the notebook kernel) pass it on."""
    return _session_compile_cache
