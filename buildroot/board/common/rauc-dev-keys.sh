#!/bin/sh
# Development signing keys for RAUC bundles: a throw-away CA and a signing
# certificate issued by it. Never for production (docs/IMAGE.md "Update
# signing"): production keys are made once, offline, and passed to the build
# with CAPBOX_RAUC_KEYS=DIR holding the same three files.
#
#   rauc-dev-keys.sh DIR   -> DIR/ca.cert.pem (the keyring the image trusts),
#                             DIR/signing.key.pem, DIR/signing.cert.pem
set -eu
dir=${1:?usage: rauc-dev-keys.sh DIR}
mkdir -p "$dir"
umask 077
cnf=$dir/openssl.cnf
cat >"$cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = capbox development
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[signing]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/ca.key.pem" -out "$dir/ca.cert.pem" -days 3650 \
	-subj "/CN=capbox development CA" -config "$cnf" -extensions ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/signing.key.pem" -out "$dir/signing.csr" \
	-subj "/CN=capbox development signing" -config "$cnf" 2>/dev/null
openssl x509 -req -in "$dir/signing.csr" -CA "$dir/ca.cert.pem" -CAkey "$dir/ca.key.pem" \
	-CAcreateserial -out "$dir/signing.cert.pem" -days 3650 \
	-extfile "$cnf" -extensions signing 2>/dev/null
rm -f "$dir/signing.csr" "$dir/ca.cert.srl" "$cnf"
