"""Read a topic to its end with confluent-kafka and print what was seen.

    consume.py --bootstrap HOST:PORT --topic T --isolation read_committed \
        --select PREFIX [--select PREFIX ...] [--registry URL]

A fresh consumer group reads every partition from the beginning until each
has reached its end (for read_committed that is the last stable offset). Of
the records whose hl7bridge-source-message-id header starts with one of the
prefixes, the value is decoded by its content-type header: JSON with the
json module, Avro (Confluent wire format) with confluent-kafka's
AvroDeserializer and the Schema Registry at --registry. Prints one JSON
document on stdout:

    {"records": [{"partition", "offset", "key", "sourceMessageId",
                  "contentType", "eventId", "eventType", "error"}...],
     "partitions": N, "scanned": N}
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.serialization import MessageField, SerializationContext


def headers_of(msg):
    out = {}
    for k, v in msg.headers() or []:
        out[k] = v.decode("utf-8", "replace") if v is not None else None
    return out


def make_avro_decoder(url):
    # Imported here so that a JSON-only run does not need the avro extra.
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    deser = AvroDeserializer(SchemaRegistryClient({"url": url}))

    def decode(msg):
        return deser(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))

    return decode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--isolation", choices=["read_committed", "read_uncommitted"], required=True)
    ap.add_argument("--select", action="append", required=True)
    ap.add_argument("--registry")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()

    avro = make_avro_decoder(a.registry) if a.registry else None
    consumer = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": "hb-interop-py-%s" % uuid.uuid4(),
        "isolation.level": a.isolation,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    records, scanned = [], 0
    assigned, at_eof = set(), set()

    def on_assign(c, parts):
        assigned.update(p.partition for p in parts)

    consumer.subscribe([a.topic], on_assign=on_assign)
    deadline = time.monotonic() + a.timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(msg.partition())
                    if assigned and at_eof >= assigned:
                        break
                    continue
                raise KafkaException(msg.error())
            scanned += 1
            at_eof.discard(msg.partition())
            h = headers_of(msg)
            sid = h.get("hl7bridge-source-message-id") or ""
            if not any(sid.startswith(p) for p in a.select):
                continue
            rec = {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": msg.key().decode() if msg.key() is not None else None,
                "sourceMessageId": sid,
                "contentType": h.get("content-type"),
            }
            try:
                if rec["contentType"] == "application/avro":
                    if avro is None:
                        raise ValueError("Avro record but no --registry")
                    event = avro(msg)
                else:
                    event = json.loads(msg.value())
                rec["eventId"] = event["eventId"]
                rec["eventType"] = event["eventType"]
            except Exception as e:  # reported, and the test fails on it
                rec["error"] = "%s: %s" % (type(e).__name__, e)
            records.append(rec)
        else:
            print("timed out before every partition reached its end", file=sys.stderr)
            return 1
    finally:
        consumer.close()
    json.dump({"records": records, "partitions": len(assigned), "scanned": scanned}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
