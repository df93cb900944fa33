#!/usr/bin/env bash
# Bazel sh_test driver of the peer benchmark's --short mode (figures only; asserts nothing on
# timing). Fails, never skips, when h2load, nginx, redis-server or the pinned Portkey are missing (bash
# deploy/setup.sh installs them), when a path serves no call, or when lmgate does not exit 0 on
# SIGTERM.  run_short.sh <lmgate> <emulator> <peers/package.json> <peer_bench.py> <a .proto>
set -euo pipefail
lmgate="$1" emulator="$2" package_json="$3" script="$4" proto="$5"
for tool in h2load nginx node protoc redis-server; do
  command -v "$tool" >/dev/null || { echo "peer bench: $tool is missing; run bash deploy/setup.sh" >&2; exit 1; }
done
# node_modules is installed outside Bazel: find the real directory through the runfiles symlink.
peers="$(dirname "$(readlink -f "$package_json")")"
[ -f "$peers/node_modules/@portkey-ai/gateway/build/start-server.js" ] ||
  { echo "peer bench: Portkey is not installed in $peers; run bash deploy/setup.sh" >&2; exit 1; }
# .../proto/lmgate/v1/x.proto -> .../proto
proto_root="$(dirname "$(dirname "$(dirname "$(readlink -f "$proto")")")")"
extra=()
if [ "${LMGATE_TEST_TIME_SCALE:-1}" != "1" ]; then extra=(--rates=50); fi
exec /usr/bin/python3 "$script" --short --lmgate="$lmgate" --emulator="$emulator" \
  --proto_root="$proto_root" --portkey_dir="$peers" \
  --report="${TEST_UNDECLARED_OUTPUTS_DIR:-/tmp}/peer_bench.md" ${extra[@]+"${extra[@]}"}
