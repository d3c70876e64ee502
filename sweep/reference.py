"""A scalar pure-Python reference of the cost model: no JAX, plain floats, written from the
formulas of shared/DESIGN.md ("The cost model") rather than from the kernels' code.

Decode is summed with an explicit Python loop over steps here, on purpose: the kernels use a
closed form, and agreement between the two is what the property tests check. All arguments are
plain dicts: ``model`` (n_layers, d_model, n_heads, n_kv_heads, d_head, d_ffn, vocab,
tied_embeddings, qkv_bias), ``gpu`` (GPUSpec fields), ``profile`` (EngineProfile fields).
"""

from __future__ import annotations

import math

PEAK_FIELDS = ("flop_per_s_bf16", "flop_per_s_fp8", "flop_per_s_int8", "flop_per_s_fp4")


def params(m: dict) -> float:
    D, L, N, K, H, F, V = (m[k] for k in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_head", "d_ffn", "vocab"))
    per_layer = D * N * H + 2 * D * K * H + N * H * D + m["qkv_bias"] * (N * H + 2 * K * H) + 3 * D * F + 2 * D
    return V * D + L * per_layer + D + (0 if m["tied_embeddings"] else V * D)


def flops_by_op(m: dict, n: float, pairs: float) -> dict[str, float]:
    """One block, n new tokens, `pairs` (query, key) pairs."""
    D, N, K, H, F = (m[k] for k in ("d_model", "n_heads", "n_kv_heads", "d_head", "d_ffn"))
    return {
        "rmsnorm": 2 * (4 * n * D + 2 * n), "q": 2 * n * D * N * H, "k": 2 * n * D * K * H,
        "v": 2 * n * D * K * H, "rope": 6 * n * D, "qk": 2 * pairs * N * H, "softmax": 5 * pairs * N,
        "av": 2 * pairs * N * H, "o": 2 * n * N * H * D, "gate": 2 * n * D * F, "up": 2 * n * D * F,
        "silu": 5 * n * F, "product": n * F, "down": 2 * n * F * D,
    }


ATTENTION_OPS = ("qk", "softmax", "av")


def split_flops(m: dict, n: float, pairs: float) -> tuple[float, float]:
    """(non-attention FLOPs incl. LM head on one token, attention FLOPs) of one pass, all layers."""
    ops = flops_by_op(m, n, pairs)
    attn = sum(ops[k] for k in ATTENTION_OPS) * m["n_layers"]
    other = sum(v for k, v in ops.items() if k not in ATTENTION_OPS) * m["n_layers"]
    return other + 2 * m["d_model"] * m["vocab"], attn


def kv_per_token_per_gpu(m: dict, tp: float, kv_bytes: float) -> float:
    return 2 * m["n_layers"] * math.ceil(m["n_kv_heads"] / tp) * m["d_head"] * kv_bytes


def allreduce(m: dict, gpu: dict, prof: dict, tp: float, tokens: float, act_bytes: float = 2.0) -> float:
    if tp == 1:
        return 0.0
    link = gpu["link_bytes_per_s"] if tp <= gpu["gpus_per_node"] else gpu["network_bytes_per_s"]
    per = prof["allreduce_latency_s"] + prof["allreduce_volume_factor"] * (tp - 1) / tp * tokens * m["d_model"] * act_bytes / link
    return 2 * m["n_layers"] * per


def _prefill(m, gpu, prof, tp, batch, input_len, w_bytes, kv_bytes, compute_dtype):
    """Prefill of `batch` prompts of `input_len` tokens in one pass [s]."""
    peak = gpu[PEAK_FIELDS[compute_dtype]] * tp
    bw = gpu["hbm_bytes_per_s"]
    S = input_len
    pairs = S * (S + 1) / 2 if prof["causal_attention"] else S * S
    other, attn = split_flops(m, S, pairs)
    n_tok = batch * S
    e_mm = prof["matmul_eff"] * n_tok / (n_tok + prof["matmul_tokens_half"])
    compute = batch * (other / e_mm + attn / prof["attn_eff"]) / peak
    memory = _weight_read(m, gpu, prof, tp, w_bytes) + n_tok * kv_per_token_per_gpu(m, tp, kv_bytes) / (bw * prof["kv_bw_eff"])
    return prof["prefill_overhead_s"] + max(compute, memory) + allreduce(m, gpu, prof, tp, n_tok)


def _weight_read(m, gpu, prof, tp, w_bytes):
    skipped = (1 - prof["reads_embedding"]) * (0 if m["tied_embeddings"] else m["vocab"] * m["d_model"])
    return (params(m) - skipped) * w_bytes / tp / (gpu["hbm_bytes_per_s"] * prof["weight_bw_eff"])


def _step(m, gpu, prof, tp, batch, context, w_bytes, kv_bytes, compute_dtype):
    """One decode step of `batch` sequences after `context` cached tokens each [s]."""
    peak = gpu[PEAK_FIELDS[compute_dtype]] * tp
    work = batch * math.ceil(m["n_kv_heads"] / tp) / gpu["n_sm"]
    e_kv = prof["kv_bw_eff"] * work / (work + prof["kv_parallel_half"])
    e_mm1 = prof["matmul_eff"] * batch / (batch + prof["matmul_tokens_half"])
    other1, attn1 = split_flops(m, 1, context + 1)
    c = batch * (other1 / e_mm1 + attn1 / prof["attn_eff"]) / peak
    mem = _weight_read(m, gpu, prof, tp, w_bytes) + batch * context * kv_per_token_per_gpu(m, tp, kv_bytes) / (
        gpu["hbm_bytes_per_s"] * e_kv)
    return prof["step_overhead_s"] + max(c, mem) + allreduce(m, gpu, prof, tp, batch)


def evaluate(m: dict, gpu: dict, prof: dict, tp: float, batch: float, input_len: float, output_len: float,
             w_bytes: float = 2.0, kv_bytes: float = 2.0, compute_dtype: int = 0,
             scenario: str = "static") -> dict[str, float]:
    """Latency, throughput and cost of one design point, request by request."""
    n_params = params(m)
    kv_tok = kv_per_token_per_gpu(m, tp, kv_bytes)
    usable = prof["mem_usable_frac"] * gpu["hbm_bytes"] - n_params * w_bytes / tp
    seq = input_len + output_len - 1
    max_batch = min(math.floor(max(usable, 0) / (kv_tok * seq)), prof["max_num_seqs"])
    args = (w_bytes, kv_bytes, compute_dtype)
    steps = max(output_len - 1, 1)

    def decode(b):  # explicit loop over steps at contexts I, I+1, ..., I+steps-1
        return sum(_step(m, gpu, prof, tp, b, input_len + k, *args) for k in range(int(steps)))

    if scenario == "static":
        # Simulate the waves: each request waits for the waves before it, then for the prompts
        # ahead of it in its own wave's prefill (first come, first served).
        b_run = min(batch, max_batch) if max_batch >= 1 else batch  # nothing fits: the batch as given
        clock, ttfts, e2es, tpots, left, in_flight, first = 0.0, [], [], [], int(batch), None, None
        prefill_time = 0.0
        while left > 0:
            b = min(b_run, left)
            p, d = _prefill(m, gpu, prof, tp, b, input_len, *args), decode(b)
            in_flight = in_flight or b
            for k in range(1, int(b) + 1):  # the k-th prompt's first token: a pass over k prompts
                ttfts.append(clock + _prefill(m, gpu, prof, tp, k, input_len, *args))
                first = ttfts[0]
                e2es.append(clock + p + (d if output_len > 1 else 0.0))
                tpots.append(d / steps)
            clock += p + (d if output_len > 1 else 0.0)
            prefill_time += p
            left -= int(b)
        ttft, e2e, tpot = (sum(x) / len(x) for x in (ttfts, e2es, tpots))
        rate, in_rate = batch * output_len / clock, batch * input_len / prefill_time
    else:
        c = max_batch if scenario == "max_throughput" and max_batch >= 1 else batch
        in_flight = c
        p1 = _prefill(m, gpu, prof, tp, 1, input_len, *args)
        step = _step(m, gpu, prof, tp, c, input_len + (output_len - 1) / 2, *args)
        others = (c - 1) * p1
        e2e = p1 + (steps * step + others if output_len > 1 else others)
        ttft, tpot, first = p1, step + others / steps, p1
        rate, in_rate = c * output_len / e2e, input_len / p1
    price = gpu["usd_per_hour"] * tp
    peak = gpu[PEAK_FIELDS[compute_dtype]]
    feasible = (m["n_heads"] % tp == 0 and usable > 0 and max_batch >= 1 and math.isfinite(peak)
                and (scenario != "concurrency" or batch <= max_batch))
    return {
        "feasible": feasible, "params_total": n_params, "weight_bytes": n_params * w_bytes / tp,
        "kv_cache_bytes": kv_tok * in_flight * seq, "max_batch": max_batch, "batch_in_flight": in_flight,
        "ttft_s": ttft, "ttft_min_s": first, "tpot_s": tpot, "e2e_s": e2e, "output_tok_s": rate,
        "user_tok_s": 1 / tpot, "usd_per_mtok_output": price / (rate * 3600) * 1e6,
        "usd_per_mtok_input": price / (in_rate * 3600) * 1e6,
    }
