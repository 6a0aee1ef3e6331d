// The append-only log on Level.
//
// Layout (sublevels; every integer key is fixed-width big-endian so keys sort in index order):
//   e!<u64 index>                 -> entry envelope bytes (the leaf data)
//   n!<u64 last leaf><u8 level>   -> 32-byte hash of the perfect subtree of 2^level leaves ending at that leaf
//                                    (level 0 = the leaf hashes)
//   c!<u64 tree size>             -> checkpoint note (UTF-8), with every cosignature collected so far
//   k!<type>\0<u64 round><author>\0<u64 index> -> empty: every entry whose payload names a round, keyed by
//                                    (type, round, author), so "does X already have a contribution for round r"
//                                    is one short range read (findByKey); written in the append's batch
//   m!format | m!size | m!origin | m!checkpointKey | m!indexed (entries [0, indexed) are in k!)
// Keying nodes by their last leaf puts the nodes one append creates next to each other, so a full scan
// (verify) reads them in the same order it recomputes them. An append is one atomic, synced batch.
// Proofs and old roots read only perfect-subtree nodes: O(log n) point reads (see docs/ledger.md).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { FedtwinError } from '@fedtwin/errors';
import { readU64be, u64be, utf8, utf8Strict } from './bytes.ts';
import {
  consistencyProofRanges,
  foldNodes,
  inclusionProofRanges,
  perfectNodes,
  pushLeaf,
  rootOfRange,
  type HashedNode,
  type LeafRange,
  type PerfectNode,
} from './merkle.ts';
import { entrySignatureError, isVerifiedEntry, parseEntry, verifiedOrigin, verifyEntrySignatureAsync, type EntryType, type LedgerEntry } from './entry.ts';
import {
  formatVerifierKey,
  mergeNotes,
  parseCheckpoint,
  parseVerifierKey,
  signCheckpoint,
  verifyCheckpoint,
  type NoteSigner,
  type NoteVerifier,
} from './checkpoint.ts';

export const LEDGER_FORMAT = 'fedtwin-ledger/1';
/** Most entries one appendMany call (one batch) takes. */
export const MAX_BATCH_ENTRIES = 100_000;

type Bytes = Uint8Array;
type DB = Level<Bytes, Bytes>;
function makeSub(db: DB, name: string) {
  return db.sublevel<Bytes, Bytes>(name, { keyEncoding: 'view', valueEncoding: 'view' });
}
type Sub = ReturnType<typeof makeSub>;

export interface OpenLedgerInit {
  /** Level directory */
  dir: string;
  /** never write; the directory must already hold a ledger (Level still takes its lock) */
  readOnly?: boolean;
  /**
   * The log origin entry signatures are bound to (v2, docs/ledger.md §1); default: the origin recorded in
   * the ledger (set by its first commit, its first checkpoint or a replica); one contradicting it is refused.
   * Without either, only entry objects made or checked in this process, all for one origin, can be appended
   * (the first commit records it), and entry bytes cannot be checked (v1 entries, bound to no log, are refused).
   */
  origin?: string;
}

export interface AppendResult {
  index: number;
  leafHash: Uint8Array;
}

export interface StoredCheckpoint {
  size: number;
  note: string;
}

/** What an aggregator hands a replica: new entries, its latest checkpoint, and the proof linking them. */
export interface SyncBundle {
  /** envelope bytes of entries [fromSize, checkpoint size) */
  entries: Uint8Array[];
  checkpoint: string;
  /** consistency proof from fromSize to the checkpoint's size (empty when fromSize is 0 or equal) */
  consistencyProof: Uint8Array[];
}

export function nodeKey(n: PerfectNode): Uint8Array {
  const k = new Uint8Array(9);
  k.set(u64be((n.index + 1) * 2 ** n.level - 1), 0);
  k[8] = n.level;
  return k;
}

export function parseNodeKey(k: Uint8Array): PerfectNode {
  const last = readU64be(k, 0);
  const level = k[8];
  return { level, index: (last + 1) / 2 ** level - 1 };
}

