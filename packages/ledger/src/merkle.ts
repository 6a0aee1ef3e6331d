// RFC 9162 §2.1 Merkle tree math (the RFC 6962 hash): pure functions, no I/O.
//
// Leaf hash  = SHA-256(0x00 || data); node hash = SHA-256(0x01 || left || right).
// MTH(D[n]) splits at k, the largest power of two strictly smaller than n.
// Proof *generation* is expressed as a list of leaf ranges whose MTH forms the proof, so the same plan
// serves the in-memory functions here and the Level store (which answers a range from O(log n)
// stored perfect-subtree nodes). Verification follows the RFC's loop (§2.1.3.2, §2.1.4.2) and fails
// with a FedtwinError that carries the expected and the calculated root.
import { createHash, hash as oneShotHash } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';
import { bytesEqual, toHex } from './bytes.ts';

export const HASH_SIZE = 32;

export function hashLeaf(data: Uint8Array): Uint8Array {
  // One-shot hashing of a single buffer is ~3x faster than createHash().update().update().digest() here.
  const b = Buffer.allocUnsafe(data.byteLength + 1);
  b[0] = 0x00;
  b.set(data, 1);
  return oneShotHash('sha256', b, 'buffer');
}

export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  const b = Buffer.allocUnsafe(1 + left.byteLength + right.byteLength);
  b[0] = 0x01;
  b.set(left, 1);
  b.set(right, 1 + left.byteLength);
  return oneShotHash('sha256', b, 'buffer');
}

/** MTH({}) = SHA-256 of the empty string. */
export function emptyRoot(): Uint8Array {
  return createHash('sha256').digest();
}


// ---------------------------------------------------------------------------------------------
// Integer helpers that stay exact up to 2^53 (JS bit operators are 32-bit).

export function bitLength(x: number): number {
  let n = 0;
  while (x >= 0x1_0000_0000) {
    x = Math.floor(x / 0x1_0000_0000);
    n += 32;
  }
  return n + (32 - Math.clz32(x));
}

/** k: the largest power of two with k < n (n >= 2), the RFC's split point. */
export function splitPoint(n: number): number {
  return 2 ** (bitLength(n - 1) - 1);
}

function assertSize(n: number, what: string, code = 'LEDGER_BAD_ARGUMENT'): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new FedtwinError(code, `${what} must be a non-negative integer, got ${String(n)}`);
}

// ---------------------------------------------------------------------------------------------
// Proof plans: which leaf ranges [start, end) a proof consists of, bottom (leaf level) first.

/** A contiguous leaf range [start, end). Every range in a proof plan is RFC-aligned. */
export interface LeafRange {
  start: number;
  end: number;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[n]) as ranges. Requires 0 <= index < size. */
export function inclusionProofRanges(index: number, size: number): LeafRange[] {
  assertSize(index, 'index');
  assertSize(size, 'tree size');
  if (index >= size) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `leaf index ${index} is not in a tree of size ${size}`);
  const topDown: LeafRange[] = [];
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      topDown.push({ start: start + k, end: start + n });
      n = k;
    } else {
      topDown.push({ start, end: start + k });
      start += k;
      m -= k;
      n -= k;
    }
  }
  return topDown.reverse();
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]) as ranges. Requires 0 < size1 <= size2. */
export function consistencyProofRanges(size1: number, size2: number): LeafRange[] {
  assertSize(size1, 'first tree size');
  assertSize(size2, 'second tree size');
  if (size1 === 0 || size1 > size2) {
    throw new FedtwinError('LEDGER_BAD_ARGUMENT', `no consistency proof from size ${size1} to size ${size2}; need 0 < size1 <= size2`);
  }
  const topDown: LeafRange[] = [];
  let start = 0;
  let m = size1;
  let n = size2;
  let startsAtRoot = true; // the RFC's flag b: the old root is known to the verifier, so omit it
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      topDown.push({ start: start + k, end: start + n });
      n = k;
    } else {
      topDown.push({ start, end: start + k });
      start += k;
      m -= k;
      n -= k;
      startsAtRoot = false;
    }
  }
  if (!startsAtRoot) topDown.push({ start, end: start + m });
  return topDown.reverse();
}

/** A perfect subtree: 2^level leaves starting at leaf index * 2^level. */
export interface PerfectNode {
  level: number;
  index: number;
}

