"""Qwen3Config: presets, HF config.json in both rope layouts, validation errors."""

import json

import pytest
import transformers

import hf_tiny
from sandmle_jax.models.config import Qwen3Config


@pytest.mark.parametrize("preset, params_b", [("qwen3_0_6b", 0.596), ("qwen3_8b", 8.19),
                                              ("qwen3_14b", 14.77), ("qwen3_30b_a3b", 30.53)])
def test_presets_have_the_released_parameter_counts(preset, params_b):
    config = getattr(Qwen3Config, preset)()
    assert config.num_params() / 1e9 == pytest.approx(params_b, rel=0.01)


def test_30b_a3b_activates_about_3b_parameters():
    active = Qwen3Config.qwen3_30b_a3b().active_params_per_token()
    assert 3.0e9 < active < 3.5e9


def test_presets_match_transformers_parameter_count():
    """Our count (the model's shapes) equals the reference implementation's for the same config."""
    for variant in ("dense_tied", "dense_untied", "moe_norm_topk"):
        hf_config = hf_tiny.hf_config(**hf_tiny.VARIANTS[variant])
        cls = (transformers.Qwen3MoeForCausalLM if hf_tiny.VARIANTS[variant].get("moe")
               else transformers.Qwen3ForCausalLM)
        expected = sum(p.numel() for p in cls(hf_config).parameters())
        ours = Qwen3Config.from_hf_dict(hf_config.to_dict())
        assert ours.num_params() == expected, variant


def test_reads_transformers_5_and_4_rope_layouts():
    base = Qwen3Config.tiny().to_hf_dict()
    v5 = {k: v for k, v in base.items() if k != "rope_theta"}
    v5["rope_parameters"] = {"rope_type": "default", "rope_theta": 5e5}
    v4 = {k: v for k, v in base.items() if k != "rope_parameters"}
    v4["rope_theta"] = 2.5e4
    assert Qwen3Config.from_hf_dict(v5).rope_theta == 5e5
    assert Qwen3Config.from_hf_dict(v4).rope_theta == 2.5e4


def test_reads_num_local_experts_written_by_transformers_5(tmp_path):
    hf_config = hf_tiny.hf_config(moe=True, norm_topk_prob=True)
    hf_config.save_pretrained(str(tmp_path))
    raw = json.loads((tmp_path / "config.json").read_text())
    assert "num_local_experts" in raw
    config = Qwen3Config.from_hf_dict(raw)
    assert (config.num_experts, config.num_experts_per_tok, config.mlp_only_layers) == (4, 2, (1,))
    assert config.is_moe_layer(0) and not config.is_moe_layer(1)


@pytest.mark.parametrize("config", [Qwen3Config.tiny(), Qwen3Config.tiny_moe(),
                                    Qwen3Config.qwen3_30b_a3b()])
def test_hf_dict_round_trip_and_transformers_accepts_it(config, tmp_path):
    assert Qwen3Config.from_hf_dict(config.to_hf_dict()) == config
    (tmp_path / "config.json").write_text(json.dumps(config.to_hf_dict()))
    loaded = transformers.AutoConfig.from_pretrained(str(tmp_path))
    assert loaded.rope_parameters["rope_theta"] == config.rope_theta
    assert loaded.num_key_value_heads == config.num_key_value_heads
    if config.is_moe:
        assert loaded.num_experts == config.num_experts


@pytest.mark.parametrize("change, message", [
        (dict(model_type="llama"), "model_type"),
        (dict(use_sliding_window=True), "sliding"),
        (dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0}), "yarn"),
        (dict(num_attention_heads=5), "multiple"),
])
def test_bad_configs_are_rejected_with_the_reason(change, message):
    with pytest.raises(ValueError, match=message):
        Qwen3Config.from_hf_dict(Qwen3Config.tiny().to_hf_dict() | change)
