// hl7bridge's events read by the clients of the Event Broker quick start,
// against the real broker and Schema Registry:
//
// 1. The daemon (`hl7bridge run`, JSON values) takes the HL7v2 samples over
//    MLLP. First one instance crashes after producing a transaction and before
//    committing it (HL7BRIDGE_TEST_CRASH_AFTER_PRODUCE), leaving aborted
//    records on the topic once the next instance of the same name fences it;
//    the message is then resent as a sender would.
// 2. A second instance (value.format = avro) takes the samples again.
// 3. The quick start's KafkaJS consumer reads healthcare.prescription.created
//    and parses the JSON values as it does; its Schema Registry consumer
//    decodes the Avro values with registry.decode(). Every field is checked
//    against what `hl7bridge map` makes of the same message, the key against
//    data.patientId, the headers against the event.
// 4. A Python confluent-kafka consumer with isolation.level=read_committed
//    sees exactly the records KafkaJS saw (same eventIds, no more); with
//    read_uncommitted it also sees the aborted ones.
// 5. Against a fake registry that hands back the schema with its fields
//    sorted (what a canonicalising registry stores), the daemon refuses to
//    start rather than publish bytes every reader would misdecode.
//
// Needs the services (HB_KAFKA_BOOTSTRAP, SCHEMA_REGISTRY_URL, or the env
// file of tests/services/services.sh start), the built daemon (HB_BUILDDIR,
// default build/) and the Python client (HB_PYTHON, default the venv that
// tests/integration/py/setup.sh makes). tests/integration/run.sh provides all
// of them; without services the test is skipped.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const hb = require('./hl7bridge');
const qs = require('./quickstart');

const TOPIC = 'healthcare.prescription.created';
const SUBJECT = 'com.covermymeds.healthcare.PrescriptionEvent';
// Samples that make prescription.created events are sent this many times
// (each with its own MSH-10), the others once.
const COPIES = 5;
const SAMPLES = [
  'adt_a01.hl7', 'adt_a04.hl7', 'adt_a08.hl7', 'adt_a28.hl7', 'adt_a31.hl7', 'adt_a40.hl7',
  'omp_o09.hl7', 'orm_o01.hl7', 'orm_o01_lab.hl7', 'ras_o17.hl7', 'rde_o11.hl7', 'rds_o13.hl7',
];
const CREATES = new Set(['omp_o09.hl7', 'rde_o11.hl7']);

const svc = hb.services();
const skip = svc ? false : 'no services (run tests/services/services.sh start)';
// MSH-10 is at most 20 characters in HL7 v2.5. Ours: the run (X and 7
// base-36 characters), J or A for the phase, a sequence number (or C).
const run = 'X' + (Date.now() % 36 ** 5).toString(36).padStart(5, '0') +
  (process.pid % 1296).toString(36).padStart(2, '0');
const jsonPrefix = `${run}J`;
const avroPrefix = `${run}A`;
const crashId = `${run}JC`;
// The daemons' configurations, working directory and log (kept: small).
const work = fs.mkdtempSync(path.join(os.tmpdir(), `hb-interop-${run}-`));

function python() {
  if (process.env.HB_PYTHON) return process.env.HB_PYTHON;
  return path.join(hb.srcDir, 'tests', 'integration', 'py', '.venv', 'bin', 'python');
}

// The messages of one phase: [{ id, sample, text }].
function messages(prefix) {
  const out = [];
  let n = 0;
  for (const s of SAMPLES)
    for (let i = 0; i < (CREATES.has(s) ? COPIES : 1); i++) {
      const id = `${prefix}${++n}`;
      out.push({ id, sample: s, text: hb.sample(`samples/hl7v2/${s}`, id) });
    }
  return out;
}

function config(name, avro) {
  const file = path.join(work, `${name}.conf`);
  hb.writeConfig(file, {
    instance: `hb-interop-${run}-${name}`,
    avro,
    bootstrap: svc.bootstrap,
    registry: svc.registry,
    state: `hb-interop.state.${run}.${name}`,
    deadletter: `hb-interop.dlq.${run}.${name}`,
  });
  return file;
}