function levelError(err: unknown, dir: string): FedtwinError {
  const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  if (e.cause?.code === 'LEVEL_LOCKED' || e.code === 'LEVEL_LOCKED') {
    return new FedtwinError('LEDGER_LOCKED', `ledger directory ${dir} is locked by another process (a running fedtwin daemon?)`, {
      hint: 'stop the daemon that owns it, or copy the directory and point --dir at the copy',
      cause: err,
    });
  }
  const msg = e.cause?.message ?? e.message ?? String(err);
  if (/does not exist/.test(msg)) {
    return new FedtwinError('LEDGER_NOT_FOUND', `no ledger at ${dir}`, { hint: 'check --dir; it must be the Level directory of a fedtwin ledger', cause: err });
  }
  return new FedtwinError('LEDGER_IO', `cannot open ledger at ${dir}: ${msg}`, { cause: err });
}

interface Internals {
  db: DB;
  entries: Sub;
  nodes: Sub;
  checkpoints: Sub;
  meta: Sub;
  /** (type, round, author) -> leaf index; see the layout above */
  byKey: Sub;
}

/** Prefix of the byKey rows of (type, round, author): the leaf indices follow it. */
function byKeyPrefix(type: string, round: number, author: string): Uint8Array {
  const t = utf8.encode(type);
  const a = utf8.encode(author);
  const k = new Uint8Array(t.length + 1 + 8 + a.length + 1);
  k.set(t, 0);
  k.set(u64be(round), t.length + 1);
  k.set(a, t.length + 9);
  return k;
}

/** The byKey row of an entry, or undefined for entries that name no round (membership, key). */
function byKeyRow(e: Pick<LedgerEntry, 'author' | 'payload'>, index: number): Uint8Array | undefined {
  const p = e.payload as { type: string; round?: unknown };
  if (typeof p.round !== 'number' || !Number.isSafeInteger(p.round) || p.round < 0) return undefined;
  const prefix = byKeyPrefix(p.type, p.round, e.author);
  const k = new Uint8Array(prefix.length + 8);
  k.set(prefix, 0);
  k.set(u64be(index), prefix.length);
  return k;
}
const EMPTY = new Uint8Array(0);
const INDEXED = utf8.encode('indexed');
const internalsOf = new WeakMap<Ledger, Internals>();

/** Raw sublevels, for the offline verifier in this package. Not part of the public API. */
export function ledgerInternals(l: Ledger): Internals {
  const i = internalsOf.get(l);
  if (!i) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'not an open ledger');
  return i;
}

export function openLedger(init: OpenLedgerInit): Promise<Ledger> {
  return openLedgerImpl(init, false);
}

/** Every entry's payload in a closed ledger directory, in log order (opened read-only, then closed). */
export async function readEntryPayloads(dir: string): Promise<Array<LedgerEntry['payload']>> {
  const ledger = await openLedger({ dir, readOnly: true });
  try {
    const out: Array<LedgerEntry['payload']> = [];
    for (let k = 0; k < ledger.size; k++) out.push((await ledger.getEntry(k)).payload);
    return out;
  } finally {
    await ledger.close();
  }
}

/** For the auditor: opens even when the stored right-border nodes are damaged (verify reports it precisely). */
export function openLedgerForAudit(dir: string): Promise<Ledger> {
  return openLedgerImpl({ dir, readOnly: true }, true);
}

