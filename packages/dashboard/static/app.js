// The fedtwin dashboard: polls GET /api/dashboard and renders it. Plain JS, no build step; charts by uPlot
// (served from the daemon's node_modules). Read-only: the page sends nothing but GETs.
'use strict';

const POLL_MS = 2000;
/** Bytes samples kept for the chart (one per poll: 30 minutes at 2 s). */
const MAX_SAMPLES = 900;

const $ = (id) => document.getElementById(id);
const charts = {};
const byteSamples = { t: [], sent: [], received: [] };
const budgetSamples = { t: [], spent: [] };

// A token given as #token=… is kept for this tab only and taken out of the address bar (and so of history).
let token = sessionStorage.getItem('fedtwin-token') || '';
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  token = fromHash;
  sessionStorage.setItem('fedtwin-token', token);
  history.replaceState(null, '', location.pathname + location.search);
}
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token-input').value.trim();
  sessionStorage.setItem('fedtwin-token', token);
  $('token-form').hidden = true;
  void poll();
});

/** ε for people: 3 significant digits, rounded up (a printed bound is never below the computed one), as the CLI does. */
function fmtEps(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return '∞';
  if (x === 0) return '0';
  const p = 10 ** (Math.floor(Math.log10(Math.abs(x))) - 2);
  return String(Number((Math.ceil(x / p - 1e-9) * p).toPrecision(3)));
}
function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
/** A time axis of at least two minutes: with one sample uPlot would otherwise span years around it. */
const timeScale = { time: true, range: (u, min, max) => (max - min < 120 ? [max - 120, max + 5] : [min, max]) };
function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : '–';
}
function fmt3(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : '–';
}
function shortId(id) {
  return id ? `${id.slice(0, 8)}…${id.slice(-4)}` : '–';
}
function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}
function fillTable(id, rows, cols) {
  const tbody = $(id).querySelector('tbody');
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const c of cols) {
      const v = c(r);
      if (Array.isArray(v)) cell(tr, v[0], v[1]);
      else cell(tr, v);
    }
    tbody.appendChild(tr);
  }
}
function fillKv(id, pairs) {
  const dl = $(id);
  dl.replaceChildren();
  for (const [k, v, cls] of pairs) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    if (cls) dd.className = cls;
    dl.append(dt, dd);
  }
}

/** One uPlot per element, re-created when its series change shape, else fed new data. */
function plot(id, make, data, shapeKey) {
  const el = $(id);
  const width = Math.max(320, el.clientWidth || el.parentElement.clientWidth - 32);
  const c = charts[id];
  if (c && c.shapeKey === shapeKey) {
    if (Math.abs(c.u.width - width) > 4) c.u.setSize({ width, height: c.u.height });
    c.u.setData(data);
    return;
  }
  if (c) c.u.destroy();
  el.replaceChildren();
  charts[id] = { u: new uPlot(make(width), data, el), shapeKey };
}

const bars = () => uPlot.paths.bars({ size: [0.6, 60] });

function renderRounds(status) {
  const rounds = status.rounds;
  const x = rounds.map((r) => r.round);
  const secs = rounds.map((r) => (typeof r.seconds === 'number' ? r.seconds : null));
  const participants = rounds.map((r) => r.participants);
  plot('rounds-chart', (width) => ({
    width, height: 220,
    scales: { x: { time: false }, n: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{ label: 'round', values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? v : '')) }, { label: 'seconds to aggregate' }, { side: 1, scale: 'n', label: 'participants', grid: { show: false } }],
    series: [{ label: 'round' }, { label: 'seconds', stroke: '#3867d6', fill: 'rgba(56,103,214,0.35)', paths: bars(), points: { show: false } }, { label: 'participants', scale: 'n', stroke: '#20bf6b', width: 2 }],
  }), [x, secs, participants], 'rounds');
  fillTable('rounds', [...rounds].reverse(), [
    (r) => r.round, (r) => [r.status, r.status === 'failed' ? 'bad' : r.status === 'aggregated' ? 'ok' : ''], (r) => r.participants, (r) => r.refusals,
    (r) => fmtTime(r.openedAt), (r) => (typeof r.seconds === 'number' ? r.seconds.toFixed(1) : '–'),
  ]);
}

