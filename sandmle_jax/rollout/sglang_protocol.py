"""SGLang's native HTTP wire format, both directions: our contracts <-> JSON bodies.

One module owns the field names so that our client and our server cannot drift apart, and so
that both stay what a real SGLang server sends and accepts. The contract pinned is SGLang
**0.5.23** (`SGLANG_VERSION`), read from its wheel (`pip download sglang==0.5.23 --no-deps`):
  sglang/api/v1/api_types.py                      the JSON contract gate (/generate's schema)
  sglang/srt/entrypoints/http_server.py           routes, /health, /model_info, /flush_cache
  sglang/srt/managers/io_struct.py                GenerateReqInput (rids, n, batches)
  sglang/srt/managers/tokenizer_manager.py        parallel sampling, aborts, rid checks
  sglang/srt/sampling/sampling_params.py          SamplingParams
  sglang/srt/utils/auth.py                        --api-key: Bearer tokens, /health exempt
Older releases differ (before the contract gate, unknown sampling keys were a 500 from a
TypeError; some crash on /flush_cache while paused): use 0.5.23 or later.

Fields implemented (all exist in SGLang under these names):
  POST /generate (GenerateReqInput): rid, input_ids (one list or a batch of lists), text (only
    with a tokenizer), sampling_params, return_logprob, return_text_in_logprobs, stream. Other
    top-level fields are ignored, as SGLang's contract ignores unknown top-level keys.
  sampling_params (SamplingParams): temperature, top_p, top_k, max_new_tokens, stop,
    stop_token_ids, sampling_seed, n (n samples per prompt: the reply is a list, prompt-major,
    each sample with a fresh rid, as SGLang's parallel sampling). A key SGLang does not know is a
    400 `{"error": "unknown field ..."}` with serde's text, as its contract gate answers. SGLang's
    other knobs are accepted at their defaults and refused otherwise (min_p, penalties, grammars,
    ...), naming the knob: we do not implement them and will not pretend to.
  response (non-streaming, skip_tokenizer_init style, plus "text" when a tokenizer is loaded):
    {"output_ids": [...], "meta_info": {"id", "finish_reason", "prompt_tokens",
    "completion_tokens", "cached_tokens", "weight_version", "e2e_latency",
    "output_token_logprobs" (return_logprob only: [logprob, token_id, text-or-null] triples)}}
  stream=true: server-sent events, `data: <one response object as above>` per chunk (output
    so far, cumulative as SGLang's default; finish_reason null until the last), then
    `data: [DONE]`; batch chunks carry `index`.
  finish_reason: {"type": "stop", "matched": id-or-string} | {"type": "length", "length": n} |
    {"type": "abort", "message": ...}.
  POST /update_weights_from_disk (UpdateWeightFromDiskReqInput): model_path, weight_version,
    flush_cache, abort_all_requests -> {"success", "message", "num_paused_requests"}.
  POST /pause_generation (PauseGenerationReqInput): mode in {"abort", "retract", "in_place"};
    POST /continue_generation -> {"message", "status": "ok"}.
  POST /abort_request (AbortReq): rid, abort_all. GET|POST /flush_cache[?timeout=s]: 400
    "Flush cache failed." while requests run. GET /health, GET /health_generate. GET /model_info
    (and the deprecated /get_model_info) -> model_path, tokenizer_path, is_generation,
    preferred_sampling_params, weight_version. GET /get_weight_version -> weight_version.
    Errors: {"object": "error", "message", "type", "code"} (ErrorResponse).
  POST /v1/chat/completions (ChatCompletionRequest, served by server.py): messages, model,
    max_tokens / max_completion_tokens, temperature, top_p, top_k, stop, stop_token_ids, seed,
    logprobs, chat_template_kwargs, n, stream. Reply: id, object, created, model,
    choices[{index, message{role, content}, finish_reason, matched_stop, logprobs}],
    usage{prompt_tokens, completion_tokens, total_tokens}; streamed as chat.completion.chunk
    events.
Seeded sampling: SGLang honours `sampling_seed` only when launched with
`--enable-deterministic-inference`; our engines always honour it.
Deviation: SGLang's default weight_version is "default"; ours starts at "0" so that the default
next version (integer + 1) is meaningful. Pass an explicit version to get any other name.
"""

import uuid
from http import HTTPStatus
from typing import Any

from sandmle_jax.rollout.engine import FinishReason, GenerateRequest, GenerateResult, SamplingParams

SGLANG_VERSION = "0.5.23"
PAUSE_MODES = ("abort", "retract", "in_place")
# SGLang 0.5.23's SamplingParams fields, in its contract's order (sglang/api/v1/api_types.py).
SAMPLING_FIELDS = (
    "max_new_tokens", "stop", "stop_token_ids", "stop_regex", "temperature", "top_p", "top_k",
    "min_p", "frequency_penalty", "presence_penalty", "repetition_penalty", "min_new_tokens",
    "n", "json_schema", "regex", "ebnf", "structural_tag", "ignore_eos", "skip_special_tokens",
    "spaces_between_special_tokens", "no_stop_trim", "stream_interval", "logit_bias",
    "sampling_seed", "custom_params", "beam_width", "watermark", "choice")

