// The playground: POST the sample to /api/playground and show the events and
// the --explain trace. The sample may hold patient data: it is shown with
// textContent only, and nothing is stored.
'use strict';

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : String(k));
  return e;
}

function token() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) sessionStorage.setItem('hl7bridge-token', decodeURIComponent(m[1]));
  return sessionStorage.getItem('hl7bridge-token');
}

function showMessage(m) {
  const badge = { events: 'ok', unmatched: 'warn', rejected: 'bad', error: 'bad' }[m.result];
  const box = el('div', { class: 'message', 'data-result': m.result },
    el('h2', {}, m.label + ' ', el('span', { class: 'badge ' + badge }, m.result)));
  if (m.reject) {
    box.append(el('p', { class: 'err reject' },
      'HL7 error ' + m.reject.code + ': ' + m.reject.reason));
  }
  if (m.result === 'unmatched')
    box.append(el('p', { class: 'muted' }, 'No mapping matched: filtered (or rejected/dead-lettered, as [bridge] unmatched says).'));
  for (const ev of m.events) {
    const ex = el('table', { class: 'explain' },
      el('thead', {}, el('tr', {}, el('th', {}, 'target'), el('th', {}, 'value'), el('th', {}, 'from'))));
    const tb = el('tbody');
    for (const x of ev.explain)
      tb.append(el('tr', {}, el('td', {}, x.target), el('td', {}, el('code', {}, JSON.stringify(x.value))),
                el('td', {}, el('code', {}, x.from))));
    ex.append(tb);
    box.append(el('div', { class: 'event' },
      el('p', {}, el('b', {}, ev.event_type), ' → topic ', el('code', { class: 'topic' }, ev.topic),
         ', key ', el('code', {}, ev.key || '(empty)'), ', mapping ', el('code', {}, ev.mapping),
         ' ', el('span', { class: 'muted' }, ev.mapping_hash.slice(0, 12))),
      ex, el('pre', { class: 'json' }, JSON.stringify(ev.event, null, 2))));
  }
  return box;
}

async function run() {
  const state = document.getElementById('state');
  const out = document.getElementById('results');
  const t = token();
  state.textContent = 'running…';
  try {
    const res = await fetch('/api/playground', {
      method: 'POST', body: document.getElementById('sample').value, cache: 'no-store',
      headers: Object.assign({ 'Content-Type': 'text/plain' }, t ? { Authorization: 'Bearer ' + t } : {}) });
    if (!res.ok) {
      state.textContent = 'HTTP ' + res.status + ': ' + await res.text();
      return;
    }
    const r = await res.json();
    const kids = [el('h2', {}, 'Result')];
    if (r.error) kids.push(el('p', { class: 'err input-error' }, r.error));
    if (r.truncated) kids.push(el('p', { class: 'muted' }, 'Only the first messages were run.'));
    for (const m of r.messages) kids.push(showMessage(m));
    out.replaceChildren(...kids);
    state.textContent = r.messages.length + ' message(s); nothing was published';
  } catch (e) {
    state.textContent = 'failed: ' + e;
  }
}

document.getElementById('run').addEventListener('click', run);
document.getElementById('file').addEventListener('change', ev => {
  const f = ev.target.files[0];
  if (!f) return;
  const rd = new FileReader();
  rd.onload = () => { document.getElementById('sample').value = rd.result; };
  rd.readAsText(f);
});
