// temp probe (not committed): node bench/.ledger-verify-probe.ts DIR [reps] [threads]
import { verifyLedgerDir } from '@fedtwin/ledger';
const dir = process.argv[2];
const reps = Number(process.argv[3] ?? 3);
const threads = process.argv[4] ? Number(process.argv[4]) : undefined;
for (let r = 0; r < reps; r++) {
  const c0 = process.cpuUsage();
  const t = performance.now();
  const v = await verifyLedgerDir(dir, threads ? { threads } : {});
  const s = (performance.now() - t) / 1000;
  const c = process.cpuUsage(c0);
  const n = v.summary.entries;
  console.log(`${v.ok ? 'ok' : v.code} n=${n} wall ${s.toFixed(2)} s, cpu ${((c.user + c.system) / 1e6).toFixed(2)} s, ${(s * 1e6 / n).toFixed(1)} us/entry wall, ${((c.user + c.system) / n).toFixed(1)} cpu-us/entry`);
}
