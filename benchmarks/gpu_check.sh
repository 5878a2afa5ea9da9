#!/usr/bin/env bash
# One GPU check, under 8 minutes on one GPU: what invsolve finds, the GPU-marked tests,
# CT projector throughput (ASTRA CUDA against CPU), patchNR x4 on 600x600 at the paper's
# settings, a 1000-angle CT forward + adjoint at 362^2, and each sampler's throughput.
# Without CUDA the GPU parts are skipped and reduced CPU runs check the code paths.
#
# Usage: bash benchmarks/gpu_check.sh [LOG]   (default log: gpu_check.log; table also in
# benchmarks/RESULTS.md; with $OUT set, both are copied there).  Exit status: non-zero when a stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG="${1:-gpu_check.log}"
PY="${PYTHON:-python}"
status=0
{
  echo "== invsolve info"
  "$PY" -m invsolve info || status=1
  echo "== GPU-marked tests"
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    "$PY" -m pytest -q -m gpu tests || status=1
  else
    echo "skipped (no CUDA)"
  fi
  echo "== measurements"
  "$PY" benchmarks/gpu_check.py "${@:2}" || status=1
  echo "== exit status $status"
  exit "$status"
} 2>&1 | tee "$LOG"
rc="${PIPESTATUS[0]}"
# on a lent device machine, hand the log and the updated results back through $OUT
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then cp "$LOG" benchmarks/RESULTS.md "$OUT"/; fi
exit "$rc"
