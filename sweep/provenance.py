"""Provenance of a sweep: versions, git commit, hashes of the catalogue entries used."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path

import jax

from grids.gpus import GPUS_FILE
from grids.models import load_model
from grids.profiles import load_profile
from grids.sweeps import SweepSpec

REPO = Path(__file__).resolve().parent.parent


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


def spec_identity(spec: SweepSpec, chunks: tuple[int, ...]) -> str:
    """A hash of everything that decides a store's content and layout (not its creation time)."""
    payload = dict(
        axes=spec.axes,
        fixed=spec.fixed,
        precision=spec.precision,
        chunks=list(chunks),
        catalogue=catalogue_hashes(spec),
        engine=engine_version(),
    )
    return _sha(json.dumps(payload, sort_keys=True, default=str).encode())


def provenance(spec: SweepSpec, chunks: tuple[int, ...]) -> dict[str, object]:
    """Dataset attrs recording how the sweep was made."""
    return dict(
        title=f"LLM inference economics sweep '{spec.name}'",
        description=spec.description,
        engine_version=engine_version(),
        git_commit=git_commit(),
        jax_version=jax.__version__,
        jax_enable_x64=int(bool(jax.config.jax_enable_x64)),
        float_dtype=spec.precision,
        float_note="metrics stored as float32 when float_dtype is float32 (relative error below 1e-6); "
        "params_total is float64 (float32 cannot hold parameter counts exactly)",
        catalogue_hashes=json.dumps(catalogue_hashes(spec), sort_keys=True),
        sweep_spec=json.dumps(
            dict(axes=spec.axes, fixed=spec.fixed, precision=spec.precision, source=spec.source), default=str
        ),
        spec_identity=spec_identity(spec, chunks),
        created_utc=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
