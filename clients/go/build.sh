#!/usr/bin/env bash
# Builds the Go example offline from Debian 12's Go packages, in GOPATH mode (no module download):
# golang-go, golang-google-grpc-dev, golang-google-protobuf-dev, golang-github-golang-protobuf-1-5-dev,
# protoc-gen-go, protoc-gen-go-grpc (deploy/setup.sh installs them; see README.md for why 1-5).
#   bash clients/go/build.sh [OUT_BINARY] [PROTO_ROOT]
# Bazel runs the same script at build time (//clients/go:go_example).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/lmgate-go-example}")"
proto_root="$(realpath "${2:-$here/../../proto}")"
for tool in /usr/bin/go /usr/bin/protoc-gen-go /usr/bin/protoc-gen-go-grpc; do
  [ -x "$tool" ] || { echo "build.sh: $tool is missing. Run: bash deploy/setup.sh" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
pkg="$work/src/lmgate/clients/go"
mkdir -p "$pkg"
cp "$here/main.go" "$pkg/"
PATH="/usr/bin:$PATH" bash "$here/generate.sh" "$pkg" "$proto_root"
cd "$pkg"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="${GOCACHE:-$work/cache}" GOPROXY=off \
  CGO_ENABLED=0 /usr/bin/go build -trimpath -o "$out" .
