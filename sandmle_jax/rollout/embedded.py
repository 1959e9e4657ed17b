"""The "embedded" engine: our Qwen3 sampling in-process, with continuous batching.

Scheme (one scheduler thread owns the device work; `generate` only queues and awaits):
- A KV cache of `num_slots` rows x `max_len` tokens lives on the device. Each slot runs one
  request at its own position (the model's cache tracks a per-row `end`).
- Admission: whenever slots are free, queued requests are prefilled together (right-padded to a
  power-of-two length and batch, fed in pieces of at most `prefill_tokens` tokens per call),
  their first token sampled, and their cache rows scattered into the free slots. So a finished
  sequence frees its slot for a queued request at the next chunk.
- Decoding runs `decode_chunk` steps per device call (a `lax.scan`), with finishing decided on
  the device (stop token, max_new_tokens) so a finished row stops advancing mid-chunk; the host
  then reads the chunk's tokens once, checks stop strings, and delivers finished results.
- Shapes come from a few buckets only (prefill batch and length powers of two, fixed decode
  batch, attention window a power of two covering the longest live row), so nothing recompiles
  per request. The window matters: a decode step reads and rewrites the cache it is given, so
  short rows in a long-max_len engine attend over (and copy) only the window, not max_len.
- Weight swap: `update_weights(params)` takes the learner's parameters (an nnx module, an
  nnx.State, or an HF directory) and installs them between chunks; arrays whose sharding already
  matches are used as they are (no copy, no host round trip). The version is bumped.

Log-probs are those of `sampling.sample`: log_softmax(logits / temperature) of the sampled token
at the exact params that sampled it, what the learner recomputes with a full forward.
Sampling is deterministic under a seed: a request's n-th token uses fold_in(key(seed), n).
Requests without a seed get seed `engine_seed + arrival index`.
"""

import asyncio
import dataclasses
import functools
import json
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sandmle_jax.models import hf
from sandmle_jax.models.qwen3 import KVCache, Qwen3
from sandmle_jax.rollout import sampling
from sandmle_jax.rollout.engine import (FinishReason, GenerateRequest, GenerateResult,
                                        next_version, register_engine)

log = logging.getLogger(__name__)


def _bucket(n: int, smallest: int, largest: int) -> int:
    """The smallest power of two >= n (at least `smallest`, at most `largest`)."""
    size = smallest
    while size < n:
        size *= 2
    return min(size, largest)


@dataclasses.dataclass
class _Pending:
    """A request between `generate` and its result; owned by the scheduler thread once queued."""

    request: GenerateRequest
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    key: np.ndarray                      # (2,) uint32 raw PRNG key
    stop_ids: frozenset[int]
    output_ids: list[int] = dataclasses.field(default_factory=list)
    output_logprobs: list[float] = dataclasses.field(default_factory=list)
    on_tokens: Callable[[int], None] | None = None  # streaming: told each new output length


