"""SandMLE GRPO on Qwen3-30B-A3B: the paper's recipe, SGLang rollouts, one 8-GPU node by default.

    python -m launch.train --config=configs/qwen3_30b_a3b.py --workdir=/shared/runs/qwen3_30b_a3b \
        --config.model.hf_dir=/shared/models/Qwen3-30B-A3B \
        --config.rollout.sglang_urls=http://sglang-router:30000 \
        --config.rollout.weights_dir=/shared/weights/qwen3_30b_a3b

Multi-host: add --dist_coordinator_address=HOST:PORT --dist_num_processes=N
--dist_process_id=I on every host (or --dist_auto on SLURM/TPU). Start the SGLang servers first
(README, "SGLang servers"). Values not set here are configs/base.py's.
"""

import pathlib
import runpy

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = runpy.run_path(str(pathlib.Path(__file__).with_name("base.py")))["get_config"]()
    c.model.preset = "qwen3_30b_a3b"  # shapes for the dry run; weights come from hf_dir
    c.mesh.fsdp = -1
    c.mesh.expert = 2  # 128 experts: expert parallelism across GPU pairs
    c.batching.rows = 4  # divides data x fsdp = 4 on 8 GPUs with expert = 2
    return c
