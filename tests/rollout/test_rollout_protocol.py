"""SGLang wire format: our bodies parse back to what we sent, and SGLang-shaped replies parse."""

import pytest

from sandmle_jax.rollout import sglang_protocol as proto
from sandmle_jax.rollout.engine import (FinishReason, GenerateRequest, GenerateResult,
                                        SamplingParams, make_engine, next_version)


def test_generate_body_round_trip():
    params = SamplingParams(temperature=0.7, top_p=0.9, top_k=20, max_new_tokens=5,
                            stop_token_ids=(7,), stop=("</answer>",), seed=3)
    req = GenerateRequest("r1", (1, 2, 3), params)
    body = proto.generate_body(req)
    assert body == {"rid": "r1", "input_ids": [1, 2, 3], "return_logprob": True, "stream": False,
                    "sampling_params": {"temperature": 0.7, "top_p": 0.9, "top_k": 20,
                                        "max_new_tokens": 5, "stop_token_ids": [7],
                                        "stop": ["</answer>"], "sampling_seed": 3}}
    [back], is_batch = proto.parse_generate_body(body)
    assert back == req and not is_batch


def test_batch_body_expands_rid_prefix_and_ignores_unknown_fields():
    body = {"input_ids": [[1, 2], [3]], "rid": "b", "sampling_params": {"top_k": None},
            "return_hidden_states": False, "some_future_field": 1}
    reqs, is_batch = proto.parse_generate_body(body)
    assert is_batch and [r.request_id for r in reqs] == ["b_0", "b_1"]
    assert reqs[1].input_ids == (3,) and reqs[0].sampling_params.top_k == -1


def test_unsupported_sampling_knob_is_refused_by_name():
    with pytest.raises(proto.ProtocolError, match="frequency_penalty"):
        proto.parse_generate_body({"input_ids": [1], "sampling_params": {"frequency_penalty": 0.5}})
    # At SGLang's default it is accepted.
    proto.parse_generate_body({"input_ids": [1], "sampling_params": {"frequency_penalty": 0.0}})


def test_text_prompt_without_tokenizer_says_how_to_fix():
    with pytest.raises(proto.ProtocolError, match="send input_ids"):
        proto.parse_generate_body({"text": "hi"})


def test_sglang_reply_parses():
    # Shape of a real SGLang /generate reply with return_logprob and --skip-tokenizer-init.
    reply = {"output_ids": [5, 151645], "meta_info": {
        "id": "r1", "finish_reason": {"type": "stop", "matched": 151645}, "prompt_tokens": 3,
        "weight_version": "7", "completion_tokens": 2, "cached_tokens": 0,
        "output_token_logprobs": [[-0.5, 5, None], [-0.25, 151645, None]], "e2e_latency": 0.1}}
    res = proto.result_from_json(reply, GenerateRequest("r1", (1, 2, 3)))
    assert res == GenerateResult("r1", (5, 151645), (-0.5, -0.25),
                                 FinishReason("stop", matched=151645), "7", 3)


def test_result_json_round_trip_and_finish_shapes():
    res = GenerateResult("x", (4, 5), (-1.0, -2.0), FinishReason("length", length=2), "3", 1)
    out = proto.result_to_json(res, return_logprob=True, e2e_latency=0.0)
    assert out["meta_info"]["finish_reason"] == {"type": "length", "length": 2}
    assert out["meta_info"]["output_token_logprobs"] == [[-1.0, 4, None], [-2.0, 5, None]]
    assert proto.result_from_json(out, GenerateRequest("x", (9,))) == res
    abort = proto.finish_reason_to_json(FinishReason("abort", message="paused"))
    assert abort == {"type": "abort", "message": "paused"}


def test_reply_without_logprobs_is_an_error():
    with pytest.raises(proto.ProtocolError, match="return_logprob"):
        proto.result_from_json({"output_ids": [1], "meta_info": {"finish_reason": None}},
                               GenerateRequest("r", (1,)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=-1.0), "temperature"), (dict(top_p=0.0), "top_p"),
    (dict(top_k=0), "top_k"), (dict(max_new_tokens=-1), "max_new_tokens")])
def test_sampling_params_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SamplingParams(**kwargs)


def test_registry_and_versions():
    with pytest.raises(KeyError, match="unknown rollout engine"):
        make_engine("nope")
    engine = make_engine("sglang", urls=["http://127.0.0.1:1"])
    assert engine.weight_version == "default"
    assert next_version("4") == "5" and next_version("default") == "default+1"
