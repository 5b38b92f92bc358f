"""Atomic multipole baselines: kernels against autodiff of 1/r, exact recovery of an
analytic point-multipole ESP, the net charge, ill-posed fits, and the RMSE order
monopole ≥ dipole ≥ quadrupole on bundled data."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import bundled_subset
from dcmnet.electrostatics import esp_from_multipoles, multipole_kernels
from dcmnet.errors import DataError
from dcmnet.fitting import fit_monopoles, fit_multipoles, multipole_parameter_count
from dcmnet.units import BOHR_TO_ANGSTROM


def _analytic_case(seed=0, n=4, G=600):
    rng = np.random.default_rng(seed)
    R = rng.normal(size=(n, 3)) * 1.2
    q = rng.normal(size=n)
    q += (1.0 - q.sum()) / n                                    # net charge +1
    mu = rng.normal(size=(n, 3)) * 0.2
    A = rng.normal(size=(n, 3, 3)) * 0.1
    A = (A + A.transpose(0, 2, 1)) / 2
    A -= np.eye(3) * np.trace(A, axis1=1, axis2=2)[:, None, None] / 3
    g = rng.normal(size=(G, 3))
    g = g / np.linalg.norm(g, axis=1, keepdims=True) * rng.uniform(4, 6, size=(G, 1))
    return R, q, mu, A, g


def _reference_esp(R, q, mu, A, g):
    """V = Σ q/|r−R| + μ·∇_R(1/|r−R|) + (1/3) Θ:∇∇(1/|r−R|), derivatives by JAX autodiff
    in float64 (independent of the closed-form kernels)."""
    with jax.enable_x64(True):
        def inv(Rs, r):
            return 1.0 / jnp.linalg.norm(r - Rs)
        grad, hess = jax.vmap(jax.grad(inv), (0, None)), jax.vmap(jax.hessian(inv), (0, None))

        def one(r):
            return (jnp.sum(q * jax.vmap(inv, (0, None))(jnp.asarray(R), r))
                    + jnp.sum(mu * grad(jnp.asarray(R), r))
                    + jnp.sum(A * hess(jnp.asarray(R), r)) / 3.0)
        V = np.asarray(jax.vmap(one)(jnp.asarray(g)), np.float64)
    return V * BOHR_TO_ANGSTROM


def test_kernels_equal_autodiff_of_coulomb():
    R, q, mu, A, g = _analytic_case()
    V = _reference_esp(R, q, mu, A, g)
    np.testing.assert_allclose(esp_from_multipoles(g, R, q, mu, A), V, rtol=0, atol=1e-12)
    # a charge of 1 e at 1 Å: 1 Bohr in Å Hartree/e
    k = multipole_kernels(np.array([[1.0, 0, 0]]), np.zeros((1, 3)), 0)
    assert k[0, 0, 0] == pytest.approx(BOHR_TO_ANGSTROM, rel=1e-15)


def test_fit_reproduces_analytic_multipoles():
    R, q, mu, A, g = _analytic_case()
    V = _reference_esp(R, q, mu, A, g)
    f = fit_multipoles(R, g, V, net_charge=1.0, order=2)
    assert np.max(np.abs(f["esp"] - V)) <= 1e-8                 # Hartree/e
    np.testing.assert_allclose(f["charges"], q, atol=1e-8)
    np.testing.assert_allclose(f["dipoles"], mu, atol=1e-8)
    np.testing.assert_allclose(f["quadrupoles"], A, atol=1e-8)
    assert abs(f["charges"].sum() - 1.0) < 1e-12
    assert f["n_parameters"] == 4 * 9
    # a pure monopole + dipole distribution is exact at order 1 too
    V1 = _reference_esp(R, q, mu, np.zeros_like(A), g)
    f1 = fit_multipoles(R, g, V1, net_charge=1.0, order=1)
    assert np.max(np.abs(f1["esp"] - V1)) <= 1e-8 and f1["n_parameters"] == 16
    # order 0 is the monopole fit of fitting.fit_monopoles
    f0 = fit_multipoles(R, g, V, net_charge=1.0, order=0)
    np.testing.assert_allclose(f0["charges"], fit_monopoles(R, g, V, 1.0), atol=1e-9)


def test_ill_posed_fit_refused():
    R, q, mu, A, g = _analytic_case(G=20)
    V = _reference_esp(R, q, mu, A, g)
    with pytest.raises(DataError, match="20 grid points cannot determine 35 free parameters"):
        fit_multipoles(R, g, V, 1.0, order=2)
    assert multipole_parameter_count(4, 1) == 16


def test_ill_posed_conformer_skipped_with_warning():
    from dcmnet.training.evaluate import fitted_multipole_errors
    from dcmnet.fitting import IllPosedFitWarning

    ds = bundled_subset(["water", "methanol"], 1)
    few = ds.molecule(1)
    keep = np.arange(10)                                        # 10 points, 6 atoms
    mols = [ds.molecule(0), {**few, "grid": few["grid"][keep], "esp": few["esp"][keep]}]
    from dcmnet.data.dataset import Dataset
    small = Dataset.from_molecules(mols)
    with pytest.warns(IllPosedFitWarning, match="molecule 1 .*10 ESP points.*23 free"):
        out = fitted_multipole_errors(small, order=1)
    assert np.isfinite(out["esp_rmse"][0]) and np.isnan(out["esp_rmse"][1])
    assert out["n_skipped"] == 1


def test_rmse_order_on_bundled_data():
    from dcmnet.training.evaluate import fitted_monopole_errors, fitted_multipole_errors

    ds = bundled_subset(["water", "methanol", "acetate", "pyridine", "methylammonium",
                         "N-methylacetamide"], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e0 = fitted_multipole_errors(ds, order=0)["esp_rmse"]
        e1 = fitted_multipole_errors(ds, order=1)["esp_rmse"]
        e2 = fitted_multipole_errors(ds, order=2)["esp_rmse"]
    np.testing.assert_allclose(e0, fitted_monopole_errors(ds)["esp_rmse"], rtol=1e-6)
    assert np.all(e0 >= e1) and np.all(e1 >= e2)
    assert np.median(e0) > 1.5 * np.median(e2)                   # not a tie
