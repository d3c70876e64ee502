"""The poisson closed form of this checkout against the stored simulations of its full check
(scripts/poisson_simulations.json: 200 configurations, each at its stored request rate), in
seconds instead of the check's half hour: a closed form does not change its simulation, so a
change to kernels/queueing.py is scored by evaluating the closed form alone. Prints the summary the
README quotes, overall, at most and above 0.8 of the highest rate, and with ``-v`` each configuration off
its target (with ``-v -a``: every configuration). Usage: PYTHONPATH=. python scripts/poisson_rescore.py [-v [-a]]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kernels.point import evaluate_point
from sweep.bench.simulate import METRICS, error_summary, target
from tests.kernels.test_queueing import at_rate, poisson_point

SIMULATIONS = Path(__file__).with_name("poisson_simulations.json")
CLOSED_FORM = {key: field for n in METRICS for key, field in ((f"{n}_mean", f"{n}_s"), (f"{n}_p90", f"{n}_p90_s"))}
"""``compare``'s error keys and the ``Metrics`` field each compares."""


def main(verbose: bool) -> None:
    rows = []
    for c in json.loads(SIMULATIONS.read_text())["configurations"]:
        point = at_rate(
            poisson_point(c["model"], c["gpu"], c["profile"], c["tp"], c["input_len"], c["output_len"]),
            c["request_rate"],
        )
        m = evaluate_point(point)
        errors = {key: float(getattr(m, name)) / c["simulated_s"][key] - 1.0 for key, name in CLOSED_FORM.items()}
        rows.append(errors | {"target_utilization": c["target_utilization"]})
        off = any(abs(v) > target(k) for k, v in errors.items())
        if verbose and (off or "-a" in sys.argv[1:]):
            cells = " ".join(f"{k} {v:+6.1%}" for k, v in errors.items())
            print(
                f"seed {c['seed']} #{c['index']:3d} {c['model']} {c['gpu']} {c['profile']} tp {c['tp']} "
                f"{c['input_len']}/{c['output_len']} at {c['target_utilization']:.2f}: {cells}"
            )
    print(error_summary(rows))
    low = [r for r in rows if r["target_utilization"] <= 0.8]
    print(f"\nat most 0.8 of the highest rate ({len(low)}):" + error_summary(low))
    high = [r for r in rows if r["target_utilization"] > 0.8]
    print(f"\nabove 0.8 of the highest rate ({len(high)}):" + error_summary(high))


if __name__ == "__main__":
    main("-v" in sys.argv[1:])