// Send each message on one connection and wait for its ACK: AA/CA, as every
// sample either maps or is filtered.
async function sendAll(port, msgs) {
  const c = await hb.Mllp.connect(port);
  try {
    for (const m of msgs) {
      const ack = await c.exchange(m.text);
      assert.ok(ack !== null, `${m.sample} (${m.id}): connection closed without an ACK`);
      assert.ok(['AA', 'CA'].includes(hb.msa1(ack)), `${m.sample} (${m.id}): ACK ${ack.replace(/\r/g, '|')}`);
      assert.ok(ack.includes(m.id), `${m.sample}: MSA-2 does not echo ${m.id}`);
    }
  } finally {
    c.close();
  }
}

// What `hl7bridge map` says reaches TOPIC, by source message id: id -> [event].
function oracle(msgs) {
  const by = new Map();
  for (const e of hb.mapEvents(msgs.map((m) => m.text))) {
    if (e.topic !== TOPIC) continue;
    const id = e.event.lineage.sourceMessageId;
    if (!by.has(id)) by.set(id, []);
    by.get(id).push(e);
  }
  return by;
}

function count(by) {
  let n = 0;
  for (const v of by.values()) n += v.length;
  return n;
}

const state = {};

test.before(async () => {
  if (skip) return;
  const jsonMsgs = messages(jsonPrefix);
  const avroMsgs = messages(avroPrefix);
  const crash = { id: crashId, sample: 'rde_o11.hl7', text: hb.sample('samples/hl7v2/rde_o11.hl7', crashId) };
  state.jsonExpected = oracle([crash, ...jsonMsgs]);
  state.avroExpected = oracle(avroMsgs);
  state.crashEvents = (state.jsonExpected.get(crashId) || []).length;
  const jsonConf = config('json', false);
  const log = path.join(work, 'daemon.log');

  // A crash between produce and commit: no ACK, an open transaction.
  let d = await hb.startDaemon(jsonConf, log, { HL7BRIDGE_TEST_CRASH_AFTER_PRODUCE: '1' });
  {
    const c = await hb.Mllp.connect(d.port);
    const ack = await c.exchange(crash.text);
    c.close();
    assert.equal(ack, null, 'the crashing instance answered');
    state.crashExit = await hb.exited(d.child);
  }

  // Same instance name: fences the dead one (its transaction is aborted).
  // The sender resends what was never acknowledged, then the rest.
  d = await hb.startDaemon(jsonConf, log);
  await sendAll(d.port, [crash, ...jsonMsgs]);
  state.jsonExit = await hb.stopDaemon(d.child);

  d = await hb.startDaemon(config('avro', true), log);
  await sendAll(d.port, avroMsgs);
  state.avroExit = await hb.stopDaemon(d.child);
});

const headerIs = (prefix) => (message) =>
  (message.headers?.['hl7bridge-source-message-id']?.toString() || '').startsWith(prefix);

// The quick start's fields of one event against what `hl7bridge map` made of
// the same message (eventId and timestamp are the daemon's own).
function checkEvent(rec, expected, contentType) {
  const ev = rec.event;
  const where = `${rec.headers['hl7bridge-source-message-id']} at ${rec.partition}/${rec.offset}`;
  assert.equal(ev.error, undefined, `${where}: ${ev.error}`);
  assert.match(ev.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, where);
  assert.equal(ev.eventType, 'prescription.created', where);
  assert.ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(ev.timestamp) &&
    !Number.isNaN(Date.parse(ev.timestamp)), `${where}: timestamp ${ev.timestamp}`);
  assert.equal(ev.lineage && ev.lineage.sourceMessageId, rec.headers['hl7bridge-source-message-id'], where);
  const cands = expected.get(ev.lineage.sourceMessageId) || [];
  const want = cands.find((e) => e.event.data.prescriptionId === ev.data.prescriptionId);
  assert.ok(want, `${where}: no such event expected (prescriptionId ${ev.data.prescriptionId})`);
  // Spread: avsc answers record instances; compare the plain fields.
  const plain = (o) => JSON.parse(JSON.stringify(o));
  assert.deepEqual(plain(ev.data), want.event.data, where);
  assert.deepEqual(plain(ev.metadata), want.event.metadata, where);
  assert.equal(ev.data.medicationReference.display, want.event.data.medicationReference.display);
  assert.equal(rec.key, ev.data.patientId, `${where}: key is not data.patientId`);
  assert.equal(rec.key, want.key, where);
  assert.equal(rec.headers['event-type'], ev.eventType, where);
  assert.equal(rec.headers['content-type'], contentType, where);
  assert.equal(rec.headers.source, ev.metadata.source, where);
}

