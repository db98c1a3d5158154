#!/usr/bin/env bash
# npm packages and the Temporal CLI, for commands that need both (benchmarks, replay).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/install-temporal.sh >/dev/null
