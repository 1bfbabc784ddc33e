#!/usr/bin/env bash
# Makes the TLS material pullguard's webhook needs on clusters without cert-manager:
#
#   1. a CA (EC P-256, ~10 years), reused from the output directory when it is there, so that a renewal
#      keeps the caBundle the API server already trusts;
#   2. a serving certificate (EC P-256, ~1 year, serverAuth) for the names the API server dials:
#      SERVICE.NAMESPACE.svc (what it uses for a service reference) and SERVICE.NAMESPACE.svc.cluster.local;
#   3. secret.yaml: the Secret `pullguard-tls` (kubernetes.io/tls) the Deployment mounts;
#   4. webhook-cabundle-patch.json: a JSON patch that sets clientConfig.caBundle of the
#      ValidatingWebhookConfiguration `pullguard`.
#
# Nothing touches a cluster unless --apply is given. Key material is written to files with mode 600 and
# never printed. Everything is issued into a staging directory first and moved into place at the end, so
# a failed run leaves the previous files as they were.
set -euo pipefail

readonly PROG=make-certs
readonly SECRET_NAME=pullguard-tls
readonly WEBHOOK_CONFIG=pullguard
# The CA outlives many renewals of the serving certificate; the serving certificate is short enough that
# a leaked key stops working within a year. Renew it with the same --out directory before it expires.
readonly CA_DAYS=3650
readonly SERVING_DAYS=365

usage() {
  cat <<EOF
usage: $PROG [--out DIR] [--namespace NS] [--service NAME] [--new-ca] [--apply]

Makes a CA and a serving certificate for pullguard's webhook and writes, into DIR:
  ca.crt, ca.key                 the CA (reused when present, so renewals keep the caBundle)
  tls.crt, tls.key               the serving certificate for NAME.NS.svc and NAME.NS.svc.cluster.local
  secret.yaml                    Secret $SECRET_NAME (type kubernetes.io/tls) in namespace NS
  webhook-cabundle-patch.json    JSON patch setting caBundle on ValidatingWebhookConfiguration $WEBHOOK_CONFIG

options:
  --out DIR          output directory (created if missing); default: a new temporary directory
  --namespace NS     namespace pullguard runs in (default: pullguard)
  --service NAME     Service in front of pullguard (default: pullguard)
  --new-ca           make a new CA even if DIR has one (the caBundle changes)
  --apply            also run: kubectl apply -f DIR/secret.yaml
                               kubectl patch validatingwebhookconfiguration $WEBHOOK_CONFIG --type=json \\
                                 --patch-file DIR/webhook-cabundle-patch.json
  -h, --help         print this help

environment:
  OPENSSL            openssl command to use (default: openssl)
  KUBECTL            kubectl command to use with --apply (default: kubectl)
EOF
}

die() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 1
}

usage_error() {
  printf '%s: %s (see --help)\n' "$PROG" "$*" >&2
  exit 2
}

