#!/usr/bin/env bash
# Schema Registry for the integration tests: Apicurio Registry, run from a
# fast-jar that tests/services/registry/pom.xml assembles from Maven Central.
# The tests talk to its Confluent-compatible API (/apis/ccompat/v7).
#
#   registry.sh install   build the runnable registry into the cache (once;
#                         later calls do nothing while the recipe is unchanged)
#   registry.sh start     (re)start on a free loopback port, wait until the
#                         API answers, write $HB_SERVICES_DIR/registry.env
#   registry.sh stop
#   registry.sh status    exit 0 if running and answering, 3 if not running
#
# Needs: bash, java (17+), mvn (only for install), curl, python3, setsid and
# flock (util-linux), sha256sum (coreutils). JAVA_HOME, if set, chooses the
# JDK. HB_MAVEN_REPO, if set, is used as Maven's local repository.
# Differences from Confluent's Schema Registry: tests/services/README.md.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=registry
RECIPE_DIR=$HB_SERVICES_SRC/registry
CACHE=$HB_CACHE_DIR/registry
APP=$CACHE/quarkus-app
STAMP=$CACHE/recipe.sha256
WORKDIR=$HB_SERVICES_DIR/registry.work
LOGFILE=$HB_SERVICES_DIR/registry.log
ENVFILE=$HB_SERVICES_DIR/registry.env
API_PATH=/apis/ccompat/v7
INFO_PATH=/apis/registry/v2/system/info
# A cold JVM on a loaded 2-core machine needs ~4 s; leave a wide margin.
START_TIMEOUT_S=120

if [ -n "${JAVA_HOME:-}" ]; then JAVA=$JAVA_HOME/bin/java; else JAVA=java; fi

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || hb_die "$tool not found (needed by $0)"
	done
}

# Everything that decides what install builds; a change rebuilds.
recipe_hash() {
	cat "$RECIPE_DIR/pom.xml" "$RECIPE_DIR/src/main/resources/application.properties" |
		sha256sum | cut -d' ' -f1
}

installed() {
	[ -f "$APP/quarkus-run.jar" ] && [ -f "$STAMP" ] &&
		[ "$(cat "$STAMP")" = "$(recipe_hash)" ]
}

do_install() {
	need "$JAVA" sha256sum flock
	mkdir -p "$CACHE"
	# Two test runs installing at once would clobber each other's build.
	exec 9>"$CACHE/.lock"
	flock 9
	if installed; then
		exec 9>&-
		return 0
	fi
	need mvn
	local build=$CACHE/build log=$CACHE/build.log t0 repo_opt=()
	[ -n "${HB_MAVEN_REPO:-}" ] && repo_opt=("-Dmaven.repo.local=$HB_MAVEN_REPO")
	hb_log "building the registry with Maven (log: $log)"
	t0=$(date +%s)
	rm -rf "$build" "$APP.new"
	# skipExternalRepos turns off the registry parent POM's extra
	# repositories, so everything comes from Maven Central.
	if ! mvn -B -ntp -f "$RECIPE_DIR/pom.xml" "${repo_opt[@]}" \
		-DskipExternalRepos -Dhb.build.dir="$build" package >"$log" 2>&1; then
		grep -E '^\[(ERROR|WARNING)\]' "$log" | head -n 20 >&2 || true
		hb_die "Maven build of the registry failed (log: $log)"
	fi
	[ -f "$build/quarkus-app/quarkus-run.jar" ] || hb_die "build produced no quarkus-run.jar (log: $log)"
	# Replace the installed copy only once the new one is complete, so an
	# interrupted install leaves either the old app or none, never half.
	mv "$build/quarkus-app" "$APP.new"
	rm -rf "$APP" "$build"
	mv "$APP.new" "$APP"
	recipe_hash >"$STAMP"
	hb_log "registry built in $(($(date +%s) - t0)) s"
	exec 9>&-
}

