#!/usr/bin/env bash
# Regenerates corpus/convert/ from seeds/convert/*.txtpb: the file name's first digit is the
# message-type byte convert_fuzzer.cc reads first (0 Chat, 1 Complete, 2 Embed, 3 Tokenize,
# 4 LoadModel); the rest is the binary encoding (protoc --encode).
set -euo pipefail
cd "$(dirname "$0")"
root=../..
declare -A type=([0]=lmgate.v1.ChatRequest [1]=lmgate.v1.CompleteRequest [2]=lmgate.v1.EmbedRequest
                 [3]=lmgate.v1.TokenizeRequest [4]=lmgate.v1.LoadModelRequest)
for f in seeds/convert/*.txtpb; do
  base="$(basename "$f" .txtpb)"
  sel="${base:0:1}"
  out="corpus/convert/seed_${base}"
  { printf "\\x0${sel}"; protoc -I "$root/proto" -I /usr/include --encode="${type[$sel]}" \
      lmgate/v1/inference.proto lmgate/v1/model_manager.proto < "$f"; } > "$out"
done
ls corpus/convert
