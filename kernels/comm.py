"""Communication between GPUs: tensor-parallel all-reduces, expert-parallel all-to-alls and
pipeline point-to-point transfers.

Each block all-reduces its activations twice under a Megatron-style split: after the attention
output projection and after the MLP down projection. Reference: the article "LLM inference
economics from first principles", section "Tensor parallelism": 4 x H100 over NVLink at 450 GB/s
move one token's activations in 2 * 2 * 8192 * 80 * 3/4 / 450e9 = 4.37 us, plus a few
microseconds of message latency. Expert parallelism (DeepSeek-V3 report, arXiv:2412.19437,
section 3.4; vLLM's --enable-expert-parallel): a MoE block sends each token to the GPUs holding
its k experts (dispatch) and gathers the results back (combine), two all-to-alls instead of the
MLP's all-reduce. Pipeline parallelism (GPipe, Huang et al., 2019): each stage boundary passes
the activations of the tokens in flight once per pass.

A group of GPUs that fits in one scale-up domain (``gpus_per_node``) talks over its links
(NVLink); a larger group crosses the scale-out network at ``network_bytes_per_s`` per GPU.
"""

from __future__ import annotations

from typing import NamedTuple

from kernels import xp
from kernels._types import Scalar
from kernels.params import is_moe
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec

ALLREDUCES_PER_BLOCK = 2.0
"""Megatron split: one after attention's o projection, one after the MLP's down projection."""


def group_link_bytes_per_s(gpu: GPUSpec, profile: EngineProfile, group: Scalar) -> Scalar:
    """Achieved bandwidth per GPU of collectives in a group of ``group`` GPUs: scale-up links
    inside a node at the engine's achieved fraction for that fabric (NVLink: ``link_eff``; PCIe
    through the host: ``pcie_link_eff``; Infinity Fabric, whose datasheet figure is the sum
    over all peers while a ring uses one link per pair: ``if_link_eff``), else the network (the
    slowest hop decides) [byte/s]."""
    eff = xp.select(
        [gpu.link_kind == 1.0, gpu.link_kind == 2.0], [profile.pcie_link_eff, profile.if_link_eff], profile.link_eff
    )
    return xp.where(group <= gpu.gpus_per_node, gpu.link_bytes_per_s * eff, gpu.network_bytes_per_s)


def expert_group(dep: Deployment) -> Scalar:
    """GPUs a MoE layer's routed experts are spread over: P * dp under expert parallelism, else
    the P GPUs of the tensor-parallel group (each holding 1/P of every expert) [GPU]."""
    return xp.where(dep.expert_parallel > 0.0, dep.tp * dep.dp, dep.tp)


def expert_group_tokens(dep: Deployment, tokens: Scalar) -> Scalar:
    """Tokens that share one expert group's experts in a pass where each rank carries ``tokens``:
    all dp ranks' under expert parallelism, else the rank's own [token]."""
    return tokens * xp.where(dep.expert_parallel > 0.0, dep.dp, 1.0)


def uses_all_to_all(model: ModelSpec, dep: Deployment) -> Scalar:
    """1.0 where MoE blocks dispatch tokens to expert-parallel GPUs (an MoE model, expert
    parallelism on, more than one GPU in the group), else 0.0."""
    return xp.where(is_moe(model) & (dep.expert_parallel > 0.0) & (expert_group(dep) > 1.0), 1.0, 0.0)


class CommTime(NamedTuple):
    """Communication time of one forward pass [s]."""

    bandwidth_s: Scalar  # bytes moved / link bandwidth, all collectives and transfers
    latency_s: Scalar  # message latencies, independent of the bytes
    total_s: Scalar


def allreduces(model: ModelSpec, dep: Deployment) -> Scalar:
    """All-reduces of one pass over all L blocks [1]: 2L, less the MLP all-reduce of MoE blocks
    whose output the expert-parallel combine delivers (those without shared experts: shared
    experts are split over the P GPUs like a dense MLP and still need theirs)."""
    dropped = uses_all_to_all(model, dep) * model.n_moe_layers * xp.where(model.d_ffn_shared > 0.0, 0.0, 1.0)
    return ALLREDUCES_PER_BLOCK * model.n_layers - dropped


def _allreduce_bandwidth_s(
    gpu: GPUSpec, dep: Deployment, profile: EngineProfile, n_ar: Scalar, message: Scalar
) -> Scalar:
    """n_ar all-reduces of ``message`` bytes over the P GPUs: n_ar f (P-1)/P message / W_tp [s]."""
    return _unless_none(
        n_ar,
        n_ar
        * profile.allreduce_volume_factor
        * (dep.tp - 1.0)
        / dep.tp
        * message
        / group_link_bytes_per_s(gpu, profile, dep.tp),
    )


