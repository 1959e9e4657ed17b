"""HF directory -> ours -> save_model -> transformers reload: identical weights and logits."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import hf_tiny
from sandmle_jax.models import hf, safetensors_io
from sandmle_jax.models.config import Qwen3Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("variant", ["dense_tied", "moe_norm_topk"])
def test_round_trip_is_exact(variant, tmp_path):
    reference = hf_tiny.save_hf_model(variant, tmp_path / "src")
    model = hf.load_model(str(tmp_path / "src"))
    hf.save_model(model, str(tmp_path / "out"), tokenizer_dir=str(tmp_path / "src"))
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out")).eval()
    assert type(reloaded) is type(reference)
    before, after = _state(reference), _state(reloaded)
    assert sorted(before) == sorted(after)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    ids, mask, positions = hf_tiny.batch(model.config.vocab_size)
    expected = hf_tiny.torch_logits(reference, ids, mask, positions).logits.numpy()
    again = hf_tiny.torch_logits(reloaded, ids, mask, positions).logits.numpy()
    np.testing.assert_array_equal(again, expected)
    ours = hf.load_model(str(tmp_path / "out"))
    ours_again = ours(jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    assert hf_tiny.max_rel_error(ours_again, expected, mask) <= 1e-4


def test_multi_file_bf16_save_loads_in_both(tmp_path):
    hf_tiny.save_hf_model("moe_no_norm_topk", tmp_path / "src")
    model = hf.load_model(str(tmp_path / "src"))
    hf.save_model(model, str(tmp_path / "out"), dtype=jnp.bfloat16, max_shard_bytes=20_000)
    files = sorted(f for f in os.listdir(tmp_path / "out") if f.endswith(".safetensors"))
    assert len(files) > 1
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(files)
    assert "model.layers.0.mlp.experts.3.down_proj.weight" in index["weight_map"]
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["torch_dtype"] == "bfloat16" and config["num_experts"] == 4
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
    assert reloaded.dtype == torch.bfloat16
    ours = hf.load_model(str(tmp_path / "out"))
    key = "model.layers.0.self_attn.q_proj.weight"
    q_hf = reloaded.state_dict()[key].float().numpy()
    q_ours = np.asarray(ours.layers[0].self_attn.q_proj[...])
    np.testing.assert_array_equal(q_ours.reshape(q_ours.shape[0], -1).T, q_hf)
    np.testing.assert_allclose(q_hf, np.asarray(model.layers[0].self_attn.q_proj[...]).reshape(
            q_hf.shape[1], -1).T, rtol=2**-8)


def test_save_writes_generation_config_without_a_source(tmp_path):
    from flax import nnx
    from sandmle_jax.models.qwen3 import Qwen3

    hf.save_model(Qwen3(Qwen3Config.tiny(), rngs=nnx.Rngs(0)), str(tmp_path))
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert generation["eos_token_id"] == 1
    assert sorted(os.listdir(tmp_path)) == ["config.json", "generation_config.json",
                                            "model.safetensors"]


def test_missing_tensor_is_named(tmp_path):
    hf_tiny.save_hf_model("dense_untied", tmp_path)
    path = str(tmp_path / "model.safetensors")
    source = safetensors_io.SafetensorsFile(path)
    kept = [k for k in source.keys() if k != "lm_head.weight"]
    tensors = [(k, source.tensor(k).shape, source.tensor(k).dtype, lambda k=k: source.tensor(k))
               for k in kept]
    safetensors_io.write(str(tmp_path / "cut.safetensors"), tensors)
    os.remove(path)
    with pytest.raises(ValueError, match="lm_head.weight"):
        hf.load_model(str(tmp_path))


def test_no_safetensors_is_explained(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(Qwen3Config.tiny().to_hf_dict()))
    with pytest.raises(FileNotFoundError, match="safetensors"):
        hf.load_model(str(tmp_path))


def test_export_launcher_round_trip(tmp_path):
    reference = hf_tiny.save_hf_model("dense_untied", tmp_path / "src")
    (tmp_path / "src" / "tokenizer_config.json").write_text("{}")
    subprocess.run([sys.executable, "-m", "launch.export_hf", f"--checkpoint={tmp_path / 'src'}",
                    f"--out={tmp_path / 'out'}"], cwd=ROOT, check=True, timeout=300)
    assert (tmp_path / "out" / "tokenizer_config.json").exists()
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
    for key, value in _state(reference).items():
        np.testing.assert_array_equal(_state(reloaded)[key], value, err_msg=key)
