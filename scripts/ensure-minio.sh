#!/usr/bin/env bash
# Makes sure the MinIO server used by the end-to-end interop tests
# (test/minio, test/e2e/minio_test.go) is built, and prints its path on
# stdout (progress goes to stderr).
#
# MinIO is an independent relying party of the bridge's own OIDC issuer: its
# STS AssumeRoleWithWebIdentity fetches the bridge's discovery document and
# JWKS and verifies the bridge-signed token itself. It is built once from the
# Go module proxy with `go install github.com/minio/minio@<version>` (its
# go.mod has no replace directive) and cached in the build cache
# (scripts/build-cache.sh), never a credential cache's folder:
#   ${OIDC_BRIDGE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge-build}/minio-<version>/minio
# A large build: about 4 minutes cold on two cores. Override the version with
# MINIO_VERSION.
set -euo pipefail

# shellcheck source=build-cache.sh
. "$(dirname "$0")/build-cache.sh"
version=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
cache=$(build_cache_dir)
dir="$cache/minio-$version"
bin="$dir/minio"
GO=${GO:-go}

built() {
  [ -x "$bin" ] && [ "$(cat "$dir/VERSION" 2>/dev/null || true)" = "$version" ] &&
    "$bin" --version >/dev/null 2>&1
}

if built; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
# One build at a time (parallel `make test` runs).
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if built; then
  echo "$bin"
  exit 0
fi

echo "ensure-minio: building MinIO $version (once; about 4 minutes)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Outside any module, so that no go.mod or go.sum is touched; the binary
# lands in the temporary GOBIN first so that a broken build leaves no file
# that looks finished.
(
  cd "$work"
  GOBIN="$work/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
    "$GO" install -trimpath "github.com/minio/minio@$version"
)
"$work/bin/minio" --version >&2
mv -f "$work/bin/minio" "$bin"
echo "$version" >"$dir/VERSION"
echo "$bin"
