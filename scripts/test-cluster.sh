#!/usr/bin/env bash
# The cluster profile of the suite: each mocha run gets the Go-built Temporal server on PostgreSQL with SQL
# visibility, mTLS and roles by certificate (databases of its own, dropped afterwards) instead of the dev server, and runs the
# end-to-end API tests of every process, the SIGKILL tests and the search-attribute queries against it.
# Arguments, when given, replace the list of test files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-temporal-server.sh --ui >/dev/null
TEMPORAL_CLI="$(bash scripts/install-temporal.sh)"
export TEMPORAL_CLI
export TEST_TEMPORAL=cluster
if [ $# -eq 0 ]; then
  set -- \
    test/cluster/search-attributes.test.ts \
    test/cluster/mtls.test.ts \
    test/cluster/authorization.test.ts \
    test/cluster/temporal-ui.test.ts \
    test/document-approval/decisions-and-signatures-over-api.test.ts \
    test/document-approval/review-actions-over-api.test.ts \
    test/capa/lifecycle.test.ts \
    test/sample-intake/intake-flow.test.ts \
    test/soap-summary/summary-flow.test.ts \
    test/erp-sync/api.test.ts \
    test/document-approval/worker-crash.test.ts \
    test/soap-summary/worker-crash.test.ts \
    test/erp-sync/worker-crash.test.ts
fi
echo "[test:cluster] mocha on the Temporal cluster (PostgreSQL, SQL visibility, mTLS)"
npx mocha "$@"
