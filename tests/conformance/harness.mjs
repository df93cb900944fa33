// Shared pieces of the conformance tests: start //tests/emulator:lmstudio_emulator on port 0,
// bound every await with a timeout (a hang must fail a test, never stall CI), and talk to the
// emulator's control endpoints (/__emulator/*).
//
// The emulator binary comes from LMSTUDIO_EMULATOR (set by run_conformance.sh from the Bazel
// runfiles), so the tests can also be run by hand:
//   LMSTUDIO_EMULATOR=bazel-bin/tests/emulator/lmstudio_emulator node --test tests/conformance/
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

// Default bound for one awaited operation. Generous for a 2-core machine shared with builds; a
// healthy operation against the emulator takes milliseconds.
export const STEP_TIMEOUT_MS = 15_000;

export class TimeoutError extends Error {}

// Resolves/rejects like `promise`, or rejects with a TimeoutError naming `what` after `ms`.
export function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`timed out after ${ms} ms: ${what} (hang)`)),
      ms,
    );
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

// Starts the emulator with `--port 0` plus `args`; resolves once it printed
// "listening on 127.0.0.1:PORT". The returned object has `port`, `wsUrl` (SDK baseUrl),
// `httpUrl`, `stderr()` (everything it logged so far) and `stop()`.
export async function startEmulator(args = []) {
  const bin = process.env.LMSTUDIO_EMULATOR;
  if (!bin) {
    throw new Error("LMSTUDIO_EMULATOR is not set (path of //tests/emulator:lmstudio_emulator)");
  }
  const child = spawn(bin, ["--port", "0", "--log_level", "warn", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  const lines = createInterface({ input: child.stdout });
  const firstLine = new Promise((resolve, reject) => {
    lines.once("line", resolve);
    child.once("error", reject);
    exited.then(({ code, signal }) =>
      reject(
        new Error(`emulator exited (code ${code}, signal ${signal}) before listening:\n${stderr}`),
      ),
    );
  });
  let line;
  try {
    line = await withTimeout(firstLine, "emulator start-up", 20_000);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  const m = /^listening on ([0-9.]+):(\d+)$/.exec(line);
  if (!m) {
    child.kill("SIGKILL");
    throw new Error(`unexpected first line from the emulator: ${JSON.stringify(line)}`);
  }
  const [, host, port] = m;
  // Anything else on stdout is a protocol violation of the binary ("exactly one line").
  const extraStdout = [];
  lines.on("line", (l) => extraStdout.push(l));
  return {
    port: Number(port),
    wsUrl: `ws://${host}:${port}`,
    httpUrl: `http://${host}:${port}`,
    stderr: () => stderr,
    extraStdout,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      try {
        return await exited;
      } finally {
        clearTimeout(t);
      }
    },
  };
}

// Stops the emulator and throws unless it exited cleanly (status 0 after SIGTERM): a crash, or a
// sanitizer report under --config=asan/tsan, fails the suite that used it.
export async function stopEmulator(emu) {
  if (!emu) return;
  const { code, signal } = await emu.stop();
  if (code !== 0) {
    throw new Error(
      `emulator exited with code ${code}, signal ${signal}; its stderr:\n${emu.stderr().slice(-8000)}`,
    );
  }
}

// POSTs JSON to an emulator control endpoint (/__emulator/faults, /settings, /reset).
export async function control(emu, path, body = {}) {
  const res = await withTimeout(
    fetch(`${emu.httpUrl}/__emulator/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
    `POST /__emulator/${path}`,
  );
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /__emulator/${path} -> ${res.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

export async function emulatorStats(emu) {
  const res = await withTimeout(fetch(`${emu.httpUrl}/__emulator/stats`), "GET /__emulator/stats");
  return res.json();
}

// A LoggerInterface for LMStudioClient that records every message (and prints warnings/errors so
// they land in the test log).
export function recordingLogger() {
  const records = [];
  const rec =
    (level) =>
    (...messages) => {
      const text = messages
        .map((m) =>
          m instanceof Error ? `${m.name}: ${m.message}` : typeof m === "string" ? m : safeJson(m),
        )
        .join(" ");
      records.push({ level, text });
      if (level === "warn" || level === "error") console.error(`[sdk ${level}] ${text}`);
    };
  return {
    records,
    logger: { info: rec("info"), warn: rec("warn"), error: rec("error"), debug: rec("debug") },
    problems: () => records.filter((r) => r.level === "warn" || r.level === "error"),
  };
}

function safeJson(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}
