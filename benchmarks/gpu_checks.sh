#!/usr/bin/env bash
# The device checks, as one command for a lent GPU machine (its python3 has jax[cuda], flax,
# optax, torch and transformers):  OUT=/some/dir bash benchmarks/gpu_checks.sh
# Most informative first, each with its own time limit so that one slow compile cannot eat the
# others; logs go to $OUT, the summary lines to stdout last. cuBLAS for every GEMM measured 3%
# faster than XLA's Triton GEMMs on an H100 (benchmarks/RESULTS.md).
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.85
CUBLAS=--xla_gpu_enable_triton_gemm=false
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/card.txt"

check() {  # check NAME SECONDS COMMAND...
  local name=$1 seconds=$2 start=$SECONDS
  shift 2
  echo "== $name: $*" | tee "$OUT/$name.log"
  timeout "$seconds" "$@" >>"$OUT/$name.log" 2>&1
  echo "   exit $? after $((SECONDS - start))s" >>"$OUT/$name.log"
}

# MFU at 8 x 2048 with a per-kernel time table (where the step goes).
check mfu_b8_profile 150 env XLA_FLAGS=$CUBLAS python3 benchmarks/models_mfu.py --batch=8 \
  --profile=2
# Log-probs 4,096 tokens at a time (the LM head recomputed in the backward, not counted as
# model FLOPs): what the memory saved buys, at 8 and at 12 x 2048 (16 may not fit without remat).
check mfu_b8_chunk4k 120 env XLA_FLAGS=$CUBLAS python3 benchmarks/models_mfu.py --batch=8 \
  --logit_chunk_tokens=4096
check mfu_b12_chunk4k 120 env XLA_FLAGS=$CUBLAS python3 benchmarks/models_mfu.py --batch=12 \
  --logit_chunk_tokens=4096
# The LM head and log-probs alone: whole logits vs the fused, chunked path (memory and time).
check head_logprobs 75 python3 benchmarks/head_logprobs_memory.py --time_steps=5
# A Qwen3-30B-A3B expert layer (top-8 of 128): the blocked experts GPUs run, at 2/4/8 blocks
# per expert, vs ragged_dot as XLA lowers it there: training (8,192 tokens; ragged_dot expected
# to fail or crawl) and a 64-sequence decode step (forward only; where ragged_dot may win).
check moe_layer 50 python3 benchmarks/moe_layer.py --tokens=8192 --hidden=2048 \
  --intermediate=768 --experts=128 --top_k=8 --dtype=bfloat16 --steps=10
check moe_decode 40 python3 benchmarks/moe_layer.py --tokens=64 --hidden=2048 \
  --intermediate=768 --experts=128 --top_k=8 --dtype=bfloat16 --steps=20 --forward_only
# (Decode throughput, #7's check, is `python3 benchmarks/rollout_decode.py --mode=gpu`; the step
# without the LM head is `models_mfu.py --vocab=1024`.) The limits above sum to 555 s: one device
# call of at most 600 s.

echo "== summary"
for f in "$OUT"/*.log; do
  grep -H -E "^== |MFU:|ms/step|tok/s|built in|exit|Error" "$f" | tail -6
done
grep -h "^|" "$OUT/head_logprobs.log" "$OUT/moe_layer.log" "$OUT/moe_decode.log"
grep -h -A26 "op time per step" "$OUT/mfu_b8_profile.log"
