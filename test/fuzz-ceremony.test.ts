import { Protocols } from '@fedtwin/protocol';
import { defineFuzzSuite } from './helpers/fuzz.ts';

// Issue 11, item 8 (docs/fuzzing.md): the HE key protocols of a BFV aggregator, fuzzed before the key is in
// force (the fuzzer is the key holder: a mutation that stays valid IS the ceremony) and then, once a case
// published it, against the key in force. 10,000 cases each; then the members fetch their sealed keys,
// finish the federation and the ledger verifies.
defineFuzzSuite({
  name: 'fuzz: BFV key ceremony',
  bfv: true,
  phase: 'ceremony',
  totalRounds: 2,
  seed: 0x5eed_0003,
  cases: {
    [Protocols.keyPublish]: 10000,
    [Protocols.key]: 10000,
  },
});
