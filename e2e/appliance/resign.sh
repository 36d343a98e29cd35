#!/usr/bin/env bash
# The "signed by another key" bundle: a good bundle re-signed with keys the
# box's keyring does not trust (rauc resign checks the old signature first).
#   resign.sh FROM_DIR TO_DIR KEYS OTHER_KEYS
set -euo pipefail
from=${1:?} to=${2:?} keys=${3:?} other=${4:?}
want=$(cat "$from/.stamp" "$other/ca.cert.pem" | sha256sum | cut -c1-32)
if [ -f "$to/.stamp" ] && [ "$(cat "$to/.stamp")" = "$want" ]; then exit 0; fi
rm -rf "$to"
mkdir -p "$to"
# rauc checks the old signature and the new one against this keyring.
cat "$keys/ca.cert.pem" "$other/ca.cert.pem" >"$to/both.pem"
rauc resign --cert="$other/signing.cert.pem" --key="$other/signing.key.pem" --keyring="$to/both.pem" \
	"$from/capbox-x86_64.raucb" "$to/capbox-x86_64.raucb" >"$to/resign.log" 2>&1 || { cat "$to/resign.log" >&2; exit 1; }
cp "$from/version" "$to/version"
echo "$want" >"$to/.stamp"
