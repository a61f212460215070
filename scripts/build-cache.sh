#!/usr/bin/env bash
# The folder where the test tool builds are cached (OpenTofu, promtool):
#
#   ${OIDC_BRIDGE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge-build}
#
# It is never a credential cache's folder. `oidc-bridge exchange` caches
# credentials only in a folder of 0700 (the CI's per-job temporary folder,
# $RUNNER_TEMP/oidc-bridge or $AGENT_TEMPDIRECTORY/oidc-bridge, or the one
# named by --cache-dir/OIDC_BRIDGE_CACHE_DIR); build tools in the same folder
# left it 0755 and so turned that cache off. Until v1.10.10's tofu moved, the
# builds lived in ${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge: what is found
# there is moved here (adopt_old_build), and that folder is removed when
# nothing else is left in it.
#
# scripts/ensure-tofu.sh and scripts/ensure-promtool.sh source this file; run
# alone, it prints the folder.
set -euo pipefail

build_cache_dir() {
	local dir=${OIDC_BRIDGE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge-build}
	local cred
	for cred in "${OIDC_BRIDGE_CACHE_DIR:-}" \
		"${RUNNER_TEMP:+$RUNNER_TEMP/oidc-bridge}" "${AGENT_TEMPDIRECTORY:+$AGENT_TEMPDIRECTORY/oidc-bridge}"; do
		if [ -n "$cred" ] && [ "${dir%/}" = "${cred%/}" ]; then
			echo "build-cache: $dir is a credential cache's folder (oidc-bridge exchange); set OIDC_BRIDGE_BUILD_CACHE to another folder" >&2
			return 1
		fi
	done
	echo "$dir"
}

# adopt_old_build NAME: moves NAME (tofu-<version>, promtool) from the old
# shared folder into the build cache, unless the build cache has one.
adopt_old_build() {
	local old=${XDG_CACHE_HOME:-$HOME/.cache}/oidc-bridge
	local new
	new=$(build_cache_dir)
	if [ -d "$old/$1" ] && [ ! -e "$new/$1" ] && [ "${old%/}" != "${new%/}" ]; then
		mkdir -p "$new"
		# Another run may have moved it a moment ago.
		if mv "$old/$1" "$new/$1" 2>/dev/null; then
			echo "build-cache: moved $old/$1 to $new/$1" >&2
		fi
	fi
	if [ "${old%/}" != "${new%/}" ]; then
		rmdir "$old" 2>/dev/null || true
	fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	build_cache_dir
fi
