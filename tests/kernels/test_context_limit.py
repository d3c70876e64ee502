"""The context limit: a point whose prompt plus output exceeds the model's max_position_embeddings
cannot run, with the reason in explain and NaN in a sweep."""

from __future__ import annotations

import math

import numpy as np

from grids.models import load_model
from grids.sweeps import validate
from sweep.api import compute
from sweep.query.explain import explain


def test_context_limit_from_config():
    assert float(load_model("llama-2-7b").spec.max_context) == 4096  # its config.json
    assert float(load_model("llama-3.1-8b").spec.max_context) == 131072
    assert float(load_model("gemma-3-27b").spec.max_context) == 131072  # Gemma3TextConfig's default


def test_beyond_the_context_is_infeasible_with_the_reason():
    far = explain("llama-2-7b", "h100-sxm", 1, 1, 100_000, 256)
    assert not far["feasible"] and "exceed llama-2-7b's context of 4,096 tokens" in far["infeasible_reason"]
    edge = explain("llama-2-7b", "h100-sxm", 1, 1, 4096 - 256, 256)  # prompt + output = 4096: allowed
    assert edge["feasible"]
    assert not explain("llama-2-7b", "h100-sxm", 1, 1, 4096 - 255, 256)["feasible"]
    assert explain("llama-3.1-8b", "h100-sxm", 1, 1, 100_000, 256)["feasible"]
    raw = dict(
        name="ctx",
        axes=dict(
            model=["llama-2-7b", "llama-3.1-8b"],
            gpu=["h100-sxm"],
            tp=[1],
            batch=[1],
            input_len=[2048, 100_000],
            output_len=[256],
        ),
    )
    ds = compute(validate(raw, "t"))
    ttft = ds.ttft_s.squeeze()
    assert math.isnan(float(ttft.sel(model="llama-2-7b", input_len=100_000)))
    assert np.isfinite(ttft.sel(model="llama-3.1-8b").values).all()
    assert np.isfinite(float(ttft.sel(model="llama-2-7b", input_len=2048)))
