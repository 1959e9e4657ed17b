#!/usr/bin/env bash
# Where the train step's time goes (device machine): the step with the LM head and loss left out
# (vocab 1024), and with a 4x shorter sequence at the same tokens (a quarter of the attention).
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.85
export XLA_FLAGS=--xla_gpu_enable_triton_gemm=false
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
for args in "--batch=8 --vocab=1024" "--batch=32 --seq=512 --vocab=1024" "--batch=8"; do
  name=$(echo "$args" | tr -d ' -=')
  echo "== $args" | tee "$OUT/$name.log"
  start=$(date +%s)
  timeout 100 python3 benchmarks/models_mfu.py $args --steps=5 >>"$OUT/$name.log" 2>&1
  echo "   exit $? after $(( $(date +%s) - start ))s" | tee -a "$OUT/$name.log"
  grep -E "ms/step|MFU" "$OUT/$name.log"
done
