#!/usr/bin/env bash
# npm start: installs what is missing (npm packages, the Temporal CLI), then brings the platform up (scripts/start.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
TEMPORAL_CLI="$(bash scripts/install-temporal.sh)"
export TEMPORAL_CLI
# node --import tsx rather than npx tsx: npx answers Ctrl-C with exit code 130 even when the platform stopped cleanly.
exec node --import tsx scripts/start.ts
