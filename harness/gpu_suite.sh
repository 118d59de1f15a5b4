#!/usr/bin/env bash
# GPU telemetry: a short sweep and the whole scenario suite with a larger preset, into OUT_DIR.
#   harness/gpu_suite.sh OUT_DIR [PRESET]      (PRESET: medium (default) or large)
# Writes OUT_DIR/sweep.duckdb and OUT_DIR/suite/{suite.duckdb,manifest.json,truth.json}; copy the suite
# folder to datasets/gpu-<preset>/ to ship it. Scenario loads are fractions of the capacity calibrated on the
# GPU at the start of each run, so the incidents overload it just as they overload the CPU.
set -euo pipefail
OUT="${1:?usage: harness/gpu_suite.sh OUT_DIR [PRESET]}"
PRESET="${2:-medium}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
"$PY" -m causalsre harness sweep harness/configs/sweep_gpu.toml --db "$OUT/sweep.duckdb" --json \
    > "$OUT/sweep_summary.json"
"$PY" -m harness.suite "$OUT/suite" --seed 0 --set engine.model="$PRESET" --set engine.device=cuda \
    --set engine.dtype=bfloat16
