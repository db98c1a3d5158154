# The end-to-end API tests of each process and the SIGKILL worker tests: the part of the suite that the cluster
# profile (scripts/test-cluster.sh) and the Node 24 run (scripts/test-node24.sh) repeat. Sourced, not run.
# shellcheck disable=SC2034
E2E_TESTS=(
  test/document-approval/decisions-and-signatures-over-api.test.ts
  test/document-approval/review-actions-over-api.test.ts
  test/capa/lifecycle.test.ts
  test/sample-intake/intake-flow.test.ts
  test/soap-summary/summary-flow.test.ts
  test/erp-sync/api.test.ts
  test/results/analysis-flow.test.ts
  test/reports/report-flow.test.ts
  test/exports/bulk-export.test.ts
  test/document-ai/coa-flow.test.ts
  test/document-approval/worker-crash.test.ts
  test/soap-summary/worker-crash.test.ts
  test/erp-sync/worker-crash.test.ts
  test/reports/worker-crash.test.ts
)
