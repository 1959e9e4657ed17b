"""Orbax checkpoints of a training run: state pytree, data cursor and config, resumable exactly.

Each step directory holds three Orbax items:
  state   the train state pytree (params, optimizer state, step, RNG), saved with its shardings
  cursor  a JSON dict: where the data/curriculum stream stands (the trainer's to define)
  config  the run's config as a JSON dict
Saves are asynchronous (`wait()` to block); retention keeps the last `keep_last` steps plus the
`keep_best` best by `best_metric`. Orbax does every write and coordinates hosts itself (each host
writes its shards, the primary host the JSON and metadata); this module writes no files.

Restore order: the state is restored into the abstract target's shardings, then cursor, then
config, all from one step. `restore_latest` walks back from the newest step and skips a step
that fails to restore (truncated or missing files), warning with the error; an interrupted save
leaves only an Orbax temporary directory, which is never a step and is cleaned up on start.

`read_only=True` (exports, evaluations of a live run) never creates, saves, deletes or cleans
up anything: another process may be saving into the directory at that moment, and an Orbax
temporary directory there is its save in flight.
"""

import dataclasses
import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

_ITEMS = ("state", "cursor", "config")


@dataclasses.dataclass(frozen=True)
class Restored:
    step: int
    state: Any
    cursor: dict[str, Any]
    config: dict[str, Any]


def abstract_like(tree: Any) -> Any:
    """The restore target for a pytree shaped like `tree`: shapes, dtypes and shardings."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                        tree)


class Checkpointer:
    """A thin wrapper over `ocp.CheckpointManager` fixing the items and the retention policy."""

    def __init__(self, directory: str | pathlib.Path, *, keep_last: int = 3,
                 best_metric: str | None = None, best_mode: str = "max", keep_best: int = 1,
                 async_save: bool = True, read_only: bool = False):
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1 (the latest step is needed to resume), "
                             f"got {keep_last}")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
        self.best_metric = best_metric
        self.best_mode = best_mode
        worst = float("-inf") if best_mode == "max" else float("inf")

        def metric_of(metrics: dict[str, float]) -> float:
            """A step saved without this metric (e.g. under another best_metric) ranks worst."""
            return float(metrics.get(best_metric, worst))

        policies = [checkpoint_managers.LatestN(n=keep_last)]
        if best_metric is not None:
            policies.append(checkpoint_managers.BestN(
                get_metric_fn=metric_of,
                reverse=best_mode == "min", n=keep_best, keep_checkpoints_without_metrics=False))
        # best_fn makes Orbax persist each step's metrics (so best-N survives a restart) and
        # answer best_step(); deletion follows the preservation policy.
        options = ocp.CheckpointManagerOptions(
            best_fn=None if best_metric is None else metric_of,
            best_mode=best_mode,
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save and not read_only,
            cleanup_tmp_directories=not read_only, create=not read_only, read_only=read_only,
            save_interval_steps=0 if read_only else 1)
        self.read_only = read_only
        self.directory = pathlib.Path(directory).absolute()
        if read_only and not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory}: no such checkpoint directory")
        self._manager = ocp.CheckpointManager(self.directory, item_names=_ITEMS, options=options)

    def save(self, step: int, state: Any, *, cursor: dict[str, Any], config: dict[str, Any],
             metrics: dict[str, float] | None = None) -> bool:
        """Start saving `step` (returns at once when async). Metrics feed the best-N policy."""
        if self.read_only:
            raise RuntimeError(f"{self.directory} was opened read-only; it cannot be saved to")
        if self.best_metric is not None and (metrics is None or self.best_metric not in metrics):
            raise ValueError(f"best_metric {self.best_metric!r} missing from the metrics of step "
                             f"{step}: pass metrics={{'{self.best_metric}': value}}")
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  cursor=ocp.args.JsonSave(cursor),
                                  config=ocp.args.JsonSave(config))
        return self._manager.save(step, args=args, metrics=metrics)

    def wait(self) -> None:
        """Block until pending async saves are on disk."""
        self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def best_step(self) -> int | None:
        """The kept step with the best `best_metric` (None without a metric or checkpoints)."""
        if self.best_metric is None:
            return None
        return self._manager.best_step()

    def restore(self, step: int, abstract_state: Any) -> Restored:
        """Restore one step; arrays land in the shardings of `abstract_state` (see abstract_like)."""
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                  cursor=ocp.args.JsonRestore(), config=ocp.args.JsonRestore())
        out = self._manager.restore(step, args=args)
        return Restored(step=step, state=out["state"], cursor=dict(out["cursor"]),
                        config=dict(out["config"]))

    def restore_latest(self, abstract_state: Any) -> Restored | None:
        """The newest step that restores cleanly; None when there is no checkpoint at all.

        Raises RuntimeError when checkpoints exist but none restores (never a silent restart).
        """
        self.wait()
        failures = []
        for step in reversed(self.steps()):
            try:
                return self.restore(step, abstract_state)
            except Exception as error:  # noqa: BLE001 - any unreadable step is skipped, loudly
                logging.warning("checkpoint step %d in %s does not restore (%s: %s); trying the "
                                "one before it", step, self.directory, type(error).__name__, error)
                failures.append(f"step {step}: {type(error).__name__}: {error}")
        if failures:
            raise RuntimeError(f"no checkpoint in {self.directory} restores:\n" +
                               "\n".join(failures))
        return None

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