# The pid in the pid file is ours only if it still runs our jar: after a
# reboot or a long pause the number may belong to something else, which
# hb_stop_pidfile must not signal.
forget_foreign_pid() {
	local pidfile=$HB_SERVICES_DIR/$NAME.pid pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile" 2>/dev/null || true)
	if [ -z "$pid" ] || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$APP/quarkus-run.jar"; then
		rm -f "$pidfile" "$ENVFILE"
	fi
}

do_stop() {
	forget_foreign_pid
	hb_stop_pidfile "$NAME"
	rm -rf "$WORKDIR"
}

api_answers() {
	curl -sf -o /dev/null --max-time 2 "$1$API_PATH/subjects"
}

do_start() {
	need curl python3 setsid
	do_stop
	do_install
	local port base version t0
	port=$(hb_free_port)
	base=http://127.0.0.1:$port
	# Fresh working directory: the transaction manager may create its
	# object store in the current directory.
	rm -rf "$WORKDIR"
	mkdir -p "$WORKDIR"
	t0=$(date +%s%N)
	# A clean environment: the registry reads variables such as
	# KAFKA_BOOTSTRAP_SERVERS or KEYCLOAK_URL that a test run may have set
	# for other purposes.
	(
		cd "$WORKDIR"
		hb_spawn "$NAME" "$LOGFILE" env -i PATH="$PATH" HOME="$WORKDIR" LANG=C.UTF-8 \
			"$JAVA" -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
			-Djava.io.tmpdir="$WORKDIR" \
			-Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
			-jar "$APP/quarkus-run.jar"
	)
	hb_wait "$NAME" "$START_TIMEOUT_S" api_answers "$base"
	# Confluent's global default is BACKWARD; Apicurio's is no rule, which
	# its Confluent API reports as NONE for every subject.
	curl -sf -o /dev/null --max-time 5 -X PUT -H 'Content-Type: application/json' \
		-d '{"compatibility":"BACKWARD"}' "$base$API_PATH/config" ||
		hb_die "could not set the global compatibility level (log: $LOGFILE)"
	# Apicurio creates its id sequence on the first registration; two first
	# registrations at once time out on the H2 table lock (HTTP 500). One
	# registration now makes the registry ready for concurrent clients.
	curl -sf -o /dev/null --max-time 30 -X POST -H 'Content-Type: application/json' \
		-d '{"schema":"{\"type\":\"string\"}"}' "$base$API_PATH/subjects/hl7bridge-services-warmup/versions" ||
		hb_die "the warm-up registration failed (log: $LOGFILE)"
	version=$(curl -sf --max-time 5 "$base$INFO_PATH" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])') ||
		hb_die "registry answered but its system info did not (log: $LOGFILE)"
	printf 'SCHEMA_REGISTRY_URL=%s\nHB_REGISTRY_VERSION=%s\n' "$base$API_PATH" "$version" >"$ENVFILE.tmp"
	mv "$ENVFILE.tmp" "$ENVFILE"
	hb_log "registry $version ready in $((($(date +%s%N) - t0) / 1000000)) ms (pid $(cat "$HB_SERVICES_DIR/$NAME.pid"))"
	echo "SCHEMA_REGISTRY_URL=$base$API_PATH"
	echo "HB_REGISTRY_VERSION=$version"
}

do_status() {
	forget_foreign_pid
	if ! hb_alive "$NAME"; then
		echo "registry: not running"
		return 3
	fi
	local url
	url=$(sed -n 's/^SCHEMA_REGISTRY_URL=//p' "$ENVFILE" 2>/dev/null || true)
	if [ -n "$url" ] && curl -sf -o /dev/null --max-time 2 "$url/subjects"; then
		echo "registry: running (pid $(cat "$HB_SERVICES_DIR/$NAME.pid"))"
		cat "$ENVFILE"
		return 0
	fi
	echo "registry: process alive (pid $(cat "$HB_SERVICES_DIR/$NAME.pid")) but API not answering"
	return 1
}

case "${1:-}" in
install) do_install ;;
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
*)
	echo "usage: $0 install|start|stop|status" >&2
	exit 2
	;;
esac
