"""The reference agent: a scripted policy that writes real solutions in the exact action format.

Its plan: look at the data (or not: `explore=False`; the prompt lists every file's first lines),
train a model of its tier and write submission.csv, score it, then answer. When its program
fails it falls back to the constant tier once. Its thoughts never name the tier: the program's
model lines are the one place where a policy that imitates it makes that choice, so nothing
earlier can contradict it. Its program's thought opens with the prompt's grading line, so that a
policy that imitates it writes the metric down where its program names the task's kind (the
tiny families recipe also drops the exploration turn to bring the prompt's line closer; what
that did and did not teach: benchmarks/RESULTS.md). It talks through the same loop, chat format
and tools as a model does, so its episodes are SFT data (tokens with loss masks) and a baseline
row in evaluation. Its log-probs are 0: it is not a sampling policy.
"""

from __future__ import annotations

import dataclasses

from sandmle_jax.agent import actions, prompts, strategies
from sandmle_jax.agent.chat import IM_END, ChatFormat
from sandmle_jax.agent.policy import TurnOutput, TurnRequest

VERSION = "reference"


def _turn(thought: str, action: str) -> str:
    return f"<think>\n{thought}\n</think>\n\n{action}"


@dataclasses.dataclass
class ReferencePolicy:
    chat: ChatFormat
    tier: str = strategies.TUNED
    shared: bool = False  # strategies.solution_code's shared programs
    explore: bool = True  # look at the data before the program (False: the program comes first)

    def __post_init__(self):
        strategies.check_tier(self.tier)

    def _plan(self, request: TurnRequest) -> str:
        task, tier = request.task, self.tier
        last = request.last_observation or ""
        program_turn = 1 if self.explore else 0
        if request.turn < program_turn:
            return _turn("Let me look at the data files and their columns first.",
                         actions.render_tool_call(actions.RUN_PYTHON,
                                                  {"code": strategies.EXPLORE}))
        if request.turn == program_turn:
            grading = prompts.grading_line(task.spec.metric, task.spec.lower_is_better)
            return _turn(f"{grading} I will engineer features by column type, fit a model of "
                         "its kind, then write submission.csv in the sample submission's format.",
                         actions.render_tool_call(actions.RUN_PYTHON,
                                                  {"code": strategies.solution_code(
                                                      task, tier, shared=self.shared)}))
        if request.turn == program_turn + 1 and "submission.csv: exists" not in last:
            return _turn("The program failed; I fall back to a simple constant baseline.",
                         actions.render_tool_call(actions.RUN_PYTHON, {
                             "code": strategies.solution_code(task, "constant",
                                                              shared=self.shared)}))
        if "score:" not in last and "invalid submission" not in last:
            return _turn("The submission is written; let me score it.",
                         actions.render_tool_call(actions.SCORE, {}))
        return _turn("The submission is scored; I am done.",
                     "<answer>Trained a model and wrote submission.csv.</answer>")

    async def next_turn(self, request: TurnRequest) -> TurnOutput:
        ids = self.chat.encode(self._plan(request) + IM_END)
        ids = ids[:request.max_new_tokens]
        finish = "stop" if ids and ids[-1] == self.chat.im_end_id else "length"
        return TurnOutput(ids=tuple(ids), logprobs=(0.0,) * len(ids), finish=finish,
                          weight_version=VERSION)
