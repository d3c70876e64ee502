"""A scalar pure-Python reference of the cost model: no JAX, plain floats, written from the
formulas of shared/DESIGN.md ("The cost model") rather than from the kernels' code.

Decode is summed with an explicit Python loop over steps here, on purpose: the kernels use a
closed form, and agreement between the two is what the property tests check. All arguments are
plain dicts: ``model`` (n_layers, d_model, n_heads, n_kv_heads, d_head, d_ffn, vocab,
tied_embeddings, qkv_bias, and optionally the MoE, MLA and sliding-window fields of ``DENSE``),
``gpu`` (GPUSpec fields), ``profile`` (EngineProfile fields). Layers are counted kind by kind
(dense or MoE MLP; full or window attention), experts touched under uniform routing.
"""

from __future__ import annotations

import functools
import math

PEAK_FIELDS = ("flop_per_s_bf16", "flop_per_s_fp8", "flop_per_s_int8", "flop_per_s_fp4")


DENSE = dict(
    n_norms=2,
    qk_norm=0,
    n_experts=0,
    experts_per_token=0,
    d_ffn_expert=0,
    d_ffn_shared=0,
    n_moe_layers=0,
    expert_bias=0,
    router_bias=0,
    kv_lora_rank=0,
    q_lora_rank=0,
    qk_rope_head_dim=0,
    qk_nope_head_dim=0,
    v_head_dim=0,
    window=0,
    n_window_layers=0,
)
"""Values of the MoE, MLA and sliding-window fields for a dense model (a dict may leave them out)."""


MLA_DIMS = ("q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")


def _get(m: dict, key: str) -> float:
    return m.get(key, DENSE[key])


def _expert(m: dict) -> float:
    """Parameters of one routed expert: SwiGLU of width F_e, plus gpt-oss's biases."""
    D, Fe = m["d_model"], _get(m, "d_ffn_expert")
    return 3 * D * Fe + _get(m, "expert_bias") * (2 * Fe + D)


def _attention(m: dict) -> float:
    """Weights of one attention block: GQA projections, or MLA's compressions (DeepSeek-V3)."""
    D, N, K, H = (m[k] for k in ("d_model", "n_heads", "n_kv_heads", "d_head"))
    c = _get(m, "kv_lora_rank")
    if not c:
        return D * N * H + 2 * D * K * H + N * H * D + m["qkv_bias"] * (N * H + 2 * K * H)
    qc, r, nope, dv = (_get(m, k) for k in MLA_DIMS)
    q = D * qc + qc + qc * N * (nope + r) if qc else D * N * (nope + r)
    return q + D * (c + r) + c + c * N * (nope + dv) + N * dv * D


def _idle_experts(m: dict, tokens: float) -> float:
    """Routed experts of one MoE layer that `tokens` tokens leave unused, on average (uniform routing)."""
    E, k = _get(m, "n_experts"), _get(m, "experts_per_token")
    if not E:
        return 0.0
    return E * (1 - k / E) ** tokens


def params(m: dict, active: bool = False) -> float:
    D, L, H, F, V = (m[k] for k in ("d_model", "n_layers", "d_head", "d_ffn", "vocab"))
    E, L_moe, Fs = _get(m, "n_experts"), _get(m, "n_moe_layers"), _get(m, "d_ffn_shared")
    per_layer = _attention(m) + _get(m, "n_norms") * D + _get(m, "qk_norm") * 2 * H
    dense_mlp = (L - L_moe) * 3 * D * F
    moe = L_moe * (E * _expert(m) + E * (D + _get(m, "router_bias")) + 3 * D * Fs)
    total = V * D + L * per_layer + dense_mlp + moe + D + (0 if m["tied_embeddings"] else V * D)
    if active:
        total -= L_moe * (E - _get(m, "experts_per_token")) * _expert(m)
    return total


