"""Import hygiene (STYLE.md): ``kernels`` imports only jax and itself, so importing it, and even
evaluating a design point, leaves xarray and zarr (the sweep engine's dependencies) unloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import kernels
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload
import dataclasses

def make(cls, value=1.0, **values):
    return cls(**{f.name: jnp.asarray(values.get(f.name, value), dtype=jnp.float64)
                  for f in dataclasses.fields(cls)})

from kernels.specs import DENSE_DEFAULTS
model = make(ModelSpec, **{**DENSE_DEFAULTS, **dict(n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, d_head=16,
             d_ffn=128, vocab=1000, tied_embeddings=0, qkv_bias=0)})
metrics = kernels.evaluate(model, make(GPUSpec, 1e12), make(Deployment), make(Workload, 16.0),
                           make(EngineProfile))
print(json.dumps({"loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("xarray", "zarr")),
                  "params_total": float(metrics.params_total)}))
"""


@pytest.mark.slow
def test_kernels_leave_xarray_and_zarr_unloaded():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout)
    assert result["loaded"] == []
    # Evaluate really ran: 2 V D + L (2 D N H + 2 D K H + 3 D F + 2 D) + D for the toy model
    # = 2*1000*64 + 2*(8,192 + 4,096 + 24,576 + 128) + 64 = 202,048 parameters.
    assert result["params_total"] == 202_048


SIDE_EFFECTS = """
import json
import grids, grids.axes, grids.sweeps, kernels
import jax
x64 = bool(jax.config.read("jax_enable_x64"))
import holoviews as hv
import sweep.viz.base, sweep.viz.figures
print(json.dumps({"x64": x64, "renderers": sorted(hv.Store.renderers)}))
"""


@pytest.mark.slow
def test_imports_have_no_side_effects():
    """Importing grids leaves JAX's 64-bit mode off (the engine and explain scope it), and
    importing the figure modules loads no plotting backend (the first figure does)."""
    out = subprocess.run(
        [sys.executable, "-c", SIDE_EFFECTS], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout) == {"x64": False, "renderers": []}
