"""Tables and fits from ``h100_micro.json`` (numpy only; runs anywhere).

    python3 scripts/device/analyze_h100_micro.py [scripts/device/h100_micro.json]

Prints Markdown: matmul efficiency per tokens per step M (a whole layer's four matmuls: their FLOPs
over their summed time), plateau and M at half plateau, a fit of the profile's matmul terms,
weight-streaming fractions, HBM read/copy, and the KV-read fraction against work items per SM with
least-squares fits of kv_bw_eff * x / (x + kv_parallel_half).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

# Datasheet peaks of the H100 SXM; a file that records its own ``peaks`` (every run since the H200's)
# replaces them in main().
HBM = 3.35e12
PEAKS = {"bf16": 989.4e12, "fp8": 1978.9e12, "fp8_fast_accum": 1978.9e12}
PLATEAU_M = (2048, 4096, 8192, 16384)


def layer_table(rows: list[dict]) -> dict[tuple[str, int], dict[int, dict[str, float]]]:
    """(dtype, tp) -> M -> layer-aggregate efficiency and weight fraction over the four shapes."""
    acc: dict[tuple[str, int], dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[(r["dtype"], r["tp"])][r["M"]].append(r)
    out: dict[tuple[str, int], dict[int, dict[str, float]]] = {}
    for key, by_m in acc.items():
        out[key] = {}
        for m, rs in sorted(by_m.items()):
            if len(rs) != 4:
                continue
            t = sum(r["s"] for r in rs)
            flops = sum(2.0 * r["M"] * r["K"] * r["N"] for r in rs)
            wbytes = sum(r["weight_B_per_s"] * r["s"] for r in rs)
            out[key][m] = {"eff": flops / t / PEAKS[key[0]], "wfrac": wbytes / t / HBM, "t": t}
    return out


def half_point(ms: np.ndarray, eff: np.ndarray, half: float) -> float:
    """Smallest M where eff reaches ``half``, interpolated linearly in log M."""
    above = np.nonzero(eff >= half)[0]
    if len(above) == 0:
        return float("nan")
    i = above[0]
    if i == 0:
        return float(ms[0])
    lm = np.interp(half, [eff[i - 1], eff[i]], np.log([ms[i - 1], ms[i]]))
    return float(np.exp(lm))


def fit_matmul(rows: list[dict], peak: float, wbe: float) -> tuple[float, float, float]:
    """(matmul_eff, matmul_tokens_half, rms log error) of the profile's roofline
    t = max(2KN (M + h) / (peak e), weight bytes / (HBM * wbe)) fitted to every shape and M."""
    m = np.array([r["M"] for r in rows], float)
    kn = np.array([r["K"] * r["N"] for r in rows], float)
    wb = np.array([r["weight_B_per_s"] * r["s"] for r in rows], float)
    t = np.array([r["s"] for r in rows], float)
    mem = wb / (HBM * wbe)
    best = (np.inf, 0.0, 0.0)
    for h in np.concatenate([[0.0], np.geomspace(1, 4096, 600)]):
        for e in np.arange(0.30, 1.0001, 0.0025):
            pred = np.maximum(2 * kn * (m + h) / (peak * e), mem)
            err = float(np.sqrt(np.mean(np.log(pred / t) ** 2)))
            if err < best[0]:
                best = (err, float(e), float(h))
    return best[1], best[2], best[0]


def fit_kv(x: np.ndarray, y: np.ndarray, hs: np.ndarray | None = None) -> tuple[float, float, float]:
    """(kv_bw_eff, kv_parallel_half, rms error) least squares of y = e * x / (x + h), h on ``hs``."""
    best = (np.inf, 0.0, 0.0)
    for h in np.geomspace(1e-3, 10, 800) if hs is None else hs:
        g = x / (x + h)
        e = float(g @ y / (g @ g))  # closed form for e at fixed h
        err = float(np.sqrt(np.mean((e * g - y) ** 2)))
        if err < best[0]:
            best = (err, e, float(h))
    return best[1], best[2], best[0]


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("h100_micro.json"))
    d = json.loads(path.read_text())
    sec = d["sections"]
    global HBM
    peaks = d.get("peaks", {})
    HBM = peaks.get("hbm", HBM)
    PEAKS.update(bf16=peaks.get("bf16", PEAKS["bf16"]), fp8=peaks.get("fp8", PEAKS["fp8"]))
    PEAKS["fp8_fast_accum"] = PEAKS["fp8"]
    for row in sec.get("matmul", []):
        row["weight_bw_frac"] = row["weight_B_per_s"] / HBM
    for row in sec.get("attention", []):
        row["kv_bw_frac"] = row["kv_B_per_s"] / HBM
    mm = sec.get("matmul", [])
    table = layer_table(mm)
    keys = sorted(table, key=lambda k: (list(PEAKS).index(k[0]), k[1]))
    ms = sorted({m for k in keys for m in table[k]})

    if mm:
        print("### Matmul: achieved / dense peak, one layer's four matmuls together\n")
        print("| M | " + " | ".join(f"{k[0]} TP{k[1]}" for k in keys) + " |")
        print("|---:|" + "---:|" * len(keys))
        for m in ms:
            cells = [f"{table[k][m]['eff']:.3f}" if m in table[k] else "" for k in keys]
            print(f"| {m} | " + " | ".join(cells) + " |")

        print("\n### Matmul summary\n")
        print(
            "| dtype | TP | plateau (median M>=2048) | max | M at half plateau | "
            "weight-stream fraction M=1 / 4 / 16 | fitted matmul_eff | fitted matmul_tokens_half | rms log err |"
        )
        print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
        for k in keys:
            mv = np.array(sorted(table[k]), float)
            eff = np.array([table[k][int(m)]["eff"] for m in mv])
            plateau = float(np.median([table[k][m]["eff"] for m in PLATEAU_M if m in table[k]]))
            mh = half_point(mv, eff, plateau / 2)
            wf = " / ".join(f"{table[k][m]['wfrac']:.3f}" for m in (1, 4, 16) if m in table[k])
            wbe = table[k][1]["wfrac"]
            rs = [r for r in mm if (r["dtype"], r["tp"]) == k]
            e, h, err = fit_matmul(rs, PEAKS[k[0]], wbe)
            print(
                f"| {k[0]} | {k[1]} | {plateau:.3f} | {eff.max():.3f} | {mh:.0f} | {wf} | "
                f"{e:.3f} | {h:.0f} | {err:.3f} |"
            )

        print("\n### Weight-stream fraction (weight bytes / time / HBM peak) per matrix at small M\n")
        print("| dtype | TP | matrix | weight MB | M=1 | M=2 | M=4 | M=8 | M=16 |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for k in keys:
            for shape in ("qkv", "o", "gate_up", "down"):
                rs = {r["M"]: r for r in mm if (r["dtype"], r["tp"], r["shape"]) == (*k, shape)}
                if 1 not in rs:
                    continue
                mb = rs[1]["weight_B_per_s"] * rs[1]["s"] / 1e6
                cells = " | ".join(f"{rs[m]['weight_bw_frac']:.3f}" for m in (1, 2, 4, 8, 16) if m in rs)
                print(f"| {k[0]} | {k[1]} | {shape} | {mb:.0f} | {cells} |")

    if sec.get("hbm"):
        print("\n### HBM\n")
        print(f"| op | bytes counted | TB/s | fraction of {HBM / 1e12:.2f} TB/s |")
        print("|---|---:|---:|---:|")
        for r in sec.get("hbm", []):
            print(f"| {r['op']} | {r['bytes'] / 1e9:.2f} GB | {r['B_per_s'] / 1e12:.3f} | {r['B_per_s'] / HBM:.3f} |")

    att = sec.get("attention", [])
    if att:
        print("\n### Decode attention: KV bytes read / time / HBM peak\n")
        variants = sorted({r["variant"] for r in att})
        print("| TP | T | B | work items per SM x | " + " | ".join(variants) + " |")
        print("|---:|---:|---:|---:|" + "---:|" * len(variants))
        cfgs = sorted({(r["tp"], r["T"], r["B"], r["work_per_sm"]) for r in att})
        for tp, t, b, x in cfgs:
            by_v = {r["variant"]: r for r in att if (r["tp"], r["T"], r["B"]) == (tp, t, b)}
            cells = " | ".join(f"{by_v[v]['kv_bw_frac']:.3f}" if v in by_v else "" for v in variants)
            print(f"| {tp} | {t} | {b} | {x:.4f} | {cells} |")

        print("\n### Fits of kv_bw_eff * x / (x + kv_parallel_half) (least squares on the fraction)\n")
        print("| variant | points | kv_bw_eff | kv_parallel_half | rms error |")
        print("|---|---|---:|---:|---:|")
        best: dict[tuple[int, int, int], float] = {}
        for r in att:
            c = (r["tp"], r["T"], r["B"])
            best[c] = max(best.get(c, 0.0), r["kv_bw_frac"])
        for v in ("fold_flash", "gqa_flash"):
            rs = [r for r in att if r["variant"] == v]
            per_t = [(f"T={t}", [r for r in rs if r["T"] == t]) for t in (1024, 4096, 16384)]
            for label, sel in [("all T", rs), *per_t]:
                if not sel:
                    continue
                x = np.array([r["work_per_sm"] for r in sel])
                y = np.array([r["kv_bw_frac"] for r in sel])
                e, h, err = fit_kv(x, y)
                print(f"| {v} | {label} ({len(sel)}) | {e:.3f} | {h:.4f} | {err:.3f} |")
        n_sm = d.get("device", {}).get("sm_count", 132)
        heads = {1: 8, 8: 1}
        x = np.array([c[2] * heads[c[0]] / n_sm for c in best])
        y = np.array(list(best.values()))
        e, h, err = fit_kv(x, y)
        print(f"| best of variants | all T ({len(y)}) | {e:.3f} | {h:.4f} | {err:.3f} |")

    pre = sec.get("prefill_attention", [])
    if pre:
        print("\n### Causal prefill attention: achieved / dense bf16 peak\n")
        print("| L | TP 1, B = 1 | TP 1, B L = 16k | TP 8, B = 1 | TP 8, B L = 16k |")
        print("|---:|---:|---:|---:|---:|")
        for length in sorted({r["L"] for r in pre}):
            cells = []
            for tp in (1, 8):
                rs = sorted((r for r in pre if r["tp"] == tp and r["L"] == length), key=lambda r: r["B"])
                one = next((r for r in rs if r["B"] == 1), None)
                full = rs[-1] if rs and rs[-1]["B"] > 1 else None
                cells += [
                    f"{one['attn_eff']:.3f}" if one else "",
                    f"{full['attn_eff']:.3f} (B={full['B']})" if full else "",
                ]
            print(f"| {length} | " + " | ".join(cells) + " |")
        print("\nLeast-squares fit of e_max * L / (L + L_half) per TP, on the batches of >= 16k tokens:\n")
        print("| TP | points | e_max | L_half (token) | rms error |")
        print("|---:|---:|---:|---:|---:|")
        for tp in (1, 8):
            sel = [r for r in pre if r["tp"] == tp and r["B"] * r["L"] >= 16384]
            x = np.array([r["L"] for r in sel], float)
            y = np.array([r["attn_eff"] for r in sel])
            e, h, err = fit_kv(x, y, np.geomspace(1.0, 1e5, 1000))
            print(f"| {tp} | {len(sel)} | {e:.3f} | {h:.0f} | {err:.3f} |")

    chunk = sec.get("chunk_attention", [])
    if chunk:
        print("\n### Chunked-prefill attention: C new tokens over T cached, achieved / dense bf16 peak\n")
        cs = sorted({r["C"] for r in chunk})
        print("| TP | T | " + " | ".join(f"C={c}" for c in cs) + " |")
        print("|---:|---:|" + "---:|" * len(cs))
        for tp, cached in sorted({(r["tp"], r["T"]) for r in chunk}):
            by_c = {r["C"]: r for r in chunk if (r["tp"], r["T"]) == (tp, cached)}
            print(
                f"| {tp} | {cached} | "
                + " | ".join(f"{by_c[c]['attn_eff']:.3f}" if c in by_c else "" for c in cs)
                + " |"
            )

    eng = sec.get("engine", [])
    if eng:
        print("\n### Engine (sweep.engine.plan on the bench grid)\n")
        print("| platform | devices | grid points | chunk | compile s | chunks timed | points/s | compute() |")
        print("|---|---|---:|---|---:|---:|---:|---|")
        for r in eng:
            comp = r.get("compute_error") or (
                f"{r['compute_points_per_s']:.3g} points/s" if "compute_points_per_s" in r else "not run"
            )
            print(
                f"| {r['platform']} | {','.join(r.get('devices', []))} | {r.get('points', '')} | "
                f"{r.get('chunk_shape', '')} | {r.get('plan_and_compile_s', float('nan')):.1f} | "
                f"{r.get('in_memory_chunks', '')} | {r.get('in_memory_points_per_s', float('nan')):.3g} | {comp} |"
            )


if __name__ == "__main__":
    main()