def flops_by_op(m: dict, n: float, pairs: float, absorbed: bool = False) -> dict[str, float]:
    """One block, n new tokens, `pairs` (query, key) pairs; the MLP of a dense block (`mlp`) or of
    a MoE block (`moe`: the k routed experts, the shared ones and the router) separately."""
    D, N, K, H, F = (m[k] for k in ("d_model", "n_heads", "n_kv_heads", "d_head", "d_ffn"))
    c = _get(m, "kv_lora_rank")
    if c:
        qc, r, nope, dv = (_get(m, k) for k in MLA_DIMS)
        q = 2 * n * D * qc + 2 * n * qc * N * (nope + r) if qc else 2 * n * D * N * (nope + r)
        attn = {
            "q": q,
            "k": 2 * n * D * (c + r),
            "v": 2 * n * N * c * (nope + dv),
            "o": 2 * n * N * dv * D,
            "qk": 2 * pairs * N * ((c + r) if absorbed else (nope + r)),
            "av": 2 * pairs * N * (c if absorbed else dv),
        }
    else:
        attn = {
            "q": 2 * n * D * N * H,
            "k": 2 * n * D * K * H,
            "v": 2 * n * D * K * H,
            "o": 2 * n * N * H * D,
            "qk": 2 * pairs * N * H,
            "av": 2 * pairs * N * H,
        }
    Fm = _get(m, "experts_per_token") * _get(m, "d_ffn_expert") + _get(m, "d_ffn_shared")
    return {
        "rmsnorm": _get(m, "n_norms") * (4 * n * D + 2 * n),
        "rope": 6 * n * D,
        "softmax": 5 * pairs * N,
        **attn,
        "mlp": 3 * 2 * n * D * F + 6 * n * F,
        "moe": 3 * 2 * n * D * Fm + 6 * n * Fm + 2 * n * D * _get(m, "n_experts"),
    }


ATTENTION_OPS = ("qk", "softmax", "av")


def split_flops(
    m: dict, n: float, pairs: float, pairs_window: float = 0.0, absorbed: bool = False
) -> tuple[float, float]:
    """(non-attention FLOPs incl. LM head on one token, attention FLOPs) of one pass, all layers.

    Layer by layer: full-attention layers see `pairs`, sliding-window layers `pairs_window`;
    MoE layers run the MoE MLP, the others the dense one."""
    L, L_moe, L_w = m["n_layers"], _get(m, "n_moe_layers"), _get(m, "n_window_layers")
    full = flops_by_op(m, n, pairs, absorbed)
    win = flops_by_op(m, n, pairs_window, absorbed)
    attn = (L - L_w) * sum(full[k] for k in ATTENTION_OPS) + L_w * sum(win[k] for k in ATTENTION_OPS)
    common = sum(v for k, v in full.items() if k not in ATTENTION_OPS + ("mlp", "moe"))
    other = L * common + (L - L_moe) * full["mlp"] + L_moe * full["moe"]
    return other + 2 * m["d_model"] * m["vocab"], attn


@functools.lru_cache(maxsize=256)
def window_prefill_pairs(S: float, W: float, causal: bool) -> float:
    """Pairs of a prefill of S tokens in a window layer: query i sees itself and min(i, W) earlier
    tokens (causal, counted one query at a time); all min(S, W + 1) keys it may see (the article)."""
    if not causal:
        return S * min(S, W + 1)
    return float(sum(min(i, W) + 1 for i in range(int(S))))


def _kv_elems(m: dict, tp: float) -> float:
    """Cached values per token and layer on one GPU: K and V of ceil(K/P) heads, or MLA's c + r."""
    if _get(m, "kv_lora_rank"):
        return _get(m, "kv_lora_rank") + _get(m, "qk_rope_head_dim")
    return 2 * math.ceil(m["n_kv_heads"] / tp) * m["d_head"]


def kv_seq_per_gpu(m: dict, tp: float, kv_bytes: float, seq: float) -> float:
    """KV bytes of one sequence of `seq` tokens on one GPU: window layers keep their last W tokens."""
    L_w = _get(m, "n_window_layers")
    layer_tokens = (m["n_layers"] - L_w) * seq + L_w * min(seq, _get(m, "window"))
    return _kv_elems(m, tp) * kv_bytes * layer_tokens


def kv_per_token_per_gpu(m: dict, tp: float, kv_bytes: float) -> float:
    return m["n_layers"] * _kv_elems(m, tp) * kv_bytes


