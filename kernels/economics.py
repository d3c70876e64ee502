"""Cost per token from GPU rental prices.

Reference: the article "LLM inference economics from first principles", section "Cost per token":
cost per token = GPU price per hour * number of GPUs / tokens per hour.
"""

from __future__ import annotations

from kernels._types import Scalar

SECONDS_PER_HOUR = 3600.0
TOKENS_PER_MTOK = 1.0e6


def usd_per_mtok(usd_per_hour: Scalar, tok_per_s: Scalar) -> Scalar:
    """Price of a million tokens [USD/Mtoken] for a deployment costing ``usd_per_hour`` [USD/h]
    that produces ``tok_per_s`` [token/s].

    c = price_h / (r * 3600) * 1e6
    """
    return usd_per_hour / (tok_per_s * SECONDS_PER_HOUR) * TOKENS_PER_MTOK
