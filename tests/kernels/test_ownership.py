"""Owned costs (kernels/ownership.py, grids/ownership.toml): the formula by hand, its limits, and
the metrics through explain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grids.axes import AXES
from grids.errors import SpecError
from grids.gpus import load_gpu
from grids.ownership import load_ownership
from kernels.ownership import HOURS_PER_YEAR, capital_recovery_factor
from sweep.query.explain import explain

POINT = dict(model="llama-3.1-8b", gpu="h100-sxm", tp=2, batch=16, input_len=1024, output_len=256, profile="vllm")


def test_capital_recovery_factor_by_hand():
    # r / (1 - (1 + r)^-n): 8% over 4 years repays 30.19% a year (annuity tables)
    assert float(capital_recovery_factor(np.float64(0.08), np.float64(4.0))) == pytest.approx(0.301921, rel=1e-5)
    # no interest: straight-line, 1/n, and continuous at r -> 0
    assert float(capital_recovery_factor(np.float64(0.0), np.float64(4.0))) == 0.25
    assert float(capital_recovery_factor(np.float64(1e-7), np.float64(4.0))) == pytest.approx(0.25, rel=1e-6)


def test_owned_cost_per_hour_by_hand():
    d = explain(**POINT, convention="realistic")
    gpu = load_gpu("h100-sxm").table
    terms = {k: t.value for k, t in load_ownership().items()}
    g = gpu["gpus_per_node"]
    capex = gpu["capex_usd"] + terms["capex_usd_per_node"] / g
    crf = terms["cost_of_capital"] / (1 - (1 + terms["cost_of_capital"]) ** -terms["amortization_years"])
    rated_kw = (gpu["tdp_w"] + terms["node_overhead_w"] / g) / 1000
    per_gpu = (
        capex * crf / HOURS_PER_YEAR
        + rated_kw * terms["power_frac"] * terms["pue"] * terms["usd_per_kwh"]
        + rated_kw * terms["hosting_usd_per_kw_month"] / (HOURS_PER_YEAR / 12)
    )
    assert d["rent_break_even_usd_per_gpu_hour"] == pytest.approx(per_gpu, rel=1e-12)
    assert d["usd_per_hour_owned"] == pytest.approx(2 * per_gpu, rel=1e-12)
    assert d["usd_per_mtok_output_owned"] == pytest.approx(2 * per_gpu / (d["output_tok_s"] * 3600) * 1e6, rel=1e-12)
    joules = 2 * rated_kw * 1000 * terms["power_frac"] * terms["pue"] / d["output_tok_s"]
    assert d["joules_per_output_token"] == pytest.approx(joules, rel=1e-12)
    # renting at the break-even price costs exactly what owning does
    at_break_even = explain(**POINT, usd_per_gpu_hour=per_gpu)
    assert at_break_even["usd_per_mtok_output"] == pytest.approx(d["usd_per_mtok_output_owned"], rel=1e-12)


def test_owned_cost_follows_its_axes():
    base = explain(**POINT)
    cash = explain(**POINT, cost_of_capital=0.0, amortization_years=3.0)
    # with no interest over 3 years the capital share is capex / (3 years of hours)
    capex = 27500.0 + 97000.0 / 8  # grids/gpus.toml [h100-sxm], grids/ownership.toml
    assert cash["owned_capital_usd_per_hour"] == pytest.approx(capex / (3 * HOURS_PER_YEAR), rel=1e-12)
    double = explain(**POINT, usd_per_kwh=0.2)
    assert double["owned_energy_usd_per_hour"] == pytest.approx(2 * base["owned_energy_usd_per_hour"], rel=1e-12)
    assert double["owned_capital_usd_per_hour"] == base["owned_capital_usd_per_hour"]
    # speed does not depend on who owns the GPUs
    assert double["output_tok_s"] == base["output_tok_s"]


def test_a_gpu_without_a_purchase_price_has_no_owned_cost_until_given_one():
    none = explain(**dict(POINT, gpu="mi300x"))
    assert math.isnan(none["usd_per_mtok_output_owned"]) and math.isfinite(none["usd_per_mtok_output"])
    given = explain(**dict(POINT, gpu="mi300x"), capex_usd_per_gpu=15000.0)
    assert math.isfinite(given["usd_per_mtok_output_owned"])


def test_ownership_axes_validate():
    with pytest.raises(SpecError, match="non-negative"):
        explain(**POINT, cost_of_capital=-0.1)
    with pytest.raises(SpecError, match="positive"):
        explain(**POINT, pue=0.0)
    assert AXES["pue"].default == load_ownership()["pue"].value
    assert "Uptime Institute" in AXES["pue"].description