/**
 * Splits an aligned range into perfect subtrees, largest (leftmost) first. MTH of the range is the
 * right fold of their hashes (see `foldNodes`), so a range costs at most log2(n) stored nodes.
 */
export function perfectNodes(range: LeafRange): PerfectNode[] {
  const out: PerfectNode[] = [];
  let s = range.start;
  let len = range.end - range.start;
  while (len > 0) {
    const level = bitLength(len) - 1;
    const width = 2 ** level;
    if (s % width !== 0) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `range [${range.start}, ${range.end}) is not aligned to the tree`);
    out.push({ level, index: s / width });
    s += width;
    len -= width;
  }
  return out;
}

/** Hash of a range from its perfect subtrees, left to right: H(n0, H(n1, ... H(nk-1, nk))). */
export function foldNodes(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return emptyRoot();
  let h = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) h = hashChildren(hashes[i], h);
  return h;
}

// ---------------------------------------------------------------------------------------------
// In-memory generation over an array of leaf hashes (tests, replicas computing a candidate root).

/** MTH(D[start:end]) by the RFC's recursion. */
export function subtreeHash(leafHashes: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 0) return emptyRoot();
  if (n === 1) return leafHashes[start];
  const k = splitPoint(n);
  return hashChildren(subtreeHash(leafHashes, start, start + k), subtreeHash(leafHashes, start + k, end));
}

export function rootFromLeafHashes(leafHashes: readonly Uint8Array[], size = leafHashes.length): Uint8Array {
  assertSize(size, 'tree size');
  if (size > leafHashes.length) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `tree size ${size} exceeds the ${leafHashes.length} leaves given`);
  return subtreeHash(leafHashes, 0, size);
}

export function inclusionProof(leafHashes: readonly Uint8Array[], index: number, size = leafHashes.length): Uint8Array[] {
  if (size > leafHashes.length) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `tree size ${size} exceeds the ${leafHashes.length} leaves given`);
  return inclusionProofRanges(index, size).map((r) => subtreeHash(leafHashes, r.start, r.end));
}

export function consistencyProof(leafHashes: readonly Uint8Array[], size1: number, size2 = leafHashes.length): Uint8Array[] {
  if (size2 > leafHashes.length) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `tree size ${size2} exceeds the ${leafHashes.length} leaves given`);
  if (size1 === size2 && size1 > 0) return [];
  return consistencyProofRanges(size1, size2).map((r) => subtreeHash(leafHashes, r.start, r.end));
}

// ---------------------------------------------------------------------------------------------
// Verification.

function proofError(message: string, details: Record<string, unknown>): FedtwinError {
  return new FedtwinError('LEDGER_PROOF_INVALID', message, {
    hint: 'the proof, the root or the sizes do not belong together; fetch a fresh proof from the log and treat a repeat as misbehaviour',
    details,
  });
}

function rootMismatch(what: string, expected: Uint8Array, calculated: Uint8Array, details: Record<string, unknown>): FedtwinError {
  return proofError(`${what}: calculated root ${toHex(calculated)} does not match expected root ${toHex(expected)}`, {
    ...details,
    expectedRoot: toHex(expected),
    calculatedRoot: toHex(calculated),
  });
}

function checkHashes(proof: readonly Uint8Array[], what: string, details: Record<string, unknown>): void {
  proof.forEach((h, i) => {
    if (!(h instanceof Uint8Array) || h.byteLength !== HASH_SIZE) {
      throw proofError(`${what}: proof hash ${i} has ${h instanceof Uint8Array ? h.byteLength : 'no'} bytes, expected ${HASH_SIZE}`, details);
    }
  });
}

/**
 * Root implied by an inclusion proof for `leafHash` at `index` in a tree of `size` leaves (RFC 9162 §2.1.3.2).
 * Invariant: fn/sn track the node's and the last node's positions on each level; sn reaches 0 exactly at the root.
 */
