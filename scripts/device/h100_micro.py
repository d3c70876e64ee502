"""Microbenchmarks on a lent NVIDIA GPU for the engine profiles' efficiency terms.

Sections (each with its own time budget; partial results are written to ``--out`` as they come):

1. ``matmul``: weight matmuls of Llama-3.1-70B-like shapes at TP 1 and TP 8, tokens per step M
   from 1 to 16384, bf16 (``F.linear``) and fp8 e4m3 (``torch._scaled_mm``, per-tensor scales,
   with and without fast accumulation): achieved FLOP/s / dense peak and weight bytes per second /
   HBM peak. Timed as CUDA-graph replays of several calls, rotating weight copies so that the
   weights streamed per call exceed L2.
2. ``hbm``: ``torch.sum`` and ``amax`` over a 4 GiB bf16 tensor (read), device-to-device copy.
3. ``attention``: decode attention (one query token per sequence) against a bf16 KV cache with
   Llama-70B GQA at TP 1 (64 q / 8 kv heads) and TP 8 (8 / 1), via
   ``F.scaled_dot_product_attention``: KV bytes read per second / HBM peak against work items
   B * kv_heads / n_SM.
4. ``prefill_attention``: causal prefill attention of B sequences of L = 512 to 131072 tokens (flash
   SDPA, GQA), Llama-70B heads at TP 1 and TP 8: achieved FLOP/s / dense bf16 peak.
5. ``chunk_attention``: a prompt chunk of C tokens attending to T cached tokens (chunked prefill).
6. ``engine``: the project's JAX engine (``sweep.engine.plan``) on the bench grid, in
   subprocesses with ``JAX_PLATFORMS=cuda`` and ``cpu``: points/s.

Run on the device (python3 with torch + CUDA):
    python3 scripts/device/h100_micro.py --out $OUT/h100_micro.json
The module imports neither torch nor jax at top level, so it byte-compiles anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# Datasheet peaks by the name torch reports (dense, no sparsity). H100 SXM: NVIDIA H100 Tensor Core
# GPU datasheet; H200 (SXM): NVIDIA H200 datasheet, the H100's tensor rates with 4.8 TB/s HBM3e.
DEVICE_PEAKS = {
    "H100": {"bf16": 989.4e12, "fp8": 1978.9e12, "hbm": 3.35e12},
    "H200": {"bf16": 989.4e12, "fp8": 1978.9e12, "hbm": 4.8e12},
}
PEAK_BF16 = DEVICE_PEAKS["H100"]["bf16"]  # [FLOP/s], set from the device in main()
PEAK_FP8 = DEVICE_PEAKS["H100"]["fp8"]  # [FLOP/s]
PEAK_HBM = DEVICE_PEAKS["H100"]["hbm"]  # [B/s]
L2_DEFEAT_BYTES = 256e6  # rotate input copies until this many bytes are touched (L2 is 50 MB)

M_VALUES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
# (name, K, N) at TP 1 and which of K / N is split by tensor parallelism
SHAPES = [
    ("qkv", 8192, 10240, "N"),
    ("o", 8192, 8192, "K"),
    ("gate_up", 8192, 57344, "N"),
    ("down", 28672, 8192, "K"),
]
ATTN_HEADS = {1: (64, 8), 8: (8, 1)}  # tp -> (query heads, kv heads) per GPU
ATTN_B = [1, 4, 16, 64, 256]
ATTN_T = [1024, 4096, 16384]
HEAD_DIM = 128


class Results:
    """The JSON document, rewritten after every addition so that a kill keeps what was measured."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc: dict[str, Any] = {"sections": {}, "errors": [], "notes": []}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=str))
        tmp.replace(self.path)

    def add(self, section: str, row: dict[str, Any]) -> None:
        self.doc["sections"].setdefault(section, []).append(row)
        self.save()

    def error(self, where: str, exc: BaseException) -> None:
        msg = f"{where}: {type(exc).__name__}: {exc}"
        print("ERROR", msg, flush=True)
        self.doc["errors"].append({"where": where, "error": msg, "trace": traceback.format_exc()[-2000:]})
        self.save()


