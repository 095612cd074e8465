# Shared helpers for the test-service scripts (sourced, not run).
#
# State lives in $HB_SERVICES_DIR (default: tests/services/.run in the source
# tree): one <name>.pid file per running service, its log, and <name>.env
# with the variables the tests read. Downloads are cached in
# $HB_CACHE_DIR (default: tests/services/.cache) so a second start is offline.

HB_SERVICES_SRC=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
: "${HB_SERVICES_DIR:=$HB_SERVICES_SRC/.run}"
: "${HB_CACHE_DIR:=$HB_SERVICES_SRC/.cache}"
mkdir -p "$HB_SERVICES_DIR" "$HB_CACHE_DIR"

hb_log() { printf '[services] %s\n' "$*" >&2; }
hb_die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (the kernel picks it; a race with another
# process taking it before we bind is possible but harmless: startup fails
# loudly and the next run picks another).
hb_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# hb_stop_pidfile NAME: stop the process recorded in NAME.pid (TERM, then
# KILL after a grace period) together with its process group, and remove
# the pid file. Used both for clean stops and for stale processes left by an
# interrupted run.
hb_stop_pidfile() {
	local name=$1 pidfile="$HB_SERVICES_DIR/$1.pid" pid i
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile" 2>/dev/null)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		hb_log "stopping $name (pid $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			hb_log "$name did not stop in 20 s; killing it"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
		fi
	fi
	rm -f "$pidfile" "$HB_SERVICES_DIR/$name.env"
}

# hb_spawn NAME LOGFILE CMD...: start CMD in its own process group in the
# background, record its pid.
hb_spawn() {
	local name=$1 logfile=$2
	shift 2
	setsid "$@" >"$logfile" 2>&1 </dev/null &
	echo $! >"$HB_SERVICES_DIR/$name.pid"
}

hb_alive() {
	local pidfile="$HB_SERVICES_DIR/$1.pid"
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# hb_wait NAME SECONDS CMD...: poll CMD until it succeeds; fail if the
# service died or the time ran out, showing the end of its log.
hb_wait() {
	local name=$1 secs=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	while [ "$SECONDS" -lt "$deadline" ]; do
		if "$@" >/dev/null 2>&1; then return 0; fi
		if ! hb_alive "$name"; then
			tail -n 40 "$HB_SERVICES_DIR/$name.log" >&2
			hb_die "$name exited during start-up (log: $HB_SERVICES_DIR/$name.log)"
		fi
		sleep 0.25
	done
	tail -n 40 "$HB_SERVICES_DIR/$name.log" >&2
	hb_die "$name not ready after ${secs}s (log: $HB_SERVICES_DIR/$name.log)"
}
