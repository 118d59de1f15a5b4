#!/usr/bin/env bash
# The GPU checks of the engine and harness in one pass, for a lent CUDA machine with a short time budget:
#   harness/gpu_check.sh OUT_DIR
# 1. the engine tests (CUDA exactness against the dense forward included), eagerly and with the opt-in
#    decode CUDA graphs (CAUSALSRE_CUDA_GRAPHS=1);
# 2. the engine benchmark on the large preset (~0.9B, bfloat16) with the default mixed workload, eager and
#    with graphs;
# 3. the GPU sweep writing telemetry to DuckDB; 4. the benchmark with a larger workload.
# Each step has its own time limit and writes its results into OUT_DIR as soon as it ends, so a step that
# overruns still leaves the earlier ones. STEPS="tests bench_large" runs only those steps. Packages the
# machine lacks (duckdb and pydantic, for the sweep) can be installed from wheels in .whl/, which the script
# puts on PYTHONPATH.
set -uo pipefail
OUT="${1:?usage: harness/gpu_check.sh OUT_DIR}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import torch, transformers, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/machine.txt"

STEPS="${STEPS:-tests tests_graphs bench_large bench_large_graphs sweep sweep_info bench_large_256}"   # a subset reruns only those
step() {   # step NAME SECONDS COMMAND...: run with a limit, log to OUT/NAME.log, note the exit status
    local name="$1" limit="$2"; shift 2
    [[ " $STEPS " == *" $name "* ]] || return 0
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "$name: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
}

step tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/engine -x
step tests_graphs 120 env CAUSALSRE_CUDA_GRAPHS=1 "$PY" -m pytest -q -p no:cacheprovider tests/engine -x
step bench_large 180 "$PY" -m causalsre bench engine --preset large --device cuda --dtype bfloat16 --threads 4 \
    --max-num-batched-tokens 256 --json --out "$OUT/engine_bench_cuda_large.json"
step bench_large_graphs 180 env CAUSALSRE_CUDA_GRAPHS=1 "$PY" -m causalsre bench engine --preset large \
    --device cuda --dtype bfloat16 --threads 4 --max-num-batched-tokens 256 --json --out "$OUT/engine_bench_cuda_large_graphs.json"
step sweep 150 "$PY" -m causalsre harness sweep harness/configs/sweep_gpu.toml --db "$OUT/sweep_gpu.duckdb" --json
step sweep_info 30 "$PY" -m causalsre db info "$OUT/sweep_gpu.duckdb" --json
step bench_large_256 150 "$PY" -m causalsre bench engine --preset large --device cuda --dtype bfloat16 --threads 4 \
    --num-requests 256 --max-num-seqs 128 --max-num-batched-tokens 2048 --chunk-size 512 --static-batch-size 32 \
    --rounds 1 --json --out "$OUT/engine_bench_cuda_large_256.json"
cat "$OUT/steps.txt"
