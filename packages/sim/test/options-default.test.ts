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

describe('the report\'s random forest', () => {
  it('defaults to the forest\'s own tree count, and a bad --forest-trees is refused before anything runs', async () => {
    const { DEFAULT_FOREST_TREES } = await import('@fedtwin/models');
    expect(DEFAULT_SIM_OPTIONS.forestTrees).toBe(DEFAULT_FOREST_TREES);
    for (const forestTrees of [0, 1.5, 1001]) {
      const err = await runSimulation({ ...DEFAULT_SIM_OPTIONS, forestTrees, out: '/nonexistent/never-written', progress: 'none' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SIM_BAD_ARGUMENT' });
      expect(String((err as Error).message)).toMatch(/forest-trees/);
    }
  });
});
