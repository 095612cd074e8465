// The status page and the mapping playground in a real browser: headless
// Chromium (Debian's chromium package, driven by playwright-core) against
// the real daemon and the real Kafka broker from tests/services.
//
// A published message, a rejected one and an unreadable one go in over
// MLLP; the status page must show them counted and list the rejections
// (code, reason, origin, MSH-10) without patient data, updating by itself.
// The playground must map a pasted sample and show its events and trace.
// Screenshots of both pages go to $HB_BUILDDIR/artifacts/.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const SRC = process.env.HB_SRCDIR || path.resolve(__dirname, '../../..');
const BUILD = process.env.HB_BUILDDIR || process.cwd();
const KAFKA = process.env.HB_KAFKA_BOOTSTRAP;
const CHROMIUM = process.env.HB_CHROMIUM || '/usr/bin/chromium';
const PHI = ['Testpatient', '19800102', 'Atorvastatin', 'Example St', '5550100'];

function unique(prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}

function sample(rel) {
  return fs.readFileSync(path.join(SRC, rel), 'latin1').replace(/[\r\n]+$/, '').replace(/\n/g, '\r');
}

function setMsh10(msg, id) {
  const f = msg.split('\r')[0].split('|');
  f[9] = id;
  return [f.join('|'), ...msg.split('\r').slice(1)].join('\r');
}

// Start `hl7bridge run` and wait for "READY <mllp port> http=<port>".
function startDaemon(conf, log) {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(log, 'a');
    const child = spawn(path.join(BUILD, 'hl7bridge'), ['run', '-c', conf, '--ready-fd', '3'],
                        { stdio: ['ignore', out, out, 'pipe'] });
    let line = '';
    child.stdio[3].on('data', d => {
      line += d;
      const m = /^READY (\d+).* http=(\d+)/.exec(line);
      if (m) resolve({ child, mllp: +m[1], http: +m[2] });
    });
    child.on('exit', code => reject(new Error(`hl7bridge exited (${code}) before ready; see ${log}`)));
  });
}

function stopDaemon(d) {
  return new Promise(resolve => {
    d.child.removeAllListeners('exit');
    d.child.on('exit', code => resolve(code));
    d.child.kill('SIGTERM');
  });
}

// One MLLP exchange: frame, send, read the framed reply, return MSA-1.
function exchange(sock, msg) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = d => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\x1c\r');
      if (end >= 0) {
        sock.off('data', onData);
        const m = /\rMSA\|([A-Z]{2})/.exec(buf);
        resolve(m ? m[1] : '');
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(Buffer.from('\x0b' + msg + '\x1c\r', 'latin1'));
  });
}

