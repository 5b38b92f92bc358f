"""Data-parallel training over all JAX devices (``jax.sharding``).

Each global batch is split along its molecule axis across the devices of a 1-D mesh
``("data",)``; parameters, optimizer state and EMA are replicated. XLA (GSPMD) inserts the
gradient all-reduce, so the update equals the single-device update up to float rounding.
With several processes (multi-host, after ``jax.distributed.initialize()``), every process
builds the same global batch order and contributes the rows of its local devices
(``jax.make_array_from_process_local_data``).
"""
from __future__ import annotations

import numpy as np

from dcmnet.errors import ConfigError


class DataParallel:
    """Placement of batches and state on a device mesh.

    Args:
        batch_size: global molecules per batch; must be divisible by the device count.
        devices: devices to use (default ``jax.devices()``, all processes).
    Raises:
        ConfigError: ``batch_size`` not divisible by the number of devices.
    """

    def __init__(self, batch_size: int, devices=None):
        import jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        self.devices = list(devices if devices is not None else jax.devices())
        n = len(self.devices)
        if batch_size % n:
            raise ConfigError(f"batch size {batch_size} is not divisible by the {n} devices; "
                             f"use a multiple of {n} or --no-data-parallel.")
        self.mesh = Mesh(np.array(self.devices), ("data",))
        self.data = NamedSharding(self.mesh, PartitionSpec("data"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.n_processes = jax.process_count()
        self.process = jax.process_index()

    @property
    def size(self) -> int:
        """Number of devices."""
        return len(self.devices)

    def put_batch(self, batch: dict) -> dict:
        """Shard a host batch (every array's axis 0 = molecules) across the devices."""
        import jax

        if self.n_processes == 1:
            return jax.device_put(batch, self.data)
        out = {}
        for k, v in batch.items():
            rows = np.array_split(v, self.n_processes, axis=0)[self.process]
            out[k] = jax.make_array_from_process_local_data(self.data, rows, v.shape)
        return out

    def put_state(self, state):
        """Replicate a pytree (parameters, optimizer state) on every device."""
        import jax

        return jax.device_put(state, self.replicated)


def maybe_data_parallel(batch_size: int, enabled: bool, console=None) -> DataParallel | None:
    """A :class:`DataParallel` when enabled and more than one device exists, else ``None``.

    A batch size that does not divide evenly falls back to one device with a warning.
    """
    import jax

    if not enabled or len(jax.devices()) < 2:
        return None
    try:
        return DataParallel(batch_size)
    except ConfigError as exc:
        if console is not None:
            console.print(f"[yellow]data parallel off:[/] {exc}")
        return None
