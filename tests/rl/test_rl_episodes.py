"""Episode selection: advantages over usable members, timeouts masked after, zero-variance
groups dropped, pruned episodes split into rows sharing one advantage; and the curriculum."""

import numpy as np
import pytest

from sandmle_jax.agent.trajectory import EpisodeInfo, TokenSequence, Trajectory
from sandmle_jax.rl import curriculum, episodes


def _t(reward, termination="answer", executions=0, timeouts=0, sequences=1):
    seqs = tuple(TokenSequence([1, 2, 3 + k], [0, 1, 1], [0.0, -0.1, -0.2])
                 for k in range(sequences))
    info = EpisodeInfo(task_id="t", termination=termination, turns=2, format_rate=1.0,
                       executions=executions, exec_timeouts=timeouts)
    return Trajectory(sequences=seqs, reward=reward, info=info)


def _adv(rewards):
    r = np.asarray(rewards, np.float64)
    return (r - r.mean()) / (r.std(ddof=1) + 1e-6)


def test_failed_dropped_before_and_timeouts_after_advantages():
    group = [_t(1.0), _t(0.0, termination="engine_error"), _t(0.5, executions=4, timeouts=2),
             _t(0.2)]
    chosen = episodes.select([group], episodes.FilterConfig())
    expected = _adv([1.0, 0.5, 0.2])  # the failed one is out; the timed-out one still counts
    assert chosen.failed == 1 and chosen.timed_out == 1 and chosen.kept_episodes == 2
    np.testing.assert_allclose(chosen.advantages, [expected[0], expected[2]], rtol=1e-5)
    assert [r.token_ids for r in chosen.rows] == [(1, 2, 3), (1, 2, 3)]


def test_zero_variance_groups_and_small_groups():
    groups = [[_t(0.3), _t(0.3)], [_t(1.0), _t(0.0, termination="sandbox_error")],
              [_t(1.0), _t(0.0)]]
    chosen = episodes.select(groups, episodes.FilterConfig())
    assert chosen.zero_variance_groups == 1 and chosen.kept_episodes == 2
    kept = episodes.select(groups, episodes.FilterConfig(drop_zero_variance=False))
    assert kept.kept_episodes == 4 and kept.advantages[:2] == [0.0, 0.0]


def test_pruned_episode_rows_share_its_advantage():
    chosen = episodes.select([[_t(1.0, sequences=3), _t(0.0)]], episodes.FilterConfig(
        std_normalize=False))
    assert chosen.advantages == [0.5, 0.5, 0.5, -0.5]
    assert len({r.token_ids for r in chosen.rows[:3]}) == 3


def test_curriculum_is_deterministic_covers_epochs_and_resumes():
    ids = [f"task{i}" for i in range(5)]
    a = curriculum.Curriculum(ids, seed=3)
    first = a.next(3) + a.next(3)
    assert sorted(first[:5]) == ids  # one full epoch before any repeat
    b = curriculum.Curriculum(ids, seed=3)
    b.next(3)
    cursor = b.cursor()
    c = curriculum.Curriculum(ids, seed=3)
    c.restore(cursor)
    assert c.next(3) == first[3:]
    with pytest.raises(ValueError):
        curriculum.Curriculum([], seed=0).next(1)
