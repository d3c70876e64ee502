"""The poisson scenario's closed form (kernels.queueing) against its engine simulated request by
request (sweep.bench.simulate), over random configurations across utilisation 0.1 to 0.95.

A sample runs here; the full run is ``python scripts/poisson_check.py 200`` (its table is quoted in
the README). Targets: mean TTFT and TPOT within 5%, p90 within 10%.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from grids.axes import design_inputs
from kernels.optimum import Slo, goodput, meets
from kernels.point import design_point, evaluate_point
from sweep.bench.simulate import compare, highest_rate

CONFIGS = {
    "model": ["llama-3.1-8b", "llama-3.3-70b", "qwen2.5-7b", "mixtral-8x7b"],
    "gpu": ["h100-sxm", "a100-sxm-80gb", "h200", "mi300x"],
    "profile": ["vllm", "trtllm", "lmdeploy"],
}


def poisson_point(
    model: str,
    gpu: str,
    profile: str,
    tp: int,
    input_len: int,
    output_len: int,
    rate: float = 1.0,
    input_len_spread: float = 0.0,
    output_len_spread: float = 0.0,
):
    return design_point(
        **design_inputs(
            dict(
                model=model,
                gpu=gpu,
                profile=profile,
                tp=tp,
                input_len=input_len,
                output_len=output_len,
                scenario="poisson",
                request_rate=rate,
                input_len_spread=input_len_spread,
                output_len_spread=output_len_spread,
            )
        )
    )


def at_rate(point, rate: float):
    return point._replace(wl=dataclasses.replace(point.wl, request_rate=np.float64(rate)))


def requests_for(point, steps: int = 20_000, most: int = 5000, lives: float = 0.0) -> int:
    """Enough requests for stable percentiles, about ``steps`` engine steps, and with ``lives``
    at least that many correlation times of the decoders' count (about one request's life /
    (1 - u), in which n / (1 - u) requests arrive; scripts/poisson_check.py), at most ``most``."""
    m = evaluate_point(point)
    decoders = max(float(m.batch_in_flight), 1.0)
    steps_per_request = max(float(point.wl.output_len) - 1.0, 1.0) / decoders
    by_lives = lives * decoders / max(1.0 - float(m.utilization), 0.05)
    return int(np.clip(max(steps / steps_per_request, by_lives), 600, most))


@st.composite
def configurations(draw):
    return (
        draw(st.sampled_from(CONFIGS["model"])),
        draw(st.sampled_from(CONFIGS["gpu"])),
        draw(st.sampled_from(CONFIGS["profile"])),
        draw(st.sampled_from([1, 2, 4, 8])),
        draw(st.integers(128, 4096)),
        draw(st.integers(32, 512)),
        draw(st.floats(0.1, 0.95)),
    )


@pytest.mark.unchecked
@pytest.mark.slow
@settings(
    max_examples=1,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example simulates thousands of requests
    suppress_health_check=list(HealthCheck),
)
@given(configurations())
def test_closed_form_matches_simulation(config):
    model, gpu, profile, tp, input_len, output_len, utilization = config
    point = poisson_point(model, gpu, profile, tp, input_len, output_len)
    if not bool(evaluate_point(at_rate(point, 1e-3)).feasible):
        return  # does not fit or does not split: nothing to serve
    point = at_rate(point, utilization * highest_rate(point))
    errors = compare(point, requests_for(point), seed=0)
    # The targets; near saturation (above 0.8 of the highest sustainable rate) the full run
    # misses them on about one configuration in ten (README), so there the bound is twice as wide.
    slack = 1.0 if utilization <= 0.8 else 2.0
    for name in ("ttft", "tpot"):
        assert abs(errors[f"{name}_mean"]) <= 0.05 * slack, (config, errors)
        assert abs(errors[f"{name}_p90"]) <= 0.10 * slack, (config, errors)


@pytest.mark.unchecked
@pytest.mark.slow
@settings(
    max_examples=1,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(configurations(), st.floats(0.0, 0.9), st.floats(0.0, 0.9))
def test_closed_form_matches_simulation_with_spread_lengths(config, input_spread, output_spread):
    """The same targets with each request's lengths drawn uniform about the means (kernels.lengths)."""
    model, gpu, profile, tp, input_len, output_len, utilization = config
    point = poisson_point(model, gpu, profile, tp, input_len, output_len, 1.0, input_spread, output_spread)
    if not bool(evaluate_point(at_rate(point, 1e-3)).feasible):
        return
    point = at_rate(point, utilization * highest_rate(point))
    errors = compare(point, requests_for(point), seed=0)
    slack = 1.0 if utilization <= 0.8 else 2.0
    for name in ("ttft", "tpot"):
        assert abs(errors[f"{name}_mean"]) <= 0.05 * slack, (config, input_spread, output_spread, errors)
        assert abs(errors[f"{name}_p90"]) <= 0.10 * slack, (config, input_spread, output_spread, errors)


