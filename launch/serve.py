"""Serve a policy over SGLang's HTTP protocol: `python -m launch.serve --model_dir=DIR --port=P`.

The embedded JAX engine runs the HF Qwen3 checkpoint in DIR behind SGLang's native endpoints
(/generate, /health, /get_model_info, /update_weights_from_disk, /flush_cache,
/pause_generation, /continue_generation, /abort_request) and OpenAI's /v1/chat/completions.
Without tokenizer files in DIR only the token-id endpoints work (like SGLang's
--skip-tokenizer-init). Binds to loopback unless --host says otherwise; another host needs an
API key (`--api_key`, or the variable SANDMLE_SERVE_API_KEY), which every request but /health
must then carry as `Authorization: Bearer <key>`, as with SGLang's --api-key: anyone who
reaches the port could otherwise load weights from any path this process can read.
"""

import logging
import os

import jax.numpy as jnp
from absl import flags
from aiohttp import web

from sandbox_runner.serve import LOOPBACK_HOSTS
from sandmle_jax import paths
from sandmle_jax.errors import ConfigError
from sandmle_jax.models import tokenizer as tokenizer_lib
from sandmle_jax.monitoring import console
from sandmle_jax.parallel import host_memory
from sandmle_jax.rollout.embedded import EmbeddedEngine
from sandmle_jax.rollout.server import SGLangServer

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "HF Qwen3 directory to serve.", required=True)
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Interface to bind (loopback by default).")
_PORT = flags.DEFINE_integer("port", 30000, "TCP port (SGLang's default is 30000).")
_NUM_SLOTS = flags.DEFINE_integer("num_slots", 8, "Sequences decoded together (KV-cache rows).")
_MAX_LEN = flags.DEFINE_integer("max_len", 4096, "Longest prompt + completion, in tokens.")
_DECODE_CHUNK = flags.DEFINE_integer("decode_chunk", 8, "Decode steps per device call.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Param/compute dtype.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed for requests that carry no sampling_seed.")
_NAME = flags.DEFINE_string("served_model_name", None, "Model name in /v1 replies (default: dir).")
_API_KEY = flags.DEFINE_string("api_key", os.environ.get("SANDMLE_SERVE_API_KEY"),
                               "Bearer token every request but /health must carry (env "
                               "SANDMLE_SERVE_API_KEY); required off loopback.")


def main(argv):
    del argv
    if _HOST.value not in LOOPBACK_HOSTS and not _API_KEY.value:
        raise ConfigError(f"--host {_HOST.value} is not loopback: give --api_key (or set "
                          "SANDMLE_SERVE_API_KEY); without one anyone reaching the port can "
                          "generate and load weights")
    host_memory.keep_freed_memory_from_flags()
    logging.basicConfig(level=logging.INFO)
    model_dir = str(paths.absolute(_MODEL_DIR.value))
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise ConfigError(f"--model_dir {model_dir}: no config.json there; name an HF Qwen3 "
                          "directory")
    tokenizer = None
    if os.path.isfile(os.path.join(model_dir, "tokenizer_config.json")):
        tokenizer = tokenizer_lib.load_tokenizer(model_dir)
    else:
        logging.warning("%s has no tokenizer files: serving token ids only", model_dir)
    engine = EmbeddedEngine.from_dir(model_dir, tokenizer=tokenizer,
                                     param_dtype=jnp.dtype(_DTYPE.value),
                                     num_slots=_NUM_SLOTS.value, max_len=_MAX_LEN.value,
                                     decode_chunk=_DECODE_CHUNK.value, seed=_SEED.value)
    server = SGLangServer(engine, model_dir, tokenizer, served_model_name=_NAME.value,
                          api_key=_API_KEY.value or None)
    web.run_app(server.app, host=_HOST.value, port=_PORT.value, handler_cancellation=True,
                access_log=None)


if __name__ == "__main__":
    console.run_launcher(main)
