"""Fuzzing of every input boundary (issue 15): hypothesis writes config.json files, sweep spec
TOML, measurement files (benchmark JSON, canonical CSV) and CLI argument lists, valid and broken.

Property: every case is either accepted with finite results (a model's parameter count from
``sweep explain``, a spec's grid, a measurement's numbers) or refused by the CLI with exit status 2
and exactly one line on stderr; never a traceback (the CLI's bug line, exit 1), never a hang (an
alarm fails a case that runs past HANG_S). The CLI runs in-process (``sweep.cli.main``), with
stdout and stderr captured; an accepted spec or measurement file is not run through the CLI (that
would compute a sweep or compile a fit), a refused one is.

CI runs a sample (``FUZZ_EXAMPLES`` unset: 20 cases per loader, well under a minute on 2 cores).
The long run, by hand, prints a table of how each loader's cases ended:

    FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/properties/test_fuzz_inputs.py -s
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import shutil
import signal
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grids.axes import AXES
from grids.errors import SpecError
from grids.models import MODELS_DIR, model_keys
from grids.sweeps import MAX_POINTS, load_sweep, validate
from sweep.calibration.measurements import CSV_OPTIONAL, CSV_REQUIRED, METRICS, load_measurements
from sweep.cli import main
from sweep.store.run import run_sweep
from tests.sweep.test_query_input import RAW as QUERY_RAW

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
HANG_S = 60
"""A case running longer than this is a hang (the slowest accepted case, an explain of a large
MoE config, takes well under a second)."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
OUTCOMES: dict[str, Counter] = defaultdict(Counter)
GOLDEN_STORE = Path(__file__).parents[1] / "golden" / "golden-sweep.zarr"
STORE_SPEC = {**QUERY_RAW, "name": "fuzz"}


# --- the harness -----------------------------------------------------------------------------


class Hang(BaseException):
    """A case ran past HANG_S (a BaseException: the CLI's boundary does not turn it into a line)."""


