#!/usr/bin/env bash
# Writes the secret files docker-compose.yml reads (its `secrets:`), once: a file that exists is kept, so running it
# again after an upgrade only adds what is new. Usage: compose-secrets.sh [DIR] (default ./secrets; compose reads
# LABFLOW_SECRETS when it is elsewhere).
#   postgres-password, temporal-db-password     the superuser's and Temporal's own role's passwords
#   database-{admin,owner,app,backup}-url        labflow's connections, one role each (common/config.ts)
#   payload-keys                                  one payload key with a unique key ID (keep it: runs need it)
#   audit-chain-key, backup-encryption-key        256-bit keys, 64 hex characters
#   smtp-url                                      the lab's relay; smtp://mailpit:1025 until edited (dev profile)
#   temporal-ui-oidc-client-secret                the Web UI's OIDC client secret: a placeholder to replace
#   certs/                                        the CA and certificates of scripts/cluster/make-certs.sh
# The folder is mode 0700; the files are readable inside the containers (whose users are not this host's), so the
# folder's mode is what guards them on the host.
set -euo pipefail
dir="${1:-secrets}"
say() { printf '[compose-secrets] %s\n' "$*" >&2; }
command -v openssl >/dev/null || { say "openssl is needed"; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"

# name value
put() {
  if [ -s "$dir/$1" ]; then return 0; fi
  printf '%s\n' "$2" > "$dir/$1"
  chmod 444 "$dir/$1"
  say "wrote $dir/$1"
}
read_secret() { tr -d '\n' < "$dir/$1"; }
password() { openssl rand -hex 24; }

put postgres-password "$(password)"
put temporal-db-password "$(password)"
for role in owner app backup; do put "labflow-$role-password" "$(password)"; done
superuser="$(read_secret postgres-password)"
put database-admin-url "postgres://postgres:$superuser@postgres:5432/labflow"
for role in owner app backup; do
  put "database-$role-url" "postgres://labflow_$role:$(read_secret "labflow-$role-password")@postgres:5432/labflow"
done
put payload-keys "k$(date -u +%Y%m%d)-$(openssl rand -hex 4):$(openssl rand -base64 32)"
put audit-chain-key "$(openssl rand -hex 32)"
put backup-encryption-key "$(openssl rand -hex 32)"
put smtp-url "smtp://mailpit:1025"
put temporal-ui-oidc-client-secret "replace-with-the-web-ui-client-secret-of-the-identity-provider"
bash "$(dirname "$0")/cluster/make-certs.sh" "$dir/certs" >/dev/null
chmod 755 "$dir/certs"
chmod 444 "$dir"/certs/*.pem "$dir"/certs/*.key
# The CA's key signs new certificates: no container gets it, and nobody but this host's owner reads it.
chmod 400 "$dir/certs/ca.key"
echo "$dir"
