"""Prefix caching: the part of each prompt the engine already holds in its KV cache.

A share f of every prompt (``Workload.cached_prefix_fraction``: a system prompt or a conversation
history that the requests share) is found in the engine's prefix cache (vLLM's automatic prefix
caching, SGLang's RadixAttention). Of a prompt of I tokens the first c = floor(f I) are cached and
only the n = I - c new tokens are prefilled:

- their weight matmuls, elementwise ops and all-reduces are those of n tokens;
- their queries attend to the whole I-token context, the cached prefix included: causal,
  query i (i = c .. I - 1) sees i + 1 keys, pairs(I) - pairs(c) = I(I+1)/2 - c(c+1)/2 in a full
  layer (the article's full count: n I); a window layer's pairs(I) - pairs(c) likewise;
- the LM head still runs once, on the last token;
- their K and V are written (n tokens' worth), and the prefix's K and V are read once for their
  attention.

Memory: the cache holds one copy of the prefix per GPU, shared by every sequence (one common
prefix, as with a shared system prompt; ``kernels.memory.memory_plan``), so each sequence owns
only its T - c tokens and more sequences fit. Decoding still reads each sequence's whole context
every step: paged attention reads the shared blocks once per sequence that attends to them.

Reference: Kwon et al. 2023 (PagedAttention, arXiv:2309.06180) section 4.4 "shared prefix";
Zheng et al. 2024 (SGLang, arXiv:2312.07104) RadixAttention.
"""

from __future__ import annotations

from kernels import xp
from kernels._types import Scalar
from kernels.flops import PassFlops, causal_window_pairs, pass_flops
from kernels.specs import ModelSpec, Workload


def cached_tokens(wl: Workload) -> Scalar:
    """c = floor(f I), the prompt's tokens found in the prefix cache [token]; c < I for f < 1."""
    return xp.floor(wl.cached_prefix_fraction * wl.input_len)


def new_tokens(wl: Workload) -> Scalar:
    """n = I - c, the prompt's tokens a prefill computes [token]."""
    return wl.input_len - cached_tokens(wl)


def new_pairs(seq_len: Scalar, cached: Scalar, window: Scalar, causal: Scalar) -> tuple[Scalar, Scalar]:
    """(query, key) pairs of the new tokens' attention in a full and in a window layer [1].

    Causal: the new queries i = c .. I - 1 attend to i + 1 keys, the cached prefix included:
    I(I+1)/2 - c(c+1)/2 in a full layer, and a window layer's causal count at I minus that at c
    (``kernels.flops.causal_window_pairs``). The article's full count (every query sees all I
    keys): n I and n min(I, W + 1).
    """
    n = seq_len - cached
    full = n * seq_len
    causal_full = 0.5 * seq_len * (seq_len + 1.0) - 0.5 * cached * (cached + 1.0)
    full_window = n * xp.minimum(seq_len, window + 1.0)
    causal_window = causal_window_pairs(seq_len, window) - causal_window_pairs(cached, window)
    return full + causal * (causal_full - full), full_window + causal * (causal_window - full_window)


def prefill_new_flops(model: ModelSpec, wl: Workload, causal: Scalar) -> PassFlops:
    """FLOPs of the prefill of one prompt whose first c tokens are cached: n = I - c new tokens,
    their attention over all I (``new_pairs``), the LM head on the last token.

    With c = 0 this is ``kernels.flops.prefill_flops(model, I, causal)``.
    """
    c = cached_tokens(wl)
    pairs, pairs_window = new_pairs(wl.input_len, c, model.window, causal)
    one = xp.ones_like(wl.input_len)
    return pass_flops(model, wl.input_len - c, pairs, pairs_window, one, 0.0 * one)
