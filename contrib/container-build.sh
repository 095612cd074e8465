#!/usr/bin/env bash
# Build the container image with podman and smoke-test it (what CI runs):
#
#   bash contrib/container-build.sh [TAG]        (default tag: localhost/hl7bridge:dev)
#
# Where the base image cannot be pulled (only Debian's package mirror is
# reachable), BASE=debootstrap makes a Debian 12 base image from the mirror
# with debootstrap and builds on it; otherwise BASE is the image to use
# (default: the Containerfile's docker.io/library/debian:bookworm-slim).
# RUN steps use chroot isolation, so no container runtime is needed
# (`podman run` itself may be refused in sandboxes). The smoke test is a build
# stage on top of the image, as its own user: `check`, then `run` with the
# embedded broker until ready, the HEALTHCHECK command, and SIGTERM -> exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/hl7bridge:dev}
base=${BASE:-}
export DEBIAN_FRONTEND=noninteractive
need=""
command -v podman >/dev/null || need="$need podman"
[ "$base" != debootstrap ] || command -v debootstrap >/dev/null || need="$need debootstrap"
if [ -n "$need" ]; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
if [ "$base" = debootstrap ]; then
	base=localhost/hl7bridge-base:bookworm
	if ! podman image exists "$base"; then
		root=$(mktemp -d)
		echo "== debootstrap bookworm (base image $base)"
		# the Debian mirror this machine's apt already uses
		mirror=$({ grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }'
			grep -hs '^deb ' /etc/apt/sources.list | awk '{ print $2 }'; } | grep -v security | head -n 1)
		[ -n "$mirror" ] || { echo "no Debian mirror found in the apt sources"; exit 1; }
		debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
			{ tail -n 20 "$root.log"; exit 1; }
		tar -C "$root" -c . | podman import -q - "$base" >/dev/null
		rm -rf "$root" "$root.log"
	fi
fi
args=(--isolation chroot --format docker -f contrib/Containerfile -t "$tag")
[ -z "$base" ] || args+=(--pull=never --build-arg "BASE=$base")
echo "== podman build ${args[*]} ."
podman build "${args[@]}" . >/tmp/hl7bridge-image.log 2>&1 || { tail -n 40 /tmp/hl7bridge-image.log; exit 1; }
podman image inspect "$tag" --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} volumes={{.Config.Volumes}}'
podman image inspect "$tag" --format '{{.Config.Healthcheck}}' | grep -q healthcheck ||
	{ echo "the image has no HEALTHCHECK"; exit 1; }

echo "== smoke test (a build stage on top of $tag)"
podman build --isolation chroot --format docker --pull=never -f - -t "$tag-smoke" . >/tmp/hl7bridge-image-smoke.log 2>&1 <<SMOKE || { tail -n 40 /tmp/hl7bridge-image-smoke.log; exit 1; }
FROM $tag
RUN test "\$(id -un)" = hl7bridge && /usr/sbin/hl7bridge-entrypoint check | tail -n 1
RUN set -e; /usr/sbin/hl7bridge-entrypoint run 2>/tmp/log & pid=\$!; \
	for i in \$(seq 1 120); do grep -q 'ready in' /tmp/log && break; sleep 0.25; done; \
	grep -q 'ready in' /tmp/log || { cat /tmp/log; exit 1; }; \
	/usr/sbin/hl7bridge-entrypoint healthcheck && echo "HEALTHCHECK: healthy"; \
	kill -TERM \$pid; wait \$pid && echo "SIGTERM: exit 0"
SMOKE
grep -E 'no errors|HEALTHCHECK|SIGTERM' /tmp/hl7bridge-image-smoke.log | grep -v '^STEP\|RUN'
podman rmi -f "$tag-smoke" >/dev/null 2>&1 || true
echo "image $tag: built and smoke-tested"
