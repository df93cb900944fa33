// Shared pieces of the client tests: lmgate (//services:lmgate) in front of a fresh LM Studio host
// emulator, both on 127.0.0.1 port 0, and client programs run as child processes with a bound on
// their run time (a hang fails the test, never stalls CI).
//
// Binaries come from environment variables holding paths relative to the Bazel runfiles root (set
// by tests/clients/BUILD.bazel) or absolute paths, so the tests also run by hand:
//   LMSTUDIO_EMULATOR=$PWD/bazel-bin/tests/emulator/lmstudio_emulator \
//   LMGATE_BIN=$PWD/bazel-bin/services/lmgate LMGATE_CHAT_PY=$PWD/clients/python/chat.py ... \
//   node --test tests/clients/python_client.test.mjs
import { spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

import {
  control,
  emulatorStats,
  startEmulator,
  stopEmulator,
  withTimeout,
} from "../conformance/harness.mjs";

export { control, emulatorStats, withTimeout };

// The path named by environment variable `name`: absolute, or relative to the runfiles root.
export function runfile(name) {
  const p = process.env[name];
  if (!p) throw new Error(`${name} is not set (see tests/clients/BUILD.bazel)`);
  const root = process.env.TEST_SRCDIR
    ? path.join(process.env.TEST_SRCDIR, process.env.TEST_WORKSPACE ?? "")
    : process.cwd();
  return path.resolve(root, p);
}

export function tempDir() {
  return fs.mkdtempSync(path.join(process.env.TEST_TMPDIR ?? os.tmpdir(), "lmgate-clients-"));
}

// Starts an emulator and lmgate in front of it. `config` (an object) is written to a file and
// passed with --config (listen/metrics/lmstudio.url are filled in); `env` is added to lmgate's
// environment. Resolves to { addr, pid, emulator, configFile, stdout(), stderr(), stop() }.
// `logLevelFlag` null leaves the level to the config (`log_level`), e.g. to reload it.
export async function startGateway({ config, env = {}, logLevelFlag = "warn" } = {}) {
  const emulator = await startEmulator();
  const args = ["--shutdown_grace_seconds", "2"];
  if (logLevelFlag !== null) args.push("--log_level", logLevelFlag);
  let file;
  if (config) {
    file = path.join(tempDir(), "lmgate.json");
    const full = {
      listen: "127.0.0.1:0",
      metrics_listen: "127.0.0.1:0",
      default_model: "qwen/qwen3-4b",
      ...config,
      lmstudio: { ...config.lmstudio, url: emulator.httpUrl },
    };
    fs.writeFileSync(file, JSON.stringify(full, null, 2));
    args.push("--config", file);
  } else {
    args.push(
      "--listen",
      "127.0.0.1:0",
      "--metrics_listen",
      "127.0.0.1:0",
      "--lmstudio_url",
      emulator.httpUrl,
      "--default_model",
      "qwen/qwen3-4b",
    );
  }
  const child = spawn(runfile("LMGATE_BIN"), args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => (stderr += d));
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  const lines = createInterface({ input: child.stdout });
  let stdout = "";
  const listening = new Promise((resolve, reject) => {
    lines.on("line", (l) => {
      stdout += `${l}\n`;
      const m = /^lmgate listening on ([0-9.]+):(\d+) /.exec(l);
      if (m) resolve(`${m[1]}:${m[2]}`);
    });
    child.once("error", reject);
    exited.then(({ code, signal }) =>
      reject(
        new Error(`lmgate exited (code ${code}, signal ${signal}) before listening:\n${stderr}`),
      ),
    );
  });
  let addr;
  try {
    addr = await withTimeout(listening, "lmgate start-up", 20_000);
  } catch (e) {
    child.kill("SIGKILL");
    await stopEmulator(emulator);
    throw e;
  }
  return {
    addr,
    pid: child.pid,
    emulator,
    // The --config file (undefined without `config`): rewrite it and SIGHUP `pid` to reload.
    configFile: file,
    stderr: () => stderr,
    // lmgate's log lines (spdlog writes to stdout) and its start-up lines.
    stdout: () => stdout,
    // SIGTERM both; throws unless both exit 0 (a crash or sanitizer report fails the suite).
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const { code, signal } = await exited;
      clearTimeout(t);
      await stopEmulator(emulator);
      if (code !== 0) {
        throw new Error(
          `lmgate exited with code ${code}, signal ${signal}; stderr:\n${stderr.slice(-8000)}`,
        );
      }
    },
  };
}

// Runs `cmd args...` to completion; resolves to { code, signal, stdout, stderr }. Killed (and
// rejected with a TimeoutError) after `timeoutMs`. `onFirstOutput(child)` runs when the first
// bytes arrive on stdout (e.g. to interrupt a streaming client mid-answer).
export async function run(cmd, args, { env = {}, timeoutMs = 60_000, onFirstOutput } = {}) {
  const child = spawn(cmd, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d) => {
    if (stdout === "" && onFirstOutput) onFirstOutput(child);
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const done = new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  try {
    return await withTimeout(done, `${path.basename(cmd)} ${args.join(" ")}`, timeoutMs);
  } catch (e) {
    child.kill("SIGKILL");
    e.message += `\nstdout so far:\n${stdout}\nstderr so far:\n${stderr}`;
    throw e;
  }
}

// The chat text the emulator produces for `model` and one user message, asked directly through
// its OpenAI-compatible endpoint (the emulator's text is a pure function of model, prompt and
// seed, the same on every interface), to compare a client's streamed output with.
export async function upstreamText(emulator, model, content) {
  const res = await withTimeout(
    fetch(`${emulator.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content }] }),
    }),
    "POST /v1/chat/completions",
  );
  if (!res.ok)
    throw new Error(`emulator /v1/chat/completions -> ${res.status}: ${await res.text()}`);
  return (await res.json()).choices[0].message.content;
}

// Resolves once `predicate()` (async) is true, polling every 20 ms; rejects with a TimeoutError
// naming `what` after `ms`. For state only observable by asking (the emulator's counters).
export async function waitFor(predicate, what, ms = 10_000) {
  let done = false;
  const poll = (async () => {
    while (!done && !(await predicate())) await new Promise((r) => setTimeout(r, 20));
  })();
  try {
    await withTimeout(poll, what, ms);
  } finally {
    done = true;
  }
}
