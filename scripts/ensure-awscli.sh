#!/usr/bin/env bash
# Makes sure an AWS CLI is available for the end-to-end tests that drive it
# (test/e2e/awscli_test.go) and prints its full path on stdout (progress
# goes to stderr). The tests call each CLI by that path: `aws` on PATH may
# be either version.
#
#   ensure-awscli.sh       AWS CLI v2: Debian's `awscli` package at
#                          /usr/bin/aws, installed with apt-get when missing
#                          (as root; `apt-get update` once and a retry when
#                          the install fails).
#   ensure-awscli.sh v1    AWS CLI v1 (Python): an `aws` whose version is
#                          1.x, from PATH or pyenv (the interpreter's own
#                          script, not the shim), else a wrapper in the
#                          build cache that runs `python3 -m awscli`. It is
#                          not installed here: PyPI is not reachable from
#                          these machines; where it is, `pip install awscli`.
set -euo pipefail

log() { echo "ensure-awscli: $*" >&2; }

# major CMD...: the major version `CMD... --version` reports (aws-cli/2.9.19 ...).
major() {
  local v
  v=$("$@" --version 2>&1) || return 1
  case "$v" in
  aws-cli/*) v=${v#aws-cli/} && echo "${v%%.*}" ;;
  *) return 1 ;;
  esac
}

v2() {
  local bin=/usr/bin/aws
  if [ -x "$bin" ] && [ "$(major "$bin" || true)" = 2 ]; then
    echo "$bin"
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "AWS CLI v2 is not at $bin: install Debian's awscli package (apt-get install awscli), which the tests call by that path"
    return 1
  fi
  # One installation at a time (parallel `make test` runs).
  # shellcheck source=build-cache.sh
  . "$(dirname "$0")/build-cache.sh"
  local cache
  cache=$(build_cache_dir)
  mkdir -p "$cache"
  exec 9>"$cache/.awscli.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if [ -x "$bin" ] && [ "$(major "$bin" || true)" = 2 ]; then
    echo "$bin"
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  install() { apt-get install -y -qq --no-install-recommends awscli >&2; }
  log "installing Debian's awscli package (AWS CLI v2)"
  if ! install; then
    log "apt-get install failed; running apt-get update and retrying"
    apt-get update -qq >&2
    install
  fi
  if [ -x "$bin" ] && [ "$(major "$bin" || true)" = 2 ]; then
    echo "$bin"
    return 0
  fi
  log "$bin is not AWS CLI v2 after installing awscli: $("$bin" --version 2>&1 || true)"
  return 1
}

v1() {
  local c py
  for c in "${OIDC_BRIDGE_AWS_CLI_V1:-}" "$(command -v aws 2>/dev/null || true)" \
    "$(pyenv which aws 2>/dev/null || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    # A pyenv shim runs the script of the selected version: print that.
    if [ "${c#*/.pyenv/shims/}" != "$c" ]; then
      c=$(pyenv which aws 2>/dev/null) || continue
    fi
    if [ "$(major "$c" || true)" = 1 ]; then
      echo "$c"
      return 0
    fi
  done
  # A Python with the awscli module: its own aws script, else a wrapper.
  for c in "$(command -v python3 2>/dev/null || true)" /usr/bin/python3; do
    [ -n "$c" ] || continue
    py=$("$c" -c 'import sys, awscli; print(sys.executable)' 2>/dev/null) || continue
    if [ -x "$(dirname "$py")/aws" ] && [ "$(major "$(dirname "$py")/aws" || true)" = 1 ]; then
      dirname "$py" | sed 's|$|/aws|'
      return 0
    fi
    # shellcheck source=build-cache.sh
    . "$(dirname "$0")/build-cache.sh"
    local dir
    dir="$(build_cache_dir)/awscli-v1"
    mkdir -p "$dir"
    printf '#!/bin/sh\nexec %q -m awscli "$@"\n' "$py" >"$dir/aws.tmp"
    chmod 0755 "$dir/aws.tmp"
    mv "$dir/aws.tmp" "$dir/aws"
    if [ "$(major "$dir/aws" || true)" = 1 ]; then
      echo "$dir/aws"
      return 0
    fi
  done
  log "no AWS CLI v1 found (an aws whose --version is aws-cli/1.x, or a python3 with the awscli module):"
  log "install it with pip install awscli where PyPI is reachable, or set OIDC_BRIDGE_AWS_CLI_V1 to its aws"
  return 1
}

case "${1:-v2}" in
v2) v2 ;;
v1) v1 ;;
*)
  log "usage: ensure-awscli.sh [v2|v1]"
  exit 2
  ;;
esac
