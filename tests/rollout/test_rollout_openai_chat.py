"""The chat client on the official `openai` package against an endpoint that behaves like a
reasoning model (a scripted HTTP server: no hosted model is reachable from here): refusals of
temperature / max_tokens are detected and the request is re-sent the reasoning way; other
refusals are reported at once."""

import pytest

from benchmarks.scripted_llm import json_endpoint
from sandmle_jax.rollout import openai_chat

MAX_TOKENS_REFUSED = {
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
               "'max_completion_tokens' instead.",
    "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}
TEMPERATURE_REFUSED = {
    "message": "Unsupported value: 'temperature' does not support 0.7 with this model. Only the "
               "default (1) value is supported.",
    "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}


class _Endpoint:
    """Answers "hi" unless the body holds a parameter in `refuse` (then 400 with `error`)."""

    def __init__(self, refuse=("temperature", "max_tokens"), error=MAX_TOKENS_REFUSED):
        self.refuse, self.error = refuse, error
        self.bodies: list[dict] = []

    def __call__(self, path, body):
        self.bodies.append(body)
        if any(key in body for key in self.refuse):
            return 400, {"error": self.error}
        return 200, {"id": "c1", "object": "chat.completion", "created": 0,
                     "model": body["model"], "choices": [{
                         "index": 0, "finish_reason": "length",
                         "message": {"role": "assistant", "content": "hi"}}]}


@pytest.fixture
def endpoint(request):
    server = _Endpoint(**getattr(request, "param", {}))
    with json_endpoint(server) as url:
        server.base_url = f"{url}/v1"
        yield server


MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("endpoint", [{"error": MAX_TOKENS_REFUSED},
                                      {"error": TEMPERATURE_REFUSED}], indirect=True)
def test_auto_switches_to_the_reasoning_style_on_the_first_refusal(endpoint):
    client = openai_chat.ChatClient(endpoint.base_url, "o-model", max_tokens=300, retries=0)
    assert client.reply(MESSAGES) == openai_chat.Reply("hi", "length")
    first, second = endpoint.bodies
    assert first["temperature"] == 0.7 and first["max_tokens"] == 300
    assert "temperature" not in second and "max_tokens" not in second
    assert second["max_completion_tokens"] == 300 and client.reasoning == "on"
    assert client.complete(MESSAGES) == "hi" and len(endpoint.bodies) == 3  # no second refusal


def test_reasoning_on_never_sends_sampling_settings(endpoint):
    client = openai_chat.ChatClient(endpoint.base_url, "o-model", reasoning="on", retries=0)
    assert client.reply(MESSAGES, max_tokens=64).text == "hi"
    (body,) = endpoint.bodies
    assert body["max_completion_tokens"] == 64 and "temperature" not in body


@pytest.mark.parametrize("endpoint", [{"refuse": ("messages",), "error": {
    "message": "messages must not be empty", "type": "invalid_request_error"}}], indirect=True)
def test_other_refusals_are_reported_at_once(endpoint):
    client = openai_chat.ChatClient(endpoint.base_url, "m", retries=3)
    with pytest.raises(openai_chat.ChatError, match="answered 400: .*must not be empty"):
        client.reply(MESSAGES)
    assert len(endpoint.bodies) == 1 and client.reasoning == "auto"


def test_reasoning_off_keeps_the_refusal(endpoint):
    client = openai_chat.ChatClient(endpoint.base_url, "m", reasoning="off", retries=0)
    with pytest.raises(openai_chat.ChatError, match="max_completion_tokens"):
        client.reply(MESSAGES)
    assert len(endpoint.bodies) == 1


def test_an_unreachable_endpoint_is_one_error():
    client = openai_chat.ChatClient("http://127.0.0.1:9/v1", "m", retries=0, timeout_s=5)
    with pytest.raises(openai_chat.ChatError, match="cannot reach"):
        client.reply(MESSAGES)
