#!/usr/bin/env node
// Streams one chat through lmgate (lmgate.v1.Inference/Chat) and prints its stats, or lists the
// host's models (lmgate.v1.ModelManager/ListModels), with @grpc/grpc-js and @grpc/proto-loader.
// The .proto files are loaded at run time from proto/ (no generated code).
//
//   (cd clients/node && npm ci)           # or: bash deploy/setup.sh
//   node clients/node/chat.mjs --addr 127.0.0.1:50051 "Say hello"
//   node clients/node/chat.mjs --list-models
//
// Answer tokens go to stdout as they arrive; progress and the final stats line go to stderr. The
// API key comes from --key or $LMGATE_API_KEY and is sent as "authorization: Bearer <key>".
import { fileURLToPath } from "node:url";
import path from "node:path";
import { parseArgs } from "node:util";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    addr: { type: "string", default: process.env.LMGATE_ADDR ?? "127.0.0.1:50051" },
    model: { type: "string", default: "" }, // empty = lmgate's default model
    key: { type: "string", default: process.env.LMGATE_API_KEY ?? "" },
    system: { type: "string", default: "" },
    "list-models": { type: "boolean", default: false },
    timeout: { type: "string", default: "300" }, // seconds
    proto_root: {
      type: "string",
      default:
        process.env.LMGATE_PROTO_ROOT ??
        path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "proto"),
    },
  },
});
if (!opts["list-models"] && positionals.length === 0) {
  console.error(
    "usage: chat.mjs [--addr A] [--model M] [--key K] [--system S] PROMPT | --list-models",
  );
  process.exit(2);
}

// keepCase: fields as in the .proto (content_delta); enums and 64-bit ints as strings; unset
// fields get their defaults; the oneof member that is set is named by `event`.
const definition = protoLoader.loadSync(
  ["lmgate/v1/inference.proto", "lmgate/v1/model_manager.proto"],
  {
    includeDirs: [opts.proto_root],
    keepCase: true,
    enums: String,
    longs: String,
    defaults: true,
    oneofs: true,
  },
);
const lmgate = grpc.loadPackageDefinition(definition).lmgate.v1;
// Plaintext, like grpcurl -plaintext; grpc.credentials.createSsl() for a TLS port.
const creds = grpc.credentials.createInsecure();
const metadata = new grpc.Metadata();
if (opts.key) metadata.set("authorization", `Bearer ${opts.key}`);
const deadline = () => new Date(Date.now() + Number(opts.timeout) * 1000);

function fail(err) {
  console.error(`error: ${grpc.status[err.code] ?? err.code}: ${err.details ?? err.message}`);
  process.exit(1);
}

const lower = (name, prefix) => name.replace(prefix, "").toLowerCase();
const seconds = (d) => Number(d?.seconds ?? 0) + (d?.nanos ?? 0) / 1e9;

if (opts["list-models"]) {
  const mm = new lmgate.ModelManager(opts.addr, creds);
  mm.ListModels({}, metadata, { deadline: deadline() }, (err, resp) => {
    if (err) fail(err);
    for (const m of resp.models) {
      const instances = m.instances.map((i) => i.identifier).join(",");
      const type = lower(m.type, "MODEL_TYPE_").padEnd(10);
      const state = lower(m.state, "MODEL_STATE_").padEnd(11);
      console.log(`${m.key.padEnd(40)} ${type} ${state} ${instances}`);
    }
    mm.close();
  });
} else {
  const inference = new lmgate.Inference(opts.addr, creds);
  const messages = opts.system ? [{ role: "system", content: opts.system }] : [];
  messages.push({ role: "user", content: positionals.join(" ") });
  const call = inference.Chat({ model: opts.model, messages }, metadata, { deadline: deadline() });
  // Ctrl-C cancels the call; lmgate stops the upstream prediction too.
  process.once("SIGINT", () => call.cancel());
  let deltas = 0;
  call.on("data", (resp) => {
    switch (resp.event) {
      case "content_delta":
        deltas++;
        process.stdout.write(resp.content_delta);
        break;
      case "reasoning_delta":
        process.stderr.write(resp.reasoning_delta);
        break;
      case "model_loading":
        console.error(`loading model ${Math.round(100 * resp.model_loading.fraction)}%`);
        break;
      case "queued":
        console.error(`queued at position ${resp.queued.position}`);
        break;
      case "result": {
        const s = resp.result.stats;
        process.stdout.write("\n");
        console.error(
          `-- ${s.model_key} via ${s.driver}: ${s.prompt_tokens} prompt + ` +
            `${s.completion_tokens} completion tokens in ${deltas} deltas, ` +
            `${s.tokens_per_second.toFixed(1)} tok/s, ` +
            `TTFT ${seconds(s.time_to_first_token).toFixed(3)}s, stop ${s.stop_reason}`,
        );
        break;
      }
    }
  });
  call.on("error", fail);
  call.on("end", () => inference.close());
}
