#!/usr/bin/env bash
# Runs every test (bazel test //...) and ends with one plain line: "N passed, N failed".
# Installs what is missing first (deploy/setup.sh). Extra arguments go to `bazel test`
# (e.g. --config=asan). Exit status: 0 all passed, non-zero otherwise.
set -u
cd "$(dirname "$0")/.."
bash deploy/setup.sh || exit 1
source deploy/env.sh
bep="$(mktemp /tmp/lmgate-bep.XXXXXX.json)"
trap 'rm -f "$bep"' EXIT
bazel test //... --keep_going --build_event_json_file="$bep" "$@" </dev/null
rc=$?
python3 .ci/bazel_test_summary.py "$bep" --bazel-exit-code="$rc" || rc=${rc:-1}
exit "$rc"
