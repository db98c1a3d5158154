#!/usr/bin/env bash
# Builds the production Temporal server and its SQL schema tool (and, with --ui, the Web UI server) from Go
# modules into the per-user cache the Temporal CLI uses (${LABFLOW_CACHE:-~/.cache/labflow}/bin), once, and prints
# the directory holding them. A binary already in the cache is reused.
#
#   temporal-server      go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION
#   temporal-sql-tool    go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION (schemas embedded)
#   temporal-ui-server   github.com/temporalio/ui-server/v2/cmd/server@v$TEMPORAL_UI_VERSION   (with --ui)
#
# The server version is the one docker-compose.yml's images use (TEMPORAL_VERSION there); a test keeps them equal.
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail
server_version="${TEMPORAL_SERVER_VERSION:-1.31.2}"
ui_version="${TEMPORAL_UI_VERSION:-2.49.1}"
cache="${LABFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/labflow}"
bin="$cache/bin"
say() { printf '[install-temporal-server] %s\n' "$*" >&2; }

want_ui=0
for arg in "$@"; do
  case "$arg" in
    --ui) want_ui=1 ;;
    *) say "unknown argument $arg (use --ui to build the Web UI server too)"; exit 2 ;;
  esac
done

# name module-path version
builds=(
  "temporal-server go.temporal.io/server/cmd/server $server_version"
  "temporal-sql-tool go.temporal.io/server/cmd/tools/sql $server_version"
)
[ "$want_ui" = 1 ] && builds+=("temporal-ui-server github.com/temporalio/ui-server/v2/cmd/server $ui_version")

missing() {
  local name version
  for b in "${builds[@]}"; do
    read -r name _ version <<<"$b"
    [ -x "$bin/$name-$version" ] || return 0
  done
  return 1
}

if ! missing; then echo "$bin"; exit 0; fi
command -v go >/dev/null 2>&1 || { say "Go is needed to build the Temporal server (https://go.dev/dl)"; exit 1; }

mkdir -p "$bin"
exec 9>"$cache/install-server.lock"
if ! flock -w 3600 9; then say "another build holds $cache/install-server.lock for too long"; exit 1; fi

for b in "${builds[@]}"; do
  read -r name module version <<<"$b"
  target="$bin/$name-$version"
  if [ -x "$target" ]; then ln -sfn "$name-$version" "$bin/$name"; continue; fi
  say "building $name v$version ($module) with Go into $bin (first time only; several minutes)..."
  started=$(date +%s)
  ( while sleep 30; do say "... still building $name ($(( $(date +%s) - started ))s)"; done ) &
  ticker=$!
  tmp="$bin/.building-$name"
  rm -rf "$tmp"; mkdir -p "$tmp"
  if ! GOBIN="$tmp" GOFLAGS=-mod=mod go install "$module@v$version" >&2; then
    kill "$ticker" 2>/dev/null || true
    say "go install $module@v$version failed"
    exit 1
  fi
  kill "$ticker" 2>/dev/null || true
  built=$(find "$tmp" -maxdepth 1 -type f -perm -u+x | head -1)
  mv "$built" "$target"; rm -rf "$tmp"
  ln -sfn "$name-$version" "$bin/$name"
  say "built $name in $(( $(date +%s) - started ))s: $target"
done
echo "$bin"
