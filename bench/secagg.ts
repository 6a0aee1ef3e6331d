// `npm run bench -- --only secagg`: pairwise masking (SecAgg / SecAgg+, @fedtwin/secagg) beside today's
// single-key BFV (@fedtwin/he) on the same machine in the same run: bytes up per value, member CPU and
// aggregator CPU per round for 1.1M values and n = 10, 20, 50 members (full graph and the sparse graph).
//
// CPU is process CPU time (process.cpuUsage, all threads, so the BFV pool's worker counts), measured around
// each party's own work; all members run in this one process, one after the other.
//
// On a shared machine the CPU time of the same work drifts by several × within a minute (other sessions'
// tests), so the aggregator comparison is paired: every secagg round (`--repeat` fresh rounds per row, new
// keys each) is followed by a fresh measurement of the BFV aggregator for the same number of updates, and a
// row reports the medians of both and their ratio. The load average is printed (and in --json) at start and end.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { createEntrySigner } from '@fedtwin/ledger';
import { Accumulator, createHePool, generateKeys, quantize } from '@fedtwin/he';
import {
  advertise, answerRecovery, collectAdvertisements, defaultDegree, warmUp, maskInput, recoveryRequest, routeShares, shareKeys, unmask,
  type IdentitySigner, type KeyAdvertisement, type MaskedInput, type MemberState, type RecoveryResponse, type SecaggConfig, type ShareBundle,
} from '@fedtwin/secagg';

const { values: args } = parseArgs({ options: {
  values: { type: 'string', default: '1100000' },
  nodes: { type: 'string', default: '10,20,50' },
  drop: { type: 'string', default: '0.1' },
  repeat: { type: 'string', default: '1' },
  json: { type: 'boolean', default: false },
} });
const L = Number(args.values);
const NODES = args.nodes!.split(',').map(Number);
const DROP = Number(args.drop);
const REPEAT = Math.max(1, Math.floor(Number(args.repeat)));
const QMAX = 32767;

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const r1 = (x: number): number => Number(x.toFixed(1));
const r3 = (x: number): number => Number(x.toFixed(3));

/** Model-delta-like data, N(0, 0.25²) clipped to [-1, 1], as `fedtwin bench he` uses. */
function makeUpdate(n: number, seed: number): Float32Array {
  let s = (seed * 0x9e3779b1 + 0x6d2b79f5) >>> 0 || 1;
  const next = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 0.5) / 4294967296; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = 0.25 * Math.sqrt(-2 * Math.log(next())), a = 2 * Math.PI * next();
    out[i] = Math.max(-1, Math.min(1, r * Math.cos(a)));
    if (i + 1 < n) out[i + 1] = Math.max(-1, Math.min(1, r * Math.sin(a)));
  }
  return out;
}
const updates = [1, 2, 3].map((s) => makeUpdate(L, s));

// ---------------------------------------------------------------------------------------------
// Baseline: today's single-key BFV, one HE worker thread (so CPU ≈ the work, not the oversubscription).

interface BfvFigures { bytesPerValue: number; encryptMs: number; decryptMs: number; addMs: number; resultMs: number; downBytesPerValue: number; firstAddMs: number; nextAddMs: number }

/**
 * The BFV figures, and `aggregator(k)`: a fresh measurement of the aggregator's CPU for a sum of k updates,
 * first add (which allocates the 8.8 MB running sum; fresh pages cost ≈ 4 ms per MB on this VM under load)
 * + (k − 1) × a later add + the compact sum, each the median over the sums measured.
 */
