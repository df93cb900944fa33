#!/usr/bin/env bash
# Runs every test and ends with one plain line: "N passed, N failed".
#
#   bash tests/run_tests.sh                 # bazel test //... (what the README's second command runs)
#   bash tests/run_tests.sh --asan          # ... then the whole suite again under ASan + UBSan
#   bash tests/run_tests.sh --tsan          # ... then the whole suite again under TSan
#   bash tests/run_tests.sh --fuzz          # ... then every libFuzzer target for a few seconds
#   bash tests/run_tests.sh -c opt          # other arguments go to every `bazel test`
#
# CI (.ci/run) runs `--asan --fuzz --config=ci`. Installs what is missing first (deploy/setup.sh).
# Each phase prints its own "phase: N passed, N failed" line; the last line is the total.
# Exit status: 0 when every phase passed, non-zero otherwise.
set -u
cd "$(dirname "$0")/.."
asan=0
tsan=0
fuzz=0
fuzz_seconds="${LMGATE_FUZZ_SECONDS:-5}"
bazel_args=()
for a in "$@"; do
  case "$a" in
    --asan) asan=1 ;;
    --tsan) tsan=1 ;;
    --fuzz) fuzz=1 ;;
    *) bazel_args+=("$a") ;;
  esac
done

bash deploy/setup.sh || exit 1
source deploy/env.sh

total_passed=0
total_failed=0
overall=0
tmp="$(mktemp -d /tmp/lmgate-tests.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# add_counts "<phase>" "<N passed, N failed[, N skipped]>" <rc>
add_counts() {
  local p f
  p="$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$2")"
  f="$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$2")"
  if [ -z "$p" ] || [ -z "$f" ]; then p=0; f=1; fi
  if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "$1: $p passed, $f failed"
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  [ "$3" -ne 0 ] && overall=1
  return 0
}

# bazel_phase <name> [bazel test flags...]. Summarised right away: configs share bazel-out, so
# the next phase overwrites this one's test.xml files.
bazel_phase() {
  local name="$1" bep="$tmp/$1.bep.json" rc line
  shift
  echo "== $name: bazel test //... $*"
  bazel test //... --keep_going --build_event_json_file="$bep" "$@" </dev/null
  rc=$?
  line="$(python3 .ci/bazel_test_summary.py "$bep" --bazel-exit-code="$rc")"
  # Exit 3 = some test failed, 4 = no tests; anything else non-zero is a build/infra failure.
  add_counts "$name" "$line" "$rc"
}

bazel_phase tests ${bazel_args[@]+"${bazel_args[@]}"}
if [ "$asan" -eq 1 ]; then
  bazel_phase asan --config=asan ${bazel_args[@]+"${bazel_args[@]}"}
fi
if [ "$tsan" -eq 1 ]; then
  bazel_phase tsan --config=tsan ${bazel_args[@]+"${bazel_args[@]}"}
fi
if [ "$fuzz" -eq 1 ]; then
  echo "== fuzz: tests/fuzz/run_fuzzers.sh $fuzz_seconds"
  bash tests/fuzz/run_fuzzers.sh "$fuzz_seconds" </dev/null 2>&1 | tee "$tmp/fuzz.log"
  rc=${PIPESTATUS[0]}
  add_counts fuzz "$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$tmp/fuzz.log" | tail -1 |
    sed 's/^fuzz: //')" "$rc"
fi
echo "$total_passed passed, $total_failed failed"
exit "$overall"
