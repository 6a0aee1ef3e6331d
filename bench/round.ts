// Round-time benchmark: `node bench/round.ts [--nodes 3,10] [--rounds 3] [--epochs 2] [--hidden 64] [--secure both|all|bfv|secagg|plaintext] [--max-participants M] [--repeat K]`
//
// Runs real federations (aggregator + N node processes on 127.0.0.1) and splits each aggregated
// round's wall time (open → aggregate) into local training (the slowest member's, since the round
// waits for it) and everything else (long-poll wake-up, catching up, encryption, transfer, checks,
// persistence, summing, ledger). With --secure both, BFV and plaintext aggregation run in the same
// invocation and the non-training times are printed side by side with their ratio; --secure all adds secagg
// (pairwise masking) to the same invocation, each secure scheme's ratio taken against plaintext.
// --hidden 1000 gives a ~1.1M-value shared model (the DESIGN §5 round-overhead case).
// --warmup W (default 1) leaves the first W aggregated rounds out of the means: round 1 also carries
// one-time costs (the HE key ceremony, worker JIT warm-up); every round's split is printed either way.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SIM_OPTIONS, runSimulation } from '@fedtwin/sim';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3,10' },
    rounds: { type: 'string', default: '3' },
    epochs: { type: 'string', default: '2' },
    hidden: { type: 'string', default: '64' },
    secure: { type: 'string', default: 'both' },
    warmup: { type: 'string', default: '1' },
    // Interleaved repetitions (bfv, plaintext, bfv, …): the machine's speed drifts between runs, so the
    // ratio is taken per adjacent pair and the median of the pairs is reported.
    repeat: { type: 'string', default: '1' },
    // BFV's headroom: the largest consortium the parameters allow (bytes per value grow with its log)
    'max-participants': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
