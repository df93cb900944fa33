// A tiny grpcurl that knows nothing about lmgate but its address: every service, method and message
// comes from the server's reflection service (grpc-js-reflection-client), and messages are encoded
// and decoded with protobufjs from those descriptors. It understands the subset of grpcurl the
// README's recipes use:
//   grpcurl [-plaintext] [-H 'name: value']... [-d JSON] ADDR list [SERVICE]
//   grpcurl ... ADDR describe SYMBOL            (a service or a message)
//   grpcurl ... -d JSON ADDR package.Service/Method   (unary or server-streaming)
// and prints what grpcurl prints: one indented protojson document per response message (JSON
// field names, enums by name, 64-bit integers and durations as strings, unset fields omitted).
import { createRequire } from "node:module";

// The pinned packages live in tests/clients/node_modules (package-lock.json).
const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const { GrpcReflection } = require("grpc-js-reflection-client");

// Splits one shell command line into words: single and double quotes, backslash escapes outside
// single quotes. Enough for the README's recipes (no variables, no globbing).
export function shellWords(line) {
  const words = [];
  let cur = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      cur = (cur ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let s = "";
      for (; j < line.length && line[j] !== '"'; j++) s += line[j] === "\\" ? line[++j] : line[j];
      if (j >= line.length) throw new Error(`unterminated " in: ${line}`);
      cur = (cur ?? "") + s;
      i = j;
    } else if (c === "\\") {
      cur = (cur ?? "") + line[++i];
    } else if (/\s/.test(c)) {
      if (cur !== null) words.push(cur);
      cur = null;
    } else {
      cur = (cur ?? "") + c;
    }
  }
  if (cur !== null) words.push(cur);
  return words;
}

// Parses grpcurl's arguments (the words after "grpcurl").
export function parseGrpcurl(args) {
  const cmd = { plaintext: false, headers: [], data: undefined, addr: undefined, verb: undefined };
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-plaintext") cmd.plaintext = true;
    else if (a === "-d") cmd.data = args[++i];
    else if (a === "-H") cmd.headers.push(args[++i]);
    else if (a.startsWith("-")) throw new Error(`grpcurl option ${a} is not supported here`);
    else rest.push(a);
  }
  [cmd.addr, cmd.verb, ...cmd.operands] = rest;
  if (!cmd.addr || !cmd.verb) throw new Error(`grpcurl needs ADDR and a verb: ${args.join(" ")}`);
  return cmd;
}

const lowerCamel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

function durationFromJson(s) {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) throw new Error(`bad duration ${JSON.stringify(s)} (want e.g. "1.5s")`);
  const sign = m[1] ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? "").padEnd(9, "0")) };
}

function durationToJson(d) {
  const nanos = Number(d.nanos ?? 0);
  const seconds = Number(d.seconds ?? 0);
  if (!nanos) return `${seconds}s`;
  const frac = String(Math.abs(nanos)).padStart(9, "0").replace(/0+$/, "");
  return `${seconds === 0 && nanos < 0 ? "-" : ""}${seconds}.${frac}s`;
}

