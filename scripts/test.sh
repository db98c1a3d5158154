#!/usr/bin/env bash
# The whole suite: type-check, lint, then every mocha test on a real Temporal dev server and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
TEMPORAL_CLI="$(bash scripts/install-temporal.sh)"
export TEMPORAL_CLI
echo "[test] type-check"; npx tsc --noEmit -p .
echo "[test] lint"; npx eslint --max-warnings 0 .
[ $# -gt 0 ] || set -- "test/**/*.test.ts"
echo "[test] mocha"; npx mocha "$@"
