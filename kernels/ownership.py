"""The cost of owning GPUs: capital repaid with interest, electricity and hosting, per GPU-hour.

A deployment that runs all year costs its owner, per GPU-hour,

    capital = (c_gpu + c_node / g) * r / (1 - (1 + r)^-n) / 8766 h
    energy  = (P_gpu + P_node / g) * f * PUE * price_kWh / 1000
    hosting = (P_gpu + P_node / g) * price_kW_month / 1000 / 730.5 h

with g GPUs per node, c purchase prices [USD], r the annual cost of capital, n years of
amortisation (r / (1 - (1 + r)^-n) is the capital recovery factor, 1/n at r = 0), P rated powers
[W] and f the fraction of them drawn while serving. The rental price at which renting costs the
same is the owned cost per GPU-hour itself. Defaults and sources: grids/ownership.toml.
"""

from __future__ import annotations

from typing import NamedTuple

from kernels import xp
from kernels._types import Scalar
from kernels.specs import GPUSpec, Ownership

HOURS_PER_YEAR = 8766.0
"""Hours of a mean Julian year (365.25 * 24) [h/year]."""

HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0
"""Hours of a mean month [h/month]."""

W_PER_KW = 1000.0


class OwnedCost(NamedTuple):
    """Cost of one owned GPU per hour of service [USD/h], by what it pays for, and its power."""

    capital_usd_per_hour: Scalar
    energy_usd_per_hour: Scalar
    hosting_usd_per_hour: Scalar
    facility_w: Scalar  # power drawn from the grid, PUE included [W]

    @property
    def usd_per_hour(self) -> Scalar:
        return self.capital_usd_per_hour + self.energy_usd_per_hour + self.hosting_usd_per_hour


def capital_recovery_factor(rate: Scalar, years: Scalar) -> Scalar:
    """Share of a purchase repaid each year so that ``years`` equal payments repay it with
    interest at ``rate`` per year: r / (1 - (1 + r)^-n), which tends to 1/n as r -> 0 [1/year]."""
    small = rate < 1e-9
    safe = xp.where(small, 1.0, rate)
    annuity = safe / (1.0 - (1.0 + safe) ** (-years))
    return xp.where(small, 1.0 / years, annuity)


def rated_w_per_gpu(gpu: GPUSpec, own: Ownership) -> Scalar:
    """Rated IT power of one GPU and its share of the node [W]."""
    return gpu.tdp_w + own.node_overhead_w / gpu.gpus_per_node


def owned_cost(gpu: GPUSpec, own: Ownership) -> OwnedCost:
    """What one owned GPU (with its share of the node) costs per hour of service."""
    capex = gpu.capex_usd + own.capex_usd_per_node / gpu.gpus_per_node
    capital = capex * capital_recovery_factor(own.cost_of_capital, own.amortization_years) / HOURS_PER_YEAR
    rated = rated_w_per_gpu(gpu, own)
    facility = rated * own.power_frac * own.pue
    energy = facility / W_PER_KW * own.usd_per_kwh
    hosting = rated / W_PER_KW * own.hosting_usd_per_kw_month / HOURS_PER_MONTH
    return OwnedCost(capital, energy, hosting, facility)
