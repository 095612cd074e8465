#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft: broker + controller in one JVM) for tests.
#
#   tests/services/kafka.sh install   resolve the broker's jars from Maven Central into the cache
#   tests/services/kafka.sh start     (re)start on free loopback ports; prints the bootstrap address
#   tests/services/kafka.sh stop
#   tests/services/kafka.sh status
#   tests/services/kafka.sh pause     stop the broker, keeping its ports and data (outage tests)
#   tests/services/kafka.sh resume    start it again after pause
#
# start writes $HB_SERVICES_DIR/kafka.env with HB_KAFKA_BOOTSTRAP and
# HB_KAFKA_VERSION. Storage is formatted anew on every start: tests never
# depend on an earlier run's data. A stale broker from an interrupted run is
# found through its pid file and stopped first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HB_SERVICES_SRC/kafka/pom.xml")
LIBDIR="$HB_CACHE_DIR/kafka-$KAFKA_VERSION"
RUNDIR="$HB_SERVICES_DIR/kafka"
: "${JAVA:=java}"

install() {
	[ -f "$LIBDIR/.complete" ] && return 0
	command -v mvn >/dev/null || hb_die "mvn not found (apt-get install maven)"
	hb_log "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $LIBDIR"
	rm -rf "$LIBDIR"
	mvn -q -B -f "$HB_SERVICES_SRC/kafka/pom.xml" dependency:copy-dependencies \
		-DoutputDirectory="$LIBDIR" -DincludeScope=runtime >&2
	touch "$LIBDIR/.complete"
}

jrun() {
	"$JAVA" -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$HB_SERVICES_SRC/kafka/log4j2.yaml" \
		-cp "$LIBDIR/*" "$@"
}

# Ask the broker for its metadata with the Java admin client shipped in the
# jars (no librdkafka involved, so a client bug cannot hide a broker problem).
probe() {
	jrun org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$1" 2>/dev/null | grep -q "ApiVersions"
}

# Start the broker on the prepared $RUNDIR (storage formatted) and wait
# until it answers on 127.0.0.1:$1.
launch() {
	local t0=$SECONDS
	hb_spawn kafka "$HB_SERVICES_DIR/kafka.log" \
		"$JAVA" -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$HB_SERVICES_SRC/kafka/log4j2.yaml" \
		-cp "$LIBDIR/*" kafka.Kafka "$RUNDIR/server.properties"
	hb_wait kafka 90 grep -q "Kafka Server started" "$HB_SERVICES_DIR/kafka.log"
	hb_wait kafka 60 probe "127.0.0.1:$1"
	hb_log "broker answering after $((SECONDS - t0))s"
}

# Outage tests: `pause` stops the broker but keeps its ports, data and
# kafka.env; `resume` starts it again on the same ports with the same data.
pause() {
	local env="$HB_SERVICES_DIR/kafka.env"
	[ -f "$env" ] || hb_die "kafka is not running"
	cp "$env" "$env.keep"
	hb_stop_pidfile kafka
	mv "$env.keep" "$env"
}

resume() {
	local port
	port=$(sed -n 's/^HB_KAFKA_BOOTSTRAP=127.0.0.1://p' "$HB_SERVICES_DIR/kafka.env")
	[ -n "$port" ] || hb_die "kafka was not paused"
	hb_alive kafka && hb_die "kafka is running"
	launch "$port"
}

start() {
	install
	hb_stop_pidfile kafka
	rm -rf "$RUNDIR"
	mkdir -p "$RUNDIR/data"
	local port cport cluster
	port=$(hb_free_port)
	cport=$(hb_free_port)
	while [ "$cport" = "$port" ]; do cport=$(hb_free_port); done
	cat >"$RUNDIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$RUNDIR/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=24
log.segment.bytes=67108864
PROPS
	cluster=$(jrun kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
	jrun kafka.tools.StorageTool format -t "$cluster" -c "$RUNDIR/server.properties" >"$RUNDIR/format.log" 2>&1 ||
		{ cat "$RUNDIR/format.log" >&2; hb_die "formatting Kafka storage failed"; }
	launch "$port"
	local reported
	reported=$(sed -n 's/.*Kafka version: \([^ ]*\).*/\1/p' "$HB_SERVICES_DIR/kafka.log" | head -n 1)
	cat >"$HB_SERVICES_DIR/kafka.env" <<ENV
HB_KAFKA_BOOTSTRAP=127.0.0.1:$port
HB_KAFKA_VERSION=${reported:-unknown}
ENV
	hb_log "Apache Kafka ${reported:-?} (KRaft) ready at 127.0.0.1:$port"
	echo "127.0.0.1:$port"
}

case "${1:-}" in
install) install ;;
start) start ;;
pause) pause ;;
resume) resume ;;
stop) hb_stop_pidfile kafka ;;
status)
	if hb_alive kafka; then cat "$HB_SERVICES_DIR/kafka.env"; else echo "kafka: not running"; exit 1; fi ;;
*) echo "usage: $0 install|start|stop|status|pause|resume" >&2; exit 2 ;;
esac
