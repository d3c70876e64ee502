"""``sweep bench``: the engine's own speed, measured in one run.

(a) in-memory points/s of the full metric set (chunks evaluated to numpy, compile excluded);
(b) a sweep of at least 1e8 points through ``sweep run`` in a subprocess to a temporary zarr
    store: wall time, peak RSS of that process, store size;
(c) points/s of the scalar pure-Python reference (``sweep.bench.reference``) on a sample, and the
    speedup of (a) over it;
(d) ``sweep optimize`` over at least 1e6 configurations (every catalogue model and GPU, tp, prompt
    and output lengths; the batch solved under two SLOs): evaluation time, and the time to trace
    and compile its program apart;
(e) in-memory points/s of the poisson scenario (requests at random, percentiles in closed form) on
    its own grid: the targets of (a) and (b) hold with it off, the grids above never hold it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from grids.gpus import load_gpus
from grids.models import model_keys
from grids.sweeps import SweepSpec, validate
from sweep.bench import reference
from sweep.engine.plan import make_plan

IN_MEMORY_CHUNKS = 24
IN_MEMORY_PASSES = 3
"""Timed passes over the sampled chunks. The rate reported is the fastest pass, as ``timeit``
advises: a shared VM's noise only ever slows a pass (on the 2-core development VM, back-to-back
passes of the same chunks ranged over 1.4-2.8e7 points/s); the median pass is reported beside it."""


def bench_spec(output_points: int, chunk_points: int = 2_000_000) -> dict[str, Any]:
    """A sweep over every dense catalogue model and GPU, with ``output_points`` output lengths."""
    return {
        "name": "bench",
        "description": "sweep bench: every catalogue model and GPU, dense grids of batch and lengths",
        "axes": {
            "model": model_keys(),
            "gpu": list(load_gpus()),
            "tp": [1, 2, 4, 8],
            "batch": {"start": 1, "stop": 1024, "num": 64},
            "input_len": {"start": 128, "stop": 131072, "num": 64},
            "output_len": {"start": 16, "stop": 4096, "num": output_points},
        },
        "engine": {"chunk_points": chunk_points, "precision": "float32"},
    }


def in_memory_rates(spec: SweepSpec) -> list[float]:
    """Points per second of chunk evaluation (full metric set, to numpy), after one warm-up chunk:
    one rate per pass (``IN_MEMORY_PASSES``) over ``IN_MEMORY_CHUNKS`` chunks spread evenly over
    the grid."""
    plan = make_plan(spec)
    ids = list(plan.chunk_ids())
    plan.evaluate(ids[0])  # compile
    # Chunks spread evenly over the grid, so that every model's architecture is represented.
    sample = [ids[i] for i in np.linspace(1, len(ids) - 1, min(IN_MEMORY_CHUNKS, len(ids) - 1)).astype(int)]
    rates = []
    for _ in range(IN_MEMORY_PASSES):
        start, points = time.perf_counter(), 0
        for chunk_id in sample:
            points += next(iter(plan.evaluate(chunk_id).values())).size
        rates.append(points / (time.perf_counter() - start))
    return rates


OPTIMIZE_SLOS = ("user_tok_s>=30", "ttft_s<=1")


def optimize_spec() -> dict[str, Any]:
    """1,089,536 configurations (19 models x 14 GPUs x 4 tp x 32 prompt x 32 output lengths)."""
    raw = bench_spec(32)
    raw["axes"].update(batch=[1], input_len={"start": 128, "stop": 32768, "num": 32})
    raw["fixed"] = {"scenario": "concurrency", "profile": "vllm"}
    return raw


def optimize_time() -> dict[str, float]:
    """Seconds of ``sweep optimize``'s evaluation of ``optimize_spec`` (all chunks, to numpy), after
    the program is traced, compiled and run once (``optimize_compile_s``)."""
    from sweep.engine.optimize import optimum_fn, parse_slo, without_batch

    spec = without_batch(validate(optimize_spec(), "sweep bench"))
    start = time.perf_counter()
    plan = make_plan(spec, fn=optimum_fn(tuple(parse_slo(s) for s in OPTIMIZE_SLOS)))
    ids = list(plan.chunk_ids())
    plan.evaluate(ids[0])
    compiled = time.perf_counter()
    for chunk_id in ids:
        plan.evaluate(chunk_id)
    return {
        "optimize_points": float(spec.n_points),
        "optimize_s": time.perf_counter() - compiled,
        "optimize_compile_s": compiled - start,
    }


def poisson_spec() -> dict[str, Any]:
    """A grid under the poisson scenario: two models, four GPUs, tp, two prompts and 16 rates
    (1,024 points: the scenario solves a Markov chain per point, ~1e2 points/s on 2 cores)."""
    return {
        "name": "bench-poisson",
        "description": "sweep bench: requests at random, percentiles in closed form",
        "axes": {
            "model": ["llama-3.1-8b", "llama-3.3-70b"],
            "gpu": ["h100-sxm", "h200", "a100-sxm-80gb", "mi300x"],
            "tp": [1, 2, 4, 8],
            "batch": [1],
            "input_len": [512, 4096],
            "output_len": [256],
            "request_rate": {"start": 0.25, "stop": 64.0, "num": 16},
        },
        "fixed": {"scenario": "poisson", "profile": "vllm"},
        "engine": {"chunk_points": 2_000_000, "precision": "float32"},
    }


def poisson_rate() -> dict[str, float]:
    """Points per second of the poisson grid evaluated in memory (all its chunks, after the
    program is compiled and run once), and the compile time apart."""
    spec = validate(poisson_spec(), "sweep bench")
    plan = make_plan(spec)
    ids = list(plan.chunk_ids())
    start = time.perf_counter()
    plan.evaluate(ids[0])
    compiled = time.perf_counter()
    points = 0
    for chunk_id in ids:
        points += next(iter(plan.evaluate(chunk_id).values())).size
    return {
        "poisson_points_per_s": points / (time.perf_counter() - compiled),
        "poisson_points": float(points),
        "poisson_compile_s": compiled - start,
    }


TERM_INTERVAL_CHUNKS = 3
"""Chunks timed with ``term_intervals`` on, after the one that compiles."""


def term_intervals_rate() -> dict[str, float]:
    """Points per second of the bench grid (4 output lengths) with ``term_intervals`` on under
    ``trtllm`` (8 fitted terms: one forward-mode product per term beside the metrics), over
    ``TERM_INTERVAL_CHUNKS`` chunks spread over the grid after one compiles, and the compile apart."""
    raw = bench_spec(4)
    raw["fixed"] = {"profile": "trtllm"}
    raw["engine"]["term_intervals"] = True
    plan = make_plan(validate(raw, "sweep bench"))
    ids = list(plan.chunk_ids())
    start = time.perf_counter()
    plan.evaluate(ids[0])
    compiled = time.perf_counter()
    points = 0
    for i in np.linspace(1, len(ids) - 1, min(TERM_INTERVAL_CHUNKS, len(ids) - 1)).astype(int):
        points += next(iter(plan.evaluate(ids[i]).values())).size
    return {
        "term_intervals_points_per_s": points / (time.perf_counter() - compiled),
        "term_intervals_compile_s": compiled - start,
    }


def reference_rate(spec: SweepSpec, samples: int, seed: int = 0) -> float:
    """Points per second of the pure-Python reference on random points of the same grid."""
    from grids.models import load_model
    from grids.profiles import load_profile

    rng = np.random.default_rng(seed)
    gpus = load_gpus()
    profile = {k: float(v) for k, v in dataclasses.asdict(load_profile("roofline").spec).items()}
    models = {k: {f: float(v) for f, v in dataclasses.asdict(load_model(k).spec).items()} for k in spec.axes["model"]}
    gpu_dicts = {k: {f: float(v) for f, v in dataclasses.asdict(gpus[k].spec).items()} for k in spec.axes["gpu"]}
    points = [{dim: values[rng.integers(len(values))] for dim, values in spec.axes.items()} for _ in range(samples)]
    start = time.perf_counter()
    for p in points:
        reference.evaluate(
            models[p["model"]], gpu_dicts[p["gpu"]], profile, p["tp"], p["batch"], p["input_len"], p["output_len"]
        )
    return samples / (time.perf_counter() - start)


def end_to_end(spec_raw: dict[str, Any], scheduler: str | None = None) -> dict[str, float]:
    """``sweep run`` of the spec in a fresh process (with ``--scheduler`` if given): wall time,
    peak RSS of that process (not of Dask workers), store bytes."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        spec_path, store_path = Path(tmp) / "bench.toml", Path(tmp) / "bench.zarr"
        spec_path.write_text(_to_toml(spec_raw))
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        extra = ["--scheduler", scheduler] if scheduler else []
        subprocess.run(
            [sys.executable, "-m", "sweep.cli", "run", str(spec_path), "-o", str(store_path), "-q", *extra],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        size = sum(f.stat().st_size for f in store_path.rglob("*") if f.is_file())
    if peak_kib <= before:
        peak_kib = before  # ru_maxrss is the largest child so far; this process ran only this child
    return {"end_to_end_s": wall, "peak_rss_bytes": float(peak_kib) * 1024.0, "store_bytes": float(size)}


def _to_toml(raw: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    lines = [f"name = {value(raw['name'])}", f"description = {value(raw['description'])}"]
    for table in ("axes", "fixed", "engine"):
        if table not in raw:
            continue
        lines.append(f"[{table}]")
        lines += [f"{k} = {value(v)}" for k, v in raw[table].items()]
    return "\n".join(lines) + "\n"


EXPLAIN = [
    "explain",
    "--model",
    "llama-3.3-70b",
    "--gpu",
    "h100-sxm",
    "--tp",
    "4",
    "--batch",
    "1",
    "--input",
    "2048",
    "--output",
    "300",
    "--convention",
    "article",
]
QUERY = [
    "--sel",
    "profile=vllm-h100",
    "--sel",
    "input_len=2048",
    "--sel",
    "output_len=300",
    "--where",
    "user_tok_s>=30",
    "--best",
    "usd_per_mtok_output",
    "--over",
    "tp,batch",
]


def command_s(args: list[str], env: dict[str, str] | None = None, repeats: int = 3) -> float:
    """Median wall time of ``sweep ARGS`` in a fresh process (imports included), over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "sweep.cli", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def answer_times() -> dict[str, float]:
    """Wall time of one question: ``sweep explain`` of the article's point with an empty JAX
    compilation cache (cold), ``sweep catalog``, and ``sweep query`` of the demo store
    (article-70b, made here in a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        cold = {"SWEEP_JAX_CACHE": str(Path(tmp) / "empty-cache"), "JAX_COMPILATION_CACHE_DIR": str(Path(tmp) / "c")}
        store = str(Path(tmp) / "demo.zarr")
        subprocess.run(
            [sys.executable, "-m", "sweep.cli", "run", "article-70b", "-o", store, "-q"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return {
            "explain_cold_s": command_s(EXPLAIN, cold),
            "catalog_s": command_s(["catalog"]),
            "query_s": command_s(["query", store, *QUERY]),
        }


def run_bench(min_points: float = 1e8, reference_samples: int = 40, scheduler: str | None = None) -> dict[str, float]:
    """All three measurements; the end-to-end grid is sized to at least ``min_points``. With
    ``scheduler`` the same end-to-end sweep also runs on Dask and the ratio of wall times is given."""
    per_output = math.prod(
        len(v) if isinstance(v, list) else v["num"] for k, v in bench_spec(1)["axes"].items() if k != "output_len"
    )
    raw = bench_spec(max(1, math.ceil(min_points / per_output)))
    spec = validate(raw, "sweep bench")
    rates = in_memory_rates(spec)
    e2e = end_to_end(raw)
    ref = reference_rate(spec, reference_samples)
    rate = max(rates)
    out = {
        "in_memory_points_per_s": rate,
        "in_memory_points_per_s_median": float(np.median(rates)),
        "end_to_end_points": float(spec.n_points),
        **e2e,
        "reference_points_per_s": ref,
        "speedup_vs_reference": rate / ref,
        "cpu_count": float(os.cpu_count() or 0),
        **optimize_time(),
        **answer_times(),
        **poisson_rate(),
        **term_intervals_rate(),
    }
    if scheduler:
        dask_s = end_to_end(raw, scheduler)["end_to_end_s"]
        out.update(dask_end_to_end_s=dask_s, dask_over_single_process=dask_s / e2e["end_to_end_s"])
    return out
