// Scale on one box (issue 15 item 5): `fedtwin sim --nodes N` for N = 10, 20, 50 (or --nodes a,b,c), each a
// real federation of N + 1 processes on this machine. Prints wall time and the peak total RSS of the run's
// processes (sampled every 500 ms from /proc: every process whose command line names the run's directory).
//   node bench/scale.ts [--nodes 10,20,50] [--rounds 5]
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const cli = fileURLToPath(new URL('../packages/cli/src/bin.ts', import.meta.url));
const { values } = parseArgs({ options: { nodes: { type: 'string', default: '10,20,50' }, rounds: { type: 'string', default: '5' } } });

/** Total RSS (bytes) and count of the processes whose command line contains `marker`. */
async function rssOf(marker: string): Promise<{ bytes: number; processes: number }> {
  let bytes = 0;
  let processes = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      if (!cmd.includes(marker)) continue;
      const kb = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
      if (kb) { bytes += Number(kb[1]) * 1024; processes++; }
    } catch {
      // gone meanwhile
    }
  }
  return { bytes, processes };
}

console.log('nodes  wall s  peak RSS total  processes  per process  TSTR federated');
for (const n of values.nodes.split(',').map(Number)) {
  const out = await mkdtemp(join(tmpdir(), `fedtwin-scale-${n}-`));
  let peak = { bytes: 0, processes: 0 };
  const sampler = setInterval(() => { void rssOf(out).then((r) => { if (r.bytes > peak.bytes) peak = r; }); }, 500);
  const t0 = performance.now();
  const child = spawn(process.execPath, [cli, 'sim', '--nodes', String(n), '--rounds', values.rounds, '--out', out, '--progress', 'none', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  const wall = (performance.now() - t0) / 1000;
  const tstr = code === 0 ? (JSON.parse(stdout.trim().split('\n').at(-1)!) as { utility: { tstrAuc: { federated: number } } }).utility.tstrAuc.federated.toFixed(3) : `exit ${code}`;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  console.log(`${String(n).padStart(5)}  ${wall.toFixed(0).padStart(6)}  ${gb(peak.bytes).padStart(14)}  ${String(peak.processes).padStart(9)}  ${`${(peak.bytes / Math.max(1, peak.processes) / 2 ** 20).toFixed(0)} MiB`.padStart(11)}  ${tstr}`);
  await rm(out, { recursive: true, force: true });
}