function checkAll(records, expected, contentType) {
  for (const r of records) checkEvent(r, expected, contentType);
  const ids = records.map((r) => r.event.eventId);
  assert.equal(new Set(ids).size, ids.length, 'an eventId was delivered twice');
  assert.equal(records.length, count(expected),
    `${records.length} records, ${count(expected)} expected`);
  // Every expected event arrived (the count alone would hide a swap).
  for (const [id, evs] of expected)
    for (const e of evs)
      assert.ok(records.some((r) => r.event.lineage.sourceMessageId === id &&
        r.event.data.prescriptionId === e.event.data.prescriptionId), `missing: ${id}`);
}

test('the daemon runs: crash instance aborted, the others exit 0', { skip }, () => {
  assert.equal(state.crashExit, 'SIGABRT');
  assert.equal(state.jsonExit, 0);
  assert.equal(state.avroExit, 0);
  assert.ok(state.crashEvents >= 1, 'the crash message makes no event on the topic');
});

test('KafkaJS consumer of the quick start reads the JSON events', { skip }, async () => {
  const kafka = qs.kafkaClient(svc.bootstrap, 'healthcare-events-client');
  const { records, how } = await qs.consume(kafka, {
    groupId: `healthcare-consumer-group-${run}-json`,
    topic: TOPIC,
    select: headerIs(jsonPrefix),
    decode: qs.decodeJson,
    expect: count(state.jsonExpected),
  });
  state.kjsJson = records;
  assert.equal(how, 'complete', `timed out with ${records.length} of ${count(state.jsonExpected)}`);
  checkAll(records, state.jsonExpected, 'application/json');
  console.log(`# KafkaJS (JSON): ${records.length} events, ` +
    `${new Set(records.map((r) => r.key)).size} keys, ${new Set(records.map((r) => r.partition)).size} partitions`);
});

test('@kafkajs/confluent-schema-registry decodes the Avro events', { skip }, async () => {
  const kafka = qs.kafkaClient(svc.bootstrap, 'schema-registry-example');
  const { registry, decode } = qs.avroDecoder(svc.registry);
  const { records, how } = await qs.consume(kafka, {
    groupId: `schema-registry-group-${run}`,
    topic: TOPIC,
    select: headerIs(avroPrefix),
    decode,
    expect: count(state.avroExpected),
  });
  state.kjsAvro = records;
  assert.equal(how, 'complete', `timed out with ${records.length} of ${count(state.avroExpected)}`);
  checkAll(records, state.avroExpected, 'application/avro');
  // Confluent wire format with the id of the record-name subject.
  const id = await registry.getLatestSchemaId(SUBJECT);
  for (const r of records) {
    assert.equal(r.value[0], 0, 'magic byte');
    assert.equal(r.value.readInt32BE(1), id, `schema id is not the latest of ${SUBJECT}`);
  }
  console.log(`# KafkaJS (Avro, schema id ${id}): ${records.length} events`);
});

