"""Masked losses and metric sums of DCM-net on padded batches (pure JAX).

Loss of a batch (weights are runtime arrays, so changing them never recompiles):

    L = esp_w · mean_m [ mean_{g real} (V_pred − V_ref)² ]           (kcal/(mol·e))²
      + esp_rmse_w · mean_m sqrt(mean_{g real} (V_pred − V_ref)² + ε)  kcal/(mol·e)
      + chg_w · mean_{m with mono} [ mean_{i real} (Σ_k q_ik − mono_i)² ]   e²
      + dipole_w · mean_{m with dipole} |μ_pred − μ_ref|²               D²

The ESP error is averaged per molecule over its real grid points, then over the real
molecules of the batch, so every molecule counts once whatever its size. The second
term (per-molecule RMSE, ``ε`` = 1e-6 (kcal/(mol·e))² keeps its gradient finite at a
perfect fit) weighs a molecule's error by ``1/(2 RMSE_m)`` relative to the first, so
molecules already well fitted keep pulling: it targets the median per-molecule RMSE that
``evaluate`` reports rather than the mean of squares (docs/training.md). Padded grid
points, padded atoms and dummy molecules contribute nothing. Reference charges and
dipoles enter only for molecules that really have them.

Batches are those of :data:`dcmnet.data.batching.BATCH_SPEC`; scalars are annotated
``Float[Array, ""]`` (jaxtyping, dimension names of :data:`~dcmnet.data.batching.DIMENSIONS`).
"""
from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from dcmnet.model import predict_batch
from dcmnet.units import EANGSTROM_TO_DEBYE, HARTREE_TO_KCAL_MOL

#: Names of the runtime loss weights.
WEIGHT_KEYS = ("esp_w", "chg_w", "dipole_w", "esp_rmse_w")
#: ε of the per-molecule RMSE term, (kcal/(mol·e))².
RMSE_EPS = 1e-6
#: Outputs of :func:`dcmnet.model.predict_batch` (NumPy or JAX arrays, leading axis B).
Predictions = dict[str, Float[Array | np.ndarray, "B ..."]]
#: Keys of the metric sums returned by :func:`loss_and_metrics` (summed over batches).
SUM_KEYS = ("n_mol", "loss_sum", "esp_se", "esp_ae", "n_points", "chg_se", "chg_ae",
            "n_chg", "dip_ae", "dip_se", "n_dip", "q_sum", "q_sq", "n_sites")


def weights_array(esp_w: Real[ArrayLike, ""] = 1.0,
                  chg_w: Real[ArrayLike, ""] = 0.0,
                  dipole_w: Real[ArrayLike, ""] = 0.0,
                  esp_rmse_w: Real[ArrayLike, ""] = 0.0) -> dict[str, Float[Array, ""]]:
    """Loss weights as float32 arrays (runtime values for jitted steps)."""
    return {"esp_w": jnp.float32(esp_w), "chg_w": jnp.float32(chg_w),
            "dipole_w": jnp.float32(dipole_w), "esp_rmse_w": jnp.float32(esp_rmse_w)}


