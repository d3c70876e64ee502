"""sweep query and sweep run refuse bad arguments in one line with exit status 2 (issue 15's
examples): a condition whose number is not one, a selection of the wrong type, an unknown column
to show or sort by, a negative --limit, a --chunk-points of 0."""

from __future__ import annotations

import pytest

from grids.sweeps import validate
from sweep.cli import main
from sweep.store.run import run_sweep

RAW = {
    "name": "q",
    "axes": {
        "model": ["llama-3.1-8b"],
        "gpu": ["h100-sxm"],
        "tp": [1, 2],
        "batch": [1, 8],
        "input_len": [512],
        "output_len": [64],
    },
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("q") / "q.zarr"
    run_sweep(validate(RAW, "test"), path, progress=False)
    return str(path)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--where", "ttft_s<=e"], "'e' is not a number"),
        (["--sel", "tp=abc"], "tp=abc: expected a whole number"),
        (["--sort", "nope"], "unknown variable 'nope'"),
        (["--vars", "nope"], "unknown variable 'nope'"),
        (["--limit", "-1"], "expected a whole number >= 0"),
        (["--over", "", "--best", "ttft_s"], "at least one dimension"),
    ],
)
def test_bad_query_arguments(store, capsys, args, words):
    try:
        status = main(["query", store, *args])
    except SystemExit as exit_:  # argparse refuses a bad --limit itself, with status 2
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_good_query_arguments_still_work(store, capsys):
    assert main(["query", store, "--sort", "batch", "--vars", "tp,ttft_s", "--limit", "0"]) == 0
    assert "ttft_s" in capsys.readouterr().out


def test_chunk_points_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "article-70b", "--chunk-points", "0"])
    assert exit_.value.code == 2 and "expected a whole number >= 1" in capsys.readouterr().err


def test_sort_by_a_variable_not_shown(store, capsys):
    """Found by the fuzzer (tests/properties/test_fuzz_inputs.py): ``--sort ttft_s --vars
    output_tok_s`` was a KeyError traceback; the sort key is now shown after the columns asked for."""
    assert main(["query", store, "--sort", "ttft_s", "--vars", "output_tok_s", "--csv"]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.endswith("output_tok_s,ttft_s") and len(rows) == 4