def _unless_none(count: Scalar, time_s: Scalar) -> Scalar:
    """``time_s``, or exactly 0 where ``count`` (of messages) is 0, whatever the links (a GPU
    without a scale-out network has NaN there)."""
    return xp.where(count > 0.0, time_s, 0.0)


def comm_time(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile, tokens: Scalar) -> CommTime:
    """Communication of one pass that carries ``tokens`` tokens through every block of one rank.

    t = n_ar ( alpha + f (P-1)/P n D b / W_tp )                                    all-reduces
      + 2 L_moe ( alpha + (n/P) k D b (N-1)/N / W_N )     expert parallelism, N = P dp GPUs
      + (pp - 1) ( alpha + n D b / W_pipe )                  pipeline stage boundaries

    f = 2 for a ring all-reduce (reduce-scatter then all-gather each move (P-1)/P of the message);
    f = 1 is the article's count. alpha is the latency of one message (``allreduce_latency_s``,
    ``message_latency_s``).
    Dispatch and combine each send a GPU's 1/P share of the rank's tokens to k experts, (N-1)/N
    of which live elsewhere (uniform routing). A pipeline passes the tokens' activations (D
    values each) from stage to stage, over the network once the P * pp GPUs span nodes.
    """
    message = tokens * model.d_model * dep.act_bytes_per_elem
    n_ar = xp.where(dep.tp > 1.0, allreduces(model, dep), 0.0)  # one GPU communicates nothing
    group = expert_group(dep)
    a2a = 2.0 * model.n_moe_layers * uses_all_to_all(model, dep)
    a2a_link = group_link_bytes_per_s(gpu, profile, group)
    a2a_bw = _unless_none(a2a, a2a * message / dep.tp * model.experts_per_token * (group - 1.0) / group / a2a_link)
    hops = dep.pp - 1.0
    p2p_bw = _unless_none(hops, hops * message / group_link_bytes_per_s(gpu, profile, dep.tp * dep.pp))
    bandwidth = _allreduce_bandwidth_s(gpu, dep, profile, n_ar, message) + a2a_bw + p2p_bw
    latency = n_ar * allreduce_latency_s(gpu, dep, profile) + (a2a + hops) * message_latency_s(gpu, profile)
    return CommTime(bandwidth, latency, bandwidth + latency)


def pcie_latency_s(gpu: GPUSpec, profile: EngineProfile) -> Scalar:
    """Latency one step of a collective adds between GPUs linked over PCIe, beyond the fabric's
    own (``pcie_latency_extra_s``): it crosses the host's root complex or a PCIe switch, where
    NVLink and Infinity Fabric link the GPUs directly; 0 on those [s]."""
    return xp.where(gpu.link_kind == 1.0, profile.pcie_latency_extra_s, 0.0)


def message_latency_s(gpu: GPUSpec, profile: EngineProfile) -> Scalar:
    """alpha of one point-to-point transfer or all-to-all [s]: ``allreduce_latency_s`` plus one
    PCIe step (``pcie_latency_s``)."""
    return profile.allreduce_latency_s + pcie_latency_s(gpu, profile)


def allreduce_latency_s(gpu: GPUSpec, dep: Deployment, profile: EngineProfile) -> Scalar:
    """alpha of one all-reduce over the P GPUs [s]: ``allreduce_latency_s`` plus, over PCIe, one
    ``pcie_latency_s`` per step of a ring, 2 (P - 1) (reduce-scatter then all-gather: NCCL's ring,
    Patarasuk & Yuan 2009; over NVLink TensorRT-LLM's custom all-reduce is one step)."""
    return profile.allreduce_latency_s + 2.0 * (dep.tp - 1.0) * pcie_latency_s(gpu, profile)


def allreduce_time(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile, tokens: Scalar) -> CommTime:
    """The 2L all-reduces alone of one pass over ``tokens`` tokens (the article's tensor-parallel
    term, reported per token)."""
    n_ar = xp.where(dep.tp > 1.0, ALLREDUCES_PER_BLOCK * model.n_layers, 0.0)
    bandwidth = _allreduce_bandwidth_s(gpu, dep, profile, n_ar, tokens * model.d_model * dep.act_bytes_per_elem)
    latency = n_ar * allreduce_latency_s(gpu, dep, profile)
    return CommTime(bandwidth, latency, bandwidth + latency)
