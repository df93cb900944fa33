// Conformance of //tests/emulator:lmstudio_emulator's OpenAI-compatible /v1 API with the official
// `openai` Node client (pinned in package.json), used the way LM Studio documents it:
// `new OpenAI({ baseURL: "http://127.0.0.1:PORT/v1", apiKey: "lm-studio" })`.
// Every call is bounded by a timeout so a hang fails the test.
//
// Run: bazel test //tests/conformance:openai_conformance_test
//  or: LMSTUDIO_EMULATOR=bazel-bin/tests/emulator/lmstudio_emulator node --test tests/conformance/openai.test.mjs
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import OpenAI, { APIError, AuthenticationError, BadRequestError } from "openai";

import { control, emulatorStats, startEmulator, stopEmulator, withTimeout } from "./harness.mjs";

const LLM_KEY = "qwen/qwen3-4b";
const REASONING_KEY = "qwen/qwen3-4b-thinking-2507";
const EMBEDDING_KEY = "text-embedding-nomic-embed-text-v1.5";
const EMBEDDING_DIM = 768;
const CATALOGUE = [
  "qwen/qwen3-4b",
  "qwen/qwen3-4b-thinking-2507",
  "google/gemma-3-1b",
  "text-embedding-nomic-embed-text-v1.5",
  "text-embedding-bge-small-en-v1.5",
];
const API_TOKEN = "sk-lm-AbCd1234:ABCDEFGHIJKLMNOPQRST";

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
      required: ["city"],
    },
  },
};

const PERSON_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string" },
    age: { type: "integer", minimum: 0, maximum: 150 },
    email: { type: "string", format: "email" },
    tags: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 3 },
    role: { type: "string", enum: ["admin", "user"] },
  },
  required: ["name", "age", "tags", "role"],
  additionalProperties: false,
};

function newClient(emu, opts = {}) {
  // maxRetries 0: a retried 5xx would hide what the emulator answered.
  return new OpenAI({
    baseURL: `${emu.httpUrl}/v1`,
    apiKey: "lm-studio",
    maxRetries: 0,
    timeout: 15_000,
    ...opts,
  });
}