async function openLedgerImpl(init: OpenLedgerInit, tolerateDamage: boolean): Promise<Ledger> {
  if (!init || typeof init.dir !== 'string' || init.dir.length === 0) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'openLedger needs { dir }');
  const readOnly = init.readOnly === true;
  // classic-level mkdirs the location even with createIfMissing: false; a reader must not leave a stray dir.
  if (readOnly && !existsSync(init.dir)) {
    throw new FedtwinError('LEDGER_NOT_FOUND', `no ledger at ${init.dir}`, { hint: 'check --dir; it must be the Level directory of a fedtwin ledger' });
  }
  // Owner-only: Level would create it 0777 & ~umask (0755 with the usual umask).
  if (!readOnly) await mkdir(init.dir, { recursive: true, mode: 0o700 });
  const db: DB = new Level<Bytes, Bytes>(init.dir, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: !readOnly });
  try {
    await db.open();
  } catch (err) {
    throw levelError(err, init.dir);
  }
  const i: Internals = { db, entries: makeSub(db, 'e'), nodes: makeSub(db, 'n'), checkpoints: makeSub(db, 'c'), meta: makeSub(db, 'm'), byKey: makeSub(db, 'k') };
  try {
    const format = await i.meta.get(utf8.encode('format'));
    if (format === undefined) {
      const any = await i.db.keys({ limit: 1 }).all();
      if (readOnly || any.length > 0) {
        throw new FedtwinError('LEDGER_NOT_A_LEDGER', `${init.dir} is not a fedtwin ledger (no format marker)`, { hint: 'point --dir at a ledger directory' });
      }
      await db.batch(
        [
          { type: 'put', sublevel: i.meta, key: utf8.encode('format'), value: utf8.encode(LEDGER_FORMAT) },
          { type: 'put', sublevel: i.meta, key: utf8.encode('size'), value: u64be(0) },
          { type: 'put', sublevel: i.meta, key: INDEXED, value: u64be(0) },
        ],
        { sync: true },
      );
    } else if (utf8Strict.decode(format) !== LEDGER_FORMAT) {
      throw new FedtwinError('LEDGER_NOT_A_LEDGER', `${init.dir} holds ledger format ${utf8Strict.decode(format)}, this code reads ${LEDGER_FORMAT}`);
    }
    const sizeBytes = await i.meta.get(utf8.encode('size'));
    const size = sizeBytes === undefined ? 0 : readU64be(sizeBytes);
    // Rebuild the compact range (the perfect subtrees covering [0, size)) from popcount(size) reads.
    const nodes = size === 0 ? [] : perfectNodes({ start: 0, end: size });
    const hashes = nodes.length ? await i.nodes.getMany(nodes.map(nodeKey)) : [];
    const damaged = hashes.some((h) => h === undefined || h.byteLength !== 32);
    const range: HashedNode[] = damaged && tolerateDamage ? [] : nodes.map((n, k) => {
      const h = hashes[k];
      if (h === undefined || h.byteLength !== 32) {
        throw new FedtwinError('LEDGER_CORRUPT', `ledger ${init.dir}: stored tree node (level ${n.level}, index ${n.index}) is missing`, {
          hint: 'run `fedtwin ledger verify` on a copy to locate the damage',
        });
      }
      return { ...n, hash: h };
    });
    const ledger = new Ledger(init.dir, readOnly, size, range);
    if (init.origin !== undefined) {
      const recorded = await i.meta.get(utf8.encode('origin'));
      if (recorded !== undefined && utf8Strict.decode(recorded) !== init.origin) {
        throw new FedtwinError('LEDGER_BAD_ARGUMENT', `ledger ${init.dir} belongs to the log origin ${utf8Strict.decode(recorded)}, not ${init.origin}`, {
          hint: 'entry signatures are bound to the log origin: open the ledger with its own origin (or none)',
        });
      }
      ledger.entryOrigin = init.origin;
    }
    internalsOf.set(ledger, i);
    // A ledger written before the byKey index existed (or by a build without it): index it now, once.
    const indexedBytes = await i.meta.get(INDEXED);
    const indexed = indexedBytes === undefined ? 0 : readU64be(indexedBytes);
    if (indexed < size && !readOnly) await buildByKey(i, indexed, size, init.dir);
    return ledger;
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

export class Ledger {
  readonly dir: string;
  readonly readOnly: boolean;
  /** node reads made by proofs and old roots (for measuring O(log n)) */
  readonly stats = { nodeReads: 0 };
  #size: number;
  #range: HashedNode[];
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** entries [0, #indexed) are in the byKey index (== size except on a read-only ledger written without it) */
  #indexed: number;
  /** read-only ledger with an incomplete index: the rows of the missing part, built in memory on first use */
  #memIndex: Promise<Map<string, number[]>> | undefined;

  /** Origin entry signatures are checked for (openLedger's `origin`); else the recorded origin. */
  entryOrigin: string | undefined;

  async #originForEntries(): Promise<string | undefined> {
    return this.entryOrigin ?? (await this.origin());
  }

  /** Use openLedger(). */
  constructor(dir: string, readOnly: boolean, size: number, range: HashedNode[]) {
    this.dir = dir;
    this.readOnly = readOnly;
    this.#size = size;
    this.#range = range;
    this.#indexed = readOnly ? -1 : size; // a read-only ledger learns its indexed size on first findByKey
  }

  get #i(): Internals {
    if (this.#closed) throw new FedtwinError('LEDGER_CLOSED', `ledger ${this.dir} is closed`);
    return ledgerInternals(this);
  }

  /** number of entries (leaves) */
  get size(): number {
    return this.#size;
  }

  /** root hash of the current tree, without reads */
  get rootHash(): Uint8Array {
    return rootOfRange(this.#range);
  }

  /** copy of the compact range (perfect subtrees covering [0, size)), for replicas building candidate roots */
  compactRange(): HashedNode[] {
    return this.#range.map((n) => ({ ...n }));
  }

  #writable(): void {
    if (this.readOnly) throw new FedtwinError('LEDGER_READ_ONLY', `ledger ${this.dir} was opened read-only`);
  }

  /** One writer: appends and checkpoint writes run strictly one after another. */
  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Appends one entry (object from createEntry/decodeEntry, or envelope bytes) in one synced batch. */
  async append(entry: LedgerEntry | Uint8Array): Promise<AppendResult> {
    const r = await this.appendMany([entry]);
    return { index: r.start, leafHash: r.leafHashes[0] };
  }

  /** Appends entries in order as ONE atomic synced batch: all or none survive a crash. */
  async appendMany(entries: readonly (LedgerEntry | Uint8Array)[]): Promise<{ start: number; count: number; leafHashes: Uint8Array[] }> {
    this.#writable();
    void this.#i;
    if (!Array.isArray(entries)) throw new FedtwinError('LEDGER_BAD_ARGUMENT', 'appendMany takes an array of entries');
    if (entries.length > MAX_BATCH_ENTRIES) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `at most ${MAX_BATCH_ENTRIES} entries per batch, got ${entries.length}`);
    // Verification starts now and runs in parallel; the queue slot is taken now too, so commits keep call order.
    const checked = this.#originForEntries().then((origin) => checkEntries(entries, origin));
    checked.catch(() => undefined);
    return this.#enqueue(async () => this.#commit(await checked, []));
  }

  /** Writes entries, their tree nodes, the new size and any extra operations in one synced batch. */
  async #commit(
    entries: readonly LedgerEntry[],
    extra: { sublevel: 'checkpoints' | 'meta'; key: Uint8Array; value: Uint8Array }[],
  ): Promise<{ start: number; count: number; leafHashes: Uint8Array[] }> {
    const i = this.#i;
    // The origin may have been set (by a checkpoint or an earlier commit) while this batch was being checked:
    // every entry must verify for the origin that holds now, in the writer queue.
    const recorded = await this.origin();
    const origin = this.entryOrigin ?? recorded;
    if (origin !== undefined) await Promise.all(entries.map((e, k) => recheckEntry(e, k, origin)));
    const start = this.#size;
    const range = this.compactRange();
    type Op = { type: 'put'; sublevel: Sub; key: Uint8Array; value: Uint8Array };
    const ops: Op[] = [];
    entries.forEach((e, k) => {
      const index = start + k;
      ops.push({ type: 'put', sublevel: i.entries, key: u64be(index), value: e.bytes });
      for (const n of pushLeaf(range, index, e.leafHash)) ops.push({ type: 'put', sublevel: i.nodes, key: nodeKey(n), value: n.hash });
      const row = byKeyRow(e, index);
      if (row) ops.push({ type: 'put', sublevel: i.byKey, key: row, value: EMPTY });
    });
    const size = start + entries.length;
    ops.push({ type: 'put', sublevel: i.meta, key: utf8.encode('size'), value: u64be(size) });
    if (this.#indexed === start) {
      ops.push({ type: 'put', sublevel: i.meta, key: INDEXED, value: u64be(size) });
    }
    for (const x of extra) ops.push({ type: 'put', sublevel: x.sublevel === 'checkpoints' ? i.checkpoints : i.meta, key: x.key, value: x.value });
    // A ledger with no recorded origin records the one its first entries were checked or signed for (all of a
    // batch share it, see checkEntries), so later appends, a reopen, signCheckpoint and `verify` hold it to that
    // origin: entries bound to another log cannot follow, and the checkpoints must be signed under that name.
    if (entries.length > 0 && recorded === undefined && !extra.some((x) => x.sublevel === 'meta' && utf8Strict.decode(x.key) === 'origin')) {
      const o = origin ?? verifiedOrigin(entries[0]);
      if (o !== undefined) ops.push({ type: 'put', sublevel: i.meta, key: utf8.encode('origin'), value: utf8.encode(o) });
    }
    await i.db.batch(ops, { sync: true });
    if (this.#indexed === start) this.#indexed = size;
    this.#size = size;
    this.#range = range;
    return { start, count: entries.length, leafHashes: entries.map((e) => e.leafHash) };
  }

  /** For the replica: appends verified entries and stores a checkpoint in the same batch. */
  async commitWithCheckpoint(entries: readonly LedgerEntry[], size: number, note: string): Promise<void> {
    this.#writable();
    const pending = this.#originForEntries().then((origin) => checkEntries(entries, origin));
    pending.catch(() => undefined);
    await this.#enqueue(async () => {
      const checked = await pending;
      if (this.#size + checked.length !== size) {
        throw new FedtwinError('LEDGER_INCONSISTENT', `ledger moved while syncing: have ${this.#size} + ${checked.length} entries, checkpoint is for ${size}`);
      }
      return this.#commit(checked, [{ sublevel: 'checkpoints', key: u64be(size), value: utf8.encode(note) }]);
    });
  }

  #checkIndex(index: number, size = this.#size, what = 'index'): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw new FedtwinError('LEDGER_BAD_ARGUMENT', `${what} ${String(index)} is out of range; the tree has ${size} entries`, {
        hint: size === 0 ? 'the ledger is empty' : `use an index from 0 to ${size - 1}`,
      });
    }
  }

  #checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.#size) {
      throw new FedtwinError('LEDGER_BAD_ARGUMENT', `tree size ${String(size)} is out of range; the ledger has ${this.#size} entries`);
    }
  }

  async getEntryBytes(index: number): Promise<Uint8Array> {
    this.#checkIndex(index);
    const v = await this.#i.entries.get(u64be(index));
    if (v === undefined) throw new FedtwinError('LEDGER_CORRUPT', `entry ${index} is missing from ${this.dir}`, { hint: 'run `fedtwin ledger verify`' });
    return v;
  }

  /** Entry at `index`, parsed and signature-checked. */
  async getEntry(index: number): Promise<LedgerEntry> {
    const e = parseEntry(await this.getEntryBytes(index));
    const origin = await this.#originForEntries();
    if (origin === undefined) throw noOriginError(this.dir);
    if (!(await verifyEntrySignatureAsync(e, origin))) throw entrySignatureError(e, origin);
    return e;
  }

  async #readNodes(nodes: readonly PerfectNode[]): Promise<Uint8Array[]> {
    if (nodes.length === 0) return [];
    this.stats.nodeReads += nodes.length;
    const got = await this.#i.nodes.getMany(nodes.map(nodeKey));
    return got.map((h, k) => {
      if (h === undefined || h.byteLength !== 32) {
        throw new FedtwinError('LEDGER_CORRUPT', `stored tree node (level ${nodes[k].level}, index ${nodes[k].index}) is missing in ${this.dir}`, {
          hint: 'run `fedtwin ledger verify`',
        });
      }
      return h;
    });
  }

  /** MTH of each range, reading at most log2(n) perfect nodes per range in one getMany. */
  async #hashRanges(ranges: readonly LeafRange[]): Promise<Uint8Array[]> {
    const parts = ranges.map((r) => perfectNodes(r));
    const flat = await this.#readNodes(parts.flat());
    let o = 0;
    return parts.map((p) => {
      const hs = flat.slice(o, o + p.length);
      o += p.length;
      return foldNodes(hs);
    });
  }

  async leafHash(index: number): Promise<Uint8Array> {
    this.#checkIndex(index);
    return (await this.#readNodes([{ level: 0, index }]))[0];
  }

  /** Root of the tree at `size` (default: now). */
  async root(size = this.#size): Promise<Uint8Array> {
    this.#checkSize(size);
    if (size === this.#size) return this.rootHash;
    if (size === 0) return foldNodes([]);
    return (await this.#hashRanges([{ start: 0, end: size }]))[0];
  }

  /** RFC 9162 inclusion proof for leaf `index` in the tree of `size` leaves. */
  async inclusionProof(index: number, size = this.#size): Promise<Uint8Array[]> {
    this.#checkSize(size);
    this.#checkIndex(index, size);
    return this.#hashRanges(inclusionProofRanges(index, size));
  }

  /** RFC 9162 consistency proof from `size1` to `size2` leaves; empty when size1 is 0 or equals size2. */
  async consistencyProof(size1: number, size2 = this.#size): Promise<Uint8Array[]> {
    this.#checkSize(size2);
    if (!Number.isSafeInteger(size1) || size1 < 0 || size1 > size2) {
      throw new FedtwinError('LEDGER_BAD_ARGUMENT', `no consistency proof from size ${String(size1)} to ${size2}`);
    }
    if (size1 === 0 || size1 === size2) return [];
    return this.#hashRanges(consistencyProofRanges(size1, size2));
  }

  /** Envelope bytes of entries [from, min(to, from + limit)). */
  async entriesSince(from: number, opts: { to?: number; limit?: number } = {}): Promise<Uint8Array[]> {
    const to = Math.min(opts.to ?? this.#size, from + (opts.limit ?? MAX_BATCH_ENTRIES));
    this.#checkSize(from);
    this.#checkSize(to);
    if (to <= from) return [];
    const rows = await this.#i.entries.values({ gte: u64be(from), lt: u64be(to) }).all();
    if (rows.length !== to - from) throw new FedtwinError('LEDGER_CORRUPT', `entries ${from}..${to - 1}: ${to - from - rows.length} missing in ${this.dir}`);
    return rows;
  }

  /** Streams [index, bytes] in index order. */
  async *iterateEntries(from = 0, to = this.#size): AsyncGenerator<{ index: number; bytes: Uint8Array }> {
    const it = this.#i.entries.iterator({ gte: u64be(from), lt: u64be(to) });
    try {
      for (;;) {
        const rows = await it.nextv(1000);
        if (rows.length === 0) return;
        for (const [k, v] of rows) yield { index: readU64be(k), bytes: v };
      }
    } finally {
      await it.close();
    }
  }

  // --- lookup by (type, round, author) ----------------------------------------------------------

  /**
   * Leaf indices (ascending) of the entries of `type` for `round` signed by `author`. Every entry type whose
   * payload names a round is indexed (round, contribution, aggregate, refusal, verdict, exclusion); the rows
   * are written in the append's own batch, so the index never disagrees with the log after a crash.
   * Waits for appends already queued. Read-only ledgers without a complete index scan the rest once.
   */
  async findAllByKey(type: EntryType, round: number, author: string): Promise<number[]> {
    if (!Number.isSafeInteger(round) || round < 0) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `round ${String(round)} is not a round number`);
    await this.#queue;
    const i = this.#i;
    const prefix = byKeyPrefix(type, round, author);
    const upper = prefix.slice();
    upper[upper.length - 1] = 1;
    const keys = await i.byKey.keys({ gte: prefix, lt: upper }).all();
    const out = keys.map((k) => readU64be(k, prefix.length)).filter((x) => x < this.#size);
    if (this.#indexed < 0) {
      const v = await i.meta.get(INDEXED);
      this.#indexed = v === undefined ? 0 : readU64be(v);
    }
    if (this.#indexed < this.#size) {
      this.#memIndex ??= this.#scanIndex(this.#indexed, this.#size);
      const extra = (await this.#memIndex).get(`${type}\0${round}\0${author}`) ?? [];
      for (const x of extra) if (!out.includes(x)) out.push(x);
      out.sort((a, b) => a - b);
    }
    return out;
  }

  /** First (lowest) leaf index of `type` for `round` by `author`, or undefined; see findAllByKey. */
  async findByKey(type: EntryType, round: number, author: string): Promise<number | undefined> {
    return (await this.findAllByKey(type, round, author))[0];
  }

  async #scanIndex(from: number, to: number): Promise<Map<string, number[]>> {
    const m = new Map<string, number[]>();
    for await (const { index, bytes } of this.iterateEntries(from, to)) {
      const e = parseEntry(bytes);
      const p = e.payload as { type: string; round?: unknown };
      if (typeof p.round !== 'number') continue;
      const k = `${p.type}\0${p.round}\0${e.author}`;
      m.set(k, [...(m.get(k) ?? []), index]);
    }
    return m;
  }

  // --- checkpoints -----------------------------------------------------------------------------

  /** C2SP verifier key of whoever signs this log's checkpoints (set by the first signCheckpoint or by a replica). */
  async checkpointKey(): Promise<string | undefined> {
    const v = await this.#i.meta.get(utf8.encode('checkpointKey'));
    return v === undefined ? undefined : utf8Strict.decode(v);
  }

  async origin(): Promise<string | undefined> {
    const v = await this.#i.meta.get(utf8.encode('origin'));
    return v === undefined ? undefined : utf8Strict.decode(v);
  }

  /** Pins origin and checkpoint key (a replica does this once, for its aggregator). */
  async setCheckpointIdentity(origin: string, vkey: string): Promise<void> {
    this.#writable();
    parseVerifierKey(vkey);
    await this.#enqueue(async () => {
      const [o, k] = [(await this.origin()) ?? this.entryOrigin, await this.checkpointKey()];
      if ((o !== undefined && o !== origin) || (k !== undefined && k !== vkey)) {
        throw new FedtwinError('LEDGER_BAD_ARGUMENT', `ledger ${this.dir} already belongs to origin ${o} with key ${k}`);
      }
      const i = this.#i;
      await i.db.batch(
        [
          { type: 'put', sublevel: i.meta, key: utf8.encode('origin'), value: utf8.encode(origin) },
          { type: 'put', sublevel: i.meta, key: utf8.encode('checkpointKey'), value: utf8.encode(vkey) },
        ],
        { sync: true },
      );
    });
  }

  /**
   * Signs a checkpoint of the current tree with the aggregator's key (key name = origin) and stores it.
   * Returns the stored note (with any cosignatures already collected for this size).
   */
  async signCheckpoint(signer: NoteSigner): Promise<string> {
    this.#writable();
    return this.#enqueue(async () => {
      const i = this.#i;
      const vkey = formatVerifierKey(signer);
      const [origin, pinned] = [(await this.origin()) ?? this.entryOrigin, await this.checkpointKey()];
      if (pinned !== undefined && pinned !== vkey) {
        throw new FedtwinError('LEDGER_BAD_ARGUMENT', `this ledger's checkpoints are signed by ${pinned}, not ${vkey}`, {
          hint: 'sign with the aggregator key the log started with',
        });
      }
      if (origin !== undefined && origin !== signer.name) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `signer name ${signer.name} is not the log origin ${origin}`);
      const size = this.#size;
      const existing = await i.checkpoints.get(u64be(size));
      if (existing !== undefined) return utf8Strict.decode(existing);
      const note = signCheckpoint({ origin: signer.name, size, rootHash: this.rootHash }, signer);
      await i.db.batch(
        [
          { type: 'put', sublevel: i.checkpoints, key: u64be(size), value: utf8.encode(note) },
          { type: 'put', sublevel: i.meta, key: utf8.encode('origin'), value: utf8.encode(signer.name) },
          { type: 'put', sublevel: i.meta, key: utf8.encode('checkpointKey'), value: utf8.encode(vkey) },
        ],
        { sync: true },
      );
      return note;
    });
  }

  /**
   * Merges the signature lines of `note` (e.g. a witness's cosigned copy) into the stored checkpoint of
   * the same size. The note must be over the same text and every known signature in it must verify.
   */
  async addCosignatures(note: string, verifiers: readonly NoteVerifier[]): Promise<string> {
    this.#writable();
    verifyCheckpoint(note, verifiers);
    const { checkpoint } = parseCheckpoint(note);
    return this.#enqueue(async () => {
      const i = this.#i;
      const stored = await i.checkpoints.get(u64be(checkpoint.size));
      if (stored === undefined) throw new FedtwinError('LEDGER_BAD_ARGUMENT', `no stored checkpoint for size ${checkpoint.size}`);
      const merged = mergeNotes(utf8Strict.decode(stored), note);
      await i.db.batch([{ type: 'put', sublevel: i.checkpoints, key: u64be(checkpoint.size), value: utf8.encode(merged) }], { sync: true });
      return merged;
    });
  }

  async checkpointAt(size: number): Promise<string | undefined> {
    const v = await this.#i.checkpoints.get(u64be(size));
    return v === undefined ? undefined : utf8Strict.decode(v);
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const rows = await this.#i.checkpoints.iterator({ reverse: true, limit: 1 }).all();
    if (rows.length === 0) return undefined;
    return { size: readU64be(rows[0][0]), note: utf8Strict.decode(rows[0][1]) };
  }

  async listCheckpoints(): Promise<StoredCheckpoint[]> {
    const rows = await this.#i.checkpoints.iterator().all();
    return rows.map(([k, v]) => ({ size: readU64be(k), note: utf8Strict.decode(v) }));
  }

  /** Aggregator side of a sync: entries after `fromSize`, the latest checkpoint, and the proof between. */
  async syncBundle(fromSize: number): Promise<SyncBundle> {
    const latest = await this.latestCheckpoint();
    if (!latest) throw new FedtwinError('LEDGER_NO_CHECKPOINT', `ledger ${this.dir} has no signed checkpoint yet`, { hint: 'sign one with signCheckpoint()' });
    if (!Number.isSafeInteger(fromSize) || fromSize < 0 || fromSize > latest.size) {
      throw new FedtwinError('LEDGER_BAD_ARGUMENT', `replica size ${String(fromSize)} is beyond the latest checkpoint (${latest.size})`);
    }
    const entries = await this.entriesSince(fromSize, { to: latest.size, limit: latest.size - fromSize });
    const consistencyProof = await this.consistencyProof(fromSize, latest.size);
    return { entries, checkpoint: latest.note, consistencyProof };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    const i = ledgerInternals(this);
    this.#closed = true;
    await i.db.close();
  }
}

