#!/usr/bin/env bash
# A federation's TLS material (openssl): one CA, the broker's server certificate, the
# coordinator's and each agent's client certificate. The broker (Mosquitto with
# deploy/mosquitto/icosfl.conf, or the embedded one) takes a client's identity from its
# certificate's CN, so an agent's CN is its agent id and the ACL confines it to its own topics.
#
#   scripts/gen-certs.sh --out DIR [--host NAME|IP]... [--coordinator-cn CN] [--days N] [--force] [--new-ca] [AGENT_ID...]
#
#   DIR/ca.crt ca.key                 the federation CA (keep ca.key off the brokers and agents)
#   DIR/broker.crt broker.key         SAN: localhost, 127.0.0.1 and every --host
#   DIR/coordinator.crt .key          CN icosfl-coordinator (or --coordinator-cn)
#   DIR/agents/ID.crt ID.key          CN = the agent id, one pair per AGENT_ID
#
# Private keys are EC P-256, mode 0600. Idempotent: an existing key and certificate are kept
# (a missing certificate is issued for its key); run again with more AGENT_IDs to add agents.
# --force: new keys and certificates for the broker, the coordinator and the AGENT_IDs named.
# --new-ca: a new CA; every certificate in DIR (agents/ included) is issued again from it.
set -euo pipefail
umask 077

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

out=""
days=825
coordinator_cn="icosfl-coordinator"
force=0
new_ca=0
hosts=()
agents=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --host) hosts+=("${2:?--host needs a name or an IP}"); shift 2 ;;
    --coordinator-cn) coordinator_cn="${2:?--coordinator-cn needs a name}"; shift 2 ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --force) force=1; shift ;;
    --new-ca) new_ca=1; shift ;;
    -h|--help) usage 0 ;;
    --*) echo "gen-certs.sh: unknown option $1" >&2; usage 64 >&2 ;;
    *) agents+=("$1"); shift ;;
  esac
done
[ -n "$out" ] || { echo "gen-certs.sh: --out DIR is required" >&2; usage 64 >&2; }
command -v openssl >/dev/null || { echo "gen-certs.sh: openssl not found (apt-get install openssl)" >&2; exit 69; }
[[ "$days" =~ ^[1-9][0-9]*$ ]] || { echo "gen-certs.sh: --days must be a positive integer, got '$days'" >&2; exit 64; }

# Ids name MQTT topics and ACL users: the protocol's ID_PATTERN (common/protocol/messages.ts).
id_ok() { [[ "$1" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; }
id_ok "$coordinator_cn" || { echo "gen-certs.sh: --coordinator-cn '$coordinator_cn' must be 1-64 of [A-Za-z0-9._-]" >&2; exit 64; }
for a in "${agents[@]}"; do
  id_ok "$a" || { echo "gen-certs.sh: agent id '$a' must be 1-64 of [A-Za-z0-9._-]" >&2; exit 64; }
  # The ACL gives the coordinator's CN the coordinator's rights: no agent may carry it.
  [ "$a" != "$coordinator_cn" ] || { echo "gen-certs.sh: agent id '$a' is the coordinator's CN" >&2; exit 64; }
done

mkdir -p "$out/agents"
chmod 0755 "$out" "$out/agents"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

new_key() { # path
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  chmod 0600 "$1"
}

serial() { echo "0x$(openssl rand -hex 16)"; }

reissue=0
if [ "$new_ca" = 1 ] || [ ! -f "$out/ca.key" ]; then
  new_key "$out/ca.key"
  rm -f "$out/ca.crt"
fi
if [ ! -f "$out/ca.crt" ]; then
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$days" -subj "/CN=icosfl federation CA" -set_serial "$(serial)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$out/ca.crt"
  chmod 0644 "$out/ca.crt"
  echo "made $out/ca.crt"
  reissue=1 # certificates of an earlier CA no longer verify: issue them all again
fi

issue() { # base cn kind(server|client) [san]
  local base="$1" cn="$2" kind="$3" san="${4:-}" renew="$5"
  if [ "$renew" = 1 ] || [ ! -f "$base.key" ]; then
    new_key "$base.key"
    rm -f "$base.crt"
  fi
  [ "$reissue" = 0 ] || rm -f "$base.crt"
  if [ -f "$base.crt" ]; then
    echo "kept $base.crt"
    return
  fi
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "authorityKeyIdentifier=keyid"
    if [ "$kind" = server ]; then
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=$san"
    else
      echo "keyUsage=critical,digitalSignature"
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$tmp/ext"
  openssl req -new -key "$base.key" -subj "/CN=$cn" -out "$tmp/csr"
  openssl x509 -req -in "$tmp/csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -set_serial "$(serial)" -sha256 -days "$days" \
    -extfile "$tmp/ext" -out "$base.crt" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  chmod 0644 "$base.crt"
  echo "made $base.crt (CN $cn)"
}

san="DNS:localhost,IP:127.0.0.1"
for h in "${hosts[@]}"; do
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san="$san,IP:$h"; else san="$san,DNS:$h"; fi
done
issue "$out/broker" "${hosts[0]:-localhost}" server "$san" "$force"
issue "$out/coordinator" "$coordinator_cn" client "" "$force"
for a in "${agents[@]}"; do issue "$out/agents/$a" "$a" client "" "$force"; done
if [ "$reissue" = 1 ]; then
  # Agents made by earlier runs, not named this time: their keys stay, their certificates follow the new CA.
  for k in "$out"/agents/*.key; do
    [ -f "$k" ] || continue
    a=$(basename "$k" .key)
    [[ " ${agents[*]} " == *" $a "* ]] || issue "$out/agents/$a" "$a" client "" 0
  done
fi
