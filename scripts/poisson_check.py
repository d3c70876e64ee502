"""The full run of tests/kernels/test_queueing.py: N random configurations (seeded), each
latency's mean and p90 from the closed form against the simulation; prints one row per
configuration and the summary the README quotes. Usage: python scripts/poisson_check.py N [SEED]"""

from __future__ import annotations

import sys
import time

import numpy as np

from kernels.point import evaluate_point
from sweep.bench.simulate import compare, error_summary, highest_rate
from tests.kernels.test_queueing import CONFIGS, at_rate, poisson_point, requests_for


def main(n: int, seed: int) -> None:
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
        errors = compare(point, requests_for(point, 60_000), seed=len(rows))
        rows.append(errors)
        cells = " ".join(f"{k} {v:+6.1%}" for k, v in errors.items() if k != "utilization")
        print(
            f"{len(rows):3d} {config} u={errors['utilization']:.2f} {cells} ({time.time() - start:.0f} s)", flush=True
        )
    print(error_summary(rows))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
