#!/usr/bin/env bash
# Runs lmgate_bench --short (figures only; no timing assertion). Args: bench binary, lmgate binary.
set -euo pipefail
exec "$1" --short --lmgate_bin="$2" --report="${TEST_UNDECLARED_OUTPUTS_DIR:-/tmp}/lmgate_bench.md"
