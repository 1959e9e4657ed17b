#!/usr/bin/env bash
# The device checks, as one command for a lent GPU machine (its python3 has jax[cuda], flax,
# optax, torch and transformers):  OUT=/some/dir bash benchmarks/gpu_checks.sh
# Each check has its own time limit so that one slow compile cannot eat the others; logs go to
# $OUT, the summary lines to stdout last.
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.85
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/card.txt"

check() {  # check NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  echo "== $name: $*" | tee "$OUT/$name.log"
  timeout "$seconds" "$@" >>"$OUT/$name.log" 2>&1
  echo "   exit $?" >>"$OUT/$name.log"
}

check mfu_b8 130 python3 benchmarks/models_mfu.py --batch=8
check decode 200 python3 benchmarks/rollout_decode.py --mode=gpu --repeats=2
check mfu_b8_cublas 100 env XLA_FLAGS=--xla_gpu_enable_triton_gemm=false \
  python3 benchmarks/models_mfu.py --batch=8
check mfu_b4 80 python3 benchmarks/models_mfu.py --batch=4
check mfu_b16_remat 100 python3 benchmarks/models_mfu.py --batch=16 --remat

echo "== summary"
for f in "$OUT"/*.log; do
  grep -H -E "^== |MFU:|ms/step|tok/s|exit|Error|error" "$f" | grep -v "^.*I1[0-9]" | tail -6
done
