// Conformance of //tests/emulator:lmstudio_emulator with LM Studio's official TypeScript SDK
// (@lmstudio/sdk 2.0.0, and 1.5.0 for version skew: they send different KV keys and validate
// different field sets; both pinned in package.json). Every SDK call is bounded by a timeout:
// the SDK drops messages that fail its zod validation and then waits forever, so a fidelity bug
// shows up as a hang, which must fail the test instead of stalling CI.
//
// Run: bazel test //tests/conformance:sdk_conformance_test
//  or: LMSTUDIO_EMULATOR=bazel-bin/tests/emulator/lmstudio_emulator node --test tests/conformance/sdk.test.mjs
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import * as sdk2 from "@lmstudio/sdk";
import * as sdk15 from "@lmstudio/sdk-1.5";

import {
  control,
  emulatorStats,
  recordingLogger,
  startEmulator,
  stopEmulator,
  withTimeout,
} from "./harness.mjs";

const LLM_KEY = "qwen/qwen3-4b";
const LLM_KEY_2 = "google/gemma-3-1b";
const REASONING_KEY = "qwen/qwen3-4b-thinking-2507";
const EMBEDDING_KEY = "text-embedding-nomic-embed-text-v1.5";
const EMBEDDING_DIM = 768;
const API_TOKEN = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";

const STOP_REASONS = [
  "userStopped",
  "modelUnloaded",
  "failed",
  "eosFound",
  "stopStringFound",
  "toolCalls",
  "maxPredictedTokensReached",
  "contextLengthReached",
];

// Disposes a client (closes its sockets) without letting a dispose problem mask a test result.
async function dispose(client) {
  try {
    await withTimeout(client[Symbol.asyncDispose](), "client dispose", 5_000);
  } catch (e) {
    console.error(`client dispose: ${e.message}`);
  }
}

// Drains an OngoingPrediction: returns the fragments (iterated) and the result.
async function drain(prediction, what) {
  const fragments = [];
  await withTimeout(
    (async () => {
      for await (const f of prediction) fragments.push(f);
    })(),
    `${what}: iterate fragments`,
  );
  const result = await withTimeout(prediction.result(), `${what}: result()`);
  return { fragments, result };
}

function assertStats(stats) {
  assert.ok(stats, "result.stats present");
  assert.ok(STOP_REASONS.includes(stats.stopReason), `stopReason ${stats.stopReason}`);
  for (const k of ["promptTokensCount", "predictedTokensCount", "totalTokensCount"]) {
    assert.equal(typeof stats[k], "number", `stats.${k} is a number`);
  }
  assert.equal(stats.totalTokensCount, stats.promptTokensCount + stats.predictedTokensCount);
  assert.ok(stats.promptTokensCount > 0);
  assert.equal(typeof stats.timeToFirstTokenSec, "number");
  assert.equal(typeof stats.tokensPerSecond, "number");
}

const SDKS = [
  { name: "@lmstudio/sdk@2.0.0", mod: sdk2, v2: true },
  { name: "@lmstudio/sdk@1.5.0", mod: sdk15, v2: false },
];

