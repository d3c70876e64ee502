"""Renew the stored simulations of scripts/poisson_simulations.json whose engine profile changed.

A refitted profile changes the engine the simulator runs, so the stored simulations of that
profile no longer belong to it. For each stored configuration of the given profile: the request
rate is drawn again at the same share of the highest rate the closed form sustains under the
profile as it is now, the simulation is run again (``sweep.bench.simulate.simulate``, seed =
index - 1, at least 60,000 steps and ``LIVES`` correlation times, as scripts/poisson_check.py),
and its rate, requests and simulated mean and p90 replace the stored ones, exactly.
Usage: PYTHONPATH=. python scripts/poisson_resimulate.py PROFILE"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from scripts.poisson_check import LIVES, MOST
from scripts.poisson_rescore import SIMULATIONS
from sweep.bench.simulate import METRICS, highest_rate, simulate
from tests.kernels.test_queueing import at_rate, poisson_point, requests_for


def dump(data: dict) -> str:
    """The file's layout: one configuration per line."""
    rows = ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in data["configurations"])
    return '{\n "about": ' + json.dumps(data["about"]) + ',\n "configurations": [\n' + rows + "\n ]\n}\n"


def main(profile: str) -> None:
    data = json.loads(SIMULATIONS.read_text())
    renewed = 0
    for c in data["configurations"]:
        if c["profile"] != profile:
            continue
        start = time.time()
        point = poisson_point(c["model"], c["gpu"], c["profile"], c["tp"], c["input_len"], c["output_len"])
        point = at_rate(point, c["target_utilization"] * highest_rate(point))
        requests = requests_for(point, 60_000, MOST, LIVES)
        sim = simulate(point, requests, seed=c["index"] - 1)
        simulated = {}
        for name in METRICS:
            x = getattr(sim, f"{name}_s")
            simulated[f"{name}_mean"] = float(np.mean(x))
            simulated[f"{name}_p90"] = float(np.percentile(x, 90))
        c.update(request_rate=float(point.wl.request_rate), requests=requests, simulated_s=simulated)
        renewed += 1
        print(f"seed {c['seed']} #{c['index']:3d} {requests} requests ({time.time() - start:.0f} s)", flush=True)
        SIMULATIONS.write_text(dump(data))  # progress kept if interrupted
    print(f"renewed {renewed} simulations of {profile}")


if __name__ == "__main__":
    main(sys.argv[1])
