#!/usr/bin/env bash
# npm run start:cluster: builds what is missing (the Temporal server, its SQL tool and, when possible, the Web UI
# server, into the per-user cache), then brings the cluster-shaped platform up (scripts/start-cluster.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/install-temporal-server.sh >/dev/null
bash scripts/install-temporal-server.sh --ui >/dev/null || echo "[start] the Web UI server could not be built; starting without it" >&2
exec node --import tsx scripts/start-cluster.ts