// The happy path, run once per SDK version; `v2` guards what 1.5.0 does not have.
function happyPathSuite({ name: sdkName, mod: { LMStudioClient, rawFunctionTool }, v2 }) {
  describe(`${sdkName} against the emulator (happy path, zero SDK warnings)`, () => {
    let emu;
    let client;
    let log;
    let llm; // the LLM handle from client.llm.load()
    let llmRef; // its instanceReference (1.5.0 does not expose it on the handle; getModelInfo does)

    before(async () => {
      emu = await startEmulator();
      log = recordingLogger();
      client = new LMStudioClient({ baseUrl: emu.wsUrl, logger: log.logger });
    });

    after(async () => {
      if (client) await dispose(client);
      await stopEmulator(emu);
    });

    test("system.getLMStudioVersion", async () => {
      const v = await withTimeout(client.system.getLMStudioVersion(), "getLMStudioVersion");
      assert.equal(v.version, "0.4.0");
      assert.equal(typeof v.build, "number");
    });

    test("repository.lmLink.status: the answer of a host without LM Link", async () => {
      if (!v2) return; // 1.5.0 has no lmLink namespace
      // The real `lms` asks this before every model command; the SDK validates it with zod.
      const s = await withTimeout(client.repository.lmLink.status(), "lmLink.status");
      assert.equal(s.status, "offline");
      assert.deepEqual(s.issues, ["notLoggedIn"]);
      assert.deepEqual(s.peers, []);
      assert.equal(s.deviceIdentifier, null);
      assert.equal(typeof s.deviceName, "string");
    });

    test("system.listDownloadedModels (all, llm, embedding)", async () => {
      const all = await withTimeout(client.system.listDownloadedModels(), "listDownloadedModels");
      const keys = all.map((m) => m.modelKey);
      for (const k of [LLM_KEY, LLM_KEY_2, REASONING_KEY, EMBEDDING_KEY]) {
        assert.ok(keys.includes(k), `${k} listed in ${keys}`);
      }
      const qwen = all.find((m) => m.modelKey === LLM_KEY);
      assert.equal(qwen.type, "llm");
      assert.equal(qwen.format, "gguf");
      assert.equal(qwen.maxContextLength, 40960);
      assert.equal(qwen.trainedForToolUse, true);
      assert.equal(qwen.vision, false);
      assert.equal(typeof qwen.sizeBytes, "number");
      assert.equal(typeof qwen.path, "string");
      const emb = all.find((m) => m.modelKey === EMBEDDING_KEY);
      assert.equal(emb.type, "embedding");
      assert.equal(typeof emb.maxContextLength, "number");

      const llms = await withTimeout(client.system.listDownloadedModels("llm"), "list llm");
      assert.ok(llms.length > 0 && llms.every((m) => m.type === "llm"));
      const embs = await withTimeout(client.system.listDownloadedModels("embedding"), "list emb");
      assert.ok(embs.length > 0 && embs.every((m) => m.type === "embedding"));
    });

    test("listLoaded is empty at start", async () => {
      assert.deepEqual(await withTimeout(client.llm.listLoaded(), "llm.listLoaded"), []);
      assert.deepEqual(
        await withTimeout(client.embedding.listLoaded(), "embedding.listLoaded"),
        [],
      );
    });

    test("llm.load with config, identifier, ttl and onProgress", async () => {
      const progress = [];
      llm = await withTimeout(
        client.llm.load(LLM_KEY, {
          config: { contextLength: 8192, gpu: { ratio: 0.5 } },
          identifier: "conformance-qwen",
          ttl: 300,
          onProgress: (p) => progress.push(p),
        }),
        "llm.load",
      );
      assert.ok(progress.length > 0, "progress reported");
      assert.equal(progress.at(-1), 1, `progress ends at 1: ${progress}`);
      for (let i = 1; i < progress.length; ++i) {
        assert.ok(progress[i] >= progress[i - 1], `progress non-decreasing: ${progress}`);
      }
      assert.ok(progress.every((p) => p >= 0 && p <= 1));
      assert.equal(llm.identifier, "conformance-qwen");
      assert.equal(llm.modelKey, LLM_KEY);

      const info = await withTimeout(llm.getModelInfo(), "getModelInfo");
      llmRef = info.instanceReference;
      assert.equal(typeof llmRef, "string");
      if (v2) assert.equal(llm.instanceReference, llmRef);
      assert.equal(info.identifier, "conformance-qwen");
      assert.equal(info.modelKey, LLM_KEY);
      assert.equal(info.contextLength, 8192);
      if (v2) assert.equal(info.ttlMs, 300_000); // 1.5.0's schema has no ttlMs: zod strips it

      // The host understood this SDK version's load encoding (KV keys differ between versions).
      const host = (await emulatorStats(emu)).loaded_instances;
      assert.equal(host.length, 1, JSON.stringify(host));
      assert.equal(host[0].identifier, "conformance-qwen");
      assert.equal(host[0].contextLength, 8192);
      assert.equal(host[0].ttlMs, 300_000);
      assert.equal(host[0].jit, false);

      const loaded = await withTimeout(client.llm.listLoaded(), "listLoaded after load");
      assert.deepEqual(
        loaded.map((m) => m.identifier),
        ["conformance-qwen"],
      );
    });

    test("getContextLength and getLoadConfig reflect the load config", async () => {
      assert.equal(await withTimeout(llm.getContextLength(), "getContextLength"), 8192);
      if (!v2) return; // 1.5.0 has no public getLoadConfig()
      const cfg = await withTimeout(llm.getLoadConfig(), "getLoadConfig");
      assert.equal(cfg.contextLength, 8192);
      assert.equal(cfg.gpu?.ratio, 0.5);
    });

    test("streamed respond: fragments join to the result, stats present", async () => {
      let firstToken = 0;
      const promptProgress = [];
      const prediction = llm.respond(
        [
          { role: "system", content: "You are terse." },
          { role: "user", content: "Say hello." },
        ],
        {
          temperature: 0.2,
          maxTokens: 200,
          onFirstToken: () => ++firstToken,
          onPromptProcessingProgress: (p) => promptProgress.push(p),
        },
      );
      const { fragments, result } = await drain(prediction, "respond");
      assert.ok(fragments.length > 1, `several fragments (${fragments.length})`);
      for (const f of fragments) {
        assert.equal(typeof f.content, "string");
        assert.equal(typeof f.tokensCount, "number");
        assert.equal(f.reasoningType, "none");
      }
      assert.equal(result.content, fragments.map((f) => f.content).join(""));
      assert.ok(result.content.length > 0);
      assert.equal(firstToken, 1, "onFirstToken called once");
      assert.ok(promptProgress.length > 0 && promptProgress.at(-1) === 1, `${promptProgress}`);
      for (let i = 1; i < promptProgress.length; ++i)
        assert.ok(promptProgress[i] >= promptProgress[i - 1]);
      assertStats(result.stats);
      assert.equal(result.stats.stopReason, "eosFound");
      assert.equal(result.stats.predictedTokensCount, fragments.length);
      assert.equal(result.modelInfo.identifier, "conformance-qwen");
      assert.equal(result.modelInfo.instanceReference, llmRef);

      // Deterministic model: the same request gives the same text.
      const again = await withTimeout(
        llm
          .respond(
            [
              { role: "system", content: "You are terse." },
              { role: "user", content: "Say hello." },
            ],
            { temperature: 0.2, maxTokens: 200 },
          )
          .result(),
        "respond again",
      );
      assert.equal(again.content, result.content);
    });

    test("respond with maxTokens stops at the limit", async () => {
      const { fragments, result } = await drain(
        llm.respond("Tell me a long story.", { maxTokens: 3 }),
        "respond maxTokens",
      );
      assert.equal(result.stats.stopReason, "maxPredictedTokensReached");
      assert.equal(result.stats.predictedTokensCount, 3);
      assert.equal(fragments.length, 3);
    });

    test("cancel mid-stream: stopReason userStopped, content = fragments so far", async () => {
      // The next prediction stops after 2 fragments until it is cancelled: deterministic timing.
      await control(emu, "faults", { stall_after_fragments: 2, stall_ms: -1 });
      const prediction = llm.respond("Tell me a long story.");
      const fragments = [];
      await withTimeout(
        (async () => {
          for await (const f of prediction) {
            fragments.push(f);
            if (fragments.length === 2) {
              await withTimeout(prediction.cancel(), "prediction.cancel()");
            }
          }
        })(),
        "cancelled respond: iterate",
      );
      const result = await withTimeout(prediction.result(), "cancelled respond: result()");
      assert.equal(result.stats.stopReason, "userStopped");
      assert.equal(fragments.length, 2);
      assert.equal(result.content, fragments.map((f) => f.content).join(""));
      assert.equal(result.stats.predictedTokensCount, 2);
    });

    test("cancel before the first token and cancel after the end", async () => {
      // Cancelled before any fragment (the host holds the first one back until the cancel):
      // userStopped, no hang.
      await control(emu, "faults", { stall_after_fragments: 0, stall_ms: -1 });
      const early = llm.respond("Tell me a long story.");
      await withTimeout(early.cancel(), "cancel right away");
      const { fragments, result } = await drain(early, "respond cancelled before first token");
      assert.equal(result.stats.stopReason, "userStopped");
      assert.deepEqual(fragments, []);
      assert.equal(result.content, "");
      assert.equal(result.stats.predictedTokensCount, 0);

      // Cancelling a finished prediction is a no-op (and must not produce warnings, checked below).
      const done = llm.respond("Hi", { maxTokens: 2 });
      const r = await withTimeout(done.result(), "short respond");
      await withTimeout(done.cancel(), "cancel after the end");
      assert.equal(r.stats.stopReason, "maxPredictedTokensReached");
    });

    test("stopStrings: the text ends before the stop string; stats name it", async () => {
      const prompt = "Describe the weather today.";
      const full = await withTimeout(llm.respond(prompt).result(), "respond (reference)");
      const words = full.content.split(" ").filter((w) => /^[a-z]{3,}$/.test(w));
      assert.ok(words.length > 2, full.content);
      const stop = ` ${words[Math.floor(words.length / 2)]}`;
      const cut = full.content.indexOf(stop);
      const { fragments, result } = await drain(
        llm.respond(prompt, { stopStrings: [stop] }),
        "respond with stopStrings",
      );
      assert.equal(result.stats.stopReason, "stopStringFound");
      if (v2) assert.equal(result.stats.stopString, stop); // not in 1.5.0's stats schema
      assert.equal(result.content, full.content.slice(0, cut));
      assert.equal(fragments.map((f) => f.content).join(""), result.content);
    });

    test("contextOverflowPolicy stopAtLimit on a tiny context: contextLengthReached", async () => {
      const small = await withTimeout(
        client.llm.load(LLM_KEY_2, { identifier: "tiny-context", config: { contextLength: 32 } }),
        "load with contextLength 32",
      );
      try {
        assert.equal(await withTimeout(small.getContextLength(), "getContextLength"), 32);
        const { fragments, result } = await drain(
          small.respond("Hi", { contextOverflowPolicy: "stopAtLimit" }),
          "respond at the context limit",
        );
        assert.equal(result.stats.stopReason, "contextLengthReached");
        assert.equal(result.stats.promptTokensCount + result.stats.predictedTokensCount, 32);
        assert.equal(fragments.map((f) => f.content).join(""), result.content);
      } finally {
        await withTimeout(small.unload(), "unload tiny-context");
      }
    });

    test("concurrent predictions on one socket do not mix", async () => {
      const prompts = ["Tell me about cats.", "Tell me about rivers.", "Tell me about stars."];
      const solo = [];
      for (const p of prompts)
        solo.push((await withTimeout(llm.respond(p).result(), `solo ${p}`)).content);
      const together = await withTimeout(
        Promise.all(prompts.map((p) => drain(llm.respond(p), `concurrent ${p}`))),
        "concurrent respond",
      );
      together.forEach(({ fragments, result }, i) => {
        assert.equal(result.content, solo[i], `prompt ${i}`);
        assert.equal(fragments.map((f) => f.content).join(""), solo[i]);
      });
    });

    test("abort via AbortSignal mid-stream", async () => {
      await control(emu, "faults", { stall_after_fragments: 1, stall_ms: -1 });
      const ac = new AbortController();
      const prediction = llm.respond("Tell me a long story.", {
        signal: ac.signal,
        onFirstToken: () => ac.abort(),
      });
      const outcome = await withTimeout(
        prediction.result().then(
          (r) => ({ ok: r }),
          (e) => ({ err: e }),
        ),
        "aborted respond settles",
      );
      // The SDK turns an abort into a cancel; it either resolves as userStopped or rejects.
      if (outcome.ok) {
        assert.equal(outcome.ok.stats.stopReason, "userStopped");
      } else {
        assert.ok(outcome.err instanceof Error);
      }
      // The emulator saw the cancel and has no prediction running any more.
      const stats = await emulatorStats(emu);
      assert.equal(stats.predictions_active ?? 0, 0, JSON.stringify(stats));
    });

    test("complete (raw text completion)", async () => {
      const { fragments, result } = await drain(llm.complete("Once upon a time"), "complete");
      assert.ok(fragments.length > 0);
      assert.equal(result.content, fragments.map((f) => f.content).join(""));
      assertStats(result.stats);
    });

    test("structured output (json schema) parses", async () => {
      const schema = {
        type: "object",
        properties: {
          name: { type: "string" },
          age: { type: "integer", minimum: 0, maximum: 150 },
          tags: { type: "array", items: { type: "string" } },
        },
        required: ["name", "age", "tags"],
      };
      const result = await withTimeout(
        llm
          .respond("Describe a person as JSON.", {
            structured: { type: "json", jsonSchema: schema },
          })
          .result(),
        "structured respond",
      );
      const parsed = JSON.parse(result.content);
      assert.equal(typeof parsed.name, "string");
      assert.ok(Number.isInteger(parsed.age));
      assert.ok(Array.isArray(parsed.tags));
      // `parsed` is only filled in when `structured` is a zod schema; a raw JSON schema leaves it out.
    });

    test("act(): a tool call round trip", async () => {
      const calls = [];
      const getWeather = rawFunctionTool({
        name: "get_weather",
        description: "Current weather in a city",
        parametersJsonSchema: {
          type: "object",
          properties: { city: { type: "string" } },
          required: ["city"],
        },
        implementation: (params) => {
          calls.push(params);
          return { city: params.city, temperatureC: 21 };
        },
      });
      const messages = [];
      const rounds = [];
      const act = await withTimeout(
        llm.act("What is the weather in Paris? Use get_weather.", [getWeather], {
          onMessage: (m) => messages.push(m),
          onPredictionCompleted: (r) => rounds.push(r),
          maxPredictionRounds: 4,
        }),
        "act",
      );
      assert.equal(calls.length, 1, `tool called once: ${JSON.stringify(calls)}`);
      assert.equal(typeof calls[0].city, "string");
      assert.ok(act.rounds >= 2, `rounds ${act.rounds}`);
      assert.equal(rounds[0].stats.stopReason, "toolCalls");
      assert.notEqual(rounds.at(-1).stats.stopReason, "toolCalls");
      assert.ok(rounds.at(-1).content.length > 0, "final answer has content");
      const roles = messages.map((m) => m.getRole());
      assert.deepEqual(roles.slice(0, 2), ["assistant", "tool"], `${roles}`);
    });

    test("reasoning model: reasoning fragments are typed", async () => {
      const model = await withTimeout(client.llm.load(REASONING_KEY), "load reasoning model");
      try {
        const { fragments, result } = await drain(
          model.respond("Why is the sky blue?"),
          "reasoning",
        );
        const types = new Set(fragments.map((f) => f.reasoningType));
        assert.ok(types.has("reasoning"), `reasoning types: ${[...types]}`);
        assert.ok(types.has("none"));
        assert.ok(result.reasoningContent.length > 0);
        assert.ok(result.nonReasoningContent.length > 0);
        assert.equal(result.content, fragments.map((f) => f.content).join(""));
      } finally {
        await withTimeout(model.unload(), "unload reasoning model");
      }
    });

    test("instance state, base prediction config and prompt template", async () => {
      if (v2) {
        // Not in 1.5.0's public API.
        const state = await withTimeout(
          llm.getInstanceProcessingState(),
          "getInstanceProcessingState",
        );
        assert.deepEqual(state, { status: "idle", queued: 0 });
        const base = await withTimeout(llm.getBasePredictionConfig(), "getBasePredictionConfig");
        assert.equal(typeof base.temperature, "number");
      }
      const formatted = await withTimeout(
        llm.applyPromptTemplate([
          { role: "system", content: "Be brief." },
          { role: "user", content: "What is a zebra?" },
        ]),
        "applyPromptTemplate",
      );
      assert.match(formatted, /What is a zebra\?/);
      assert.match(formatted, /Be brief\./);
    });

    test("two loads of one key: identifiers key and key:2; a taken identifier is refused", async () => {
      const a = await withTimeout(client.llm.load(LLM_KEY_2), "load #1");
      const b = await withTimeout(client.llm.load(LLM_KEY_2), "load #2");
      assert.equal(a.identifier, LLM_KEY_2);
      assert.equal(b.identifier, `${LLM_KEY_2}:2`);
      assert.notEqual(
        (await withTimeout(a.getModelInfo(), "info #1")).instanceReference,
        (await withTimeout(b.getModelInfo(), "info #2")).instanceReference,
      );
      await assert.rejects(
        withTimeout(
          client.llm.load(LLM_KEY, { identifier: LLM_KEY_2 }),
          "load duplicate identifier",
        ),
        (e) => !e.message.includes("timed out"),
      );
      await withTimeout(client.llm.unload(b.identifier), "llm.unload(identifier)");
      await withTimeout(a.unload(), "unload #1");
      const left = (await withTimeout(client.llm.listLoaded(), "listLoaded")).map(
        (m) => m.identifier,
      );
      assert.deepEqual(left, ["conformance-qwen"]);
    });

    test("tokenize and countTokens agree", async () => {
      const text = "Hello, world! How are you today?";
      const tokens = await withTimeout(llm.tokenize(text), "tokenize");
      assert.ok(Array.isArray(tokens) && tokens.length > 1);
      assert.ok(tokens.every((t) => Number.isInteger(t)));
      assert.equal(await withTimeout(llm.countTokens(text), "countTokens"), tokens.length);
      const many = await withTimeout(llm.tokenize(["one two", "three"]), "tokenize array");
      assert.equal(many.length, 2);
      assert.deepEqual(many[1], await llm.tokenize("three"));
      assert.equal(await withTimeout(llm.countTokens(""), "countTokens empty"), 0);
    });

    test("embedding: .model(key) (getOrLoad) then embed string and array", async () => {
      const emb = await withTimeout(client.embedding.model(EMBEDDING_KEY), "embedding.model");
      assert.equal(emb.modelKey, EMBEDDING_KEY);
      const one = await withTimeout(emb.embed("hello world"), "embed string");
      assert.equal(one.embedding.length, EMBEDDING_DIM);
      assert.ok(one.embedding.every((x) => typeof x === "number" && Number.isFinite(x)));
      const norm = Math.hypot(...one.embedding);
      assert.ok(Math.abs(norm - 1) < 1e-3, `unit length (${norm})`);
      const many = await withTimeout(emb.embed(["hello world", "goodbye"]), "embed array");
      assert.equal(many.length, 2);
      assert.deepEqual(many[0].embedding, one.embedding);
      assert.equal(many[1].embedding.length, EMBEDDING_DIM);
      assert.equal(
        (await withTimeout(emb.getContextLength(), "embedding getContextLength")) > 0,
        true,
      );
      assert.equal(await withTimeout(emb.countTokens("hello world"), "embedding countTokens"), 2);

      // A second .model() finds the loaded instance instead of loading another one.
      const again = await withTimeout(
        client.embedding.model(EMBEDDING_KEY),
        "embedding.model again",
      );
      assert.equal(again.identifier, emb.identifier);
      const loaded = await withTimeout(client.embedding.listLoaded(), "embedding.listLoaded");
      assert.equal(loaded.length, 1);
      await withTimeout(emb.unload(), "embedding unload");
    });

    test("llm .model(key): getOrLoad loads once, then reuses; .model() = any loaded", async () => {
      const first = await withTimeout(client.llm.model(LLM_KEY_2), "llm.model (loads)");
      assert.equal(first.modelKey, LLM_KEY_2);
      const second = await withTimeout(client.llm.model(LLM_KEY_2), "llm.model (already loaded)");
      assert.equal(second.identifier, first.identifier);
      const firstRef = (await withTimeout(first.getModelInfo(), "info")).instanceReference;
      assert.equal(
        (await withTimeout(second.getModelInfo(), "info 2")).instanceReference,
        firstRef,
      );
      const r = await withTimeout(second.respond("Hi").result(), "respond via .model()");
      assert.ok(r.content.length > 0);

      // .model(identifier) finds the instance loaded by .load() under its custom identifier.
      const byId = await withTimeout(client.llm.model("conformance-qwen"), "llm.model(identifier)");
      assert.equal(
        (await withTimeout(byId.getModelInfo(), "info by id")).instanceReference,
        llmRef,
      );

      const any = await withTimeout(client.llm.model(), "llm.model()");
      assert.ok([first.identifier, "conformance-qwen"].includes(any.identifier));
      await withTimeout(first.unload(), "unload .model() instance");
    });

    test("JIT auto-evict: .model(B) unloads the model .model(A) loaded, not the .load() one", async () => {
      const a = await withTimeout(client.llm.model(LLM_KEY_2), ".model(A)");
      const b = await withTimeout(client.llm.model(REASONING_KEY), ".model(B)");
      assert.equal(b.modelKey, REASONING_KEY);
      const loaded = (await withTimeout(client.llm.listLoaded(), "listLoaded")).map(
        (m) => m.identifier,
      );
      assert.deepEqual(loaded.sort(), ["conformance-qwen", REASONING_KEY].sort());
      await assert.rejects(
        withTimeout(a.respond("Hi").result(), "respond on the evicted instance"),
        (e) => !e.message.includes("timed out"),
      );
      await withTimeout(b.unload(), "unload B");
    });

    test("unload: the instance disappears; using it afterwards fails cleanly", async () => {
      await withTimeout(llm.unload(), "unload");
      const loaded = await withTimeout(client.llm.listLoaded(), "listLoaded after unload");
      assert.deepEqual(loaded, []);
      await assert.rejects(
        withTimeout(llm.respond("Hi").result(), "respond on unloaded instance"),
        (e) => !(e.message ?? "").includes("timed out"),
      );
      await assert.rejects(
        withTimeout(llm.countTokens("Hi"), "countTokens on unloaded instance"),
        (e) => !(e.message ?? "").includes("timed out"),
      );
    });

    test("loading an unknown model rejects cleanly (llm.load and llm.model)", async () => {
      await assert.rejects(withTimeout(client.llm.load("no/such-model"), "load unknown"), (e) => {
        assert.ok(!e.message.includes("timed out"), e.message);
        assert.match(e.message, /no\/such-model/);
        return true;
      });
      await assert.rejects(withTimeout(client.llm.model("no/such-model"), "model unknown"), (e) => {
        assert.ok(!e.message.includes("timed out"), e.message);
        return true;
      });
      // Loading an embedding model through the llm namespace is a domain mismatch, not a hang.
      await assert.rejects(
        withTimeout(client.llm.load(EMBEDDING_KEY), "llm.load(embedding)"),
        (e) => {
          assert.ok(!e.message.includes("timed out"), e.message);
          return true;
        },
      );
    });

    test("a load cancelled by AbortSignal settles and leaves nothing loaded", async () => {
      await control(emu, "faults", { load_time_multiplier: 50 });
      try {
        const ac = new AbortController();
        const load = client.llm.load(LLM_KEY, {
          signal: ac.signal,
          onProgress: () => ac.abort(),
        });
        await assert.rejects(withTimeout(load, "aborted load"), (e) => {
          assert.ok(!e.message.includes("timed out"), e.message);
          return true;
        });
      } finally {
        await control(emu, "faults", { load_time_multiplier: 1 });
      }
      const loaded = await withTimeout(client.llm.listLoaded(), "listLoaded after aborted load");
      assert.deepEqual(loaded, []);
    });

    if (v2) {
      test("system.getInfo and listDownloadedModelVariants", async () => {
        const info = await withTimeout(client.system.getInfo(), "getInfo");
        assert.equal(typeof info.pid, "number");
        assert.equal(info.version, "0.4.0");
        const variants = await withTimeout(
          client.system.listDownloadedModelVariants(LLM_KEY),
          "listDownloadedModelVariants",
        );
        assert.ok(variants.length >= 1);
        assert.ok(
          variants.every((m) => m.modelKey === LLM_KEY || m.modelKey.startsWith(`${LLM_KEY}@`)),
        );
      });
    }

    test("the SDK logged no warnings or errors; the emulator got no communicationWarning", () => {
      assert.deepEqual(log.problems(), []);
      // The SDK reports every message that fails its zod validation back to the host as a
      // communicationWarning; the emulator logs those at warn level on stderr.
      assert.doesNotMatch(emu.stderr(), /communicationWarning/);
      assert.deepEqual(emu.extraStdout, [], "emulator printed only its listening line");
    });
  });
}

