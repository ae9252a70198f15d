#!/usr/bin/env bash
# GPU check and benchmark of the wgpu backend, for a machine with a GPU and
# no crates registry: it runs a prebuilt release `wapo` binary.
#
#   scripts/gpu-bench.sh BIN_DIR [GOLDEN_DIR]
#
# BIN_DIR holds the `wapo` binary and, optionally, prebuilt test binaries in
# BIN_DIR/tests/ (`cargo test --release --no-run`, copied there): they run
# first, with WAPO_REQUIRE_GPU=1. GOLDEN_DIR defaults to tests/data/golden.
# The Vulkan loader must already be reachable (LD_LIBRARY_PATH / VK_ICD_FILENAMES
# set by the caller). Results go to $OUT (default ./gpu-bench-out):
#   adapter.txt   the adapter the runs used
#   loss.txt      `wapo loss --backend wgpu --check` of every golden case
#   tests.txt     the test binaries' output (equivalence suites on the GPU)
#   bench.txt     `wapo bench objective --backend wgpu` at the four shapes
#   train.txt     `wapo bench train --backend wgpu` (64 and 256 prompts, the
#                 larger model's SFT tokens/s, the GEMM's TFLOP/s at 4096³)
#   llm.txt       `wapo bench llm --backend wgpu` on $MODEL (default
#                 .models/SmolLM2-135M-Instruct.Q4_1.gguf) when it exists:
#                 generation tokens/s, the training step, one RL step
# Exit status: non-zero when a golden case fails or the benchmark fails.
set -uo pipefail

BIN_DIR=${1:?usage: gpu-bench.sh BIN_DIR [GOLDEN_DIR]}
HERE=$(cd "$(dirname "$0")/.." && pwd)
GOLDEN=${2:-$HERE/tests/data/golden}
OUT=${OUT:-$PWD/gpu-bench-out}
WAPO="$BIN_DIR/wapo"
mkdir -p "$OUT"

[ -x "$WAPO" ] || { echo "no executable $WAPO" >&2; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/adapter.txt" 2>&1

status=0
: > "$OUT/tests.txt"
for t in "$BIN_DIR"/tests/*; do
  [ -x "$t" ] || continue
  echo "== $(basename "$t")" >> "$OUT/tests.txt"
  WAPO_REQUIRE_GPU=1 "$t" --test-threads 1 >> "$OUT/tests.txt" 2>&1 || { status=1; echo "FAILED: $t" >> "$OUT/tests.txt"; }
done
grep -E "^test result|FAILED" "$OUT/tests.txt"

pass=0
fail=0
: > "$OUT/loss.txt"
for case in "$GOLDEN"/*.json; do
  [ -f "$case" ] || continue
  if "$WAPO" loss --backend wgpu --check "$case" >> "$OUT/loss.txt" 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAILED: $case" >> "$OUT/loss.txt"
  fi
done
echo "golden cases on wgpu: $pass passed, $fail failed" | tee -a "$OUT/loss.txt"
[ "$fail" -eq 0 ] || status=1

"$WAPO" bench objective --backend wgpu --iters "${ITERS:-20}" \
  --shapes 4096x32768,16384x32768,65536x64,8192x151936 2>&1 | tee "$OUT/bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

"$WAPO" bench train --backend wgpu --prompts 64,256 --large --reps "${REPS:-3}" 2>&1 | tee "$OUT/train.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

MODEL=${MODEL:-$HERE/.models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ -f "$MODEL" ]; then
  "$WAPO" bench llm --model "$MODEL" --backend wgpu --reps "${REPS:-3}" 2>&1 | tee "$OUT/llm.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "skipped: no model file $MODEL" | tee "$OUT/llm.txt"
fi

exit $status
