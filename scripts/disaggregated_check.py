"""The disaggregated scenario's closed form (kernels/disaggregated.py) against its simulation
(sweep.bench.simulate.simulate_disaggregated) over N random configurations (seeded): each
latency's mean and p90; prints one row per configuration and the summary the README quotes.
With ``mixed``, each configuration's prefill instances draw their own GPU type too (``prefill_gpu``).
Usage: PYTHONPATH=. python scripts/disaggregated_check.py N [SEED] [mixed]"""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np

from grids.axes import design_inputs
from kernels.point import design_point, evaluate_point
from sweep.bench.simulate import compare, error_summary, highest_rate

CONFIGS = {
    "model": ["llama-3.1-8b", "llama-3.3-70b", "qwen2.5-7b"],
    "gpu": ["h100-sxm", "h200", "a100-sxm-80gb"],
    "profile": ["vllm", "trtllm", "lmdeploy"],
}


def requests_for(point, steps: int) -> int:
    """Enough requests for about ``steps`` steps of the simulated decode micro-batch."""
    m = evaluate_point(point)
    per_rank = max(float(m.batch_in_flight) / float(point.dep.pp * point.dep.dp), 1.0)
    steps_per_request = max(float(point.wl.output_len) - 1.0, 1.0) / per_rank
    return int(np.clip(steps / steps_per_request * float(point.dep.dp), 1000, 8000))


def main(n: int, seed: int, mixed: bool = False) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        values = dict(
            model=str(rng.choice(CONFIGS["model"])),
            gpu=str(rng.choice(CONFIGS["gpu"])),
            profile=str(rng.choice(CONFIGS["profile"])),
            tp=int(rng.choice([1, 2, 4, 8])),
            prefill_tp=int(rng.choice([1, 2, 4, 8])),
            prefill_instances=int(rng.integers(1, 5)),
            dp=int(rng.integers(1, 5)),
            input_len=int(rng.integers(256, 4097)),
            output_len=int(rng.integers(32, 257)),
            scenario="disaggregated",
            request_rate=1e-3,
        )
        if mixed:
            values["prefill_gpu"] = str(rng.choice(CONFIGS["gpu"]))
        utilization = float(rng.uniform(0.1, 0.9))
        point = design_point(**design_inputs(values))
        if not bool(evaluate_point(point).feasible):
            continue
        rate = utilization * highest_rate(point, steps=14)
        point = point._replace(wl=dataclasses.replace(point.wl, request_rate=np.float64(rate)))
        start = time.time()
        errors = compare(point, requests_for(point, 30_000), seed=len(rows))
        rows.append(errors)
        cells = " ".join(f"{k} {v:+6.1%}" for k, v in errors.items() if k != "utilization")
        keys = ("model", "gpu", "prefill_gpu", "profile", "tp", "prefill_tp", "prefill_instances", "dp")
        shown = {k: values[k] for k in keys if k in values}
        lengths = f"{values['input_len']}/{values['output_len']}"
        print(
            f"{len(rows):3d} {shown} {lengths} u={errors['utilization']:.2f} {cells} ({time.time() - start:.0f} s)",
            flush=True,
        )
    print(error_summary(rows))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0, "mixed" in sys.argv[3:])