def log(*args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


def nvidia_smi() -> dict[str, str]:
    fields = (
        "name,driver_version,pstate,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,"
        "power.draw,power.limit,temperature.gpu,memory.total"
    )
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
        ).stdout.strip()
        return dict(zip(fields.split(","), [v.strip() for v in out.split(",")]))
    except Exception as exc:  # noqa: BLE001 - informational only
        return {"error": repr(exc)}


# ---------------------------------------------------------------- timing


def time_calls(torch: Any, fn: Any, n_inner: int, reps: int = 10, warm: int = 2, graph: bool = True) -> dict[str, Any]:
    """Median seconds per call of ``fn(i)`` (i = call index within a block of ``n_inner`` calls),
    from ``reps`` CUDA-event-timed blocks after ``warm`` blocks. With ``graph`` the block is
    captured as a CUDA graph and replayed (no launch gaps); falls back to eager launches."""
    how = "eager"
    run_block = None
    if graph:
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for i in range(min(n_inner, 3)):
                    fn(i)
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for i in range(n_inner):
                    fn(i)
            run_block = g.replay
            how = "cuda_graph"
        except Exception as exc:  # noqa: BLE001 - fall back to eager timing
            how = f"eager (graph failed: {type(exc).__name__})"
            torch.cuda.synchronize()
            run_block = None
    if run_block is None:

        def run_block() -> None:
            for i in range(n_inner):
                fn(i)

    for _ in range(warm):
        run_block()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run_block()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / n_inner)
    torch.cuda.synchronize()
    return {
        "s": statistics.median(times),
        "s_min": min(times),
        "s_max": max(times),
        "reps": reps,
        "n_inner": n_inner,
        "timing": how,
    }


def inner_count(est_s: float, target_s: float = 3e-3, at_least: int = 1, cap: int = 256) -> int:
    return max(at_least, min(cap, math.ceil(target_s / max(est_s, 1e-7))))


# ---------------------------------------------------------------- sections


def section_hbm(torch: Any, res: Results, deadline: float) -> None:
    n = 2**31  # 4 GiB of bf16
    x = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    nbytes = x.numel() * x.element_size()
    for name, fn, moved in [
        ("sum_bf16", lambda i: torch.sum(x), nbytes),
        ("amax_bf16", lambda i: torch.amax(x), nbytes),
    ]:
        if time.time() > deadline:
            break
        t = time_calls(torch, fn, 1, reps=20, warm=3, graph=False)
        row = {
            "op": name,
            "bytes": moved,
            **t,
            "B_per_s": moved / t["s"],
            "frac_of_hbm_peak": moved / t["s"] / PEAK_HBM,
        }
        res.add("hbm", row)
        log(f"hbm {name}: {row['B_per_s'] / 1e12:.3f} TB/s = {row['frac_of_hbm_peak']:.3f}")
    y = torch.empty_like(x)
    t = time_calls(torch, lambda i: y.copy_(x), 1, reps=20, warm=3, graph=False)
    moved = 2 * nbytes
    row = {"op": "copy_d2d", "bytes": moved, **t, "B_per_s": moved / t["s"], "note": "bytes counts read + write"}
    row["frac_of_hbm_peak"] = row["B_per_s"] / PEAK_HBM
    res.add("hbm", row)
    log(f"hbm copy: {row['B_per_s'] / 1e12:.3f} TB/s (read+write) = {row['frac_of_hbm_peak']:.3f}")
    x = y = None  # free the 8 GiB before the next section
    torch.cuda.empty_cache()


