#!/usr/bin/env bash
# The cluster profile of the suite: each mocha run gets the Go-built Temporal server on PostgreSQL with SQL
# visibility, mTLS and roles by certificate (databases of its own, dropped afterwards) instead of the dev server,
# and runs the end-to-end API tests of every process, the SIGKILL tests, the search-attribute queries and the fault
# tests (the server killed and restarted, a worker cut off by a network cut) against it.
# Arguments, when given, replace the list of test files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/install-temporal-server.sh --ui >/dev/null
TEMPORAL_CLI="$(bash scripts/install-temporal.sh)"
export TEMPORAL_CLI
export TEST_TEMPORAL=cluster
if [ $# -eq 0 ]; then
  source scripts/lib/e2e-tests.sh
  set -- \
    test/cluster/search-attributes.test.ts \
    test/cluster/mtls.test.ts \
    test/cluster/authorization.test.ts \
    test/cluster/temporal-ui.test.ts \
    "${E2E_TESTS[@]}" \
    test/cluster/network-cut.test.ts \
    test/cluster/temporal-server-kill.test.ts
fi
echo "[test:cluster] mocha on the Temporal cluster (PostgreSQL, SQL visibility, mTLS)"
npx mocha "$@"
