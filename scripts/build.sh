#!/usr/bin/env bash
# `npm run build`: the compiled JavaScript of the worker, the API and the operators' scripts, ready for
# `node dist/workers/main.js`, `node dist/api/server.js` and `node dist/scripts/migrate.js`:
#   DIR/<folder>/*.js         tsc with tsconfig.build.json (the source tree's layout, with source maps)
#   DIR/assets/               files the code reads at run time (the PDF fonts)
#   DIR/workflow-bundle.js    the prebuilt workflow bundle, which the compiled worker loads instead of bundling
# Usage: build.sh [--no-typecheck] [DIR]. DIR is dist/ unless given. Type errors fail the build, unless
# --no-typecheck (for a suite that type-checks on its own: tsc then only emits, about three times faster).
set -euo pipefail
cd "$(dirname "$0")/.."
check=()
if [ "${1:-}" = --no-typecheck ]; then check=(--noCheck); shift; fi
out="${1:-dist}"
say() { printf '[build] %s\n' "$*" >&2; }
rm -rf "$out"
mkdir -p "$out"
# The bundle is made from the sources while tsc compiles them: the two take about as long, and a 2-core machine
# runs them side by side.
node --import tsx scripts/build-workflow-bundle.ts "$out/workflow-bundle.js" >&2 &
bundle=$!
say "compiling with tsc -p tsconfig.build.json into $out"
if ! npx tsc -p tsconfig.build.json --outDir "$out" "${check[@]}"; then
  kill "$bundle" 2>/dev/null || true
  exit 1
fi
cp -R assets "$out/assets"
wait "$bundle"
say "done: node $out/workers/main.js, node $out/api/server.js, node $out/scripts/migrate.js"
