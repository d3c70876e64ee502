"""sweep compare: each GPU type's cheapest deployment under SLOs, checked against explain at the
chosen configuration, with the break-even price, demand and budget arithmetic by hand."""

from __future__ import annotations

import json
import math

import pytest

from grids.gpus import load_gpus
from sweep.cli import main
from sweep.query.explain import explain

GPUS = ["h100-sxm", "a100-sxm-80gb", "l4"]
BASE = ["compare", "--model", "llama-3.1-8b", "--input", "1024", "--output", "256", "--gpus", ",".join(GPUS)]
SLO = ["--slo", "user_tok_s>=30", "--slo", "ttft_s<=1"]
KEYS = [
    "gpu",
    "n_gpus",
    "tp",
    "pp",
    "dp",
    "weight_dtype",
    "batch",
    "usd_per_mtok_output",
    "usd_per_mtok_output_owned",
    "output_tok_s_per_gpu",
    "user_tok_s",
    "ttft_s",
    "joules_per_output_token",
    "break_even_usd_per_gpu_hour",
]


def run(capsys, *extra: str) -> list[dict]:
    assert main([*BASE, *SLO, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _point(row: dict) -> dict:
    return dict(
        model="llama-3.1-8b",
        gpu=row["gpu"],
        tp=row["tp"],
        pp=row["pp"],
        batch=row["batch"],
        input_len=1024,
        output_len=256,
        weight_dtype=row["weight_dtype"],
        kv_dtype=row["kv_dtype"],
        scenario="concurrency",
        profile="vllm",
    )


def test_rows_are_the_cheapest_deployments_and_agree_with_explain(capsys):
    rows = run(capsys)
    assert [r["gpu"] for r in rows] and set(KEYS) <= set(rows[0])
    costs = [r["usd_per_mtok_output"] for r in rows]
    assert costs == sorted(costs)
    for row in rows:
        d = explain(**_point(row))
        assert d["feasible"] and d["user_tok_s"] >= 30 and d["ttft_s"] <= 1
        for name in ("usd_per_mtok_output", "ttft_s", "user_tok_s", "output_tok_s_per_gpu", "joules_per_output_token"):
            assert row[name] == pytest.approx(d[name], rel=1e-9), name
        # the interval: the profile's, widened by its fitted terms' spread at this deployment, as explain's
        for name in ("usd_per_mtok_output", "output_tok_s_per_gpu"):
            for q in ("p10", "p90"):
                assert row[f"{name}_{q}"] == pytest.approx(d[f"{name}_{q}"], rel=1e-6), (name, q)
        stated = d["interval_log_p90"] - d["interval_log_p10"]
        assert math.log(row["output_tok_s_per_gpu_p90"] / row["output_tok_s_per_gpu_p10"]) > stated * 1.001
        # one more request breaks an objective or does not fit (the batch is the optimum's)
        more = explain(**dict(_point(row), batch=row["batch"] + 1))
        assert not (more["feasible"] and more["user_tok_s"] >= 30 and more["ttft_s"] <= 1) or row["batch"] == 256
        # renting this row at its break-even price costs what the best row costs
        at = explain(**_point(row), usd_per_gpu_hour=row["break_even_usd_per_gpu_hour"])
        assert at["usd_per_mtok_output"] == pytest.approx(rows[0]["usd_per_mtok_output"], rel=1e-9)
    assert rows[0]["break_even_usd_per_gpu_hour"] == pytest.approx(load_gpus()[rows[0]["gpu"]].table["usd_per_hour"])


def test_demand_and_budget_arithmetic(capsys):
    gpus = load_gpus()
    demand = run(capsys, "--demand-rps", "50")
    for row in demand:
        per_node = gpus[row["gpu"]].table["gpus_per_node"]
        rps = explain(**_point(row))["output_tok_s"] / 256
        assert row["replicas"] == math.ceil(50 / rps)
        assert row["gpus_total"] == math.ceil(row["replicas"] * row["n_gpus"] / per_node) * per_node
        price = gpus[row["gpu"]].table["usd_per_hour"]
        assert row["usd_per_month"] == pytest.approx(row["gpus_total"] * price * 8766 / 12)
    assert [r["usd_per_month"] for r in demand] == sorted(r["usd_per_month"] for r in demand)
    budget = run(capsys, "--budget-usd-per-hour", "100")
    for row in budget:
        price = gpus[row["gpu"]].table["usd_per_hour"]
        assert row["replicas"] == math.floor(100 / (row["n_gpus"] * price))
        assert row["output_tok_s_total"] == pytest.approx(row["replicas"] * row["output_tok_s_per_gpu"] * row["n_gpus"])
    owned = run(capsys, "--own", "--usd-per-kwh", "0.2")
    assert [r["usd_per_mtok_output_owned"] for r in owned] == sorted(r["usd_per_mtok_output_owned"] for r in owned)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--demand-rps", "5", "--budget-usd-per-hour", "9"], "give one"),
        (["--demand-rps", "-5"], "positive"),
        (["--gpus", "h100-sxm,nope"], "unknown GPU 'nope'"),
        (["--weight-dtypes", "fp9"], "unknown weight format"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, extra, words):
    assert main([*BASE, *SLO, *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
