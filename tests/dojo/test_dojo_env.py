"""The MLE-Dojo-style Gymnasium environment over our tasks, in the real bwrap sandbox: gymnasium's
own checker, each action's contract, grading against independent references, and containment of
programs that reach for hidden data."""

import json
import warnings

import gymnasium
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from sklearn.metrics import roc_auc_score

from conftest import write_tabular_task

from sandbox_runner import Limits, Sandbox
from sandmle_jax import dojo
from sandmle_jax.dojo import env as env_lib
from sandmle_jax.tasks import task as task_lib

LIMITS = Limits(wall_s=60, memory_bytes=2 << 30)
SOLUTION = """import pandas as pd
from sklearn.linear_model import LogisticRegression
train, test = pd.read_csv('data/train.csv'), pd.read_csv('data/test.csv')
X = pd.get_dummies(train.drop(columns=['id', 'label']))
Xt = pd.get_dummies(test.drop(columns=['id'])).reindex(columns=X.columns, fill_value=0)
p = LogisticRegression().fit(X, train.label).predict_proba(Xt)[:, 1]
pd.DataFrame({'id': test.id, 'label': p}).to_csv('submission.csv', index=False)
print('wrote')
"""


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(min_isolation="bwrap")


@pytest.fixture
def task(tmp_path):
    return write_tabular_task(tmp_path / "task")


@pytest.fixture
def env(task, sandbox, tmp_path):
    environment = env_lib.MLETaskEnv(task, sandbox, limits=LIMITS,
                                     workspace_root=tmp_path / "ws")
    environment.reset(seed=0)
    yield environment
    environment.close()


def _step(env, name, **params):
    return env.step({"action": name, "params": params})


