"""Token-level conversation building matches the real Qwen3 chat template, token for token."""

from sandmle_jax.agent import prompts
from sandmle_jax.agent.chat import ChatFormat


def test_incremental_ids_equal_the_template(qwen_tokenizer):
    chat = ChatFormat.from_tokenizer(qwen_tokenizer)
    system, user = "You solve tasks.", "Predict y."
    turn1 = ('<think>\nLook first.\n</think>\n\n<tool_call>\n{"name": "run_python", '
             '"arguments": {"code": "print(1)"}}\n</tool_call>')
    turn2 = "<think>\nDone.\n</think>\n\n<answer>ok</answer>"
    # What we build: prompt (with the generation header), generated ids + closing, observation,
    # header, generated ids (ending on <|im_end|> as a model stops), closing.
    ids = chat.prompt_ids(system, user, prompts.TOOL_SCHEMAS)
    generated1 = chat.encode(turn1)  # stopped by max tokens: no <|im_end|> in the output
    ids += generated1 + chat.close_turn_ids(generated1)
    ids += chat.observation_ids("1") + chat.header_ids()
    generated2 = chat.encode(turn2) + [chat.im_end_id]
    ids += generated2 + chat.close_turn_ids(generated2)
    # What the template renders for the same conversation.
    messages = [
        {"role": "system", "content": system}, {"role": "user", "content": user},
        {"role": "assistant", "content": turn1}, {"role": "tool", "content": "1"},
        {"role": "assistant", "content": turn2}]
    text = qwen_tokenizer.apply_chat_template(messages, tools=list(prompts.TOOL_SCHEMAS),
                                              tokenize=False)
    assert chat.decode(ids) == text
    assert ids == chat.encode(text)


def test_turn_text_drops_end_token(qwen_tokenizer):
    chat = ChatFormat.from_tokenizer(qwen_tokenizer)
    ids = chat.encode("<think>a</think>") + [chat.im_end_id]
    assert chat.turn_text(ids) == "<think>a</think>"
    assert chat.close_turn_ids(ids) == chat.encode("\n")
    assert chat.close_turn_ids(ids[:-1]) == chat.encode("<|im_end|>\n")