# Fixed lengths: the numbers the spreads must leave bit for bit at 0 (``float.hex`` of evaluate_point).
# Source: the commit that added the spreads reproduced those of bba0370 exactly (the commit before
# them); they were recomputed when the physics changed on purpose near saturation (the feedback
# gain's prompt response in TPOT's spread and the admission wait: p90 TPOT +6.5% on the first, TTFT
# +0.2%; the second within 2e-5; the means of TPOT as before), and again when the decode step a
# request sees became size-biased over a gamma n (TPOT mean +0.26% on the first, -1.2% on the
# second, whose Mixtral reads its experts' weights concave in n; TTFT within 0.05%), and again when
# the mean step was taken at the steps' own average of n rather than Little's time average (TPOT
# mean -1.86% on the first, -0.02% on the second; TTFT within 0.11%), and again when the seats'
# tail became an overdispersed Poisson count instead of a normal one (TTFT mean +1.1%, p90 +0.2%
# on the first: its 4 x H100 hold few sequences of 4,234 tokens; the second within 1e-13; the share
# that waits summed as one less the states below the seats: p90s within 4e-14).
# One chunked-prefill point (vllm) and one without (lmdeploy).
FIXED_LENGTHS = {
    ("llama-3.3-70b", "h100-sxm", "vllm", 4, 3978, 256, 2.0): {
        "ttft_s": "0x1.4dd6c928e99a3p-1",
        "ttft_p90_s": "0x1.32ac6d2be5510p+0",
        "tpot_s": "0x1.68e9c7fcfbf76p-4",
        "tpot_p90_s": "0x1.f0ff495b92ceep-4",
        "e2e_p90_s": "0x1.f9dd674b863dep+4",
        "utilization": "0x1.89c4b4a7eb4e4p-1",
    },
    ("mixtral-8x7b", "h200", "lmdeploy", 8, 2423, 405, 2.0): {
        "ttft_s": "0x1.15859e4dccd6dp-5",
        "ttft_p90_s": "0x1.2d9ced553d030p-5",
        "tpot_s": "0x1.26f204b0cfc2dp-7",
        "tpot_p90_s": "0x1.365769af1dbfcp-7",
        "e2e_p90_s": "0x1.ee1b27d958286p+1",
        "utilization": "0x1.1711caf298a98p-2",
    },
}


@pytest.mark.parametrize("config", list(FIXED_LENGTHS))
def test_spread_zero_gives_the_fixed_lengths_numbers_exactly(config):
    m = evaluate_point(poisson_point(*config, input_len_spread=0.0, output_len_spread=0.0))
    for name, value in FIXED_LENGTHS[config].items():
        assert float(getattr(m, name)) == float.fromhex(value), name


