import { describe, expect, it } from 'vitest';
import { DEFAULT_SECURE_AGGREGATION_SCHEME } from '@fedtwin/consortium';
import { DEFAULT_SIM_OPTIONS } from '../src/options.ts';

// The sim (and `consortium init`, packages/cli/test/consortium-cli.test.ts) default to the one scheme
// @fedtwin/consortium names: pairwise masking (issue 16).
describe('the default secure aggregation', () => {
  it('is the consortium package\'s default, secagg', () => {
    expect(DEFAULT_SECURE_AGGREGATION_SCHEME).toBe('secagg');
    expect(DEFAULT_SIM_OPTIONS.secureAggregation).toBe(DEFAULT_SECURE_AGGREGATION_SCHEME);
  });
});
