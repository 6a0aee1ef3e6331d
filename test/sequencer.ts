// Runs the longest test files first, from durations measured on a CI run (test/durations.json), so the two
// workers finish together. Vitest's own order needs its results cache, which a fresh clone (CI) never has, and
// falls back to file size: a 60 s end-to-end file could then start last and run alone for a minute.
// Refresh the figures after a CI run: node scripts/test-durations.mjs .ci/vitest-results.json
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Seconds a file not in the table is assumed to take: most unit files take well under that. */
const UNKNOWN_SECONDS = 5;

function loadDurations(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(new URL('./durations.json', import.meta.url), 'utf8')) as Record<string, number>;
  } catch {
    return {}; // no table: every file ties and the order is vitest's
  }
}

export default class LongestFirstSequencer extends BaseSequencer {
  private readonly durations = loadDurations();

  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const ordered = await super.sort(files); // keeps vitest's order among equals (its cache, when it has one)
    const seconds = (f: TestSpecification) => this.durations[relative(f.project.config.root, f.moduleId).split('\\').join('/')] ?? UNKNOWN_SECONDS;
    return ordered.map((f, i) => ({ f, i, s: seconds(f) })).sort((a, b) => b.s - a.s || a.i - b.i).map((x) => x.f);
  }
}
