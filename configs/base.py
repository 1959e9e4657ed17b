"""The SandMLE recipe at full scale, with the paper's hyper-parameters (SANDMLE.md).

Not run directly: the per-model files (qwen3_8b.py, qwen3_14b.py, qwen3_30b_a3b.py) set the
model and the machines, and tiny_cpu.py shrinks everything to one CPU. Each value is commented
once, here.
"""

import pathlib
import runpy

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # same config + seed: same tasks, data and first step

    c.tasks = ml_collections.ConfigDict()
    c.tasks.dir = ""  # an existing task store; empty = generate into <workdir>/tasks
    c.tasks.num_tasks = 912  # the paper kept 912 tasks (848 train + 64 validation)
    c.tasks.max_validation_tasks = 0  # 0 = all validation tasks
    c.tasks.synth = runpy.run_path(str(pathlib.Path(__file__).with_name("synth.py")))[
        "get_config"]()

    c.model = ml_collections.ConfigDict()
    c.model.preset = ""  # Qwen3Config preset for the dry run (shapes without weights)
    c.model.hf_dir = ""  # the Qwen3 HF directory to start from (required at full scale)
    c.model.compute_dtype = "bfloat16"  # fp32 master weights, bf16 forward/backward
    c.model.remat = True  # recompute each layer in the backward pass: 32k-token rows fit
    c.model.logit_chunk_tokens = 16384  # learner log-probs: tokens (all rows of a micro-batch)
    #   whose fp32 logits exist at once; 0 = all (fastest, but 8 x 32k tokens x 151,936 vocab is
    #   160 GB); a chunk costs one more LM-head matmul in the backward
    c.model.tiny = ml_collections.ConfigDict(dict(  # used only when hf_dir is empty
        vocab_size=2048, hidden_size=128, intermediate_size=384, num_layers=2, num_heads=4,
        num_kv_heads=2, head_dim=32))

    # Mesh axes (-1 = the devices left); FSDP over one 8-GPU node as in the paper.
    c.mesh = ml_collections.ConfigDict(dict(enabled=True, data=1, fsdp=-1, expert=1, tensor=1))

    c.rollout = ml_collections.ConfigDict()
    c.rollout.engine = "sglang"  # "sglang" (servers) or "embedded" (JAX, this process)
    c.rollout.num_slots = 64  # embedded engine: concurrent sequences
    c.rollout.max_len = 32768  # embedded engine: KV-cache length
    c.rollout.decode_chunk = 16  # embedded engine: tokens per device call
    c.rollout.seed = 0
    c.rollout.temperature = 1.0  # the paper's rollout temperature
    c.rollout.top_p = 1.0
    c.rollout.concurrency = 64  # episodes in flight: one step's 16 tasks x 4 rollouts
    c.rollout.sglang_urls = ("http://127.0.0.1:30000",)  # servers or one sglang-router URL
    c.rollout.sglang_worker_urls = ()  # behind a router: every worker, for weights and aborts
    c.rollout.sglang_api_key_env = "SGLANG_API_KEY"  # variable holding the servers' --api-key
    c.rollout.request_timeout_s = 1800.0
    c.rollout.weights_dir = ""  # shared filesystem path the SGLang servers load weights from

    c.agent = ml_collections.ConfigDict()
    c.agent.max_turns = 15  # model calls per trajectory
    c.agent.context_tokens = 32768
    c.agent.prompt_tokens = 8192  # cap on system + task prompt
    c.agent.max_new_tokens = 8192  # per turn
    c.agent.min_turn_tokens = 256  # prune (or stop) below this many free tokens
    c.agent.exec_timeout_s = 300.0  # per execution
    c.agent.episode_timeout_s = 1200.0  # 20 minutes per trajectory
    c.agent.tool_schemas = True  # tools as Qwen3's JSON tool block
    c.agent.reward_scheme = "paper_dense"  # or release_dense, sparse_gold

    c.sandbox = ml_collections.ConfigDict(dict(
        workers=16,  # concurrent executions (on this host, or in all on the Ray cluster)
        min_isolation="bwrap",  # refuse to start with weaker isolation
        interpreter="",  # the Python that runs agent code; "" = this environment's
        memory_mb=8192, cpus_per_execution=2,
        backend="local",  # or "ray": sandbox actors on a Ray cluster (pip install -e '.[ray]')
        ray_address="auto",  # backend=ray: the head's HOST:PORT, or "auto" (`ray start` here)
        ray_actors=0))  # backend=ray: sandbox actors; 0 = one per node with CPUs

    # Length buckets: each compiles once; the last must hold the whole context.
    c.batching = ml_collections.ConfigDict(dict(
        bucket_lengths=(4096, 8192, 16384, 32768), rows=8, pad_id=0))

    c.sft = ml_collections.ConfigDict()
    c.sft.steps = 200  # Seed-SFT: 200 steps, batch 32, lr 1e-5; 0 = GRPO from the base model
    c.sft.batch_size = 32
    c.sft.tiers = ("boosting",)  # reference-agent episodes to imitate; () = none
    # Tiers played on each task, rotating through sft.tiers so each is played as often; 0 = all.
    # Fewer per task: more distinct tasks for the same SFT data, so no task's answer is seen twice
    c.sft.tiers_per_task = 0
    # The reference programs imitated: one per submission kind (False) or one text for every
    # single-target kind, which it names in its first line (strategies.solution_code's `shared`)
    c.sft.shared_programs = False
    c.sft.explore_first = True  # the reference episodes look at the data before the program
    c.sft.data = ""  # a launch.collect directory (a teacher's trajectories), mixed with tiers'
    c.sft.log_every = 10
    c.sft.checkpoint_every = 50
    c.sft.optimizer = ml_collections.ConfigDict(dict(
        learning_rate=1e-5, warmup_steps=10, schedule="cosine", total_steps=200,
        weight_decay=0.0, max_grad_norm=1.0))

    c.grpo = ml_collections.ConfigDict()
    c.grpo.steps = 120  # the paper's checkpoints fall between steps 45 and 120
    c.grpo.tasks_per_step = 16
    c.grpo.group_size = 4
    c.grpo.std_normalize = True  # GRPO; False = Dr.GRPO
    # As the release trains (rLLM on veRL 0.6.1, read in its launch scripts and configs):
    c.grpo.drop_zero_variance = False  # tied groups kept: advantage 0, still in the normaliser
    c.grpo.pruned_rows = "last"  # a pruned episode trains its final context only ("all":
    #                              each context a row; "episode": each weighted 1/k)
    c.grpo.max_timeout_fraction = 0.2  # mask episodes with > 20% timed-out executions
    c.grpo.overlap = False  # True: step k+1's rollouts run during step k's update (1 step
    #                         off-policy, corrected by the loss's TIS, so tis_cap must be
    #                         set); the paper is on-policy
    c.grpo.max_staleness = 1  # drop episodes sampled by weights older than this many updates
    c.grpo.loss = ml_collections.ConfigDict(dict(
        clip_low=0.2, clip_high=0.28, dual_clip=3.0, aggregation="seq-mean-token-mean",
        temperature=1.0,
        tis_cap=None,  # truncated importance sampling off, as in the release; 2.0 corrects the
        #               rollout engine's numerical mismatch (and overlap's one step lag)
        kl_coef=0.0,
        aux_loss_coef=0.0))  # MoE load balancing: off in RL (routing drift is watched, metric
    #                          aux_loss); HF pretraining used 0.001
    c.grpo.optimizer = ml_collections.ConfigDict(dict(  # veRL's AdamW defaults but lr
        learning_rate=1e-6, warmup_steps=0, weight_decay=0.01, max_grad_norm=1.0))

    c.eval = ml_collections.ConfigDict(dict(
        every=10, seeds=3, temperature=1.0, top_p=0.95,  # the paper's validation sampling
        reference_baseline=True))

    c.checkpoint = ml_collections.ConfigDict(dict(every=5, keep_last=3))
    return c
