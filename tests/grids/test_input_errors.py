"""Issue 15's bad inputs, each refused at the boundary in one line on stderr: exit status 2 for bad
input (the file, entry and what is expected), 1 for an environment failure (an output directory
that refuses a new file, a full disk); never a traceback (``sweep.cli`` docstring).

Every case runs the CLI in-process and fails before any computation, so the file runs in seconds.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

from grids import files
from grids.models import MODELS_DIR
from sweep.cli import main


class Hang(BaseException):
    """A command ran past its alarm (a BaseException: the CLI's boundary does not catch it)."""


def _hang(signum, frame):
    raise Hang("the command ran for more than 60 s")


def sweep(capsys, *argv: str) -> tuple[int, str]:
    """``sweep ARGV`` in-process, with an alarm against a hang: (status, the one line of stderr)."""
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(60)
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        status = exit_.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return status, lines[0]


def _explain(model: Path | str) -> list[str]:
    return ["explain", "--model", str(model), "--gpu", "h100-sxm", "--input", "128", "--output", "16"]


def _config(tmp_path: Path, base: str = "llama-3.1-8b", **changes) -> Path:
    """A shipped config.json (its text_config where it has one) with fields changed."""
    config = json.loads((MODELS_DIR / f"{base}.json").read_text())
    target = config.get("text_config", config)
    target.update(changes)
    path = tmp_path / f"{base}-changed.json"
    path.write_text(json.dumps(config))
    return path


# --- config.json -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base, changes, words",
    [
        # today: ZeroDivisionError (the mlp_layer_freq is DeepSeek's moe_layer_freq)
        ("qwen3-30b-a3b", dict(decoder_sparse_step=0), "field 'decoder_sparse_step' must be positive, got 0"),
        ("deepseek-v3", dict(moe_layer_freq=0), "field 'moe_layer_freq' must be positive, got 0"),
        ("qwen3-30b-a3b", dict(model_type=["qwen3_moe"]), "field 'model_type' must be a string, got ['qwen3_moe']"),
        # accepted silently before
        ("llama-3.1-8b", dict(hidden_size=1e300), "field 'hidden_size' = 1e+300 is beyond its plausible maximum"),
        ("deepseek-v3", dict(n_shared_experts=-1), "field 'n_shared_experts' must be at least 0, got -1"),
        ("llama-4-scout", dict(moe_layers=[0, 47, 48]), "field 'moe_layers' names layer 48, beyond the 48 layers"),
        ("qwen3-30b-a3b", dict(mlp_only_layers=[100]), "field 'mlp_only_layers' names layer 100, beyond the 48"),
        ("deepseek-v3", dict(first_k_dense_replace=62), "first_k_dense_replace 62 exceeds the 61 layers"),
        ("llama-3.1-8b", dict(head_dim=0), "field 'head_dim' must be positive, got 0"),
        ("llama-3.1-8b", dict(num_hidden_layers=10**15), "field 'num_hidden_layers' = 1e+15 is beyond"),
        (
            "gpt-oss-20b",
            dict(layer_types=["sliding_attention", "bogus"] * 12),
            "'layer_types' has an unknown entry 'bogus'",
        ),
        (
            "gpt-oss-20b",
            dict(layer_types=["sliding_attention"] * 3),
            "'layer_types' must be a list of one entry per layer",
        ),
        ("llama-3.1-8b", dict(vocab_size=10**400), "field 'vocab_size' must be a number, got an integer of about 400"),
        ("llama-3.1-8b", dict(attention_bias="yes"), "field 'attention_bias' must be true or false"),
    ],
)
def test_nonsense_config_is_refused(tmp_path, capsys, base, changes, words):
    path = _config(tmp_path, base, **changes)
    status, line = sweep(capsys, *_explain(path))
    assert status == 2 and str(path) in line and words in line, line


def test_deeply_nested_json_is_refused(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)  # today: RecursionError
    assert sweep(capsys, *_explain(path)) == (
        2,
        f"sweep explain: error: --model: {path}: nested more than 32 levels deep",
    )


@pytest.mark.parametrize("kind", ["directory", "FIFO"])
def test_a_directory_or_fifo_named_like_a_config_is_refused(tmp_path, capsys, kind):
    path = tmp_path / "config.json"
    path.mkdir() if kind == "directory" else os.mkfifo(path)  # today: IsADirectoryError; a hang
    status, line = sweep(capsys, *_explain(path))
    assert status == 2 and line.endswith(f"{path}: is a {kind}; expected a regular file")