@contextlib.contextmanager
def _no_hang(seconds: int = HANG_S) -> Iterator[None]:
    def fail(signum, frame):
        raise Hang(f"a fuzzed case ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cli(argv: list[str]) -> tuple[int, str, str]:
    """``sweep ARGV`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _no_hang():
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's own refusals
            status = exit_.code if isinstance(exit_.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def _ended(loader: str, status: int, err: str, accepted_ok: bool = True) -> None:
    """Count how a case ended; fail it unless accepted (status 0) or refused in one line (2)."""
    lines = err.strip().splitlines()
    if status == 0 and accepted_ok:
        OUTCOMES[loader]["accepted"] += 1
        return
    if status == 2 and len(lines) == 1 and "Traceback" not in err:
        OUTCOMES[loader]["refused (exit 2)"] += 1
        return
    OUTCOMES[loader]["other"] += 1
    raise AssertionError(f"{loader}: exit status {status}, stderr:\n{err}")


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """After the module: the table of outcomes (printed with -s; also to $FUZZ_REPORT if set)."""
    OUTCOMES.clear()
    yield
    kinds = ("accepted", "refused (exit 2)", "other")
    rows = [f"{'loader':<22} {'cases':>6} " + " ".join(f"{k:>16}" for k in kinds)]
    for loader, counts in OUTCOMES.items():
        rows.append(f"{loader:<22} {sum(counts.values()):>6} " + " ".join(f"{counts[k]:>16}" for k in kinds))
    table = "\n".join(rows)
    print(f"\nfuzzed inputs (FUZZ_EXAMPLES={EXAMPLES}):\n{table}")
    if os.environ.get("FUZZ_REPORT"):
        Path(os.environ["FUZZ_REPORT"]).write_text(table + "\n")


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A directory of fixtures the strategies name: a valid config, a directory and a FIFO named
    like inputs, a small store made by ``sweep run`` to query, and a copy of the golden store
    (written whole, not by ``sweep run``)."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copy(MODELS_DIR / "llama-3.1-8b.json", root / "good.json")
    for name in ("dir.json", "dir.toml", "dir.csv"):
        (root / name).mkdir()
    for name in ("fifo.json", "fifo.toml", "fifo.csv"):
        os.mkfifo(root / name)
    shutil.copytree(GOLDEN_STORE, root / "golden.zarr")
    run_sweep(validate(STORE_SPEC, "fuzz"), root / "store.zarr", progress=False)
    return root


# --- values ----------------------------------------------------------------------------------

HOSTILE = st.one_of(
    st.integers(-3, 64),
    st.sampled_from([0, -1, 10**15, 10**400, 2**53 + 1, 1e300, 0.5, 1.5, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-2, 100), max_size=5),
    st.lists(st.sampled_from(["full_attention", "sliding_attention", "bogus", 3]), max_size=5),
    st.dictionaries(st.text(max_size=4), st.integers(-1, 9), max_size=2),
)
"""Any JSON or TOML value a hostile or careless file may hold where a number or a name belongs."""


def _either(valid: st.SearchStrategy, broken: st.SearchStrategy, odds: int = 8) -> st.SearchStrategy:
    """``valid`` most of the time (odds - 1 in odds), ``broken`` otherwise: a file of a handful of
    fields is then accepted about as often as it is refused."""
    # broken on the largest draw: hypothesis favours 0, and shrinks towards it (to the valid case)
    return st.integers(0, odds - 1).flatmap(lambda i: broken if i == odds - 1 else valid)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)


def _deep(n: int, kind: str) -> bytes:
    return ("[" * n + "]" * n).encode() if kind == "json" else (f"a = {'[' * n}{']' * n}\n").encode()


def _raw(kind: str) -> st.SearchStrategy[bytes]:
    """Files that are not what they claim: bytes (mostly not UTF-8), text, deep nesting."""
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        st.integers(20, 20_000).map(lambda n: _deep(n, kind)),
    )


# --- config.json -----------------------------------------------------------------------------

SHIPPED = [json.loads((MODELS_DIR / f"{key}.json").read_text()) for key in model_keys()]
MODEL_FIELDS = [
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "num_hidden_layers",
    "intermediate_size",
    "intermediate_size_mlp",
    "vocab_size",
    "tie_word_embeddings",
    "attention_bias",
    "model_type",
    "max_position_embeddings",
    "num_local_experts",
    "num_experts",
    "n_routed_experts",
    "num_experts_per_tok",
    "experts_per_token",
    "moe_intermediate_size",
    "n_shared_experts",
    "shared_expert_intermediate_size",
    "decoder_sparse_step",
    "mlp_only_layers",
    "first_k_dense_replace",
    "moe_layer_freq",
    "interleave_moe_layer_step",
    "moe_layers",
    "kv_lora_rank",
    "q_lora_rank",
    "qk_rope_head_dim",
    "qk_nope_head_dim",
    "v_head_dim",
    "sliding_window",
    "use_sliding_window",
    "layer_types",
    "sliding_window_pattern",
    "attention_chunk_size",
    "text_config",
    "topk_method",
]


@st.composite
def configs(draw) -> bytes:
    """A shipped config.json with up to four fields changed or deleted (valid where none is), or
    any JSON, or a file that is not JSON."""
    if draw(st.integers(0, 9)) == 9:
        return draw(st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), _raw("json")))
    config = copy.deepcopy(draw(st.sampled_from(SHIPPED)))
    target = config["text_config"] if isinstance(config.get("text_config"), dict) else config
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(MODEL_FIELDS))
        if key in target and draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(st.one_of(HOSTILE, st.integers(1, 4096)))
    return json.dumps(config).encode()


@FUZZ
@given(data=configs())
def test_fuzz_model_config(place, data):
    path = place / "config.json"
    path.write_bytes(data)
    status, out, err = cli(
        ["explain", "--model", str(path), "--gpu", "h100-sxm", "--input", "128", "--output", "16", "--json"]
    )
    if status == 0:  # accepted: the model's numbers are finite
        result = json.loads(out)
        assert math.isfinite(result["params_total"]) and result["params_total"] > 0, result["params_total"]
        assert math.isfinite(result["weight_bytes"]) and result["kv_cache_bytes"] is not None
    _ended("config.json", status, err)


# --- sweep spec TOML -------------------------------------------------------------------------


def _toml(value) -> str:
    """A TOML value (inline tables for dicts); a None is written as the bare word null, which
    TOML refuses (the file is then broken, as intended)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() < 4000 else "1" + "0" * 1300
    if isinstance(value, str):  # a TOML basic string: JSON's escapes, less its surrogate pairs
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    return "null"


def _axis_values(name: str, place: Path) -> st.SearchStrategy:
    """Values of one swept axis: a list or a range table, valid, or (1 in 8) anything."""
    axis = AXES[name]
    if axis.kind in ("integer", "float"):
        valid = st.one_of(
            st.lists(st.integers(1, 4096), min_size=1, max_size=3, unique=True),
            st.builds(dict, start=st.just(1), stop=st.integers(64, 4096), num=st.integers(1, 4), scale=st.just("log")),
            st.builds(dict, start=st.integers(1, 8), stop=st.integers(8, 64), step=st.integers(8, 32)),
        )
        broken = st.one_of(
            st.lists(HOSTILE, min_size=1, max_size=3),
            st.dictionaries(
                st.sampled_from(["start", "stop", "num", "step", "scale", "junk"]),
                st.one_of(st.integers(1, 64), st.sampled_from([1e13, 10**13, 0, -1, "log", "cubic"]), HOSTILE),
                max_size=4,
            ),
            HOSTILE,
        )
        return _either(valid, broken)
    good = {
        "model": ["llama-3.1-8b", "mixtral-8x7b", str(place / "good.json")],
        "gpu": ["h100-sxm", "h200"],
        "profile": ["roofline", "article"],
    }.get(name, list(axis.choices()) if axis.choices else [])
    bad = ["nope", "", str(place / "fifo.json"), str(place / "dir.toml"), str(place / "fifo.toml")]
    return _either(
        st.lists(st.sampled_from(good), min_size=1, max_size=2, unique=True),
        st.one_of(st.lists(st.sampled_from([*good, *bad]), min_size=1, max_size=3), HOSTILE),
    )


@st.composite
def specs(draw, place: Path) -> bytes:
    """A sweep spec: the required axes and some optional ones, each valid or not, a [fixed] and an
    [engine] table, top-level keys valid or not; or a file that is not TOML."""
    if draw(st.integers(0, 9)) == 9:
        return draw(_raw("toml"))
    names = [n for n in AXES if AXES[n].required] + draw(
        st.lists(st.sampled_from([n for n in AXES if not AXES[n].required]), max_size=2, unique=True)
    )
    drop = draw(st.sets(st.sampled_from(names), max_size=1)) if draw(st.integers(0, 9)) == 9 else set()
    axes = {n: draw(_axis_values(n, place)) for n in names if n not in drop}
    raw = {"name": draw(_either(st.just("fz"), HOSTILE)), "axes": axes}
    if draw(st.booleans()):
        raw["description"] = draw(_either(st.text(max_size=10), HOSTILE))
    if draw(st.booleans()):
        raw["engine"] = draw(
            _either(
                st.fixed_dictionaries({}, optional={"chunk_points": st.just(1000), "precision": st.just("float64")}),
                st.dictionaries(
                    st.sampled_from(["chunk_points", "precision", "junk"]),
                    st.one_of(st.sampled_from([0, "float16"]), HOSTILE),
                    max_size=2,
                ),
            )
        )
    if draw(st.integers(0, 3)) == 3:
        raw["fixed"] = {draw(st.sampled_from([*AXES, "junk"])): draw(HOSTILE)}
    return "\n".join(f"{_toml(k)} = {_toml(v)}" for k, v in raw.items()).encode()


@FUZZ
@given(data=st.data())
def test_fuzz_sweep_spec(place, data):
    path = place / "spec.toml"
    path.write_bytes(data.draw(specs(place)))
    with _no_hang():
        try:
            spec = load_sweep(str(path))
        except SpecError:
            spec = None
    if spec is not None:  # accepted: a grid of finite size and finite numbers (not run: it would compute)
        assert 0 < spec.n_points <= MAX_POINTS
        for values in spec.axes.values():
            assert all(math.isfinite(v) for v in values if isinstance(v, (int, float)))
        _ended("spec TOML", 0, "")
        return
    status, _, err = cli(["run", str(path), "-o", str(place / "never.zarr")])
    _ended("spec TOML", status, err, accepted_ok=False)


# --- measurement files -----------------------------------------------------------------------


@st.composite
def benchmark_json(draw) -> bytes:
    """A shared/benchmarks JSON (``results``: batch size -> fields), valid or not; or not JSON."""
    if draw(st.integers(0, 9)) == 9:
        return draw(_raw("json"))
    number = _either(st.floats(1.0, 1e5), HOSTILE, odds=16)
    fields = ("avg_input_tokens", "avg_output_tokens", "tokens_per_second_in_batch")
    entry = st.fixed_dictionaries(
        {f: number for f in fields if draw(st.integers(0, 15)) != 15}, optional={"elapsed_time": HOSTILE}
    )
    batch = _either(st.sampled_from(["1", "2", "8", "64"]), st.text(max_size=4), odds=16)
    results = _either(st.dictionaries(batch, _either(entry, HOSTILE, odds=16), min_size=1, max_size=4), HOSTILE)
    doc = draw(_either(st.fixed_dictionaries({"results": results}, optional={"metadata": JSON_VALUES}), JSON_VALUES))
    return json.dumps(doc).encode()


@FUZZ
@given(data=benchmark_json())
def test_fuzz_measurement_json(place, data):
    path = place / "bench.json"
    path.write_bytes(data)
    with _no_hang():
        try:
            rows = load_measurements([str(path)], "llama-3.1-8b", "h100-sxm", 1)
        except SpecError:
            rows = None
    if rows is not None:  # accepted: every number finite and positive (not run: a fit compiles)
        assert rows and all(0 < x < math.inf for r in rows for x in (r.batch, r.input_len, r.output_len, r.value))
        _ended("measurement JSON", 0, "")
        return
    status, _, err = cli(["validate", str(path), "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "1"])
    _ended("measurement JSON", status, err, accepted_ok=False)


GOOD_CELLS = {
    "model": ["llama-3.1-8b", "mixtral-8x7b"],
    "gpu": ["h100-sxm", "h200"],
    "tp": ["1", "2"],
    "batch": ["1", "8"],
    "input_len": ["128", "2048"],
    "output_len": ["16", "300"],
    "scenario": ["static", "concurrency", "max_throughput"],
    "metric": list(METRICS),
    "value": ["100.5", "0.02"],
    "precision": ["", "bf16"],
    "weight_dtype": ["", "bf16", "fp8"],
    "kv_dtype": ["", "bf16"],
    "compute_dtype": ["", "auto"],
    "pp": ["", "1", "2"],
    "dp": ["", "1"],
    "expert_parallel": ["", "off", "on"],
}
BAD_CELLS = ["", "0", "-1", "1.5", "nan", "inf", "1e400", "abc", "h900", "bogus", "int4", 'a"b', "x,y", "1\n2"]


@st.composite
def measurement_csv(draw) -> bytes:
    """A canonical measurement CSV with up to three defects (a required column missing, a cell
    broken, a row of the wrong width, an unclosed quote or a NUL byte after the rows), or none;
    or not a CSV at all."""
    if draw(st.integers(0, 9)) == 9:
        return draw(_raw("csv"))
    optional = draw(st.lists(st.sampled_from([*CSV_OPTIONAL, "junk"]), max_size=3, unique=True))
    header = [*CSV_REQUIRED, *optional]
    text = st.text(alphabet="abc xyz.-_", max_size=6)
    rows = [
        [draw(st.sampled_from(GOOD_CELLS[c]) if c in GOOD_CELLS else text) for c in header]
        for _ in range(draw(st.integers(1, 4)))
    ]
    tail = ""
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
        defect = draw(st.integers(0, 4))
        if defect == 0 and len(header) > 1:
            del header[draw(st.integers(0, len(header) - 1))]
        elif defect == 1 and rows[0]:
            row = 0
            rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(st.one_of(st.sampled_from(BAD_CELLS), st.text()))
        elif defect == 2:
            row = draw(st.integers(0, len(rows) - 1))
            rows[row] = rows[row][: draw(st.integers(0, len(rows[row])))]
        else:
            tail = draw(st.sampled_from(['"unclosed,1\n', "\x00\n", "a" * 200_000 + "\n"]))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return (out.getvalue() + tail).encode()


@FUZZ
@given(data=measurement_csv())
def test_fuzz_measurement_csv(place, data):
    path = place / "points.csv"
    path.write_bytes(data)
    with _no_hang():
        try:
            rows = load_measurements([str(path)])
        except SpecError:
            rows = None
    if rows is not None:  # accepted: numbers finite and positive, batch NaN only for max_throughput
        for r in rows:
            assert all(0 < x < math.inf for x in (r.input_len, r.output_len, r.value, r.tp))
            assert 0 < r.batch < math.inf or (math.isnan(r.batch) and r.scenario == "max_throughput")
        _ended("measurement CSV", 0, "")
        return
    status, _, err = cli(["validate", str(path)])
    _ended("measurement CSV", status, err, accepted_ok=False)


# --- CLI argument lists ----------------------------------------------------------------------

JUNK = st.one_of(st.text(max_size=8), st.sampled_from(["", "-", "--", "-x", "--nope", "=", "1e400", "nan", "-1"]))

EXPLAIN_FLAGS = {
    axis.cli_flag: (
        [str(axis.default_text or axis.default or 1)] + (list(axis.choices()) if axis.choices else []),
        ["0", "-2", "1.5", "abc", "nan", "1e400"],
    )
    for axis in AXES.values()
}
EXPLAIN_FLAGS.update(
    {
        "--model": (["llama-3.1-8b", "deepseek-v3", "gpt-oss-20b", "good.json"], ["nope", "fifo.json", "dir.json"]),
        "--gpu": (["h100-sxm", "mi300x", "a100-sxm-40gb"], ["h900", ""]),
        "--input": (["128", "2048"], ["0", "x", "1e400"]),
        "--output": (["16", "300"], ["-1", "1.5"]),
        "--profile": (["roofline", "vllm", "article"], ["nope", "fifo.toml", "dir.toml"]),
        "--convention": (["article", "realistic"], ["bogus"]),
    }
)
QUERY_FLAGS = {
    "--sel": (["tp=1", "gpu=h100-sxm", "batch=8"], ["tp=abc", "gpu=h900", "nope=1", "=", "tp", "batch=1e400"]),
    "--where": (["ttft_s<=1", "user_tok_s>=30", "tpot_s<0.1"], ["ttft_s<=e", "nope>1", "ttft_s", "ttft_s<=nan"]),
    "--best": (["usd_per_mtok_output", "ttft_s"], ["nope", ""]),
    "--over": (["gpu,tp,batch", "batch", "tp"], ["", "nope", ","]),
    "--vars": (["tp,ttft_s", "output_tok_s"], ["nope", ","]),
    "--sort": (["batch", "ttft_s"], ["nope"]),
    "--limit": (["0", "3"], ["-1", "x"]),
}
FLAG_ONLY = {"query": ["--max", "--csv"], "explain": ["--json"], "catalog": ["--json"], "verify": ["-q"]}
HEAVY = [
    ["run", "absent.toml"],
    ["run", "fifo.toml"],
    ["run", "dir.toml", "--chunk-points", "0"],
    ["plot", "absent.zarr", "roofline", "-o", "out.html"],
    ["plot", "fifo.toml", "roofline", "-o", "dir.json"],
    ["report", "dir.toml", "-o", "out.html"],
    ["calibrate", "fifo.csv", "-o", "out.toml"],
    ["validate", "dir.csv"],
    ["validate", "absent.json", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "0"],
    ["optimize", "absent.toml", "--slo", "ttft_s<=1"],
    ["compare", "--model", "fifo.json", "--input", "128", "--output", "16", "--slo", "ttft_s<=1"],
    ["compare", "--model", "llama-3.1-8b", "--input", "128", "--output", "16"],
]
"""Commands that compute, each given an input or argument that cannot be used: refused before
any computation (a valid one would run a sweep or compile a fit; that is tested elsewhere)."""


def _in(place: Path, value: str) -> str:
    return str(place / value) if value.endswith((".json", ".toml", ".csv", ".zarr", ".html")) else value


@st.composite
def argument_lists(draw, place: Path) -> list[str]:
    """``sweep ...`` argument lists: the cheap commands (explain, query, show, verify, catalog)
    with flags valid and (1 in 8) broken; the commands that compute (``HEAVY``) only with an input
    that cannot be used; junk tokens anywhere (1 in 6 additions), or junk alone."""
    command = draw(
        st.sampled_from(["explain", "explain", "query", "query", "query", "show", "verify", "catalog", "heavy", "junk"])
    )
    store = draw(
        _either(st.just("store.zarr"), st.sampled_from(["golden.zarr", "absent.zarr", "good.json", "dir.json"]))
    )
    flags: dict[str, tuple[list[str], list[str]]] = {}
    if command == "explain":
        flags = EXPLAIN_FLAGS
        argv = ["explain"]
        for flag in ("--model", "--gpu", "--input", "--output"):
            if draw(st.integers(0, 15)) != 15:
                good, bad = flags[flag]
                argv += [flag, draw(_either(st.sampled_from(good), st.sampled_from(bad)))]
    elif command in ("query", "show", "verify"):
        flags = QUERY_FLAGS if command == "query" else {}
        argv = [command, store]
    elif command == "catalog":
        argv = ["catalog"]
    elif command == "heavy":
        argv = list(draw(st.sampled_from(HEAVY)))
    else:
        return draw(st.lists(JUNK, max_size=4))
    for _ in range(draw(st.integers(0, 3))):
        pick = draw(st.integers(0, 5))
        if pick == 5:
            argv.append(draw(JUNK))
        elif pick == 4 and command in FLAG_ONLY:
            argv.append(draw(st.sampled_from(FLAG_ONLY[command])))
        elif flags:
            flag = draw(st.sampled_from(sorted(flags)))
            good, bad = flags[flag]
            argv += [flag, draw(_either(st.sampled_from(good), st.one_of(st.sampled_from(bad), JUNK)))]
    return [_in(place, a) for a in argv]


@FUZZ
@given(data=st.data())
def test_fuzz_cli_arguments(place, data):
    argv = data.draw(argument_lists(place))
    status, out, err = cli(argv)
    if status == 0 and argv[:1] == ["explain"] and "--json" in argv:
        result = json.loads(out)
        assert math.isfinite(result["params_total"])
    _ended("CLI arguments", status, err)
