// Round-time benchmark: `node bench/round.ts [--nodes 3,10] [--rounds 3] [--epochs 2]`
//
// Runs real federations (aggregator + N node processes on 127.0.0.1) and splits each aggregated
// round's wall time (open → aggregate) into local training (the slowest member's, since the round
// waits for it) and everything else (long-poll wake-up, catching up, encoding, transfer, checks,
// persistence, summing). Figures for several N come from the same run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SIM_OPTIONS, runSimulation } from '@fedtwin/sim';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3,10' },
    rounds: { type: 'string', default: '3' },
    epochs: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const rows: Array<Record<string, number>> = [];
for (const n of args.nodes.split(',').map(Number)) {
  const out = await mkdtemp(join(tmpdir(), 'fedtwin-bench-round-'));
  try {
    const { report } = await runSimulation({
      ...DEFAULT_SIM_OPTIONS, nodes: n, rounds: Number(args.rounds), epochs: Number(args.epochs), out, progress: 'none', alpha: 1,
    });
    const walls = report.timing.roundSeconds;
    const trains = report.timing.trainSecondsPerRound;
    const k = Math.min(walls.length, trains.length);
    const wall = mean(walls.slice(0, k));
    const train = mean(trains.slice(0, k));
    rows.push({ nodes: n, rounds: k, modelValues: report.training.modelValues, roundWallSeconds: wall, trainSeconds: train, otherSeconds: wall - train, otherShare: (wall - train) / wall });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
if (args.json) console.log(JSON.stringify(rows));
else {
  console.log('round time split (mean over aggregated rounds; training = slowest member of the round)');
  console.log('nodes  values  round wall s  local training s  everything else s  else/wall');
  for (const r of rows) {
    console.log(`${String(r.nodes).padStart(5)}  ${String(r.modelValues).padStart(6)}  ${r.roundWallSeconds!.toFixed(3).padStart(12)}  ${r.trainSeconds!.toFixed(3).padStart(16)}  ${r.otherSeconds!.toFixed(3).padStart(17)}  ${(100 * r.otherShare!).toFixed(1).padStart(8)}%`);
  }
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}
