import { defineFuzzSuite, roundProtocolCases } from './helpers/fuzz.ts';

// Issue 11, item 8 (docs/fuzzing.md): mutated requests for every protocol against a BFV (secure aggregation)
// aggregator with its ledger, while round 2 is open after one published aggregate: garbage and resized
// ciphertexts, wrong round tags, replayed entries. With fuzz-plaintext.test.ts: 10,000 cases per protocol.
defineFuzzSuite({
  name: 'fuzz: BFV aggregator, round 2 open',
  bfv: true,
  phase: 'open',
  totalRounds: 3,
  seed: 0x5eed_0002,
  cases: roundProtocolCases(5000),
});