@register_engine("embedded")
class EmbeddedEngine:
    """Continuous-batching sampler over a `models.qwen3.Qwen3` module."""

    def __init__(self, model: Qwen3, *, num_slots: int = 8, max_len: int = 2048,
                 decode_chunk: int = 8, seed: int = 0, eos_token_ids: Sequence[int] | None = None,
                 tokenizer=None, min_prefill_len: int = 16, prefill_tokens: int = 4096,
                 min_window: int = 64, weight_version: str = "0"):
        if num_slots < 1 or max_len < 2 or decode_chunk < 1:
            raise ValueError(f"need num_slots >= 1, max_len >= 2, decode_chunk >= 1; got "
                             f"{num_slots}, {max_len}, {decode_chunk}.")
        self.config = model.config
        self.num_slots, self.max_len, self.decode_chunk = num_slots, max_len, decode_chunk
        self.min_prefill_len = min_prefill_len
        self.min_window = min_window
        self.prefill_tokens = prefill_tokens
        self.tokenizer = tokenizer
        self.seed = seed
        if eos_token_ids is None:
            eos = self.config.eos_token_id
            eos_token_ids = () if eos is None else (eos,) if isinstance(eos, int) else eos
        self.eos_token_ids = tuple(int(t) for t in eos_token_ids)
        self._graphdef, self._state = nnx.split(model)
        self._prefill, self._decode = _device_functions(self._graphdef)
        self._version = weight_version
        self.prefill_rows = 0  # prompt rows prefilled so far (shared prompts count once)
        self._arrivals = 0
        self._cache: KVCache = model.init_cache(num_slots, max_len)
        self._slots: list[_Pending | None] = [None] * num_slots
        self._last_token = np.zeros(num_slots, np.int32)
        self._queue: deque[_Pending] = deque()
        self._aborts: set[str] = set()
        self._weight_updates: deque[tuple[nnx.State, str, asyncio.Future,
                                          asyncio.AbstractEventLoop]] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="embedded-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_dir(cls, model_dir: str, *, tokenizer=None, param_dtype=jnp.float32,
                 mesh: jax.sharding.Mesh | None = None, **kwargs) -> "EmbeddedEngine":
        """An engine over an HF Qwen3 directory (EOS ids from generation_config.json if any)."""
        model = hf.load_model(model_dir, mesh=mesh, param_dtype=param_dtype)
        kwargs.setdefault("eos_token_ids", generation_eos_ids(model_dir) or None)
        return cls(model, tokenizer=tokenizer, **kwargs)

    # ---- Engine ----------------------------------------------------------------------------

    @property
    def weight_version(self) -> str:
        return self._version

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        loop = asyncio.get_running_loop()
        pending = [self._admit_check(r, loop) for r in requests]
        with self._wake:
            self._queue.extend(pending)
            self._wake.notify()
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except asyncio.CancelledError:
            for p in pending:
                await self.abort(p.request.request_id)
            raise

    async def stream(self, request: GenerateRequest
                     ) -> AsyncIterator[tuple[tuple[int, ...], tuple[float, ...]] | GenerateResult]:
        """One request's output as it grows: (ids, logprobs) so far after each decode chunk,
        then its GenerateResult. Leaving the loop early aborts the request."""
        loop = asyncio.get_running_loop()
        grown: asyncio.Queue[int] = asyncio.Queue()
        pending = self._admit_check(request, loop)
        pending.on_tokens = lambda n: _call_in(loop, grown.put_nowait, n)
        with self._wake:
            self._queue.append(pending)
            self._wake.notify()

        def grown_to(n: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
            return tuple(pending.output_ids[:n]), tuple(pending.output_logprobs[:n])
        try:
            while True:
                length = asyncio.ensure_future(grown.get())
                await asyncio.wait({length, pending.future},
                                   return_when=asyncio.FIRST_COMPLETED)
                if pending.future.done():
                    # A busy event loop can see the result with chunks still queued before it
                    # (both come through call_soon_threadsafe, in order): yield those first.
                    lengths = [length.result()] if length.done() else []
                    length.cancel()
                    while not grown.empty():
                        lengths.append(grown.get_nowait())
                    for n in lengths:
                        yield grown_to(n)
                    yield pending.future.result()
                    return
                yield grown_to(length.result())
        finally:
            if not pending.future.done():
                await self.abort(request.request_id)

    async def abort(self, request_id: str) -> None:
        with self._wake:
            self._aborts.add(request_id)
            self._wake.notify()

    async def update_weights(self, weights: Any, version: str | None = None) -> str:
        """Installs new params between decode chunks; returns the new version once in use.

        The engine keeps the very arrays it is given when their sharding matches: a learner
        that donates its state to the next step must pass a copy.
        """
        state = await asyncio.to_thread(self._as_state, weights)
        version = version or next_version(self._version)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        with self._wake:
            self._weight_updates.append((state, version, done, loop))
            self._wake.notify()
        await done
        return version

    def close(self):
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=60)

    # ---- request intake --------------------------------------------------------------------

    def _admit_check(self, request: GenerateRequest, loop) -> _Pending:
        params = request.sampling_params
        need = len(request.input_ids) + params.max_new_tokens
        if need > self.max_len:
            raise ValueError(f"request {request.request_id!r}: prompt ({len(request.input_ids)}) + "
                             f"max_new_tokens ({params.max_new_tokens}) = {need} exceeds the "
                             f"engine's max_len {self.max_len}; shorten it or raise max_len.")
        if params.stop and self.tokenizer is None:
            raise ValueError(f"request {request.request_id!r}: stop strings need a tokenizer and "
                             "this engine has none; use stop_token_ids.")
        bad = [t for t in request.input_ids if not 0 <= t < self.config.vocab_size]
        if bad:
            raise ValueError(f"request {request.request_id!r}: token ids {bad[:5]} are outside "
                             f"the vocabulary [0, {self.config.vocab_size}).")
        seed = params.seed
        if seed is None:
            seed = self.seed + self._arrivals
            self._arrivals += 1
        key = np.asarray(jax.random.PRNGKey(seed), np.uint32)
        return _Pending(request, loop.create_future(), loop, key,
                        frozenset(self.eos_token_ids) | frozenset(params.stop_token_ids))

    def _as_state(self, weights: Any) -> nnx.State:
        """Learner params -> a State shaped like ours, reusing arrays whose sharding matches."""
        if isinstance(weights, (str, os.PathLike)):
            weights = hf.load_model(str(weights))
        if isinstance(weights, nnx.Module):
            weights = nnx.state(weights)
        new_leaves, new_def = jax.tree.flatten(weights)
        old_leaves, old_def = jax.tree.flatten(self._state)
        if new_def != old_def:
            raise ValueError("update_weights got parameters with a different structure than the "
                             "served model (another config?); build the engine from that model.")
        placed = []
        for new, old in zip(new_leaves, old_leaves):
            if new.shape != old.shape:
                raise ValueError(f"update_weights: a parameter has shape {new.shape}, the served "
                                 f"model has {old.shape}.")
            new = new.astype(old.dtype) if new.dtype != old.dtype else new
            same = isinstance(new, jax.Array) and new.sharding == old.sharding
            placed.append(new if same else jax.device_put(new, old.sharding))
        return jax.tree.unflatten(old_def, placed)

    # ---- scheduler thread ------------------------------------------------------------------

    def _loop(self):
        while True:
            with self._wake:
                while (not self._closed and not self._queue and not self._aborts
                       and not self._weight_updates and not any(self._slots)):
                    self._wake.wait()
                if self._closed:
                    return
                updates, self._weight_updates = list(self._weight_updates), deque()
                aborts, self._aborts = self._aborts, set()
            try:
                self._step(updates, aborts)
            except Exception as e:  # a device error fails the requests it touched, not the engine
                log.exception("embedded engine step failed")
                self._fail_all(e)

    def _step(self, updates, aborts):
        for state, version, done, loop in updates:
            self._state, self._version = state, version
            _call_in(loop, _resolve, done, version)
        if aborts:
            self._apply_aborts(aborts)
        self._admit()
        if any(self._slots):
            self._decode_chunk()

    def _apply_aborts(self, rids: set[str]):
        with self._wake:
            kept = deque()
            for p in self._queue:
                (self._finish(p, FinishReason("abort", message="Aborted before it started."))
                 if p.request.request_id in rids else kept.append(p))
            self._queue = kept
        for i, p in enumerate(self._slots):
            if p is not None and p.request.request_id in rids:
                self._finish(p, FinishReason("abort", message="Aborted by request."))
                self._slots[i] = None

    def _admit(self):
        free = [i for i, p in enumerate(self._slots) if p is None]
        with self._wake:
            batch = [self._queue.popleft() for _ in range(min(len(free), len(self._queue)))]
        ready = []
        for p in batch:
            if p.request.sampling_params.max_new_tokens == 0:
                self._finish(p, FinishReason("length", length=0))
            else:
                ready.append(p)
        if not ready:
            return
        # Identical prompts (n samples, a GRPO group's first turn) share one prefill row.
        unique: dict[tuple[int, ...], int] = {}
        source = np.zeros(_bucket(len(ready), 1, self.num_slots), np.int32)
        for r, p in enumerate(ready):
            source[r] = unique.setdefault(tuple(p.request.input_ids), len(unique))
        rows = _bucket(len(unique), 1, self.num_slots)
        longest = max(len(prompt) for prompt in unique)
        length = _bucket(longest, self.min_prefill_len, self.max_len)
        budget = min(max(self.min_prefill_len, self.prefill_tokens // rows), length)
        chunk = 1 << (budget.bit_length() - 1)            # the largest power of two <= budget
        length = -(-length // chunk) * chunk
        ids = np.zeros((rows, length), np.int32)
        mask = np.zeros((rows, length), bool)
        for r, prompt in enumerate(unique):
            ids[r, :len(prompt)] = prompt
            mask[r, :len(prompt)] = True
        mask[len(unique):, 0] = True  # padding rows hold one token so their softmax is defined
        temperature, top_k, top_p, keys = self._sampling_arrays(ready, len(source))
        tokens, logprobs, small = self._prefill(self._state, ids, mask, source, temperature,
                                                top_k, top_p, keys, chunk=chunk)
        self.prefill_rows += len(unique)
        slots = np.full(len(source), self.num_slots, np.int32)  # out of range: dropped
        slots[:len(ready)] = free[:len(ready)]
        self._cache = _insert(self._cache, small, slots)
        tokens, logprobs = np.asarray(tokens), np.asarray(logprobs)
        for r, p in enumerate(ready):
            self._slots[slots[r]] = p
            self._last_token[slots[r]] = tokens[r]
            self._emit(slots[r], [int(tokens[r])], [float(logprobs[r])])

    def _sampling_arrays(self, pendings, rows):
        temperature = np.ones(rows, np.float32)
        top_k = np.full(rows, -1, np.int32)
        top_p = np.ones(rows, np.float32)
        keys = np.zeros((rows, 2), np.uint32)
        for r, p in enumerate(pendings):
            if p is None:
                continue
            params = p.request.sampling_params
            temperature[r] = params.temperature
            top_k[r] = params.top_k
            top_p[r] = params.top_p
            keys[r] = p.key
        return temperature, top_k, top_p, keys

    def _decode_chunk(self):
        n = self.num_slots
        done = np.array([p is None for p in self._slots])
        generated = np.zeros(n, np.int32)
        max_new = np.zeros(n, np.int32)
        stops = [sorted(p.stop_ids) if p is not None else [] for p in self._slots]
        width = _bucket(max(1, max(len(s) for s in stops)), 4, 1 << 20)
        stop_ids = np.full((n, width), -1, np.int32)
        for i, p in enumerate(self._slots):
            if p is not None:
                generated[i] = len(p.output_ids)
                max_new[i] = p.request.sampling_params.max_new_tokens
                stop_ids[i, :len(stops[i])] = stops[i]
        temperature, top_k, top_p, keys = self._sampling_arrays(self._slots, n)
        # The last sampled token of a live row is not in the cache yet: it is written at
        # prompt + generated - 1, and the chunk writes decode_chunk - 1 more after it.
        furthest = max(len(p.request.input_ids) + len(p.output_ids) - 1
                       for p in self._slots if p is not None) + self.decode_chunk
        window = _bucket(furthest, self.min_window, self.max_len)
        self._cache, out, logprobs, emitted = self._decode(
            self._state, self._cache, self._last_token, done, generated, max_new, stop_ids,
            temperature, top_k, top_p, keys, window=window, steps=self.decode_chunk)
        out, logprobs, emitted = np.asarray(out), np.asarray(logprobs), np.asarray(emitted)
        for i, p in enumerate(self._slots):
            if p is None:
                continue
            picked = emitted[:, i]
            if picked.any():
                self._last_token[i] = out[picked, i][-1]
                self._emit(i, out[picked, i].tolist(), logprobs[picked, i].tolist())

    def _emit(self, slot: int, tokens: list[int], logprobs: list[float]):
        """Appends a slot's new tokens, cutting at the first stop; frees the slot when done."""
        p = self._slots[slot]
        params = p.request.sampling_params
        reason = None
        for tok, lp in zip(tokens, logprobs):
            p.output_ids.append(tok)
            p.output_logprobs.append(lp)
            if tok in p.stop_ids:
                reason = FinishReason("stop", matched=tok)
            elif params.stop:
                matched = self._stop_string(p)
                if matched is not None:
                    reason = FinishReason("stop", matched=matched)
            if reason is None and len(p.output_ids) >= params.max_new_tokens:
                reason = FinishReason("length", length=params.max_new_tokens)
            if reason is not None:
                self._finish(p, reason)
                self._slots[slot] = None
                return
        if p.on_tokens is not None:
            p.on_tokens(len(p.output_ids))

    def _stop_string(self, p: _Pending) -> str | None:
        """The stop string the newest token completes, if any (matched on decoded text, as SGLang
        does). Only a tail is decoded: a stop string of m characters spans at most m tokens
        that each decode to something, plus a few that decode to nothing alone."""
        stops = p.request.sampling_params.stop
        tail = p.output_ids[-(2 * max(len(s) for s in stops) + 8):]
        text, before = self.tokenizer.decode(tail), self.tokenizer.decode(tail[:-1])
        for s in stops:
            if s in text and s not in before:
                return s
        return None

    def _finish(self, p: _Pending, reason: FinishReason):
        result = GenerateResult(p.request.request_id, tuple(p.output_ids),
                                tuple(p.output_logprobs), reason, self._version,
                                len(p.request.input_ids))
        _call_in(p.loop, _resolve, p.future, result)

    def _fail_all(self, error: Exception):
        with self._wake:
            queued, self._queue = list(self._queue), deque()
        for p in queued + [p for p in self._slots if p is not None]:
            _call_in(p.loop, _reject, p.future, error)
        self._slots = [None] * self.num_slots
        self._cache = nnx.merge(self._graphdef, self._state).init_cache(self.num_slots,
                                                                         self.max_len)


# ---- device functions (compiled once per model graph and shape bucket, shared by engines) ----


@functools.lru_cache(maxsize=None)
def _device_functions(graphdef) -> tuple[Any, Any]:
    """Jitted prefill and decode for one model graph, shared by every engine over an equal graph
    (the graph is hashed here once, not at every call as a static argument would be)."""
    prefill = jax.jit(functools.partial(_prefill, graphdef), static_argnames=("chunk",))
    decode = jax.jit(functools.partial(_decode, graphdef), donate_argnums=(1,),
                     static_argnames=("window", "steps"))
    return prefill, decode


def _prefill(graphdef, state, ids, mask, source, temperature, top_k, top_p, keys, *,
             chunk: int):
    """ids, mask (prompts, length) right-padded; source (requests,) each request's prompt row ->
    each request's first token and its log-prob, and the small cache, one row per request.

    A prompt is run once however many requests share it; each request then samples its own
    first token (its own key) and gets its own copy of the prompt's cache rows. The prompt goes
    through in `chunk`-token pieces (a scan over the cache), which bounds the attention scores
    (rows, heads, chunk, length) and the logits (rows, chunk, vocab) that a long prompt would
    otherwise materialise whole.
    """
    model = nnx.merge(graphdef, state)
    rows, length = ids.shape
    last = jnp.sum(mask, axis=-1) - 1                                       # (rows,)

    def piece(carry, xs):
        cache, last_logits = carry
        ids_c, mask_c, start = xs
        logits, cache = model(ids_c, attention_mask=mask_c, cache=cache)
        at = last - start
        picked = jnp.take_along_axis(logits, jnp.clip(at, 0, chunk - 1)[:, None, None],
                                     axis=1)[:, 0]
        inside = ((at >= 0) & (at < chunk))[:, None]
        return (cache, jnp.where(inside, picked, last_logits)), None

    pieces = length // chunk
    xs = (ids.reshape(rows, pieces, chunk).swapaxes(0, 1),
          mask.reshape(rows, pieces, chunk).swapaxes(0, 1),
          jnp.arange(pieces) * chunk)
    init = (model.init_cache(rows, length),
            jnp.zeros((rows, model.config.vocab_size), jnp.float32))
    (cache, last_logits), _ = jax.lax.scan(piece, init, xs)
    tokens, logprobs = sampling.sample(last_logits[source], temperature, top_k, top_p, keys,
                                       jnp.zeros_like(source))
    cache = KVCache(k=cache.k[:, source], v=cache.v[:, source], kv_mask=cache.kv_mask[source],
                    end=cache.end[source])
    return tokens, logprobs, cache


@functools.partial(jax.jit, donate_argnums=(0,))
def _insert(big: KVCache, small: KVCache, slots):
    """Scatters the prefilled rows into `slots` (out-of-range slots, for padding, drop)."""
    length = min(small.kv_mask.shape[1], big.kv_mask.shape[1])  # beyond max_len: padding
    k = big.k.at[:, slots, :length].set(small.k[:, :, :length], mode="drop")
    v = big.v.at[:, slots, :length].set(small.v[:, :, :length], mode="drop")
    row_mask = jnp.zeros((slots.shape[0], big.kv_mask.shape[1]), bool)
    row_mask = row_mask.at[:, :length].set(small.kv_mask[:, :length])
    kv_mask = big.kv_mask.at[slots].set(row_mask, mode="drop")
    end = big.end.at[slots].set(small.end, mode="drop")
    return KVCache(k=k, v=v, kv_mask=kv_mask, end=end)


def _decode(graphdef, state, full_cache, tokens, done, generated, max_new, stop_ids,
            temperature, top_k, top_p, keys, *, window: int, steps: int):
    """`steps` decode steps for every slot; rows that are done neither advance nor emit.

    Only the first `window` cache slots take part (every live row ends inside it): a decode step
    reads and rewrites its cache, so short sequences should not pay for max_len.
    """
    model = nnx.merge(graphdef, state)
    cache = KVCache(k=full_cache.k[:, :, :window], v=full_cache.v[:, :, :window],
                    kv_mask=full_cache.kv_mask[:, :window], end=full_cache.end)

    def step(carry, _):
        cache, tokens, done, generated = carry
        logits, cache = model(tokens[:, None], attention_mask=~done[:, None], cache=cache)
        new, logprobs = sampling.sample(logits[:, 0], temperature, top_k, top_p, keys, generated)
        emitted = ~done
        new = jnp.where(emitted, new, tokens)
        generated = generated + emitted
        hit_stop = jnp.any(new[:, None] == stop_ids, axis=-1)
        done = done | (emitted & hit_stop) | (generated >= max_new)
        return (cache, new, done, generated), (new, logprobs, emitted)

    (cache, _, _, _), (out, logprobs, emitted) = jax.lax.scan(
        step, (cache, tokens, done, generated), length=steps)
    full_cache = KVCache(k=full_cache.k.at[:, :, :window].set(cache.k),
                         v=full_cache.v.at[:, :, :window].set(cache.v),
                         kv_mask=full_cache.kv_mask.at[:, :window].set(cache.kv_mask),
                         end=cache.end)
    return full_cache, out, logprobs, emitted


def _call_in(loop: asyncio.AbstractEventLoop, fn, *args) -> None:
    """Runs `fn(*args)` in the caller's event loop; a loop already closed (its caller gave up:
    a stream left early, a cancelled run) is skipped, never fatal to the engine's thread."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        if not loop.is_closed():
            raise


def _resolve(future: asyncio.Future, value):
    if not future.done():
        future.set_result(value)


def _reject(future: asyncio.Future, error: Exception):
    if not future.done():
        future.set_exception(error)


def generation_eos_ids(model_dir: str) -> tuple[int, ...]:
    """EOS ids from generation_config.json (Qwen3 lists <|im_end|> and <|endoftext|> there):
    what SGLang stops on besides the request's own stop ids. Empty without the file."""
    path = os.path.join(model_dir, "generation_config.json")
    if not os.path.exists(path):
        return ()
    with open(path) as f:
        eos = json.load(f).get("eos_token_id")
    if eos is None:
        return ()
    return (eos,) if isinstance(eos, int) else tuple(eos)
