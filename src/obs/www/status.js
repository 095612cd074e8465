// The status page: polls /api/status every second and fills the tables.
// Everything shown is counters, ids and reasons; values are set with
// textContent, never parsed as HTML.
'use strict';

const POLL_MS = 1000;
let prev = null; // the previous answer, for rates

function token() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) sessionStorage.setItem('hl7bridge-token', decodeURIComponent(m[1]));
  return sessionStorage.getItem('hl7bridge-token');
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : String(k));
  return e;
}

function rows(id, list) {
  const tb = document.querySelector('#' + id + ' tbody');
  tb.replaceChildren(...list);
}

function td(v, num) { return el('td', num ? { class: 'n' } : {}, v); }

function rate(now, before, dt) {
  if (before === undefined || dt <= 0) return '–';
  return ((now - before) / dt).toFixed(1);
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
        m = Math.floor(s % 3600 / 60), sec = Math.floor(s % 60);
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + sec + 's';
}

function render(st) {
  const dt = prev ? (st.now_ms - prev.now_ms) / 1000 : 0;
  document.getElementById('instance').textContent = st.instance;
  document.getElementById('version').textContent = st.version;
  document.getElementById('uptime').textContent = duration(st.uptime_s);
  document.getElementById('updated').textContent =
    'updated ' + new Date(st.now_ms).toISOString().slice(11, 19) + ' UTC';
  const r = document.getElementById('ready');
  const rd = st.ready;
  r.textContent = rd.ready ? 'ready' : rd.fatal ? 'publisher failed' : rd.draining ? 'draining' :
    'not ready (producers ' + (rd.producers ? 'yes' : 'no') + ', ledger ' +
    (rd.ledger ? 'yes' : 'no') + ', listeners ' + (rd.listeners ? 'yes' : 'no') + ')';
  r.className = 'badge ' + (rd.ready ? 'ok' : 'bad');

  const m = st.messages, pm = prev ? prev.messages : {};
  rows('messages', ['received', 'published', 'rejected', 'filtered', 'duplicates', 'failed',
                    'deadlettered', 'events'].map(k =>
    el('tr', { 'data-outcome': k }, td(k), td(m[k], 1), td(rate(m[k], pm[k], dt), 1))));

  const pin = {};
  for (const i of prev ? prev.inputs : []) pin[i.kind + '/' + i.name] = i;
  rows('inputs', st.inputs.map(i => {
    const p = pin[i.kind + '/' + i.name];
    return el('tr', { 'data-input': i.name }, td(i.name), td(i.kind + (i.tls ? ' (TLS)' : '')),
      td(i.bind), td(i.open, 1), td(i.received, 1), td(rate(i.received, p && p.received, dt), 1),
      td(i.refused, 1), td(i.tls_failures, 1), td(i.oversize, 1), td(i.timeouts, 1));
  }));
  const pdr = {};
  for (const x of prev ? prev.drops : []) pdr[x.name] = x;
  document.getElementById('drops').textContent = st.drops.length ? st.drops.map(x => {
    const p = pdr[x.name];
    return 'drop ' + x.name + ': ' + x.files_done + ' files done, ' + x.files_error + ' in error/, ' +
      x.files_duplicate + ' duplicates; ' + x.messages + ' messages (' +
      rate(x.messages, p && p.messages, dt) + '/s), ' + x.rejected + ' rejected';
  }).join(' · ') : 'No file drops configured.';

  rows('recent', st.rejections.recent.map(x =>
    el('tr', { class: 'rejection' }, td(new Date(x.ts_ms).toISOString().replace('T', ' ').slice(0, 19)),
      td(x.stage), td(x.code), td(x.ack), td(x.reason), td(x.origin), td(x.msh10))));
  if (!st.rejections.recent.length)
    rows('recent', [el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'none since start'))]);
  rows('rejby', st.rejections.by.map(x => el('tr', {}, td(x.stage), td(x.code), td(x.count, 1))));

  const pt = prev ? prev.messages.events_by_topic : {};
  rows('topics', Object.entries(m.events_by_topic).map(([t, n]) =>
    el('tr', {}, td(t), td(n, 1), td(rate(n, pt[t], dt), 1))));

  const p = st.publisher, c = p.commit || {}, a = p.ack || {};
  const kv = document.getElementById('commits');
  const pairs = [
    ['transactions committed', p.txn_committed], ['transactions aborted', p.txn_aborted],
    ['commit p50 / p99', (c.p50_ms || 0).toFixed(1) + ' / ' + (c.p99_ms || 0).toFixed(1) + ' ms'],
    ['ACK latency p50 / p99', (a.p50_ms || 0).toFixed(1) + ' / ' + (a.p99_ms || 0).toFixed(1) + ' ms'],
    ['in flight', p.inflight + ' of ' + p.max_inflight], ['records produced', p.records],
    ['ledger keys', st.ledger_keys]];
  kv.replaceChildren(...pairs.flatMap(([k, v]) => [el('div', {}, k), el('div', {}, v)]));

  rows('lanes', p.lanes.map(l => el('tr', {}, td(l.lane),
    td(l.stats ? l.txn_state : 'no statistics yet'), td(l.queue_messages, 1),
    td(l.brokers.map(b => b.name + ' ' + b.state + ' ' + b.rtt_avg_ms.toFixed(1) + ' ms').join(', ')))));
  prev = st;
}

async function poll() {
  const t = token();
  try {
    const res = await fetch('/api/status', { headers: t ? { Authorization: 'Bearer ' + t } : {},
                                             cache: 'no-store' });
    if (res.ok) render(await res.json());
    else {
      const r = document.getElementById('ready');
      r.textContent = res.status === 401 ? 'token needed: open this page as /#token=…' :
        'HTTP ' + res.status;
      r.className = 'badge warn';
    }
  } catch (e) {
    const r = document.getElementById('ready');
    r.textContent = 'unreachable';
    r.className = 'badge bad';
  }
  setTimeout(poll, POLL_MS);
}
poll();
