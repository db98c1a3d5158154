#!/usr/bin/env bash
# Lints the OpenAPI document the API serves with Redocly's recommended rules (redocly.yaml), offline. Any warning
# fails too: the document stays clean.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
npx tsx scripts/openapi-document.ts "$dir/openapi.json"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
if ! npx redocly lint "$dir/openapi.json" --config redocly.yaml --format=stylish >"$dir/lint.txt" 2>&1 \
  || grep -v "[║╔╚]" "$dir/lint.txt" | grep -qi "warning"; then
  grep -v '[║╔╚]' "$dir/lint.txt" >&2
  exit 1
fi
echo "openapi.json: valid, no warnings"
