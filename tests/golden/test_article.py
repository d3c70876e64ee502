"""Golden numbers of the article "LLM inference economics from first principles" (Tensor
Economics, 2025; restated in shared/DESIGN.md, cost model Part 1), for Llama 3.3 70B on H100 SXM."""

import json
import subprocess
import sys

import numpy as np
import pytest

from kernels.comm import allreduce_time
from kernels.flops import prefill_flops
from kernels.memory import kv_cache_bytes
from kernels.params import param_counts, weight_bytes
from kernels.point import evaluate
from kernels.roofline import prefill_time, weight_read_s
from tests import specs
from tests.specs import f64

M, G, P = specs.model(specs.LLAMA_70B), specs.gpu(specs.H100), specs.profile(specs.ARTICLE)


def test_params_exact():
    # Article: 70,553,706,496 = 2 x 128,256 x 8,192 + 80 x 855,654,400 + 8,192.
    counts = param_counts(M)
    assert float(counts.total) == 70_553_706_496
    assert float(counts.attention + counts.mlp + counts.norms - 8192) == 80 * 855_654_400


def test_weight_bytes_bf16():
    # Article: 141 GB in bf16 = 70,553,706,496 x 2 bytes.
    assert float(weight_bytes(M, f64(2.0))) == 141_107_412_992


def test_prefill_flops_2048():
    # Article: about 291.48 TFLOPs for S = 2048, to 0.1%. Its total is the matmuls plus softmax
    # (80 x 3,643,474,444,288 = 291,477,955,543,040, computed by hand from the per-op counts);
    # norms, RoPE, SiLU and the product add 0.016%.
    f = prefill_flops(M, f64(2048.0), f64(0.0))
    np.testing.assert_allclose(float(f.total), 291.48e12, rtol=1e-3)
    assert (
        float(f.weights + f.attention) - float(80 * (2048 * 2048 * 64 * 5)) == 291_477_955_543_040 - 80 * 1_342_177_280
    )


def test_kv_cache_bytes():
    # Article: 2 x 2 bytes x 80 x 128 x 8 x 2048 = 671,088,640 (671 MB); 131,072 tokens: 42.9 GB.
    two = f64(2.0)
    assert float(kv_cache_bytes(M, f64(2048.0), f64(1.0), two)) == 671_088_640
    assert float(kv_cache_bytes(M, f64(131072.0), f64(1.0), two)) == 42_949_672_960


def test_prefill_and_weight_read_on_one_h100():
    # Article: prefill of 2048 tokens 0.29 s of compute (291.48e12 / 989e12 = 0.2947 s) vs 0.04 s
    # to read the weights (141.1e9 / 3350e9 = 0.04212 s): compute-bound.
    dep, wl = specs.deployment(1, 1), specs.workload(2048, 1)
    phase = prefill_time(M, G, dep, wl, P)
    np.testing.assert_allclose(float(phase.compute_s), 0.2947, rtol=1e-3)
    np.testing.assert_allclose(float(weight_read_s(M, G, dep, P)), 0.04212, rtol=1e-3)
    assert float(phase.compute_s) > 5 * float(phase.memory_s)


def test_decode_memory_bound_by_two_orders():
    # Article: decode 0.00014 s of compute vs 0.04 s reading weights + KV.
    m = evaluate(M, G, specs.deployment(1, 1), specs.workload(2048, 2), P)
    np.testing.assert_allclose(float(m.decode_flops), 0.1445e12, rtol=1e-3)  # "about 0.14 TFLOPs"
    assert 0.04212 < float(m.tpot_s) < 0.0424


def test_allreduce_tp4():
    # Article: 2 x 2 x 8192 x 80 x 3/4 / 450e9 = 4.37 us per token on 4 x H100 over NVLink.
    t = allreduce_time(M, G, specs.deployment(4, 1), P, f64(1.0))
    np.testing.assert_allclose(float(t.bandwidth_s), 2 * 2 * 8192 * 80 * 0.75 / 450e9, rtol=1e-12)
    np.testing.assert_allclose(float(t.bandwidth_s), 4.37e-6, rtol=1e-3)


def test_two_h100_leave_19_gb_for_kv():
    # Article: on 2 x H100 the weights fill 141/160 = 88% of memory, leaving 19 GB for KV cache.
    from kernels.memory import memory_plan

    plan = memory_plan(M, G, specs.deployment(2, 1), P, f64(2048.0))
    np.testing.assert_allclose(2 * float(plan.kv_budget_bytes_per_gpu), 160e9 - 141.107e9, rtol=1e-4)


def _explain(*extra):
    cmd = [
        sys.executable,
        "-m",
        "sweep.cli",
        "explain",
        "--model",
        "llama-3.3-70b",
        "--gpu",
        "h100-sxm",
        "--batch",
        "1",
        "--output",
        "1",
        "--convention",
        "article",
        "--json",
        *extra,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.slow
def test_cli_explain_article():
    d = _explain("--tp", "1", "--input", "2048")
    assert d["params_total"] == 70_553_706_496
    assert d["weight_bytes"] == 141_107_412_992
    assert d["kv_cache_bytes"] == 671_088_640
    np.testing.assert_allclose(d["prefill_flops"], 291.48e12, rtol=1e-3)
    np.testing.assert_allclose(d["decode_flops"], 0.14e12, rtol=0.05)  # "about 0.14 TFLOPs"
    np.testing.assert_allclose(d["prefill_compute_s"], 0.2947, rtol=1e-3)
    np.testing.assert_allclose(d["weight_read_s"], 0.04212, rtol=1e-3)
    for key in ("ttft_s", "tpot_s", "output_tok_s", "usd_per_mtok_output"):
        assert d[key] > 0
    assert d["bottleneck"] == "capacity" and d["feasible"] is False  # 141 GB do not fit in 80 GB
    assert d["prefill_bottleneck"] == "compute" and d["decode_bottleneck"] == "memory"


@pytest.mark.slow
def test_cli_explain_tp4_and_long_context():
    d = _explain("--tp", "4", "--input", "2048")
    np.testing.assert_allclose(d["allreduce_s_per_token"], 4.37e-6, rtol=1e-3)
    assert d["allreduce_latency_s_per_token"] == 0.0
    assert d["feasible"] is True
    assert _explain("--tp", "1", "--input", "131072")["kv_cache_bytes"] == 42_949_672_960