def _link(gpu: dict, prof: dict, group: float) -> float:
    """Achieved bandwidth per GPU of a collective: the node's links (PCIe or NVLink/Infinity
    Fabric, each at the engine's achieved fraction) or, across nodes, the network."""
    if group > gpu["gpus_per_node"]:
        return gpu["network_bytes_per_s"]
    eff = {0: prof["link_eff"], 1: prof["pcie_link_eff"], 2: prof["if_link_eff"]}[int(gpu["link_kind"])]
    return gpu["link_bytes_per_s"] * eff


def comm(m: dict, gpu: dict, prof: dict, par: dict, tokens: float, act_bytes: float = 2.0) -> float:
    """All communication of one pass of `tokens` tokens through one rank, message by message:
    the all-reduces of every block, expert parallelism's dispatch and combine in every MoE block,
    and one transfer at every pipeline stage boundary."""
    tp, pp, dp, ep = par["tp"], par["pp"], par["dp"], par["ep"]
    alpha, D = prof["allreduce_latency_s"], m["d_model"]
    moe = bool(_get(m, "n_experts"))
    group = tp * dp if ep else tp
    a2a = moe and ep and group > 1
    t = 0.0
    if tp > 1:
        ring = prof["allreduce_volume_factor"] * (tp - 1) / tp * tokens * D * act_bytes / _link(gpu, prof, tp)
        for layer in range(int(m["n_layers"])):
            is_moe_layer = layer >= m["n_layers"] - _get(m, "n_moe_layers")  # which ones does not matter
            mlp_reduced = not (a2a and is_moe_layer and not _get(m, "d_ffn_shared"))
            t += (1 + mlp_reduced) * (alpha + ring)
    if a2a:
        share = tokens / tp * _get(m, "experts_per_token") * D * act_bytes * (group - 1) / group
        t += 2 * _get(m, "n_moe_layers") * (alpha + share / _link(gpu, prof, group))
    for _ in range(int(pp) - 1):
        t += alpha + tokens * D * act_bytes / _link(gpu, prof, tp * pp)
    return t


def _prefill(m, gpu, prof, par, batch, input_len, w_bytes, kv_bytes, compute_dtype):
    """Prefill of `batch` prompts of `input_len` tokens in one pass through every stage [s]."""
    tp = par["tp"]
    peak = gpu[PEAK_FIELDS[compute_dtype]] * tp
    bw = gpu["hbm_bytes_per_s"]
    S = input_len
    causal = bool(prof["causal_attention"])
    pairs = S * (S + 1) / 2 if causal else S * S
    other, attn = split_flops(m, S, pairs, window_prefill_pairs(S, _get(m, "window"), causal))
    n_tok = batch * S
    e_mm = prof["matmul_eff"] * n_tok / (n_tok + prof["matmul_tokens_half"])
    compute = batch * (other / e_mm + attn / prof["attn_eff"]) / peak
    # MoE: the experts one prompt's S tokens touch are read (a bound from below for more prompts).
    memory = _weight_read(m, gpu, prof, par, w_bytes, S) + batch * kv_seq_per_gpu(m, tp, kv_bytes, S) / (
        bw * prof["kv_bw_eff"]
    )
    return prof["prefill_overhead_s"] + _roof(prof, compute, memory) + comm(m, gpu, prof, par, n_tok)


def _roof(prof, c, mem):
    """Math and memory time of one pass: the longer, plus the shorter's share not hidden under it."""
    return max(c, mem) + (1 - prof["roof_overlap"]) * min(c, mem)


