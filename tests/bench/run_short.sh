#!/usr/bin/env bash
# Runs lmgate_bench --short (figures only; no timing assertion). Args: bench binary, lmgate binary.
# Exit status: the bench's, i.e. non-zero when lmgate did not start or did not exit cleanly on
# SIGTERM (which is what fails this test under ASan when lmgate leaks or corrupts memory).
set -euo pipefail
extra=()
if [ "${LMGATE_TEST_TIME_SCALE:-1}" != "1" ]; then
  # A sanitizer build (.bazelrc sets the time scale): every process runs several times slower,
  # so a lighter load keeps the run inside the test's timeout. The figures mean nothing there;
  # what counts is lmgate going through every section with the sanitizer watching.
  extra=(--rates=50 --streams=50 --drivers=sdk_ws)
fi
exec "$1" --short --lmgate_bin="$2" --report="${TEST_UNDECLARED_OUTPUTS_DIR:-/tmp}/lmgate_bench.md" \
  ${extra[@]+"${extra[@]}"}
