"""Spec pytrees: the inputs of the cost model for ONE design point.

Every leaf is a float array: rank 0 for one entry, rank 1 once the engine stacks entries along an
axis. There are no strings and no static fields, so specs that differ only in values share one
compiled program; names stay in the catalogues and become xarray coordinates.

Symbols (used throughout ``kernels``):

====  ==========================================  ========
sym   meaning                                     unit
====  ==========================================  ========
D     hidden size (``d_model``)                   1
L     transformer blocks (``n_layers``)           1
N     query heads (``n_heads``)                   1
K     key/value heads (``n_kv_heads``)            1
H     width of one head (``d_head``)              1
F     MLP inner size (``d_ffn``)                  1
V     vocabulary size (``vocab``)                 1
T     tokens of one sequence                      token
B     sequences in a step (``batch``)             sequence
P     tensor-parallel degree (``tp``)             GPU
E     routed experts per MoE layer                1
k     routed experts each token uses              1
c     MLA latent (compressed KV) width            1
r     MLA decoupled RoPE key width                1
W     sliding-window length                       token
====  ==========================================  ========
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.util
import sys
from typing import Any

from kernels._types import Leaf

_PYTREES: list[type] = []


class _RegisterOnJaxImport(importlib.abc.MetaPathFinder):
    """Imports ``jax`` as usual, then registers the spec classes with it."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "jax":
            return None
        sys.meta_path.remove(self)  # find the real spec, not this one again
        try:
            spec = importlib.util.find_spec("jax")
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module: Any) -> None:
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            for cls in _PYTREES:
                module.tree_util.register_dataclass(cls)

        spec.loader.exec_module = exec_and_register  # type: ignore[method-assign]
        return spec


def _pytree(cls: type) -> type:
    """A JAX pytree whose fields are its leaves (``jax.tree_util.register_dataclass``): now if JAX
    is imported, else as soon as it is, so that the kernels import without JAX (1-2 s) for host
    evaluation in numpy (``kernels.xp``)."""
    if "jax" in sys.modules:
        sys.modules["jax"].tree_util.register_dataclass(cls)
    else:
        if not _PYTREES:
            sys.meta_path.insert(0, _RegisterOnJaxImport())
        _PYTREES.append(cls)
    return cls