# SGLang sampling knobs we do not implement, with the value that means "off" there.
_UNSUPPORTED_AT_DEFAULT = {
    "min_p": 0.0, "frequency_penalty": 0.0, "presence_penalty": 0.0,
    "repetition_penalty": 1.0, "min_new_tokens": 0, "json_schema": None, "regex": None,
    "ebnf": None, "structural_tag": None, "stop_regex": None, "ignore_eos": False,
    "custom_params": None, "logit_bias": None, "beam_width": None, "watermark": None,
    "choice": None,
}
# Accepted and without effect here: detokenisation and streaming knobs.
_IGNORED = ("skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim",
            "stream_interval")


class ProtocolError(ValueError):
    """A request body SGLang's schema would refuse, or that asks for what we do not implement."""


class ContractError(ProtocolError):
    """A body SGLang's contract gate refuses: answered 400 `{"error": message}` as it does."""


def unknown_field(key: str, fields: tuple[str, ...]) -> str:
    """serde's text for an unknown key, which SGLang's contract gate returns verbatim."""
    listed = ", ".join(f"`{f}`" for f in fields)
    return f"unknown field `{key}`, expected one of {listed}"


def sampling_params_to_json(params: SamplingParams) -> dict[str, Any]:
    out: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "max_new_tokens": params.max_new_tokens,
    }
    if params.stop_token_ids:
        out["stop_token_ids"] = list(params.stop_token_ids)
    if params.stop:
        out["stop"] = list(params.stop)
    if params.seed is not None:
        out["sampling_seed"] = params.seed
    return out


def sampling_params_from_json(body: dict[str, Any] | None) -> SamplingParams:
    """SGLang's None-means-default rules, then our validation (errors name the field)."""
    body = dict(body or {})
    unknown = [k for k in body if k not in SAMPLING_FIELDS]
    if unknown:
        raise ContractError(unknown_field(unknown[0], SAMPLING_FIELDS))
    for key, default in _UNSUPPORTED_AT_DEFAULT.items():
        if body.get(key, default) not in (default, None):
            raise ProtocolError(f"sampling_params.{key}={body[key]!r} is not supported by this "
                                f"server; leave it at {default!r}.")
    stop = body.get("stop") or ()
    try:
        return SamplingParams(
            temperature=1.0 if body.get("temperature") is None else float(body["temperature"]),
            top_p=1.0 if body.get("top_p") is None else float(body["top_p"]),
            top_k=-1 if body.get("top_k") is None else int(body["top_k"]),
            max_new_tokens=(128 if body.get("max_new_tokens") is None
                            else int(body["max_new_tokens"])),
            stop_token_ids=tuple(body.get("stop_token_ids") or ()),
            stop=(stop,) if isinstance(stop, str) else tuple(stop),
            seed=None if body.get("sampling_seed") is None else int(body["sampling_seed"]),
        )
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"bad sampling_params: {e}") from e


def generate_body(request: GenerateRequest, return_logprob: bool = True) -> dict[str, Any]:
    """The /generate body for one request (token ids in, non-streaming)."""
    return {
        "rid": request.request_id,
        "input_ids": list(request.input_ids),
        "sampling_params": sampling_params_to_json(request.sampling_params),
        "return_logprob": return_logprob,
        "stream": False,
    }


def parse_generate_body(body: dict[str, Any], encode=None) -> tuple[list[GenerateRequest], bool]:
    """A /generate body -> requests and whether it was a batch (the reply then is a list).

    `encode(text) -> ids` serves `text` prompts; without it only `input_ids` are accepted, as
    with SGLang's --skip-tokenizer-init.
    """
    prompts = body.get("input_ids")
    if prompts is None:
        text = body.get("text")
        if text is None:
            raise ProtocolError("the body needs input_ids (or text, with a tokenizer).")
        if encode is None:
            raise ProtocolError("text prompts need a tokenizer and this server has none "
                                "(like --skip-tokenizer-init); send input_ids.")
        prompts = [encode(t) for t in text] if isinstance(text, list) else encode(text)
    if not isinstance(prompts, list) or not prompts:
        raise ProtocolError("input_ids must be a non-empty list of ints or of lists of ints.")
    is_batch = isinstance(prompts[0], list)
    prompts = prompts if is_batch else [prompts]
    n = len(prompts)
    rids = body.get("rid")
    if rids is None:
        prefix = uuid.uuid4().hex
        rids = [f"{prefix}_{i}" for i in range(n)] if is_batch else [prefix]
    elif isinstance(rids, str):
        rids = [f"{rids}_{i}" for i in range(n)] if is_batch else [rids]
    if len(rids) != n:
        raise ProtocolError(f"{len(rids)} rids for {n} prompts.")
    params = body.get("sampling_params")
    params = params if isinstance(params, list) else [params] * n
    if len(params) != n:
        raise ProtocolError(f"{len(params)} sampling_params for {n} prompts.")
    samples = {int(p.get("n") or 1) if isinstance(p, dict) else 1 for p in params}
    if len(samples) != 1 or min(samples) < 1:
        raise ProtocolError("The parallel_sample_num should be the same for all samples in "
                            "sample params.")
    per_prompt = samples.pop()
    try:
        requests = []
        for rid, prompt, raw in zip(rids, prompts, params):
            parsed = sampling_params_from_json(raw)  # `n` is the caller's: handled here
            # n > 1: each sample a request of its own with a fresh rid (SGLang regenerates them)
            names = [str(rid)] if per_prompt == 1 else [uuid.uuid4().hex
                                                        for _ in range(per_prompt)]
            requests += [GenerateRequest(name, tuple(prompt), parsed) for name in names]
    except ProtocolError:
        raise
    except (TypeError, ValueError) as e:
        raise ProtocolError(str(e)) from e
    return requests, is_batch or per_prompt > 1