async function bfv(): Promise<{ figures: BfvFigures; aggregator: (updatesInSum: number) => { addMs: number; firstAddMs: number; resultMs: number; ms: number }; close: () => Promise<void> }> {
  const pool = await createHePool({ threads: 1, params: { maxParticipants: 1024, clip: 1 } });
  const key = generateKeys(pool.ctx);
  const tag = new Uint8Array(32).fill(7);
  await pool.encrypt(key, updates[0].subarray(0, 8192), { member: 'warm-up', tag: new Uint8Array(32).fill(8) });
  const enc: number[] = [];
  const ups: Uint8Array[] = [];
  const members = ['m0', 'm1', 'm2'];
  for (let u = 0; u < 3; u++) {
    const c = cpuMs();
    ups.push((await pool.encrypt(key, updates[u], { member: members[u], tag })).update);
    enc.push(cpuMs() - c);
  }
  const bytes = ups[0].length;
  // The adds are short (≈ 3 ms) on a shared machine: `sums` sums of the 3 updates, the first (JIT warm-up) left out.
  let sum: Uint8Array = new Uint8Array(0);
  const measure = (sums: number): { addMs: number; firstAddMs: number; nextAddMs: number; resultMs: number } => {
    const add: number[] = [], first: number[] = [], next: number[] = [], res: number[] = [];
    for (let r = 0; r < sums; r++) {
      const acc = new Accumulator(pool.ctx);
      ups.forEach((up, i) => {
        const c = cpuMs();
        acc.add(up);
        const ms = cpuMs() - c;
        if (r > 0) { add.push(ms); (i === 0 ? first : next).push(ms); }
      });
      const c = cpuMs();
      sum = acc.result();
      if (r > 0) res.push(cpuMs() - c);
      acc.dispose();
    }
    return { addMs: median(add), firstAddMs: median(first), nextAddMs: median(next), resultMs: median(res) };
  };
  const first = measure(9);
  let c = 0;
  const dec: number[] = [];
  for (let r = 0; r < 3; r++) { c = cpuMs(); await pool.decrypt(key, sum, members, L); dec.push(cpuMs() - c); }
  return {
    figures: {
      bytesPerValue: bytes / L, encryptMs: median(enc), decryptMs: median(dec), addMs: first.addMs, resultMs: first.resultMs, downBytesPerValue: sum.length / L,
      firstAddMs: first.firstAddMs, nextAddMs: first.nextAddMs,
    },
    aggregator: (k) => { const m = measure(5); return { ...m, ms: m.firstAddMs + (k - 1) * m.nextAddMs + m.resultMs }; },
    close: () => pool.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Masking: one whole round, `drop` of the members leaving after sharing (the costly case for the aggregator).

interface SecaggFigures {
  n: number; graph: string; degree: number; threshold: number; dropped: number;
  bytesUpPerValue: number; memberMs: number; memberMaskMs: number; aggregatorMs: number; exact: boolean;
  /** AES mask streams the aggregator expanded: one self-mask per survivor + one per (dropped, surviving neighbour) pair */
  aggregatorStreams: number;
}

function adBytes(a: KeyAdvertisement): number { return a.member.length + 8 + 32 + 32 + 64; }
function bundleBytes(b: ShareBundle): number { return b.member.length + 32 + b.shares.reduce((s, x) => s + x.from.length + x.to.length + x.nonce.length + x.ciphertext.length, 0); }
function responseBytes(r: RecoveryResponse): number { return r.member.length + 32 + [...r.bShares, ...r.sShares].reduce((s, x) => s + x.owner.length + x.y.length, 0); }

async function secaggRound(ids: IdentitySigner[], degree: number | undefined): Promise<SecaggFigures> {
  const n = ids.length;
  const m = degree === undefined || degree >= n - 1 ? n : degree + 1;
  const threshold = Math.floor(m / 2) + 1 + Math.floor((m - Math.floor(m / 2) - 1) / 2); // about 3m/4: tolerates ≈ m/4 dropouts
  const cfg: SecaggConfig = { consortium: 'bench', round: 1, members: ids.map((s) => s.peerId), threshold, degree, length: L };
  const dropped = new Set(ids.slice(0, Math.floor(n * DROP)).map((s) => s.peerId));
  const memberCpu = new Map<string, number>();
  const charge = <T>(who: string, f: () => T): T => { const c = cpuMs(); const v = f(); memberCpu.set(who, (memberCpu.get(who) ?? 0) + cpuMs() - c); return v; };
  let aggCpu = 0;
  const agg = <T>(f: () => T): T => { const c = cpuMs(); const v = f(); aggCpu += cpuMs() - c; return v; };
  const up = new Map<string, number>();
  const send = (who: string, bytes: number) => up.set(who, (up.get(who) ?? 0) + bytes);

  const states = new Map<string, MemberState>();
  const ads: KeyAdvertisement[] = [];
  for (const id of ids) {
    const r = charge(id.peerId, () => advertise(cfg, id));
    states.set(id.peerId, r.state); ads.push(r.ad); send(id.peerId, adBytes(r.ad));
  }
  const { accepted } = agg(() => collectAdvertisements(cfg, ads));
  const bundles: ShareBundle[] = [];
  for (const [p, s] of states) {
    const r = charge(p, () => shareKeys(s, accepted));
    states.set(p, r.state); bundles.push(r.bundle); send(p, bundleBytes(r.bundle));
  }
  const { round, inboxes } = agg(() => routeShares(cfg, accepted, bundles));
  const masked: MaskedInput[] = [];
  const plain = new Int32Array(L);
  const maskMs: number[] = [];
  let u = 0;
  for (const [p, s] of states) {
    if (dropped.has(p)) continue;
    const x = updates[u % 3];
    const seed: [number, number] = [u++, 1];
    const c = cpuMs();
    let q: Int32Array = new Int32Array(0);
    const r = charge(p, () => maskInput(s, inboxes.get(p) ?? [], (q = quantize(x, { scale: QMAX, clip: 1, seed }).values)));
    maskMs.push(cpuMs() - c);
    states.set(p, r.state); masked.push(r.masked); send(p, 4 * L);
    for (let i = 0; i < L; i++) plain[i] += q[i]; // the exact sum to compare with (not charged)
  }
  const request = agg(() => recoveryRequest(round, masked.map((x) => x.member)));
  const responses: RecoveryResponse[] = [];
  for (const [p, s] of states) {
    if (dropped.has(p)) continue;
    const r = charge(p, () => answerRecovery(s, request));
    responses.push(r.response); send(p, responseBytes(r.response));
  }
  const sum = agg(() => unmask(round, request, masked, responses));
  let exact = true;
  for (let i = 0; i < L; i++) if (sum[i] !== plain[i]) { exact = false; break; }
  const senders = [...states.keys()].filter((p) => !dropped.has(p));
  const surv = new Set(request.survivors);
  const aggregatorStreams = request.survivors.length + request.dropped.reduce((k, d) => k + round.graph.neighbours(d).filter((j) => surv.has(j)).length, 0);
  return {
    n, graph: m === n ? 'full' : `sparse k=${degree}`, degree: m - 1, threshold, dropped: dropped.size,
    bytesUpPerValue: median(senders.map((p) => up.get(p)!)) / L,
    memberMs: median(senders.map((p) => memberCpu.get(p)!)),
    memberMaskMs: median(maskMs),
    aggregatorMs: aggCpu,
    exact,
    aggregatorStreams,
  };
}

warmUp(); // as a daemon would at start: the mask kernels are compiled before the first round
const load0 = loadavg();
const baseline = await bfv();
const base = baseline.figures;
const bfvMember = base.encryptMs + base.decryptMs;
const out: unknown[] = [];
const log = (s: string) => { if (!args.json) console.log(s); };
const fmtLoad = (l: number[]): string => l.map((x) => x.toFixed(2)).join(', ');
log(`load average at start: ${fmtLoad(load0)}`);
log(`values ${L}; BFV (single key, 1 HE thread): up ${base.bytesPerValue.toFixed(3)} B/value (${(base.bytesPerValue / 4).toFixed(3)}× float32), `
  + `member CPU ${r1(bfvMember)} ms (encrypt ${r1(base.encryptMs)} + decrypt ${r1(base.decryptMs)}), aggregator CPU ${r1(base.addMs)} ms per update + ${r1(base.resultMs)} ms per sum `
  + `(first add of a sum, which allocates it, ${r1(base.firstAddMs)} ms; later adds ${r1(base.nextAddMs)} ms)`);
log(`SecAgg: k = 32-bit ring, 16-bit values, t ≈ 3/4 of a sharing neighbourhood, ${Math.round(DROP * 100)}% of the members drop after sharing; `
  + `${REPEAT} round(s) per row, each followed by a fresh BFV aggregator measurement (medians)`);
log('| n | graph | t | dropped | bytes up / value (× float32) | vs BFV | member CPU ms (mask part) | vs BFV | aggregator CPU ms | BFV aggregator ms | vs BFV | sum ok |');
log('|---|---|---|---|---|---|---|---|---|---|---|---|');
const allIds: IdentitySigner[] = [];
try {
  for (const n of NODES) {
    while (allIds.length < n) allIds.push(createEntrySigner(await generateKeyPair('Ed25519'), 'fedtwin/bench'));
    const ids = allIds.slice(0, n);
    const variants = n <= 10 ? [undefined] : [undefined, defaultDegree(n)];
    for (const degree of variants) {
      const runs: SecaggFigures[] = [], bfvAggRuns: number[] = [];
      for (let r = 0; r < REPEAT; r++) {
        const f = await secaggRound(ids, degree);
        runs.push(f);
        bfvAggRuns.push(baseline.aggregator(n - f.dropped).ms);
      }
      const f = runs[0];
      const aggMs = median(runs.map((x) => x.aggregatorMs)), bfvAgg = median(bfvAggRuns);
      const memberMs = median(runs.map((x) => x.memberMs)), memberMaskMs = median(runs.map((x) => x.memberMaskMs));
      const row = {
        ...f, exact: runs.every((x) => x.exact), bytesUpPerValue: r3(f.bytesUpPerValue), ratioToFloat32: r3(f.bytesUpPerValue / 4), bytesVsBfv: r3(f.bytesUpPerValue / base.bytesPerValue),
        memberMs: r1(memberMs), memberMaskMs: r1(memberMaskMs), memberVsBfv: r3(memberMs / bfvMember),
        aggregatorMs: r1(aggMs), bfvAggregatorMs: r1(bfvAgg), aggregatorVsBfv: r3(aggMs / bfvAgg),
        repeats: REPEAT, aggregatorMsRuns: runs.map((x) => r1(x.aggregatorMs)), bfvAggregatorMsRuns: bfvAggRuns.map(r1),
      };
      out.push(row);
      log(`| ${n} | ${row.graph} | ${row.threshold} | ${row.dropped} | ${row.bytesUpPerValue} (${row.ratioToFloat32}×) | ${row.bytesVsBfv}× | ${row.memberMs} (${row.memberMaskMs}) | ${row.memberVsBfv}× | ${row.aggregatorMs} | ${row.bfvAggregatorMs} | ${row.aggregatorVsBfv}× | ${row.exact ? 'yes' : 'NO'} |`);
    }
  }
} finally {
  await baseline.close();
}
// How the cost grows with n, per graph: each row against the smallest n of the run (from the rows above).
type Row = { n: number; graph: string; aggregatorMs: number; bfvAggregatorMs: number; memberMs: number; aggregatorStreams: number };
const rows = out as Row[];
if (rows.length > 1) {
  log('');
  log(`Growth with n (× the n = ${rows[0].n} row of the run; the sparse rows against the full graph at n = ${rows[0].n}):`);
  log('| n | graph | aggregator streams | aggregator CPU ms | × | BFV aggregator ms | × | member CPU ms | × |');
  log('|---|---|---|---|---|---|---|---|---|');
  const first = rows[0];
  for (const r of rows) {
    log(`| ${r.n} | ${r.graph} | ${r.aggregatorStreams} | ${r.aggregatorMs} | ${r3(r.aggregatorMs / first.aggregatorMs)}× | ${r.bfvAggregatorMs} | ${r3(r.bfvAggregatorMs / first.bfvAggregatorMs)}× | ${r.memberMs} | ${r3(r.memberMs / first.memberMs)}× |`);
  }
}
const load1 = loadavg();
log(`load average at end: ${fmtLoad(load1)}`);
if (args.json) console.log(JSON.stringify({ values: L, drop: DROP, repeat: REPEAT, loadavg: { start: load0.map(r3), end: load1.map(r3) }, bfv: { ...base, memberMs: bfvMember }, secagg: out }, null, 2));
