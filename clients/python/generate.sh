#!/usr/bin/env bash
# Generates the Python stubs of lmgate.v1 from proto/ with Debian's protoc and grpc_python_plugin
# (packages protobuf-compiler, protobuf-compiler-grpc; no pip, no grpcio-tools).
#   bash clients/python/generate.sh [OUT_DIR] [PROTO_ROOT]
# OUT_DIR defaults to clients/python/gen (git-ignored; chat.py looks there), PROTO_ROOT to proto/.
# Bazel runs the same script at build time (//clients/python:stubs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/gen}"
proto_root="${2:-$here/../../proto}"
mkdir -p "$out"
/usr/bin/protoc -I "$proto_root" --python_out="$out" --grpc_out="$out" \
  --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
  "$proto_root"/lmgate/v1/common.proto "$proto_root"/lmgate/v1/inference.proto \
  "$proto_root"/lmgate/v1/model_manager.proto
