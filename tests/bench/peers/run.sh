#!/usr/bin/env bash
# The peer benchmark (issue 17): the same chat direct to the emulator, through nginx, Portkey and
# lmgate (gRPC per driver, and the HTTP ingress when built), measured by h2load in one run.
#   bash tests/bench/peers/run.sh [--short] [--report=FILE] [peer_bench.py flags]
# Installs what it needs: h2load (nghttp2-client), nginx-light and redis-server (the cluster-mode
# row) from Debian (apt, as root), the pinned Portkey gateway with npm ci here; builds lmgate and
# the emulator with -c opt.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=tests/bench/peers
need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)  # the cluster-mode row
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    # The package starts a system nginx on port 80; the benchmark runs its own.
    systemctl stop nginx 2>/dev/null || true
  else
    echo "peer bench: missing ${need[*]}: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
stamp="$here/node_modules/.lmgate-lock-sha"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
[ -f deploy/env.sh ] && source deploy/env.sh
bazel build -c opt //services:lmgate //tests/emulator:lmstudio_emulator >/dev/null 2>&1 ||
  bazel build -c opt //services:lmgate //tests/emulator:lmstudio_emulator
bin="$(bazel info -c opt bazel-bin 2>/dev/null)"
exec /usr/bin/python3 "$here/peer_bench.py" --lmgate="$bin/services/lmgate" \
  --emulator="$bin/tests/emulator/lmstudio_emulator" --proto_root=proto \
  --portkey_dir="$here" "$@"
