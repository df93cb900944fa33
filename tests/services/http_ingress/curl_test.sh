#!/usr/bin/env bash
# What a person types: curl (-N for streams) against lmgate's OpenAI-compatible HTTP ingress,
# lmgate in front of the LM Studio emulator, everything on 127.0.0.1 with free ports.
#   curl_test.sh <lmgate> <lmstudio_emulator>
set -euo pipefail
lmgate="$1"
emulator="$2"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/lmgate.log" ] && tail -20 "$work/lmgate.log" >&2; exit 1; }

# Starts "$@" with stdout on a fifo and reads lines until one matches $regex (20 s at most);
# sets $matched to its first group and leaves a reader copying the rest to $log (so the process
# never blocks on stdout). Not in $(...): the pids must reach cleanup.
matched=""
start_and_wait() {
  local regex=$1 log=$2; shift 2
  local fifo="$work/fifo.${#pids[@]}"
  mkfifo "$fifo"
  "$@" >"$fifo" 2>>"$log" &
  pids+=($!)
  exec 3<"$fifo"
  local line
  while IFS= read -r -t 20 line <&3; do
    echo "$line" >>"$log"
    if [[ $line =~ $regex ]]; then
      matched="${BASH_REMATCH[1]}"
      cat <&3 >>"$log" &
      pids+=($!)
      exec 3<&-
      return 0
    fi
  done
  fail "no line matching '$regex' (see $log)"
}

start_and_wait 'listening on 127\.0\.0\.1:([0-9]+)' "$work/emulator.log" \
  "$emulator" --port 0 --tokens_per_second 400
emu="http://127.0.0.1:$matched"
key="curl-test-0123456789abcdef"
tight="curl-tight-0123456789abcdef"
cat >"$work/lmgate.json" <<JSON
{"listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0", "metrics_listen": "",
 "lmstudio": {"url": "$emu"}, "drivers": ["sdk_ws", "rest", "openai"],
 "keys": [{"tenant": "app", "key_sha256": "$(printf %s "$key" | sha256sum | cut -d' ' -f1)"},
          {"tenant": "tight", "requests_per_minute": 1,
           "key_sha256": "$(printf %s "$tight" | sha256sum | cut -d' ' -f1)"}]}
JSON
start_and_wait 'openai-compatible http on http://127\.0\.0\.1:([0-9]+)/v1' "$work/lmgate.log" \
  "$lmgate" --config="$work/lmgate.json"
port=$matched
base="http://127.0.0.1:$port/v1"
auth=(-H "Authorization: Bearer $key")
echo "lmgate's ingress at $base (emulator $emu)"

echo "== models"
curl -sf "${auth[@]}" "$base/models" | grep -q '"id":"qwen/qwen3-4b"' || fail "models list"
curl -sf "${auth[@]}" "$base/models/qwen/qwen3-4b" | grep -q '"object":"model"' || fail "model"

echo "== chat, streamed"
out=$(curl -sN "${auth[@]}" "$base/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"Hello!"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":10}')
echo "$out" | grep -q '"delta":{"content"' || fail "no content delta: $out"
echo "$out" | grep -q '"usage":{"completion_tokens":10' || fail "no usage: $out"
[ "$(echo "$out" | grep -c '^data: \[DONE\]$')" = 1 ] || fail "no [DONE]: $out"

echo "== chat, plain; completions; embeddings; paths without /v1"
curl -sf "${auth[@]}" "$base/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"Hi"}]}' |
  grep -q '"object":"chat.completion"' || fail "chat"
curl -sf "${auth[@]}" "http://127.0.0.1:$port/completions" -H 'Content-Type: application/json' \
  -d '{"model":"qwen/qwen3-4b","prompt":"Once upon a time","max_tokens":5}' |
  grep -q '"object":"text_completion"' || fail "completions"
curl -sf "${auth[@]}" "$base/embeddings" -H 'Content-Type: application/json' \
  -d '{"model":"text-embedding-nomic-embed-text-v1.5","input":"hello","encoding_format":"base64"}' |
  grep -q '"embedding":"' || fail "embeddings base64"

echo "== errors: 401, 404, 400, 429"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$base/models")
[ "$code" = 401 ] || fail "wrong key gave $code"
body=$(curl -s "${auth[@]}" "$base/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"nobody/nothing","messages":[{"role":"user","content":"x"}]}')
echo "$body" | grep -q '"code":"model_not_found"' || fail "unknown model: $body"
body=$(curl -s "${auth[@]}" "$base/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}],"logit_bias":{"1":2}}')
echo "$body" | grep -q '"param":"logit_bias"' || fail "logit_bias: $body"
curl -sf -H "Authorization: Bearer $tight" "$base/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}],"max_tokens":2}' >/dev/null
headers=$(curl -s -i -H "Authorization: Bearer $tight" "$base/chat/completions" \
  -H 'Content-Type: application/json' -d '{"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"x"}]}')
echo "$headers" | grep -q '^HTTP/1.1 429' || fail "quota: $headers"
echo "$headers" | grep -qi '^retry-after: [0-9]' || fail "no Retry-After: $headers"

echo "== a client that gives up mid-stream (curl --max-time) cancels the prediction"
# The host sends one token, then holds the prediction until it is cancelled.
curl -sf "$emu/__emulator/faults" -H 'Content-Type: application/json' \
  -d '{"stall_after_fragments":1,"stall_ms":-1}' >/dev/null
rc=0
curl -sN --max-time 1 "${auth[@]}" "$base/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"qwen/qwen3-4b","messages":[{"role":"user","content":"A long story"}],"stream":true,"max_tokens":100000}' \
  >/dev/null || rc=$?
[ "$rc" = 28 ] || fail "curl --max-time exited $rc, not 28 (timeout)"
for _ in $(seq 250); do  # until the emulator reports it (bounded: 5 s)
  curl -s "$emu/__emulator/stats" | grep -q '"predictions_active":0' && break
  sleep 0.02
done
curl -s "$emu/__emulator/stats" | grep -q '"predictions_active":0' || fail "prediction still running"

echo "== 50 concurrent streams for an unloaded model: one load"
loads_before=$(curl -s "$emu/__emulator/stats" | grep -oE '"loads_started":[0-9]+' | cut -d: -f2)
done_count=$(seq 50 | xargs -P 50 -I{} curl -sN "${auth[@]}" "$base/chat/completions" \
  -H 'Content-Type: application/json' \
  -d '{"model":"google/gemma-3-1b","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":4}' |
  grep -c '^data: \[DONE\]$')
[ "$done_count" = 50 ] || fail "$done_count of 50 streams finished"
loads_after=$(curl -s "$emu/__emulator/stats" | grep -oE '"loads_started":[0-9]+' | cut -d: -f2)
[ $((loads_after - loads_before)) = 1 ] || fail "$((loads_after - loads_before)) loads for 50 streams"
echo "PASS"
