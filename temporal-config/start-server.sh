#!/bin/sh
# Starts the Temporal server from server/config.yaml in a container (docker-compose.yml's `temporal` service): every
# ${NAME} placeholder of the template is filled from the environment (the same names scripts/lib/temporal-cluster.ts
# fills on one machine), the database password from the file DB_PASSWORD_FILE names. The rendered configuration is
# written to a private temporary file, never to the image or a volume. POSIX sh and awk: nothing else is needed.
set -eu
template="${TEMPORAL_CONFIG_TEMPLATE:-/etc/labflow/temporal-config/server/config.yaml}"
if [ -n "${DB_PASSWORD_FILE:-}" ]; then
  [ -z "${DB_PASSWORD:-}" ] || { echo "start-server: set DB_PASSWORD or DB_PASSWORD_FILE, not both" >&2; exit 1; }
  DB_PASSWORD="$(cat "$DB_PASSWORD_FILE")" || { echo "start-server: cannot read DB_PASSWORD_FILE $DB_PASSWORD_FILE" >&2; exit 1; }
  export DB_PASSWORD
fi
umask 077
rendered="$(mktemp -d)/temporal-server.yaml"
awk '
  {
    line = $0; out = ""
    while (match(line, /\$\{[A-Z_]+\}/)) {
      name = substr(line, RSTART + 2, RLENGTH - 3)
      if (!(name in ENVIRON)) { printf "start-server: %s uses ${%s}, which has no value\n", FILENAME, name > "/dev/stderr"; exit 1 }
      out = out substr(line, 1, RSTART - 1) ENVIRON[name]
      line = substr(line, RSTART + RLENGTH)
    }
    print out line
  }
' "$template" > "$rendered"
exec "${TEMPORAL_SERVER_BIN:-temporal-server}" --config-file "$rendered" start
