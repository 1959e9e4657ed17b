"""Running a policy over tasks x seeds, concurrently, with a progress bar.

Every episode comes back as a Trajectory, failed ones included (their termination says why), so
a report can count what was dropped instead of silently losing it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence

from tqdm.auto import tqdm

from sandmle_jax.agent import loop, react
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.config import AgentConfig
from sandmle_jax.agent.policy import Policy
from sandmle_jax.agent.trajectory import Trajectory
from sandmle_jax.eval import report
from sandmle_jax.tasks.task import Task


async def run_episodes(jobs: Sequence[tuple[Task, str]], policy_for: Callable[[int], Policy],
                       chat: ChatFormat, runner, config: AgentConfig, *,
                       concurrency: int = 8, desc: str = "episodes", progress: bool = True,
                       open_scaffold: loop.OpenScaffold = react.open_scaffold,
                       on_done: Callable[[int, Trajectory], None] | None = None
                       ) -> list[Trajectory]:
    """Plays one episode per (task, episode_id) job in the scaffold `open_scaffold` makes;
    results in job order.

    `policy_for(i)` gives the policy of job i (e.g. one sampling seed per job, or a fixed one);
    `on_done(i, trajectory)` sees each episode as it ends (to record it before the rest finish).
    """
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, leave=False)

    async def one(i: int, task: Task, episode_id: str) -> Trajectory:
        async with gate:
            trajectory = await loop.run_episode(task, policy_for(i), chat, runner, config,
                                                episode_id, open_scaffold=open_scaffold)
        if on_done is not None:
            on_done(i, trajectory)
        bar.update(1)
        return trajectory

    try:
        return list(await asyncio.gather(*(one(i, t, e) for i, (t, e) in enumerate(jobs))))
    finally:
        bar.close()


def evaluation_jobs(tasks: Sequence[Task], seeds: int, prefix: str = "eval"
                    ) -> list[tuple[int, Task, str]]:
    """(seed, task, episode id) for each task once per seed; the ids make sampling reproducible."""
    return [(seed, task, f"{prefix}-{task.id}-s{seed}") for seed in range(seeds)
            for task in tasks]


# (jobs, policy_for) -> their trajectories in job order: how an evaluation's episodes are played
Player = Callable[[list[tuple[Task, str]], Callable[[int], Policy]],
                  Awaitable[list[Trajectory]]]


async def evaluate(tasks: Sequence[Task], policy_for_seed: Callable[[int], Policy],
                   chat: ChatFormat, runner, config: AgentConfig, *, seeds: int = 1,
                   concurrency: int = 8, prefix: str = "eval", progress: bool = True,
                   open_scaffold: loop.OpenScaffold = react.open_scaffold,
                   play: Player | None = None) -> tuple[dict, list[tuple[int, Trajectory]]]:
    """Each task once per seed; returns the summary and the (seed, trajectory) results.
    `play` replaces `run_episodes` (the trainer splits the episodes over its processes)."""
    jobs = evaluation_jobs(tasks, seeds, prefix)
    if play is None:
        play = functools.partial(run_episodes, chat=chat, runner=runner, config=config,
                                 concurrency=concurrency, desc=prefix, progress=progress,
                                 open_scaffold=open_scaffold)
    trajectories = await play([(task, episode_id) for _, task, episode_id in jobs],
                              lambda i: policy_for_seed(jobs[i][0]))
    results = [(seed, t) for (seed, _, _), t in zip(jobs, trajectories)]
    return report.summarize(results), results