# Kubernetes object names: a DNS-1123 label. Checking here also keeps the values safe to place in the
# openssl configuration and the YAML we write.
check_label() {
  local flag=$1 value=$2
  if [[ ! $value =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || ((${#value} > 63)); then
    usage_error "$flag \"$value\" is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)"
  fi
}

out=""
namespace=pullguard
service=pullguard
new_ca=false
apply=false

need_value() {
  [[ $# -ge 2 && -n $2 ]] || usage_error "$1 needs a value"
}

while (($# > 0)); do
  case $1 in
    --out) need_value "$@"; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; [[ -n $out ]] || usage_error "--out needs a value"; shift ;;
    --namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --namespace=*) namespace=${1#*=}; shift ;;
    --service) need_value "$@"; service=$2; shift 2 ;;
    --service=*) service=${1#*=}; shift ;;
    --new-ca) new_ca=true; shift ;;
    --apply) apply=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument \"$1\"" ;;
  esac
done

check_label --namespace "$namespace"
check_label --service "$service"

openssl_cmd=${OPENSSL:-openssl}
kubectl_cmd=${KUBECTL:-kubectl}

command -v "$openssl_cmd" >/dev/null 2>&1 ||
  die "$openssl_cmd not found: install OpenSSL (Debian/Ubuntu: apt-get install openssl; Fedora/RHEL: dnf install openssl; macOS: brew install openssl) or set OPENSSL"
# Checked before anything is written: a half-applied run is worse than one that did not start.
if $apply; then
  command -v "$kubectl_cmd" >/dev/null 2>&1 ||
    die "--apply needs kubectl, and $kubectl_cmd was not found on PATH (or set KUBECTL); without --apply nothing needs it"
fi

# openssl chats on stderr even when it succeeds ("Certificate request self-signature ok"); show its
# messages only when it fails. None of the commands run this way write key material to stdout.
ssl() {
  "$openssl_cmd" "$@" >/dev/null 2>"$stage/openssl.log" || {
    cat "$stage/openssl.log" >&2
    die "openssl $1 failed (see the message above)"
  }
}

# Directories and keys are private from the moment they are created, not chmod-ed afterwards.
umask 077
if [[ -z $out ]]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/pullguard-certs.XXXXXX")
else
  mkdir -p -- "$out" || die "cannot create output directory $out"
fi
[[ -d $out && -w $out ]] || die "output directory $out is not a writable directory"

stage=$(mktemp -d "$out/.make-certs.XXXXXX")
trap 'rm -rf -- "$stage"' EXIT

dns1="$service.$namespace.svc"
dns2="$service.$namespace.svc.cluster.local"

# Our own configuration, so that the host's openssl.cnf (which may add extensions or prompt) cannot
# change what is issued. `req` insists on a distinguished_name section even when -subj gives the subject.
cat >"$stage/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_serving]
basicConstraints = critical,CA:FALSE
# ECDSA keys sign the handshake; keyEncipherment applies to RSA key transport only.
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$dns1,DNS:$dns2
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# A positive serial of 16 octets with 120 random bits: unique per issue, and within the 20 octets
# RFC 5280 (and Go's crypto/x509 in the API server) allow.
serial() {
  printf '0x1%s' "$("$openssl_cmd" rand -hex 15)"
}

new_key() {
  ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# Both files must describe the same key pair, or every certificate we issue would fail to verify.
public_key_of_cert() { "$openssl_cmd" x509 -in "$1" -noout -pubkey 2>/dev/null; }
public_key_of_key() { "$openssl_cmd" pkey -in "$1" -pubout 2>/dev/null; }

ca_state=new
if ! $new_ca && [[ -e $out/ca.crt || -e $out/ca.key ]]; then
  [[ -f $out/ca.crt && -f $out/ca.key ]] ||
    die "$out has only one of ca.crt and ca.key; restore the other or run with --new-ca (the caBundle changes)"
  ca_pub=$(public_key_of_cert "$out/ca.crt") || die "$out/ca.crt is not a readable certificate"
  key_pub=$(public_key_of_key "$out/ca.key") || die "$out/ca.key is not a readable private key"
  [[ $ca_pub == "$key_pub" ]] || die "$out/ca.key does not belong to $out/ca.crt"
  # A serving certificate must not outlive its CA: the API server would reject it on the day the CA expires.
  "$openssl_cmd" x509 -in "$out/ca.crt" -noout -checkend $((SERVING_DAYS * 86400)) >/dev/null ||
    die "the CA in $out expires within $SERVING_DAYS days; run with --new-ca (the caBundle changes)"
  cp -p -- "$out/ca.crt" "$out/ca.key" "$stage/"
  ca_state=reused
else
  new_key "$stage/ca.key"
  ssl req -x509 -new -config "$stage/openssl.cnf" -extensions v3_ca -key "$stage/ca.key" \
    -subj "/CN=pullguard webhook CA ($namespace)" -days "$CA_DAYS" -set_serial "$(serial)" \
    -out "$stage/ca.crt"
fi

new_key "$stage/tls.key"
ssl req -new -config "$stage/openssl.cnf" -key "$stage/tls.key" -subj "/CN=$dns1" -out "$stage/tls.csr"
ssl x509 -req -in "$stage/tls.csr" -CA "$stage/ca.crt" -CAkey "$stage/ca.key" -set_serial "$(serial)" \
  -days "$SERVING_DAYS" -extfile "$stage/openssl.cnf" -extensions v3_serving -out "$stage/tls.crt"
"$openssl_cmd" verify -CAfile "$stage/ca.crt" "$stage/tls.crt" >/dev/null ||
  die "the new serving certificate does not verify against the CA"

b64() {
  "$openssl_cmd" base64 -A -in "$1" || die "cannot base64-encode $1"
}

# Encoded before the heredoc: a failure inside its command substitutions would not stop the script.
tls_crt_b64=$(b64 "$stage/tls.crt")
tls_key_b64=$(b64 "$stage/tls.key")
ca_crt_b64=$(b64 "$stage/ca.crt")
# The Secret carries the serving key, so it is as private as the key file (umask 077 → mode 600).
cat >"$stage/secret.yaml" <<EOF
# Made by certs/make-certs.sh: serving certificate for $dns1. Contains a private key: do not commit.
apiVersion: v1
kind: Secret
metadata:
  name: $SECRET_NAME
  namespace: $namespace
  labels:
    app.kubernetes.io/name: pullguard
    app.kubernetes.io/component: webhook
type: kubernetes.io/tls
data:
  tls.crt: $tls_crt_b64
  tls.key: $tls_key_b64
  ca.crt: $ca_crt_b64
EOF

# "add" sets the member whether or not it exists yet ("replace" fails when caBundle is absent). The patch
# holds only the CA certificate: public, so readable like the certificates.
write_patch() {
  local count=$1 ca_file=$2 dest=$3 bundle i sep=""
  bundle=$(b64 "$ca_file")
  {
    printf '['
    for ((i = 0; i < count; i++)); do
      printf '%s\n  {"op": "add", "path": "/webhooks/%d/clientConfig/caBundle", "value": "%s"}' "$sep" "$i" "$bundle"
      sep=,
    done
    printf '\n]\n'
  } >"$stage/patch.json"
  chmod 644 "$stage/patch.json"
  mv -f -- "$stage/patch.json" "$dest"
}
write_patch 1 "$stage/ca.crt" "$stage/webhook-cabundle-patch.json"

chmod 644 "$stage/ca.crt" "$stage/tls.crt"
chmod 600 "$stage/ca.key" "$stage/tls.key" "$stage/secret.yaml"
for f in ca.crt ca.key tls.crt tls.key secret.yaml webhook-cabundle-patch.json; do
  mv -f -- "$stage/$f" "$out/$f"
done

not_after() { "$openssl_cmd" x509 -in "$1" -noout -enddate | sed 's/^notAfter=//'; }

cat <<EOF
pullguard TLS material in $out
  CA          ca.crt ($ca_state, expires $(not_after "$out/ca.crt")); keep ca.key private and for renewals
  serving     tls.crt for $dns1, $dns2 (expires $(not_after "$out/tls.crt"))
  Secret      secret.yaml: $SECRET_NAME in namespace $namespace (contains the private key)
  caBundle    webhook-cabundle-patch.json for ValidatingWebhookConfiguration $WEBHOOK_CONFIG (and its MutatingWebhookConfiguration with pin-digests)
EOF

if ! $apply; then
  # %q quotes the paths so that the commands can be pasted as they are.
  printf 'to install:\n'
  printf '  kubectl apply -f %q\n' "$out/secret.yaml"
  printf '  kubectl patch validatingwebhookconfiguration %s --type=json --patch-file %q\n' \
    "$WEBHOOK_CONFIG" "$out/webhook-cabundle-patch.json"
  # The pin-digests overlay's mutating webhook calls the same Service: the same patch sets its caBundle.
  printf 'with manifests/overlays/pin-digests, also:\n'
  printf '  kubectl patch mutatingwebhookconfiguration %s --type=json --patch-file %q\n' \
    "$WEBHOOK_CONFIG" "$out/webhook-cabundle-patch.json"
  exit 0
fi

context=$("$kubectl_cmd" config current-context 2>/dev/null || echo "(none)")
echo "applying to kubectl context $context"
"$kubectl_cmd" apply -f "$out/secret.yaml" || die "kubectl apply of $out/secret.yaml failed"
# Every webhook in the configuration calls the same Service, so each one needs the caBundle.
count=$("$kubectl_cmd" get validatingwebhookconfiguration "$WEBHOOK_CONFIG" -o 'jsonpath={range .webhooks[*]}x{end}') ||
  die "cannot read ValidatingWebhookConfiguration $WEBHOOK_CONFIG (apply manifests/ first)"
if ((${#count} > 1)); then
  write_patch "${#count}" "$out/ca.crt" "$out/webhook-cabundle-patch.json"
fi
"$kubectl_cmd" patch validatingwebhookconfiguration "$WEBHOOK_CONFIG" --type=json \
  --patch-file "$out/webhook-cabundle-patch.json" || die "kubectl patch of the caBundle failed"
# The pin-digests overlay adds a MutatingWebhookConfiguration of the same name, calling the same
# Service: it needs the same caBundle. Without that overlay there is none, and nothing to patch.
if mutating=$("$kubectl_cmd" get mutatingwebhookconfiguration "$WEBHOOK_CONFIG" \
  -o 'jsonpath={range .webhooks[*]}x{end}' 2>/dev/null) && ((${#mutating} > 0)); then
  write_patch "${#mutating}" "$out/ca.crt" "$out/mutating-webhook-cabundle-patch.json"
  "$kubectl_cmd" patch mutatingwebhookconfiguration "$WEBHOOK_CONFIG" --type=json \
    --patch-file "$out/mutating-webhook-cabundle-patch.json" || die "kubectl patch of the mutating webhook's caBundle failed"
fi
