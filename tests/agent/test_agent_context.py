"""Pruning follows the paper: error turns go first, then all but the last two messages; an
observation never takes the room of the turn after it."""

from sandmle_jax.agent.context import (CUT_MARK, MIN_OBSERVATION_TOKENS, Context, Message,
                                       fit_observation)


def _context(errors, size=10, max_tokens=100):
    ctx = Context(prompt_ids=[1] * 20, header_ids=[2, 3], max_tokens=max_tokens)
    for i, is_error in enumerate(errors):
        ctx.messages.append(Message([100 + i] * size, "assistant"))
        ctx.messages.append(Message([200 + i] * size, "observation", is_error))
    return ctx


def test_no_pruning_when_room():
    ctx = _context([False, True])
    assert ctx.room() == 100 - 20 - 40 - 2
    assert not ctx.prune(min_room=30) and len(ctx.messages) == 4


def test_error_turns_are_dropped_first_oldest_first():
    ctx = _context([False, True, False, True])  # 20 + 80 + 2 = 102 tokens
    assert ctx.prune(min_room=10)
    # Dropping the first error turn (turn 1) frees 20 tokens: room 18 >= 10, so turn 3 stays.
    firsts = [m.ids[0] for m in ctx.messages]
    assert firsts == [100, 200, 102, 202, 103, 203]


def test_falls_back_to_last_two_messages():
    ctx = _context([False, False, False])  # no error turns to drop
    assert ctx.prune(min_room=60)
    assert [m.ids[0] for m in ctx.messages] == [102, 202]
    assert ctx.ids() == [1] * 20 + [102] * 10 + [202] * 10 + [2, 3]


def _render(text):
    return [ord(ch) for ch in text]  # one token per character: budgets are easy to read


def test_an_observation_leaves_a_whole_next_turn_free():
    ctx = _context([], max_tokens=1000)
    ctx.messages.append(Message([7] * 100, "assistant"))
    # prompt 20 + the calling turn 100 + header 2 + next turn 300: 578 for the observation.
    assert ctx.observation_budget(next_turn_tokens=300) == 578
    assert ctx.observation_budget(next_turn_tokens=990) == MIN_OBSERVATION_TOKENS


def test_a_long_observation_keeps_its_status_line_and_its_end():
    lines = ["exit code 0"] + [f"row {i} " + "x" * 40 for i in range(200)] + [
        "submission.csv: exists (1520 bytes)"]
    text = "\n".join(lines)
    cut, ids = fit_observation(text, _render, budget=400)
    assert len(ids) <= 400 and ids == _render(cut)
    assert cut.startswith("exit code 0\n" + CUT_MARK)
    assert cut.endswith("submission.csv: exists (1520 bytes)") and "row 199" in cut
    assert "row 0 " not in cut
    assert fit_observation("exit code 0", _render, 400) == ("exit code 0",
                                                             _render("exit code 0"))
