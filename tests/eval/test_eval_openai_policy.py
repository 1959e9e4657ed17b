"""The OpenAI-compatible policy: context ids -> chat messages -> /chat/completions -> turn ids,
against a scripted local endpoint that records what it was sent."""

import asyncio
import http.server
import json
import threading

import pytest

from sandmle_jax.agent.chat import ChatFormat
from sandmle_jax.agent.policy import TurnRequest
from sandmle_jax.eval import openai_policy

REPLY = '<think>\nlook\n</think>\n\n<tool_call>\n{"name": "score", "arguments": {}}\n</tool_call>'


class _Endpoint(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Endpoint.received.append((self.path, self.headers.get("Authorization"), body))
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": REPLY},
                                           "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Endpoint.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_messages_from_text_round_trip(qwen_tokenizer):
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "task"},
                {"role": "assistant", "content": REPLY},
                {"role": "user", "content": "<tool_response>\nok\n</tool_response>"}]
    text = qwen_tokenizer.apply_chat_template(messages, tokenize=False,
                                              add_generation_prompt=True)
    assert openai_policy.messages_from_text(text) == messages


def test_policy_posts_messages_and_encodes_the_reply(endpoint, qwen_tokenizer, monkeypatch,
                                                     binary_task):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    chat = ChatFormat.from_tokenizer(qwen_tokenizer)
    context = chat.prompt_ids("rules", "task", ()) + chat.header_ids()
    policy = openai_policy.OpenAIChatPolicy(chat, endpoint, "some-model", api_key_env="TEST_KEY")
    out = asyncio.run(policy.next_turn(TurnRequest("e", 0, tuple(context), 256,
                                                   (chat.im_end_id,), binary_task, None)))
    ((path, auth, body),) = _Endpoint.received
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
    assert body["model"] == "some-model" and body["max_tokens"] == 256
    assert body["messages"] == [{"role": "system", "content": "rules"},
                                {"role": "user", "content": "task"}]
    assert chat.turn_text(out.ids) == REPLY and out.ids[-1] == chat.im_end_id
    assert out.finish == "stop" and out.weight_version == "openai:some-model"
    assert set(out.logprobs) == {0.0}
