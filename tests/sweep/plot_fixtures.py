"""A small sweep for the figure, report and explorer tests (shared with tests/browser)."""

from __future__ import annotations

from grids.sweeps import SweepSpec, validate

SMALL = {
    "name": "plots-small",
    "description": "two models on two GPUs, for the figure tests",
    "axes": {
        "model": ["llama-3.1-8b", "llama-3.3-70b"],
        "gpu": ["h100-sxm", "a100-sxm-40gb"],
        "tp": [1, 2, 4],
        "batch": [1, 4, 16, 64, 256],
        "input_len": [512, 2048, 8192],
        "output_len": [1, 300],
    },
}
"""360 points: llama-3.3-70b (141 GB of bf16 weights) does not fit on one H100 or on A100 40GB at
tp <= 2, so defaults must skip to a tp where it runs; 2048/300 are the article's request shape."""


def small_spec() -> SweepSpec:
    return validate(SMALL, "tests/sweep/plot_fixtures.py")
