"""Pruning follows the paper: error turns go first, then all but the last two messages."""

from sandmle_jax.agent.context import Context, Message


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
