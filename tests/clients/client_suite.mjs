// One suite for every example client (clients/python/chat.py, clients/node/chat.mjs,
// clients/go/main.go): they share one command line (--addr, --model, --key / $LMGATE_API_KEY,
// --list-models, PROMPT) and one output shape (answer on stdout as it streams; progress and a
// "-- MODEL via DRIVER: ..." stats line on stderr; "error: CODE: message" and exit 1 on failure),
// so the same assertions hold for each.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { control, emulatorStats, run, startGateway, upstreamText, waitFor } from "./gateway.mjs";

const STATS =
  /^-- (\S+) via (DRIVER_\w+): (\d+) prompt \+ (\d+) completion tokens in (\d+) deltas, [\d.]+ tok\/s, TTFT [\d.]+s, stop (STOP_REASON_\w+)$/m;

// A model line of --list-models: KEY TYPE STATE [INSTANCES].
function models(stdout) {
  const byKey = {};
  for (const line of stdout.trim().split("\n")) {
    const [key, type, state, instances = ""] = line.trim().split(/\s+/);
    byKey[key] = { type, state, instances: instances ? instances.split(",") : [] };
  }
  return byKey;
}

// `command` is { cmd, args } to which the client's own arguments are appended.
export function clientSuite(name, command) {
  const client = (args, opts) => run(command.cmd, [...command.args, ...args], opts);

  describe(`${name} example against lmgate`, () => {
    let gw;
    before(async () => {
      gw = await startGateway();
    });
    after(async () => {
      await gw?.stop();
    });

    test("lists the host's models", async () => {
      const r = await client(["--addr", gw.addr, "--list-models"]);
      assert.equal(r.code, 0, r.stderr);
      const m = models(r.stdout);
      assert.deepEqual(m["qwen/qwen3-4b"], { type: "llm", state: "not_loaded", instances: [] });
      assert.equal(m["text-embedding-nomic-embed-text-v1.5"]?.type, "embedding");
    });

    test("streams a chat (lmgate loads the model first) and prints its stats", async () => {
      const prompt = "Say hello";
      const r = await client(["--addr", gw.addr, "--model", "qwen/qwen3-4b", prompt]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^loading model +100%$/m, "model_loading progress is shown");
      const s = STATS.exec(r.stderr);
      assert.ok(s, `no stats line in stderr:\n${r.stderr}`);
      const [, model, , promptTokens, completionTokens, deltas, stop] = s;
      assert.equal(model, "qwen/qwen3-4b");
      assert.equal(stop, "STOP_REASON_EOS");
      assert.ok(Number(promptTokens) > 0);
      assert.ok(Number(deltas) > 1, `the answer streamed in ${deltas} delta(s)`);
      assert.ok(Number(deltas) <= Number(completionTokens));
      // The deltas, joined in order, are exactly the model's answer.
      assert.equal(r.stdout, (await upstreamText(gw.emulator, "qwen/qwen3-4b", prompt)) + "\n");
    });

    test("the chat left the model loaded", async () => {
      const r = await client(["--addr", gw.addr, "--list-models"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(models(r.stdout)["qwen/qwen3-4b"], {
        type: "llm",
        state: "ready",
        instances: ["qwen/qwen3-4b"],
      });
    });

    test("uses lmgate's default model when --model is not given", async () => {
      const r = await client(["--addr", gw.addr, "hi"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(STATS.exec(r.stderr)?.[1], "qwen/qwen3-4b");
    });

    test("Ctrl-C (SIGINT) cancels the call, and lmgate the upstream prediction", async () => {
      // A long, slow answer, so that the prediction is still running when SIGINT arrives.
      const slow = { tokens_per_second: 20, min_response_tokens: 400, max_response_tokens: 400 };
      await control(gw.emulator, "settings", slow);
      try {
        const before = (await emulatorStats(gw.emulator)).predictions_cancelled;
        const r = await client(["--addr", gw.addr, "Tell me a long story"], {
          onFirstOutput: (child) => child.kill("SIGINT"),
        });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^error: CANCELLED: /m);
        assert.ok(r.stdout.length > 0, "some of the answer streamed before the interrupt");
        await waitFor(
          async () => (await emulatorStats(gw.emulator)).predictions_cancelled > before,
          "the emulator sees the prediction cancelled",
        );
      } finally {
        await control(gw.emulator, "settings", {
          tokens_per_second: 200,
          min_response_tokens: 16,
          max_response_tokens: 48,
        });
      }
    });

    test("prints a failed call's status and exits 1", async () => {
      const r = await client(["--addr", gw.addr, "--model", "no/such-model", "hi"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: NOT_FOUND: .*no\/such-model/m);
      assert.equal(r.stdout, "");
    });
  });

  describe(`${name} example against lmgate with API keys`, () => {
    const key = "lmgate-clients-test-key";
    let gw;
    before(async () => {
      gw = await startGateway({
        config: { keys: [{ tenant: "clients", key_env: "LMGATE_TEST_KEY", roles: ["inference"] }] },
        env: { LMGATE_TEST_KEY: key },
      });
    });
    after(async () => {
      await gw?.stop();
    });

    test("without a key the call is UNAUTHENTICATED", async () => {
      const r = await client(["--addr", gw.addr, "--list-models"], { env: { LMGATE_API_KEY: "" } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: UNAUTHENTICATED: /m);
    });

    test("a wrong key is UNAUTHENTICATED", async () => {
      const r = await client(["--addr", gw.addr, "--key", "wrong", "--list-models"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: UNAUTHENTICATED: /m);
    });

    test("--key authenticates", async () => {
      const r = await client(["--addr", gw.addr, "--key", key, "--list-models"], {
        env: { LMGATE_API_KEY: "" },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(models(r.stdout)["qwen/qwen3-4b"]);
    });

    test("$LMGATE_API_KEY authenticates a streamed chat", async () => {
      const r = await client(["--addr", gw.addr, "hi"], { env: { LMGATE_API_KEY: key } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(STATS.test(r.stderr), r.stderr);
    });
  });
}
