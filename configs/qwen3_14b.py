"""SandMLE GRPO on Qwen3-14B: the paper's recipe, SGLang rollouts, one 8-GPU node by default.

    python -m launch.train --config=configs/qwen3_14b.py --workdir=/shared/runs/qwen3_14b \
        --config.model.hf_dir=/shared/models/Qwen3-14B \
        --config.rollout.sglang_urls=http://sglang-router:30000 \
        --config.rollout.weights_dir=/shared/weights/qwen3_14b

Multi-host: add --dist_coordinator_address=HOST:PORT --dist_num_processes=N
--dist_process_id=I on every host (or --dist_auto on SLURM/TPU). Start the SGLang servers first
(README, "SGLang servers"). Values not set here are configs/base.py's.
"""

import pathlib
import runpy

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = runpy.run_path(str(pathlib.Path(__file__).with_name("base.py")))["get_config"]()
    c.model.preset = "qwen3_14b"  # shapes for the dry run; weights come from hf_dir
    c.mesh.fsdp = -1
    return c
