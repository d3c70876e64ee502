"""Provenance of a sweep: versions, git commit, hashes of the catalogue entries used."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path

import jax

import grids
import grids.dtypes
import grids.gpus
import grids.ownership
import kernels
from grids.gpus import GPUS_FILE
from grids.models import load_model
from grids.profiles import load_profile
from grids.sweeps import SweepSpec

REPO = Path(__file__).resolve().parents[2]
"""The checkout this package runs from (sweep/engine/provenance.py -> its root)."""
KERNELS_DIR = Path(kernels.__file__).resolve().parent
GRIDS_DIR = Path(grids.__file__).resolve().parent


def engine_version() -> str:
    try:
        return importlib.metadata.version("llm-econ-sweep")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def git_commit() -> str:
    """The commit of the checkout the engine runs from ('unknown' outside a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def catalogue_hashes(spec: SweepSpec) -> dict[str, str]:
    """sha256 (first 16 hex digits) of every catalogue file the sweep reads."""
    hashes = {f"model:{k}": _sha(load_model(k).path.read_bytes()) for k in spec.axes["model"]}
    profiles = spec.axes.get("profile", [spec.fixed.get("profile")])
    hashes.update({f"profile:{p}": _sha(load_profile(p).path.read_bytes()) for p in profiles if p})
    hashes["gpus.toml"] = _sha(GPUS_FILE.read_bytes())
    return hashes


def code_version() -> str:
    """A hash of the code and catalogue data that decide every stored number: the package
    version, every module of kernels/ and grids/, and the catalogue files every sweep reads
    (grids/gpus.toml, grids/dtypes.toml, grids/ownership.toml; models and profiles are in
    ``catalogue_hashes``)."""
    files = sorted(KERNELS_DIR.glob("*.py")) + sorted(GRIDS_DIR.glob("*.py"))
    files += [Path(grids.gpus.GPUS_FILE), Path(grids.dtypes.DTYPES_FILE), Path(grids.ownership.OWNERSHIP_FILE)]
    digest = hashlib.sha256(engine_version().encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def store_version(spec: SweepSpec) -> str:
    """``code_version`` and the hashes of the model and profile files this sweep reads: what a
    store's numbers were computed with. A store of the same spec made with another version is
    recomputed, never completed with chunks of this one."""
    payload = dict(code=code_version(), catalogue=catalogue_hashes(spec))
    return _sha(json.dumps(payload, sort_keys=True).encode())


def spec_identity(spec: SweepSpec, chunks: tuple[int, ...]) -> str:
    """A hash of what the store holds and how it is laid out: the sweep's axes, fixed values,
    precision and chunking (the code and catalogues that computed it: ``store_version``)."""
    payload = dict(axes=spec.axes, fixed=spec.fixed, precision=spec.precision, chunks=list(chunks))
    return _sha(json.dumps(payload, sort_keys=True, default=str).encode())


def provenance(spec: SweepSpec, chunks: tuple[int, ...]) -> dict[str, object]:
    """Dataset attrs recording how the sweep was made."""
    return dict(
        title=f"LLM inference economics sweep '{spec.name}'",
        description=spec.description,
        engine_version=engine_version(),
        git_commit=git_commit(),
        jax_version=jax.__version__,
        jax_enable_x64=int(spec.precision == "float64"),  # JAX's 64-bit mode while evaluating
        float_dtype=spec.precision,
        float_note="metrics stored as float32 when float_dtype is float32 (relative error below 1e-6); "
        "params_total is float64 (float32 cannot hold parameter counts exactly)",
        catalogue_hashes=json.dumps(catalogue_hashes(spec), sort_keys=True),
        sweep_spec=json.dumps(
            dict(axes=spec.axes, fixed=spec.fixed, precision=spec.precision, source=spec.source), default=str
        ),
        spec_identity=spec_identity(spec, chunks),
        code_version=store_version(spec),
        created_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