def test_spread_lengths_widen_the_percentiles_not_the_means():
    """Spread outputs: a request's decode time spreads with its own length, so p90 e2e grows by
    about the p90 of the uniform's extra tokens; the means (Little's law on E[O]) barely move."""
    base = dict(model="llama-3.3-70b", gpu="h100-sxm", profile="vllm", tp=4, input_len=2048, output_len=300, rate=2.0)
    fixed = evaluate_point(poisson_point(**base))
    spread = evaluate_point(poisson_point(**base, input_len_spread=0.6, output_len_spread=0.6))
    assert float(spread.tpot_s) == pytest.approx(float(fixed.tpot_s), rel=0.01)
    assert float(spread.e2e_s) == pytest.approx(float(fixed.e2e_s), rel=0.01)
    # e2e = TTFT + (O' - 1) TPOT with O' uniform on 300 (1 +- 0.6): its p90 is near 300 (1 + 0.8 0.6) TPOT
    expected = float(fixed.ttft_s) + (300 * (1 + 0.8 * 0.6) - 1) * float(fixed.tpot_s)
    assert float(spread.e2e_p90_s) == pytest.approx(expected, rel=0.05)
    assert float(spread.ttft_p90_s) > float(fixed.ttft_p90_s)


@pytest.mark.unchecked
def test_p90_ttft_grows_without_bound_towards_capacity():
    # prompt-heavy: the GPUs' time saturates before the sequence slots fill
    point = poisson_point("llama-3.3-70b", "h100-sxm", "vllm", 4, 4096, 64)
    top = highest_rate(point)
    p90 = [float(evaluate_point(at_rate(point, f * top)).ttft_p90_s) for f in (0.5, 0.9, 0.99, 0.999)]
    assert all(b > a for a, b in zip(p90, p90[1:])), p90
    assert p90[-1] > 5.0 * p90[0], p90
    beyond = evaluate_point(at_rate(point, 1.01 * top))
    assert not bool(beyond.feasible) and np.isnan(float(beyond.ttft_p90_s))


@pytest.mark.unchecked
@pytest.mark.parametrize(
    "slos, binding",
    [
        ((Slo("ttft_p90_s", "<=", 0.5),), 1.0),  # the percentile binds
    ],
)
def test_goodput_is_the_highest_rate_meeting_the_objectives(slos, binding):
    point = poisson_point("llama-3.3-70b", "h100-sxm", "vllm", 4, 2048, 300)
    g = goodput(point, slos)
    rate = float(g.rate)
    # met up to the goodput (on a grid below it) and broken 1% above it
    assert all(bool(meets(evaluate_point(at_rate(point, f * rate)), slos)) for f in (0.5, 0.999))
    assert not bool(meets(evaluate_point(at_rate(point, 1.01 * rate)), slos))
    assert float(g.binding) == binding
    cheaper = evaluate_point(at_rate(point, 0.5 * rate))
    assert float(g.metrics.usd_per_mtok_output) < float(cheaper.usd_per_mtok_output)


def test_a_poisson_sweep_stores_its_percentiles_as_the_host_evaluates_them():
    from grids.sweeps import validate
    from sweep.engine.compute import compute

    raw = {
        "name": "poisson-engine",
        "axes": {
            "model": ["llama-3.3-70b"],
            "gpu": ["h100-sxm"],
            "tp": [4],
            "batch": [1],
            "input_len": [2048],
            "output_len": [300],
            "request_rate": [1.0, 3.0],
        },
        "fixed": {"scenario": "poisson", "profile": "vllm"},
    }
    ds = compute(validate(raw, "test"))
    assert {"ttft_p90_s", "tpot_p99_s", "e2e_p50_s", "utilization"} <= set(ds.data_vars)
    assert ds["ttft_p90_s"].attrs["units"] == "s" and ds["utilization"].attrs["units"] == "1"
    for rate in (1.0, 3.0):
        host = evaluate_point(at_rate(poisson_point("llama-3.3-70b", "h100-sxm", "vllm", 4, 2048, 300), rate))
        for name in ("ttft_s", "ttft_p90_s", "tpot_p90_s", "e2e_p99_s", "utilization", "usd_per_mtok_output"):
            stored = float(ds[name].sel(request_rate=rate).squeeze())
            assert stored == pytest.approx(float(getattr(host, name)), rel=1e-3), name  # float32 sweep
