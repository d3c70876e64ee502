"""Catalogue loaders: every shipped entry loads with its provenance; bad input raises SpecError
naming the file, the entry and the field (shared/DESIGN.md, "Bad input")."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib

import numpy as np
import pytest

from grids.errors import SpecError
from grids.gpus import GPUS_FILE, load_gpu, load_gpus
from grids.models import MODELS_DIR, load_model, model_keys
from grids.profiles import TERMS, load_profile, profile_names
from kernels.params import param_counts
from kernels.specs import EngineProfile, GPUSpec, ModelSpec
from tests import specs

MODELS = (
    "llama-3.1-8b",
    "llama-3.3-70b",
    "llama-3.1-405b",
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "mistral-7b",
    "qwen2.5-7b",
    "qwen2.5-72b",
)
GPUS = (
    "h100-sxm",
    "h100-pcie",
    "h200",
    "b200",
    "a100-sxm-80gb",
    "a100-sxm-40gb",
    "a100-pcie-80gb",
    "l40s",
    "l4",
    "rtx-4090",
    "mi300x",
    "mi325x",
    "apple-m3-ultra",
)


# --- the shipped catalogue -------------------------------------------------------------------


def test_catalogue_models_load_with_sources():
    keys = model_keys()
    assert set(MODELS) <= set(keys) and len(keys) >= 9
    with open(MODELS_DIR / "SOURCES.toml", "rb") as handle:
        sources = tomllib.load(handle)
    for key in keys:
        entry = load_model(key)
        assert entry.key == key and isinstance(entry.spec, ModelSpec)
        for field in dataclasses.fields(ModelSpec):
            value = float(getattr(entry.spec, field.name))
            assert value >= 0 and value == math.floor(value), (key, field.name)
        assert float(entry.spec.n_heads) % float(entry.spec.n_kv_heads) == 0, key
        assert sources[key]["source"].strip() and sources[key]["accessed"].strip(), key


def test_catalogue_parameter_counts():
    # Article: Llama 3.3 70B has exactly 70,553,706,496 parameters.
    assert float(param_counts(load_model("llama-3.3-70b").spec).total) == 70_553_706_496
    # Qwen/Qwen2.5-7B model card, "7.61B": needs the q, k, v biases that config.json does not state
    # (model_type qwen2); hand count in tests/kernels/test_kernels.py.
    qwen = load_model("qwen2.5-7b").spec
    assert float(qwen.qkv_bias) == 1.0
    assert float(param_counts(qwen).total) == 7_615_616_512
    # meta-llama/Llama-3.1-8B model card, "8.03B"; hand count in tests/kernels/test_kernels.py.
    assert float(param_counts(load_model("llama-3.1-8b").spec).total) == 8_030_261_248


def test_catalogue_gpus_load_with_sources():
    gpus = load_gpus()
    assert set(GPUS) <= set(gpus) and len(gpus) >= 13
    for key, entry in gpus.items():
        assert entry.key == key and isinstance(entry.spec, GPUSpec)
        assert entry.table["source"].strip() and entry.table["accessed"].strip(), key
        for name in ("flop_per_s_bf16", "hbm_bytes", "hbm_bytes_per_s", "gpus_per_node", "n_sm"):
            value = float(getattr(entry.spec, name))
            assert math.isfinite(value) and value > 0, (key, name)


def test_h100_catalogue_entry_matches_the_article():
    # Article: H100 SXM 989 TFLOP/s dense bf16, 3350 GB/s, 80 GB, NVLink 450 GB/s; fp4 absent.
    spec = load_gpu("h100-sxm").spec
    for name, value in specs.H100.items():
        if name in ("usd_per_hour", "tdp_w"):
            continue
        np.testing.assert_array_equal(float(getattr(spec, name)), value, err_msg=name)


def test_shipped_profiles_include_the_conventions():
    assert {"article", "roofline"} <= set(profile_names())


@pytest.mark.parametrize("name", profile_names())
def test_profiles_load(name):
    entry = load_profile(name)
    assert isinstance(entry.spec, EngineProfile)
    for term, bounds in TERMS.items():
        assert bounds.lower <= float(getattr(entry.spec, term)) <= bounds.upper, term


def test_article_profile_is_the_article_convention():
    spec = load_profile("article").spec
    for name, value in specs.ARTICLE.items():
        assert float(getattr(spec, name)) == value, name


# --- bad model configs -----------------------------------------------------------------------


def _config(**changes) -> dict:
    """Llama 3.1 8B's config.json with fields changed (None deletes a field)."""
    config = json.loads((MODELS_DIR / "llama-3.1-8b.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


def _write_config(tmp_path, config, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(config) if not isinstance(config, str) else config)
    return path


def _raises(call, *fragments):
    with pytest.raises(SpecError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_config_path_loads(tmp_path):
    path = _write_config(tmp_path, _config())
    assert float(param_counts(load_model(str(path)).spec).total) == 8_030_261_248


def test_malformed_json_names_the_file(tmp_path):
    path = _write_config(tmp_path, '{"hidden_size": 4096,', name="broken.json")
    _raises(lambda: load_model(str(path)), str(path), "not valid JSON")


def test_missing_config_file_names_the_file(tmp_path):
    path = tmp_path / "absent.json"
    _raises(lambda: load_model(str(path)), str(path), "not found")


def test_config_not_an_object(tmp_path):
    path = _write_config(tmp_path, [1, 2, 3])
    _raises(lambda: load_model(str(path)), str(path), "JSON object")


@pytest.mark.parametrize(
    "changes, fragments",
    [
        (dict(hidden_size=None), ("'hidden_size'", "missing")),
        (dict(num_hidden_layers=0), ("'num_hidden_layers'", "positive")),
        (dict(num_hidden_layers=-32), ("'num_hidden_layers'", "positive")),
        (dict(intermediate_size=14336.5), ("'intermediate_size'", "whole number")),
        (dict(vocab_size="128256"), ("'vocab_size'", "number")),
        (dict(num_key_value_heads=5), ("num_attention_heads", "num_key_value_heads", "multiple")),
        (dict(hidden_size=4100), ("hidden_size", "num_attention_heads", "head_dim")),
        (dict(tie_word_embeddings="no"), ("'tie_word_embeddings'",)),
        (dict(num_local_experts=8), ("mixture-of-experts", "num_local_experts", "num_experts_per_tok")),
        (dict(num_local_experts=8, num_experts_per_tok=9), ("num_experts_per_tok", "exceeds")),
        (dict(num_local_experts=8, num_experts_per_tok=2.5), ("'num_experts_per_tok'", "whole number")),
    ],
)
def test_bad_config_names_file_and_field(tmp_path, changes, fragments):
    path = _write_config(tmp_path, _config(**changes))
    _raises(lambda: load_model(str(path)), str(path), *fragments)


def test_shipped_moe_configs_load():
    # Mixtral 8x7B config.json: 8 local experts, top-2, expert width 14336 on all 32 layers.
    spec = load_model("mixtral-8x7b").spec
    assert [float(getattr(spec, k)) for k in ("n_experts", "experts_per_token", "d_ffn_expert", "n_moe_layers")] == [
        8,
        2,
        14336,
        32,
    ]
    assert not (MODELS_DIR / "pending").exists()


def test_unknown_model_key_lists_known_keys():
    message = _raises(lambda: load_model("llama-9-1t"), "llama-9-1t")
    for key in MODELS:
        assert key in message


# --- bad GPU tables --------------------------------------------------------------------------


def test_unknown_gpu_key_lists_known_keys():
    message = _raises(lambda: load_gpu("h900"), "'h900'")
    for key in GPUS:
        assert key in message


def _toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value)


def _write_gpu_toml(tmp_path, key="test-gpu", drop=(), **changes):
    """The catalogue's h100-sxm table under ``key``, with fields dropped or changed."""
    with open(GPUS_FILE, "rb") as handle:
        table = dict(tomllib.load(handle)["h100-sxm"])
    table.update(changes)
    lines = [f"[{key}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items() if k not in drop]
    path = tmp_path / "gpus.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gpu_toml_round_trip(tmp_path):
    spec = load_gpus(_write_gpu_toml(tmp_path))["test-gpu"].spec
    assert float(spec.hbm_bytes_per_s) == 3.35e12 and math.isnan(float(spec.flop_per_s_fp4))


@pytest.mark.parametrize(
    "drop, changes, fragments",
    [
        (("hbm_bytes_per_s",), {}, ("missing field 'hbm_bytes_per_s'",)),
        (("source",), {}, ("'source'",)),
        ((), dict(hbm_bandwidth=3.35e12), ("unknown field 'hbm_bandwidth'",)),
        ((), dict(hbm_bytes_per_s=-3.35e12), ("'hbm_bytes_per_s'", "positive")),
        ((), dict(link_bytes_per_s=-450e9), ("'link_bytes_per_s'", "positive")),
        ((), dict(hbm_bytes=float("nan")), ("'hbm_bytes'", "nan")),
        ((), dict(n_sm=131.5), ("'n_sm'", "whole number")),
        ((), dict(usd_per_hour="2.99"), ("'usd_per_hour'", "number")),
    ],
)
def test_bad_gpu_table_names_file_entry_and_field(tmp_path, drop, changes, fragments):
    path = _write_gpu_toml(tmp_path, drop=drop, **changes)
    _raises(lambda: load_gpus(path), str(path), "[test-gpu]", *fragments)
    _raises(lambda: load_gpu("test-gpu", path), str(path), "[test-gpu]", *fragments)


def test_gpu_file_not_toml(tmp_path):
    path = tmp_path / "gpus.toml"
    path.write_text("[h100\nflop = ")
    _raises(lambda: load_gpus(path), str(path), "TOML")


# --- bad profiles ----------------------------------------------------------------------------


def _write_profile(tmp_path, drop_source=None, **values):
    """The roofline profile with term values replaced (and one term's source dropped)."""
    with open(load_profile("roofline").path, "rb") as handle:
        terms = tomllib.load(handle)["terms"]
    lines = ['name = "test"', "", "[terms]"]
    for name, entry in terms.items():
        value = values.get(name, entry["value"])
        source = "" if name == drop_source else f", source = {json.dumps(entry['source'])}"
        lines.append(f"{name} = {{ value = {_toml_value(value)}{source} }}")
    path = tmp_path / "profile.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_profile_toml_round_trip(tmp_path):
    spec = load_profile(str(_write_profile(tmp_path, matmul_eff=0.7))).spec
    assert float(spec.matmul_eff) == 0.7 and float(spec.max_num_seqs) == math.inf


@pytest.mark.parametrize(
    "term, value",
    [
        ("matmul_eff", 1.5),
        ("matmul_eff", 0.0),
        ("kv_bw_eff", -0.2),
        ("mem_usable_frac", 1.01),
        ("step_overhead_s", -1e-3),
        ("allreduce_volume_factor", 3.0),
        ("max_num_seqs", 0.0),
    ],
)
def test_profile_term_outside_physical_range(tmp_path, term, value):
    path = _write_profile(tmp_path, **{term: value})
    _raises(lambda: load_profile(str(path)), str(path), f"'{term}'", "physical range")


def test_profile_term_without_source(tmp_path):
    path = _write_profile(tmp_path, drop_source="kv_bw_eff")
    _raises(lambda: load_profile(str(path)), str(path), "'kv_bw_eff'", "'source'")


def test_profile_term_with_unknown_key(tmp_path):
    path = _write_profile(tmp_path)
    text = path.read_text().replace("attn_eff = { value", 'attn_eff = { unit = "1", value')
    path.write_text(text)
    _raises(lambda: load_profile(str(path)), str(path), "'attn_eff'", "unknown keys")


def test_profile_term_nan(tmp_path):
    path = _write_profile(tmp_path, attn_eff=float("nan"))
    _raises(lambda: load_profile(str(path)), str(path), "'attn_eff'")


def test_profile_missing_and_unknown_terms(tmp_path):
    path = _write_profile(tmp_path)
    text = path.read_text()
    missing = tmp_path / "missing.toml"
    missing.write_text("\n".join(line for line in text.splitlines() if not line.startswith("attn_eff")))
    _raises(lambda: load_profile(str(missing)), str(missing), "missing term 'attn_eff'")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(text + 'fudge = { value = 0.4, source = "changed from 0.4 to 0.3" }\n')
    _raises(lambda: load_profile(str(unknown)), str(unknown), "unknown term 'fudge'")
    no_terms = tmp_path / "no_terms.toml"
    no_terms.write_text('name = "x"\n')
    _raises(lambda: load_profile(str(no_terms)), str(no_terms), "[terms]")


def test_unknown_profile_name_lists_known_names():
    _raises(lambda: load_profile("vllm-magic"), "'vllm-magic'", "article", "roofline")


def test_spec_error_is_a_value_error():
    # STYLE.md: loaders raise ValueError naming the bad entry; SpecError is that ValueError.
    assert issubclass(SpecError, ValueError)
