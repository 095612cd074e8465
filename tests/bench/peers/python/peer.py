"""Peer for tests/bench/peers: an asyncio MLLP server that parses each HL7v2
ADT message with python-hl7, maps it to a patient event and publishes it
with confluent-kafka (idempotent producer, acks=all, linger.ms=5), answering
AA only from the delivery report, i.e. after the broker acknowledged it.

    python peer.py PORT TOPIC BOOTSTRAP     prints "ready PORT" when listening
"""
import asyncio
import datetime
import json
import signal
import sys
import threading
import uuid

import hl7
from confluent_kafka import Producer

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def to_event(text):
    msg = hl7.parse(text)

    def f(seg, field, comp=1):
        try:
            return msg.extract_field(seg, 1, field, 1, comp, 1) or None
        except (IndexError, KeyError):
            return None

    ident = f("PID", 3)
    trigger = f("MSH", 9, 2)
    ev = {
        "eventId": str(uuid.uuid4()),
        "eventType": "patient.created" if trigger in ("A01", "A04") else "patient.updated",
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "data": {
            "patientId": ident,
            "identifiers": [{"value": ident, "system": f("PID", 3, 4), "type": f("PID", 3, 5)}],
            "name": {"family": f("PID", 5), "given": [g for g in (f("PID", 5, 2), f("PID", 5, 3)) if g]},
            "birthDate": f("PID", 7),
            "gender": f("PID", 8),
            "address": [{"line": [f("PID", 11)], "city": f("PID", 11, 3), "state": f("PID", 11, 4),
                         "postalCode": f("PID", 11, 5), "country": f("PID", 11, 6)}],
            "telecom": [{"system": "phone", "value": f("PID", 13)}],
        },
        "metadata": {"source": "peer-python", "version": "1.0"},
    }
    return ident, f("MSH", 10), json.dumps(ev)


def ack(msh10, code):
    ts = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    body = f"MSH|^~\\&|PEER|PEER|||{ts}||ACK|{uuid.uuid4()}|P|2.5.1\rMSA|{code}|{msh10}\r"
    return VT + body.encode("latin-1") + FS + CR


async def main():
    port, topic, bootstrap = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    loop = asyncio.get_running_loop()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5, "client.id": "peer-python"})
    stop = threading.Event()

    def poller():
        while not stop.is_set():
            producer.poll(0.05)

    threading.Thread(target=poller, daemon=True).start()

    async def serve(reader, writer):
        buf = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buf += chunk
            while True:
                s = buf.find(VT)
                e = buf.find(FS, s + 1) if s >= 0 else -1
                if s < 0 or e < 0 or e + 1 >= len(buf):
                    buf = buf[s:] if s >= 0 else b""
                    break
                text = buf[s + 1:e].decode("latin-1")
                buf = buf[e + 2:] if buf[e + 1:e + 2] == CR else buf[e + 1:]
                try:
                    key, msh10, value = to_event(text)
                except Exception:
                    writer.write(ack("", "AR"))
                    continue

                def done(err, _msg, w=writer, m=msh10):
                    loop.call_soon_threadsafe(
                        (lambda: w.write(ack(m, "AA"))) if err is None else w.close)

                while True:
                    try:
                        producer.produce(topic, key=key, value=value, on_delivery=done)
                        break
                    except BufferError:
                        await asyncio.sleep(0.001)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    ended = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, ended.set)
    await ended.wait()
    server.close()
    producer.flush(10)
    stop.set()


asyncio.run(main())
