// Merkle math against published vectors and properties.
//
// Vector sources (facts copied, code not):
// - RFC 6962 / RFC 9162 hashing; the 8-leaf tree below is the reference tree used by
//   google/certificate-transparency (cpp/merkletree/merkle_tree_test.cc) and carried over verbatim into
//   transparency-dev/merkle proof/verify_test.go (commit 022f84cb1f2655a4399874cfa190c3f1d60b32a8:
//   `leaves`, `roots`, `inclusionProofs`, `consistencyProofs`) and rfc6962/rfc6962_test.go (hasher vectors).
// - transparency-dev/merkle testdata/inclusion/** and testdata/consistency/** probe files (happy paths and
//   mutated proofs with wantErr), bundled unchanged in ./vectors/transparency-dev-merkle.json with the
//   commit they came from.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isFedtwinError } from '@fedtwin/errors';
import {
  consistencyProof,
  emptyRoot,
  hashChildren,
  hashLeaf,
  inclusionProof,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
  pushLeaf,
  rootOfRange,
  type HashedNode,
} from '../src/merkle.ts';
import { fromHex, toHex } from '../src/bytes.ts';

const h = (s: string): Uint8Array => fromHex(s);
const enc = new TextEncoder();

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(h);
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
// [leaf (1-based as in the source), size, path]
const INCLUSION: [number, number, string[]][] = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [3, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [2, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];

const leafHashes = LEAVES.map(hashLeaf);

describe('RFC 6962 hasher vectors (transparency-dev rfc6962_test.go)', () => {
  it('empty root, empty leaf, leaf and node hashes', () => {
    expect(toHex(emptyRoot())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(hashLeaf(new Uint8Array()))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(toHex(hashLeaf(enc.encode('L123456')))).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56');
    expect(toHex(hashChildren(enc.encode('N123'), enc.encode('N456')))).toBe('aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb');
  });
});

describe('reference 8-leaf tree (certificate-transparency / transparency-dev)', () => {
  it('roots for sizes 1..8', () => {
    for (let n = 1; n <= 8; n++) expect(toHex(rootFromLeafHashes(leafHashes, n))).toBe(ROOTS[n - 1]);
    expect(toHex(rootFromLeafHashes(leafHashes, 0))).toBe(toHex(emptyRoot()));
  });

  it('incremental compact range gives the same roots', () => {
    const range: HashedNode[] = [];
    leafHashes.forEach((lh, i) => {
      pushLeaf(range, i, lh);
      expect(toHex(rootOfRange(range))).toBe(ROOTS[i]);
    });
  });

  it('inclusion proofs match and verify', () => {
    for (const [leaf, size, path] of INCLUSION) {
      expect(inclusionProof(leafHashes, leaf - 1, size).map(toHex)).toEqual(path);
      verifyInclusion(leaf - 1, size, leafHashes[leaf - 1], path.map(h), h(ROOTS[size - 1]));
    }
  });

  it('consistency proofs match and verify', () => {
    for (const [s1, s2, path] of CONSISTENCY) {
      expect(consistencyProof(leafHashes, s1, s2).map(toHex)).toEqual(path);
      verifyConsistency(s1, s2, path.map(h), h(ROOTS[s1 - 1]), h(ROOTS[s2 - 1]));
    }
  });

  it('a wrong root names both roots in the error', () => {
    const [leaf, size, path] = INCLUSION[1];
    try {
      verifyInclusion(leaf - 1, size, leafHashes[leaf - 1], path.map(h), h(ROOTS[6]));
      expect.unreachable();
    } catch (e) {
      expect(isFedtwinError(e, 'LEDGER_PROOF_INVALID')).toBe(true);
      const details = (e as { details: Record<string, unknown> }).details;
      expect(details.expectedRoot).toBe(ROOTS[6]);
      expect(details.calculatedRoot).toBe(ROOTS[7]);
      expect((e as Error).message).toContain(ROOTS[6]);
    }
    try {
      verifyConsistency(6, 8, CONSISTENCY[2][2].map(h), h(ROOTS[5]), h(ROOTS[6]));
      expect.unreachable();
    } catch (e) {
      expect(isFedtwinError(e, 'LEDGER_PROOF_INVALID')).toBe(true);
      const details = (e as { details: Record<string, unknown> }).details;
      expect(details).toMatchObject({ size1: 6, size2: 8, expectedRoot: ROOTS[6], calculatedRoot: ROOTS[7] });
    }
  });
});

interface Probe {
  file: string;
  desc: string;
  wantErr: boolean;
  proof: string[] | null;
}
interface InclusionProbe extends Probe {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
}
interface ConsistencyProbe extends Probe {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
}
const vectors = JSON.parse(readFileSync(new URL('./vectors/transparency-dev-merkle.json', import.meta.url), 'utf8')) as {
  inclusion: InclusionProbe[];
  consistency: ConsistencyProbe[];
};
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

describe('transparency-dev/merkle testdata probes', () => {
  it('has the bundled probes', () => {
    expect(vectors.inclusion.length).toBeGreaterThan(90);
    expect(vectors.consistency.length).toBeGreaterThan(90);
  });

  it.each(vectors.inclusion.map((p) => [p.file, p] as const))('inclusion %s', (_f, p) => {
    const run = (): void => verifyInclusion(p.leafIdx, p.treeSize, b64(p.leafHash), (p.proof ?? []).map(b64), b64(p.root));
    if (p.wantErr) expect(run).toThrow(expect.objectContaining({ code: 'LEDGER_PROOF_INVALID' }));
    else expect(run).not.toThrow();
  });

  it.each(vectors.consistency.map((p) => [p.file, p] as const))('consistency %s', (_f, p) => {
    const run = (): void => verifyConsistency(p.size1, p.size2, (p.proof ?? []).map(b64), b64(p.root1), b64(p.root2));
    if (p.wantErr) expect(run).toThrow(expect.objectContaining({ code: 'LEDGER_PROOF_INVALID' }));
    else expect(run).not.toThrow();
  });
});

describe('properties', () => {
  const leavesArb = fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 70 }).map((ls) => ls.map(hashLeaf));

  it('every inclusion proof verifies; flipping any bit of any hash or changing the index fails', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), fc.nat(), (lh, a, b, bit) => {
        const size = 1 + (a % lh.length);
        const index = b % size;
        const root = rootFromLeafHashes(lh, size);
        const proof = inclusionProof(lh, index, size);
        verifyInclusion(index, size, lh[index], proof, root);
        const bad = (f: () => void): void => expect(f).toThrow(expect.objectContaining({ code: 'LEDGER_PROOF_INVALID' }));
        // tamper with the leaf, the root, or one proof hash
        const flip = (x: Uint8Array): Uint8Array => {
          const y = Uint8Array.from(x);
          y[(bit >> 3) % 32] ^= 1 << (bit & 7);
          return y;
        };
        bad(() => verifyInclusion(index, size, flip(lh[index]), proof, root));
        bad(() => verifyInclusion(index, size, lh[index], proof, flip(root)));
        if (proof.length > 0) {
          const j = bit % proof.length;
          bad(() => verifyInclusion(index, size, lh[index], proof.map((p, k) => (k === j ? flip(p) : p)), root));
          bad(() => verifyInclusion(index, size, lh[index], proof.slice(1), root));
        }
        // another index: fails unless that leaf happens to have the same hash and the same path shape
        const other = (index + 1 + (bit % size)) % size;
        if (other !== index && toHex(lh[other]) !== toHex(lh[index])) bad(() => verifyInclusion(other, size, lh[index], proof, root));
      }),
      { numRuns: 300 },
    );
  });

  it('every consistency proof verifies; tampering fails', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), fc.nat(), (lh, a, b, bit) => {
        const size2 = 1 + (a % lh.length);
        const size1 = 1 + (b % size2);
        const r1 = rootFromLeafHashes(lh, size1);
        const r2 = rootFromLeafHashes(lh, size2);
        const proof = consistencyProof(lh, size1, size2);
        verifyConsistency(size1, size2, proof, r1, r2);
        const flip = (x: Uint8Array): Uint8Array => {
          const y = Uint8Array.from(x);
          y[(bit >> 3) % 32] ^= 1 << (bit & 7);
          return y;
        };
        const bad = (f: () => void): void => expect(f).toThrow(expect.objectContaining({ code: 'LEDGER_PROOF_INVALID' }));
        bad(() => verifyConsistency(size1, size2, proof, flip(r1), r2));
        bad(() => verifyConsistency(size1, size2, proof, r1, flip(r2)));
        if (proof.length > 0) {
          const j = bit % proof.length;
          bad(() => verifyConsistency(size1, size2, proof.map((p, k) => (k === j ? flip(p) : p)), r1, r2));
          bad(() => verifyConsistency(size1, size2, proof.slice(1), r1, r2));
        }
      }),
      { numRuns: 300 },
    );
  });
});
