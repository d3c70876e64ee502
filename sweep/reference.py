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


def evaluate(m: dict, gpu: dict, prof: dict, tp: float, batch: float, input_len: float, output_len: float,
             w_bytes: float = 2.0, kv_bytes: float = 2.0, compute_dtype: int = 0) -> dict[str, float]:
    """The static scenario: B prompts prefilled together, then decoded together, step by step."""
    peak = gpu[PEAK_FIELDS[compute_dtype]] * tp
    bw = gpu["hbm_bytes_per_s"]
    n_params = params(m)
    embedding_skipped = (1 - prof["reads_embedding"]) * (0 if m["tied_embeddings"] else m["vocab"] * m["d_model"])
    weight_read = (n_params - embedding_skipped) * w_bytes / tp / (bw * prof["weight_bw_eff"])
    kv_tok = kv_per_token_per_gpu(m, tp, kv_bytes)

    # Prefill of B prompts of I tokens in one pass.
    S = input_len
    pairs = S * (S + 1) / 2 if prof["causal_attention"] else S * S
    other, attn = split_flops(m, S, pairs)
    n_tok = batch * S
    e_mm = prof["matmul_eff"] * n_tok / (n_tok + prof["matmul_tokens_half"])
    compute = batch * (other / e_mm + attn / prof["attn_eff"]) / peak
    memory = weight_read + n_tok * kv_tok / (bw * prof["kv_bw_eff"])
    prefill = prof["prefill_overhead_s"] + max(compute, memory) + allreduce(m, gpu, prof, tp, n_tok)

    # Decode: explicit loop over steps at contexts I, I+1, ..., each attending to T + 1 keys.
    work = batch * math.ceil(m["n_kv_heads"] / tp) / gpu["n_sm"]
    e_kv = prof["kv_bw_eff"] * work / (work + prof["kv_parallel_half"])
    e_mm1 = prof["matmul_eff"] * batch / (batch + prof["matmul_tokens_half"])
    comm = allreduce(m, gpu, prof, tp, batch)
    steps = max(output_len - 1, 1)
    decode = 0.0
    for k in range(int(steps)):
        T = input_len + k
        other1, attn1 = split_flops(m, 1, T + 1)
        c = batch * (other1 / e_mm1 + attn1 / prof["attn_eff"]) / peak
        mem = weight_read + batch * T * kv_tok / (bw * e_kv)
        decode += prof["step_overhead_s"] + max(c, mem) + comm
    tpot = decode / steps
    e2e = prefill + (decode if output_len > 1 else 0.0)
    rate = batch * output_len / e2e
    price = gpu["usd_per_hour"] * tp
    usable = prof["mem_usable_frac"] * gpu["hbm_bytes"] - n_params * w_bytes / tp
    seq = input_len + output_len - 1
    max_batch = min(math.floor(max(usable, 0) / (kv_tok * seq)), prof["max_num_seqs"])
    feasible = m["n_heads"] % tp == 0 and usable > 0 and batch <= max_batch and math.isfinite(peak)
    return {
        "feasible": feasible, "params_total": n_params, "weight_bytes": n_params * w_bytes / tp,
        "kv_cache_bytes": kv_tok * batch * seq, "max_batch": max_batch,
        "ttft_s": prefill, "tpot_s": tpot, "e2e_s": e2e, "output_tok_s": rate,
        "user_tok_s": 1 / tpot, "usd_per_mtok_output": price / (rate * 3600) * 1e6,
        "usd_per_mtok_input": price / (batch * input_len / prefill * 3600) * 1e6,
    }