for (const sdk of SDKS) happyPathSuite(sdk);

describe("@lmstudio/sdk@2.0.0 when the host misbehaves (faults)", () => {
  const { LMStudioClient } = sdk2;
  let emu;
  let client;
  let model;

  before(async () => {
    emu = await startEmulator();
    client = new LMStudioClient({ baseUrl: emu.wsUrl, logger: recordingLogger().logger });
    model = await withTimeout(client.llm.load(LLM_KEY), "load");
  });

  after(async () => {
    if (client) await dispose(client);
    await stopEmulator(emu);
  });

  test("a dropped socket fails the prediction (no hang); the next call reconnects", async () => {
    await control(emu, "faults", { drop_after_fragments: 2 });
    const p = model.respond("Tell me a long story.");
    await assert.rejects(
      withTimeout(p.result(), "respond on a dropped socket"),
      (e) => !e.message.includes("timed out"),
    );
    const r = await withTimeout(model.respond("Hi").result(), "respond after reconnect");
    assert.equal(r.stats.stopReason, "eosFound");
  });

  test("a failing load rejects (no hang) and leaves nothing loaded", async () => {
    await control(emu, "faults", { fail_next_loads: 1 });
    const progress = [];
    await assert.rejects(
      withTimeout(
        client.llm.load(LLM_KEY_2, { onProgress: (x) => progress.push(x) }),
        "failing load",
      ),
      (e) => !e.message.includes("timed out"),
    );
    const loaded = (await withTimeout(client.llm.listLoaded(), "listLoaded")).map(
      (m) => m.modelKey,
    );
    assert.deepEqual(loaded, [LLM_KEY]);
  });

  test("unloading the model mid-prediction ends it with modelUnloaded", async () => {
    await control(emu, "faults", { stall_after_fragments: 1, stall_ms: -1 });
    const p = model.respond("Tell me a long story.");
    const other = new LMStudioClient({ baseUrl: emu.wsUrl, logger: recordingLogger().logger });
    try {
      await withTimeout(
        (async () => {
          for await (const f of p) {
            await withTimeout(other.llm.unload(model.identifier), "unload from another client");
            break;
          }
        })(),
        "first fragment, then unload",
      );
      const outcome = await withTimeout(
        p.result().then(
          (r) => ({ r }),
          (e) => ({ e }),
        ),
        "prediction of an unloaded model settles",
      );
      // The emulator ends it with success(stopReason "modelUnloaded"), a value of the SDK's schema;
      // what real LM Studio sends here is not public, so a rejection would be acceptable too.
      if (outcome.r) assert.equal(outcome.r.stats.stopReason, "modelUnloaded");
    } finally {
      await dispose(other);
    }
  });
});

