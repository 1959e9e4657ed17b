"""Qwen3 model shapes as one frozen dataclass, read from and written to HF `config.json`.

Sizes are data: presets are classmethods and the layer code only reads fields. Both dense Qwen3
(`model_type: qwen3`) and Qwen3-MoE (`model_type: qwen3_moe`) share this class; `num_experts == 0`
means dense.
"""

import dataclasses
from typing import Any

_MODEL_TYPES = ("qwen3", "qwen3_moe")
_ARCHITECTURES = {"qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM"}
# Qwen3 release token ids (<|endoftext|>, <|im_end|>).
_QWEN3_BOS, _QWEN3_EOS = 151643, 151645


@dataclasses.dataclass(frozen=True)
class Qwen3Config:
    """Shapes and numerics of a Qwen3 decoder; field names follow HF where they exist."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 40960
    initializer_range: float = 0.02
    # Mixture of experts (Qwen3-MoE); num_experts == 0 is a dense model.
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    norm_topk_prob: bool = False  # HF default; Qwen3-30B-A3B sets it true
    decoder_sparse_step: int = 1
    mlp_only_layers: tuple[int, ...] = ()
    router_aux_loss_coef: float = 0.001
    bos_token_id: int | None = _QWEN3_BOS
    eos_token_id: int | tuple[int, ...] | None = _QWEN3_EOS
    pad_token_id: int | None = None

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "num_key_value_heads", "head_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Qwen3Config.{name} must be positive, got {getattr(self, name)}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                    f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                    f"num_key_value_heads ({self.num_key_value_heads}) for grouped-query attention")
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for rotary embeddings, got {self.head_dim}")
        if self.num_experts:
            if not 0 < self.num_experts_per_tok <= self.num_experts:
                raise ValueError(f"num_experts_per_tok must be in [1, num_experts="
                                 f"{self.num_experts}], got {self.num_experts_per_tok}")
            if self.moe_intermediate_size <= 0:
                raise ValueError("a MoE config (num_experts > 0) needs moe_intermediate_size > 0")
            if self.decoder_sparse_step <= 0:
                raise ValueError(
                        f"decoder_sparse_step must be >= 1, got {self.decoder_sparse_step}")

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def is_moe_layer(self, layer: int) -> bool:
        """HF's rule: sparse unless in mlp_only_layers or off the decoder_sparse_step grid."""
        return (self.is_moe and layer not in self.mlp_only_layers
                and (layer + 1) % self.decoder_sparse_step == 0)

    # ---- presets (shapes of the released checkpoints; tiny ones for tests) -------------------

    @classmethod
    def tiny(cls, **overrides: Any) -> "Qwen3Config":
        """A dense model small enough for CPU unit tests."""
        fields = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                      tie_word_embeddings=True, max_position_embeddings=512, bos_token_id=None,
                      eos_token_id=1, pad_token_id=0)
        return cls(**(fields | overrides))

    @classmethod
    def tiny_moe(cls, **overrides: Any) -> "Qwen3Config":
        """A Qwen3-MoE model small enough for CPU unit tests (4 experts, top-2)."""
        fields = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                      tie_word_embeddings=False)
        return cls.tiny(**(fields | overrides))

    @classmethod
    def qwen3_0_6b(cls) -> "Qwen3Config":
        return cls(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                   num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                   head_dim=128, tie_word_embeddings=True)

    @classmethod
    def qwen3_8b(cls) -> "Qwen3Config":
        return cls(vocab_size=151936, hidden_size=4096, intermediate_size=12288,
                   num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                   head_dim=128)

    @classmethod
    def qwen3_14b(cls) -> "Qwen3Config":
        return cls(vocab_size=151936, hidden_size=5120, intermediate_size=17408,
                   num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=8,
                   head_dim=128)

    @classmethod
    def qwen3_30b_a3b(cls) -> "Qwen3Config":
        return cls(vocab_size=151936, hidden_size=2048, intermediate_size=6144,
                   num_hidden_layers=48, num_attention_heads=32, num_key_value_heads=4,
                   head_dim=128, num_experts=128, num_experts_per_tok=8,
                   moe_intermediate_size=768, norm_topk_prob=True)

    # ---- Hugging Face config.json -----------------------------------------------------------

    @classmethod
    def from_hf_dict(cls, hf: dict[str, Any]) -> "Qwen3Config":
        """Reads a Qwen3 / Qwen3-MoE `config.json` (transformers 4 or 5 layout)."""
        model_type = hf.get("model_type")
        if model_type not in _MODEL_TYPES:
            raise ValueError(f"config.json has model_type={model_type!r}; only {_MODEL_TYPES} "
                             "are supported by sandmle_jax.models")
        if hf.get("use_sliding_window"):
            raise ValueError("config.json sets use_sliding_window=true; sliding-window attention "
                             "is not implemented (no released Qwen3 checkpoint uses it): set it "
                             "false")
        if hf.get("attention_bias"):
            raise ValueError("config.json sets attention_bias=true; Qwen3 has no attention bias")
        if hf.get("hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act={hf['hidden_act']!r} unsupported; Qwen3 uses 'silu'")
        rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise ValueError(f"rope_type={rope_type!r} is not implemented; only 'default' RoPE")
        # transformers 5 keeps rope_theta inside rope_parameters; 4.x puts it at the top level.
        rope_theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
        num_heads = hf["num_attention_heads"]
        num_experts = hf.get("num_experts", hf.get("num_local_experts", 0)) or 0
        if model_type == "qwen3":
            num_experts = 0
        eos = hf.get("eos_token_id")
        return cls(
                vocab_size=hf["vocab_size"],
                hidden_size=hf["hidden_size"],
                intermediate_size=hf["intermediate_size"],
                num_hidden_layers=hf["num_hidden_layers"],
                num_attention_heads=num_heads,
                num_key_value_heads=hf.get("num_key_value_heads") or num_heads,
                head_dim=hf.get("head_dim") or hf["hidden_size"] // num_heads,
                rope_theta=float(rope_theta),
                rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
                tie_word_embeddings=hf.get("tie_word_embeddings", False),
                max_position_embeddings=hf.get("max_position_embeddings", 32768),
                initializer_range=hf.get("initializer_range", 0.02),
                num_experts=num_experts,
                num_experts_per_tok=hf.get("num_experts_per_tok", 0) if num_experts else 0,
                moe_intermediate_size=hf.get("moe_intermediate_size", 0) if num_experts else 0,
                norm_topk_prob=bool(num_experts) and hf.get("norm_topk_prob", False),
                decoder_sparse_step=hf.get("decoder_sparse_step", 1) or 1,
                mlp_only_layers=tuple(hf.get("mlp_only_layers") or ()),
                router_aux_loss_coef=hf.get("router_aux_loss_coef", 0.001),
                bos_token_id=hf.get("bos_token_id"),
                eos_token_id=tuple(eos) if isinstance(eos, list) else eos,
                pad_token_id=hf.get("pad_token_id"),
        )

    def to_hf_dict(self, dtype: str = "bfloat16") -> dict[str, Any]:
        """A `config.json` dict that transformers 4/5 and SGLang load.

        rope_theta is written both at the top level (transformers 4, SGLang) and inside
        `rope_parameters` (transformers 5).
        """
        model_type = "qwen3_moe" if self.is_moe else "qwen3"
        hf: dict[str, Any] = {
                "architectures": [_ARCHITECTURES[model_type]],
                "model_type": model_type,
                "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size,
                "intermediate_size": self.intermediate_size,
                "num_hidden_layers": self.num_hidden_layers,
                "num_attention_heads": self.num_attention_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "head_dim": self.head_dim,
                "hidden_act": "silu",
                "rms_norm_eps": self.rms_norm_eps,
                "rope_theta": self.rope_theta,
                "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
                "tie_word_embeddings": self.tie_word_embeddings,
                "max_position_embeddings": self.max_position_embeddings,
                "initializer_range": self.initializer_range,
                "attention_bias": False,
                "attention_dropout": 0.0,
                "use_sliding_window": False,
                "sliding_window": None,
                "use_cache": True,
                "bos_token_id": self.bos_token_id,
                "eos_token_id": (list(self.eos_token_id) if isinstance(self.eos_token_id, tuple)
                                 else self.eos_token_id),
                "pad_token_id": self.pad_token_id,
                "torch_dtype": dtype,
        }
        if self.is_moe:
            hf |= {
                    "num_experts": self.num_experts,
                    "num_experts_per_tok": self.num_experts_per_tok,
                    "moe_intermediate_size": self.moe_intermediate_size,
                    "norm_topk_prob": self.norm_topk_prob,
                    "decoder_sparse_step": self.decoder_sparse_step,
                    "mlp_only_layers": list(self.mlp_only_layers),
                    "router_aux_loss_coef": self.router_aux_loss_coef,
                    "output_router_logits": False,
            }
        return hf

    def num_params(self) -> int:
        """Total parameter count (all experts included)."""
        d, h = self.hidden_size, self.head_dim
        attn = d * h * (2 * self.num_attention_heads + 2 * self.num_key_value_heads) + 2 * h
        total = self.vocab_size * d * (1 if self.tie_word_embeddings else 2) + d
        for layer in range(self.num_hidden_layers):
            if self.is_moe_layer(layer):
                mlp = d * self.num_experts + 3 * self.num_experts * d * self.moe_intermediate_size
            else:
                mlp = 3 * d * self.intermediate_size
            total += attn + mlp + 2 * d
        return total

    def active_params_per_token(self) -> int:
        """Parameters a token's forward pass multiplies with (embedding lookup excluded)."""
        d, h = self.hidden_size, self.head_dim
        attn = d * h * (2 * self.num_attention_heads + 2 * self.num_key_value_heads)
        total = self.vocab_size * d
        for layer in range(self.num_hidden_layers):
            if self.is_moe_layer(layer):
                mlp = (d * self.num_experts
                       + 3 * self.num_experts_per_tok * d * self.moe_intermediate_size)
            else:
                mlp = 3 * d * self.intermediate_size
            total += attn + mlp
        return total