def _weight_read(m, gpu, prof, par, w_bytes, tokens):
    """Streams every weight once, except an untied embedding (unless the article's convention) and
    the routed experts none of the step's tokens is sent to. Non-expert weights are split over tp
    GPUs; the experts over tp (each expert split) or, under expert parallelism, tp * dp GPUs whose
    dp ranks' tokens all share them. The stages of a pipeline read their layers one after another."""
    skipped = (1 - prof["reads_embedding"]) * (0 if m["tied_embeddings"] else m["vocab"] * m["d_model"])
    E, L_moe = _get(m, "n_experts"), _get(m, "n_moe_layers")
    experts = L_moe * E * _expert(m)
    group, group_tokens = (par["tp"] * par["dp"], tokens * par["dp"]) if par["ep"] else (par["tp"], tokens)
    touched = L_moe * (E - _idle_experts(m, group_tokens)) * _expert(m)
    per_gpu = (params(m) - skipped - experts) / par["tp"] + touched / group
    return per_gpu * w_bytes / (gpu["hbm_bytes_per_s"] * prof["weight_bw_eff"])


def _step_terms(m, gpu, prof, par, batch, context, w_bytes, kv_bytes, compute_dtype):
    """(math, memory) time of one decode step of `batch` sequences after `context` cached tokens."""
    tp = par["tp"]
    peak = gpu[PEAK_FIELDS[compute_dtype]] * tp
    work = batch * math.ceil(m["n_kv_heads"] / tp) / gpu["n_sm"]
    e_kv = prof["kv_bw_eff"] * work / (work + prof["kv_parallel_half"])
    e_mm1 = prof["matmul_eff"] * batch / (batch + prof["matmul_tokens_half"])
    window_context = min(context, _get(m, "window"))  # a window layer keeps its last W tokens
    other1, attn1 = split_flops(m, 1, context + 1, window_context + 1, absorbed=True)
    c = batch * (other1 / e_mm1 + attn1 / prof["attn_eff"]) / peak
    mem = _weight_read(m, gpu, prof, par, w_bytes, batch) + batch * kv_seq_per_gpu(m, tp, kv_bytes, context) / (
        gpu["hbm_bytes_per_s"] * e_kv
    )
    return c, mem


def _step_fixed(m, gpu, prof, par, batch):
    return prof["step_overhead_s"] + comm(m, gpu, prof, par, batch)


def _step(m, gpu, prof, par, batch, context, *args):
    """One decode step of `batch` sequences after `context` cached tokens each [s]."""
    return _step_fixed(m, gpu, prof, par, batch) + _roof(prof, *_step_terms(m, gpu, prof, par, batch, context, *args))


def _steady_step(m, gpu, prof, par, batch, contexts, *args, prompts=0.0, input_len=0.0):
    """One step of `batch` sequences spread evenly over `contexts`: math and memory summed over
    the sequences, i.e. averaged over the contexts one by one, then the roofline. With
    ``prompts`` (chunked prefill), that many whole prompts of `input_len` tokens join the step:
    their math and KV writes, and their tokens in every all-reduce."""
    w_bytes, kv_bytes, compute_dtype = args
    terms = [_step_terms(m, gpu, prof, par, batch, t, *args) for t in contexts]
    c, mem = (math.fsum(x) / len(terms) for x in zip(*terms))
    if prompts:
        S = input_len
        causal = bool(prof["causal_attention"])
        pairs = S * (S + 1) / 2 if causal else S * S
        other, attn = split_flops(m, S, pairs, window_prefill_pairs(S, _get(m, "window"), causal))
        peak = gpu[PEAK_FIELDS[compute_dtype]] * par["tp"]
        c += prompts * (other / prof["matmul_eff"] + attn / prof["attn_eff"]) / peak
        mem += prompts * kv_seq_per_gpu(m, par["tp"], kv_bytes, S) / (gpu["hbm_bytes_per_s"] * prof["kv_bw_eff"])
    fixed = prof["step_overhead_s"] + comm(m, gpu, prof, par, batch + prompts * input_len)
    return fixed + _roof(prof, c, mem)


