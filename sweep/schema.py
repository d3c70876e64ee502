"""The dataset schema: units, long names, descriptions and sources of every variable and axis.

hvplot labels axes from ``long_name`` and ``units``; values are SI (s, byte, FLOP, USD, token).
"""

from __future__ import annotations

from kernels.roofline import BOTTLENECKS

COORDS = {
    "model": dict(long_name="model", units="1", description="catalogue key of the model (grids/models)"),
    "gpu": dict(long_name="GPU", units="1", description="catalogue key of the GPU (grids/gpus.toml)"),
    "tp": dict(long_name="tensor-parallel degree", units="GPU", description="GPUs of one pipeline stage"),
    "batch": dict(
        long_name="batch size",
        units="sequence",
        description="requests served together, per micro-batch of a data-parallel rank (pp = dp = 1: of the replica)",
    ),
    "input_len": dict(long_name="prompt length", units="token", description="prompt tokens per request"),
    "output_len": dict(long_name="output length", units="token", description="generated tokens per request"),
    "weight_dtype": dict(long_name="weight format", units="1", description="storage format of the weights"),
    "kv_dtype": dict(long_name="KV-cache format", units="1", description="storage format of the KV cache"),
    "compute_dtype": dict(
        long_name="compute precision",
        units="1",
        description="tensor-core precision whose peak applies (auto: the weight format's, grids/dtypes.toml)",
    ),
    "profile": dict(long_name="engine profile", units="1", description="efficiency profile (grids/profiles)"),
    "scenario": dict(
        long_name="serving scenario",
        units="1",
        description="static: batch requests at once, in waves; concurrency: batch requests in "
        "flight, steady state; max_throughput: as many in flight as fit",
    ),
    "pp": dict(
        long_name="pipeline stages",
        units="1",
        description="stages of P GPUs, each holding 1/pp of the layers; pp micro-batches of batch sequences in flight",
    ),
    "dp": dict(
        long_name="data-parallel ranks",
        units="1",
        description="ranks of pp * tp GPUs, each serving its own pp micro-batches",
    ),
    "expert_parallel": dict(
        long_name="expert parallelism",
        units="1",
        description="on: routed experts spread whole over the tp * dp GPUs of a stage, "
        "all-to-all dispatch and combine; off: split like dense MLPs",
    ),
}


def _v(units: str, long_name: str, description: str, source: str) -> dict[str, str]:
    return dict(units=units, long_name=long_name, description=description, source=source)


ART = "the article 'LLM inference economics from first principles'"
VARIABLES = {
    "feasible": _v(
        "1",
        "feasible",
        "the point can run: heads split evenly, precision present, batch fits in memory",
        "kernels.point.feasibility",
    ),
    "bottleneck": _v(
        "1", "bottleneck", "largest term over the whole request (capacity: does not fit)", "kernels.roofline.bottleneck"
    ),
    "params_total": _v("1", "parameters", "all parameters of the model", f"kernels.params.param_counts; {ART}"),
    "weight_bytes": _v(
        "byte", "weight memory per GPU", "bytes of weights held by each GPU", "kernels.params.weight_bytes / tp"
    ),
    "kv_cache_bytes": _v(
        "byte", "KV cache per GPU", "KV cache of the batch at its longest, per GPU", f"kernels.memory; {ART}, KV cache"
    ),
    "max_batch": _v(
        "sequence",
        "largest batch that fits",
        "sequences of the request length that fit beside the weights, capped by the engine",
        "kernels.memory.memory_plan",
    ),
    "batch_in_flight": _v(
        "sequence",
        "sequences in flight",
        "sequences decoded together (a static wave, or the concurrency)",
        "kernels.scenarios",
    ),
    "prefill_flops": _v("FLOP", "prefill FLOPs", "FLOPs of one prompt's prefill", f"kernels.flops; {ART}, prefill"),
    "decode_flops": _v(
        "FLOP",
        "decode FLOPs per token",
        "FLOPs of the first decode step of one sequence",
        f"kernels.flops; {ART}, decode",
    ),
    "prefill_s": _v("s", "prefill time", "the prefill pass of the whole batch", "kernels.roofline.prefill_time"),
    "decode_s": _v("s", "decode time", "all decode steps of the batch", "kernels.roofline.decode_time"),
    "ttft_s": _v("s", "time to first token", "arrival to first output token", "kernels.point.evaluate"),
    "ttft_min_s": _v(
        "s",
        "shortest time to first token",
        "the first request served: one prompt's prefill pass (static), or any request's (steady state)",
        "kernels.scenarios",
    ),
    "tpot_s": _v(
        "s", "time per output token", "mean time between output tokens after the first", "kernels.point.evaluate"
    ),
    "e2e_s": _v("s", "end-to-end latency", "arrival to last output token", "kernels.point.evaluate"),
    "output_tok_s": _v(
        "token/s", "output throughput", "output tokens per second of the replica", "kernels.point.evaluate"
    ),
    "output_tok_s_per_gpu": _v(
        "token/s/GPU", "output throughput per GPU", "output_tok_s / tp", "kernels.point.evaluate"
    ),
    "user_tok_s": _v(
        "token/s", "per-user speed", "output tokens per second one user sees, 1 / tpot", "kernels.point.evaluate"
    ),
    "usd_per_mtok_output": _v(
        "USD/Mtoken",
        "cost per million output tokens",
        "GPU price per hour x tp / output tokens per hour x 1e6",
        f"kernels.economics; {ART}, cost per token",
    ),
    "usd_per_mtok_input": _v(
        "USD/Mtoken",
        "cost per million input tokens",
        "GPU price per hour x tp / prompt tokens per hour of prefill x 1e6",
        "kernels.economics",
    ),
    "allreduce_s_per_token": _v(
        "s",
        "all-reduce time per token",
        "bandwidth term of one token's all-reduces",
        f"kernels.comm; {ART}, tensor parallelism",
    ),
}

BOTTLENECK_ATTRS = dict(flag_values=list(range(len(BOTTLENECKS))), flag_meanings=" ".join(BOTTLENECKS))
"""CF flag attributes decoding the bottleneck codes."""
