#!/usr/bin/env bash
# Makes sure a Python interpreter that can run moto's server
# (`python -m moto.server -p PORT`: the AWS emulator the end-to-end tests
# run the AWS paths against, test/moto) is available, and prints its full
# path on stdout (progress goes to stderr).
#
# Order of preference, each taken only when it imports moto MOTO_VERSION
# (default 5.2.1) with its server extras (flask, flask_cors):
#   1. OIDC_BRIDGE_MOTO_PYTHON, if set;
#   2. python3 on PATH (on these machines pyenv's 3.11 has moto); the
#      interpreter's own path (sys.executable) is printed, not a pyenv shim;
#   3. the virtual environment in the build cache (scripts/build-cache.sh):
#      ${OIDC_BRIDGE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge-build}/moto-<version>/
#   4. otherwise that environment is made with python3's venv module and
#      `pip install 'moto[server]==<version>'`. This needs PyPI (or a pip
#      index configured for pip); where none is reachable the script fails
#      and says so.
set -euo pipefail

log() { echo "ensure-moto: $*" >&2; }

version=${MOTO_VERSION:-5.2.1}

# interpreter PY: prints PY's sys.executable when it imports moto $version
# with the server's modules.
interpreter() {
  [ -n "$1" ] || return 1
  "$1" - "$version" 2>/dev/null <<'PY'
import sys
import moto, moto.server, flask, flask_cors  # noqa: F401
if moto.__version__ != sys.argv[1]:
    sys.exit(1)
print(sys.executable)
PY
}

candidates=("${OIDC_BRIDGE_MOTO_PYTHON:-}")
if p=$(command -v python3 2>/dev/null); then candidates+=("$p"); fi
for c in "${candidates[@]}"; do
  if py=$(interpreter "$c"); then
    echo "$py"
    exit 0
  fi
done

# shellcheck source=build-cache.sh
. "$(dirname "$0")/build-cache.sh"
cache=$(build_cache_dir)
dir="$cache/moto-$version"
if py=$(interpreter "$dir/bin/python3"); then
  echo "$py"
  exit 0
fi

mkdir -p "$cache"
# One installation at a time (parallel `make test` runs).
exec 9>"$cache/.moto-$version.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if py=$(interpreter "$dir/bin/python3"); then
  echo "$py"
  exit 0
fi

base=$(command -v python3 2>/dev/null || true)
if [ -z "$base" ]; then
  log "no Python 3 found: install python3 (with its venv module) so that moto $version can be installed"
  exit 1
fi
log "installing moto[server]==$version into $dir (once)"
# A half-made environment (an interrupted run) is made again.
rm -rf "$dir"
if ! "$base" -m venv "$dir" >&2; then
  rm -rf "$dir"
  log "$base -m venv failed: install Python's venv module (Debian: apt-get install python3-venv)"
  exit 1
fi
if ! "$dir/bin/python3" -m pip install -q --disable-pip-version-check "moto[server]==$version" >&2; then
  rm -rf "$dir"
  log "pip install 'moto[server]==$version' failed (is PyPI reachable?): the moto tests need it."
  log "Install it into a Python of your own and set OIDC_BRIDGE_MOTO_PYTHON to that interpreter."
  exit 1
fi
if ! py=$(interpreter "$dir/bin/python3"); then
  log "the installed moto does not import from $dir/bin/python3"
  exit 1
fi
log "moto $version at $py"
echo "$py"
