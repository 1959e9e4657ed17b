"""Which tasks each step trains on: seeded shuffled epochs over the training tasks.

The cursor (epoch, position) is plain JSON saved with every checkpoint, so a resumed run draws
exactly the tasks the uninterrupted run would have drawn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass
class Curriculum:
    task_ids: Sequence[str]
    seed: int
    epoch: int = 0
    position: int = 0

    def _order(self, epoch: int) -> list[str]:
        rng = np.random.default_rng([self.seed, epoch])
        ids = sorted(self.task_ids)
        return [ids[i] for i in rng.permutation(len(ids))]

    def next(self, count: int) -> list[str]:
        """The next `count` task ids (crossing into the next epoch when needed)."""
        if not self.task_ids:
            raise ValueError("the curriculum has no training tasks")
        out: list[str] = []
        while len(out) < count:
            order = self._order(self.epoch)
            take = order[self.position:self.position + count - len(out)]
            out += take
            self.position += len(take)
            if self.position >= len(order):
                self.epoch, self.position = self.epoch + 1, 0
        return out

    def cursor(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def restore(self, cursor: dict[str, int]) -> None:
        self.epoch, self.position = int(cursor["epoch"]), int(cursor["position"])
