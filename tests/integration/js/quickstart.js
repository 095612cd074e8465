// The Event Broker quick start's consumers, as its examples write them
// (kafka-client.ts, consume-prescription-events.ts and the consumer half of
// schema-registry-example.ts), turned from "log each event" into "collect
// each event" so a test can check what they saw. What differs from the
// examples, and why:
// - fromBeginning is true for the JSON consumer too: the events are written
//   before the consumer starts, and a fresh group with fromBeginning false
//   would start at the end and see nothing.
// - The topic is shared with other tests, so `select` picks this run's
//   records by a header before they are parsed.
// - Instead of running until Ctrl+C, consume() stops once `expect` records
//   were selected and nothing more arrived for graceMs (a duplicate would
//   arrive in that time), or at timeoutMs.
'use strict';

const { Kafka, logLevel } = require('kafkajs');
const { SchemaRegistry } = require('@kafkajs/confluent-schema-registry');

// kafka-client.ts, without SASL (the test broker is plaintext).
function kafkaClient(brokers, clientId) {
  return new Kafka({ clientId, brokers: brokers.split(','), logLevel: logLevel.WARN });
}

function headerStrings(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers || {}))
    out[k] = Buffer.isBuffer(v) ? v.toString() : String(v);
  return out;
}

// Subscribe a new group to `topic` and collect the selected records:
// [{ partition, offset, key, headers, value (raw Buffer), event }] where
// event is what decode(message) gave, or { error } when it threw.
async function consume(kafka, { groupId, topic, select, decode, expect, timeoutMs = 60000, graceMs = 3000 }) {
  const consumer = kafka.consumer({ groupId });
  const records = [];
  let settle;
  const settled = new Promise((resolve) => { settle = resolve; });
  let grace = null;
  const overall = setTimeout(() => settle('timeout'), timeoutMs);

  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (!select(message)) return;
        const rec = {
          partition,
          offset: message.offset,
          key: message.key?.toString(),
          headers: headerStrings(message.headers),
          value: message.value,
        };
        try {
          rec.event = await decode(message);
        } catch (err) {
          rec.event = { error: String(err && err.message ? err.message : err) };
        }
        records.push(rec);
        if (records.length >= expect) {
          clearTimeout(grace);
          grace = setTimeout(() => settle('complete'), graceMs);
        }
      },
    });
    const how = await settled;
    return { records, how };
  } finally {
    clearTimeout(overall);
    clearTimeout(grace);
    await consumer.disconnect();
  }
}

// consume-prescription-events.ts: the value is a JSON string.
async function decodeJson(message) {
  const value = message.value?.toString();
  if (!value) throw new Error('empty value');
  return JSON.parse(value);
}

// schema-registry-example.ts: registry.decode(message.value).
function avroDecoder(registryUrl) {
  const registry = new SchemaRegistry({ host: registryUrl });
  return { registry, decode: (message) => registry.decode(message.value) };
}

module.exports = { kafkaClient, consume, decodeJson, avroDecoder };
