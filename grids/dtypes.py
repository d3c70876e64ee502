"""Number formats of weights and KV cache (``grids/dtypes.toml``), with their scale overhead.

b = (bits + scale_bits / group_size) / 8 bytes per value: int4 with one fp16 scale per 128 weights
stores 4.125 bits, MXFP4 with one 8-bit scale per 32 stores 4.25 bits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from grids._values import number, read_toml, text
from grids.errors import SpecError
from kernels.specs import COMPUTE_DTYPES

DTYPES_FILE = Path(__file__).parent / "dtypes.toml"


@dataclass(frozen=True)
class DType:
    """One number format: its storage width and the compute precision it runs at by default."""

    name: str
    bytes_per_elem: float  # including the scale overhead [byte]
    compute: str  # a name of kernels.specs.COMPUTE_DTYPES: where the GPU has tensor cores for it
    fallback_compute: str  # where the GPU has not (weight-only kernels, W*A16)
    kv: bool  # may store the KV cache
    act_bytes_per_elem: float  # width of the activations exchanged between GPUs [byte]
    source: str


@functools.lru_cache(maxsize=1)
def load_dtypes() -> dict[str, DType]:
    """All formats of grids/dtypes.toml, validated."""
    out = {}
    for name, table in read_toml(DTYPES_FILE).items():
        where = f"{DTYPES_FILE} [{name}]"
        bits = number(where, table, "bits", integer=True)
        scale = number(where, table, "scale_bits", positive=False, integer=True)
        group = number(where, table, "group_size", positive=False, integer=True)
        compute, fallback = text(where, table, "compute"), text(where, table, "fallback_compute")
        for field, value in (("compute", compute), ("fallback_compute", fallback)):
            if value not in COMPUTE_DTYPES:
                raise SpecError(f"{where}: '{field}' must be one of {', '.join(COMPUTE_DTYPES)}, got {value!r}")
        if fallback != compute:
            text(where, table, "fallback_compute_source")
        if not isinstance(table.get("kv"), bool):
            raise SpecError(f"{where}: field 'kv' must be true or false")
        overhead = scale / group if group > 0 else 0.0
        act_bits = number(where, table, "activation_bits", integer=True)
        out[name] = DType(
            name, (bits + overhead) / 8.0, compute, fallback, table["kv"], act_bits / 8.0, text(where, table, "source")
        )
    return out


def kv_dtypes() -> dict[str, float]:
    """KV-cache formats -> bytes per cached value."""
    return {k: d.bytes_per_elem for k, d in load_dtypes().items() if d.kv}


def compute_code(name: str) -> float:
    """The ``Deployment.compute_dtype`` code of a compute precision name (bf16, fp8, int8, fp4)."""
    return float(COMPUTE_DTYPES.index(name))