describe("@lmstudio/sdk@2.0.0 with an API token (--api_token)", () => {
  const { LMStudioClient } = sdk2;
  let emu;
  const clients = [];

  before(async () => {
    emu = await startEmulator(["--api_token", API_TOKEN]);
  });

  after(async () => {
    for (const c of clients) await dispose(c);
    await stopEmulator(emu);
  });

  function newClient(opts) {
    const log = recordingLogger();
    const c = new LMStudioClient({ baseUrl: emu.wsUrl, logger: log.logger, ...opts });
    clients.push(c);
    return { client: c, log };
  }

  test("the right apiToken works (no warnings)", async () => {
    const { client, log } = newClient({ apiToken: API_TOKEN });
    const models = await withTimeout(client.system.listDownloadedModels(), "list with token");
    assert.ok(models.length > 0);
    const model = await withTimeout(client.llm.load(LLM_KEY), "load with token");
    const r = await withTimeout(model.respond("Hi").result(), "respond with token");
    assert.ok(r.content.length > 0);
    await withTimeout(model.unload(), "unload with token");
    assert.deepEqual(log.problems(), []);
  });

  test("a wrong apiToken is rejected (no hang)", async () => {
    const { client } = newClient({ apiToken: "sk-lm-AbCd1234:ZZZZZZZZZZZZZZZZZZZZ" });
    await assert.rejects(
      withTimeout(client.system.listDownloadedModels(), "list with wrong token"),
      (e) => {
        assert.match(e.message, /Failed to authenticate/);
        return true;
      },
    );
  });

  test("no token at all is rejected (no hang)", async () => {
    const { client } = newClient({});
    await assert.rejects(withTimeout(client.llm.listLoaded(), "listLoaded without token"), (e) => {
      assert.match(e.message, /Failed to authenticate/);
      return true;
    });
  });
});
