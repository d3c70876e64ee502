"""The figure kinds of ``sweep plot`` and the report, with one line each (no plotting imports, so
the CLI's --help stays fast; ``sweep.viz.figures.KINDS`` maps the same names to functions)."""

KIND_DESCRIPTIONS = {
    "kv-vs-context": "KV-cache bytes per GPU vs context length (log2 axis), one line per model",
    "throughput-vs-batch": "total and per-user output throughput vs batch size",
    "kv-vs-weights": "KV cache vs weight bytes per GPU vs batch: where the KV cache overtakes the weights",
    "prefill-share": "share of request time spent in prefill vs prompt length, one line per output length",
    "gpu-catalog": "memory size vs bandwidth across the GPU catalogue (labelled scatter)",
    "cost-vs-speed": "cost per million output tokens vs per-user speed: the Pareto front over tp and batch per GPU",
    "roofline": "arithmetic intensity vs attainable FLOP/s on one GPU, with prefill and decode points",
    "best-per-gpu": "lowest cost per million output tokens of each GPU type meeting the SLOs, rented and owned",
    "throughput-vs-interactivity": "output tokens/s per GPU vs tokens/s per user: the Pareto front per GPU type",
    "cost-vs-price": "cost per million output tokens vs the GPU's price, with each GPU's break-even price",
    "tornado": "which GPU number matters: elasticities of $/Mtok to FLOP/s, bandwidth, memory, link, price, power",
    "speculative-speedup": "speed-up of speculative decoding (an MTP head) vs batch, acceptance 0.6 and 0.8",
}
