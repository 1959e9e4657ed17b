"""GRPO steps with rollouts from the embedded engine vs from served workers behind the real
sglang-router, from the same finished SFT warm start: seconds per step for rollouts, weight sync
and learning, and the ratios served / embedded.

    PYTHONPATH=. python benchmarks/served_grpo.py --run=runs/tiny [--steps=3]

`--run` is a finished tiny main job (README): its tasks/, base_model/ and checkpoints/sft/ are
reused, so both arms start GRPO from the same params on the same tasks with the same seeds. The
served arm is the README's local wiring: two `launch.serve` workers (our SGLang-protocol server;
SGLang's needs CUDA) and PyPI's sglang-router, all on this machine, so on a small box the workers
compete with the learner for the same cores. Evaluations are skipped: only the steps are timed.
"""

import argparse
import asyncio
import pathlib
import runpy
import shutil
import statistics
import sys
import tempfile

from sandmle_jax.parallel import host_memory

host_memory.keep_freed_memory_on_cpu()

from benchmarks import local_cluster  # noqa: E402
from sandmle_jax.monitoring.metrics_writer import read_metrics  # noqa: E402
from sandmle_jax.rl import trainer  # noqa: E402
import run_facts  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMES = ("time/rollout_s", "time/sync_s", "time/learn_s")


class _StepsOnly(trainer.Trainer):
    """The trainer without its evaluations (and so without the report they feed)."""

    async def evaluate(self, name, *args, **kwargs):
        return {"overall": {}}

    def finish(self) -> None:
        self.writer.close()


def _arm(run: pathlib.Path, workdir: pathlib.Path, steps: int, served=None) -> list[dict]:
    """Copies the run's finished SFT checkpoint into `workdir` and runs `steps` GRPO steps."""
    shutil.copytree(run / "checkpoints" / "sft", workdir / "checkpoints" / "sft")
    config = runpy.run_path(str(ROOT / "configs" / "tiny_cpu.py"))["get_config"]()
    config.tasks.dir = str(run / "tasks")
    config.model.hf_dir = str(run / "base_model")
    config.grpo.steps = steps
    config.eval.reference_baseline = False
    if served is not None:
        config.rollout.engine = "sglang"
        router, workers = served
        config.rollout.sglang_urls, config.rollout.sglang_worker_urls = (router,), tuple(workers)
    asyncio.run(_StepsOnly(trainer.checked_config(config), workdir).run())
    return [r for r in read_metrics(workdir / "metrics") if "time/rollout_s" in r]


def main() -> None:
    print(run_facts.header())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished tiny main job's workdir")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    run = pathlib.Path(args.run).resolve()
    if not (run / "checkpoints" / "sft").is_dir():
        sys.exit(f"{run}: no checkpoints/sft (run the README's main job first)")
    with tempfile.TemporaryDirectory(prefix="served-grpo-") as scratch:
        scratch = pathlib.Path(scratch)
        results = {"embedded": _arm(run, scratch / "embedded", args.steps)}
        with local_cluster.router_over_workers(run / "base_model",
                                               serve_args=("--max_len=4096",)) as served:
            results["served"] = _arm(run, scratch / "served", args.steps, served)
    print(f"{args.steps} GRPO steps (tiny_cpu), seconds per step, median over steps:")
    print(f"{'':10s}" + "".join(f"{k.split('/')[1]:>12s}" for k in TIMES))
    medians = {arm: {k: statistics.median(r[k] for r in rows) for k in TIMES}
               for arm, rows in results.items()}
    for arm, m in medians.items():
        print(f"{arm:10s}" + "".join(f"{m[k]:12.2f}" for k in TIMES))
    print(f"{'ratio':10s}" + "".join(
        f"{medians['served'][k] / max(medians['embedded'][k], 1e-9):11.2f}x" for k in TIMES))
    same = [a["train/generated_tokens"] == b["train/generated_tokens"]
            for a, b in zip(results["embedded"], results["served"])]
    print(f"generated tokens per step equal in both arms: {same}")


if __name__ == "__main__":
    main()
