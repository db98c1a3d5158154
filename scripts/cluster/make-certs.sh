#!/usr/bin/env bash
# Makes the local certificate authority and the certificates of the Temporal cluster (mTLS on the frontend), once:
#   ca.pem / ca.key                   the CA; the frontend trusts client certificates it signed, and nothing else
#   frontend.pem / frontend.key       the frontend's server certificate (localhost, 127.0.0.1, temporal)
#   labflow.pem / labflow.key         labflow's client certificate (the worker, the API, the scripts)
#   system-worker.pem / .key          the Temporal server's own system worker (schedules, batch operations)
#   ui.pem / ui.key                   the Web UI server
#   NAME.pem / NAME.key               with more arguments: a client certificate for each NAME (CN=NAME, O=labflow),
#                                     e.g. an operator's; it has no role until temporal-config/server/roles.yaml
#                                     names it (docs/operations.md)
# What each certificate may do on the frontend is temporal-config/server/roles.yaml's to say, by subject.
# Usage: make-certs.sh DIR [NAME...]. Existing files are kept (delete DIR to make new ones; see docs/operations.md
# on rotation).
# Private keys are mode 0600. Progress goes to stderr.
set -euo pipefail
dir="${1:?usage: make-certs.sh DIR}"
days="${CERT_DAYS:-825}"
say() { printf '[certs] %s\n' "$*" >&2; }
command -v openssl >/dev/null || { say "openssl is needed to make the cluster's certificates"; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077

if [ ! -s ca.pem ]; then
  say "making the local CA in $dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days "$days" \
    -subj "/O=labflow/CN=labflow local Temporal CA" \
    -addext "basicConstraints=critical,CA:true,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# name subject usage [subjectAltName]
issue() {
  local name=$1 subject=$2 usage=$3 san=${4:-}
  [ -s "$name.pem" ] && return 0
  say "issuing $name.pem ($subject)"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:false"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days "$days" -sha256 \
    -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

issue frontend "/O=labflow/CN=temporal-frontend" "serverAuth,clientAuth" "DNS:localhost,DNS:temporal,IP:127.0.0.1"
issue labflow "/O=labflow/CN=labflow" "clientAuth"
issue system-worker "/O=labflow/CN=temporal-system-worker" "clientAuth"
issue ui "/O=labflow/CN=temporal-ui" "clientAuth"
shift
for name in "$@"; do
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || { say "not a certificate name: $name (letters, digits, dot, dash, underscore)"; exit 2; }
  case "$name" in ca | frontend | labflow | system-worker | ui) say "$name is one of the cluster's own certificates"; exit 2 ;; esac
  issue "$name" "/O=labflow/CN=$name" "clientAuth"
done
chmod 644 ./*.pem
echo "$dir"