function assertUsage(usage) {
  assert.ok(usage, "usage present");
  assert.ok(usage.prompt_tokens > 0, `prompt_tokens ${usage.prompt_tokens}`);
  assert.ok(usage.completion_tokens > 0, `completion_tokens ${usage.completion_tokens}`);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

// Collects a chat stream: every chunk, the joined content, the finish reasons and usage chunks.
async function collectChatStream(stream, what) {
  const chunks = [];
  await withTimeout(
    (async () => {
      for await (const c of stream) chunks.push(c);
    })(),
    what,
  );
  const content = chunks
    .flatMap((c) => c.choices)
    .map((ch) => ch.delta?.content ?? "")
    .join("");
  const finishReasons = chunks
    .flatMap((c) => c.choices)
    .map((ch) => ch.finish_reason)
    .filter((r) => r != null);
  const usageChunks = chunks.filter((c) => c.usage);
  return { chunks, content, finishReasons, usageChunks };
}

describe("openai client against the emulator's /v1", () => {
  let emu;
  let client;

  before(async () => {
    emu = await startEmulator();
    client = newClient(emu);
  });

  after(async () => {
    await stopEmulator(emu);
  });

  test("models.list", async () => {
    const ids = [];
    const page = await withTimeout(client.models.list(), "models.list");
    for await (const m of page) {
      assert.equal(m.object, "model");
      assert.equal(typeof m.owned_by, "string");
      ids.push(m.id);
    }
    // JIT on (LM Studio's default): every downloaded model is listed by its key.
    assert.deepEqual([...ids].sort(), [...CATALOGUE].sort());
  });

  test("models.retrieve: LM Studio has no GET /v1/models/{id}; its fallback body, no hang", async () => {
    // Unknown paths get Express's fallback: HTTP 200 {"error":"Unexpected endpoint or method. ..."}
    // (protocol reference section 4), which the client hands back as the "model".
    const r = await withTimeout(client.models.retrieve(LLM_KEY), "models.retrieve");
    // The client percent-encodes the id's "/" (qwen%2Fqwen3-4b); the fallback echoes the raw path.
    assert.match(
      r.error,
      /^Unexpected endpoint or method\. \(GET \/v1\/models\/qwen%2Fqwen3-4b\)$/,
    );
  });

  test("chat.completions.create (plain)", async () => {
    const res = await withTimeout(
      client.chat.completions.create({
        model: LLM_KEY,
        messages: [
          { role: "system", content: "You are terse." },
          { role: "user", content: "Say hello." },
        ],
        temperature: 0.2,
        max_tokens: 200,
        seed: 7,
      }),
      "chat create",
    );
    assert.match(res.id, /^chatcmpl-/);
    assert.equal(res.object, "chat.completion");
    assert.equal(typeof res.created, "number");
    assert.equal(res.model, LLM_KEY);
    assert.equal(res.choices.length, 1);
    const [choice] = res.choices;
    assert.equal(choice.index, 0);
    assert.equal(choice.finish_reason, "stop");
    assert.equal(choice.message.role, "assistant");
    assert.ok(choice.message.content.length > 0);
    assert.ok(!choice.message.tool_calls?.length, "no tool calls");
    assertUsage(res.usage);
  });

  test("chat streamed with stream_options.include_usage: deltas, one finish, a usage chunk", async () => {
    const body = {
      model: LLM_KEY,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Say hello." },
      ],
      temperature: 0.2,
      max_tokens: 200,
      seed: 7,
    };
    const plain = await withTimeout(client.chat.completions.create(body), "chat create (ref)");
    const stream = await withTimeout(
      client.chat.completions.create({
        ...body,
        stream: true,
        stream_options: { include_usage: true },
      }),
      "chat create stream",
    );
    const { chunks, content, finishReasons, usageChunks } = await collectChatStream(
      stream,
      "stream",
    );
    assert.ok(chunks.length > 2, `several chunks (${chunks.length})`);
    for (const c of chunks) {
      assert.equal(c.object, "chat.completion.chunk");
      assert.equal(c.id, chunks[0].id, "one id per stream");
      assert.equal(c.model, LLM_KEY);
    }
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    assert.equal(content, plain.choices[0].message.content, "same text streamed and not");
    assert.deepEqual(finishReasons, ["stop"]);
    assert.equal(usageChunks.length, 1, "exactly one usage chunk");
    const last = chunks.at(-1);
    assert.equal(last, usageChunks[0], "usage chunk is last");
    assert.deepEqual(last.choices, []);
    assertUsage(last.usage);
    assert.deepEqual(
      { p: last.usage.prompt_tokens, c: last.usage.completion_tokens },
      { p: plain.usage.prompt_tokens, c: plain.usage.completion_tokens },
    );

    // Without the option no usage is streamed.
    const noUsage = await collectChatStream(
      await withTimeout(client.chat.completions.create({ ...body, stream: true }), "stream 2"),
      "stream without usage",
    );
    assert.equal(noUsage.usageChunks.length, 0);
    assert.equal(noUsage.content, content);
  });

  test("chat.completions.stream helper assembles the final completion", async () => {
    const runner = client.chat.completions.stream({
      model: LLM_KEY,
      messages: [{ role: "user", content: "Tell me something." }],
      stream_options: { include_usage: true },
    });
    const deltas = [];
    runner.on("content", (delta) => deltas.push(delta));
    const final = await withTimeout(runner.finalChatCompletion(), "stream helper");
    assert.equal(final.choices[0].message.content, deltas.join(""));
    assert.equal(final.choices[0].finish_reason, "stop");
    assertUsage(final.usage);
  });

  test("chat with max_tokens: finish_reason length", async () => {
    const res = await withTimeout(
      client.chat.completions.create({
        model: LLM_KEY,
        messages: [{ role: "user", content: "Tell me a long story." }],
        max_tokens: 3,
      }),
      "chat max_tokens",
    );
    assert.equal(res.choices[0].finish_reason, "length");
    assert.equal(res.usage.completion_tokens, 3);
  });

  test("stop: the text ends before the stop string, finish_reason stop", async () => {
    const body = {
      model: LLM_KEY,
      messages: [{ role: "user", content: "Describe the weather today." }],
    };
    const full = (await withTimeout(client.chat.completions.create(body), "reference")).choices[0]
      .message.content;
    const words = full.split(" ").filter((w) => /^[a-z]{3,}$/.test(w));
    assert.ok(words.length > 2, full);
    const stop = ` ${words[Math.floor(words.length / 2)]}`;
    const res = await withTimeout(
      client.chat.completions.create({ ...body, stop: [stop] }),
      "with stop",
    );
    assert.equal(res.choices[0].finish_reason, "stop");
    assert.equal(res.choices[0].message.content, full.slice(0, full.indexOf(stop)));
    const streamed = await collectChatStream(
      await withTimeout(client.chat.completions.create({ ...body, stop, stream: true }), "stream"),
      "stream with stop",
    );
    assert.equal(streamed.content, res.choices[0].message.content);
  });

  test("concurrent streams do not mix", async () => {
    const prompts = ["Tell me about cats.", "Tell me about rivers.", "Tell me about stars."];
    const req = (p) => ({ model: LLM_KEY, messages: [{ role: "user", content: p }] });
    const solo = [];
    for (const p of prompts) {
      solo.push(
        (await withTimeout(client.chat.completions.create(req(p)), p)).choices[0].message.content,
      );
    }
    const together = await withTimeout(
      Promise.all(
        prompts.map(
          async (p) =>
            (
              await collectChatStream(
                await client.chat.completions.create({ ...req(p), stream: true }),
                p,
              )
            ).content,
        ),
      ),
      "concurrent streams",
    );
    assert.deepEqual(together, solo);
  });

  test("LM Studio's extra body field ttl sets the JIT load's idle TTL", async () => {
    // `ttl` (seconds) is not an OpenAI field; the client passes it through in the body.
    await withTimeout(
      client.embeddings.create({
        model: "text-embedding-bge-small-en-v1.5",
        input: "hello",
        encoding_format: "float",
        ttl: 90,
      }),
      "embeddings with ttl (JIT load)",
    );
    const inst = (await emulatorStats(emu)).loaded_instances.find(
      (i) => i.modelKey === "text-embedding-bge-small-en-v1.5",
    );
    assert.ok(inst, "JIT-loaded");
    assert.equal(inst.jit, true);
    assert.equal(inst.ttlMs, 90_000);
  });

  test("reasoning model: reasoning_content separate from content", async () => {
    const res = await withTimeout(
      client.chat.completions.create({
        model: REASONING_KEY,
        messages: [{ role: "user", content: "Why is the sky blue?" }],
      }),
      "reasoning chat (JIT load)",
    );
    const msg = res.choices[0].message;
    assert.ok(msg.content.length > 0);
    assert.ok(msg.reasoning_content?.length > 0, "reasoning_content present");
    assert.ok(!msg.content.includes("<think>"));
  });

  test("tool calls: non-streamed, streamed (helper), then the tool result round", async () => {
    const messages = [{ role: "user", content: "What is the weather in Paris? Use get_weather." }];
    const res = await withTimeout(
      client.chat.completions.create({ model: LLM_KEY, messages, tools: [WEATHER_TOOL] }),
      "tool call create",
    );
    const [choice] = res.choices;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, "function");
    assert.equal(typeof call.id, "string");
    assert.ok(call.id.length > 0);
    assert.equal(call.function.name, "get_weather");
    const args = JSON.parse(call.function.arguments);
    assert.equal(typeof args.city, "string");

    // Streamed: the helper stitches the tool_calls deltas back together.
    const runner = client.chat.completions.stream({
      model: LLM_KEY,
      messages,
      tools: [WEATHER_TOOL],
    });
    const final = await withTimeout(runner.finalChatCompletion(), "tool call stream");
    assert.equal(final.choices[0].finish_reason, "tool_calls");
    const streamedCall = final.choices[0].message.tool_calls[0];
    assert.equal(streamedCall.function.name, "get_weather");
    assert.deepEqual(JSON.parse(streamedCall.function.arguments), args);

    // tool_choice "none": plain content.
    const none = await withTimeout(
      client.chat.completions.create({
        model: LLM_KEY,
        messages,
        tools: [WEATHER_TOOL],
        tool_choice: "none",
      }),
      "tool_choice none",
    );
    assert.equal(none.choices[0].finish_reason, "stop");
    assert.ok(none.choices[0].message.content.length > 0);

    // Second round with the tool result: an answer, no further call.
    const answer = await withTimeout(
      client.chat.completions.create({
        model: LLM_KEY,
        tools: [WEATHER_TOOL],
        messages: [
          ...messages,
          choice.message,
          { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temperatureC: 21 }) },
        ],
      }),
      "tool result round",
    );
    assert.equal(answer.choices[0].finish_reason, "stop");
    assert.ok(answer.choices[0].message.content.length > 0);
  });

  test("runTools helper: the client's automatic tool loop finishes", async () => {
    const calls = [];
    const runner = client.chat.completions.runTools({
      model: LLM_KEY,
      messages: [{ role: "user", content: "What is the weather in Paris? Use get_weather." }],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Current weather in a city",
            parameters: WEATHER_TOOL.function.parameters,
            parse: JSON.parse,
            function: (a) => {
              calls.push(a);
              return { temperatureC: 21 };
            },
          },
        },
      ],
      max_tokens: 200,
    });
    const content = await withTimeout(runner.finalContent(), "runTools");
    assert.equal(calls.length, 1);
    assert.ok(content && content.length > 0);
  });

  test("response_format json_schema: content is JSON valid for the schema", async () => {
    for (const stream of [false, true]) {
      const body = {
        model: LLM_KEY,
        messages: [{ role: "user", content: "Describe a person." }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "person", strict: true, schema: PERSON_SCHEMA },
        },
      };
      let content;
      if (stream) {
        const runner = client.chat.completions.stream(body);
        content = (await withTimeout(runner.finalChatCompletion(), "json_schema stream")).choices[0]
          .message.content;
      } else {
        content = (await withTimeout(client.chat.completions.create(body), "json_schema"))
          .choices[0].message.content;
      }
      const v = JSON.parse(content);
      assert.deepEqual(
        Object.keys(v)
          .sort()
          .filter((k) => !PERSON_SCHEMA.properties[k]),
        [],
      );
      assert.equal(typeof v.name, "string");
      assert.ok(Number.isInteger(v.age) && v.age >= 0 && v.age <= 150);
      assert.ok(Array.isArray(v.tags) && v.tags.length >= 1 && v.tags.length <= 3);
      assert.ok(["admin", "user"].includes(v.role));
      if ("email" in v) assert.match(v.email, /@/);
    }
  });

  test("completions.create: plain and streamed", async () => {
    const res = await withTimeout(
      client.completions.create({
        model: LLM_KEY,
        prompt: "Once upon a time",
        max_tokens: 50,
        seed: 3,
      }),
      "completions",
    );
    assert.match(res.id, /^cmpl-/);
    assert.equal(res.object, "text_completion");
    assert.equal(res.choices.length, 1);
    assert.ok(res.choices[0].text.length > 0);
    assert.ok(["stop", "length"].includes(res.choices[0].finish_reason));
    assertUsage(res.usage);

    const stream = await withTimeout(
      client.completions.create({
        model: LLM_KEY,
        prompt: "Once upon a time",
        max_tokens: 50,
        seed: 3,
        stream: true,
      }),
      "completions stream",
    );
    const parts = [];
    const finish = [];
    await withTimeout(
      (async () => {
        for await (const c of stream) {
          assert.equal(c.object, "text_completion");
          for (const ch of c.choices) {
            parts.push(ch.text);
            if (ch.finish_reason) finish.push(ch.finish_reason);
          }
        }
      })(),
      "iterate completions stream",
    );
    assert.equal(parts.join(""), res.choices[0].text);
    assert.deepEqual(finish, [res.choices[0].finish_reason]);
  });

  test("embeddings: string and array (encoding_format float)", async () => {
    const one = await withTimeout(
      client.embeddings.create({
        model: EMBEDDING_KEY,
        input: "hello world",
        encoding_format: "float",
      }),
      "embeddings string",
    );
    assert.equal(one.object, "list");
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0].object, "embedding");
    assert.equal(one.data[0].index, 0);
    assert.equal(one.data[0].embedding.length, EMBEDDING_DIM);
    assert.ok(Math.abs(Math.hypot(...one.data[0].embedding) - 1) < 1e-3, "unit length");
    assert.equal(typeof one.model, "string");
    assert.ok(one.usage.prompt_tokens > 0);

    const many = await withTimeout(
      client.embeddings.create({
        model: EMBEDDING_KEY,
        input: ["hello world", "goodbye", "a third text"],
        encoding_format: "float",
      }),
      "embeddings array",
    );
    assert.deepEqual(
      many.data.map((d) => d.index),
      [0, 1, 2],
    );
    assert.deepEqual(many.data[0].embedding, one.data[0].embedding);
    assert.ok(many.data.every((d) => d.embedding.length === EMBEDDING_DIM));
  });

  test("embeddings without encoding_format: LM Studio returns floats (client default is base64)", async () => {
    // The openai client asks for base64 unless told otherwise and decodes the answer as base64.
    // Real LM Studio ignores encoding_format and always sends float arrays
    // (lmstudio-ai/lmstudio-bug-tracker#756; langchainjs#8221, n8n#20877 work around it), so the
    // decoded vector is garbage. The emulator reproduces that: pin it, so a change is deliberate.
    const raw = await withTimeout(
      client.embeddings.create({
        model: EMBEDDING_KEY,
        input: "hello world",
        encoding_format: "base64",
      }),
      "embeddings base64 requested",
    );
    assert.ok(Array.isArray(raw.data[0].embedding), "float array despite base64");
    assert.equal(raw.data[0].embedding.length, EMBEDDING_DIM);
  });

  test("unknown model: APIError with LM Studio's message and code", async () => {
    for (const [what, call] of [
      [
        "chat",
        () =>
          client.chat.completions.create({
            model: "no/such-model",
            messages: [{ role: "user", content: "Hi" }],
          }),
      ],
      [
        "chat stream",
        () =>
          client.chat.completions.create({
            model: "no/such-model",
            messages: [{ role: "user", content: "Hi" }],
            stream: true,
          }),
      ],
      ["completions", () => client.completions.create({ model: "no/such-model", prompt: "Hi" })],
      [
        "embeddings",
        () =>
          client.embeddings.create({
            model: "no/such-model",
            input: "Hi",
            encoding_format: "float",
          }),
      ],
    ]) {
      await assert.rejects(withTimeout(call(), `unknown model (${what})`), (e) => {
        assert.ok(e instanceof APIError, `${what}: ${e}`);
        assert.ok(e instanceof BadRequestError, `${what}: status ${e.status}`);
        assert.equal(e.status, 400);
        assert.equal(e.code, "model_not_found");
        assert.equal(e.param, "model");
        assert.equal(e.type, "invalid_request_error");
        assert.match(e.message, /Invalid model identifier "no\/such-model"/);
        assert.match(e.message, /Please specify a valid downloaded model/);
        return true;
      });
    }
  });

  test("aborting a stream cancels the prediction on the host", async () => {
    // The host sends one fragment, then waits until the prediction is cancelled.
    await control(emu, "faults", { stall_after_fragments: 1, stall_ms: -1 });
    const before = await emulatorStats(emu);
    const ac = new AbortController();
    const stream = await withTimeout(
      client.chat.completions.create(
        {
          model: LLM_KEY,
          messages: [{ role: "user", content: "Tell me a long story." }],
          stream: true,
        },
        { signal: ac.signal },
      ),
      "stream to abort",
    );
    // The client ends the iteration quietly on its own abort (no exception).
    let contentChunks = 0;
    await withTimeout(
      (async () => {
        for await (const c of stream) {
          if (c.choices[0]?.delta?.content) {
            ++contentChunks;
            ac.abort();
          }
        }
      })(),
      "iterate aborted stream",
    );
    assert.equal(contentChunks, 1);
    // The emulator notices the closed connection and cancels the prediction.
    const deadline = Date.now() + 5_000;
    let stats;
    do {
      stats = await emulatorStats(emu);
      if (stats.predictions_cancelled > before.predictions_cancelled) break;
      await new Promise((r) => setTimeout(r, 50));
    } while (Date.now() < deadline);
    assert.equal(
      stats.predictions_cancelled,
      before.predictions_cancelled + 1,
      JSON.stringify(stats),
    );
    assert.equal(stats.predictions_active, 0);
  });
});

