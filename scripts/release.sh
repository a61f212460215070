#!/usr/bin/env bash
# Builds a release of oidc-bridge: static binaries, their SHA-256 sums, and
# the container image (when Docker can build it).
#
#   scripts/release.sh VERSION [OUTDIR]
#
#   VERSION   a release tag, vMAJOR.MINOR.PATCH (optionally -pre), e.g. v1.0.0;
#             it is what `oidc-bridge --version` prints and is part of every name
#   OUTDIR    where to write (default dist/, which git ignores)
#   RELEASE_TARGETS  the os/arch pairs to build (default
#             "linux/amd64 linux/arm64 darwin/amd64 darwin/arm64")
#   RELEASE_IMAGE    the image name (default ghcr.io/oidc-bridge/oidc-bridge);
#             RELEASE_IMAGE=none skips the image step
#
# Writes into OUTDIR, for each target, the binary
#
#   oidc-bridge_<VERSION>_<os>_<arch>       e.g. oidc-bridge_v1.0.0_linux_amd64
#
# (CGO_ENABLED=0, -trimpath, -s -w, main.version=VERSION) and SHA256SUMS, in
# `sha256sum -c` form. These are the names the GitLab template downloads
# (actions/gitlab: OIDC_BRIDGE_CLI_VERSION and OIDC_BRIDGE_CLI_SHA256, the
# line of SHA256SUMS for linux_<arch>) once they are attached to the GitHub
# release of the tag VERSION.
#
# The image: `docker buildx build` of the Dockerfile, tagged
# <RELEASE_IMAGE>:<VERSION>, for linux/amd64 and linux/arm64, when
# `docker buildx` reaches a Docker engine (the image stays in the builder's
# cache; add --push to publish). Without one, the script prints the exact
# command and says so; the binaries are made either way.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: scripts/release.sh VERSION [OUTDIR]   (VERSION: a tag such as v1.0.0)" >&2
	exit 2
fi
version=$1
out=${2:-dist}
if ! [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then
	echo "release: VERSION must be a release tag such as v1.0.0 or v1.1.0-rc.1, not \"$version\"" >&2
	exit 2
fi
targets=${RELEASE_TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
image=${RELEASE_IMAGE:-ghcr.io/oidc-bridge/oidc-bridge}

mkdir -p "$out"
names=()
for t in $targets; do
	if ! [[ $t =~ ^(linux|darwin)/(amd64|arm64)$ ]]; then
		echo "release: unknown target \"$t\" (linux or darwin, amd64 or arm64, as os/arch)" >&2
		exit 2
	fi
	os=${t%/*}
	arch=${t#*/}
	name="oidc-bridge_${version}_${os}_${arch}"
	echo "release: building $name" >&2
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$GO" build -trimpath \
		-ldflags "-s -w -X main.version=$version" -o "$out/$name" ./cmd/oidc-bridge
	names+=("$name")
done
(cd "$out" && sha256sum "${names[@]}" >SHA256SUMS)
echo "release: wrote ${names[*]} and SHA256SUMS into $out" >&2

[ "$image" = none ] && exit 0
cmd=(docker buildx build --platform linux/amd64,linux/arm64 --build-arg "VERSION=$version"
	-t "$image:$version" .)
if command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	echo "release: ${cmd[*]}" >&2
	"${cmd[@]}"
else
	echo "release: no Docker engine with buildx here: the image is not built. Build it where there is one, from this folder:" >&2
	echo "  ${cmd[*]}" >&2
	echo "  (add --push to publish it)" >&2
fi