def matmul_check(torch: Any, res: Results) -> None:
    """Relative error of the bf16 and fp8 paths against a float32 product (fresh random inputs)."""
    import torch.nn.functional as F

    x = torch.randn(64, 1024, device="cuda")
    w = torch.randn(2048, 1024, device="cuda") / 32
    ref = x @ w.t()
    out = {}
    out["bf16_rel_err"] = float((F.linear(x.bfloat16(), w.bfloat16()).float() - ref).norm() / ref.norm())
    try:
        f8 = torch.float8_e4m3fn
        one = torch.tensor(1.0, device="cuda")
        y = torch._scaled_mm(x.to(f8), w.to(f8).t(), one, one, out_dtype=torch.bfloat16)
        out["fp8_rel_err"] = float((y.float() - ref).norm() / ref.norm())
    except Exception as exc:  # noqa: BLE001
        out["fp8_error"] = repr(exc)
    res.doc["matmul_check"] = out
    res.save()
    log("matmul check", out)


def section_matmul(torch: Any, res: Results, deadline: float) -> None:
    import torch.nn.functional as F

    f8 = getattr(torch, "float8_e4m3fn", None)
    variants = [("bf16", False), ("fp8", False), ("fp8_fast_accum", True)]
    fp8_ok = f8 is not None
    for variant, fast in variants:
        is_fp8 = variant.startswith("fp8")
        if is_fp8 and not fp8_ok:
            continue
        peak = PEAK_FP8 if is_fp8 else PEAK_BF16
        itemsize = 1 if is_fp8 else 2
        for tp in (1, 8):
            for name, k0, n0, split in SHAPES:
                if time.time() > deadline:
                    res.doc["notes"].append(f"matmul: deadline reached before {variant} tp{tp} {name}")
                    res.save()
                    log("matmul deadline reached")
                    return
                k, n = (k0 // tp, n0) if split == "K" else (k0, n0 // tp)
                w_bytes = k * n * itemsize
                copies = max(1, min(64, math.ceil(L2_DEFEAT_BYTES / w_bytes)))
                try:
                    ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / math.sqrt(k) for _ in range(copies)]
                    if is_fp8:
                        ws = [w.to(f8) for w in ws]
                    one = torch.tensor(1.0, device="cuda", dtype=torch.float32)
                except Exception as exc:  # noqa: BLE001
                    res.error(f"matmul alloc {variant} tp{tp} {name}", exc)
                    continue
                for m in M_VALUES:
                    if time.time() > deadline:
                        break
                    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
                    if is_fp8:
                        x = x.to(f8)

                        def fn(i: int, x: Any = x, ws: Any = ws, fast: bool = fast, one: Any = one) -> Any:
                            w = ws[i % len(ws)].t()
                            return torch._scaled_mm(x, w, one, one, out_dtype=torch.bfloat16, use_fast_accum=fast)

                    else:

                        def fn(i: int, x: Any = x, ws: Any = ws) -> Any:
                            return F.linear(x, ws[i % len(ws)])

                    flops = 2.0 * m * k * n
                    est = max(flops / (0.7 * peak), (w_bytes + m * (k * itemsize + 2 * n)) / 2.8e12) + 3e-6
                    n_inner = inner_count(est, at_least=copies if m <= 1024 else 1)
                    try:
                        t = time_calls(torch, fn, n_inner, reps=10, warm=2)
                    except Exception as exc:  # noqa: BLE001
                        res.error(f"matmul {variant} tp{tp} {name} M={m}", exc)
                        if is_fp8 and m < 16:
                            continue  # fp8 kernels may want M % 16 == 0; try the larger M
                        break
                    finally:
                        del x
                    row = {
                        "dtype": variant,
                        "tp": tp,
                        "shape": name,
                        "M": m,
                        "K": k,
                        "N": n,
                        "weight_copies": copies,
                        **t,
                        "flop_per_s": flops / t["s"],
                        "matmul_eff": flops / t["s"] / peak,
                        "weight_B_per_s": w_bytes / t["s"],
                        "weight_bw_frac": w_bytes / t["s"] / PEAK_HBM,
                    }
                    res.add("matmul", row)
                    if m in (1, 16, 256, 4096, 16384):
                        log(
                            f"mm {variant:15s} tp{tp} {name:8s} M={m:6d}: {t['s'] * 1e6:9.1f} us "
                            f"eff={row['matmul_eff']:.3f} wbw={row['weight_bw_frac']:.3f} ({t['timing']})"
                        )
                del ws
                torch.cuda.empty_cache()


