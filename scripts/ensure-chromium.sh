#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is available for the console's
# browser tests (test/e2e/console_test.go) and prints its path on stdout
# (progress goes to stderr).
#
# Order of preference:
#   1. OIDC_BRIDGE_CHROMIUM, if set and it runs;
#   2. chromium (Debian's package) or chromium-browser on PATH;
#   3. otherwise Debian's `chromium` is installed with apt-get (as root;
#      `apt-get update` once if the install fails), under a lock in the
#      build cache so that parallel runs install it once.
set -euo pipefail

log() { echo "ensure-chromium: $*" >&2; }

works() { [ -n "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

if [ -n "${OIDC_BRIDGE_CHROMIUM:-}" ] && works "$OIDC_BRIDGE_CHROMIUM"; then
  echo "$OIDC_BRIDGE_CHROMIUM"
  exit 0
fi
find_it() {
  local c p
  for c in chromium chromium-browser; do
    if p=$(command -v "$c" 2>/dev/null) && works "$p"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
if find_it; then exit 0; fi

# shellcheck source=build-cache.sh
. "$(dirname "$0")/build-cache.sh"
dir=$(build_cache_dir)
mkdir -p "$dir"
exec 9>"$dir/.chromium.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if find_it; then exit 0; fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "no chromium found; install Debian's chromium (apt-get install chromium) or set OIDC_BRIDGE_CHROMIUM to a Chromium or Chrome binary"
  exit 1
fi
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium >&2; }
log "installing Debian's chromium (once)"
if ! install; then
  log "apt-get install failed; running apt-get update and retrying"
  apt-get update -q >&2
  install
fi
find_it || { log "chromium was installed but does not run"; exit 1; }