def evaluate(
    m: dict,
    gpu: dict,
    prof: dict,
    tp: float,
    batch: float,
    input_len: float,
    output_len: float,
    w_bytes: float = 2.0,
    kv_bytes: float = 2.0,
    compute_dtype: int = 0,
    scenario: str = "static",
    pp: float = 1,
    dp: float = 1,
    expert_parallel: bool = False,
) -> dict[str, float]:
    """Latency, throughput and cost of one design point, request by request.

    With pipeline or data parallelism, pp * dp engines (micro-batches) each serve `batch`
    requests side by side; static waves of a pipeline's micro-batches start P/pp apart, P the
    prefill of the first wave."""
    par = dict(tp=tp, pp=pp, dp=dp, ep=bool(expert_parallel))
    n_params = params(m)
    experts = _get(m, "n_moe_layers") * _get(m, "n_experts") * _expert(m)
    seq = input_len + output_len - 1
    kv_seq = kv_seq_per_gpu(m, tp, kv_bytes, seq) / pp  # a stage caches its own layers
    group = tp * dp if expert_parallel else tp
    w_gpu = ((n_params - experts) / tp + experts / group) * w_bytes / pp
    usable = prof["mem_usable_frac"] * gpu["hbm_bytes"] - w_gpu
    kv_budget = prof["kv_free_frac"] * usable
    max_batch = min(math.floor(max(kv_budget, 0) / (pp * kv_seq)), prof["max_num_seqs"])
    # Steady states: sequences spread over their lives hold the mean context, if paged.
    kv_mean = kv_seq_per_gpu(m, tp, kv_bytes, input_len + (output_len - 1) / 2) / pp
    steady_batch = max_batch
    if prof["kv_paged"]:
        steady_batch = min(math.floor(max(kv_budget, 0) / (pp * kv_mean)), prof["max_num_seqs"])
    # The token budget per step: one token per decoding sequence, plus (chunked prefill) the
    # prompt tokens of the requests that start while it runs, I / O per sequence and step.
    per_seq = 1 + (input_len / output_len if prof["chunked_prefill"] else 0)
    if math.isfinite(prof["max_num_tokens"]):
        steady_batch = min(steady_batch, math.floor(prof["max_num_tokens"] / per_seq))
    lockstep_batch = min(max_batch, prof["max_num_tokens"])
    # A paged engine admits every request whose prompt (I tokens) fits, and prefills them first.
    kv_prompt = kv_seq_per_gpu(m, tp, kv_bytes, input_len) / pp
    admitted = min(math.floor(max(kv_budget, 0) / (pp * kv_prompt)), prof["max_num_seqs"])
    args = (w_bytes, kv_bytes, compute_dtype)
    steps = max(output_len - 1, 1)
    engines = int(pp * dp)

    def decode(b):  # explicit loop over steps at contexts I, I+1, ..., I+steps-1
        return sum(_step(m, gpu, prof, par, b, input_len + k, *args) for k in range(int(steps)))

    def first_token(k, b):  # the k-th of b prompts that arrive together gets its first token
        if prof["prefill_first_alone"] and b > 1:  # the first alone, then one pass over the others
            one = _prefill(m, gpu, prof, par, 1, input_len, *args)
            return one if k == 1 else one + _prefill(m, gpu, prof, par, b - 1, input_len, *args)
        return _prefill(m, gpu, prof, par, k, input_len, *args)  # first come, first served

    if scenario == "static":
        # Simulate the waves of every engine: each request waits for the waves before it, then for
        # the prompts ahead of it in its own wave's prefill (first come, first served).
        b_run = min(batch, lockstep_batch) if lockstep_batch >= 1 else batch  # nothing fits: the batch as given
        stage_gap = _prefill(m, gpu, prof, par, b_run, input_len, *args) / pp
        clock, left, prefill_time, requests = 0.0, int(batch), 0.0, []
        in_flight: float | None = None
        while left > 0:  # one engine's waves; every engine runs the same ones
            b = min(b_run, left)
            p, d = _prefill(m, gpu, prof, par, b, input_len, *args), decode(b)
            in_flight = in_flight or b
            for k in range(1, int(b) + 1):  # the k-th prompt's first token: a pass over k prompts
                requests.append(
                    (
                        clock + first_token(k, b),
                        clock + p + (d if output_len > 1 else 0.0),
                        d / steps,
                    )
                )
            clock += p + (d if output_len > 1 else 0.0)
            prefill_time += p
            left -= int(b)
        # Micro-batch j of a pipeline starts j stage-times late; data-parallel ranks side by side.
        offsets = [(engine % int(pp)) * stage_gap for engine in range(engines)]
        if prof["kv_paged"] and batch <= admitted:  # first tokens from one pass over all B prompts
            firsts = [first_token(k, batch) for k in range(1, int(batch) + 1)]
            requests = [(f, *r[1:]) for f, r in zip(firsts, requests)]
        ttfts = [o + r[0] for o in offsets for r in requests]
        e2es = [o + r[1] for o in offsets for r in requests]
        tpots = [r[2] for o in offsets for r in requests]
        ttft, e2e, tpot = (sum(x) / len(x) for x in (ttfts, e2es, tpots))
        first = requests[0][0]
        rate = engines * batch * output_len / (max(offsets) + clock)
        in_rate = engines * batch * input_len / prefill_time
    else:
        c = steady_batch if scenario == "max_throughput" and steady_batch >= 1 else batch
        if scenario == "concurrency" and steady_batch >= 1:
            c = min(batch, steady_batch)  # the engine runs what fits; the other requests queue
        in_flight = c
        p1 = _prefill(m, gpu, prof, par, 1, input_len, *args)
        contexts = [input_len + j for j in range(int(output_len))]  # in flight at every stage
        in_rate = engines * input_len / p1
        if prof["chunked_prefill"]:  # c / O prompts join the steps; a request's decodes see the others'
            chunk = prof["prefill_chunk_tokens"]
            n = math.ceil(input_len / min(chunk, input_len)) if chunk > 0 else 1  # pieces of a prompt

            def mixed(prompts):  # one step of the c decodes carrying `prompts` prompts
                return _steady_step(m, gpu, prof, par, c, contexts, *args, prompts=prompts, input_len=input_len)

            def pieces(q):  # steps carry whole pieces (1/n of a prompt), n q of them on average
                k = math.floor(n * q)
                return (1 - (n * q - k)) * mixed(k / n) + (n * q - k) * mixed((k + 1) / n)

            mean_step = pieces if chunk > 0 else mixed
            step, tpot = mean_step(c / output_len), mean_step((c - 1) / steps)
            first = n * mixed(1 / n)
            ttft = first
            if chunk > 0:  # wait out the running step, then the prompts ahead (M/D/1), C - 1 of C
                service = n * (mixed(1 / n) - mixed(0))
                load = c / (output_len * step) * service
                ttft += (c - 1) / c * (pieces((c - 1) / steps) + load * service / (2 * (1 - load)))
            e2e = ttft + (steps * tpot if output_len > 1 else 0.0)
            rate = engines * c / step
        else:
            step = _steady_step(m, gpu, prof, par, c, contexts, *args)
            others = (c - 1) * p1
            e2e = p1 + (steps * step + others if output_len > 1 else others)
            ttft, tpot, first = p1, step + others / steps, p1
            rate = engines * c * output_len / e2e
        if scenario == "concurrency":  # Little's law: batch - c requests wait for a slot
            queue = (batch - c) * output_len * engines / rate
            ttft, e2e = ttft + queue, e2e + queue
    gpus = tp * pp * dp
    price = gpu["usd_per_hour"] * gpus
    peak = gpu[PEAK_FIELDS[compute_dtype]]
    feasible = (
        m["n_heads"] % tp == 0
        and pp <= m["n_layers"]
        and usable > 0
        and max_batch >= 1
        and math.isfinite(peak)
        and (scenario != "concurrency" or batch <= steady_batch or steady_batch >= 1)
    )
    return {
        "feasible": feasible,
        "params_total": n_params,
        "weight_bytes": w_gpu,
        "kv_cache_bytes": kv_seq * pp * float(in_flight or 0),
        "max_batch": max_batch,
        "batch_in_flight": engines * float(in_flight or 0),
        "ttft_s": ttft,
        "ttft_min_s": first,
        "tpot_s": tpot,
        "e2e_s": e2e,
        "output_tok_s": rate,
        "output_tok_s_per_gpu": rate / gpus,
        "user_tok_s": 1 / tpot,
        "usd_per_mtok_output": price / (rate * 3600) * 1e6,
        "usd_per_mtok_input": price / (in_rate * 3600) * 1e6,
    }
