#!/usr/bin/env bash
# Installs npm packages from the lockfile when they are missing or older than the lockfile. Two commands started
# together on a fresh clone (the ERP stub and `npm start`) take turns: the second finds the packages installed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
fresh() { [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ]; }
fresh && exit 0
mkdir -p .data
exec 9>.data/npm-install.lock
flock -w 1800 9
if ! fresh; then
  echo "[labflow] installing npm packages from package-lock.json..." >&2
  # npm install, not npm ci: it installs the same locked tree, but tolerates optional platform packages (other
  # systems' @swc/core builds) that a registry mirror does not carry, where npm ci refuses the lockfile.
  npm install --no-audit --no-fund >&2
fi
