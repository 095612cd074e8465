// Helpers for the interop test: where the services and the build are, the
// daemon (start with --ready-fd, stop with SIGTERM), a small MLLP client, and
// `hl7bridge map` as the oracle of which events a message makes.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const srcDir = process.env.HB_SRCDIR || path.resolve(__dirname, '..', '..', '..');
const buildDir = path.resolve(process.env.HB_BUILDDIR || path.join(srcDir, 'build'));
const bin = path.join(buildDir, 'hl7bridge');

// The services' variables: from the environment (tests/integration/run.sh
// exports them) or from the env file tests/services/services.sh start writes.
function services() {
  const out = {
    bootstrap: process.env.HB_KAFKA_BOOTSTRAP,
    registry: process.env.SCHEMA_REGISTRY_URL,
  };
  if (out.bootstrap && out.registry) return out;
  const dir = process.env.HB_SERVICES_DIR || path.join(srcDir, 'tests', 'services', '.run');
  try {
    const text = fs.readFileSync(path.join(dir, 'env'), 'utf8');
    const get = (k) => (new RegExp(`^${k}=(.*)$`, 'm').exec(text) || [])[1];
    out.bootstrap = out.bootstrap || get('HB_KAFKA_BOOTSTRAP');
    out.registry = out.registry || get('SCHEMA_REGISTRY_URL');
  } catch {
    // no env file: the caller decides whether that is a skip
  }
  return out.bootstrap && out.registry ? out : null;
}

// A config file for one daemon instance, in the format of conf/hl7bridge.conf.
function writeConfig(file, o) {
  const lines = [
    '[bridge]',
    `instance = ${o.instance}`,
    `mappings = ${path.join(srcDir, 'mappings')}`,
    `schemas = ${path.join(srcDir, 'conf', 'schemas')}`,
    `value.format = ${o.avro ? 'avro' : 'json'}`,
    'log.level = info',
    '[kafka]',
    `bootstrap.servers = ${o.bootstrap}`,
    '[registry]',
    `url = ${o.avro ? o.registry : ''}`,
    '[topics]',
    // test_daemon creates the event topics with 3 partitions too; an
    // instance that finds a topic with other settings only logs it.
    'partitions = 3',
    `deadletter = ${o.deadletter}`,
    `state = ${o.state}`,
    '[publisher]',
    'lanes = 2',
    'linger = 2ms',
    '[listener plain]',
    'bind = 127.0.0.1:0',
    '',
  ];
  fs.writeFileSync(file, lines.join('\n'));
}

// Start `hl7bridge run -c conf --ready-fd 3` in conf's folder (the daemon
// reads a .env file from its working directory, and a crash leaves any core
// file there); resolve with { child, port } once it writes "READY <port>".
// stdout/stderr are appended to logFile.
function startDaemon(conf, logFile, extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logFile, 'a');
    const child = spawn(bin, ['run', '-c', conf, '--ready-fd', '3'], {
      cwd: path.dirname(conf),
      stdio: ['ignore', log, log, 'pipe'],
      env: { ...process.env, ...extraEnv },
    });
    fs.closeSync(log);
    let line = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hl7bridge run was not ready after 90 s; see ${logFile}`));
    }, 90000);
    child.stdio[3].on('data', (d) => {
      line += d.toString();
      const m = /^READY (\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message}`));
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`hl7bridge run exited before it was ready (${code ?? sig}); see ${logFile}`));
    });
  });
}

// Resolve with the exit code (or the signal name) once the child is gone.
function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig)));
}

async function stopDaemon(child) {
  const done = exited(child);
  child.kill('SIGTERM');
  return done;
}

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

// One MLLP connection; exchange() sends a frame and resolves with the reply's
// text, or null when the connection closes first (the daemon died).
class Mllp {
  static connect(port) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => resolve(new Mllp(sock)));
      sock.once('error', reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiter = null;
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.deliver();
    });
    sock.on('close', () => {
      this.closed = true;
      this.deliver();
    });
    sock.on('error', () => {}); // a reset shows as close
  }

  deliver() {
    if (!this.waiter) return;
    const start = this.buf.indexOf(VT);
    const end = start >= 0 ? this.buf.indexOf(FS, start) : -1;
    if (end >= 0 && end + 1 < this.buf.length && this.buf[end + 1] === CR) {
      const reply = this.buf.subarray(start + 1, end).toString('latin1');
      this.buf = this.buf.subarray(end + 2);
      const w = this.waiter;
      this.waiter = null;
      w(reply);
    } else if (this.closed) {
      const w = this.waiter;
      this.waiter = null;
      w(null);
    }
  }

  exchange(msg, timeoutMs = 60000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no MLLP reply within the timeout')), timeoutMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      if (!this.closed)
        this.sock.write(Buffer.concat([Buffer.from([VT]), Buffer.from(msg, 'latin1'), Buffer.from([FS, CR])]));
      this.deliver();
    });
  }

  close() {
    this.sock.end();
  }
}

// MSA-1 of an ACK ("AA", "AE", ...), or "".
function msa1(ack) {
  const seg = ack.split('\r').find((s) => s.startsWith('MSA'));
  return seg ? seg.split(seg[3])[1] || '' : '';
}

// A sample message with its MSH-10 replaced (segments separated by CR).
function sample(rel, msh10) {
  const text = fs.readFileSync(path.join(srcDir, rel), 'latin1').replace(/[\r\n]+$/, '');
  const segs = text.split(/\r\n|\r|\n/);
  const sep = segs[0][3];
  const f = segs[0].split(sep);
  f[9] = msh10; // MSH-1 is the separator itself, so MSH-n is f[n-1]
  segs[0] = f.join(sep);
  return segs.join('\r');
}

// The events `hl7bridge map` makes of these messages: [{topic, key, event}].
// It runs the same mappings as the daemon, so it says what must arrive.
function mapEvents(messages) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hb-interop-map-'));
  try {
    const files = messages.map((m, i) => {
      const f = path.join(dir, `m${i}.hl7`);
      fs.writeFileSync(f, m, 'latin1');
      return f;
    });
    // Exit status 1 only says that some message matched no mapping (or was
    // rejected); the events of the others are still printed.
    const r = spawnSync(bin, ['map', '-m', path.join(srcDir, 'mappings'),
      '-s', path.join(srcDir, 'conf', 'schemas'), ...files], { encoding: 'utf8' });
    if (r.status !== 0 && r.status !== 1) throw new Error(`hl7bridge map: ${r.stderr || r.error}`);
    return r.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = {
  srcDir, buildDir, bin, services, writeConfig, startDaemon, stopDaemon, exited,
  Mllp, msa1, sample, mapEvents,
};
