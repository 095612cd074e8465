// Replayed events read by the clients of the Event Broker quick start, like
// any other: the daemon (JSON values, and a second instance with Avro values
// through the Schema Registry) rejects RDE^O11 messages without a patient id
// (dead letters); the mapping gets a fallback; `hl7bridge replay --from
// deadletter` runs twice; the quick start's KafkaJS consumer (JSON) and its
// Schema Registry consumer (Avro) then read each redriven message's
// prescription.created event exactly once, with the key, the headers and
// the envelope the quick start expects.
//
// Needs the services and the build as interop.test.js does
// (tests/integration/run.sh provides them); without services it is skipped.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const hb = require('./hl7bridge');
const qs = require('./quickstart');

const TOPIC = 'healthcare.prescription.created';
const N = 3;
const svc = hb.services();
const skip = svc ? false : 'no services (run tests/services/services.sh start)';
// MSH-10 (at most 20 characters): R, the run, J or A, a number.
const run = 'R' + (Date.now() % 36 ** 5).toString(36).padStart(5, '0') +
  (process.pid % 1296).toString(36).padStart(2, '0');
const work = fs.mkdtempSync(path.join(os.tmpdir(), `hb-replay-${run}-`));
const maps = path.join(work, 'mappings');
const rde = path.join(maps, 'hl7v2', 'rde_o11.map');

function config(name, avro) {
  const file = path.join(work, `${name}.conf`);
  hb.writeConfig(file, {
    instance: `hb-replay-${run}-${name}`,
    avro,
    bootstrap: svc.bootstrap,
    registry: svc.registry,
    state: `hb-replay.state.${run}.${name}`,
    deadletter: `hb-replay.dlq.${run}.${name}`,
  });
  // this test's own copy of the mappings, so the fix stays here
  // and any free port for [http] (9275 may be another daemon's)
  const text = fs.readFileSync(file, 'utf8')
    .replace(/^mappings = .*$/m, `mappings = ${maps}`) + '[http]\nbind = 127.0.0.1:0\n';
  fs.writeFileSync(file, text);
  return file;
}

// An RDE^O11 whose PID-3 (the patient identifiers) is empty: the shipped
// mapping rejects it (data.patientId is required).
function withoutPatientId(id) {
  return hb.sample('samples/hl7v2/rde_o11.hl7', id).replace(/PID\|1\|\|[^|]*\|/, 'PID|1|||');
}

async function sendRejected(conf, prefix) {
  const d = await hb.startDaemon(conf, path.join(work, 'daemon.log'));
  const c = await hb.Mllp.connect(d.port);
  try {
    for (let i = 0; i < N; i++) {
      const ack = await c.exchange(withoutPatientId(`${prefix}${i}`));
      assert.ok(ack !== null, 'no ACK');
      assert.ok(['AE', 'CE'].includes(hb.msa1(ack)), `ACK ${ack.replace(/\r/g, '|')}`);
    }
  } finally {
    c.close();
  }
  assert.equal(await hb.stopDaemon(d.child), 0);
}

function replay(conf) {
  const r = spawnSync(hb.bin, ['replay', '-c', conf, '--from', 'deadletter', '--progress', '0'],
    { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `hl7bridge replay: ${r.stderr}`);
  return r.stderr;
}

const state = {};

test.before(async () => {
  if (skip) return;
  fs.cpSync(path.join(hb.srcDir, 'mappings'), maps, { recursive: true });
  state.json = config('json', false);
  state.avro = config('avro', true);
  await sendRejected(state.json, `${run}J`);
  await sendRejected(state.avro, `${run}A`);
  // the fix: a fallback patient id
  fs.writeFileSync(rde, fs.readFileSync(rde, 'utf8')
    .replace(/\?\? PID-3\.1(\s+)required/, '?? PID-3.1 ?? "UNKNOWN"$1required'));
  state.out = [replay(state.json), replay(state.json), replay(state.avro), replay(state.avro)];
});

test('replay publishes each dead letter once, and nothing on a rerun', { skip }, () => {
  assert.match(state.out[0], new RegExp(`published ${N} inputs`));
  assert.match(state.out[1], /published 0 inputs/);
  assert.match(state.out[2], new RegExp(`published ${N} inputs`));
  assert.match(state.out[3], /published 0 inputs/);
});

const headerIs = (prefix) => (message) =>
  (message.headers?.['hl7bridge-source-message-id']?.toString() || '').startsWith(prefix);

function check(records, prefix, contentType) {
  assert.equal(records.length, N, `${records.length} events, ${N} expected`);
  const ids = new Set();
  for (const rec of records) {
    const ev = rec.event;
    const where = `${rec.headers['hl7bridge-source-message-id']}`;
    assert.equal(ev.error, undefined, `${where}: ${ev.error}`);
    assert.match(ev.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, where);
    assert.equal(ev.eventType, 'prescription.created', where);
    assert.equal(ev.data.patientId, 'UNKNOWN', where);
    assert.equal(ev.data.medicationReference.code, '1000006', where);
    assert.equal(rec.key, ev.data.patientId, where);
    assert.equal(rec.headers['event-type'], ev.eventType, where);
    assert.equal(rec.headers['content-type'], contentType, where);
    assert.equal(rec.headers.source, ev.metadata.source, where);
    assert.ok(where.startsWith(prefix), where);
    ids.add(where);
  }
  assert.equal(ids.size, N, 'a message was published twice');
}

test('KafkaJS consumer of the quick start reads the replayed JSON events', { skip }, async () => {
  const kafka = qs.kafkaClient(svc.bootstrap, 'healthcare-events-client');
  const { records, how } = await qs.consume(kafka, {
    groupId: `healthcare-consumer-group-${run}-replay-json`,
    topic: TOPIC,
    select: headerIs(`${run}J`),
    decode: qs.decodeJson,
    expect: N,
  });
  assert.equal(how, 'complete', `timed out with ${records.length} of ${N}`);
  check(records, `${run}J`, 'application/json');
});

test('@kafkajs/confluent-schema-registry decodes the replayed Avro events', { skip }, async () => {
  const kafka = qs.kafkaClient(svc.bootstrap, 'schema-registry-example');
  const { decode } = qs.avroDecoder(svc.registry);
  const { records, how } = await qs.consume(kafka, {
    groupId: `schema-registry-group-${run}-replay`,
    topic: TOPIC,
    select: headerIs(`${run}A`),
    decode,
    expect: N,
  });
  assert.equal(how, 'complete', `timed out with ${records.length} of ${N}`);
  check(records, `${run}A`, 'application/avro');
});