def test_an_input_beyond_the_size_limit_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "huge.json"
    with open(path, "wb") as handle:  # sparse: no disk used
        handle.truncate(files.MAX_BYTES + 1)
    status, line = sweep(capsys, *_explain(path))
    assert status == 2 and "67,108,865 bytes, more than the limit of 67,108,864" in line


# --- sweep specs -----------------------------------------------------------------------------

SPEC = """name = "x"
[axes]
model = ["llama-3.1-8b"]
gpu = ["h100-sxm"]
tp = [1]
batch = {batch}
input_len = {input_len}
output_len = [16]
"""


def _spec(tmp_path: Path, batch: str = "[1]", input_len: str = "[128]") -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(batch=batch, input_len=input_len))
    return path


def test_a_spec_not_utf8_is_refused(tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_bytes(b'name = "\xff\xfe"\n')  # today: UnicodeDecodeError
    assert sweep(capsys, "run", path) == (2, f"sweep run: error: {path}: not UTF-8 text (byte 0xff at offset 8)")


def test_a_range_of_1e13_values_is_refused(tmp_path, capsys):
    path = _spec(tmp_path, batch="{ start = 1, stop = 512, num = 1e13 }")
    status, line = sweep(capsys, "run", path)
    assert status == 2 and "[axes] batch: 'num' must be a whole number from 1 to 1e+07, got 10000000000000.0" in line


def test_a_grid_is_sized_before_any_axis_is_made(tmp_path, capsys, monkeypatch):
    """Two axes of 1e7 values each (within the per-axis limit): 1e14 points, refused from the
    axes' lengths before a value is generated (the generator would fail this test)."""
    import grids.sweeps

    def generate(*args):
        raise AssertionError("an axis was generated before the grid's size was checked")

    monkeypatch.setattr(grids.sweeps, "_range", generate)
    big = "{ start = 1, stop = 1e9, num = 10_000_000 }"
    status, line = sweep(capsys, "run", _spec(tmp_path, batch=big, input_len=big))
    assert status == 2 and "1e+14 design points exceed the limit of 1e+11" in line


@pytest.mark.parametrize(
    "batch, words",
    [
        ("{ start = 1, stop = nan, step = 1 }", "start, stop, num and step must be finite numbers"),
        ("[1, 1]", "duplicate values [1]"),
        ("[1e400]", "values must be positive and finite, got inf"),
        (f"[{10**400}]", "expected a positive whole number, got an integer of about 400 digits"),
    ],
)
def test_spec_numbers_that_cannot_be_are_refused(tmp_path, capsys, batch, words):
    status, line = sweep(capsys, "run", _spec(tmp_path, batch=batch))
    assert status == 2 and words in line, line


# --- measurements ----------------------------------------------------------------------------

JSON_FLAGS = ("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "1")


@pytest.mark.parametrize("results, shown", [([], "[]"), ({}, "{}")])
def test_benchmark_json_whose_results_are_a_list_or_empty_is_refused(tmp_path, capsys, results, shown):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"results": results}))  # today: AttributeError; TypeError
    assert sweep(capsys, "validate", path, *JSON_FLAGS) == (
        2,
        f"sweep validate: error: {path}: expected a benchmark JSON whose 'results' maps batch sizes to objects; "
        f"'results' is {shown}",
    )


def test_benchmark_json_entry_with_a_string_number_is_refused(tmp_path, capsys):
    path = tmp_path / "bench.json"
    entry = {"avg_input_tokens": 2000, "avg_output_tokens": 300, "tokens_per_second_in_batch": "fast"}
    path.write_text(json.dumps({"results": {"1": entry}}))
    status, line = sweep(capsys, "validate", path, *JSON_FLAGS)
    assert status == 2 and "results['1']: field 'tokens_per_second_in_batch' must be a number, got 'fast'" in line


HEADER = "model,gpu,tp,batch,input_len,output_len,scenario,metric,value\n"


@pytest.mark.parametrize(
    "row, words",
    [
        ("llama-3.1-8b,h100-sxm,1.5,1,128,16,static,output_tok_s,100", "column 'tp': expected whole numbers, got 1.5"),
        ("llama-3.1-8b,h100-sxm,1,0.5,128,16,static,output_tok_s,100", "column 'batch' must be a whole number"),
        ("llama-3.1-8b,h100-sxm,1,1,128,16,static", "7 cells, expected 9 as in the header"),
        ("llama-3.1-8b,h100-sxm,1,1,1e400,16,static,output_tok_s,100", "column 'input_len' must be positive"),
    ],
)
def test_csv_rows_that_cannot_be_are_refused(tmp_path, capsys, row, words):
    path = tmp_path / "points.csv"
    path.write_text(HEADER + row + "\n")  # tp 1.5: accepted before
    status, line = sweep(capsys, "validate", path)
    assert status == 2 and f"{path} line 2: " in line and words in line, line