@_pytree
@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One decoder-only transformer: dense (Llama and alike), mixture of experts (Mixtral,
    Qwen3-MoE, DeepSeek-V3, Llama 4, gpt-oss), multi-head latent attention (DeepSeek-V3), and
    sliding-window layers (gpt-oss, Gemma 3, Llama 4's chunked attention).

    Counts are stored as floats (float64 holds integers exactly up to 2**53). The fields after
    ``qkv_bias`` describe the architecture's extensions; ``DENSE_DEFAULTS`` gives their values for a
    plain dense model (no experts, no MLA, no window), which leave every dense formula unchanged.
    """

    n_layers: Leaf  # L [1]
    d_model: Leaf  # D [1]
    n_heads: Leaf  # N [1]
    n_kv_heads: Leaf  # K [1]; K == N is multi-head attention, K < N grouped-query attention
    d_head: Leaf  # H [1]
    d_ffn: Leaf  # F [1], SwiGLU MLP inner size
    vocab: Leaf  # V [1]
    tied_embeddings: Leaf  # 1.0 if the LM head reuses the embedding matrix, else 0.0
    qkv_bias: Leaf  # 1.0 if the q, k, v projections carry bias vectors (Qwen2), else 0.0
    n_norms: Leaf  # RMSNorm scale vectors of width D per block [1]: 2 (Llama), 4 (Gemma 3)
    qk_norm: Leaf  # 1.0 if q and k get a per-head RMSNorm scale of width H (Qwen3, Gemma 3), else 0.0
    n_experts: Leaf  # E, routed experts of one MoE layer [1]; 0.0 = dense MLPs only
    experts_per_token: Leaf  # k, routed experts each token is sent to [1]
    d_ffn_expert: Leaf  # F_e, SwiGLU inner size of one routed expert [1]
    d_ffn_shared: Leaf  # F_s, inner size of all shared (always active) experts of one MoE layer [1]
    n_moe_layers: Leaf  # L_moe, blocks whose MLP is a MoE [1]; the other L - L_moe use d_ffn
    expert_bias: Leaf  # 1.0 if each expert's gate/up (2F_e) and down (D) projections carry biases (gpt-oss)
    router_bias: Leaf  # 1.0 if the router carries a bias of E (gpt-oss; DeepSeek-V3's e_score_correction_bias)
    kv_lora_rank: Leaf  # c, MLA latent cached per token and layer [1]; 0.0 = not MLA
    q_lora_rank: Leaf  # MLA query compression width [1]; 0.0 = q projected from D directly
    qk_rope_head_dim: Leaf  # r, MLA decoupled RoPE key width, cached once for all heads [1]
    qk_nope_head_dim: Leaf  # MLA per-head q/k width without RoPE [1]
    v_head_dim: Leaf  # MLA per-head value width [1]
    window: Leaf  # W, earlier tokens a sliding-window layer keeps and attends to [token]; 0.0 = none
    n_window_layers: Leaf  # L_w, blocks with sliding-window (or chunked) attention [1]
    max_context: (
        Leaf  # tokens one sequence may hold, prompt and output: max_position_embeddings [token]; inf: not stated
    )


DENSE_DEFAULTS = dict(
    n_norms=2.0,
    qk_norm=0.0,
    n_experts=0.0,
    experts_per_token=0.0,
    d_ffn_expert=0.0,
    d_ffn_shared=0.0,
    n_moe_layers=0.0,
    expert_bias=0.0,
    router_bias=0.0,
    kv_lora_rank=0.0,
    q_lora_rank=0.0,
    qk_rope_head_dim=0.0,
    qk_nope_head_dim=0.0,
    v_head_dim=0.0,
    window=0.0,
    n_window_layers=0.0,
    max_context=float("inf"),
)
"""Values of the ModelSpec extension fields for a dense model with full attention (Llama), and no
stated context limit."""


@_pytree
@dataclasses.dataclass(frozen=True)
class GPUSpec:
    """One accelerator, from its datasheet. FLOP/s are dense (datasheet sparsity figures / 2).

    Memory sizes and bandwidths are decimal bytes (80 GB = 80e9 bytes). NaN marks a value the
    chip does not have (e.g. fp8 on A100): any design point that needs it becomes infeasible.
    """

    flop_per_s_bf16: Leaf  # dense bf16/fp16 tensor peak [FLOP/s]
    flop_per_s_fp8: Leaf  # dense fp8 tensor peak [FLOP/s]
    flop_per_s_int8: Leaf  # dense int8 tensor peak [OP/s]
    flop_per_s_fp4: Leaf  # dense fp4 tensor peak [FLOP/s]
    hbm_bytes: Leaf  # device memory [byte]
    hbm_bytes_per_s: Leaf  # device memory bandwidth [byte/s]
    link_bytes_per_s: Leaf  # scale-up interconnect, per GPU per direction [byte/s]
    link_kind: Leaf  # scale-up fabric: 0 NVLink/NVSwitch, 1 PCIe through the host, 2 Infinity Fabric mesh (a code)
    network_bytes_per_s: Leaf  # scale-out network, per GPU per direction [byte/s]
    gpus_per_node: Leaf  # GPUs sharing one scale-up domain [GPU]
    n_sm: Leaf  # streaming multiprocessors / compute units [1]
    tdp_w: Leaf  # board power [W]
    usd_per_hour: Leaf  # rental price of one GPU [USD/h]
    capex_usd: Leaf  # purchase price of one GPU [USD]


@_pytree
@dataclasses.dataclass(frozen=True)
class Deployment:
    """How a deployment is run: parallelism, batch, number formats and the serving scenario.

    A deployment has P * pp * dp GPUs: dp data-parallel ranks, each a pipeline of pp stages of P
    tensor-parallel GPUs. ``batch`` is B, the requests of a static batch, or C, the requests kept
    in flight under the concurrency scenario (unused by max_throughput, which keeps as many as
    fit), counted per micro-batch: each rank keeps pp micro-batches in flight, so the deployment
    serves pp * dp * B. pp = dp = 1 is one tensor-parallel replica. Under the disaggregated
    scenario these P * pp * dp GPUs are the decode pool (dp = y decode instances) and x prefill
    instances of P_p GPUs each add x * P_p (``kernels.disaggregated``), on a GPU of their own type
    where ``DesignPoint.prefill_gpu`` is another (``prefill_compute_dtype``: the precision there).
    """

    tp: Leaf  # P, tensor-parallel degree = GPUs of one pipeline stage [GPU]
    batch: Leaf  # B, sequences served together [sequence]
    weight_bytes_per_elem: Leaf  # storage width of one weight [byte], 2.0 for bf16
    kv_bytes_per_elem: Leaf  # storage width of one cached K or V element [byte]
    act_bytes_per_elem: Leaf  # width of activations sent in all-reduces [byte]
    compute_dtype: Leaf  # which peak applies: 0 bf16/fp16, 1 fp8, 2 int8, 3 fp4 (a code)
    scenario: (
        Leaf  # 0 static, 1 concurrency, 2 max_throughput, 3 poisson, 4 disaggregated (kernels.scenarios.SCENARIOS)
    )
    pp: Leaf  # pipeline stages, each of P GPUs holding L/pp blocks; pp micro-batches in flight [1]
    dp: Leaf  # data-parallel ranks, each running attention on its own batch [1]
    expert_parallel: Leaf  # 1.0: routed experts spread whole over the P*dp GPUs of a stage; 0.0: split like dense MLPs
    prefill_instances: Leaf  # x, prefill instances beside the dp decode ranks (disaggregated scenario) [1]
    prefill_tp: Leaf  # P_p, GPUs of one prefill instance (disaggregated scenario) [GPU]
    prefill_compute_dtype: Leaf  # which peak applies on the prefill instances' GPU (a code, as compute_dtype)
    kv_link_bytes_per_s: Leaf  # moving KV from prefill to decode, per GPU per direction [byte/s]; NaN: the GPU's own
    draft_tokens: (
        Leaf  # k, tokens an MTP head drafts per sequence per decode round (kernels.speculative); 0: none [token]
    )
    draft_acceptance: Leaf  # a, probability that the target accepts each drafted token, in [0, 1) [1]


@_pytree
@dataclasses.dataclass(frozen=True)
class Workload:
    """One request shape, and how often requests come."""

    input_len: Leaf  # prompt tokens per request [token]
    output_len: Leaf  # generated tokens per request [token]
    request_rate: Leaf  # requests per second to the whole deployment, arriving at random (poisson scenario) [request/s]
    cached_prefix_fraction: Leaf  # f, share of each prompt already in the prefix cache, one prefix shared by all [1]
    input_len_spread: Leaf  # r_I, prompt lengths uniform on [I (1 - r_I), I (1 + r_I)] (kernels.lengths); 0: fixed [1]
    output_len_spread: Leaf  # r_O, output lengths uniform on [O (1 - r_O), O (1 + r_O)]; 0: fixed [1]


@_pytree
@dataclasses.dataclass(frozen=True)
class EngineProfile:
    """How far a serving engine falls short of the datasheet, as named physical terms.

    The conventions (``causal_attention``, ``allreduce_volume_factor``) decide how work is counted;
    the efficiencies (fractions of a datasheet peak, in (0, 1]) and overheads (seconds) say how fast
    that work runs. A profile of all-1.0 efficiencies and zero overheads is the pure roofline.
    Units, bounds and the sources of each value live with the profile data in ``grids/profiles``.
    """

    causal_attention: Leaf  # 1.0: query i attends to i keys (causal); 0.0: to all T (the article)
    allreduce_volume_factor: Leaf  # 2.0 ring all-reduce 2(P-1)/P; 1.0 the article's (P-1)/P [1]
    reads_embedding: Leaf  # 1.0: a step streams the whole embedding table (the article); 0.0: gathers rows
    matmul_eff: Leaf  # achieved / peak FLOP/s of weight matmuls with many tokens per step [1]
    matmul_tokens_half: Leaf  # tokens per step at which matmul efficiency is half of matmul_eff [token]
    attn_eff: Leaf  # achieved / peak FLOP/s of attention (QK^T, softmax, AV) [1]
    weight_bw_eff: Leaf  # achieved / peak bandwidth when streaming weights [1]
    kv_bw_eff: Leaf  # achieved / peak bandwidth when reading the KV cache, ample parallel work [1]
    kv_parallel_half: Leaf  # work items (B*K/P) per multiprocessor at which KV efficiency halves [1]
    step_overhead_s: Leaf  # fixed time per decode step: scheduling, launches, sampling [s]
    prefill_overhead_s: Leaf  # fixed time per prefill pass [s]
    allreduce_latency_s: Leaf  # latency of one all-reduce, independent of its size [s]
    link_eff: Leaf  # achieved / datasheet bandwidth of collectives over NVLink [1]
    pcie_link_eff: Leaf  # achieved / datasheet bandwidth of collectives between GPUs over PCIe [1]
    if_link_eff: Leaf  # achieved / datasheet (all-peer aggregate) bandwidth of collectives over Infinity Fabric [1]
    chunked_prefill: Leaf  # 1.0: prompts share steps with decodes (steady states); 0.0: each prefill pauses decoding
    prefill_chunk_tokens: Leaf  # K: most tokens of one prompt per step (0: spread evenly, inf: whole) [token]
    prefill_first_alone: (
        Leaf  # 1.0: a static batch's first prompt is prefilled alone, the others in the next pass; 0.0: FCFS
    )
    mem_usable_frac: Leaf  # fraction of device memory available to weights + KV cache [1]
    kv_free_frac: Leaf  # fraction of the usable memory left after the weights that goes to KV cache [1]
    kv_paged: Leaf  # 1.0: KV pages allocated as sequences grow (PagedAttention); 0.0: I + O reserved per sequence
    max_num_seqs: Leaf  # the engine's limit on sequences in flight (inf: none) [sequence]
    max_num_tokens: Leaf  # the engine's limit on tokens in one step, prompts and decodes together (inf: none) [token]
    attn_len_half: Leaf  # prompt length at which prefill attention runs at half attn_eff (0: constant) [token]
    attn_bf16_peak: (
        Leaf  # 1.0: attention math at the 16-bit tensor peak whatever compute_dtype; 0.0: at compute_dtype's
    )
    mem_reserved_bytes: Leaf  # per GPU beside weights and KV cache: CUDA context, buffers, activations [byte]
    head_16bit: (
        Leaf  # 1.0: embedding table and LM head stay 16-bit under narrower weight formats; 0.0: in the weight format
    )
    pcie_latency_extra_s: Leaf  # latency one collective adds over PCIe beyond allreduce_latency_s [s]
    roof_overlap: Leaf  # share of the shorter of math and memory time hidden under the longer (1: max) [1]


@_pytree
@dataclasses.dataclass(frozen=True)
class Ownership:
    """What owning the GPUs costs beyond their purchase price (``GPUSpec.capex_usd``): the rest
    of the node, the financing and the facility. Defaults and sources: grids/ownership.toml."""

    capex_usd_per_node: Leaf  # purchase price of a node beyond its GPUs: server, NICs, network share [USD]
    amortization_years: Leaf  # years over which the purchase is repaid [year]
    cost_of_capital: Leaf  # annual interest on the capital [1/year]
    power_frac: Leaf  # average power drawn while serving / rated power, GPUs and node alike [1]
    node_overhead_w: Leaf  # rated power of a node beyond its GPUs [W]
    pue: Leaf  # power usage effectiveness: facility power / IT power [1]
    usd_per_kwh: Leaf  # electricity price [USD/kWh]
    hosting_usd_per_kw_month: Leaf  # colocation per kW of provisioned IT power, electricity excluded [USD/(kW month)]


COMPUTE_DTYPES = ("bf16", "fp8", "int8", "fp4")
"""Names of the ``Deployment.compute_dtype`` codes, in code order."""