async function screenshot(page, name) {
  const dir = path.join(BUILD, 'artifacts');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

async function main() {
  assert.ok(KAFKA, 'HB_KAFKA_BOOTSTRAP is not set: run through tests/integration/run.sh');
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: contrib/install-deps.sh installs chromium`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hl7bridge-browser-'));
  const inst = unique('itest-browser');
  const conf = path.join(tmp, 'hl7bridge.conf');
  const log = path.join(tmp, 'hl7bridge.log');
  fs.writeFileSync(conf, [
    '[bridge]', `instance = ${inst}`, `mappings = ${SRC}/mappings`, `schemas = ${SRC}/conf/schemas`,
    '[kafka]', `bootstrap.servers = ${KAFKA}`, 'statistics.interval.ms = 500',
    '[topics]', 'partitions = 3', `deadletter = ${unique('itest.bdlq')}`, `state = ${unique('itest.bstate')}`,
    '[publisher]', 'linger = 2ms',
    '[http]', 'bind = 127.0.0.1:0', 'playground = on',
    '[listener browser]', 'bind = 127.0.0.1:0', ''].join('\n'));

  const d = await startDaemon(conf, log);
  const base = `http://127.0.0.1:${d.http}`;
  let ctx;
  try {
    // Traffic: one published, one rejected by the mapping, one unreadable.
    const rde = sample('samples/hl7v2/rde_o11.hl7');
    const okId = unique('BROWSER-OK'), rejId = unique('BROWSER-REJ');
    const sock = net.connect(d.mllp, '127.0.0.1');
    await new Promise(r => sock.once('connect', r));
    assert.match(await exchange(sock, setMsh10(rde, okId)), /^(AA|CA)$/);
    const noPatientId = setMsh10(rde, rejId).replace(/^PID\|1\|\|[^|]*/m, 'PID|1||');
    assert.match(await exchange(sock, noPatientId), /^(AE|CE)$/);
    assert.match(await exchange(sock, 'this is not HL7'), /^(AR|CR)$/);

    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hl7bridge-chromium-'));
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1360, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
    });

    // The status page.
    const page = await ctx.newPage();
    await page.goto(base + '/');
    await page.waitForSelector(`#recent tr.rejection >> text=${rejId}`, { timeout: 15000 });
    await page.waitForFunction(() =>
      document.querySelector('#messages tr[data-outcome="received"] td.n')?.textContent === '3');
    const row = await page.locator('#recent tr.rejection', { hasText: rejId }).innerText();
    assert.match(row, /\b101\b/, 'the 0357 code is shown');
    assert.match(row, /data\.patientId/, 'the reason names the target');
    assert.match(row, /mllp:browser:127\.0\.0\.1:\d+/, 'the origin is shown');
    assert.match(row, /\bmap\b/, 'the stage is shown');
    const parseRow = await page.locator('#recent tr.rejection', { hasText: 'parse' }).innerText();
    assert.match(parseRow, /\b100\b/);
    const cell = async k => page.locator(`#messages tr[data-outcome="${k}"] td.n`).first().innerText();
    assert.equal(await cell('published'), '1');
    assert.equal(await cell('rejected'), '2');
    assert.equal(await page.locator('#inputs tr[data-input="browser"] td.n').nth(1).innerText(), '3');
    assert.match(await page.locator('#ready').innerText(), /^ready$/);
    // Live: another message shows up without reloading.
    assert.match(await exchange(sock, setMsh10(rde, unique('BROWSER-OK2'))), /^(AA|CA)$/);
    await page.waitForFunction(() =>
      document.querySelector('#messages tr[data-outcome="published"] td.n')?.textContent === '2',
      null, { timeout: 10000 });
    await page.waitForFunction(() => /Ready|InTransaction|Commit/.test(
      document.querySelector('#lanes tbody')?.textContent || ''), null, { timeout: 10000 });
    const whole = await page.locator('body').innerText();
    for (const p of PHI) assert.ok(!whole.includes(p), `the status page shows patient data (${p})`);
    await screenshot(page, 'status-page.png');
    sock.destroy();

    // The playground: paste a sample, run it, see events and the trace.
    const pg = await ctx.newPage();
    await pg.goto(base + '/playground');
    await pg.fill('#sample', rde.replace(/\r/g, '\n'));
    await pg.click('#run');
    await pg.waitForSelector('.message[data-result="events"]', { timeout: 10000 });
    const topics = await pg.locator('.event code.topic').allInnerTexts();
    assert.deepEqual(topics, ['healthcare.prescription.created', 'healthcare.prescription.cancelled']);
    const trace = await pg.locator('.event table.explain').first().innerText();
    assert.match(trace, /data\.prescriptionId/);
    assert.match(trace, /ORC-2\.1/, 'the trace names the source path');
    assert.match(await pg.locator('#state').innerText(), /nothing was published/);
    await screenshot(pg, 'playground.png');

    // A rejected sample explains itself.
    await pg.fill('#sample', noPatientId.replace(/\r/g, '\n'));
    await pg.click('#run');
    await pg.waitForSelector('.message[data-result="rejected"]', { timeout: 10000 });
    assert.match(await pg.locator('.reject').innerText(), /HL7 error 101: .*data\.patientId/);
    await screenshot(pg, 'playground-rejected.png');

    // The playground published nothing: still 2 published in the metrics.
    const metrics = await (await fetch(base + '/metrics')).text();
    assert.match(metrics, /^hl7bridge_messages_published_total 2$/m);
    assert.match(metrics, /^hl7bridge_messages_received_total\{input="browser",kind="mllp",format="hl7v2"\} 4$/m);
    console.log('status page and playground: ok');
  } finally {
    if (ctx) await ctx.close();
    const code = await stopDaemon(d);
    assert.equal(code, 0, `hl7bridge exited ${code}; see ${log}`);
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
