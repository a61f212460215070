#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are on
# this machine: the embedded default of `make run` and the tests' throwaway
# clusters are made from them. Installs Debian's package when missing and
# we are root; otherwise says what to install.
set -euo pipefail

have() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && return 0
  done
  return 1
}

have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server binaries not found: installing Debian's postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # Debian's package starts a system cluster; oidc-bridge does not use it.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
      pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
  fi
  have && exit 0
fi
cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found.
Install them, e.g. `sudo apt-get install postgresql` (Debian/Ubuntu) or
`brew install postgresql@15` (macOS), or set BRIDGE_DATABASE_URL to a server.
MSG
exit 1