def finish_reason_to_json(reason: FinishReason) -> dict[str, Any]:
    if reason.type == "stop":
        return {"type": "stop", "matched": reason.matched}
    if reason.type == "length":
        return {"type": "length", "length": reason.length}
    return {"type": "abort", "message": reason.message or "Abort"}


def finish_reason_from_json(body: dict[str, Any] | None) -> FinishReason:
    if body is None:
        raise ProtocolError("meta_info.finish_reason is null: the request did not finish.")
    kind = body.get("type")
    if kind == "stop":
        return FinishReason("stop", matched=body.get("matched"))
    if kind == "length":
        return FinishReason("length", length=body.get("length"))
    if kind == "abort":
        return FinishReason("abort", message=body.get("message"))
    raise ProtocolError(f"unknown finish_reason type {kind!r} in {body!r}.")


def output_to_json(request_id: str, output_ids, logprobs, finish_reason: FinishReason | None,
                   prompt_tokens: int, weight_version: str, return_logprob: bool,
                   e2e_latency: float, text: str | None = None,
                   token_texts: list[str] | None = None) -> dict:
    """One /generate response object; `finish_reason` None for a stream chunk still running
    (SGLang sends null there)."""
    meta: dict[str, Any] = {
        "id": request_id,
        "finish_reason": None if finish_reason is None else finish_reason_to_json(finish_reason),
        "prompt_tokens": prompt_tokens,
        "weight_version": weight_version,
        "completion_tokens": len(output_ids),
        "cached_tokens": 0,
        "e2e_latency": e2e_latency,
    }
    if return_logprob:
        texts = token_texts or [None] * len(output_ids)
        meta["output_token_logprobs"] = [
            [lp, tok, t] for lp, tok, t in zip(logprobs, output_ids, texts)]
    out: dict[str, Any] = {"output_ids": list(output_ids), "meta_info": meta}
    if text is not None:
        out = {"text": text, **out}
    return out


def result_to_json(result: GenerateResult, return_logprob: bool, e2e_latency: float,
                   text: str | None = None, token_texts: list[str] | None = None) -> dict:
    return output_to_json(result.request_id, result.output_ids, result.output_logprobs,
                          result.finish_reason, result.prompt_tokens, result.weight_version,
                          return_logprob, e2e_latency, text, token_texts)


def result_from_json(body: dict[str, Any], request: GenerateRequest) -> GenerateResult:
    """A /generate reply for one request -> GenerateResult; log-probs must have been asked for."""
    try:
        meta = body["meta_info"]
        output_ids = tuple(int(t) for t in body["output_ids"])
        triples = meta.get("output_token_logprobs")
        if triples is None:
            raise ProtocolError("meta_info has no output_token_logprobs; send return_logprob=true.")
        if [int(t[1]) for t in triples] != list(output_ids):
            raise ProtocolError("output_token_logprobs token ids differ from output_ids.")
        return GenerateResult(
            request_id=str(meta.get("id", request.request_id)),
            output_ids=output_ids,
            output_logprobs=tuple(float(t[0]) for t in triples),
            finish_reason=finish_reason_from_json(meta.get("finish_reason")),
            weight_version=str(meta.get("weight_version")),
            prompt_tokens=int(meta.get("prompt_tokens", len(request.input_ids))),
        )
    except (KeyError, TypeError, IndexError) as e:
        raise ProtocolError(f"malformed /generate reply ({e!r}): {str(body)[:300]}") from e


def error_body(message: str, status: int) -> dict[str, Any]:
    """SGLang's ErrorResponse shape."""
    return {"object": "error", "message": message, "type": HTTPStatus(status).phrase,
            "code": status}
