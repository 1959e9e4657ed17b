"""Rollout engines: the token-in/token-out contract, the embedded JAX sampler, the SGLang client
with weight sync, and an SGLang-protocol HTTP server over any engine."""
