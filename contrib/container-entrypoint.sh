#!/bin/bash
# Entrypoint of the container image (contrib/Containerfile).
#
#   (no arguments) | run       hl7bridge run -c $HL7BRIDGE_CONF
#   check | topics ...         the same subcommand with -c $HL7BRIDGE_CONF
#   map | send | consume ...   hl7bridge with these arguments
#   healthcheck                exit 0 when GET /healthz answers 200 (HEALTHCHECK)
#   anything else              run as a command (e.g. bash)
#
# The mappings folder ($HL7BRIDGE_MAPPINGS, a volume) is seeded with the
# shipped mappings when it is empty and writable; empty and read-only stops
# with an error. Everything is overridable for tests (contrib/container-test.sh
# runs this script against a build tree):
#   HL7BRIDGE_BIN            /usr/sbin/hl7bridge
#   HL7BRIDGE_CONF           /etc/hl7bridge/hl7bridge.conf
#   HL7BRIDGE_MAPPINGS       /etc/hl7bridge/mappings
#   HL7BRIDGE_MAPPINGS_DIST  /usr/share/hl7bridge/mappings.dist
#   HL7BRIDGE_HTTP_BIND      0.0.0.0:9275 in the image (the health check's port)
set -euo pipefail

bin=${HL7BRIDGE_BIN:-/usr/sbin/hl7bridge}
conf=${HL7BRIDGE_CONF:-/etc/hl7bridge/hl7bridge.conf}
export HL7BRIDGE_MAPPINGS=${HL7BRIDGE_MAPPINGS:-/etc/hl7bridge/mappings}
dist=${HL7BRIDGE_MAPPINGS_DIST:-/usr/share/hl7bridge/mappings.dist}

die() { echo "hl7bridge-entrypoint: $*" >&2; exit 1; }

seed_mappings() {
	local m=$HL7BRIDGE_MAPPINGS
	[ -d "$m" ] || mkdir -p "$m" 2>/dev/null || die "mappings folder $m does not exist and cannot be made"
	if [ -z "$(find "$m" -name '*.map' -print -quit)" ]; then
		[ -d "$dist" ] || die "no *.map in $m, and no shipped mappings in $dist"
		if [ -n "$(ls -A "$m")" ] || ! [ -w "$m" ]; then
			die "no *.map in $m (mount a folder with mapping files, or an empty writable one to get the shipped mappings)"
		fi
		cp -R "$dist"/. "$m"/
		echo "hl7bridge-entrypoint: $m was empty: copied the shipped mappings" >&2
	fi
}

# GET /healthz on the [http] port, with bash's /dev/tcp (no curl in the image).
healthcheck() {
	local bind=${HL7BRIDGE_HTTP_BIND:-127.0.0.1:9275} port host status
	port=${bind##*:}
	host=${bind%:*}
	case $host in '' | 0.0.0.0 | '[::]') host=127.0.0.1 ;; esac
	host=${host#[}
	host=${host%]}
	exec 3<>"/dev/tcp/$host/$port" || exit 1
	printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
	IFS= read -r -t 5 status <&3 || exit 1
	exec 3<&-
	case $status in "HTTP/1."?" 200"*) exit 0 ;; *) echo "healthz: $status" >&2; exit 1 ;; esac
}

has_conf_opt() {
	local a
	for a in "$@"; do case $a in -c | --config | --config=*) return 0 ;; esac; done
	return 1
}

cmd=${1:-run}
[ $# -gt 0 ] && shift
case $cmd in
	run | check)
		seed_mappings
		if has_conf_opt "$@"; then exec "$bin" "$cmd" "$@"; fi
		exec "$bin" "$cmd" -c "$conf" "$@" ;;
	topics)
		sub=${1:-check}
		[ $# -gt 0 ] && shift
		if has_conf_opt "$@"; then exec "$bin" topics "$sub" "$@"; fi
		exec "$bin" topics "$sub" -c "$conf" "$@" ;;
	map | send | consume | version | --version | help | --help)
		exec "$bin" "$cmd" "$@" ;;
	healthcheck)
		healthcheck ;;
	*)
		exec "$cmd" "$@" ;;
esac
