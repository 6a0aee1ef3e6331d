import { access, mkdir, open, readFile, readdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { bytesToF32, f32ToBytes, type SecureAggregation } from '@fedtwin/protocol';
import type { Logger } from './types.ts';
import { openRoundClaims, type RoundClaims } from './round-claims.ts';

/** The round an update belongs to: under HE it names the round's common mask (he.roundTag). */
export interface RoundRef {
  round: number;
  /** Hash of the global model the round trains from. */
  baseHash: string;
  /** The round's HE key id (undefined: the member's current key). */
  keyId?: string;
}

/** How this member encodes its update and reads the published sum. */
export interface MemberScheme {
  readonly encoding: 'f32le' | 'bfv' | 'secagg';
  readonly keyId?: string;
  sumBytes(values: number): number;
  /** `seed` (simulations only) makes HE's stochastic rounding reproducible. */
  /** Int32Array: whole quanta, encrypted as they are (BFV) or sent as float32 (plaintext, exact below 2^24). */
  encode(values: Float32Array | Int32Array, round: RoundRef, seed?: readonly [number, number]): Promise<Uint8Array>;
  /** Offline work for this round's update (HE: the encryption masks), run while training. */
  prepare?(values: number, round: RoundRef): Promise<void>;
  /**
   * Offline work for this round's sum (HE: its decryption masks), run once the update is encrypted: while it
   * uploads and waits for the others, off the path from training to upload.
   */
  prepareSum?(values: number, round: RoundRef): Promise<void>;
  /**
   * False if this member has already encrypted an update for this round (under HE, a second one would share
   * the round's mask with the first; the node sits the round out).
   */
  canContribute?(round: RoundRef): Promise<boolean>;
  /** How long the last encode() waited for this round's offline phase to finish (ms; 0 if it was done). */
  readonly lastMaskWaitMs?: number;
  /**
   * Reads the published sum of the updates of `participants` (member peer ids). With `round`, the sum must carry
   * that round's tag (keyId, round, base). NODE_BAD_AGGREGATE: a contribution made the sum undecryptable (a
   * member's fault: reported with a verdict); NODE_AGGREGATE_REFUSED: the sum is not what the aggregator says it
   * is (another round's tag, another participant table, another shape: the aggregator's fault).
   */
  decode(sum: Uint8Array, values: number, agg: { keyId?: string; participants: readonly string[]; round?: RoundRef }): Promise<Float64Array>;
  close(): Promise<void>;
}

export function plaintextMember(): MemberScheme {
  return {
    encoding: 'f32le',
    sumBytes: (n) => n * 4,
    encode: async (v) => f32ToBytes(v instanceof Int32Array ? Float32Array.from(v) : v),
    decode: async (sum, n) => {
      if (sum.length !== n * 4) throw new FedtwinError('NODE_BAD_AGGREGATE', `aggregate has ${sum.length} bytes, expected ${n * 4}`);
      return Float64Array.from(bytesToF32(sum));
    },
    close: async () => undefined,
  };
}

/** The masking round a secagg member is in: its protocol state after sharing and the shares relayed to it. */
export interface SecaggRoundState {
  round: number;
  state: import('@fedtwin/secagg').MemberState;
  inbox: import('@fedtwin/secagg').EncryptedShare[];
}

/** A secagg member's scheme: encode() masks with the round set by the secagg phases (phases/secagg.ts). */
export interface SecaggMemberScheme extends MemberScheme {
  readonly encoding: 'secagg';
  /** Quantization: value · scale, clipped to ±clip (the manifest's clip), 16 bits like BFV. */
  readonly scale: number;
  current: SecaggRoundState | undefined;
}

/**
 * Pairwise masking (docs/he.md §9): the update is quantized as BFV's (16 bits over ±clip; integer counts as they
 * are), then masked in Z_{2^32} (4 bytes per value). The published sum is the exact integer sum of the inputs.
 */
export async function secaggMember(config: Extract<SecureAggregation, { scheme: 'secagg' }>): Promise<SecaggMemberScheme> {
  const he = await import('@fedtwin/he');
  const sa = await import('@fedtwin/secagg');
  const bound = sa.DEFAULT_VALUE_BOUND;
  const scale = bound / config.clip;
  const scheme: SecaggMemberScheme = {
    encoding: 'secagg',
    scale,
    current: undefined,
    sumBytes: (n) => n * 4,
    async encode(values, round, seed) {
      const cur = scheme.current;
      if (!cur || cur.round !== round.round || cur.state.phase !== 'shared') {
        throw new FedtwinError('NODE_SECAGG_NOT_READY', `round ${round.round}: no shared masking keys for this round`, { hint: 'internal: the secagg phases run before the update is encoded' });
      }
      // Integer counts go as they are (their Skellam share is part of x before masking); floats are quantized.
      const x = values instanceof Int32Array ? values : he.quantize(values, { scale, clip: config.clip, ...(seed ? { seed } : {}) }).values;
      const { state, masked } = sa.maskInput(cur.state, cur.inbox, x);
      scheme.current = { ...cur, state };
      const out = new Uint8Array(masked.values.length * 4);
      const view = new DataView(out.buffer);
      for (let i = 0; i < masked.values.length; i++) view.setUint32(i * 4, masked.values[i]!, true);
      return out;
    },
    async decode(sum, n, agg) {
      if (sum.length !== n * 4) throw new FedtwinError('NODE_AGGREGATE_REFUSED', `the aggregate has ${sum.length} bytes, expected ${n * 4}`, { hint: 'the aggregator published something else than the round\'s sum' });
      const view = new DataView(sum.buffer, sum.byteOffset, sum.byteLength);
      const limit = agg.participants.length * bound;
      const out = new Float64Array(n);
      let outside = 0;
      for (let i = 0; i < n; i++) {
        const v = view.getInt32(i * 4, true);
        if (v > limit || v < -limit) outside++;
        out[i] = v / scale;
      }
      // An exact sum of |x| ≤ bound inputs never leaves ±participants·bound: garbage in some input (or the unmasking) did.
      if (outside) throw new FedtwinError('NODE_BAD_AGGREGATE', `${outside} values of the unmasked sum lie outside ±${limit} (${agg.participants.length} inputs of at most ±${bound})`);
      return out;
    },
    close: async () => undefined,
  };
  return scheme;
}

export interface KeyCeremonyIo {
  /** Long-polls the aggregator for this member's sealed key. */
  fetchKey(): Promise<{ status: 'pending' } | { status: 'ready'; keyId: string; epoch: number; sealed: unknown }>;
  /** The key holder publishes one sealed box per other member. */
  publish(keyId: string, epoch: number, boxes: unknown[]): Promise<void>;
}

/**
 * BFV member: encryption and decryption run in worker threads (both cores of a site's machine by default). The consortium's HE
 * secret key comes from the key ceremony: the key holder generates it and seals a copy for each
 * member (only that member can open it); everyone keeps it in a 0600 file beside its state.
 */
export async function bfvMember(init: {
  config: Extract<SecureAggregation, { scheme: 'bfv' }>;
  announcedKeyId: string | undefined;
  identity: PrivateKey;
  peerId: string;
  keyFile: string;
  io: KeyCeremonyIo;
  logger: Logger;
  giveUpMs: number;
  /** HE worker threads. */
  threads: number;
}): Promise<MemberScheme> {
  const he = await import('@fedtwin/he');
  const pool = await he.createHePool({ threads: init.threads, params: init.config.params });
  try {
    // A keyring: rounds name the key they use, and a rotation applies from the next round, so
    // a member may need the previous key to decrypt an aggregate while already using the new one.
    const keyring = new Map<string, HeKey>();
    const keyDir = join(dirname(init.keyFile), 'he-keys');
    const epochs = await openKeyEpochs(join(keyDir, KEY_EPOCHS_FILE));
    let current = await obtainKey(he, pool.ctx, init, epochs);
    keyring.set(current.keyId, current);
    for (const f of await readdir(keyDir).catch(() => [] as string[])) {
      if (!f.endsWith('.key')) continue;
      const k = await he.loadSecretKeyFile(join(keyDir, f));
      keyring.set(k.keyId, k);
    }
    // prepare() and encode() may both ask for a rotated key: one fetch serves both.
    const fetching = new Map<string, Promise<HeKey>>();
    const keyFor = (keyId: string | undefined): Promise<HeKey> => {
      if (keyId === undefined) return Promise.resolve(current);
      const have = keyring.get(keyId);
      if (have) return Promise.resolve(have);
      let p = fetching.get(keyId);
      if (!p) {
        p = fetchRotated(keyId).finally(() => fetching.delete(keyId));
        fetching.set(keyId, p);
      }
      return p;
    };
    const fetchRotated = async (keyId: string): Promise<HeKey> => {
      // A rotation: fetch this member's sealed copy of the new key.
      const until = Date.now() + init.giveUpMs;
      for (;;) {
        const r = await init.io.fetchKey();
        if (r.status === 'ready' && r.keyId === keyId && r.sealed) {
          // Only the configured key holder's signature is accepted, for rotations as for the first key.
          const opened = he.openSealedKey({ sealed: r.sealed, recipientKey: init.identity, expectedHolder: init.config.keyHolder, expectedKeyId: keyId });
          // A box the holder really signed, but for an epoch this member has moved past: an aggregator replaying
          // a retired key (one a removed member may hold) for a new round. Refused before anything is saved.
          await epochs.accept(opened.keyId, opened.epoch);
          await mkdir(keyDir, { recursive: true });
          await he.saveSecretKeyFile(join(keyDir, `${keyId}.key`), opened.key);
          await he.saveSecretKeyFile(init.keyFile, opened.key);
          keyring.set(keyId, opened.key);
          current = opened.key;
          init.logger.info({ event: 'he-key-rotated', keyId, epoch: opened.epoch }, `received rotated HE key ${keyId.slice(0, 16)}… (epoch ${opened.epoch})`);
          return opened.key;
        }
        if (Date.now() > until) throw new FedtwinError('NODE_KEY_MISSING', `no sealed copy of HE key ${keyId} for this member`, { hint: 'the key holder must seal the rotated key for every member' });
        await new Promise((res) => setTimeout(res, 1000));
      }
    };
    init.logger.info({ event: 'he-ready', keyId: current.keyId, threads: pool.threads }, `secure aggregation: BFV, key ${current.keyId.slice(0, 16)}…`);
    // Round tags this member has encrypted under, per key, beside the key files (they outlive a wiped state).
    const claims = new Map<string, RoundClaims>();
    const claimsFor = async (keyId: string): Promise<RoundClaims> => {
      let c = claims.get(keyId);
      if (!c) {
        await mkdir(keyDir, { recursive: true });
        c = await openRoundClaims(join(keyDir, `${keyId}.rounds`));
        claims.set(keyId, c);
      }
      return c;
    };
    // The offline phase of the round being trained, so encode() can tell how long it waited for it.
    let preparing: Promise<unknown> = Promise.resolve();
    let maskWaitMs = 0;
    const tagOf = (k: HeKey, round: RoundRef) => he.roundTag({ keyId: k.keyId, round: round.round, baseHash: round.baseHash });
    /** The key a round's update is encrypted under: only the highest epoch accepted (older keys only decrypt). */
    const encryptionKey = async (round: RoundRef): Promise<HeKey> => {
      const k = await keyFor(round.keyId);
      if (k.keyId !== current.keyId) {
        const highest = epochs.highest;
        throw new FedtwinError('NODE_KEY_REPLAYED', `round ${round.round} names HE key ${k.keyId.slice(0, 16)}… (epoch ${epochs.epochOf(k.keyId) ?? 'unknown'}), but this member encrypts only under the newest key it accepted, ${current.keyId.slice(0, 16)}… (epoch ${highest?.epoch ?? 'unknown'})`, {
          hint: 'the aggregator opened a round under a retired key; keep this member\'s logs as evidence and alert the consortium',
          details: { roundKeyId: k.keyId, roundEpoch: epochs.epochOf(k.keyId) ?? null, acceptedKeyId: current.keyId, acceptedEpoch: highest?.epoch ?? null },
        });
      }
      return k;
    };
    const hexOf = (tag: Uint8Array) => Buffer.from(tag).toString('hex');
    return {
      encoding: 'bfv',
      get keyId() { return current.keyId; },
      get lastMaskWaitMs() { return maskWaitMs; },
      sumBytes: (n) => he.updateSize(pool.ctx, he.KIND_SUM_COMPACT, n),
      async canContribute(round) {
        const key = await encryptionKey(round);
        return !(await claimsFor(key.keyId)).has(hexOf(tagOf(key, round)));
      },
      async encode(values, round, seed) {
        const key = await encryptionKey(round);
        const tag = tagOf(key, round);
        const roundClaims = await claimsFor(key.keyId);
        if (roundClaims.has(hexOf(tag))) {
          throw new FedtwinError('NODE_ROUND_ALREADY_ENCRYPTED', `this member already encrypted an update for round ${round.round} under key ${key.keyId.slice(0, 16)}…`, {
            hint: 'a second update under the round\'s mask would reveal the difference of the two; the member sits this round out',
          });
        }
        // The workers run the offline phase first anyway (one queue each): waiting here only measures it.
        const tWait = performance.now();
        await preparing.catch(() => undefined);
        maskWaitMs = Math.round(performance.now() - tWait);
        const r = await pool.encrypt(key, values, { member: init.peerId, tag, ...(seed ? { seed } : {}) });
        // Durable before the ciphertext can leave (the caller persists and sends it after this returns).
        await roundClaims.claim(hexOf(tag));
        if (r.clipped > 0) {
          init.logger.warn({ event: 'he-clipped', clipped: r.clipped, values: values.length }, `${r.clipped} update values were outside the HE quantization range and were clipped; raise secureAggregation.clip`);
        }
        return r.update;
      },
      prepare(n, round) {
        // Post the work now, synchronously: the caller starts training right after, and local training
        // does not yield to the event loop until an epoch ends, so an await here would defer the whole
        // offline phase past training.
        const go = (k: HeKey) => pool.prepare(k, n, { member: init.peerId, tag: tagOf(k, round) });
        const have = round.keyId === undefined || round.keyId === current.keyId ? current : undefined;
        const ready = have ? go(have) : encryptionKey(round).then(go);
        preparing = ready;
        return ready.then(() => undefined);
      },
      async prepareSum(n, round) {
        // After encrypt(): every chunk of this member's update is used, so only the part of the decryption
        // masks that does not depend on the participants' nonces is made (the round's expanded a's); the
        // products a·Σ s_i(nonce_i) are computed when the sum and its participant table arrive.
        const k = await keyFor(round.keyId);
        await pool.prepare(k, n, { member: init.peerId, tag: tagOf(k, round), sum: true });
      },
      async decode(sum, n, agg) {
        const key = await keyFor(agg.keyId);
        const refused = (why: string, cause?: unknown) => new FedtwinError('NODE_AGGREGATE_REFUSED', `the aggregate is not the sum it claims to be: ${why}`, {
          hint: 'the aggregator published something else than the round\'s sum; this member keeps the evidence and stops', cause,
        });
        if (agg.round) {
          let tag: Uint8Array;
          try {
            tag = he.readUpdateHeader(pool.ctx, sum).tag;
          } catch (err) {
            throw refused(`its header does not parse: ${(err as Error).message}`, err);
          }
          if (!Buffer.from(tag).equals(Buffer.from(tagOf(key, agg.round)))) throw refused(`it carries another round's tag than round ${agg.round.round} on this member's base`);
        }
        try {
          return await pool.decrypt(key, sum, agg.participants, n);
        } catch (err) {
          // Only a value out of range can come from a member (a garbage contribution); the rest is the aggregator's doing.
          if (isFedtwinError(err) && err.code !== 'HE_DECRYPT_FAILED') throw refused((err as Error).message, err);
          throw new FedtwinError('NODE_BAD_AGGREGATE', `cannot decrypt the aggregate: ${(err as Error).message}`, { cause: err });
        }
      },
      close: () => pool.close(),
    };
  } catch (err) {
    await pool.close();
    throw err;
  }
}

type He = typeof import('@fedtwin/he');
type HeKey = Awaited<ReturnType<He['loadSecretKeyFile']>>;

async function obtainKey(he: He, ctx: Parameters<He['generateKeys']>[0], init: Parameters<typeof bfvMember>[0], epochs: KeyEpochs): Promise<HeKey> {
  const holder = init.config.keyHolder;
  const haveFile = await access(init.keyFile).then(() => true, () => false);
  if (haveFile) {
    const key = await he.loadSecretKeyFile(init.keyFile);
    if (init.announcedKeyId === undefined || key.keyId === init.announcedKeyId) {
      const h = epochs.highest;
      if (h && key.keyId !== h.keyId && epochs.epochOf(key.keyId) !== undefined) {
        // The key file holds a key older than one this member accepted (restored from a backup): never encrypt under it.
        throw replayed(key.keyId, epochs.epochOf(key.keyId), h);
      }
      if (init.announcedKeyId === undefined && init.peerId === holder) {
        if (!h) await epochs.accept(key.keyId, 0);
        await publish(he, key, init);
      } else if (init.announcedKeyId !== undefined && (h ? key.keyId !== h.keyId : init.peerId !== holder)) {
        // A key of unknown epoch: written by `fedtwin keys rotate` on the holder's machine, or kept from a
        // version without the epochs file. Its sealed box carries the epoch under the holder's signature.
        await recordEpochOfCurrent(he, key, init, epochs, h !== undefined);
      }
      return key;
    }
    init.logger.warn({ event: 'he-key-stale', have: key.keyId, announced: init.announcedKeyId }, 'the consortium uses another HE key; fetching it');
  }
  if (init.peerId === holder) {
    if (init.announcedKeyId !== undefined) {
      throw new FedtwinError('NODE_KEY_LOST', `this member is the key holder but does not have the announced key ${init.announcedKeyId}`, { hint: `restore ${init.keyFile} from backup (rotation needs the old key to finish open rounds)` });
    }
    const key = he.generateKeys(ctx);
    if (epochs.highest) throw new FedtwinError('NODE_KEY_LOST', `this member is the key holder, has accepted key epoch ${epochs.highest.epoch}, but has no key file`, { hint: `restore ${init.keyFile} from backup` });
    await epochs.accept(key.keyId, 0);
    await he.saveSecretKeyFile(init.keyFile, key);
    init.logger.info({ event: 'he-key-generated', keyId: key.keyId }, `generated the consortium HE key ${key.keyId.slice(0, 16)}… (key holder)`);
    await publish(he, key, init);
    return key;
  }
  const until = Date.now() + init.giveUpMs;
  for (;;) {
    const r = await init.io.fetchKey();
    if (r.status === 'ready') {
      if (r.sealed === null || r.sealed === undefined) throw new FedtwinError('NODE_KEY_MISSING', 'the aggregator holds no sealed key for this member', { hint: 'the key holder must re-publish the key after this member was admitted' });
      const opened = he.openSealedKey({ sealed: r.sealed, recipientKey: init.identity, expectedHolder: holder, expectedKeyId: r.keyId });
      await epochs.accept(opened.keyId, opened.epoch);
      await he.saveSecretKeyFile(init.keyFile, opened.key);
      init.logger.info({ event: 'he-key-received', keyId: opened.keyId, epoch: opened.epoch }, `received the consortium HE key ${opened.keyId.slice(0, 16)}… from the key holder`);
      return opened.key;
    }
    if (Date.now() > until) throw new FedtwinError('NODE_KEY_TIMEOUT', 'the key holder has not published the HE key', { hint: `start the key holder's node (${holder})` });
    init.logger.info({ event: 'he-key-waiting' }, 'waiting for the key holder to publish the HE key');
  }
}

async function publish(he: He, key: HeKey, init: Parameters<typeof bfvMember>[0]): Promise<void> {
  const bytes = he.serializeSecretKey(key);
  const recipients = [...new Set(init.config.members.filter((m) => m !== init.peerId))];
  const boxes = recipients.map((m) =>
    he.sealKeyFor({ recipientPeerId: m, secretKey: bytes, keyId: key.keyId, epoch: 0, holderKey: init.identity }));
  // The holder seals for exactly the configured members (itself aside), one box each, under its own signature.
  const sealedFor = boxes.map((b) => he.verifySealedKey(b, init.peerId).recipient).sort();
  if (sealedFor.length !== recipients.length || sealedFor.some((r, i) => r !== [...recipients].sort()[i])) {
    throw new FedtwinError('NODE_INTERNAL', 'the sealed boxes do not match the configured members', { hint: 'internal: publish() seals one box per configured member' });
  }
  await init.io.publish(key.keyId, 0, boxes);
  init.logger.info({ event: 'he-key-published', keyId: key.keyId, members: boxes.length }, `sealed the HE key for ${boxes.length} member(s) and handed the boxes to the aggregator`);
}

// ---------------------------------------------------------------------------------------------
// Key epochs: the highest key epoch this member accepted, kept beside the key files (0600, outlives a wiped
// state). The holder's signature makes a box authentic but not fresh: an aggregator can serve a member an old
// box the holder really signed (a retired key, which a removed member may still hold). So a member refuses a
// box of an older epoch, or of another key id at an epoch it has already accepted, and encrypts only under
// the key of its highest epoch.

export const KEY_EPOCHS_FILE = 'epochs.json';

export interface KeyEpochs {
  readonly highest: { epoch: number; keyId: string } | undefined;
  epochOf(keyId: string): number | undefined;
  /** Records (keyId, epoch) durably, or throws NODE_KEY_REPLAYED for an older epoch or another key at an epoch ≤ the highest. */
  accept(keyId: string, epoch: number): Promise<void>;
}

function replayed(keyId: string, epoch: number | undefined, highest: { epoch: number; keyId: string }): FedtwinError {
  return new FedtwinError('NODE_KEY_REPLAYED', `HE key ${keyId.slice(0, 16)}… (epoch ${epoch ?? 'unknown'}) is not newer than key ${highest.keyId.slice(0, 16)}… (epoch ${highest.epoch}), which this member already accepted`, {
    hint: 'the aggregator served a retired or conflicting sealed key; keep this member\'s logs as evidence and alert the consortium',
    details: { offeredKeyId: keyId, offeredEpoch: epoch ?? null, acceptedKeyId: highest.keyId, acceptedEpoch: highest.epoch },
  });
}

interface EpochsFile { v: 1; highest: { epoch: number; keyId: string }; keys: Record<string, number> }

export async function openKeyEpochs(path: string): Promise<KeyEpochs> {
  let rec: EpochsFile | undefined;
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new FedtwinError('NODE_STATE_IO', `cannot read the key-epochs file ${path}: ${err.message}`, { hint: 'check the file\'s permissions' });
  });
  if (text !== undefined) {
    try {
      const r = JSON.parse(text) as EpochsFile;
      const ok = r?.v === 1 && Number.isSafeInteger(r.highest?.epoch) && r.highest.epoch >= 0 && typeof r.highest.keyId === 'string'
        && r.keys && typeof r.keys === 'object' && Object.values(r.keys).every((e) => Number.isSafeInteger(e) && e >= 0 && e <= r.highest.epoch);
      if (!ok) throw new Error('bad shape');
      rec = r;
    } catch {
      throw new FedtwinError('NODE_STATE_CORRUPT', `key-epochs file ${path} is damaged`, { hint: 'restore it from backup (deleting it lets an aggregator replay a retired key to this member)' });
    }
  }
  const save = async (next: EpochsFile): Promise<void> => {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp`;
    const f = await open(tmp, 'w', 0o600);
    try {
      await f.chmod(0o600);
      await f.writeFile(JSON.stringify(next));
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, path);
  };
  return {
    get highest() { return rec ? { ...rec.highest } : undefined; },
    epochOf: (keyId) => rec?.keys[keyId],
    async accept(keyId, epoch) {
      if (!Number.isSafeInteger(epoch) || epoch < 0) throw new FedtwinError('NODE_KEY_REPLAYED', `HE key epoch ${epoch} is invalid`);
      if (rec) {
        if (epoch < rec.highest.epoch || (epoch === rec.highest.epoch && keyId !== rec.highest.keyId)) throw replayed(keyId, epoch, rec.highest);
        if (epoch === rec.highest.epoch) return; // the same key again
      }
      await save({ v: 1, highest: { epoch, keyId }, keys: { ...(rec?.keys ?? {}), [keyId]: epoch } });
      rec = { v: 1, highest: { epoch, keyId }, keys: { ...(rec?.keys ?? {}), [keyId]: epoch } };
    },
  };
}

/**
 * A member upgraded from a version without the epochs file holds a key of unknown epoch: its own sealed box
 * (the aggregator holds it, since it announced this key id) carries the epoch under the holder's signature.
 */
async function recordEpochOfCurrent(he: He, key: HeKey, init: Parameters<typeof bfvMember>[0], epochs: KeyEpochs, required: boolean): Promise<void> {
  let why = 'the aggregator holds no sealed copy of it for this member';
  try {
    const r = await init.io.fetchKey();
    if (r.status === 'ready' && r.keyId === key.keyId && r.sealed) {
      const opened = he.openSealedKey({ sealed: r.sealed, recipientKey: init.identity, expectedHolder: init.config.keyHolder, expectedKeyId: key.keyId });
      await epochs.accept(opened.keyId, opened.epoch);
      init.logger.info({ event: 'he-key-epoch-recorded', keyId: key.keyId, epoch: opened.epoch }, `recorded HE key epoch ${opened.epoch}`);
      return;
    }
  } catch (err) {
    if ((err as FedtwinError).code === 'NODE_KEY_REPLAYED') throw err;
    why = String(err);
  }
  if (required) {
    // This member accepted a key of known epoch, and the key file now holds another whose epoch nothing vouches for.
    const h = epochs.highest!;
    throw new FedtwinError('NODE_KEY_REPLAYED', `the key file holds HE key ${key.keyId.slice(0, 16)}… of unknown epoch, and this member accepted key ${h.keyId.slice(0, 16)}… (epoch ${h.epoch}): ${why}`, {
      hint: 'restore the key file of the newest key, or have the key holder re-publish its sealed copy',
      details: { offeredKeyId: key.keyId, offeredEpoch: null, acceptedKeyId: h.keyId, acceptedEpoch: h.epoch },
    });
  }
  init.logger.warn({ event: 'he-key-epoch-unknown', reason: why }, 'could not learn the epoch of the current HE key; it is recorded with the next key accepted');
}