def loss_and_metrics(model, params, batch: Mapping[str, ArrayLike],
                     weights: Mapping[str, Real[ArrayLike, ""]],
                     esp_chunk_size: int | None = None
                     ) -> tuple[Float[Array, ""], tuple[dict[str, Float[ArrayLike, ""]],
                                                        Predictions]]:
    """Scalar loss and a dict of metric sums (see :data:`SUM_KEYS`) for one batch.

    Metric sums are in kcal/(mol·e) (ESP), e (charges) and D (dipole) so that epoch metrics
    are ``sqrt(esp_se / n_points)`` etc. Returns ``(loss, (sums, predictions))``: the loss
    and every sum a float32 scalar (shape ``()``), the predictions those of
    :func:`dcmnet.model.predict_batch` (leading axis B).
    """
    out = predict_batch(model, params, batch, esp_chunk_size)
    mol = batch["mol_mask"].astype(jnp.float32)
    n_mol = jnp.maximum(mol.sum(), 1.0)
    gmask = batch["grid_mask"].astype(jnp.float32)
    amask = batch["atom_mask"].astype(jnp.float32)

    # points of dummy molecules (mol_mask 0) count nowhere: neither in the loss nor in the
    # metric sums (make_batch zeroes their grid mask too; this keeps the sums right if not)
    err = (out["esp"] - batch["esp"]) * HARTREE_TO_KCAL_MOL * gmask * mol[:, None]
    n_g = gmask.sum(-1)
    mse_m = (err**2).sum(-1) / jnp.maximum(n_g, 1.0)
    esp_loss = (mse_m * mol).sum() / n_mol
    esp_rmse_loss = (jnp.sqrt(mse_m + RMSE_EPS) * mol).sum() / n_mol

    cm = batch["mono_mask"].astype(jnp.float32) * mol
    cerr = (out["atom_charges"] - batch["mono"]) * amask
    n_a = amask.sum(-1)
    cmse_m = (cerr**2).sum(-1) / jnp.maximum(n_a, 1.0)
    chg_loss = (cmse_m * cm).sum() / jnp.maximum(cm.sum(), 1.0)

    dm = batch["dipole_mask"].astype(jnp.float32) * mol
    derr = (out["dipole"] - batch["dipole"]) * EANGSTROM_TO_DEBYE
    dse = (derr**2).sum(-1)
    dip_loss = (dse * dm).sum() / jnp.maximum(dm.sum(), 1.0)

    loss = (weights["esp_w"] * esp_loss + weights["chg_w"] * chg_loss
            + weights["dipole_w"] * dip_loss
            + weights.get("esp_rmse_w", 0.0) * esp_rmse_loss)

    site_mask = jnp.broadcast_to(amask[..., None], out["charges"].shape)
    qs = out["charges"] * site_mask
    sums = {
        "n_mol": mol.sum(),
        "loss_sum": loss * mol.sum(),
        "esp_se": (err**2).sum(),
        "esp_ae": jnp.abs(err).sum(),
        "n_points": (gmask * mol[:, None]).sum(),
        "chg_se": ((cerr**2).sum(-1) * cm).sum(),
        "chg_ae": (jnp.abs(cerr).sum(-1) * cm).sum(),
        "n_chg": (n_a * cm).sum(),
        "dip_ae": (jnp.sqrt(dse + 1e-30) * dm).sum(),
        "dip_se": (dse * dm).sum(),
        "n_dip": dm.sum(),
        "q_sum": qs.sum(),
        "q_sq": (qs**2).sum(),
        "n_sites": site_mask.sum(),
        "q_min": jnp.min(jnp.where(site_mask > 0, out["charges"], jnp.inf)),
        "q_max": jnp.max(jnp.where(site_mask > 0, out["charges"], -jnp.inf)),
    }
    return loss, (sums, out)


def epoch_metrics(sums: Mapping[str, Real[ArrayLike, ""]]) -> dict[str, float]:
    """Epoch metrics from accumulated sums (plain floats; NaN where undefined).

    Keys: ``loss``, ``esp_mae``, ``esp_rmse`` (kcal/(mol·e)), ``charge_mae``,
    ``charge_rmse`` (e), ``dipole_mae`` (D), ``q_mean``, ``q_std``, ``q_min``, ``q_max`` (e).
    """
    import math

    def ratio(a, b):
        return float(sums[a]) / float(sums[b]) if float(sums[b]) > 0 else math.nan

    q_mean = ratio("q_sum", "n_sites")
    q_var = ratio("q_sq", "n_sites") - q_mean**2 if not math.isnan(q_mean) else math.nan
    return {
        "loss": ratio("loss_sum", "n_mol"),
        "esp_mae": ratio("esp_ae", "n_points"),
        "esp_rmse": math.sqrt(ratio("esp_se", "n_points")) if float(sums["n_points"]) > 0 else math.nan,
        "charge_mae": ratio("chg_ae", "n_chg"),
        "charge_rmse": math.sqrt(ratio("chg_se", "n_chg")) if float(sums["n_chg"]) > 0 else math.nan,
        "dipole_mae": ratio("dip_ae", "n_dip"),
        "q_mean": q_mean,
        "q_std": math.sqrt(max(q_var, 0.0)) if not math.isnan(q_var) else math.nan,
        "q_min": float(sums.get("q_min", math.nan)),
        "q_max": float(sums.get("q_max", math.nan)),
    }


def accumulate(total: dict[str, float] | None,
               sums: Mapping[str, Real[ArrayLike, ""]]) -> dict[str, float]:
    """Add one batch's metric sums (numpy/jax scalars) into running totals (floats)."""
    s = {k: float(v) for k, v in sums.items()}
    if total is None:
        return s
    out = dict(total)
    for k, v in s.items():
        if k == "q_min":
            out[k] = min(out[k], v)
        elif k == "q_max":
            out[k] = max(out[k], v)
        else:
            out[k] = out[k] + v
    return out
