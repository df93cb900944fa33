// The README's grpcurl recipes, run against a live lmgate by a client that knows nothing but
// server reflection (reflection_grpcurl.mjs: grpc-js-reflection-client + protobufjs). grpcurl
// needs exactly that from the server, so this proves the recipes work for grpcurl users (grpcurl
// itself is not packaged for Debian 12).
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";

import { startGateway } from "./gateway.mjs";
import { grpcurl, grpcurlRecipes, shellWords } from "./reflection_grpcurl.mjs";
import { runfile } from "./gateway.mjs";

const README_ADDR = "127.0.0.1:50051";
const recipes = grpcurlRecipes(fs.readFileSync(runfile("LMGATE_README"), "utf8"), "## grpcurl");

// grpcurl prints one indented JSON document per message; split them back.
function messages(stdout) {
  return stdout
    .split(/\n(?=\{)/)
    .filter((s) => s.trim())
    .map((s) => JSON.parse(s));
}

// What each recipe must print. Keyed by the recipe's verb and first operand / request body; every
// recipe in the README must have an entry, and every entry a recipe.
const chatted = new Set();
const expectations = {
  list: (out) => {
    const services = out.trim().split("\n");
    for (const s of ["lmgate.v1.ModelManager", "lmgate.v1.Inference", "grpc.health.v1.Health"]) {
      assert.ok(services.includes(s), `${s} is not listed: ${services}`);
    }
  },
  "list lmgate.v1.ModelManager": (out) => {
    assert.deepEqual(out.trim().split("\n"), [
      "lmgate.v1.ModelManager.ListModels",
      "lmgate.v1.ModelManager.GetModel",
      "lmgate.v1.ModelManager.LoadModel",
      "lmgate.v1.ModelManager.UnloadModel",
      "lmgate.v1.ModelManager.WatchModels",
      "lmgate.v1.ModelManager.GetServerInfo",
      "lmgate.v1.ModelManager.UpdateModelPolicy",
    ]);
  },
  "describe lmgate.v1.Inference": (out) => {
    assert.match(out, /^lmgate\.v1\.Inference is a service:$/m);
    for (const rpc of [
      "rpc Chat ( .lmgate.v1.ChatRequest ) returns ( stream .lmgate.v1.ChatResponse );",
      "rpc Complete ( .lmgate.v1.CompleteRequest ) returns ( stream .lmgate.v1.ChatResponse );",
      "rpc Embed ( .lmgate.v1.EmbedRequest ) returns ( .lmgate.v1.EmbedResponse );",
      "rpc Tokenize ( .lmgate.v1.TokenizeRequest ) returns ( .lmgate.v1.TokenizeResponse );",
      "rpc CountTokens ( .lmgate.v1.TokenizeRequest ) returns ( .lmgate.v1.CountTokensResponse );",
    ]) {
      assert.ok(out.includes(`  ${rpc}\n`), `missing "${rpc}" in:\n${out}`);
    }
  },
  "describe lmgate.v1.ChatRequest": (out) => {
    assert.match(out, /^lmgate\.v1\.ChatRequest is a message:$/m);
    assert.match(out, /^ {2}repeated \.lmgate\.v1\.ChatMessage messages = 2;$/m);
    assert.match(out, /^ {2}\.google\.protobuf\.Duration ttl_hint = 9;$/m);
  },
  "lmgate.v1.ModelManager/ListModels": (out) => {
    const [res] = messages(out);
    const qwen = res.models.find((m) => m.key === "qwen/qwen3-4b");
    assert.equal(qwen.type, "MODEL_TYPE_LLM");
    assert.equal(qwen.state, "MODEL_STATE_NOT_LOADED");
    assert.equal(qwen.maxContextLength, 40960);
    assert.match(qwen.sizeBytes, /^\d+$/, "int64 prints as a JSON string, as in protojson");
  },
  "lmgate.v1.ModelManager/LoadModel": (out, body) => {
    const msgs = messages(out);
    const progress = msgs.filter((m) => m.progress);
    assert.ok(progress.length >= 1, `no progress messages in:\n${out}`);
    for (const m of progress)
      assert.ok(m.progress.fraction === undefined || m.progress.fraction <= 1);
    const last = msgs.at(-1);
    assert.ok(last.instance, "the loaded instance is the last message");
    // AUTO prefers the SDK for loads (it reports progress). Progress messages carry no driver yet
    // (lmgate learns it when the load returns), so only the last message is checked.
    assert.equal(last.driver, "DRIVER_SDK");
    assert.equal(last.instance.modelKey, body.model);
    assert.equal(last.instance.state, "MODEL_STATE_READY");
    assert.equal(last.instance.contextLength, body.config.context_length);
    assert.equal(last.instance.ttl, body.config.ttl);
  },
  "lmgate.v1.Inference/Chat": (out, body) => {
    const msgs = messages(out);
    const result = msgs.at(-1).result;
    assert.ok(result, `the last message is not a result:\n${out}`);
    assert.equal(result.stats.modelKey, body.model);
    const deltas = msgs.filter((m) => "contentDelta" in m).map((m) => m.contentDelta);
    if (body.no_deltas) {
      assert.deepEqual(deltas, []);
      assert.equal(result.stats.completionTokens, body.sampling.max_tokens);
      assert.equal(result.stats.stopReason, "STOP_REASON_MAX_TOKENS");
    } else {
      // The first Chat recipe is the first call to use its model: lmgate loads it meanwhile.
      if (!chatted.has(body.model))
        assert.ok(
          msgs.some((m) => m.modelLoading),
          "modelLoading",
        );
      chatted.add(body.model);
      assert.ok(deltas.length > 1, `${deltas.length} content deltas`);
      assert.equal(deltas.join(""), result.content);
      assert.equal(result.stats.stopReason, "STOP_REASON_EOS");
      assert.match(result.stats.timeToFirstToken, /^\d+(\.\d+)?s$/, "durations print as protojson");
    }
  },
  "lmgate.v1.Inference/Embed": (out, body) => {
    const [res] = messages(out);
    assert.equal(res.embeddings.length, body.inputs.length);
    assert.equal(res.modelKey, body.model);
    assert.ok(res.embeddings.every((e) => e.values.length > 0));
  },
  "lmgate.v1.ModelManager/UnloadModel": (out, body) => {
    const [res, ...rest] = messages(out);
    assert.deepEqual(rest, []);
    assert.deepEqual(res.unloaded, [body.model]);
    assert.match(res.unloadDuration, /^\d+(\.\d+)?s$/, "the unload's duration prints as protojson");
  },
  "grpc.health.v1.Health/Check": (out) => {
    assert.deepEqual(messages(out), [{ status: "SERVING" }]);
  },
};

function expectationFor(args) {
  const words = args.filter((a, i) => !a.startsWith("-") && !["-d", "-H"].includes(args[i - 1]));
  const [, verb, operand] = words;
  return expectations[operand && ["list", "describe"].includes(verb) ? `${verb} ${operand}` : verb];
}

describe("README grpcurl recipes through server reflection only", () => {
  let gw;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw?.stop();
  });

  test("the README has the recipes this test knows", () => {
    assert.ok(recipes.length >= 10, `${recipes.length} recipes`);
    for (const r of recipes) {
      assert.ok(r.args.includes(README_ADDR), `recipe without ${README_ADDR}: ${r.line}`);
      assert.ok(expectationFor(r.args), `no expectation for recipe: ${r.line}`);
    }
    assert.deepEqual(shellWords(`-d '{"a": "b c"}' x`), ["-d", '{"a": "b c"}', "x"]);
  });

  // In README order: the model states each recipe expects follow from the ones before it.
  for (const r of recipes) {
    test(r.line, async () => {
      const args = r.args.map((a) => (a === README_ADDR ? gw.addr : a));
      const { stdout } = await grpcurl(args);
      const body = args.includes("-d") ? JSON.parse(args[args.indexOf("-d") + 1]) : undefined;
      expectationFor(r.args)(stdout, body);
    });
  }

  test("an unknown field in a request body is refused before anything is sent", async () => {
    await assert.rejects(
      grpcurl(["-plaintext", "-d", '{"modle":"x"}', gw.addr, "lmgate.v1.Inference/Chat"]),
      /has no known field named modle/,
    );
  });

  test("a failed call reports its gRPC status", async () => {
    await assert.rejects(
      grpcurl([
        "-plaintext",
        "-d",
        '{"model":"no/such-model"}',
        gw.addr,
        "lmgate.v1.ModelManager/GetModel",
      ]),
      (e) => e.code === 5 /* NOT_FOUND */,
    );
  });
});