function renderMembers(status) {
  const members = status.members;
  fillTable('members', members, [
    (m) => m.name || '–', (m) => shortId(m.peerId), (m) => (m.joined === null ? '–' : m.joined ? 'yes' : 'no'), (m) => fmtTime(m.lastSeenAt),
    (m) => m.contributions, (m) => m.refusals, (m) => fmtEps(m.epsilon ? m.epsilon.spent : null), (m) => fmtEps(m.epsilon ? m.epsilon.budget : null),
    (m) => (m.excluded ? ['excluded', 'bad'] : m.exhausted ? ['budget exhausted', 'bad'] : ['active', 'ok']),
  ]);
  const x = members.map((_, i) => i);
  const spent = members.map((m) => (m.epsilon ? m.epsilon.spent : null));
  const budget = members.map((m) => (m.epsilon && Number.isFinite(m.epsilon.budget) ? m.epsilon.budget : null));
  const names = members.map((m) => m.name || shortId(m.peerId));
  plot('epsilon-chart', (width) => ({
    width, height: 200,
    scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.05] } },
    axes: [{ values: (u, vals) => vals.map((v) => (Number.isInteger(v) && names[v] !== undefined ? names[v] : '')) }, { label: 'ε' }],
    series: [{ label: 'member', value: (u, v) => (v === null ? '–' : names[v] ?? '') },
      { label: 'ε spent', stroke: '#eb3b5a', fill: 'rgba(235,59,90,0.45)', paths: bars(), points: { show: false }, value: (u, v) => fmtEps(v) },
      { label: 'budget', stroke: '#4b4b4b', width: 2, dash: [6, 4], points: { show: true, size: 8 }, paths: uPlot.paths.stepped({ align: 1 }), value: (u, v) => fmtEps(v) }],
  }), [x, spent, budget], `eps:${names.join('|')}`);
}

function renderNode(status) {
  fillTable('budget', status.privacy, [(p) => p.mode, (p) => fmtEps(p.spent), (p) => fmtEps(p.budget), (p) => p.delta]);
  $('refused').textContent = status.refused ? `Declined round ${status.refused.round}: ${status.refused.reason}` : '';
  $('refused').className = status.refused ? 'bad' : '';
  $('contributions').textContent = String(status.contributions);
  $('contributed-rounds').textContent = status.contributedRounds.length ? status.contributedRounds.join(', ') : '–';
  const p = status.privacy.find((x) => x.mode === 'record') || status.privacy[0];
  if (p) {
    budgetSamples.t.push(Date.now() / 1000);
    budgetSamples.spent.push(p.spent);
    if (budgetSamples.t.length > MAX_SAMPLES) { budgetSamples.t.shift(); budgetSamples.spent.shift(); }
    const budget = budgetSamples.t.map(() => p.budget);
    plot('budget-chart', (width) => ({
      width, height: 180,
      scales: { x: timeScale, y: { range: (u, min, max) => [0, Math.max(p.budget, max) * 1.05] } },
      axes: [{}, { label: 'ε' }],
      series: [{}, { label: `ε spent (${p.mode})`, stroke: '#eb3b5a', width: 2, value: (u, v) => fmtEps(v) }, { label: 'budget', stroke: '#4b4b4b', dash: [6, 4], value: (u, v) => fmtEps(v) }],
    }), [budgetSamples.t, budgetSamples.spent, budget], `budget:${p.mode}`);
  }
}

function renderLedger(role, status) {
  const l = role === 'aggregator' ? status.ledger : status.replica;
  $('ledger-title').textContent = role === 'aggregator' ? 'Ledger' : 'Ledger replica (verified by this member)';
  if (!l) return fillKv('ledger', [['ledger', 'none yet']]);
  const cp = l.checkpoint;
  fillKv('ledger', [
    ['entries', l.size], ['root', l.rootHash || '–'],
    ['latest checkpoint', cp ? `size ${cp.size}${cp.signedAt ? `, signed ${fmtTime(cp.signedAt)}` : ''}` : 'none'],
    ['cosignatures', cp ? cp.cosignatures : 0, cp && cp.cosignatures > 0 ? 'ok' : ''],
    ...(role === 'node' ? [['verified', cp ? `checkpoint ${cp.size} verified and co-signed` : 'not yet', cp ? 'ok' : '']] : []),
  ]);
}