describe("openai client with JIT loading off (--jit=false)", () => {
  let emu;
  let client;

  before(async () => {
    emu = await startEmulator(["--jit=false"]);
    client = newClient(emu);
  });

  after(async () => {
    await stopEmulator(emu);
  });

  test("nothing loaded: empty model list, and chat names LM Studio's 'No models loaded' error", async () => {
    const page = await withTimeout(client.models.list(), "models.list");
    assert.deepEqual(page.data, []);
    await assert.rejects(
      withTimeout(
        client.chat.completions.create({
          model: LLM_KEY,
          messages: [{ role: "user", content: "Hi" }],
        }),
        "chat without a loaded model",
      ),
      (e) => {
        assert.ok(e instanceof BadRequestError, `${e}`);
        assert.match(e.message, /^400 No models loaded\. Please load a model/);
        assert.equal(e.type, "invalid_request_error");
        return true;
      },
    );
  });

  test("loaded models are listed by instance identifier and served", async () => {
    const res = await withTimeout(
      fetch(`${emu.httpUrl}/api/v1/models/load`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: LLM_KEY, context_length: 4096 }),
      }),
      "REST v1 load",
    );
    assert.equal(res.status, 200, await res.clone().text());
    const page = await withTimeout(client.models.list(), "models.list");
    assert.deepEqual(
      page.data.map((m) => m.id),
      [LLM_KEY],
    );
    const chat = await withTimeout(
      client.chat.completions.create({
        model: LLM_KEY,
        messages: [{ role: "user", content: "Hi" }],
      }),
      "chat on the loaded model",
    );
    assert.ok(chat.choices[0].message.content.length > 0);
  });
});

describe("openai client with an API token (--api_token)", () => {
  let emu;

  before(async () => {
    emu = await startEmulator(["--api_token", API_TOKEN]);
  });

  after(async () => {
    await stopEmulator(emu);
  });

  test("the right token as apiKey works", async () => {
    const client = newClient(emu, { apiKey: API_TOKEN });
    const res = await withTimeout(
      client.chat.completions.create({
        model: LLM_KEY,
        messages: [{ role: "user", content: "Hi" }],
      }),
      "chat with token",
    );
    assert.ok(res.choices[0].message.content.length > 0);
  });

  test("a wrong token is an AuthenticationError (401)", async () => {
    const client = newClient(emu, { apiKey: "sk-lm-AbCd1234:ZZZZZZZZZZZZZZZZZZZZ" });
    await assert.rejects(withTimeout(client.models.list(), "models.list with wrong token"), (e) => {
      assert.ok(e instanceof AuthenticationError, `${e}`);
      assert.equal(e.status, 401);
      return true;
    });
  });
});
