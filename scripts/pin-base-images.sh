#!/usr/bin/env bash
# Prints, for each base image of the Dockerfile (FROM name:tag@sha256:...),
# the digest its tag points to now, so that an update is a reviewed one-line
# change: replace the digest after the tag in the Dockerfile, build, test,
# commit. With -w it rewrites the Dockerfile itself (review `git diff`).
#
# The digest is the multi-platform index's (what `docker pull name:tag`
# resolves), read with the first of these on PATH:
#   crane digest NAME:TAG                                  (go-containerregistry)
#   docker buildx imagetools inspect NAME:TAG --format '{{json .Manifest}}'
#   skopeo inspect --raw docker://NAME:TAG | sha256sum     (the index's bytes)
# It needs the registries (Docker Hub, gcr.io), nothing else. Dependabot
# (.github/dependabot.yml, ecosystem docker) proposes the same updates as
# pull requests; deploy/deploytest fails on a base image without a digest.
set -euo pipefail

cd "$(dirname "$0")/.."
write=false
[[ "${1:-}" == "-w" ]] && write=true

digest() {
	local ref="$1"
	if command -v crane >/dev/null 2>&1; then
		crane digest "$ref"
	elif command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
		docker buildx imagetools inspect "$ref" --format '{{json .Manifest}}' |
			sed -n 's/.*"digest":"\(sha256:[0-9a-f]\{64\}\)".*/\1/p' | head -n 1
	elif command -v skopeo >/dev/null 2>&1; then
		echo "sha256:$(skopeo inspect --raw "docker://$ref" | sha256sum | cut -d' ' -f1)"
	else
		echo "pin-base-images: need crane, docker buildx or skopeo on PATH" >&2
		return 1
	fi
}

status=0
while read -r image; do
	ref="${image%@sha256:*}"
	old="${image#"$ref"}"
	old="${old#@}"
	new="$(digest "$ref")" || { status=1; continue; }
	if [[ ! "$new" =~ ^sha256:[0-9a-f]{64}$ ]]; then
		echo "pin-base-images: no digest for $ref" >&2
		status=1
		continue
	fi
	if [[ "$old" == "$new" ]]; then
		echo "$ref@$new (current)"
	else
		echo "$ref@$new (was ${old:-unpinned})"
		if $write; then
			# The image as it stands in a FROM line, its dots escaped.
			sed -i "/^FROM /s#[[:space:]]${image//./\\.}\([[:space:]]\|\$\)# $ref@$new\1#" Dockerfile
		fi
	fi
done < <(awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' Dockerfile | grep '[:@]')
exit "$status"
