#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (--config=fuzz, in an output base of its own so the gcc
# build is not disturbed) and fuzzes each for a while, starting from the committed seed corpora.
#
#   bash tests/fuzz/run_fuzzers.sh                 # every target, 6 s each (CI)
#   bash tests/fuzz/run_fuzzers.sh 600 sdk_ws      # one target, 10 minutes
#
# New interesting inputs stay in a scratch corpus ($LMGATE_FUZZ_WORK, default /tmp); a crash
# leaves crash-* there and fails the script: fix it, then copy the input into
# tests/fuzz/corpus/<target>/ so the corpus test (bazel test //tests/fuzz/...) guards it.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-6}"
shift || true
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=(sse sdk_ws config convert cli http_wire request_path metrics_http http_ingress)

output_base="${HOME}/.cache/bazel/lmgate-fuzz-$(pwd | sha1sum | cut -c1-12)"
# Its own Bazel server: let it exit after 10 idle minutes (a CI clone per run would otherwise
# leave one JVM per checkout for Bazel's default 3 hours).
bazel_fuzz() { bazel --output_base="$output_base" --max_idle_secs=600 "$@"; }
labels=()
for t in "${targets[@]}"; do labels+=("//tests/fuzz:${t}_fuzzer"); done
# gold warns once per ASan check symbol and fuzzer ("Cannot export local symbol '__asan_check_*'"):
# harmless, hundreds of lines; keep them out of the log.
bazel_fuzz build --config=fuzz --symlink_prefix=/ "${labels[@]}" 2>&1 |
  { grep -v "warning: Cannot export local symbol '__asan" || true; }
bin="$(bazel_fuzz info --config=fuzz bazel-bin 2>/dev/null)"

work="${LMGATE_FUZZ_WORK:-/tmp/lmgate-fuzz}"
failed=0
n_passed=0
n_failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  echo "fuzz: $t for ${seconds}s"
  if ! "$bin/tests/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/" \
      "$work/$t/corpus" "tests/fuzz/corpus/$t" >"$work/$t/log" 2>&1; then
    failed=1
    n_failed=$((n_failed + 1))
    echo "fuzz: $t FAILED; input and log in $work/$t/" >&2
    grep -E "ERROR|SUMMARY|==[0-9]+==" "$work/$t/log" | head -20 >&2 || true
  else
    n_passed=$((n_passed + 1))
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/$t/log" | tr '\n' ' '
    echo
  fi
done
# One line per run, read by tests/run_tests.sh --fuzz (each target is one pass or failure).
echo "fuzz: $n_passed passed, $n_failed failed"
exit "$failed"
