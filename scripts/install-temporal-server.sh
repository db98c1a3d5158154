#!/usr/bin/env bash
# Builds labflow's Temporal server, the SQL schema tool (and, with --ui, the Web UI server) with Go into the per-user
# cache the Temporal CLI uses (${LABFLOW_CACHE:-~/.cache/labflow}/bin), once, and prints the directory holding them
# (with --print-server: the path of the server binary instead). A binary already in the cache is reused.
#
#   labflow-temporal-server-<v>-<hash>  this repository's temporal-server/ module: go.temporal.io/server
#                                        v$TEMPORAL_SERVER_VERSION with the certificate-subject authorizer. <hash>
#                                        is that of its go.mod, go.sum, *.go and the Go version, so a change to the
#                                        module (or another checkout's version of it) builds its own binary.
#   temporal-sql-tool-<v>                go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION (schemas embedded)
#   temporal-ui-server-<v>               github.com/temporalio/ui-server/v2/cmd/server@v$TEMPORAL_UI_VERSION (with --ui)
#
# The module requires exactly the upstream server's module versions, so its packages are the ones Go's build cache
# already holds from the SQL tool (and from any earlier server build): a change to the module relinks, it does not
# rebuild the server. The server version is the one docker-compose.yml's images use (TEMPORAL_VERSION there) and
# temporal-server/go.mod requires; a test keeps them equal. Progress goes to stderr; only the path goes to stdout.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
server_version="${TEMPORAL_SERVER_VERSION:-1.31.2}"
ui_version="${TEMPORAL_UI_VERSION:-2.49.1}"
cache="${LABFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/labflow}"
bin="$cache/bin"
say() { printf '[install-temporal-server] %s\n' "$*" >&2; }

want_ui=0
print_server=0
for arg in "$@"; do
  case "$arg" in
    --ui) want_ui=1 ;;
    --print-server) print_server=1 ;;
    *) say "unknown argument $arg (--ui builds the Web UI server too; --print-server prints the server's path)"; exit 2 ;;
  esac
done

command -v go >/dev/null 2>&1 || go_missing=1
module="$repo/temporal-server"
grep -q "go.temporal.io/server v$server_version\$" "$module/go.mod" ||
  { say "temporal-server/go.mod does not require go.temporal.io/server v$server_version"; exit 1; }
# The Go version is part of the key: a new toolchain builds a new binary.
go_version="$( [ -z "${go_missing:-}" ] && go env GOVERSION || echo none)"
source_hash="$(cd "$module" && { echo "$go_version"; cat go.mod go.sum; for f in $(ls ./*.go | LC_ALL=C sort); do echo "$f"; cat "$f"; done; } | sha256sum | cut -c1-12)"
server_name="labflow-temporal-server-$server_version-$source_hash"

# name kind source version; kind "module" is go build in the repository's module, "install" is go install.
builds=(
  "$server_name module $module $server_version"
  "temporal-sql-tool-$server_version install go.temporal.io/server/cmd/tools/sql $server_version"
)
[ "$want_ui" = 1 ] && builds+=("temporal-ui-server-$ui_version install github.com/temporalio/ui-server/v2/cmd/server $ui_version")

finish() {
  if [ "$print_server" = 1 ]; then echo "$bin/$server_name"; else echo "$bin"; fi
}
missing() {
  local name
  for b in "${builds[@]}"; do
    read -r name _ <<<"$b"
    [ -x "$bin/$name" ] || return 0
  done
  return 1
}
link() {
  # Convenience names for operators (temporal-sql-tool, temporal-ui-server); labflow's scripts use the full names.
  case "$1" in
    temporal-sql-tool-*) ln -sfn "$1" "$bin/temporal-sql-tool" ;;
    temporal-ui-server-*) ln -sfn "$1" "$bin/temporal-ui-server" ;;
  esac
}

if ! missing; then finish; exit 0; fi
[ -z "${go_missing:-}" ] || { say "Go is needed to build the Temporal server (https://go.dev/dl)"; exit 1; }

mkdir -p "$bin"
exec 9>"$cache/install-server.lock"
if ! flock -w 3600 9; then say "another build holds $cache/install-server.lock for too long"; exit 1; fi

for b in "${builds[@]}"; do
  read -r name kind source version <<<"$b"
  target="$bin/$name"
  if [ -x "$target" ]; then link "$name"; continue; fi
  say "building $name with Go into $bin (several minutes the first time; a relink when only the module changed)..."
  started=$(date +%s)
  ( while sleep 30; do say "... still building $name ($(( $(date +%s) - started ))s)"; done ) &
  ticker=$!
  tmp="$bin/.building-$name"
  rm -rf "$tmp"; mkdir -p "$tmp"
  if [ "$kind" = module ]; then
    built_ok() { (cd "$source" && GOFLAGS="-mod=mod -buildvcs=false" go build -o "$tmp/$name" .) >&2; }
  else
    built_ok() { GOBIN="$tmp" GOFLAGS=-mod=mod go install "$source@v$version" >&2; }
  fi
  if ! built_ok; then
    kill "$ticker" 2>/dev/null || true
    say "building $name from $source failed"
    exit 1
  fi
  kill "$ticker" 2>/dev/null || true
  built=$(find "$tmp" -maxdepth 1 -type f -perm -u+x | head -1)
  mv "$built" "$target"; rm -rf "$tmp"
  link "$name"
  say "built $name in $(( $(date +%s) - started ))s: $target"
done
finish
