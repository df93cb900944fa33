#!/usr/bin/env bash
# Regenerates corpus/request_path/seed_* from seeds/request_path/*.txtpb: the file name's first
# digit is the method byte request_path_fuzzer.cc reads first (0 Chat, 1 Complete, 2 Embed,
# 3 Tokenize, 4 CountTokens, 5 LoadModel, 6 UnloadModel, 7 GetModel, 8 ListModels, 9 WatchModels);
# the rest is the binary encoding (protoc --encode). Also writes the deeply nested JSON seeds
# (issue 13 item 1): a Chat whose JSON fields nest 64 (accepted), 65 and 300 levels (the
# 100,000-level crash itself is tests/reliability/bad_input_test; seeds stay small so that
# libFuzzer's max_len, taken from the largest seed, stays small).
set -euo pipefail
cd "$(dirname "$0")"
root=../..
declare -A type=([0]=lmgate.v1.ChatRequest [1]=lmgate.v1.CompleteRequest
                 [2]=lmgate.v1.EmbedRequest [3]=lmgate.v1.TokenizeRequest
                 [4]=lmgate.v1.TokenizeRequest [5]=lmgate.v1.LoadModelRequest
                 [6]=lmgate.v1.UnloadModelRequest [7]=lmgate.v1.GetModelRequest
                 [8]=lmgate.v1.ListModelsRequest [9]=lmgate.v1.WatchModelsRequest)
encode() {  # selector, text proto on stdin, output file
  { printf "\\x0$1"; protoc -I "$root/proto" -I /usr/include --encode="${type[$1]}" \
      lmgate/v1/inference.proto lmgate/v1/model_manager.proto; } > "$2"
}
for f in seeds/request_path/*.txtpb; do
  base="$(basename "$f" .txtpb)"
  encode "${base:0:1}" "corpus/request_path/seed_${base}" < "$f"
done
deep() {  # {"a":{"a":...1...}} nested $1 levels, escaped for a text proto string
  python3 -c 'import sys; n=int(sys.argv[1]); print("{\\\"a\\\":" * n + "1" + "}" * n, end="")' "$1"
}
for levels in 64 65 300; do
  j="$(deep "$levels")"
  encode 0 "corpus/request_path/seed_0_chat_deep_json_${levels}" <<TXT
model: "fake/llm-small"
messages { role: "user" content: "hi" }
messages { role: "assistant" tool_calls { id: "c1" name: "f" arguments: "$j" } }
messages { role: "tool" content: "{}" tool_call_id: "c1" }
tools { name: "f" parameters_json_schema: "$j" }
structured_output { json_schema: "$j" }
TXT
done
ls corpus/request_path