def test_gymnasium_make_and_its_checker(task, tmp_path):
    made = gymnasium.make(dojo.ENV_ID, task=str(task.root), limits=LIMITS,
                          workspace_root=str(tmp_path / "ws"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its advice on infinite Box bounds and render fps
        check_env(made.unwrapped)
    observation, _ = made.reset(seed=1)
    assert observation in made.observation_space
    observation, reward, terminated, truncated, _ = made.step(
        json.dumps({"action": "request_info", "params": {"info_type": "name"}}))
    assert observation["feedback"] == "## name\ntoy-churn" and reward == 0.0
    assert not terminated and not truncated
    made.close()
    limited = gymnasium.make(dojo.ENV_ID, task=str(task.root), max_episode_steps=1,
                             limits=LIMITS, workspace_root=str(tmp_path / "ws"))
    limited.reset()
    assert limited.step('{"action": "get_history"}')[3]  # truncated by gymnasium's TimeLimit
    limited.close()


def test_request_info_shows_public_facts_only(env, task):
    observation, reward, *_ = _step(env, "request_info", info_type="all")
    text = observation["feedback"]
    assert observation["action_status"] == "SUCCESS" and reward == 0.0
    assert "Predict the probability" in text and "train.csv (" in text
    assert f"## data_path\n{env.workspace / 'data'}" in text
    assert f"## output_path\n{env.workspace}" in text
    assert '"metric": "roc_auc"' in text and "id,label\n120,0.5" in text
    for hidden in ("answers", "private", "thresholds", "0.92"):
        assert hidden not in text
    observation, *_ = _step(env, "request_info", info_type="secrets")
    assert observation["action_status"] == "FAILED" and "known:" in observation["feedback"]


def test_validate_code_never_grades_and_leaves_no_submission(env):
    observation, reward, *_ = _step(env, "validate_code", code=SOLUTION)
    assert observation["action_status"] == "SUCCESS" and reward == 0.0
    assert "wrote" in observation["feedback"] and "never grades" in observation["feedback"]
    assert not (env.workspace / "submission.csv").exists()
    assert observation["has_score"] == 0 and env.best_report is None
    for planted in ("import os; os.mkdir('submission.csv'); open('submission.csv/x', 'w')",
                    "import os; open('keep.csv', 'w').write('x'); "
                    "os.symlink('keep.csv', 'submission.csv')"):
        observation, *_ = _step(env, "validate_code", code=planted)
        assert observation["action_status"] == "SUCCESS", observation["feedback"]
        assert not (env.workspace / "submission.csv").exists()
    assert (env.workspace / "keep.csv").read_text() == "x"  # a link's target is kept
    observation, *_ = _step(env, "validate_code", code="def f(:\n  pass")
    assert observation["action_status"] == "FAILED"
    assert observation["feedback"].startswith("syntax error: line 1")


def test_execute_code_scores_like_sklearn_and_keeps_the_best(env, task):
    observation, reward, _, _, info = _step(env, "execute_code", code=SOLUTION)
    assert observation["action_status"] == "SUCCESS", observation["feedback"]
    submitted = pd.read_csv(env.workspace / "submission.csv")
    expected = roc_auc_score(task.answers.sort_values("id")["label"],
                             submitted.sort_values("id")["label"])
    assert info["raw_score"] == pytest.approx(expected, abs=1e-12)
    assert float(observation["best_raw_score"]) == pytest.approx(expected, abs=1e-12)
    levels = task.spec.thresholds
    reached = sum(expected >= t for t in (levels.median, levels.bronze, levels.silver,
                                          levels.gold)) / 4
    assert reward == info["position_score"] == reached  # no leaderboard: the threshold share
    assert observation["position_basis"] == "thresholds"
    worse = "import pandas as pd\ns = pd.read_csv('data/sample_submission.csv')\n" \
            "s.to_csv('submission.csv', index=False)"
    observation, reward, *_ = _step(env, "execute_code", code=worse)
    assert float(observation["current_raw_score"]) == pytest.approx(0.5)
    assert float(observation["best_raw_score"]) == pytest.approx(expected)
    assert env.best_report.score == pytest.approx(expected) and env.best_code == SOLUTION
    assert float(observation["total_reward"]) == pytest.approx(reached + reward)


def test_execute_code_with_a_malformed_submission_returns_the_graders_reason(env, task):
    code = "open('submission.csv', 'w').write('id,label\\n1,0.5\\n')"
    observation, reward, _, _, info = _step(env, "execute_code", code=code)
    assert observation["action_status"] == "FAILED" and reward == 0.0
    assert "test ids missing" in info["error"]
    assert f"invalid submission: {info['error']}" in observation["feedback"]
    observation, *_ = _step(env, "execute_code", code="raise SystemExit(3)")
    assert "exit code 3" in observation["feedback"]
    assert "not graded, the code failed" in observation["feedback"]
    assert observation["has_score"] == 0


def test_position_score_is_humanrank_where_a_leaderboard_exists(tmp_path, sandbox):
    base = write_tabular_task(tmp_path / "base")
    board = pd.DataFrame({"score": np.linspace(0.5, 0.99, 40)})
    spec = task_lib.TaskSpec(**{**base.spec.to_dict(), "checksums": {},
                                "thresholds": base.spec.thresholds,
                                "leaderboard": "private/leaderboard.csv"})
    public = {p.name: p for p in base.public_dir.iterdir()}
    task = task_lib.save_task(tmp_path / "ranked", spec, public=public, private={
        "answers.csv": base.private_dir / "answers.csv", "leaderboard.csv": board})
    env = env_lib.MLETaskEnv(task, sandbox, limits=LIMITS, workspace_root=tmp_path / "ws")
    env.reset()
    _, reward, _, _, info = _step(env, "execute_code", code=SOLUTION)
    scores = np.sort(board["score"].to_numpy())[::-1]  # best first
    position = next((i + 1 for i, s in enumerate(scores) if info["raw_score"] >= s),
                    len(scores) + 1)
    assert reward == pytest.approx((len(scores) - position + 1) / len(scores))
    assert info["position_basis"] == "leaderboard"
    env.close()


def test_programs_cannot_reach_hidden_data_or_write_outside(env, task, tmp_path):
    answers = task.private_dir / "answers.csv"
    probe = (f"import os\nprint('answers', os.path.exists({str(answers)!r}))\n"
             f"print('up', os.path.exists('data/../private/answers.csv'))\n"
             f"try:\n    open({str(task.public_dir / 'train.csv')!r}, 'a').write('x')\n"
             f"    print('data writable')\nexcept OSError:\n    print('data read-only')\n"
             f"for path in ({str(tmp_path / 'escape.txt')!r}, {str(task.root / 'x.txt')!r}):\n"
             f"    try:\n        open(path, 'w').write('x')\n    except OSError:\n"
             f"        pass\n")
    observation, *_ = _step(env, "execute_code", code=probe)
    text = observation["feedback"]
    assert "answers False" in text and "up False" in text, text
    assert "data read-only" in text, text
    # Paths outside the workspace are either absent or the sandbox's own scratch: never the host's.
    assert not (tmp_path / "escape.txt").exists() and not (task.root / "x.txt").exists()
    link = f"import os\nos.symlink({str(answers)!r}, 'submission.csv')"
    observation, *_ = _step(env, "execute_code", code=link)
    assert observation["action_status"] == "FAILED" and "symlink" in observation["feedback"]


def test_bad_actions_are_answered_not_raised(env, task, sandbox, tmp_path):
    for action in ("{not json", '{"action": "fly"}', '{"action": "execute_code"}',
                   {"action": "validate_code", "params": {"code": "  "}}, 42):
        observation, reward, terminated, truncated, info = env.step(action)
        assert observation["action_status"] == "FAILED" and reward == 0.0
        assert observation["feedback"].startswith("invalid action: "), observation["feedback"]
    observation, *_ = env.step("request_info", info_type="name")  # MLE-Dojo's call form
    assert observation["feedback"] == "## name\ntoy-churn"
    fresh = env_lib.MLETaskEnv(task, sandbox, limits=LIMITS, workspace_root=tmp_path / "ws")
    with pytest.raises(gymnasium.error.ResetNeeded):
        fresh.step('{"action": "get_history"}')


def test_reset_action_gives_a_fresh_workspace_and_state(env):
    _step(env, "execute_code", code=SOLUTION)
    old = env.workspace
    observation, reward, *_ = _step(env, "reset")
    assert observation["action_status"] == "RESET" and observation["has_score"] == 0
    assert env.workspace != old and not old.exists()
    assert not (env.workspace / "submission.csv").exists() and env.history == []
