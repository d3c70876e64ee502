"""The ``sweep`` console script end to end, in subprocesses: ``catalog --json``, ``explain --json``,
``--help``, and bad input (exit status 2, one line on stderr naming the problem).

Each subprocess pays the JAX import (~2 s), so the commands run once, all at once, in a
module-scoped fixture; each test then checks its own command's result.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POINT = ("--tp", "1", "--batch", "1", "--input", "128", "--output", "16")


def _explain(*args: str) -> tuple[str, ...]:
    return ("explain", *args)


COMMANDS = {
    "catalog": ("catalog", "--json"),
    "explain": _explain("--model", "llama-3.1-8b", "--gpu", "h100-sxm", *POINT, "--json"),
    # h100-nvl has no market price (usd_per_hour = nan in grids/gpus.toml): costs are NaN.
    "explain_no_price": _explain("--model", "llama-3.1-8b", "--gpu", "h100-nvl", *POINT, "--json"),
    "unknown_model": _explain("--model", "llama-9-1t", "--gpu", "h100-sxm", *POINT),
    "unknown_gpu": _explain("--model", "llama-3.1-8b", "--gpu", "h900", *POINT),
    "input_zero": _explain("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--input", "0", "--output", "16"),
    "output_negative": _explain("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--input", "128", "--output", "-5"),
    "malformed_config": _explain("--model", "{config}", "--gpu", "h100-sxm", *POINT),
    "article_with_profile": _explain(
        "--model", "llama-3.1-8b", "--gpu", "h100-sxm", *POINT, "--convention", "article", "--profile", "roofline"
    ),
    "help": ("--help",),
    "explain_help": ("explain", "--help"),
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    config = tmp_path_factory.mktemp("cli") / "broken-config.json"
    config.write_text('{"hidden_size": 4096, "num_hidden_layers": ')

    def run(args: tuple[str, ...]) -> subprocess.CompletedProcess:
        args = tuple(str(config) if a == "{config}" else a for a in args)
        return subprocess.run(
            [sys.executable, "-m", "sweep.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(COMMANDS, pool.map(run, COMMANDS.values())))
    done["config_path"] = str(config)
    return done


def _strict_json(text: str):
    """Exactly one JSON value, with no NaN or Infinity (not JSON, and rejected by browsers)."""

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_catalog_json(cli):
    result = cli["catalog"]
    assert result.returncode == 0, result.stderr
    data = _strict_json(result.stdout)
    assert set(data) == {"models", "gpus"}
    assert len(data["models"]) >= 9 and len(data["gpus"]) >= 13
    assert all(g["source"] and g["accessed"] for g in data["gpus"])
    assert all(m["source"] for m in data["models"])
    by_key = {m["key"]: m for m in data["models"]}
    assert by_key["llama-3.3-70b"]["params_total"] == 70_553_706_496  # the article's exact count
    h100 = next(g for g in data["gpus"] if g["key"] == "h100-sxm")
    assert h100["flop_per_s_bf16"] == 989e12 and h100["flop_per_s_fp4"] is None  # nan -> null


def test_explain_json_is_one_object(cli):
    result = cli["explain"]
    assert result.returncode == 0, result.stderr
    data = _strict_json(result.stdout)
    assert isinstance(data, dict)
    # meta-llama/Llama-3.1-8B model card: 8.03B (hand count in tests/kernels/test_kernels.py).
    assert data["params_total"] == 8_030_261_248
    assert data["model"] == "llama-3.1-8b" and data["gpu"] == "h100-sxm" and data["feasible"] is True
    assert data["tpot_s"] > 0 and math.isclose(data["user_tok_s"] * data["tpot_s"], 1.0, rel_tol=1e-12)


def test_explain_json_without_price_is_one_object(cli):
    result = cli["explain_no_price"]
    assert result.returncode == 0, result.stderr
    data = _strict_json(result.stdout)
    assert data["gpu"] == "h100-nvl" and data["tpot_s"] > 0
    value = data.get("usd_per_mtok_output")
    assert not isinstance(value, (int, float))  # no price: no cost, but no crash either


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("unknown_model", ("llama-9-1t", "llama-3.1-8b")),  # the known keys are listed
        ("unknown_gpu", ("h900", "h100-sxm")),
        ("input_zero", ("--input", "positive")),
        ("output_negative", ("--output", "positive", "-5")),
        ("malformed_config", ("{config_path}", "JSON")),
        ("article_with_profile", ("--profile", "article")),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, case, fragments):
    result = cli[case]
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sweep explain: error: ")
    for fragment in fragments:
        assert fragment.replace("{config_path}", cli["config_path"]) in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(
    "case, words",
    [
        ("help", ("explain", "catalog")),
        ("explain_help", ("--model", "--gpu", "--tp", "--batch", "--input", "--output", "--convention", "--json")),
    ],
)
def test_help_exits_0(cli, case, words):
    result = cli[case]
    assert result.returncode == 0, result.stderr
    for word in words:
        assert word in result.stdout
