"""Tensor-parallel communication: the all-reduces of a Megatron-style column/row split.

Each block all-reduces its activations twice: after the attention output projection and after
the MLP down projection. Reference: the article "LLM inference economics from first principles",
section "Tensor parallelism": 4 x H100 over NVLink at 450 GB/s move one token's activations in
2 * 2 * 8192 * 80 * 3/4 / 450e9 = 4.37 us, plus a few microseconds of message latency.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kernels._types import Scalar
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec

ALLREDUCES_PER_BLOCK = 2.0
"""Megatron split: one after attention's o projection, one after the MLP's down projection."""


def tp_link_bytes_per_s(gpu: GPUSpec, tp: Scalar) -> Scalar:
    """Bandwidth of the slowest link in a P-GPU group: scale-up inside a node, else network."""
    return jnp.where(tp <= gpu.gpus_per_node, gpu.link_bytes_per_s, gpu.network_bytes_per_s)


class AllReduceTime(NamedTuple):
    """Time of the all-reduces of one forward pass [s]."""

    bandwidth_s: Scalar  # n_ar * f (P-1)/P * bytes / link
    latency_s: Scalar  # n_ar * latency, zero when P == 1
    total_s: Scalar


def allreduce_time(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile,
                   tokens: Scalar) -> AllReduceTime:
    """All-reduce time of one pass that carries ``tokens`` tokens' activations.

    t_ar = 2L * ( alpha + f * (P-1)/P * tokens * D * b_act / W_link )

    f = 2 for a ring all-reduce (reduce-scatter then all-gather each move (P-1)/P of the message);
    f = 1 is the article's count. alpha is the latency of one all-reduce.
    """
    n_ar = ALLREDUCES_PER_BLOCK * model.n_layers
    message = tokens * model.d_model * dep.act_bytes_per_elem
    share = (dep.tp - 1.0) / dep.tp
    split = dep.tp > 1.0  # one GPU communicates nothing, whatever its links
    bandwidth = jnp.where(
        split, n_ar * profile.allreduce_volume_factor * share * message / tp_link_bytes_per_s(gpu, dep.tp), 0.0)
    latency = jnp.where(split, n_ar * profile.allreduce_latency_s, 0.0)
    return AllReduceTime(bandwidth, latency, bandwidth + latency)
