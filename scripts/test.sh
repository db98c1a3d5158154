#!/usr/bin/env bash
# The whole suite: type-check, lint, then every mocha test on a real Temporal dev server and PostgreSQL, then the
# cluster profile (scripts/test-cluster.sh: the Go-built Temporal server on PostgreSQL with mTLS). With arguments,
# only those mocha tests run, on the dev server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
TEMPORAL_CLI="$(bash scripts/install-temporal.sh)"
export TEMPORAL_CLI
cluster=0
if [ $# -eq 0 ] && [ "${TEST_CLUSTER:-true}" != false ]; then
  cluster=1
  # The server takes minutes to build the first time: it builds while the main suite runs.
  build_log="$(mktemp)"
  bash scripts/install-temporal-server.sh --ui >/dev/null 2>"$build_log" &
  build=$!
fi
echo "[test] type-check"; npx tsc --noEmit -p .
echo "[test] lint"; npx eslint --max-warnings 0 .
echo "[test] openapi lint"; bash scripts/openapi-lint.sh
[ $# -gt 0 ] || set -- "test/**/*.test.ts"
# The test platforms log their errors per process here; a failed run prints the unhandled ones (the 500s).
rm -rf .data/test-logs
echo "[test] mocha"
if ! npx mocha "$@"; then
  if compgen -G ".data/test-logs/*.log" >/dev/null && grep -h '"msg":"unhandled error"' .data/test-logs/*.log >/dev/null; then
    echo "[test] unhandled errors the test platforms logged (.data/test-logs):" >&2
    grep -h '"msg":"unhandled error"' .data/test-logs/*.log | tail -n 20 >&2
  fi
  exit 1
fi
if [ "$cluster" = 1 ]; then
  echo "[test] the Temporal server for the cluster profile"
  if ! wait "$build"; then cat "$build_log" >&2; exit 1; fi
  rm -f "$build_log"
  bash scripts/test-cluster.sh
fi
