"""Who plays, who exchanges and who writes in a training job of N processes.

Every process runs the whole trainer over the same config, tasks and seed, so every decision that
does not depend on episodes (curriculum, sampling seeds, batching) comes out the same. What
differs is split here:

  * plays: process i plays jobs i, i + N, i + 2N ... of every batch of episodes (a step's rollouts,
    the SFT data, an evaluation), each with the policy and episode id it would have in a
    one-process run;
  * exchanges: the finished trajectories go to every process through JAX's distributed runtime
    (`multihost_utils.process_allgather` of their JSON), back in job order, so every process
    packs the same batch; a checksum of that batch is compared across processes before each
    update;
  * writes: process 0 alone generates the tasks, builds the tiny base model, writes metrics, the
    report and plots; the others wait at a barrier. Orbax checkpoints and the HF export are
    collective (every process calls them; each writes what it owns).
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from sandmle_jax.agent.trajectory import Trajectory


@dataclasses.dataclass(frozen=True)
class Hosts:
    index: int = 0
    count: int = 1

    @classmethod
    def of_this_job(cls) -> Hosts:
        return cls(jax.process_index(), jax.process_count())

    @property
    def writer(self) -> bool:
        """Process 0 writes the run's files that are not collective."""
        return self.index == 0

    def share(self, total: int) -> list[int]:
        """The job indices this process plays, out of `total`."""
        return list(range(self.index, total, self.count))

    def barrier(self, name: str) -> None:
        """Waits until every process got here (after process 0 wrote something they read)."""
        if self.count > 1:
            multihost_utils.sync_global_devices(name)

    def gather_bytes(self, payload: bytes) -> list[bytes]:
        """Every process's `payload`, in process order (a collective: all must call it)."""
        if self.count == 1:
            return [payload]
        sizes = np.asarray(multihost_utils.process_allgather(np.array([len(payload)], np.int64)))
        sizes = sizes.reshape(self.count)
        padded = np.zeros(max(int(sizes.max()), 1), np.uint8)
        padded[:len(payload)] = np.frombuffer(payload, np.uint8)
        rows = np.asarray(multihost_utils.process_allgather(padded)).reshape(self.count, -1)
        return [rows[k, :int(sizes[k])].tobytes() for k in range(self.count)]

    def exchange(self, mine: Sequence[int], played: Sequence[Trajectory], total: int
                 ) -> list[Trajectory]:
        """All `total` trajectories in job order, from each process's share (`mine`, played)."""
        if self.count == 1:
            return list(played)
        payload = json.dumps([[i, t.to_dict()] for i, t in zip(mine, played)]).encode()
        everyone: dict[int, Trajectory] = {}
        for blob in self.gather_bytes(payload):
            for i, data in json.loads(blob):
                everyone[i] = Trajectory.from_dict(data)
        missing = sorted(set(range(total)) - set(everyone))
        if missing:
            raise RuntimeError(f"trajectory exchange lost jobs {missing[:10]} of {total}")
        return [everyone[i] for i in range(total)]

    def check_same(self, what: str, digest: int) -> None:
        """Raises unless every process computed the same `digest` of `what`."""
        if self.count == 1:
            return
        digests = [int.from_bytes(b, "little") for b in self.gather_bytes(
            int(digest).to_bytes(8, "little"))]
        if len(set(digests)) != 1:
            raise RuntimeError(f"processes disagree on {what} (checksums by process: "
                               f"{[f'{d:08x}' for d in digests]}); refusing to update")
        logging.info("%s: checksum %08x on all %d processes", what, digest, self.count)

    def host_copy(self, tree: Any) -> Any:
        """`tree`'s arrays whole on this host (those of a multi-process mesh are gathered), for
        a process-local consumer such as the embedded rollout engine."""
        if self.count == 1:
            return tree
        return multihost_utils.process_allgather(tree, tiled=True)


def batch_digest(micro_batches: Sequence[Any], fields: Sequence[str] | None = None) -> int:
    """crc32 over the arrays of a packed batch: all of them (ids, masks, log-probs, advantages)
    or the named `fields`."""
    digest = 0
    for micro in micro_batches:
        for name in fields or [field.name for field in dataclasses.fields(micro)]:
            digest = zlib.crc32(np.ascontiguousarray(getattr(micro, name)).tobytes(), digest)
    return digest
