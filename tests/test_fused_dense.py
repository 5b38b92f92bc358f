"""FusedDense is e3x.nn.Dense: same parameter tree and initial values, same outputs."""
from __future__ import annotations

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcmnet.message_passing import FusedDense


@pytest.mark.parametrize("parities", [1, 2])
@pytest.mark.parametrize("max_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("features,use_bias", [(16, True), (2, True), (5, False)])
def test_same_parameters_and_outputs_as_e3x(parities, max_degree, features, use_bias):
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 4, parities, (max_degree + 1) ** 2, 8))
    ref = e3x.nn.Dense(features, use_bias=use_bias)
    fused = FusedDense(features, use_bias=use_bias)
    p_ref = ref.init(jax.random.PRNGKey(0), x)
    p_fused = fused.init(jax.random.PRNGKey(0), x)
    assert (jax.tree_util.tree_structure(p_ref) == jax.tree_util.tree_structure(p_fused))
    for a, b in zip(jax.tree_util.tree_leaves(p_ref), jax.tree_util.tree_leaves(p_fused)):
        np.testing.assert_array_equal(a, b)
    # a non-zero bias, so that adding it to the right channel only is checked too
    params = jax.tree_util.tree_map(lambda v: v + 0.3, p_ref)
    np.testing.assert_allclose(fused.apply(params, x), ref.apply(params, x),
                               rtol=1e-5, atol=1e-5)


def test_gradients_match_e3x():
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 2, 9, 8))
    ref, fused = e3x.nn.Dense(4), FusedDense(4)
    params = ref.init(jax.random.PRNGKey(0), x)

    def loss(module, p, x):
        return jnp.sum(jnp.sin(module.apply(p, x)))

    g_ref = jax.grad(loss, argnums=(1, 2))(ref, params, x)
    g_fused = jax.grad(loss, argnums=(1, 2))(fused, params, x)
    for a, b in zip(jax.tree_util.tree_leaves(g_ref), jax.tree_util.tree_leaves(g_fused)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_invalid_feature_shape_raises():
    with pytest.raises(ValueError):
        FusedDense(4).init(jax.random.PRNGKey(0), jnp.ones((3, 2, 5, 8)))  # 5 is no (L+1)²
