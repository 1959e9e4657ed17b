"""The gradient-boosting libraries the release's agents use (xgboost, lightgbm, catboost): each
imports and fits inside the sandbox under the tiny recipe's limits, with cgroups and with only
per-process rlimits (RLIMIT_AS, where native libraries' address-space reservations bite); the
start-up probe lists only those that import, and the prompt lists what the probe found."""

import pathlib
import runpy

import pytest
from conftest import qwen_tokenizer_dir, write_tabular_task

from sandbox_runner import Episode, Sandbox
from sandmle_jax.agent import config as agent_config, prompts, react, sandbox_setup
from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.models import tokenizer as tokenizer_lib
from sandmle_jax.tasks import task as task_lib

ROOT = pathlib.Path(__file__).resolve().parents[2]

FIT = {
    "xgboost": "from xgboost import XGBClassifier as Model\nkw = dict(n_estimators=50, "
               "max_depth=3)",
    "lightgbm": "from lightgbm import LGBMClassifier as Model\nkw = dict(n_estimators=50, "
                "min_child_samples=5, verbose=-1)",
    "catboost": "from catboost import CatBoostClassifier as Model\nkw = dict(iterations=50, "
                "depth=4, verbose=0, allow_writing_files=False)",
}
PROGRAM = """{fit}
import os
import numpy as np
import pandas as pd
train = pd.read_csv(os.path.join(os.environ["PUBLIC_DIR"], "train.csv"))
X = train[["x1", "x2"]].to_numpy()
y = train["label"].to_numpy()
model = Model(random_state=0, **kw).fit(X[:100], y[:100])
accuracy = float((model.predict(X[100:]) == y[100:]).mean())
print("accuracy", accuracy)
"""


@pytest.fixture(scope="module")
def limits():
    config = runpy.run_path(str(ROOT / "configs" / "tiny_cpu.py"))["get_config"]()
    return agent_config.agent_config_from(config).exec_limits


@pytest.mark.parametrize("use_cgroups", [True, False], ids=["cgroups", "rlimits_only"])
@pytest.mark.parametrize("library", sorted(FIT))
def test_each_library_fits_inside_the_isolation(tmp_path, limits, library, use_cgroups):
    task = write_tabular_task(tmp_path / "task")
    sandbox = Sandbox(min_isolation="bwrap", use_cgroups=use_cgroups)
    with Episode(task.public_dir, sandbox, limits) as episode:
        result = sandbox.run(episode.request(code=PROGRAM.format(fit=FIT[library]),
                                             env={"PUBLIC_DIR": str(episode.public_dir)}))
    assert result.exit_code == 0, result.stderr_tail[-2000:]
    assert result.isolation == "bwrap"
    accuracy = float(result.stdout_tail.split("accuracy")[-1])
    assert accuracy > 0.7, accuracy  # a learnable table: every library learns it


def test_the_probe_lists_what_imports_and_only_that():
    sandbox = Sandbox(min_isolation="bwrap")
    assert sandbox_setup.check_sandbox(sandbox) == (prompts.REQUIRED_LIBRARIES
                                                   + prompts.OPTIONAL_LIBRARIES)
    found = sandbox_setup.check_sandbox(sandbox, optional=("catboost", "no_such_library_xyz"))
    assert found == prompts.REQUIRED_LIBRARIES + ("catboost",)


def test_the_prompt_lists_the_probed_libraries(tmp_path):
    task = task_lib.load_task(write_tabular_task(tmp_path / "task").root)
    chat = ChatFormat.from_tokenizer(tokenizer_lib.load_tokenizer(str(qwen_tokenizer_dir())))
    with_all = agent_config.AgentConfig(libraries=prompts.REQUIRED_LIBRARIES + ("lightgbm",))
    text = chat.decode(react.build_prompt(task, chat, with_all))
    assert "Available libraries: numpy, pandas, scikit-learn, scipy, lightgbm (and" in text
    plain = chat.decode(react.build_prompt(task, chat, agent_config.AgentConfig()))
    assert "lightgbm" not in plain and "xgboost" not in plain
