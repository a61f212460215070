#!/usr/bin/env bash
# Makes sure PyJWT, with the cryptography backend that RS256 and ES256 need,
# is importable by the system's Python 3, and prints that interpreter's path
# on stdout (progress goes to stderr). The end-to-end test
# test/e2e/pyjwt_test.go runs it: a relying party written by others verifies
# the bridge's tokens from its discovery document alone.
#
# PyJWT is Debian's python3-jwt, importable from /usr/bin/python3 (not from
# a pyenv `python3` that may come first on PATH); PyPI is not needed. When
# it is missing and we are root, `apt-get install -y python3-jwt
# python3-cryptography`, with `apt-get update` once and a retry on failure.
# Override the interpreter with PYJWT_PYTHON.
set -euo pipefail

log() { echo "ensure-pyjwt: $*" >&2; }

python=${PYJWT_PYTHON:-/usr/bin/python3}

works() {
  [ -x "$python" ] && "$python" -c 'import jwt, jwt.algorithms, sys; sys.exit(0 if jwt.algorithms.has_crypto else 1)' >/dev/null 2>&1
}

if works; then
  echo "$python"
  exit 0
fi
if [ "$python" != /usr/bin/python3 ]; then
  log "$python cannot import jwt with its cryptography backend; install PyJWT and cryptography for it, or unset PYJWT_PYTHON"
  exit 1
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "/usr/bin/python3 cannot import jwt; install Debian's python3-jwt and python3-cryptography (as root: apt-get install -y python3-jwt python3-cryptography)"
  exit 1
fi

# One installation at a time (parallel `make test` runs).
exec 9>/var/lock/oidc-bridge-ensure-pyjwt.lock
if command -v flock >/dev/null 2>&1; then flock 9; fi
if works; then
  echo "$python"
  exit 0
fi

install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-jwt python3-cryptography >&2; }

log "installing Debian's python3-jwt and python3-cryptography"
if ! install; then
  log "apt-get install failed; running apt-get update and retrying"
  apt-get update -q >&2
  install
fi
works || { log "/usr/bin/python3 still cannot import jwt after installing python3-jwt"; exit 1; }
echo "$python"