/** Indexes entries [from, to) of a ledger that has none for them (written before the index existed). */
async function buildByKey(i: Internals, from: number, to: number, dir: string): Promise<void> {
  const step = 10_000;
  for (let start = from; start < to; start += step) {
    const end = Math.min(to, start + step);
    const rows = await i.entries.iterator({ gte: u64be(start), lt: u64be(end) }).all();
    if (rows.length !== end - start) {
      throw new FedtwinError('LEDGER_CORRUPT', `ledger ${dir}: entries ${start}..${end - 1} are not all present`, { hint: 'run `fedtwin ledger verify` on a copy to locate the damage' });
    }
    type Op = { type: 'put'; sublevel: Sub; key: Uint8Array; value: Uint8Array };
    const ops: Op[] = [];
    for (const [k, v] of rows) {
      let e: LedgerEntry;
      try {
        e = parseEntry(v);
      } catch (err) {
        throw new FedtwinError('LEDGER_CORRUPT', `ledger ${dir}: entry ${readU64be(k)} does not parse: ${(err as Error).message}`, { hint: 'run `fedtwin ledger verify` on a copy', cause: err });
      }
      const row = byKeyRow(e, readU64be(k));
      if (row) ops.push({ type: 'put', sublevel: i.byKey, key: row, value: EMPTY });
    }
    ops.push({ type: 'put', sublevel: i.meta, key: INDEXED, value: u64be(end) });
    await i.db.batch(ops, { sync: true });
  }
}