export function rootFromInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  const what = `inclusion proof for leaf ${index} in tree of size ${size}`;
  const details = { index, size };
  assertSize(index, 'index', 'LEDGER_PROOF_INVALID');
  assertSize(size, 'tree size', 'LEDGER_PROOF_INVALID');
  if (index >= size) throw proofError(`${what}: index is beyond the tree (${index} >= ${size})`, details);
  if (!(leafHash instanceof Uint8Array) || leafHash.byteLength !== HASH_SIZE) {
    throw proofError(`${what}: leaf hash has ${leafHash?.byteLength ?? 0} bytes, expected ${HASH_SIZE}`, details);
  }
  const want = inclusionProofRanges(index, size).length;
  if (proof.length !== want) throw proofError(`${what}: proof has ${proof.length} hashes, expected ${want}`, { ...details, proofLength: proof.length, expectedLength: want });
  checkHashes(proof, what, details);
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw proofError(`${what}: proof is longer than the path to the root`, details);
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      // Skip the levels where this node is the lone last node (it is promoted, not hashed).
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofError(`${what}: proof is shorter than the path to the root`, details);
  return r;
}

/** Throws LEDGER_PROOF_INVALID (with expectedRoot and calculatedRoot) unless the proof is valid. */
export function verifyInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  const calculated = rootFromInclusionProof(index, size, leafHash, proof);
  if (!bytesEqual(calculated, root)) throw rootMismatch(`inclusion proof for leaf ${index} in tree of size ${size}`, root, calculated, { index, size });
}

/**
 * Root of the tree of `size2` leaves implied by a consistency proof from (size1, root1) (RFC 9162 §2.1.4.2).
 * Invariant: fr rebuilds the old root and sr the new one from the same path; both must come out right.
 */
export function rootFromConsistencyProof(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array): Uint8Array {
  const what = `consistency proof from size ${size1} to size ${size2}`;
  const details = { size1, size2 };
  assertSize(size1, 'first tree size', 'LEDGER_PROOF_INVALID');
  assertSize(size2, 'second tree size', 'LEDGER_PROOF_INVALID');
  if (size2 < size1) throw proofError(`${what}: the second tree is smaller than the first`, details);
  if (size1 === 0) throw proofError(`${what}: a consistency proof from the empty tree proves nothing`, details);
  if (size1 === size2) {
    if (proof.length !== 0) throw proofError(`${what}: sizes are equal but the proof is not empty`, details);
    return root1;
  }
  const want = consistencyProofRanges(size1, size2).length;
  if (proof.length !== want) throw proofError(`${what}: proof has ${proof.length} hashes, expected ${want}`, { ...details, proofLength: proof.length, expectedLength: want });
  checkHashes(proof, what, details);
  // When size1 is a power of two the old root is itself a node on the path, so the RFC prepends it.
  const path = size1 === 2 ** (bitLength(size1) - 1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (let i = 1; i < path.length; i++) {
    const c = path[i];
    if (sn === 0) throw proofError(`${what}: proof is longer than the path to the root`, details);
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofError(`${what}: proof is shorter than the path to the root`, details);
  if (!bytesEqual(fr, root1)) throw rootMismatch(`${what} (old root)`, root1, fr, { ...details, which: 'first' });
  return sr;
}

/** Throws LEDGER_PROOF_INVALID (with both sizes, expectedRoot and calculatedRoot) unless consistent. */
export function verifyConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  const calculated = rootFromConsistencyProof(size1, size2, proof, root1);
  if (!bytesEqual(calculated, root2)) {
    throw rootMismatch(`consistency proof from size ${size1} to size ${size2} (new root)`, root2, calculated, { size1, size2, which: 'second' });
  }
}

// ---------------------------------------------------------------------------------------------
// Compact range: the perfect subtrees covering [0, size), used to append and to get the root in O(1) reads.

/** A perfect subtree with its hash. */
export interface HashedNode extends PerfectNode {
  hash: Uint8Array;
}

/**
 * Appends a leaf hash to a compact range (mutates `range`) and returns every perfect node the append
 * completed, leaf first; a node is complete when its last leaf arrives, so each is created once.
 */
export function pushLeaf(range: HashedNode[], leafIndex: number, leafHash: Uint8Array): HashedNode[] {
  let node: HashedNode = { level: 0, index: leafIndex, hash: leafHash };
  const created = [node];
  while (range.length > 0 && range[range.length - 1].level === node.level) {
    const left = range.pop() as HashedNode;
    node = { level: node.level + 1, index: left.index / 2, hash: hashChildren(left.hash, node.hash) };
    created.push(node);
  }
  range.push(node);
  return created;
}

export function rootOfRange(range: readonly HashedNode[]): Uint8Array {
  return foldNodes(range.map((n) => n.hash));
}
