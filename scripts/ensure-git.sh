#!/usr/bin/env bash
# Makes sure git and its smart-HTTP server program (git-http-backend) are
# installed, and prints git's path on stdout (progress goes to stderr). The
# end-to-end test test/e2e/gitpush_test.go runs it: the real git pushes,
# through oidc-bridge's credential helper, to a local smart-HTTP server.
# When git is missing and we are root, `apt-get install -y git`, with
# `apt-get update` once and a retry on failure.
set -euo pipefail

log() { echo "ensure-git: $*" >&2; }

works() {
  command -v git >/dev/null 2>&1 && [ -x "$(git --exec-path)/git-http-backend" ]
}

if works; then
  command -v git
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "git (with git-http-backend) is missing; install it (as root: apt-get install -y git)"
  exit 1
fi

# One installation at a time (parallel `make test` runs).
exec 9>/var/lock/oidc-bridge-ensure-git.lock
if command -v flock >/dev/null 2>&1; then flock 9; fi
if works; then
  command -v git
  exit 0
fi

install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q git >&2; }

log "installing Debian's git"
if ! install; then
  log "apt-get install failed; running apt-get update and retrying"
  apt-get update -q >&2
  install
fi
works || { log "git or git-http-backend still missing after installing git"; exit 1; }
command -v git