def section_attention(torch: Any, res: Results, deadline: float) -> None:
    import torch.nn.functional as F

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception as exc:  # noqa: BLE001
        res.error("attention import sdpa_kernel", exc)
        return
    try:
        import flash_attn  # noqa: F401

        res.doc["flash_attn"] = getattr(flash_attn, "__version__", "present")
    except Exception:  # noqa: BLE001
        res.doc["flash_attn"] = "not installed"
    n_sm = torch.cuda.get_device_properties(0).multi_processor_count
    d = HEAD_DIM

    # correctness of the folded-GQA call against the math path in float32
    try:
        b, hq, hk, t = 2, 8, 1, 1000
        q = torch.randn(b, hq, 1, d, device="cuda", dtype=torch.bfloat16)
        kk = torch.randn(b, hk, t, d, device="cuda", dtype=torch.bfloat16)
        vv = torch.randn(b, hk, t, d, device="cuda", dtype=torch.bfloat16)
        ref = F.scaled_dot_product_attention(
            q.float(), kk.float().repeat_interleave(hq // hk, 1), vv.float().repeat_interleave(hq // hk, 1)
        )
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            fold = F.scaled_dot_product_attention(q.view(b, hk, hq // hk, d), kk, vv).view(b, hq, 1, d)
        res.doc["attention_check"] = {"fold_flash_rel_err": float((fold.float() - ref).norm() / ref.norm())}
        res.save()
        log("attention check", res.doc["attention_check"])
    except Exception as exc:  # noqa: BLE001
        res.error("attention check", exc)

    variants = [
        ("fold_flash", [SDPBackend.FLASH_ATTENTION]),
        ("fold_efficient", [SDPBackend.EFFICIENT_ATTENTION]),
        ("gqa_flash", [SDPBackend.FLASH_ATTENTION]),
    ]
    failed: set[str] = set()
    for tp, (hq, hk) in ATTN_HEADS.items():
        g = hq // hk
        for t_ctx in ATTN_T:
            for b in ATTN_B:
                if time.time() > deadline:
                    res.doc["notes"].append(f"attention: deadline reached before tp{tp} T={t_ctx} B={b}")
                    res.save()
                    log("attention deadline reached")
                    return
                kv_bytes = 2 * b * hk * t_ctx * d * 2
                copies = max(1, min(256, math.ceil(L2_DEFEAT_BYTES / kv_bytes)))
                try:
                    kbuf = torch.randn(copies, b, hk, t_ctx, d, device="cuda", dtype=torch.bfloat16)
                    vbuf = torch.randn(copies, b, hk, t_ctx, d, device="cuda", dtype=torch.bfloat16)
                    q = torch.randn(b, hq, 1, d, device="cuda", dtype=torch.bfloat16)
                except Exception as exc:  # noqa: BLE001
                    res.error(f"attention alloc tp{tp} T={t_ctx} B={b}", exc)
                    continue
                qf = q.view(b, hk, g, d)
                for variant, backends in variants:
                    if variant in failed:
                        continue
                    if variant.startswith("fold"):

                        def fn(i: int, kbuf: Any = kbuf, vbuf: Any = vbuf, qf: Any = qf) -> Any:
                            j = i % kbuf.shape[0]
                            return F.scaled_dot_product_attention(qf, kbuf[j], vbuf[j])

                    else:

                        def fn(i: int, kbuf: Any = kbuf, vbuf: Any = vbuf, q: Any = q) -> Any:
                            j = i % kbuf.shape[0]
                            return F.scaled_dot_product_attention(q, kbuf[j], vbuf[j], enable_gqa=True)

                    est = kv_bytes / 2.5e12 + 5e-6
                    try:
                        with sdpa_kernel(backends):
                            tm = time_calls(torch, fn, inner_count(est, at_least=copies), reps=10, warm=2)
                    except Exception as exc:  # noqa: BLE001
                        res.error(f"attention {variant} tp{tp} T={t_ctx} B={b}", exc)
                        failed.add(variant)
                        continue
                    work = b * hk / n_sm
                    row = {
                        "variant": variant,
                        "tp": tp,
                        "q_heads": hq,
                        "kv_heads": hk,
                        "B": b,
                        "T": t_ctx,
                        "kv_bytes": kv_bytes,
                        "kv_copies": copies,
                        **tm,
                        "kv_B_per_s": kv_bytes / tm["s"],
                        "kv_bw_frac": kv_bytes / tm["s"] / PEAK_HBM,
                        "work_per_sm": work,
                    }
                    res.add("attention", row)
                    log(
                        f"attn {variant:14s} tp{tp} T={t_ctx:6d} B={b:4d} x={work:7.3f}: {tm['s'] * 1e6:8.1f} us "
                        f"kv_frac={row['kv_bw_frac']:.3f}"
                    )
                del kbuf, vbuf, q, qf
                torch.cuda.empty_cache()


PREFILL_L = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]


def section_prefill_attention(torch: Any, res: Results, deadline: float) -> None:
    """Causal prefill attention (``F.scaled_dot_product_attention(is_causal=True)``, FLASH backend,
    GQA by ``enable_gqa``) of B sequences of L tokens, Llama-70B heads at TP 1 (64 q / 8 kv) and
    TP 8 (8 / 1): achieved FLOP/s over the causal FLOPs 2 B Hq d L (L + 1), against the dense bf16
    peak: the ``attn_eff`` of a prompt's attention by context length."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    d = HEAD_DIM
    try:  # correctness against the float32 math path
        q = torch.randn(1, 8, 300, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, 1, 300, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, 1, 300, d, device="cuda", dtype=torch.bfloat16)
        ref = F.scaled_dot_product_attention(
            q.float(), k.float().repeat_interleave(8, 1), v.float().repeat_interleave(8, 1), is_causal=True
        )
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        res.doc["prefill_attention_check"] = {"rel_err": float((out.float() - ref).norm() / ref.norm())}
        log("prefill attention check", res.doc["prefill_attention_check"])
    except Exception as exc:  # noqa: BLE001
        res.error("prefill_attention check", exc)
        return
    for tp, (hq, hk) in ATTN_HEADS.items():
        for length in PREFILL_L:
            for batch in sorted({1, max(1, 16384 // length)}):
                if time.time() > deadline:
                    return
                flops = 2.0 * batch * hq * d * length * (length + 1)
                est = flops / (0.4 * PEAK_BF16)
                row = {"tp": tp, "q_heads": hq, "kv_heads": hk, "B": batch, "L": length, "flops": flops}
                time_attention(torch, (batch, length, length), row, causal=True, reps=5 if est < 0.05 else 3, est_s=est)
                res.add("prefill_attention", row)
                timing = f"{row['s'] * 1e3:8.3f} ms eff={row['attn_eff']:.3f}"
                log(f"prefill attn tp{tp} L={length:6d} B={batch:3d}: {timing}")
    torch.cuda.empty_cache()


CHUNK_C = [256, 512, 1024, 2048, 4096, 8192]
CHUNK_T = [4096, 16384, 65536]


def section_chunk_attention(torch: Any, res: Results, deadline: float) -> None:
    """A prompt chunk's attention under chunked prefill: C new query tokens over T cached plus the C
    new keys (``F.scaled_dot_product_attention`` without a mask, FLASH backend, GQA), one sequence,
    Llama-70B heads at TP 1 and TP 8: FLOP/s over 4 Hq d C (T + C) (the full rectangle, which the
    unmasked kernel computes; the causal triangle within the chunk is C/2 of T + C keys per query)
    against the dense bf16 peak."""
    for tp, (hq, hk) in ATTN_HEADS.items():
        for cached in CHUNK_T:
            for chunk in CHUNK_C:
                if time.time() > deadline:
                    return
                flops = 4.0 * hq * HEAD_DIM * chunk * (cached + chunk)
                row = {"tp": tp, "q_heads": hq, "kv_heads": hk, "C": chunk, "T": cached, "flops": flops}
                time_attention(
                    torch, (1, chunk, cached + chunk), row, causal=False, reps=5, est_s=flops / (0.3 * PEAK_BF16)
                )
                res.add("chunk_attention", row)
                log(f"chunk attn tp{tp} T={cached:6d} C={chunk:5d}: {row['s'] * 1e3:8.3f} ms eff={row['attn_eff']:.3f}")
    torch.cuda.empty_cache()


def time_attention(
    torch: Any, shape: tuple[int, int, int], row: dict[str, Any], causal: bool, reps: int, est_s: float
) -> None:
    """Time flash SDPA (GQA) of random bf16 inputs of ``shape`` = (sequences, queries, keys) per
    sequence, with ``row``'s head counts and HEAD_DIM; add the timings and ``attn_eff`` (``row``'s
    flops over the dense bf16 peak) to ``row``."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    batch, queries, keys = shape
    q = torch.randn(batch, row["q_heads"], queries, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(batch, row["kv_heads"], keys, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(batch, row["kv_heads"], keys, HEAD_DIM, device="cuda", dtype=torch.bfloat16)

    def call(i: int) -> Any:
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)

    row.update(time_calls(torch, call, inner_count(est_s, 5e-3), reps=reps, warm=1))
    row["attn_eff"] = row["flops"] / row["s"] / PEAK_BF16


# ---------------------------------------------------------------- engine (subprocess worker)


def bench_raw(output_points: int, chunk_points: int) -> dict[str, Any]:
    """``sweep bench``'s grid (imported in the worker, where the repository is on the path)."""
    from sweep.bench.bench import bench_spec

    return bench_spec(output_points, chunk_points)


def engine_worker(args: argparse.Namespace) -> None:
    """Run in a fresh process with JAX_PLATFORMS set: print one JSON line of engine timings."""
    sys.path.insert(0, str(REPO))
    out: dict[str, Any] = {"platform_env": os.environ.get("JAX_PLATFORMS")}
    out["tile_bytes_env"] = os.environ.get("SWEEP_TILE_BYTES")
    deadline = time.time() + args.engine_budget
    t0 = time.perf_counter()
    import jax
    import numpy as np

    out["jax"] = jax.__version__
    out["devices"] = [str(d) for d in jax.devices()]
    out["cpu_count"] = os.cpu_count()
    from grids.sweeps import validate
    from sweep.engine.plan import make_plan

    out["import_s"] = time.perf_counter() - t0
    raw = bench_raw(args.engine_output_points, args.engine_chunk_points)
    spec = validate(raw, "h100_micro engine")
    out["points"] = int(spec.n_points)
    out["shape"] = list(spec.shape)
    t = time.perf_counter()
    plan = make_plan(spec)
    ids = list(plan.chunk_ids())
    out["chunk_shape"] = list(plan.chunks)
    out["n_chunks"] = len(ids)
    plan.evaluate(ids[0])
    out["plan_and_compile_s"] = time.perf_counter() - t
    print("ENGINE_PARTIAL " + json.dumps(out), flush=True)
    sample = [ids[i] for i in np.linspace(1, len(ids) - 1, min(24, len(ids) - 1)).astype(int)]
    start, points, done = time.perf_counter(), 0, 0
    for chunk_id in sample:
        points += next(iter(plan.evaluate(chunk_id).values())).size
        done += 1
        if time.time() > deadline - 20 and done >= 3:
            break
    dt = time.perf_counter() - start
    out.update(in_memory_points=points, in_memory_chunks=done, in_memory_s=dt, in_memory_points_per_s=points / dt)
    print("ENGINE_PARTIAL " + json.dumps(out), flush=True)
    if args.engine_compute and time.time() < deadline - 5:
        try:
            from sweep.engine.compute import compute

            # the same grid with fewer models: the same chunk shape, so compute() compiles nothing new
            small_raw = bench_raw(args.engine_output_points, args.engine_chunk_points)
            small_raw["axes"]["model"] = small_raw["axes"]["model"][: args.engine_compute_models]
            small = validate(small_raw, "h100_micro compute")
            t = time.perf_counter()
            ds = compute(small)
            dt = time.perf_counter() - t
            out.update(compute_points=int(small.n_points), compute_s=dt, compute_points_per_s=small.n_points / dt)
            out["compute_vars"] = len(ds.data_vars)
            out["compute_shape"] = list(small.shape)
        except Exception as exc:  # noqa: BLE001
            out["compute_error"] = f"{type(exc).__name__}: {exc}"
    print("ENGINE_RESULT " + json.dumps(out), flush=True)


class EngineRun:
    """One engine worker subprocess (started now, collected by ``finish``)."""

    def __init__(self, platform: str, budget_s: float, label: str, **kw: Any) -> None:
        env = {
            **os.environ,
            "JAX_PLATFORMS": platform,
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "SWEEP_JAX_CACHE": f"/tmp/h100_micro_jax_cache_{label}",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        }
        if kw.get("tile_bytes"):
            env["SWEEP_TILE_BYTES"] = str(kw["tile_bytes"])
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--engine-worker",
            "--engine-budget",
            str(max(10.0, budget_s - 5)),
            "--engine-output-points",
            str(kw.get("output_points", 23)),
            "--engine-chunk-points",
            str(kw.get("chunk_points", 2_000_000)),
            "--engine-compute-models",
            str(kw.get("compute_models", 4)),
        ]
        if kw.get("compute", True):
            cmd.append("--engine-compute")
        log(f"engine {label}: started, budget {budget_s:.0f} s")
        self.row: dict[str, Any] = {"label": label, "platform": platform, "budget_s": budget_s}
        self.deadline = time.time() + budget_s
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO)
        )

    def finish(self, res: Results) -> None:
        row = self.row
        try:
            stdout, stderr = self.proc.communicate(timeout=max(1.0, self.deadline - time.time()))
            row["rc"] = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            stdout, stderr = self.proc.communicate()
            row["rc"] = "timeout"
        for line in stdout.splitlines():
            if line.startswith(("ENGINE_RESULT ", "ENGINE_PARTIAL ")):
                row.update(json.loads(line.split(" ", 1)[1]))
        if "in_memory_points_per_s" not in row or row["rc"] != 0:
            row["stderr_tail"] = stderr[-3000:]
        res.add("engine", row)
        log(
            f"engine {row['label']}: rc={row['rc']} compile={row.get('plan_and_compile_s')} "
            f"points/s={row.get('in_memory_points_per_s')} compute() points/s={row.get('compute_points_per_s')}"
        )


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("h100_micro.json"))
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the whole script")
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated sections to skip: hbm,matmul,attention,prefill_attention,chunk_attention,engine",
    )
    ap.add_argument(
        "--engine-gpu-variants",
        default="2:2000000",
        help="comma-separated TILE_MIB:CHUNK_POINTS pairs, one GPU engine run each (default: the CPU-tuned sizes)",
    )
    ap.add_argument("--engine-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine-budget", type=float, default=120.0, help=argparse.SUPPRESS)
    ap.add_argument("--engine-output-points", type=int, default=23, help=argparse.SUPPRESS)
    ap.add_argument("--engine-chunk-points", type=int, default=2_000_000, help=argparse.SUPPRESS)
    ap.add_argument("--engine-compute-models", type=int, default=4, help=argparse.SUPPRESS)
    ap.add_argument("--engine-compute", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine_worker:
        engine_worker(args)
        return

    t_start = time.time()
    end = t_start + args.budget
    skip = set(filter(None, args.skip.split(",")))
    res = Results(args.out)
    res.doc["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    res.doc["argv"] = sys.argv
    res.doc["nvidia_smi_start"] = nvidia_smi()
    res.save()

    # The CPU engine runs beside the torch sections (it needs no GPU; they time the GPU with CUDA
    # events and graph replays, which a busy host hardly moves), so the budget fits both.
    cpu_run = None
    if "engine" not in skip:
        cpu_run = EngineRun("cpu", min(150.0, args.budget / 2), "cpu", compute=False)

    import torch

    props = torch.cuda.get_device_properties(0)
    res.doc["device"] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "name": props.name,
        "sm_count": props.multi_processor_count,
        "total_memory": props.total_memory,
        "l2_bytes": getattr(props, "L2_cache_size", None),
        "capability": f"{props.major}.{props.minor}",
    }
    global PEAK_BF16, PEAK_FP8, PEAK_HBM
    peaks = next((v for k, v in DEVICE_PEAKS.items() if k in props.name), DEVICE_PEAKS["H100"])
    PEAK_BF16, PEAK_FP8, PEAK_HBM = peaks["bf16"], peaks["fp8"], peaks["hbm"]
    res.doc["peaks"] = {"bf16": PEAK_BF16, "fp8": PEAK_FP8, "hbm": PEAK_HBM}
    res.save()
    log("device", res.doc["device"], res.doc["nvidia_smi_start"])
    torch.manual_seed(0)

    # Section shares of the budget, each ended by its own deadline (end-relative).
    if "hbm" not in skip:
        try:
            section_hbm(torch, res, deadline=min(end, time.time() + 20))
        except Exception as exc:  # noqa: BLE001
            res.error("hbm", exc)
    torch.cuda.empty_cache()
    if "matmul" not in skip:
        try:
            matmul_check(torch, res)
            section_matmul(torch, res, deadline=min(end - 150, time.time() + 100))
        except Exception as exc:  # noqa: BLE001
            res.error("matmul", exc)
        res.doc["nvidia_smi_after_matmul"] = nvidia_smi()
        res.save()
    torch.cuda.empty_cache()
    if "attention" not in skip:
        try:
            section_attention(torch, res, deadline=min(end - 110, time.time() + 50))
        except Exception as exc:  # noqa: BLE001
            res.error("attention", exc)
    torch.cuda.empty_cache()
    if "prefill_attention" not in skip:
        try:
            section_prefill_attention(torch, res, deadline=min(end - 30, time.time() + 120))
        except Exception as exc:  # noqa: BLE001
            res.error("prefill_attention", exc)
    if "chunk_attention" not in skip:
        try:
            section_chunk_attention(torch, res, deadline=min(end - 20, time.time() + 90))
        except Exception as exc:  # noqa: BLE001
            res.error("chunk_attention", exc)
    torch.cuda.synchronize()
    res.doc["torch_sections_s"] = time.time() - t_start
    res.save()

    if cpu_run is not None:
        cpu_run.finish(res)
    if "engine" not in skip:
        variants = [tuple(int(float(x)) for x in v.split(":")) for v in args.engine_gpu_variants.split(",")]
        for i, (tile_mib, chunk_points) in enumerate(variants):
            budget = max(30.0, (end - time.time()) / (len(variants) - i))
            label = f"gpu_tile{tile_mib}MiB_chunk{chunk_points}"
            run = EngineRun(
                "cuda", budget, label, chunk_points=chunk_points, tile_bytes=tile_mib * 2**20, compute=False
            )
            run.finish(res)

    res.doc["total_s"] = time.time() - t_start
    res.doc["nvidia_smi_end"] = nvidia_smi()
    res.save()
    log(f"done in {res.doc['total_s']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