type Scheme = 'bfv' | 'secagg' | 'plaintext';
const schemes: readonly Scheme[] = args.secure === 'both' ? ['bfv', 'plaintext'] : args.secure === 'all' ? ['bfv', 'secagg', 'plaintext'] : [args.secure as Scheme];
if (!schemes.every((x) => ['bfv', 'secagg', 'plaintext'].includes(x))) {
  console.error('--secure must be both, all, bfv, secagg or plaintext');
  process.exit(2);
}
interface Row { rep: number; nodes: number; scheme: string; rounds: number; modelValues: number; bytesPerValue: number; roundWallSeconds: number; trainSeconds: number; otherSeconds: number; perRound: { wall: number; train: number }[]; cpu: CpuSplit | null }
/** Mean CPU seconds per round after the warm-up, from the daemons' logs: members' training, members' everything else, the aggregator. */
interface CpuSplit { membersTrain: number; membersOther: number; aggregator: number; phases: Record<string, number> }
const warmup = Number(args.warmup);
if (!Number.isInteger(warmup) || warmup < 0 || warmup >= Number(args.rounds)) {
  console.error('--warmup must be an integer in [0, rounds)');
  process.exit(2);
}
const repeat = Number(args.repeat);
if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50) {
  console.error('--repeat must be an integer in [1, 50]');
  process.exit(2);
}
const rows: Row[] = [];
for (let rep = 1; rep <= repeat; rep++) for (const n of args.nodes.split(',').map(Number)) {
  for (const scheme of schemes) {
    const out = await mkdtemp(join(tmpdir(), 'fedtwin-bench-round-'));
    try {
      const { report } = await runSimulation({
        ...DEFAULT_SIM_OPTIONS, generator: 'vae', nodes: n, rounds: Number(args.rounds), epochs: Number(args.epochs), hidden: Number(args.hidden),
        out, progress: 'none', alpha: 1, dp: 'off', secureAggregation: scheme,
        ...(args['max-participants'] !== undefined ? { heMaxParticipants: Number(args['max-participants']) } : {}),
      });
      const walls = report.timing.roundSeconds;
      const trains = report.timing.trainSecondsPerRound;
      const k = Math.min(walls.length, trains.length);
      const wall = mean(walls.slice(warmup, k));
      const train = mean(trains.slice(warmup, k));
      const perRound = walls.slice(0, k).map((w, i) => ({ wall: w, train: trains[i] }));
      const cpu = await cpuFromLogs(out, warmup);
      rows.push({ rep, nodes: n, scheme, rounds: k - warmup, modelValues: report.training.modelValues, bytesPerValue: report.secureAggregation.bytesPerValue, roundWallSeconds: wall, trainSeconds: train, otherSeconds: wall - train, perRound, cpu });
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
}
if (args.json) console.log(JSON.stringify(rows));
else {
  console.log(`round time split (mean over aggregated rounds after ${warmup} warm-up round(s); training = slowest member of the round)`);
  console.log('nodes  scheme     values   B/value  round wall s  local training s  everything else s');
  for (const r of rows) {
    console.log(`${repeat > 1 ? `#${r.rep} ` : ''}${String(r.nodes).padStart(5)}  ${r.scheme.padEnd(9)}  ${String(r.modelValues).padStart(7)}  ${r.bytesPerValue.toFixed(2).padStart(7)}  ${r.roundWallSeconds.toFixed(3).padStart(12)}  ${r.trainSeconds.toFixed(3).padStart(16)}  ${r.otherSeconds.toFixed(3).padStart(17)}`);
  }
  for (const r of rows) {
    console.log(`  ${r.nodes} nodes ${r.scheme}: per round (wall / training / else) ${r.perRound.map((p, i) => `${i + 1}: ${p.wall.toFixed(2)} / ${p.train.toFixed(2)} / ${(p.wall - p.train).toFixed(2)}${i < warmup ? ' (warm-up)' : ''}`).join(', ')}`);
  }
  console.log('CPU seconds per round (mean after warm-up, from the daemons\' logs; on a machine whose cores all members share, wall ≈ total / cores)');
  for (const r of rows) {
    if (r.cpu) console.log(`  ${r.nodes} nodes ${r.scheme.padEnd(9)}: members training ${r.cpu.membersTrain.toFixed(1)}, members other ${r.cpu.membersOther.toFixed(1)}, aggregator ${r.cpu.aggregator.toFixed(1)}, total ${(r.cpu.membersTrain + r.cpu.membersOther + r.cpu.aggregator).toFixed(1)}`);
  }
  console.log('member phases, ms per member per round, wall and CPU (process-wide, HE workers included; mean after warm-up; catch-up = download + decode + save of the previous aggregate)');
  for (const r of rows) {
    if (r.cpu) console.log(`  ${r.nodes} nodes ${r.scheme.padEnd(9)}: ${Object.entries(r.cpu.phases).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v.toFixed(0)}`).join(', ')}`);
  }
  for (const n of new Set(rows.map((r) => r.nodes))) for (const secure of ['bfv', 'secagg'] as const) {
    const name = secure === 'bfv' ? 'BFV' : 'secagg';
    const other: number[] = [];
    const whole: number[] = [];
    for (let rep = 1; rep <= repeat; rep++) {
      const b = rows.find((r) => r.rep === rep && r.nodes === n && r.scheme === secure);
      const p = rows.find((r) => r.rep === rep && r.nodes === n && r.scheme === 'plaintext');
      if (!b || !p) continue;
      other.push(b.otherSeconds / p.otherSeconds);
      whole.push(b.roundWallSeconds / p.roundWallSeconds);
      const tag = repeat > 1 ? ` (pair ${rep})` : '';
      console.log(`${n} nodes${tag}: non-training time ${name} / plaintext = ${(b.otherSeconds / p.otherSeconds).toFixed(2)}× (target ≤ 1.5×); whole round ${(b.roundWallSeconds / p.roundWallSeconds).toFixed(2)}×`);
      if (b.cpu && p.cpu) console.log(`${n} nodes${tag}: non-training CPU (members other + aggregator) ${name} / plaintext = ${((b.cpu.membersOther + b.cpu.aggregator) / (p.cpu.membersOther + p.cpu.aggregator)).toFixed(2)}×`);
    }
    if (other.length > 1) {
      console.log(`${n} nodes: median over ${other.length} interleaved pairs: non-training time ${name} / plaintext = ${median(other).toFixed(2)}× (target ≤ 1.5×; pairs ${other.map((x) => x.toFixed(2)).join(', ')}); whole round ${median(whole).toFixed(2)}×`);
    }
  }
}

/** Reads the per-round CPU the node ('contributed': phases.cpuMs, phases.trainCpuMs) and aggregator ('round-aggregated': cpuMs) log. */
async function cpuFromLogs(out: string, skip: number): Promise<CpuSplit | null> {
  const events = async (file: string): Promise<Record<string, unknown>[]> => {
    const text = await readFile(file, 'utf8').catch(() => '');
    return text.split('\n').flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });
  };
  const train = new Map<number, number>(), other = new Map<number, number>(), agg = new Map<number, number>();
  // wall ms of each member-side phase, summed over members and rounds after the warm-up
  const phaseSums: Record<string, number> = {};
  let phaseRounds = 0;
  const addPhase = (k: string, v: unknown) => { if (typeof v === 'number') phaseSums[k] = (phaseSums[k] ?? 0) + v; };
  for (const d of await readdir(join(out, 'nodes')).catch(() => [] as string[])) {
    for (const e of await events(join(out, 'nodes', d, 'node.log'))) {
      if (e.event === 'global-updated' && Number(e.version) > skip) {
        for (const k of ['downloadMs', 'decodeMs', 'saveMs']) {
          addPhase(k, e[k]);
          addPhase(`${k.replace(/Ms$/, '')}CpuMs`, (e.cpu as Record<string, unknown> | undefined)?.[k]);
        }
      }
      if (e.event === 'contributed' && Number(e.round) > skip) {
        phaseRounds++;
        for (const k of ['catchUpMs', 'encodeMs', 'maskWaitMs', 'persistMs', 'uploadMs', 'encodeCpuMs', 'persistCpuMs', 'uploadCpuMs']) addPhase(k, (e.phases as Record<string, unknown> | undefined)?.[k]);
      }
      const ph = e.phases as { cpuMs?: number; trainCpuMs?: number } | undefined;
      if (e.event !== 'contributed' || ph?.cpuMs === undefined || ph.trainCpuMs === undefined) continue;
      const r = Number(e.round);
      train.set(r, (train.get(r) ?? 0) + ph.trainCpuMs / 1000);
      other.set(r, (other.get(r) ?? 0) + (ph.cpuMs - ph.trainCpuMs) / 1000);
    }
  }
  for (const e of await events(join(out, 'aggregator', 'aggregator.log'))) {
    if (e.event === 'round-aggregated' && typeof e.cpuMs === 'number') agg.set(Number(e.round), e.cpuMs / 1000);
  }
  const rounds = [...agg.keys()].filter((r) => r > skip && train.has(r));
  if (rounds.length === 0) return null;
  const m = (map: Map<number, number>) => mean(rounds.map((r) => map.get(r) ?? 0));
  const phases = Object.fromEntries(Object.entries(phaseSums).map(([k, v]) => [k, v / Math.max(1, phaseRounds)]));
  return { membersTrain: m(train), membersOther: m(other), aggregator: m(agg), phases };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}
