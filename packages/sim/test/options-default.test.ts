import { describe, expect, it } from 'vitest';
import { DEFAULT_SECURE_AGGREGATION_SCHEME } from '@fedtwin/consortium';
import { DEFAULT_SIM_OPTIONS } from '../src/options.ts';
import { runSimulation } from '../src/index.ts';

// The sim (and `consortium init`, packages/cli/test/consortium-cli.test.ts) default to the one scheme
// @fedtwin/consortium names: pairwise masking (issue 16).
describe('the default secure aggregation', () => {
  it('is the consortium package\'s default, secagg', () => {
    expect(DEFAULT_SECURE_AGGREGATION_SCHEME).toBe('secagg');
    expect(DEFAULT_SIM_OPTIONS.secureAggregation).toBe(DEFAULT_SECURE_AGGREGATION_SCHEME);
  });

  it('a single node under the default is refused up front with a way out (masking needs two members)', async () => {
    const err = await runSimulation({ ...DEFAULT_SIM_OPTIONS, nodes: 1, out: '/nonexistent/never-written', progress: 'none' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SIM_BAD_ARGUMENT' });
    expect(String((err as Error).message)).toMatch(/--nodes 1: .*at least 2 members/);
    expect(String((err as { hint?: string }).hint)).toMatch(/--aggregation bfv/);
  });
});