function timestampToJson(t) {
  const ms = Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

// protojson -> a plain object protobufjs' fromObject accepts (proto field names; well-known
// types in their JSON forms converted).
function fromProtoJson(type, json) {
  if (type.fullName === ".google.protobuf.Duration") return durationFromJson(json);
  if (type.fullName === ".google.protobuf.Timestamp") {
    const ms = Date.parse(json);
    if (Number.isNaN(ms)) throw new Error(`bad timestamp ${JSON.stringify(json)}`);
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`${type.fullName}: want a JSON object, got ${JSON.stringify(json)}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(json)) {
    const field = type.fieldsArray.find((f) => f.name === key || lowerCamel(f.name) === key);
    if (!field)
      throw new Error(`message type ${type.fullName.slice(1)} has no known field named ${key}`);
    field.resolve();
    const convert = (v) =>
      field.resolvedType && field.resolvedType.fieldsArray
        ? fromProtoJson(field.resolvedType, v)
        : v;
    out[field.name] = field.repeated ? value.map(convert) : convert(value);
  }
  return out;
}

// protobufjs object (proto field names) -> protojson (JSON names, well-known types as strings).
function toProtoJson(type, obj) {
  if (type.fullName === ".google.protobuf.Duration") return durationToJson(obj);
  if (type.fullName === ".google.protobuf.Timestamp") return timestampToJson(obj);
  const out = {};
  for (const field of type.fieldsArray) {
    if (!(field.name in obj)) continue;
    field.resolve();
    const convert = (v) =>
      field.resolvedType && field.resolvedType.fieldsArray ? toProtoJson(field.resolvedType, v) : v;
    const v = obj[field.name];
    out[lowerCamel(field.name)] = field.repeated ? v.map(convert) : convert(v);
  }
  return out;
}

function describeService(service) {
  const lines = [`${service.fullName.slice(1)} is a service:`, `service ${service.name} {`];
  for (const m of service.methodsArray) {
    m.resolve();
    const req = `${m.requestStream ? "stream " : ""}${m.resolvedRequestType.fullName}`;
    const res = `${m.responseStream ? "stream " : ""}${m.resolvedResponseType.fullName}`;
    lines.push(`  rpc ${m.name} ( ${req} ) returns ( ${res} );`);
  }
  lines.push("}");
  return lines.join("\n");
}

function describeMessage(type) {
  type.resolveAll();
  const fieldLine = (f, indent) => {
    const t = f.resolvedType ? f.resolvedType.fullName : f.type;
    const label = f.repeated ? "repeated " : f.options?.proto3_optional ? "optional " : "";
    return `${indent}${label}${t} ${f.name} = ${f.id};`;
  };
  const lines = [`${type.fullName.slice(1)} is a message:`, `message ${type.name} {`];
  const inOneof = new Set();
  for (const oneof of type.oneofsArray) {
    if (oneof.fieldsArray.length === 1 && oneof.fieldsArray[0].options?.proto3_optional) continue;
    lines.push(`  oneof ${oneof.name} {`);
    for (const f of oneof.fieldsArray) {
      lines.push(fieldLine(f, "    "));
      inOneof.add(f);
    }
    lines.push("  }");
  }
  for (const f of type.fieldsArray) if (!inOneof.has(f)) lines.push(fieldLine(f, "  "));
  lines.push("}");
  return lines.join("\n");
}

// Runs one grpcurl command; resolves to { stdout } (what grpcurl would print) or rejects with an
// Error whose `code` is the gRPC status of a failed call.
export async function grpcurl(args, { timeoutMs = 30_000 } = {}) {
  const cmd = parseGrpcurl(args);
  if (!cmd.plaintext) throw new Error("only -plaintext is supported here (lmgate's default)");
  const creds = grpc.credentials.createInsecure();
  const metadata = new grpc.Metadata();
  for (const h of cmd.headers) {
    const i = h.indexOf(":");
    metadata.add(h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim());
  }
  const deadline = () => new Date(Date.now() + timeoutMs);
  const reflection = new GrpcReflection(cmd.addr, creds);
  try {
    return await run(cmd, reflection, creds, metadata, deadline);
  } finally {
    reflection.client.close(); // the package has no close(); its channel would keep node alive
  }
}

async function run(cmd, reflection, creds, metadata, deadline) {
  const rootFor = async (symbol) =>
    (
      await reflection.getDescriptorBySymbol(symbol, metadata, { deadline: deadline() })
    ).getProtobufJsRoot();

  if (cmd.verb === "list") {
    if (cmd.operands.length === 0) {
      const services = await reflection.listServices("*", metadata, { deadline: deadline() });
      return { stdout: [...services].sort().join("\n") + "\n" };
    }
    const service = (await rootFor(cmd.operands[0])).lookupService(cmd.operands[0]);
    return { stdout: service.methodsArray.map((m) => `${cmd.operands[0]}.${m.name}\n`).join("") };
  }
  if (cmd.verb === "describe") {
    const symbol = cmd.operands[0];
    const root = await rootFor(symbol);
    const found = root.lookup(symbol);
    if (found?.methodsArray) return { stdout: describeService(found) + "\n" };
    if (found?.fieldsArray) return { stdout: describeMessage(found) + "\n" };
    throw new Error(`cannot describe ${symbol}`);
  }

  // Invocation: package.Service/Method.
  const slash = cmd.verb.lastIndexOf("/");
  if (slash < 0) throw new Error(`unknown verb or method ${cmd.verb}`);
  const serviceName = cmd.verb.slice(0, slash);
  const methodName = cmd.verb.slice(slash + 1);
  const service = (await rootFor(serviceName)).lookupService(serviceName);
  const method = service.methods[methodName];
  if (!method) throw new Error(`service ${serviceName} has no method ${methodName}`);
  method.resolve();
  const reqType = method.resolvedRequestType;
  const resType = method.resolvedResponseType;
  const request = reqType.fromObject(fromProtoJson(reqType, JSON.parse(cmd.data ?? "{}")));
  const serialize = (m) => Buffer.from(reqType.encode(m).finish());
  const deserialize = (buf) => resType.decode(buf);
  const print = (m) => {
    const obj = resType.toObject(m, { longs: String, enums: String, bytes: String });
    return JSON.stringify(toProtoJson(resType, obj), null, 2) + "\n";
  };
  const client = new grpc.Client(cmd.addr, creds);
  const path = `/${serviceName}/${methodName}`;
  try {
    if (method.requestStream) throw new Error("client-streaming methods are not supported here");
    if (!method.responseStream) {
      const res = await new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          path,
          serialize,
          deserialize,
          request,
          metadata,
          { deadline: deadline() },
          (err, r) => (err ? reject(err) : resolve(r)),
        ),
      );
      return { stdout: print(res) };
    }
    const call = client.makeServerStreamRequest(path, serialize, deserialize, request, metadata, {
      deadline: deadline(),
    });
    let stdout = "";
    await new Promise((resolve, reject) => {
      call.on("data", (m) => (stdout += print(m)));
      call.on("error", reject);
      call.on("end", resolve);
    });
    return { stdout };
  } finally {
    client.close();
  }
}

// The grpcurl commands of a Markdown document's section (e.g. "## grpcurl"): every line of its
// ```sh blocks that starts with "grpcurl ", as argument lists (without the "grpcurl" word).
export function grpcurlRecipes(markdown, heading) {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no section "${heading}"`);
  const next = markdown.indexOf("\n## ", start + heading.length + 2);
  const section = markdown.slice(start, next < 0 ? undefined : next);
  const recipes = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const text = block[1].replace(/\\\n/g, " ");
    for (const line of text.split("\n")) {
      if (line.startsWith("grpcurl ")) recipes.push({ line, args: shellWords(line).slice(1) });
    }
  }
  return recipes;
}