function pythonConsume(isolation) {
  const py = python();
  assert.ok(fs.existsSync(py), `${py} missing: run tests/integration/py/setup.sh`);
  const r = spawnSync(py, [path.join(hb.srcDir, 'tests', 'integration', 'py', 'consume.py'),
    '--bootstrap', svc.bootstrap, '--registry', svc.registry, '--topic', TOPIC,
    '--isolation', isolation, '--select', jsonPrefix, '--select', avroPrefix],
  { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `consume.py ${isolation}: ${r.stderr || r.error}`);
  const out = JSON.parse(r.stdout);
  for (const rec of out.records)
    assert.equal(rec.error, undefined, `${rec.sourceMessageId}: ${rec.error}`);
  return out.records;
}

const byEventId = (ids) => [...ids].sort();

test('Python read_committed consumer sees exactly what KafkaJS saw', { skip }, () => {
  assert.ok(state.kjsJson && state.kjsAvro, 'the KafkaJS tests did not run');
  const recs = pythonConsume('read_committed');
  const kjs = [...state.kjsJson, ...state.kjsAvro].map((r) => r.event.eventId);
  const py = recs.map((r) => r.eventId);
  assert.equal(new Set(py).size, py.length, 'Python saw an eventId twice');
  assert.deepEqual(byEventId(py), byEventId(kjs));
  // Same records, not only the same ids: partition/offset agree too.
  const pos = (p, o) => `${p}/${o}`;
  assert.deepEqual(recs.map((r) => pos(r.partition, r.offset)).sort(),
    [...state.kjsJson, ...state.kjsAvro].map((r) => pos(r.partition, r.offset)).sort());
  console.log(`# Python read_committed: ${py.length} events ` +
    `(${recs.filter((r) => r.contentType === 'application/avro').length} Avro), same eventIds as KafkaJS`);
});

test('read_uncommitted also sees the aborted transaction; read_committed does not', { skip }, () => {
  const committed = pythonConsume('read_committed');
  const all = pythonConsume('read_uncommitted');
  const extra = all.length - committed.length;
  assert.equal(extra, state.crashEvents,
    `read_uncommitted saw ${all.length}, read_committed ${committed.length}`);
  // The extra records are the crashed instance's: the same message, so the
  // same deterministic eventIds as the committed resend.
  const seen = new Set(committed.map((r) => `${r.partition}/${r.offset}`));
  const aborted = all.filter((r) => !seen.has(`${r.partition}/${r.offset}`));
  assert.equal(aborted.length, state.crashEvents);
  for (const r of aborted) assert.equal(r.sourceMessageId, crashId);
  assert.deepEqual(byEventId(new Set(all.map((r) => r.eventId))),
    byEventId(committed.map((r) => r.eventId)));
  console.log(`# Python read_uncommitted: ${all.length} records (${aborted.length} aborted, ` +
    `MSH-10 ${crashId}); read_committed: ${committed.length}`);
});

// A registry that answers with a rewritten schema, fields sorted by name (as
// Apicurio's canonical-hash mode stores them): readers would decode the
// daemon's bytes in the wrong order, so the daemon must refuse to start.
test('the daemon refuses a registry that reorders a schema\'s fields', { skip }, async () => {
  const stored = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const answer = (status, obj) => {
        res.writeHead(status, { 'Content-Type': 'application/vnd.schemaregistry.v1+json' });
        res.end(JSON.stringify(obj));
      };
      const ids = /\/schemas\/ids\/(\d+)$/.exec(req.url);
      if (req.method === 'POST' && /\/subjects\/[^/]+\/versions$/.test(req.url)) {
        const schema = JSON.parse(JSON.parse(body).schema);
        schema.fields.sort((a, b) => a.name.localeCompare(b.name));
        stored.push(JSON.stringify(schema));
        answer(200, { id: stored.length });
      } else if (req.method === 'GET' && ids && stored[ids[1] - 1]) {
        answer(200, { schema: stored[ids[1] - 1] });
      } else {
        answer(404, { error_code: 40401, message: 'not found' });
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const file = path.join(work, 'reorder.conf');
    hb.writeConfig(file, {
      instance: `hb-interop-${run}-reorder`,
      avro: true,
      bootstrap: svc.bootstrap,
      registry: `http://127.0.0.1:${server.address().port}`,
      state: `hb-interop.state.${run}.reorder`,
      deadletter: `hb-interop.dlq.${run}.reorder`,
    });
    const log = path.join(work, 'reorder.log');
    const started = await hb.startDaemon(file, log).catch((err) => err);
    if (!(started instanceof Error)) {
      await hb.stopDaemon(started.child);
      assert.fail('the daemon started with a registry that reorders fields');
    }
    assert.match(started.message, /exited before it was ready \(1\)/);
    assert.ok(stored.length >= 1, 'the daemon did not register its schemas');
    assert.match(fs.readFileSync(log, 'utf8'), /consumers would misread the events/);
  } finally {
    server.close();
  }
});
