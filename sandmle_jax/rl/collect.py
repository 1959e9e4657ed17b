"""What `launch.collect` does: play a policy (a teacher) on tasks and keep its good trajectories
as SFT data (rl/sft_data.py's format), resumably.

Under `out`:
    episodes.jsonl  every finished episode (kept or not, failures included): the resume ledger
    sft.jsonl       the kept episodes' conversations with provenance, one line per sequence
    rows.jsonl      the same, tokenised for a student (ids + loss mask), rebuilt on every run
    collect.json    counts, filter, policy and the student's tokenizer

An episode is played once per (task, seed); a rerun skips those already in the ledger and plays
again only those that failed (engine, sandbox or grader errors), whose failure stays recorded.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.trajectory import FAILED, EpisodeInfo, Trajectory
from sandmle_jax.errors import ConfigError
from sandmle_jax.eval import cli, runner
from sandmle_jax.models import small_tokenizer, tokenizer as tokenizer_lib
from sandmle_jax.monitoring import console
from sandmle_jax.rl import sft_data

# Which finished episodes become SFT data (failed ones never do).
FILTERS: dict[str, Callable[[EpisodeInfo], bool]] = {
    "all": lambda info: True,
    "valid": lambda info: info.valid_submission,
    "above_median": lambda info: info.above_median,
    "medal": lambda info: info.medal is not None,
}
LEDGER = "episodes.jsonl"
ROWS = "rows.jsonl"


def model_name(request: cli.EvalRequest) -> str:
    """Who wrote the turns, for provenance."""
    if request.policy == "reference":
        return f"reference:{request.tier}"
    if request.policy == "openai":
        return f"{request.openai_base_url} {request.openai_model}"
    if request.policy == "sglang" and request.sglang_urls:
        return ",".join(request.sglang_urls)
    return str(request.model_dir or "")


def check(request: cli.EvalRequest, keep: str) -> None:
    if keep not in FILTERS:
        raise ConfigError(f"--filter {keep!r} unknown; known: {sorted(FILTERS)}")
    if len(request.scaffolds) != 1:
        raise ConfigError("collect plays one scaffold: name one with --scaffold")


async def collect(config, request: cli.EvalRequest, keep: str = "valid",
                  student_dir: str | pathlib.Path | None = None) -> dict[str, Any]:
    """Plays what the ledger under `request.out` lacks, appends kept conversations, rebuilds the
    student's rows and returns (and writes) the summary."""
    check(request, keep)
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    ledger = out / LEDGER
    done = {r["episode_id"] for r in sft_data.read_lines(ledger) if not _failed(r)}
    scaffold = request.scaffolds[0]
    provenance = {"policy": request.policy, "model": model_name(request), "scaffold": scaffold}
    async with cli.players(config, request) as p:
        jobs = [job for job in runner.evaluation_jobs(p.tasks, request.seeds, "collect")
                if job[2] not in done]
        policy_for_seed = cli.policy_factory(request, p.chat, p.engine, config.eval, scaffold)

        def record(i: int, trajectory: Trajectory) -> None:
            seed, _, episode_id = jobs[i]
            kept = not trajectory.failed and FILTERS[keep](trajectory.info)
            sft_data.write_lines(ledger, [{"episode_id": episode_id, "seed": seed,
                                           "kept": kept, "reward": trajectory.reward,
                                           **trajectory.to_dict()["info"]}])
            if kept:
                sft_data.write_lines(out / sft_data.FILE, _conversations(
                    trajectory, p.chat, provenance | {"seed": seed, "episode_id": episode_id}))

        await runner.run_episodes(
            [(task, episode_id) for _, task, episode_id in jobs],
            lambda i: policy_for_seed(jobs[i][0]), p.chat, p.pool,
            p.agent, concurrency=config.rollout.concurrency,
            desc="collect", open_scaffold=cli.SCAFFOLDS[scaffold], on_done=record)
    student = pathlib.Path(student_dir or request.model_dir
                           or small_tokenizer.qwen3_tokenizer_dir())
    rows = write_rows(out, ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(student))))
    summary = _summary(sft_data.read_lines(ledger)) | {
        "played_now": len(jobs), "filter": keep, "rows": rows, "student_tokenizer": str(student),
        **provenance}
    (out / "collect.json").write_text(json.dumps(summary, indent=2))
    console.stage(f"collected: {summary['kept']} of {summary['episodes']} episodes kept "
                  f"({keep}), {summary['failed']} failed, {rows} rows for {student} in {out}")
    return summary


def write_rows(out: pathlib.Path, student: ChatFormat) -> int:
    """Rewrites rows.jsonl from sft.jsonl in the student's tokenizer; returns the row count."""
    records = sft_data.read_lines(out / sft_data.FILE)
    path = out / ROWS
    path.unlink(missing_ok=True)
    lines = []
    for record in records:
        ids, mask = sft_data.render(record["messages"], student)
        lines.append({"ids": ids, "loss_mask": mask, "provenance": record["provenance"]})
    return sft_data.write_lines(path, lines)


def _conversations(trajectory: Trajectory, chat: ChatFormat, provenance: dict[str, Any]
                   ) -> list[dict[str, Any]]:
    info = trajectory.info
    about = provenance | {"task_id": info.task_id, "score": info.score,
                          "reward": trajectory.reward, "medal": info.medal,
                          "valid_submission": info.valid_submission,
                          "termination": info.termination}
    return [{"messages": sft_data.messages_of(sequence, chat),
             "provenance": about | {"sequence": k}}
            for k, sequence in enumerate(trajectory.sequences)]


def _failed(record: dict[str, Any]) -> bool:
    return record["termination"] in FAILED


def _summary(ledger: list[dict[str, Any]]) -> dict[str, int]:
    """Counts over the latest record of each episode."""
    latest = {r["episode_id"]: r for r in ledger}
    return {"episodes": len(latest), "kept": sum(r["kept"] for r in latest.values()),
            "failed": sum(_failed(r) for r in latest.values())}
