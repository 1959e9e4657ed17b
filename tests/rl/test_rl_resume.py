"""A run SIGKILLed right after starting an async save, then resumed, ends bit-identical to an
uninterrupted run: learner state, RNG and data cursor all come back from the checkpoint.

The training loop is this file run as a script (a child process that can really be killed); the
data of step s is a pure function of s, which the saved cursor records.
"""

import os
import pathlib
import signal
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
STEPS = 5


def train(ckpt_dir: str, out_path: str, kill_after_step: int) -> None:
    import jax
    from flax import nnx

    from sandmle_jax.rl.batching import BatchingConfig, make_learner_batch
    from sandmle_jax.rl.checkpoint import Checkpointer, abstract_like
    from sandmle_jax.rl.learner import Learner, LossConfig, nnx_apply_fn
    from sandmle_jax.rl.optim import OptimizerConfig, make_optimizer

    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from test_rl_learner import TinyLM, random_trajs  # noqa: E402

    apply_fn, params = nnx_apply_fn(TinyLM(rngs=nnx.Rngs(0)))
    learner = Learner(apply_fn, make_optimizer(OptimizerConfig(learning_rate=1e-2)),
                      LossConfig(tis_cap=2.0))
    batching = BatchingConfig(bucket_lengths=(16, 32, 64), rows=4)
    state = learner.init_state(params, seed=0)
    with Checkpointer(ckpt_dir, keep_last=2) as ckpt:
        restored = ckpt.restore_latest(abstract_like(state))
        next_step = 0
        if restored is not None:
            state, next_step = restored.state, restored.cursor["next_step"]
        print(f"starting at step {next_step}", flush=True)
        for step in range(next_step, STEPS):
            batch = make_learner_batch(random_trajs(1000 + step), batching, group_size=4)
            state, _ = learner.train_step(state, batch)
            ckpt.save(step, state, cursor={"next_step": step + 1}, config={"lr": 1e-2})
            if step == kill_after_step:
                os.kill(os.getpid(), signal.SIGKILL)          # mid-save: no cleanup, no flush
    leaves = jax.tree.leaves((state.params, state.opt_state, state.step, state.rng))
    np.savez(out_path, *[np.asarray(x) for x in leaves])


def run(ckpt_dir, out_path, kill_after_step):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, __file__, str(ckpt_dir), str(out_path),
                           str(kill_after_step)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_sigkilled_run_resumes_to_identical_params(tmp_path):
    straight = run(tmp_path / "straight", tmp_path / "straight.npz", -1)
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = run(tmp_path / "killed", tmp_path / "killed.npz", 2)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.npz").exists()
    resumed = run(tmp_path / "killed", tmp_path / "resumed.npz", -1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # It resumed (not restarted): from step 2's checkpoint, or step 1's if 2's save was cut.
    assert ("starting at step 3" in resumed.stdout) or ("starting at step 2" in resumed.stdout)
    want, got = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert len(want.files) == len(got.files) > 4
    for key in want.files:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


if __name__ == "__main__":
    train(sys.argv[1], sys.argv[2], int(sys.argv[3]))
