#!/usr/bin/env bash
# Makes sure axe-core (the accessibility rules engine, from npm) is in the
# build cache and prints the path of its axe.min.js on stdout (progress on
# stderr). The console's browser test injects it into each page. The
# version is pinned; npm's integrity check applies; install scripts are off.
#
#   ${OIDC_BRIDGE_BUILD_CACHE:-~/.cache/oidc-bridge-build}/axe-core-<version>/node_modules/axe-core/axe.min.js
set -euo pipefail

AXE_VERSION=${AXE_VERSION:-4.11.1}
log() { echo "ensure-axe: $*" >&2; }

if [ -n "${OIDC_BRIDGE_AXE:-}" ] && [ -s "$OIDC_BRIDGE_AXE" ]; then
  echo "$OIDC_BRIDGE_AXE"
  exit 0
fi
# shellcheck source=build-cache.sh
. "$(dirname "$0")/build-cache.sh"
dir="$(build_cache_dir)/axe-core-$AXE_VERSION"
js="$dir/node_modules/axe-core/axe.min.js"
if [ -s "$js" ]; then
  echo "$js"
  exit 0
fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [ -s "$js" ]; then
  echo "$js"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  log "npm is needed to fetch axe-core $AXE_VERSION (or set OIDC_BRIDGE_AXE to an axe.min.js)"
  exit 1
fi
log "installing axe-core $AXE_VERSION from npm (once)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm install --no-audit --no-fund --ignore-scripts --no-save --prefix "$work" "axe-core@$AXE_VERSION" >&2)
[ -s "$work/node_modules/axe-core/axe.min.js" ] || { log "npm gave no axe.min.js"; exit 1; }
rm -rf "$dir/node_modules"
mv "$work/node_modules" "$dir/node_modules"
echo "$js"
