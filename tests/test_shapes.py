"""Shapes in signatures: jaxtyping annotations in one dimension vocabulary, checked at runtime.

The suite runs with jaxtyping's import hook and beartype on the annotated modules
(``install_import_hook`` at the top of tests/conftest.py; ``DCMNET_SHAPE_CHECKS=0`` turns
it off); these tests
show that the annotations use only the names of ``batching.DIMENSIONS`` (the symbols of
``BATCH_SPEC``) and that a wrongly shaped call is refused while the package's own clear
errors keep their place.
"""
from __future__ import annotations

import inspect
import typing

import jax
import numpy as np
import pytest
from beartype import beartype
from jaxtyping import TypeCheckError, jaxtyped

from dcmnet import electrostatics, model
from dcmnet.data import batching
from dcmnet.training import loss

MODULES = (electrostatics, model, loss, batching)
#: what a shape string may hold besides the named dimensions
FIXED = {"3", "..."}


def _functions(module):
    """The module's own functions and the methods of its own classes (unwrapped)."""
    for _, obj in vars(module).items():
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            for m in vars(obj).values():
                if inspect.isfunction(m):
                    yield m
        elif inspect.isfunction(obj) and obj.__module__ == module.__name__:
            yield obj


def _array_types(tp):
    """The jaxtyping array types inside an annotation (through Union, Optional, tuple…)."""
    if hasattr(tp, "dim_str") and hasattr(tp, "dtypes"):
        yield tp
    for arg in typing.get_args(tp):
        yield from _array_types(arg)


def _shape_strings() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for mod in MODULES:
        for fn in _functions(mod):
            hints = inspect.get_annotations(inspect.unwrap(fn), eval_str=True)
            for tp in hints.values():
                for arr in _array_types(tp):
                    found.setdefault(f"{mod.__name__}.{fn.__qualname__}", set()).add(
                        arr.dim_str)
    return found


def _names(dim_str: str) -> set[str]:
    return {tok.lstrip("*#") if tok != "..." else tok for tok in dim_str.split()}


def test_every_dimension_name_is_in_the_vocabulary():
    found = _shape_strings()
    # the public array functions of the four modules carry shapes
    for name in ("dcmnet.electrostatics.esp_from_charges",
                 "dcmnet.electrostatics.dipole_from_charges",
                 "dcmnet.electrostatics.flatten_sites",
                 "dcmnet.electrostatics.inverse_distances",
                 "dcmnet.model.DCMNet.__call__", "dcmnet.model.predict_batch",
                 "dcmnet.training.loss.loss_and_metrics", "dcmnet.data.batching.make_batch"):
        assert name in found, name
    assert found["dcmnet.model.DCMNet.__call__"] == {"B A", "B A 3", "B", "B A K",
                                                     "B A K 3"}
    assert found["dcmnet.electrostatics.esp_from_charges"] == {"B S", "B S 3", "B G 3",
                                                               "B G"}
    allowed = set(batching.DIMENSIONS) | FIXED
    for where, strings in found.items():
        for s in strings:
            assert _names(s) <= allowed, (where, s, _names(s) - allowed)


def test_batch_spec_symbols_are_the_vocabulary():
    symbols = {d for _, shape in batching.BATCH_SPEC.values() for d in shape}
    assert {d for d in symbols if isinstance(d, str)} == {"B", "A", "G"}
    assert {d for d in symbols if isinstance(d, str)} <= set(batching.DIMENSIONS)
    assert {str(d) for d in symbols if not isinstance(d, str)} <= FIXED
    assert set(batching.PREDICTION_AXES.values()) <= set(batching.DIMENSIONS)


def test_wrong_shape_is_refused_by_the_checker():
    """The annotations are enforceable: the checked function refuses a (B, S) / (B, S', 3)
    mismatch that numpy broadcasting would otherwise turn into an opaque einsum error."""
    checked = jaxtyped(typechecker=beartype)(inspect.unwrap(electrostatics.dipole_from_charges))
    q = np.ones((2, 3), np.float32)
    good = checked(q, np.zeros((2, 3, 3), np.float32), np.zeros((2, 3), np.float32))
    assert good.shape == (2, 3)
    with pytest.raises(TypeCheckError, match="positions"):
        checked(q, np.zeros((2, 4, 3), np.float32), np.zeros((2, 3), np.float32))
    with pytest.raises(TypeCheckError, match="origin"):
        checked(q, np.zeros((2, 3, 3), np.float32), np.zeros((3, 3), np.float32))


@pytest.fixture
def hook_active() -> bool:
    """Skips unless the import hook of tests/conftest.py wrapped the package's functions."""
    if not hasattr(electrostatics.dipole_from_charges, "__wrapped__"):
        pytest.skip("jaxtyping import hook not active (DCMNET_SHAPE_CHECKS=0)")
    return True


def test_hook_covers_the_annotated_modules(hook_active):
    def depth(fn):  # wrappers around the function (functools.wraps' __wrapped__ chain)
        return 0 if not hasattr(fn, "__wrapped__") else 1 + depth(fn.__wrapped__)

    for fn in (electrostatics.inverse_distances, electrostatics.dipole_from_charges,
               model.predict_batch, loss.loss_and_metrics, batching.make_batch,
               batching.stack_batches):
        assert depth(fn) == 1, fn
    assert depth(model.DCMNet.__call__) == 2  # nn.compact around the checked __call__
    # opted out: their own ValueError comes first
    assert not hasattr(electrostatics.esp_from_charges, "__wrapped__")
    assert not hasattr(electrostatics.flatten_sites, "__wrapped__")


def test_import_hook_checks_the_package(hook_active):
    q = np.ones((1, 2), np.float32)
    with pytest.raises(TypeCheckError, match="dipole_from_charges"):
        electrostatics.dipole_from_charges(q, np.zeros((1, 3, 3), np.float32),
                                           np.zeros((1, 3), np.float32))
    net = model.create_model(n_dcm=1, features=4, max_degree=1, num_iterations=1,
                             num_basis_functions=4)
    Z = np.array([[8, 1, 1]], np.int32)
    mask = np.ones((1, 3), np.float32)
    Q = np.zeros((1,), np.float32)
    params = net.init(jax.random.PRNGKey(0), Z, np.zeros((1, 3, 3), np.float32), mask, Q)
    with pytest.raises(TypeCheckError, match="R"):  # 2 coordinates per atom
        net.apply(params, Z, np.zeros((1, 3, 2), np.float32), mask, Q)
    with pytest.raises(TypeCheckError, match="net_charge"):  # one per molecule
        net.apply(params, Z, np.zeros((1, 3, 3), np.float32), mask, np.zeros(2, np.float32))
    # traced once under jit: the check runs while tracing, the call itself is unchanged
    c, x = jax.jit(net.apply)(params, Z, np.eye(3, dtype=np.float32)[None], mask, Q)
    assert c.shape == (1, 3, 1) and x.shape == (1, 3, 1, 3)
    np.testing.assert_allclose(float(c.sum()), 0.0, atol=1e-6)


def test_own_errors_keep_their_place_under_the_hook(hook_active):
    """Entry points whose own ValueError names the fix are not runtime-checked."""
    with pytest.raises(ValueError, match="flatten_sites"):
        electrostatics.esp_from_charges(np.ones((1, 2, 2)), np.zeros((1, 2, 2, 3)),
                                        np.ones((1, 4, 3)))
    with pytest.raises(ValueError, match=r"\(B, A, n, 3\)"):
        electrostatics.flatten_sites(np.ones((1, 2, 2)), np.zeros((1, 2, 2, 2)))
