import { defineFuzzSuite, roundProtocolCases } from './helpers/fuzz.ts';

// Issue 11, item 8 (docs/fuzzing.md): mutated requests for every protocol against a plaintext aggregator with
// its ledger, while round 2 is open after one published aggregate. With fuzz-bfv.test.ts this makes
// 10,000 cases per protocol; fuzz-ceremony.test.ts adds the key protocols before the key is in force.
defineFuzzSuite({
  name: 'fuzz: plaintext aggregator, round 2 open',
  bfv: false,
  phase: 'open',
  totalRounds: 3,
  seed: 0x5eed_0001,
  cases: roundProtocolCases(5000),
});
