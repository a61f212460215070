#!/usr/bin/env bash
# Makes sure Prometheus's promtool is available (for `promtool check rules`
# and `promtool test rules` over deploy/prometheus) and prints its path on
# stdout (progress goes to stderr).
#
# Order of preference:
#   1. PROMTOOL, if set and executable;
#   2. a promtool on PATH;
#   3. the copy cached in the build cache (scripts/build-cache.sh):
#      ${OIDC_BRIDGE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge-build}/promtool/promtool
#      (one in the old shared folder ~/.cache/oidc-bridge is moved there);
#   4. otherwise it is taken out of Debian's `prometheus` package: the .deb is
#      downloaded with `apt-get download` (no root needed) and only
#      /usr/bin/promtool is extracted into the cache. The package is NOT
#      installed, so no prometheus service is created or started, and none of
#      its JavaScript dependencies are pulled in.
#   5. if the download fails and we are root, `apt-get update` once and retry.
set -euo pipefail

log() { echo "ensure-promtool: $*" >&2; }

works() { [ -n "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

if [ -n "${PROMTOOL:-}" ] && works "$PROMTOOL"; then
  echo "$PROMTOOL"
  exit 0
fi
if p=$(command -v promtool 2>/dev/null) && works "$p"; then
  echo "$p"
  exit 0
fi

# shellcheck source=build-cache.sh
. "$(dirname "$0")/build-cache.sh"
cache=$(build_cache_dir)
adopt_old_build promtool
dir="$cache/promtool"
bin="$dir/promtool"
if works "$bin"; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
# One download at a time (parallel `make test` runs).
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if works "$bin"; then
  echo "$bin"
  exit 0
fi

for tool in apt-get dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "no promtool found and no $tool to fetch Debian's prometheus package; install promtool (https://prometheus.io/download/) or set PROMTOOL"
    exit 1
  fi
done

work=$(mktemp -d)
chmod 0755 "$work" # apt-get download runs as _apt when it can
trap 'rm -rf "$work"' EXIT

download() { (cd "$work" && apt-get download -q prometheus >&2); }

log "extracting promtool from Debian's prometheus package (once)"
if ! download; then
  if [ "$(id -u)" -eq 0 ]; then
    log "apt-get download failed; running apt-get update and retrying"
    apt-get update -q >&2
    download
  else
    log "apt-get download prometheus failed; as root, run apt-get update first (or install promtool)"
    exit 1
  fi
fi

deb=$(ls "$work"/prometheus_*.deb | head -n1)
dpkg-deb -x "$deb" "$work/root"
if [ ! -x "$work/root/usr/bin/promtool" ]; then
  log "the prometheus package has no usr/bin/promtool"
  exit 1
fi
cp "$work/root/usr/bin/promtool" "$bin.tmp"
chmod 0755 "$bin.tmp"
mv "$bin.tmp" "$bin"
dpkg-deb -f "$deb" Version >"$dir/VERSION"
works "$bin" || { log "extracted promtool does not run"; exit 1; }
log "promtool $(cat "$dir/VERSION") at $bin"
echo "$bin"