function renderBytes(bytes) {
  const rows = Object.entries(bytes).map(([protocol, c]) => ({ protocol, ...c })).sort((a, b) => b.sent + b.received - a.sent - a.received);
  fillTable('bytes', rows, [(r) => r.protocol, (r) => fmtBytes(r.received), (r) => fmtBytes(r.sent)]);
  const sent = rows.reduce((s, r) => s + r.sent, 0);
  const received = rows.reduce((s, r) => s + r.received, 0);
  byteSamples.t.push(Date.now() / 1000);
  byteSamples.sent.push(sent);
  byteSamples.received.push(received);
  if (byteSamples.t.length > MAX_SAMPLES) for (const k of ['t', 'sent', 'received']) byteSamples[k].shift();
  plot('bytes-chart', (width) => ({
    width, height: 180,
    scales: { x: timeScale },
    axes: [{}, { label: 'bytes (total)', values: (u, vals) => vals.map(fmtBytes), size: 70 }],
    series: [{}, { label: 'in', stroke: '#3867d6', width: 2, value: (u, v) => fmtBytes(v) }, { label: 'out', stroke: '#fa8231', width: 2, value: (u, v) => fmtBytes(v) }],
  }), [byteSamples.t, byteSamples.received, byteSamples.sent], 'bytes');
}

function renderReport(report) {
  $('report-section').hidden = !report;
  if (!report) return;
  const t = report.utility.tstrAuc;
  fillKv('report', [
    ['data set', `${report.dataset} (${report.nodes} nodes, ${report.rounds} rounds)`],
    ['fidelity (mean column score)', fmt3(report.fidelity.mean)],
    ['correlation distance', fmt3(report.fidelity.correlationDistance)],
    ['TSTR AUC federated', fmt3(t.federated)], ['TSTR AUC local-only', fmt3(t.localOnly)], ['TSTR AUC centralized', fmt3(t.centralized)],
    ['TRTR AUC', fmt3(report.utility.trtrAuc)],
    ['privacy', report.privacy.mode === 'off' ? 'off' : `${report.privacy.mode}-level, ε ${fmtEps(report.privacy.epsilon)} of ${fmtEps(report.privacy.budget)}`],
    ['written', fmtTime(report.writtenAt)],
  ]);
}

function render(snap) {
  const role = snap.role;
  document.body.dataset.role = role;
  for (const s of document.querySelectorAll('section[data-role]')) s.hidden = s.dataset.role !== role;
  $('role').textContent = role === 'aggregator' ? 'aggregator' : 'node';
  $('note').hidden = !snap.note;
  $('note').textContent = snap.note || '';
  $('updated').textContent = fmtTime(snap.at);
  renderBytes(snap.bytes || {});
  renderReport(snap.report);
  const s = snap.status;
  if (!s) return;
  $('consortium').textContent = s.consortium;
  if (role === 'aggregator') {
    $('status').textContent = s.finishedEarly ? `${s.status} (${s.finishedEarly})` : s.status;
    $('rounds-label').firstChild.textContent = 'rounds ';
    $('rounds-count').textContent = String(s.rounds.length);
    $('version').textContent = `${s.version} of ${s.totalRounds}`;
    renderRounds(s);
    renderMembers(s);
  } else {
    $('status').textContent = s.finished ? 'finished' : 'running';
    $('rounds-label').firstChild.textContent = 'last round ';
    $('rounds-count').textContent = String(s.lastRound);
    $('version').textContent = String(s.version);
    renderNode(s);
  }
  renderLedger(role, s);
}

async function poll() {
  try {
    const res = await fetch('/api/dashboard', { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
    if (res.status === 401) {
      $('token-form').hidden = false;
      $('error').hidden = false;
      $('error').textContent = token ? 'the token was not accepted' : 'this dashboard needs its bearer token';
      return;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    $('error').hidden = true;
    render(await res.json());
  } catch (err) {
    $('error').hidden = false;
    $('error').textContent = `cannot reach the daemon: ${err.message} (retrying)`;
  }
}

async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}
void loop();
