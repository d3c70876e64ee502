"""The poisson closed form of this checkout against the stored simulations of its full check
(scripts/poisson_simulations.json: 200 configurations, each at its stored request rate), in
seconds instead of the check's half hour: a closed form does not change its simulation, so a
change to kernels/queueing.py is scored by evaluating the closed form alone. Prints the summary the
README quotes, overall and above 0.8 of the highest rate, and with ``-v`` each configuration off
its target. Usage: PYTHONPATH=. python scripts/poisson_rescore.py [-v]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kernels.point import evaluate_point
from sweep.bench.simulate import error_summary
from tests.kernels.test_queueing import at_rate, poisson_point

SIMULATIONS = Path(__file__).with_name("poisson_simulations.json")
METRICS = {
    "ttft_mean": "ttft_s",
    "ttft_p90": "ttft_p90_s",
    "tpot_mean": "tpot_s",
    "tpot_p90": "tpot_p90_s",
    "e2e_mean": "e2e_s",
    "e2e_p90": "e2e_p90_s",
}


def main(verbose: bool) -> None:
    rows = []
    for c in json.loads(SIMULATIONS.read_text())["configurations"]:
        point = at_rate(
            poisson_point(c["model"], c["gpu"], c["profile"], c["tp"], c["input_len"], c["output_len"]),
            c["request_rate"],
        )
        m = evaluate_point(point)
        errors = {key: float(getattr(m, name)) / c["simulated_s"][key] - 1.0 for key, name in METRICS.items()}
        rows.append(errors | {"target_utilization": c["target_utilization"]})
        off = any(abs(v) > (0.05 if k.endswith("mean") else 0.10) for k, v in errors.items())
        if verbose and off:
            cells = " ".join(f"{k} {v:+6.1%}" for k, v in errors.items())
            print(
                f"seed {c['seed']} #{c['index']:3d} {c['model']} {c['gpu']} {c['profile']} tp {c['tp']} "
                f"{c['input_len']}/{c['output_len']} at {c['target_utilization']:.2f}: {cells}"
            )
    print(error_summary(rows))
    high = [r for r in rows if r["target_utilization"] > 0.8]
    print(f"\nabove 0.8 of the highest rate ({len(high)}):" + error_summary(high))


if __name__ == "__main__":
    main("-v" in sys.argv[1:])
