"""Zarr stores of sweeps: ``read`` opens a store and says how far it got (fast: neither JAX nor the
engine is imported), ``write`` creates one and fills it chunk by chunk, ``run`` drives a sweep into
a store resumably, ``distributed`` runs its chunks as Dask tasks.

Only the reading names are exported here, so that ``import sweep.store`` stays as light as
``sweep.store.read``."""

from sweep.store.errors import CorruptStoreError, StoreError, StoreLockedError
from sweep.store.read import PROGRESS, IncompleteStoreWarning, done_chunks, location, open_sweep

__all__ = [
    "PROGRESS",
    "CorruptStoreError",
    "IncompleteStoreWarning",
    "StoreError",
    "StoreLockedError",
    "done_chunks",
    "location",
    "open_sweep",
]
