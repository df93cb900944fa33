// clients/node/chat.mjs (@grpc/grpc-js + @grpc/proto-loader from clients/node/node_modules,
// protos loaded at run time from proto/) against lmgate.
import fs from "node:fs";
import path from "node:path";

import { clientSuite } from "./client_suite.mjs";
import { runfile } from "./gateway.mjs";

// Run the example from its real directory so that it resolves its own node_modules (installed
// by `bash deploy/setup.sh`, not a Bazel input) and proto/.
const script = fs.realpathSync(runfile("LMGATE_NODE_CHAT"));
const dir = path.dirname(script);
const pinned = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).dependencies;
for (const [name, version] of Object.entries(pinned)) {
  let got;
  try {
    got = JSON.parse(
      fs.readFileSync(path.join(dir, "node_modules", name, "package.json"), "utf8"),
    ).version;
  } catch {
    got = "not installed";
  }
  if (got !== version) {
    throw new Error(
      `${dir}: ${name} is ${got}, package.json pins ${version}. Run: bash deploy/setup.sh`,
    );
  }
}
clientSuite("Node", { cmd: process.execPath, args: [script] });
