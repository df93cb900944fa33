#!/usr/bin/env bash
# The main job, end to end on one machine: an LM Studio host emulator (standing in for LM Studio,
# which cannot run here), lmgate in front of it, and lmgatectl streaming a chat through lmgate.
#   bash deploy/demo.sh ["your question"]
# Installs what is missing (deploy/setup.sh), builds, runs, and stops everything at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
source deploy/env.sh
bazel build //services:lmgate //tests/emulator:lmstudio_emulator //clients/cpp:lmgatectl </dev/null
BIN="$(bazel info bazel-bin 2>/dev/null)"
question="${1:-Explain in two sentences what a gateway in front of LM Studio is for.}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Waits until FILE has a line "... listening on HOST:PORT ..." and prints PORT.
wait_port() {
  local file=$1 regex=$2
  for _ in $(seq 1 200); do
    if line=$(grep -m1 -oE "$regex [^ ]+" "$file" 2>/dev/null); then echo "${line##*:}" | tr -dc '0-9'; return 0; fi
    sleep 0.05
  done
  echo "demo: timed out waiting for: $regex (see $file)" >&2; cat "$file" >&2; return 1
}

"$BIN/tests/emulator/lmstudio_emulator" --port 0 --tokens_per_second 40 >"$work/emulator.log" 2>&1 &
pids+=($!)
emu_port=$(wait_port "$work/emulator.log" "listening on")
echo "== LM Studio emulator on 127.0.0.1:$emu_port"

"$BIN/services/lmgate" --listen 127.0.0.1:0 --lmstudio_url "http://127.0.0.1:$emu_port" \
  --default_model qwen/qwen3-4b --metrics_listen 127.0.0.1:0 --http_listen 127.0.0.1:0 \
  >"$work/lmgate.log" 2>&1 &
pids+=($!)
gate_port=$(wait_port "$work/lmgate.log" "lmgate listening on")
echo "== lmgate on 127.0.0.1:$gate_port"
# Printed with the line above (one flush): the ingress's port.
http_port=$(grep -m1 -oE 'openai-compatible http on http://[0-9.]+:[0-9]+' "$work/lmgate.log" |
  grep -oE '[0-9]+$')
echo "== lmgate's OpenAI-compatible HTTP ingress on http://127.0.0.1:$http_port/v1"

ctl() { "$BIN/clients/cpp/lmgatectl" --addr "127.0.0.1:$gate_port" "$@"; }
echo "== lmgatectl models"
ctl models
echo "== lmgatectl chat (the model is not loaded: lmgate loads it, then tokens stream)"
ctl chat --system "You are terse." "$question"
echo "== the same through the OpenAI-compatible HTTP ingress (curl -N, SSE)"
curl -sN "http://127.0.0.1:$http_port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"qwen/qwen3-4b\",\"stream\":true,\"max_tokens\":40,
       \"messages\":[{\"role\":\"user\",\"content\":\"$question\"}]}" </dev/null |
  sed -n 's/^data: //p' | { grep -v '^\[DONE\]$' || true; } |
  sed -n 's/.*"content":"\([^"]*\)".*/\1/p' | tr -d '\n'
echo
echo "== lmgatectl models (now loaded)"
ctl models --loaded
