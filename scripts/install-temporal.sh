#!/usr/bin/env bash
# Prints the path of a Temporal CLI (dev server + Web UI), installing it first when needed:
#   1. $TEMPORAL_CLI, or `temporal` on PATH
#   2. the per-user cache, shared by every clone: ${LABFLOW_CACHE:-~/.cache/labflow}/bin/temporal
#   3. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into that cache (takes a few minutes once)
#   4. the official release download, where there is internet
# Progress goes to stderr; only the path goes to stdout.
set -euo pipefail
version=1.5.1
cache="${LABFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/labflow}"
target="$cache/bin/temporal"
say() { printf '[install-temporal] %s\n' "$*" >&2; }

if [ -n "${TEMPORAL_CLI:-}" ]; then
  [ -x "$TEMPORAL_CLI" ] || { say "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable"; exit 1; }
  echo "$TEMPORAL_CLI"; exit 0
fi
if command -v temporal >/dev/null 2>&1; then command -v temporal; exit 0; fi
if [ -x "$target" ]; then echo "$target"; exit 0; fi

mkdir -p "$cache/bin"
lock="$cache/install.lock"
exec 9>"$lock"
if ! flock -w 1800 9; then say "another install holds $lock for too long"; exit 1; fi
if [ -x "$target" ]; then echo "$target"; exit 0; fi

if command -v go >/dev/null 2>&1; then
  say "building the Temporal CLI v$version with Go into $cache/bin (first time only; this takes several minutes)..."
  started=$(date +%s)
  ( while sleep 30; do say "... still building ($(( $(date +%s) - started ))s)"; done ) &
  ticker=$!
  trap 'kill $ticker 2>/dev/null || true' EXIT
  tmp="$cache/bin/.building"
  rm -rf "$tmp"; mkdir -p "$tmp"
  if GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@v$version" >&2; then
    mv "$tmp/temporal" "$target"; rm -rf "$tmp"
    say "built in $(( $(date +%s) - started ))s: $target"
    echo "$target"; exit 0
  fi
  say "go install failed; trying the official download"
fi

arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64|arm64) arch=arm64;; esac
os=$(uname -s | tr '[:upper:]' '[:lower:]')
url="https://temporal.download/cli/archive/v$version?platform=$os&arch=$arch"
say "downloading $url"
if curl -fsSL --max-time 300 "$url" | tar -xz -C "$cache/bin" temporal; then
  chmod +x "$target"; echo "$target"; exit 0
fi
say "could not install the Temporal CLI: install Go (https://go.dev/dl) or set TEMPORAL_CLI to an existing binary"
exit 1
