"""Qwen3 dense and MoE models in Flax NNX, with Hugging Face import/export.

  config.py          Qwen3Config: shapes as data, presets, HF config.json in and out
  qwen3.py           the model (training forward, KV-cache decoding, MoE aux loss)
  hf.py              load_model / save_model for HF safetensors directories, sharded on load
  safetensors_io.py  memory-mapped safetensors reading and streamed writing
  tokenizer.py       tokenizer and chat template from a model directory
"""
