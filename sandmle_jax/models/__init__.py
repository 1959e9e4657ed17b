"""Qwen3 dense and MoE models in Flax NNX, with Hugging Face import/export.

  config.py          Qwen3Config: shapes as data, presets, HF config.json in and out
  qwen3.py           the model (training forward, KV-cache decoding, MoE aux loss)
  moe_experts.py     dropless MoE experts: expert-aligned blocks (CPU, GPU), ragged_dot (TPU)
  swiglu.py          the SwiGLU activation with a hand-written backward (MLP and experts)
  head_logprobs.py   next-token log-probs and entropies from hidden states, in chunks
  hf.py              load_model / save_model for HF safetensors directories, sharded on load
  safetensors_io.py  memory-mapped safetensors reading and streamed writing
  tokenizer.py       tokenizer and chat template from a model directory
  small_tokenizer.py the tiny CPU recipe's own small BPE with Qwen3's chat tokens and template
"""
