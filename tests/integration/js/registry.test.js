// A stock Confluent-API client against the test Schema Registry: register,
// fetch by id, Confluent wire-format encode/decode, compatibility refusal.
// The registry URL comes from SCHEMA_REGISTRY_URL or from the env file that
// tests/services/registry.sh start writes; without either the tests skip.
//
//   tests/services/registry.sh start
//   cd tests/integration/js && npm install && npm test
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  SchemaRegistry,
  SchemaType,
  COMPATIBILITY,
} = require('@kafkajs/confluent-schema-registry');

function registryUrl() {
  if (process.env.SCHEMA_REGISTRY_URL) return process.env.SCHEMA_REGISTRY_URL;
  const dir = process.env.HB_SERVICES_DIR ||
    path.join(__dirname, '..', '..', 'services', '.run');
  try {
    const text = fs.readFileSync(path.join(dir, 'registry.env'), 'utf8');
    const m = /^SCHEMA_REGISTRY_URL=(.*)$/m.exec(text);
    return m ? m[1].trim() : null;
  } catch {
    return null;
  }
}

const url = registryUrl();
const skip = url ? false : 'no registry (run tests/services/registry.sh start)';
// The registry keeps its state for its lifetime; unique subjects keep
// repeated runs against one instance independent.
const run = `${process.pid}-${Date.now()}`;

const v1 = {
  type: 'record',
  name: 'AdtEvent',
  namespace: 'org.hl7bridge.test',
  fields: [
    { name: 'event', type: 'string' },
    { name: 'seq', type: 'long' },
  ],
};
// Adding a field without a default cannot read old data: not BACKWARD.
const v2Incompatible = {
  ...v1,
  fields: [...v1.fields, { name: 'ward', type: 'string' }],
};
const v2Compatible = {
  ...v1,
  fields: [...v1.fields, { name: 'ward', type: 'string', default: '' }],
};

// The client takes the API root as host; mappersmith appends the resource
// paths to it, so the /apis/ccompat/v7 prefix is kept.
const registry = url ? new SchemaRegistry({ host: url }) : null;

test('register and fetch an Avro schema by id', { skip }, async () => {
  const subject = `hb-js-${run}-a-value`;
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
  assert.ok(Number.isInteger(id) && id > 0, `id ${id}`);

  // Same schema again: same id, no new version.
  const again = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
  assert.equal(again.id, id);

  assert.equal(await registry.getLatestSchemaId(subject), id);

  // A fresh client has no cache, so this really asks GET /schemas/ids/{id}.
  // getSchema answers with a parsed avsc type (full name, field objects).
  const fetched = await new SchemaRegistry({ host: url }).getSchema(id);
  assert.equal(fetched.name, 'org.hl7bridge.test.AdtEvent');
  assert.deepEqual(fetched.fields.map((f) => f.name), ['event', 'seq']);
});

test('Confluent wire format round trip', { skip }, async () => {
  const subject = `hb-js-${run}-b-value`;
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
  const payload = { event: 'A01', seq: 7 };
  const buf = await registry.encode(id, payload);
  assert.equal(buf[0], 0, 'magic byte');
  assert.equal(buf.readInt32BE(1), id, 'schema id');
  const decoded = await new SchemaRegistry({ host: url }).decode(buf);
  // decode answers with an avsc record instance; compare its fields.
  assert.deepEqual({ ...decoded }, payload);
});

// Avro binary has no field names: a reader that fetches the writer schema by
// id must get the fields in the order they were registered, or it decodes
// garbage. (The registry's canonical-hash mode sorted them by name.)
test('field order survives registration, and decoding uses it', { skip }, async () => {
  const subject = `hb-js-${run}-d-value`;
  const unsorted = {
    type: 'record',
    name: 'OrderProbe',
    namespace: 'org.hl7bridge.test',
    fields: [
      { name: 'zeta', type: 'string' },
      { name: 'alpha', type: 'long' },
      { name: 'mid', type: ['null', 'string'], default: null },
    ],
  };
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(unsorted) }, { subject });
  const fetched = await new SchemaRegistry({ host: url }).getSchema(id);
  assert.deepEqual(fetched.fields.map((f) => f.name), ['zeta', 'alpha', 'mid']);
  const payload = { zeta: 'z', alpha: 42, mid: 'm' };
  const decoded = await new SchemaRegistry({ host: url }).decode(await registry.encode(id, payload));
  assert.deepEqual({ ...decoded }, payload);
});

test('BACKWARD compatibility refuses an incompatible change', { skip }, async () => {
  const subject = `hb-js-${run}-c-value`;
  // First registration of a new subject: the client sets BACKWARD on it.
  await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(v1) },
    { subject, compatibility: COMPATIBILITY.BACKWARD });

  await assert.rejects(
    registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(v2Incompatible) }, { subject }),
    (err) => err.status === 409);

  const ok = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(v2Compatible) }, { subject });
  assert.equal(await registry.getLatestSchemaId(subject), ok.id);
});
