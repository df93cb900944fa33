#!/usr/bin/env bash
# Bazel sh_test driver of the conformance tests: runs LM Studio's official Node clients (installed
# by `bash deploy/setup.sh` into tests/conformance/node_modules) against the emulator.
#   run_conformance.sh <lmstudio_emulator> <tests/conformance/package.json> <test.mjs>...
# node_modules is not a Bazel input, so this script finds the real tests/conformance directory
# through the runfiles symlink of package.json and runs the test files from there (ES modules
# resolve packages from the importing file's directory; NODE_PATH does not apply to them).
# Fails (never skips) when node or the pinned packages are missing.
set -euo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 <lmstudio_emulator> <package.json> <test.mjs>..." >&2
  exit 2
fi
emulator="$1"
package_json="$2"
shift 2

fail() {
  echo "conformance: FAIL: $*" >&2
  exit 1
}

command -v node >/dev/null 2>&1 ||
  fail "node is not on PATH ($PATH). Run: bash deploy/setup.sh"
# Node >= 20.13: node:test's junit reporter and --test-timeout (and what the pinned clients were
# verified with). Debian 12's own nodejs package is 18.
node_version="$(node -p 'process.versions.node')"
node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  process.exit(maj > 20 || (maj === 20 && min >= 13) ? 0 : 1);
' || fail "node $node_version on PATH is too old: the conformance tests need Node >= 20.13"

# Absolute emulator path (runfiles-relative on entry; the node tests run from another directory).
case "$emulator" in
  /*) ;;
  *) emulator="$PWD/$emulator" ;;
esac
[ -x "$emulator" ] || fail "emulator binary not found or not executable: $emulator"
# lmgate itself, for the tests of its HTTP ingress (env LMGATE_BIN, runfiles-relative too).
if [ -n "${LMGATE_BIN:-}" ]; then
  case "$LMGATE_BIN" in
    /*) ;;
    *) LMGATE_BIN="$PWD/$LMGATE_BIN" ;;
  esac
  [ -x "$LMGATE_BIN" ] || fail "lmgate binary not found or not executable: $LMGATE_BIN"
  export LMGATE_BIN
fi

dir="$(dirname "$(readlink -f "$package_json")")"
[ -f "$dir/package.json" ] || fail "cannot resolve the workspace directory of $package_json"

[ -f "$dir/node_modules/.package-lock.json" ] ||
  fail "$dir/node_modules is missing (the official LM Studio clients are not installed). Run: bash deploy/setup.sh"

# Every pinned dependency must be installed at exactly the pinned version.
if ! problems="$(cd "$dir" && node -e '
  const fs = require("fs");
  const deps = JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies || {};
  const bad = [];
  for (const [name, spec] of Object.entries(deps)) {
    // "npm:@scope/pkg@1.2.3" aliases pin a version too.
    const want = spec.startsWith("npm:") ? spec.slice(spec.lastIndexOf("@") + 1) : spec;
    let got = null;
    try { got = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8")).version; }
    catch { bad.push(`${name} is not installed`); continue; }
    if (got !== want) bad.push(`${name} is ${got}, package.json pins ${want}`);
  }
  if (bad.length) { console.log(bad.join("; ")); process.exit(1); }
' 2>&1)"; then
  fail "$dir/node_modules is missing or stale ($problems). Run: bash deploy/setup.sh"
fi

tests=()
for t in "$@"; do
  real="$(readlink -f "$t")"
  [ "$(dirname "$real")" = "$dir" ] || fail "$t resolves to $real, outside $dir"
  tests+=("$real")
done

echo "conformance: node v$node_version, emulator $emulator, tests in $dir"
reporters=(--test-reporter=spec --test-reporter-destination=stdout)
if [ -n "${XML_OUTPUT_FILE:-}" ]; then
  # One <testcase> per node:test case in Bazel's test.xml (tests/run_tests.sh counts them).
  reporters+=(--test-reporter=junit "--test-reporter-destination=$XML_OUTPUT_FILE")
fi
cd "$dir"
export LMSTUDIO_EMULATOR="$emulator"
# A per-test bound on top of the per-await timeouts inside the tests.
exec node --test --test-timeout=120000 "${reporters[@]}" "${tests[@]}"
