#!/usr/bin/env bash
# Installs npm packages from the lockfile when they are missing or older than the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "[labflow] installing npm packages from package-lock.json..." >&2
  # npm install, not npm ci: it installs the same locked tree, but tolerates optional platform packages (other
  # systems' @swc/core builds) that a registry mirror does not carry, where npm ci refuses the lockfile.
  npm install --no-audit --no-fund >&2
fi