/** Parses and signature-checks (in parallel) entries that this process has not verified yet. */
async function checkEntries(entries: readonly (LedgerEntry | Uint8Array)[], origin: string | undefined): Promise<LedgerEntry[]> {
  if (origin === undefined) {
    // No origin to check against: only entries made or checked in this process (v2), all for one origin (the
    // first entry's, which #commit then records); bytes cannot be checked at all.
    const first = entries[0];
    const batchOrigin = first === undefined || first instanceof Uint8Array ? undefined : verifiedOrigin(first);
    return Promise.all(
      entries.map(async (x, k) => {
        if (x instanceof Uint8Array || verifiedOrigin(x) === undefined || batchOrigin === undefined) {
          const err = noOriginError();
          throw new FedtwinError(err.code, `entry ${k} of the batch: ${err.message}`, { hint: err.hint, details: { batchIndex: k } });
        }
        await recheckEntry(x, k, batchOrigin);
        return x;
      }),
    );
  }
  return Promise.all(
    entries.map(async (x, k) => {
      // An entry made or checked here for another origin is checked again for this one.
      const e = x instanceof Uint8Array ? parseEntry(x) : isVerifiedEntry(x, origin) ? x : parseEntry(x.bytes);
      if (!isVerifiedEntry(e, origin) && !(await verifyEntrySignatureAsync(e, origin))) {
        const err = entrySignatureError(e, origin);
        throw new FedtwinError(err.code, `entry ${k} of the batch: ${err.message}`, { hint: err.hint, details: { ...(err.details as object), batchIndex: k } });
      }
      return e;
    }),
  );
}

/** Checks (again) an entry made or checked here for `origin`, unless it already was for that origin. */
async function recheckEntry(e: LedgerEntry, k: number, origin: string): Promise<void> {
  if (isVerifiedEntry(e, origin)) return;
  // An entry made or checked here for another origin: checked again for this one (from its bytes).
  const again = parseEntry(e.bytes);
  if (await verifyEntrySignatureAsync(again, origin)) return;
  const err = entrySignatureError(again, origin);
  throw new FedtwinError(err.code, `entry ${k} of the batch: ${err.message}`, { hint: err.hint, details: { ...(err.details as object), batchIndex: k } });
}

function noOriginError(dir?: string): FedtwinError {
  return new FedtwinError('LEDGER_BAD_ARGUMENT', `the ledger${dir === undefined ? '' : ` ${dir}`} has no log origin yet (no checkpoint, opened without one), so entry signatures (v2, bound to the origin) cannot be checked`, {
    hint: 'open it with openLedger({ dir, origin }) (origin = fedtwin/<consortium>), or append entries made with createEntrySigner(key, origin)',
  });
}
