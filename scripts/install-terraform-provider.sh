#!/usr/bin/env bash
# Builds the Terraform/OpenTofu provider (terraform/main.go) and installs it
# into a local filesystem mirror with the registry layout, under both
# registry hostnames (Terraform's default, registry.terraform.io, and
# OpenTofu's, registry.opentofu.org), so that `source = "oidc-bridge/oidcbridge"`
# resolves offline with `terraform init` and `tofu init`:
#
#   <mirror>/<host>/oidc-bridge/oidcbridge/<version>/<os>_<arch>/terraform-provider-oidcbridge_v<version>
#
#   TF_PROVIDER_MIRROR   the mirror (default ~/.terraform.d/plugins, a folder both
#                        CLIs search by themselves when their CLI configuration
#                        has no provider_installation block)
#   TF_PROVIDER_VERSION  the version (default: the newest vX.Y.Z tag without
#                        its v, else 0.1.0); a plain X.Y.Z, since neither CLI
#                        picks a pre-release without an exact version constraint
#   GOOS, GOARCH         the target platform (default: this machine's)
#
# Prints the installed paths and the CLI configuration that uses the mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

mirror=${TF_PROVIDER_MIRROR:-$HOME/.terraform.d/plugins}
version=${TF_PROVIDER_VERSION:-}
if [ -z "$version" ]; then
	version=$(git describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' 2>/dev/null || true)
	version=${version#v}
	version=${version:-0.1.0}
fi
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	echo "install-terraform-provider: TF_PROVIDER_VERSION $version is not X.Y.Z" >&2
	exit 1
fi
goos=${GOOS:-$("$GO" env GOOS)}
goarch=${GOARCH:-$("$GO" env GOARCH)}
case $mirror in /*) ;; *) mirror="$PWD/$mirror" ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin="terraform-provider-oidcbridge_v$version"
CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch "$GO" build -trimpath \
	-ldflags "-s -w -X main.version=$version" -o "$work/$bin" ./terraform

for host in registry.terraform.io registry.opentofu.org; do
	dir="$mirror/$host/oidc-bridge/oidcbridge/$version/${goos}_$goarch"
	mkdir -p "$dir"
	cp "$work/$bin" "$dir/$bin.tmp"
	chmod 0755 "$dir/$bin.tmp"
	mv -f "$dir/$bin.tmp" "$dir/$bin"
	echo "installed $dir/$bin"
done

cat <<CFG

The provider oidc-bridge/oidcbridge $version is in the mirror $mirror.
CFG
if [ "$mirror" = "$HOME/.terraform.d/plugins" ]; then
	echo "terraform init and tofu init find it there by themselves unless your CLI configuration"
	echo "(~/.terraformrc, ~/.tofurc, TF_CLI_CONFIG_FILE) has a provider_installation block; then add:"
else
	echo "Point your CLI configuration (~/.terraformrc, ~/.tofurc or TF_CLI_CONFIG_FILE) at it:"
fi
cat <<CFG

provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/oidc-bridge/*", "registry.opentofu.org/oidc-bridge/*"]
  }
  direct {
    exclude = ["registry.terraform.io/oidc-bridge/*", "registry.opentofu.org/oidc-bridge/*"]
  }
}
CFG
