"""``sweep show``: what a store holds, in words."""

from __future__ import annotations

import json
import math
from pathlib import Path  # noqa: F401

import xarray as xr

from sweep.store.read import done_chunks, open_sweep


def describe(path: str | Path) -> str:
    """Dims and sizes, variables with units, completeness and provenance of a store."""
    ds = open_sweep(path)
    done = done_chunks(path)
    lines = [
        f"{path}: {ds.attrs.get('title', '')}",
        f"  {'complete' if ds.attrs.get('sweep_complete') else 'INCOMPLETE'}: "
        f"{int(done.sum())} of {done.size} chunks written",
        f"  {math.prod(ds.sizes.values()):,} design points",
        "",
        "Dimensions:",
    ]
    for dim, size in ds.sizes.items():
        values = ds[dim].values.tolist()
        shown = values if len(values) <= 8 else values[:4] + ["..."] + values[-2:]
        lines.append(f"  {dim:<12} {size:>6}  [{ds[dim].attrs.get('units', '')}]  {shown}")
    lines += ["", "Variables:"]
    for name in sorted(map(str, ds.data_vars)):
        var: xr.DataArray = ds[name]
        lines.append(
            f"  {name:<22} [{var.attrs.get('units', '')}] {var.attrs.get('long_name', '')}"
            f"  ({', '.join(map(str, var.dims))}; {var.dtype})"
        )
    lines += ["", "Provenance:"]
    for key in (
        "engine_version",
        "git_commit",
        "jax_version",
        "jax_enable_x64",
        "float_dtype",
        "created_utc",
        "catalogue_hashes",
    ):
        lines.append(f"  {key}: {ds.attrs.get(key)}")
    lines.append(f"  sweep_spec: {json.loads(ds.attrs.get('sweep_spec', '{}')).get('source', '')}")
    return "\n".join(lines)
