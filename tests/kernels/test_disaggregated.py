"""The disaggregated scenario (kernels/disaggregated.py): its M/D/x prefill queue against Erlang's
exact M/D/1 law and against a simulated queue, the whole scenario against its simulation
(sweep.bench.simulate.simulate_disaggregated), the pool that binds, the KV transfer inside TTFT,
the GPUs its cost counts, its goodput, and the engine's sweep against the host evaluation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from grids.axes import design_inputs
from grids.errors import SpecError
from kernels import optimum
from kernels.disaggregated import kv_transfer, prefill_queue, wait_cdf, wait_quantiles
from kernels.optimum import Slo, goodput, meets
from kernels.point import design_point, evaluate_point
from sweep.bench.simulate import compare, prefill_pool

f64 = np.float64


def point(**values):
    """Llama 3.3 70B at 2k/128 on H100 SXM, vLLM profile: 2 prefill instances of tp 4, 2 decode
    ranks of tp 4, 1 request/s; ``values`` override."""
    base = dict(
        model="llama-3.3-70b",
        gpu="h100-sxm",
        profile="vllm",
        tp=4,
        input_len=2048,
        output_len=128,
        scenario="disaggregated",
        request_rate=1.0,
        prefill_instances=2,
        prefill_tp=4,
        dp=2,
    )
    return design_point(**design_inputs({**base, **values}))


def at_rate(p, rate: float):
    return p._replace(wl=dataclasses.replace(p.wl, request_rate=f64(rate)))


def erlang_md1_cdf(t: float, rate: float, service: float) -> float:
    """P(W <= t) in the M/D/1 queue, Erlang (1909): (1 - rho) sum_{k <= t/D} [lambda (kD - t)]^k / k!
    e^{-lambda (kD - t)} (Franx 2001, eq. (1) at c = 1)."""
    total = 0.0
    for k in range(int(math.floor(t / service)) + 1):
        x = rate * (k * service - t)
        total += x**k / math.factorial(k) * math.exp(-x)
    return (1.0 - rate * service) * total


@pytest.mark.parametrize("rho", [0.2, 0.6, 0.9])
def test_one_prefill_instance_is_erlangs_md1_queue(rho):
    service = 0.4
    rate = rho / service
    q = prefill_queue(f64(rate), f64(service), f64(1.0))
    # Pollaczek-Khinchine: E[W] = rho D / (2 (1 - rho)); the chain is exact up to its truncation
    # at 64 requests (3e-5 of the mean at rho = 0.9).
    assert float(q.wait_mean_s) == pytest.approx(rho * service / (2.0 * (1.0 - rho)), rel=1e-4)
    ts = np.array([0.0, 0.3, 1.0, 2.0, 4.3, 8.0])
    expected = [erlang_md1_cdf(t, rate, service) for t in ts]
    np.testing.assert_allclose(wait_cdf(q, ts), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("servers, rho", [(1, 0.5), (2, 0.9), (3, 0.7), (5, 0.3), (8, 0.8)])
def test_prefill_queue_matches_a_simulated_mdc_queue(servers, rho):
    # 200,000 prompts through `servers` instances first come first served (seeded), the first
    # tenth discarded (the pool starts empty). Tolerances: the sample's own noise at rho = 0.9.
    service = 0.4
    rate = rho * servers / service
    rng = np.random.default_rng(servers)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, 200_000))
    wait = (prefill_pool(arrivals, service, servers) - service - arrivals)[20_000:]
    q = prefill_queue(f64(rate), f64(service), f64(servers))
    p50, p90, p99, _ = wait_quantiles(q)
    assert float(q.wait_mean_s) == pytest.approx(wait.mean(), rel=0.03, abs=0.002 * service)
    assert float(p90) == pytest.approx(np.percentile(wait, 90), rel=0.05, abs=0.01 * service)
    assert float(p50) == pytest.approx(np.percentile(wait, 50), rel=0.05, abs=0.01 * service)


@pytest.mark.unchecked
def test_scenario_matches_its_simulation():
    # 3,000 requests at 2/3 of the highest sustainable rate: prefill pool, KV transfer and one
    # decode micro-batch, step by step (more configurations and rates, by hand: README). TTFT is
    # exact (eq. 1) up to the sample's noise; TPOT and e2e rest on the decode pool's mean field.
    p = at_rate(point(), 8.0)
    assert bool(evaluate_point(p).feasible)
    errors = compare(p, 3000, seed=1)
    assert abs(errors["ttft_mean"]) <= 0.05 and abs(errors["ttft_p90"]) <= 0.10, errors
    for name in ("tpot", "e2e"):
        assert abs(errors[f"{name}_mean"]) <= 0.03 and abs(errors[f"{name}_p90"]) <= 0.05, errors


def test_throughput_is_limited_by_the_slower_pool():
    base = point(prefill_instances=1, dp=8, output_len=512)  # decoding ample: the prefill instance binds
    service = float(evaluate_point(base).prefill_s)
    below = evaluate_point(at_rate(base, 0.8 / service))
    assert bool(below.feasible)
    assert float(below.utilization) == pytest.approx(0.8, rel=1e-12)  # lambda D / x
    assert float(below.output_tok_s) == pytest.approx(0.8 / service * 512, rel=1e-12)
    beyond = at_rate(base, 1.05 / service)
    assert not bool(evaluate_point(beyond).feasible)
    more_decode = dataclasses.replace(beyond.dep, dp=f64(16.0))
    assert not bool(evaluate_point(beyond._replace(dep=more_decode)).feasible)  # the wrong pool
    more_prefill = dataclasses.replace(beyond.dep, prefill_instances=f64(2.0))
    assert bool(evaluate_point(beyond._replace(dep=more_prefill)).feasible)

    # One decode rank and prefill to spare (8 instances): the decode rank binds. It keeps up with
    # about 5.3 requests/s here (by bisection on feasibility), so 0.5 / D = 3.2 runs and 1 / D =
    # 6.5 does not, while the prefill instances are busy only 1/16 and 1/8 of the time.
    decode_bound = point(prefill_instances=8, dp=1, output_len=512)
    light = evaluate_point(at_rate(decode_bound, 0.5 / service))
    assert bool(light.feasible) and float(light.utilization) > 0.5 / 8  # the decode rank's
    stuck = at_rate(decode_bound, 1.0 / service)
    assert not bool(evaluate_point(stuck).feasible)
    more_prefill = dataclasses.replace(stuck.dep, prefill_instances=f64(16.0))
    assert not bool(evaluate_point(stuck._replace(dep=more_prefill)).feasible)
    more_decode = dataclasses.replace(stuck.dep, dp=f64(2.0))
    assert bool(evaluate_point(stuck._replace(dep=more_decode)).feasible)


def test_ttft_includes_the_transfer():
    fast, slow = point(kv_link_bytes_per_s=40e9), point(kv_link_bytes_per_s=5e9)
    kv = kv_transfer(fast.model, fast.gpu, fast.dep, fast.wl)
    # tp 4 on both sides: 1/4 of 2 x 80 layers x 8 KV heads x 128 x 2 bytes x 2048 tokens per GPU
    assert float(kv.send_bytes) == float(kv.receive_bytes) == 2 * 80 * 2 * 128 * 2 * 2048
    extra = float(kv.send_bytes) * (1.0 / 5e9 - 1.0 / 40e9)
    a, b = evaluate_point(fast), evaluate_point(slow)
    assert float(b.kv_transfer_s) == pytest.approx(float(kv.send_bytes) / 5e9, rel=1e-12)
    for name in ("ttft_s", "ttft_min_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "e2e_s"):
        assert float(getattr(b, name)) - float(getattr(a, name)) == pytest.approx(extra, rel=1e-9), name
    assert float(b.tpot_s) == float(a.tpot_s)
    # By default the GPU's own link (grids/gpus.toml): NVLink, 450 GB/s, when all the GPUs fit one
    # node of 8, else the 400 Gb/s network per GPU: 2 x 4 + 2 x 4 = 16 GPUs do not, 1 x 4 + 1 x 4 do.
    for (x, y), link in (((2, 2), 50e9), ((1, 1), 450e9)):
        p = point(prefill_instances=x, dp=y)
        assert float(kv_transfer(p.model, p.gpu, p.dep, p.wl).link_bytes_per_s) == link
        assert float(evaluate_point(p).kv_transfer_s) == pytest.approx(float(kv.send_bytes) / link, rel=1e-12)
    # A link too slow to carry the prompts' KV caches at this rate (busy 1.7 of the time) cannot keep up.
    assert not bool(evaluate_point(point(kv_link_bytes_per_s=5e7)).feasible)


def test_cost_counts_all_gpus():
    p = point(prefill_instances=3, prefill_tp=2, tp=4, dp=2, request_rate=1.5)
    m = evaluate_point(p)
    gpus = 3 * 2 + 4 * 2
    tokens_per_hour = 1.5 * 128 * 3600.0
    assert float(m.output_tok_s) == pytest.approx(1.5 * 128, rel=1e-12)
    assert float(m.output_tok_s_per_gpu) == pytest.approx(1.5 * 128 / gpus, rel=1e-12)
    assert float(m.usd_per_mtok_output) == pytest.approx(2.99 * gpus / tokens_per_hour * 1e6, rel=1e-12)
    assert float(m.usd_per_mtok_output_owned) == pytest.approx(
        float(m.usd_per_hour_owned) / tokens_per_hour * 1e6, rel=1e-12
    )
    # prefill_tp 0 (its default) is the decode ranks' tp
    same = evaluate_point(point(prefill_instances=3, prefill_tp=0, tp=4, dp=2, request_rate=1.5))
    assert float(same.output_tok_s_per_gpu) == pytest.approx(1.5 * 128 / (3 * 4 + 4 * 2), rel=1e-12)


@pytest.mark.unchecked
def test_goodput_of_a_disaggregated_deployment(monkeypatch):
    # The search narrowed to 1-16 requests/s in 10 halvings (0.3% of the rate) to keep the host
    # evaluations few; `sweep optimize` searches 1e-4 to 1e4 in 30 (kernels/optimum.py).
    monkeypatch.setattr(optimum, "RATE_RANGE", (1.0, 16.0))
    monkeypatch.setattr(optimum, "RATE_STEPS", 10)
    slos = (Slo("ttft_p90_s", "<=", 0.5), Slo("tpot_p90_s", "<=", 0.03))
    p = point()
    g = goodput(p, slos)
    rate = float(g.rate)
    assert 1.0 < rate < 16.0
    assert bool(meets(evaluate_point(at_rate(p, 0.99 * rate)), slos))
    beyond = evaluate_point(at_rate(p, 1.01 * rate))
    assert bool(beyond.feasible) and not bool(meets(beyond, slos))  # an objective binds, not sustainability
    gpus = 2 * 4 + 4 * 2
    assert float(g.metrics.usd_per_mtok_output) == pytest.approx(2.99 * gpus / (rate * 128 * 3600.0) * 1e6, rel=1e-9)


def test_optimize_refuses_to_mix_rate_and_batch_scenarios():
    from grids.sweeps import validate
    from sweep.engine.optimize import optimize

    raw = {
        "name": "mixed",
        "axes": {
            "model": ["llama-3.3-70b"],
            "gpu": ["h100-sxm"],
            "tp": [4],
            "batch": [1],
            "input_len": [2048],
            "output_len": [128],
            "scenario": ["concurrency", "disaggregated"],
        },
    }
    with pytest.raises(SpecError, match="separate sweeps"):
        optimize(validate(raw, "test"), [Slo("ttft_p90_s", "<=", 1.0)])


@pytest.fixture(scope="module")
def engine_sweep():
    from grids.sweeps import validate
    from sweep.engine.compute import compute

    raw = {
        "name": "disaggregated-engine",
        "axes": {
            "model": ["llama-3.3-70b"],
            "gpu": ["h100-sxm"],
            "tp": [4],
            "batch": [1],
            "input_len": [2048],
            "output_len": [128],
            "prefill_instances": [1, 3],
            "prefill_tp": [0, 8],
            "request_rate": [1.0, 4.0],
        },
        "fixed": {"scenario": "disaggregated", "profile": "vllm", "dp": 2},
    }
    return compute(validate(raw, "test"))


def test_a_disaggregated_sweep_stores_what_the_host_evaluates(engine_sweep):
    ds = engine_sweep
    assert {"kv_transfer_s", "ttft_p90_s", "e2e_p99_s", "utilization"} <= set(ds.data_vars)
    assert ds["kv_transfer_s"].attrs["units"] == "s"
    names = ("ttft_s", "ttft_p90_s", "tpot_p90_s", "e2e_p99_s", "kv_transfer_s", "utilization", "usd_per_mtok_output")
    # half of the 8 points, each value of each axis twice (host evaluations are the slow part)
    for x, ptp, rate in ((1, 0, 1.0), (1, 8, 4.0), (3, 0, 4.0), (3, 8, 1.0)):
        host = evaluate_point(point(prefill_instances=x, prefill_tp=ptp, request_rate=rate))
        cell = ds.sel(prefill_instances=x, prefill_tp=ptp, request_rate=rate)
        assert bool(cell["feasible"].squeeze()) == bool(host.feasible)
        for name in names:
            stored, expected = float(cell[name].squeeze()), float(getattr(host, name))
            if math.isnan(expected):
                assert math.isnan(stored), name
            else:
                assert stored == pytest.approx(expected, rel=1e-3), (name, x, ptp, rate)  # float32 sweep
