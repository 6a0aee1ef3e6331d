import { Protocols } from '@fedtwin/protocol';
import { defineFuzzSuite } from './helpers/fuzz.ts';

// Issue 11, item 8 (docs/fuzzing.md): mutated requests for every protocol against a BFV (secure aggregation)
// aggregator with its ledger, while round 2 is open after one published aggregate: garbage and resized
// ciphertexts, wrong round tags, replayed entries. With fuzz-plaintext.test.ts: 10,000 cases per protocol.
defineFuzzSuite({
  name: 'fuzz: BFV aggregator, round 2 open',
  bfv: true,
  phase: 'open',
  totalRounds: 3,
  seed: 0x5eed_0002,
  cases: {
    [Protocols.update]: 5000,
    [Protocols.join]: 5000,
    [Protocols.task]: 5000,
    [Protocols.aggregate]: 5000,
    [Protocols.refuse]: 5000,
    [Protocols.ledger]: 5000,
    [Protocols.cosign]: 5000,
    [Protocols.verdict]: 5000,
    [Protocols.probe]: 5000,
  },
});
