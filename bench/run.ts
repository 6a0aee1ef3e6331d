// `npm run bench`: every benchmark, each printing its figure beside its baseline from the same run.
// Each runs in its own process so one's memory and JIT state do not colour another's figures.
// `npm run bench -- --only models,round` picks some.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('../packages/cli/src/bin.ts', import.meta.url));
const benches: Record<string, { what: string; args: string[] }> = {
  models: { what: 'VAE training samples/s: wasm with vs without the transposed-matmul fix, cpu for reference', args: [cli, 'bench', 'models'] },
  round: { what: 'round wall time split into local training vs everything else, 3 and 10 nodes, BFV vs plaintext', args: ['bench/round.ts'] },
  'round-1m': { what: 'round overhead with a ~1.1M-value model, 10 nodes, BFV and secagg vs plaintext, 3 interleaved triples (target ≤ 1.5×)', args: ['bench/round.ts', '--nodes', '10', '--hidden', '1000', '--epochs', '1', '--rounds', '6', '--repeat', '3', '--secure', 'all'] },
  he: { what: 'HE secure aggregation vs CKKS (NVIDIA FLARE defaults), 1M values x 10 updates', args: [cli, 'bench', 'he'] },
  secagg: { what: 'pairwise masking (SecAgg/SecAgg+) vs single-key BFV: bytes up, member and aggregator CPU, 1.1M values, 10/20/50 members', args: ['bench/secagg.ts'] },
  netns: { what: 'round time across hosts (network namespaces, 20 Mbit/s, 50 ms RTT) vs loopback, 3 hospitals, BFV + DP', args: ['bench/netns.ts'] },
  scale: { what: 'fedtwin sim with 10, 20 and 50 nodes on this machine: wall time and peak total RSS', args: ['bench/scale.ts'] },
  twin: { what: 'twin quality at ε = 8: default vs other generator vs DP off vs a DP Gaussian copula, 5 seeds, WDBC / Pima with missing cells / NCCTG lung', args: ['bench/twin.ts'] },
  'vae-calibration': { what: 'the DP-SGD VAE plain vs calibrated onto released 1-way counts at the same ε (in process, 3 seeds, WDBC / Pima with missing cells / NCCTG lung)', args: ['bench/vae-calibration.ts'] },
  ledger: { what: 'ledger appends/s batched vs single, proof reads vs log2 n, verify of 1M entries', args: ['bench/ledger.ts'] },
};
const { values } = parseArgs({ options: { only: { type: 'string' } } });
const pick = values.only ? values.only.split(',') : Object.keys(benches);
let failed = 0;
for (const name of pick) {
  const b = benches[name];
  if (!b) { console.error(`unknown benchmark "${name}"; choose from ${Object.keys(benches).join(', ')}`); process.exit(2); }
  console.log(`\n=== ${name}: ${b.what}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, b.args, { cwd: root, stdio: 'inherit' });
  console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s, exit ${r.status})`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
