#!/usr/bin/env bash
# Makes sure the OpenTofu CLI used by the Terraform provider's acceptance
# tests is built, and prints its path on stdout (progress goes to stderr).
#
# `go install github.com/opentofu/opentofu/cmd/tofu@...` does not work (its
# go.mod has a replace directive), so this downloads the module from the Go
# module proxy, copies it out of the module cache and builds ./cmd/tofu in
# the copy. That takes about 4 minutes cold; the binary is cached in the
# build cache (scripts/build-cache.sh), never a credential cache's folder:
#   ${OIDC_BRIDGE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge-build}/tofu-<version>/tofu
# and reused when present; one built into the old shared folder
# (~/.cache/oidc-bridge) is moved there. Override the version with TOFU_VERSION.
set -euo pipefail

# shellcheck source=build-cache.sh
. "$(dirname "$0")/build-cache.sh"
version=${TOFU_VERSION:-v1.10.10}
cache=$(build_cache_dir)
adopt_old_build "tofu-$version"
dir="$cache/tofu-$version"
bin="$dir/tofu"
GO=${GO:-go}

# The CLI config may be preset to a missing file; tofu -version needs none.
unset TF_CLI_CONFIG_FILE

if [ -x "$bin" ] && [ "$(cat "$dir/VERSION" 2>/dev/null || true)" = "$version" ] &&
  "$bin" -version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

echo "ensure-tofu: building OpenTofu $version (once; about 4 minutes)" >&2
mkdir -p "$dir"
# One build at a time (parallel `make test` runs).
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [ -x "$bin" ] && [ "$(cat "$dir/VERSION" 2>/dev/null || true)" = "$version" ]; then
  echo "$bin"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Outside any module, so that no go.mod or go.sum is touched.
modpath=$(cd "$work" && GOFLAGS=-mod=mod "$GO" mod download -json "github.com/opentofu/opentofu@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$modpath" ] || [ ! -d "$modpath" ]; then
  echo "ensure-tofu: go mod download github.com/opentofu/opentofu@$version failed" >&2
  exit 1
fi
cp -R "$modpath" "$work/src"
chmod -R u+w "$work/src"
(
  cd "$work/src"
  GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -trimpath \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$work/tofu" ./cmd/tofu
)
"$work/tofu" -version >&2
mv -f "$work/tofu" "$bin"
echo "$version" >"$dir/VERSION"
echo "$bin"