def test_csv_beyond_the_csv_module_is_refused(tmp_path, capsys):
    path = tmp_path / "points.csv"
    path.write_text(HEADER + "llama-3.1-8b," + "x" * 200_000 + "\n")
    status, line = sweep(capsys, "validate", path)
    assert status == 2 and "not a valid CSV file (field larger than field limit (131072))" in line


# --- output paths ----------------------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A directory that refuses a new file: mode 0555 for a user; for root, who ignores modes, a
    read-only mount such as sysfs (skipped where there is none)."""
    if os.geteuid() != 0:
        directory = tmp_path / "ro"
        directory.mkdir(mode=0o555)
        yield directory
        directory.chmod(0o755)
        return
    for candidate in ("/sys", "/proc"):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            yield Path(candidate)
            return
    pytest.skip("root, and no read-only directory to write into")


def _commands(out: Path, tmp_path: Path) -> dict[str, list]:
    """Each command that writes, with OUT as its output; every other argument valid, so that the
    output is what fails (before any computation: the check comes first)."""
    csv = tmp_path / "points.csv"
    csv.write_text(HEADER + "llama-3.1-8b,h100-sxm,1,1,128,16,static,output_tok_s,100\n")
    return {
        "run": ["run", "article-70b", "-o", out.with_suffix(".zarr")],
        "report": ["report", "article-70b", "-o", out.with_suffix(".html")],
        "plot": ["plot", "article-70b", "roofline", "-o", out.with_suffix(".html")],
        "calibrate": ["calibrate", csv, "-o", out.with_suffix(".toml")],
        "validate": ["validate", csv, "--plot", out.with_suffix(".html")],
        "optimize": ["optimize", "article-70b", "--slo", "ttft_s<=1", "-o", out.with_suffix(".zarr")],
    }


@pytest.mark.parametrize("command", ["run", "report", "plot", "calibrate", "validate", "optimize"])
def test_an_output_in_a_read_only_directory_is_an_environment_failure(tmp_path, capsys, read_only, command):
    argv = _commands(read_only / "new" / "out", tmp_path)[command]
    status, line = sweep(capsys, *argv)
    assert status == 1 and f"cannot write in {read_only} (" in line, line
    assert "resumes" not in line  # nothing was begun


@pytest.mark.parametrize("command", ["run", "report", "plot", "calibrate", "validate", "optimize"])
def test_an_output_under_a_file_is_a_bad_argument(tmp_path, capsys, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status, line = sweep(capsys, *_commands(blocker / "out", tmp_path)[command])
    assert status == 2 and f"{blocker} is not a directory" in line, line


def test_a_file_output_that_is_a_directory_is_a_bad_argument(tmp_path, capsys):
    assert sweep(capsys, "report", "article-70b", "-o", tmp_path) == (
        2,
        f"sweep report: error: --output {tmp_path}: is a directory; expected a file name",
    )


def test_missing_output_directories_pass_the_check(tmp_path):
    """Missing directories are made when the output is written (as run, plot and report did)."""
    from sweep.cli.outputs import output_file, output_store

    assert output_file(str(tmp_path / "a" / "b" / "x.html"), "-o") == tmp_path / "a" / "b" / "x.html"
    output_store(str(tmp_path / "a" / "b" / "x.zarr"), "-o")
    assert not (tmp_path / "a").exists()  # the check makes nothing


def test_a_full_disk_during_a_run_is_an_environment_failure(tmp_path, capsys, monkeypatch):
    """The boundary's mapping of an OSError (what the run left behind: tests/sweep/test_store_full_disk.py)."""
    from sweep.store import run as store_run

    chunk = tmp_path / "x.zarr" / "ttft_s" / "c" / "0"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(chunk))

    monkeypatch.setattr(store_run, "run_sweep", full)
    status, line = sweep(capsys, "run", "article-70b", "-o", tmp_path / "x.zarr")
    assert (status, line) == (1, f"sweep run: error: {chunk}: No space left on device")


# --- the boundary itself ---------------------------------------------------------------------


def test_argparse_errors_are_one_line(capsys):
    assert sweep(capsys, "query") == (
        2,
        "sweep query: error: the following arguments are required: store (see sweep query --help)",
    )


def test_a_bug_prints_its_traceback_and_asks_for_a_report(capsys, monkeypatch):
    import grids.catalog

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(grids.catalog, "catalog", broken)
    assert main(["catalog"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("sweep catalog: internal error (a bug)")
