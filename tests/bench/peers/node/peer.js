// Peer for tests/bench/peers: an MLLP server on node:net that maps each
// HL7v2 ADT message to a patient event and publishes it with KafkaJS
// (idempotent producer, acks = all), answering AA only after the broker
// acknowledged the record. Records that arrive within 5 ms are sent in one
// request (the batching a KafkaJS service would add for throughput).
//
//   node peer.js PORT TOPIC BOOTSTRAP      prints "ready PORT" when listening
'use strict';
const net = require('net');
const crypto = require('crypto');
const { Kafka, logLevel } = require('kafkajs');

const [port, topic, bootstrap] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'peer-node', brokers: bootstrap.split(','), logLevel: logLevel.ERROR });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });

const VT = 0x0b, FS = 0x1c, CR = 0x0d;

function fields(seg) { return seg.split('|'); }
function comp(f, i) { return (f || '').split('^')[i] || null; }

function toEvent(text) {
  const segs = text.split('\r').filter(Boolean);
  const msh = fields(segs[0]);
  const pid = fields(segs.find(s => s.startsWith('PID|')) || 'PID');
  const id = comp(pid[3], 0);
  const trigger = comp(msh[8], 1);
  return {
    key: id,
    msh10: msh[9],
    value: JSON.stringify({
      eventId: crypto.randomUUID(),
      eventType: trigger === 'A01' || trigger === 'A04' ? 'patient.created' : 'patient.updated',
      timestamp: new Date().toISOString(),
      data: {
        patientId: id,
        identifiers: [{ value: id, system: comp(pid[3], 3), type: comp(pid[3], 4) }],
        name: { family: comp(pid[5], 0), given: [comp(pid[5], 1), comp(pid[5], 2)].filter(Boolean) },
        birthDate: pid[7] || null,
        gender: pid[8] || null,
        address: pid[11] ? [{ line: [comp(pid[11], 0)], city: comp(pid[11], 2), state: comp(pid[11], 3), postalCode: comp(pid[11], 4), country: comp(pid[11], 5) }] : [],
        telecom: pid[13] ? [{ system: 'phone', value: comp(pid[13], 0) }] : [],
      },
      metadata: { source: 'peer-node', version: '1.0' },
    }),
  };
}

function ack(msh10, code) {
  const ts = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return Buffer.from(`\x0bMSH|^~\\&|PEER|PEER|||${ts}||ACK|${crypto.randomUUID()}|P|2.5.1\rMSA|${code}|${msh10}\r\x1c\r`, 'latin1');
}

// Pending records: flushed in one send after 5 ms (or at 500 records).
let pending = [];
let timer = null;
function flush() {
  timer = null;
  const batch = pending;
  pending = [];
  producer.send({ topic, acks: -1, messages: batch.map(p => ({ key: p.ev.key, value: p.ev.value })) })
    .then(() => batch.forEach(p => p.sock.writable && p.sock.write(ack(p.ev.msh10, 'AA'))))
    .catch(() => batch.forEach(p => p.sock.destroy()));
}
function enqueue(sock, ev) {
  pending.push({ sock, ev });
  if (pending.length >= 500) { clearTimeout(timer); flush(); } else if (!timer) timer = setTimeout(flush, 5);
}

async function main() {
  await producer.connect();
  const server = net.createServer(sock => {
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    sock.on('data', chunk => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const start = buf.indexOf(VT);
        if (start < 0) { buf = Buffer.alloc(0); return; }
        const end = buf.indexOf(FS, start);
        if (end < 0 || end + 1 >= buf.length) { buf = buf.subarray(start); return; }
        const text = buf.toString('latin1', start + 1, end);
        buf = buf.subarray(end + (buf[end + 1] === CR ? 2 : 1));
        let ev;
        try { ev = toEvent(text); } catch (e) { sock.write(ack('', 'AR')); continue; }
        enqueue(sock, ev);
      }
    });
    sock.on('error', () => {});
  });
  server.listen(Number(port), '127.0.0.1', () => console.log(`ready ${server.address().port}`));
  process.on('SIGTERM', async () => { server.close(); await producer.disconnect(); process.exit(0); });
}
main().catch(e => { console.error(e.message); process.exit(1); });
