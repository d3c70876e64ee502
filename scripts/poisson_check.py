"""The full run of tests/kernels/test_queueing.py: N random configurations (seeded), each
latency's mean and p90 from the closed form against the simulation; prints one row per
configuration and the summary the README quotes, overall and above 0.8 of the highest rate.
Usage: python scripts/poisson_check.py N [SEED [STEPS]]: about STEPS engine steps per configuration
(default 60,000, at most 5,000 requests), three times as many (and requests) above 0.8, where the
simulation relaxes slowly (~ 1 / (1 - u)^2) and its empty start biases it low."""

from __future__ import annotations

import sys
import time

import numpy as np

from kernels.point import evaluate_point
from sweep.bench.simulate import compare, error_summary, highest_rate
from tests.kernels.test_queueing import CONFIGS, at_rate, poisson_point, requests_for


def main(n: int, seed: int, steps: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        config = (
            str(rng.choice(CONFIGS["model"])),
            str(rng.choice(CONFIGS["gpu"])),
            str(rng.choice(CONFIGS["profile"])),
            int(rng.choice([1, 2, 4, 8])),
            int(rng.integers(128, 4097)),
            int(rng.integers(32, 513)),
            float(rng.uniform(0.1, 0.95)),
        )
        point = poisson_point(*config[:6])
        if not bool(evaluate_point(at_rate(point, 1e-3)).feasible):
            continue
        point = at_rate(point, config[6] * highest_rate(point))
        start = time.time()
        high = config[6] > 0.8
        errors = compare(
            point, requests_for(point, 3 * steps if high else steps, 15_000 if high else 5000), seed=len(rows)
        )
        errors["target_utilization"] = config[6]
        rows.append(errors)
        cells = " ".join(f"{k} {v:+6.1%}" for k, v in errors.items() if "utilization" not in k)
        print(
            f"{len(rows):3d} {config} u={errors['utilization']:.2f} {cells} ({time.time() - start:.0f} s)", flush=True
        )
    print(error_summary(rows))
    high = [r for r in rows if r["target_utilization"] > 0.8]
    if high:
        print("\nabove 0.8 of the highest rate:" + error_summary(high))


if __name__ == "__main__":
    main(
        int(sys.argv[1]),
        int(sys.argv[2]) if len(sys.argv) > 2 else 0,
        int(sys.argv[3]) if len(sys.argv) > 3 else 60_000,
    )
