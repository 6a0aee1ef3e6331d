// Writes test/durations.json (seconds per test file, longest first) from a vitest JSON report, e.g. the one CI
// writes to .ci/vitest-results.json. test/sequencer.ts reads it to start the longest files first.
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

const report = process.argv[2];
if (!report) {
  console.error('usage: node scripts/test-durations.mjs <vitest-results.json>');
  process.exit(2);
}
const r = JSON.parse(readFileSync(report, 'utf8'));
const root = process.cwd();
const rows = r.testResults.map((t) => [relative(root, t.name), Math.round((t.endTime - t.startTime) / 100) / 10]);
rows.sort((a, b) => b[1] - a[1]);
writeFileSync(new URL('../test/durations.json', import.meta.url), JSON.stringify(Object.fromEntries(rows), null, 1) + '\n');
console.log(`test/durations.json: ${rows.length} files, ${rows.reduce((s, x) => s + x[1], 0).toFixed(0)} s in all`);
