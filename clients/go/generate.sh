#!/usr/bin/env bash
# Generates the Go stubs of lmgate.v1 (package lmgatev1) from proto/ with Debian's protoc,
# protoc-gen-go and protoc-gen-go-grpc. The protos declare no go_package: M options map them to
# the import path lmgate/clients/go/lmgatev1.
#   bash clients/go/generate.sh [MODULE_DIR] [PROTO_ROOT]
# MODULE_DIR (default clients/go) receives lmgatev1/ (git-ignored); PROTO_ROOT defaults to proto/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
proto_root="${2:-$here/../../proto}"
module=lmgate/clients/go
opts="module=$module"
for f in common inference model_manager; do opts+=",Mlmgate/v1/$f.proto=$module/lmgatev1"; done
mkdir -p "$out"
/usr/bin/protoc -I "$proto_root" \
  --go_out="$out" --go_opt="$opts" --go-grpc_out="$out" --go-grpc_opt="$opts" \
  "$proto_root"/lmgate/v1/common.proto "$proto_root"/lmgate/v1/inference.proto \
  "$proto_root"/lmgate/v1/model_manager.proto
