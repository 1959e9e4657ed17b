"""Random tiny transformers Qwen3 / Qwen3-MoE checkpoints for the model tests (the reference)."""

import numpy as np
import torch
import transformers

# name -> config overrides; the parity matrix the issue asks for.
VARIANTS = {
        "dense_tied": dict(tie_word_embeddings=True),
        "dense_untied": dict(tie_word_embeddings=False),
        "dense_rope_theta": dict(tie_word_embeddings=False, rope_theta=1_000_000.0),
        "moe_norm_topk": dict(moe=True, norm_topk_prob=True),
        "moe_no_norm_topk": dict(moe=True, norm_topk_prob=False),
}


def hf_config(moe: bool = False, rope_theta: float = 10000.0, **overrides):
    shape = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
                 pad_token_id=0, eos_token_id=1)
    if moe:
        # decoder_sparse_step=1 with layer 1 dense checks the mixed dense/sparse layout too.
        shape |= dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24,
                      mlp_only_layers=[1], tie_word_embeddings=False)
        return transformers.Qwen3MoeConfig(**(shape | overrides))
    return transformers.Qwen3Config(**(shape | overrides))


def save_hf_model(variant: str, directory, seed: int = 0):
    """Builds the variant with random weights, saves it to directory, returns the torch model.

    Norm weights are randomised too (HF initialises them to ones, which would hide a mix-up).
    """
    torch.manual_seed(seed)
    overrides = dict(VARIANTS[variant])
    config = hf_config(**overrides)
    cls = (transformers.Qwen3MoeForCausalLM if overrides.get("moe")
           else transformers.Qwen3ForCausalLM)
    model = cls(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
    model.save_pretrained(str(directory))
    return model


def batch(vocab: int, seed: int = 0, left_pad: bool = False, slots: int = 9):
    """(ids, mask, positions) for 3 sequences of `slots` slots with lengths all, 2/3 and 1/3 of
    them (padded)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(2, vocab, size=(3, slots))
    mask = np.zeros((3, slots), np.int64)
    for row, length in enumerate((slots, slots * 2 // 3, slots // 3)):
        if left_pad:
            mask[row, slots - length:] = 1
        else:
            mask[row, :length] = 1
    ids = np.where(mask == 1, ids, 0)
    positions = np.maximum(np.cumsum(mask, axis=-1) - 1, 0)
    return ids, mask, positions


def torch_logits(model, ids, mask, positions, **kwargs):
    with torch.no_grad():
        return model(torch.tensor(ids), attention_mask=torch.tensor(mask),
                     position_ids=torch.tensor(positions), **kwargs)


def max_rel_error(ours: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """max |ours - ref| / max |ref| over real (unpadded) tokens: the parity measure."""
    valid = mask.astype(bool)
    ref = np.asarray(ref, np.float64)[valid]
    return float(np.abs(np.asarray(ours, np.float64)[valid] - ref).max() / np.abs(ref).max())
