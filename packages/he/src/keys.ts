// Secret keys: generation, a stable key id, serialization, and 0600 key files.
import { createHash } from 'node:crypto';
import { chmod, open, rename, stat, unlink } from 'node:fs/promises';
import { FedtwinError } from '@fedtwin/errors';
import type { HeContext, KeyState } from './context.ts';
import { SEAL_PT_DATA_OFFSET } from './context.ts';
import type { HeParams } from './params.ts';
import { sealCall } from './seal.ts';

/** A member's HE secret key with the parameters it belongs to. Plain data: can cross worker threads. */
export interface HeSecretKey {
  params: HeParams;
  /** Hex parameters id of the context the key was made for. */
  paramsId: string;
  /** Hex key id: H(tag ‖ paramsId ‖ H(tag' ‖ secret key)), public, identifies the key without revealing it. */
  keyId: string;
  /** SEAL's serialization of the secret key (compression none). Secret. */
  sealKey: Uint8Array;
}

/** What everyone (the aggregator included) may know about the consortium key. */
export interface HePublicInfo {
  params: HeParams;
  paramsId: string;
  keyId: string;
}

const KEY_MAGIC = 0x4b535446; // "FTSK"
const KEY_VERSION = 1;
const MAX_KEY_FILE_BYTES = 1 << 20;

export function computeKeyId(paramsIdHex: string, sealKey: Uint8Array): string {
  const commit = createHash('sha256').update('fedtwin/he/sk-commit/v1\0').update(sealKey).digest();
  return createHash('sha256').update('fedtwin/he/key-id/v1\0').update(Buffer.from(paramsIdHex, 'hex')).update(commit).digest('hex');
}

/** Generates a fresh secret key for ctx (SEAL: ternary secret, OS randomness via SEAL's PRNG seeding). */
export function generateKeys(ctx: HeContext): HeSecretKey {
  const kg = new ctx.seal.KeyGenerator(ctx.sealContext);
  const sk = kg.secretKey();
  const sealKey = new Uint8Array(sk.saveToArray(ctx.seal.ComprModeType.none) as Uint8Array);
  sk.delete();
  kg.delete();
  return { params: { ...ctx.params }, paramsId: ctx.paramsIdHex, keyId: computeKeyId(ctx.paramsIdHex, sealKey), sealKey };
}

export function publicInfo(sk: HeSecretKey): HePublicInfo {
  return { params: { ...sk.params }, paramsId: sk.paramsId, keyId: sk.keyId };
}

/** Checks the key belongs to ctx and matches its id (SEAL parses it once); cached per context. */
export function keyState(ctx: HeContext, key: HeSecretKey): KeyState {
  if (key.paramsId !== ctx.paramsIdHex) {
    throw new FedtwinError('HE_KEY_MISMATCH', 'secret key was generated for other HE parameters', {
      hint: 'create the context from the key: createHeContext(key.params)',
      details: { keyParamsId: key.paramsId, contextParamsId: ctx.paramsIdHex },
    });
  }
  const cached = ctx.keys.get(key.keyId);
  if (cached) return cached;
  if (!(key.sealKey instanceof Uint8Array) || key.sealKey.length !== SEAL_PT_DATA_OFFSET + ctx.slotCount * 8) {
    throw new FedtwinError('HE_KEY_INVALID', 'secret key bytes have the wrong size', { hint: 'the key file is damaged; restore it from backup' });
  }
  if (computeKeyId(key.paramsId, key.sealKey) !== key.keyId) {
    throw new FedtwinError('HE_KEY_INVALID', 'secret key does not match its key id', { hint: 'the key was altered; restore it from backup' });
  }
  const { seal, sealContext } = ctx;
  const sk = new seal.SecretKey();
  sealCall('HE_KEY_INVALID', 'SEAL rejected the secret key', () => sk.loadFromArray(sealContext, key.sealKey));
  sk.delete();
  const state: KeyState = { keyId: key.keyId };
  ctx.keys.set(key.keyId, state);
  return state;
}

/** Binary form: "FTSK" | version u8 | 3 reserved | u32 len + params JSON | 32 paramsId | u32 len + SEAL key. */
export function serializeSecretKey(key: HeSecretKey): Uint8Array {
  const params = Buffer.from(JSON.stringify(key.params), 'utf8');
  const out = Buffer.alloc(8 + 4 + params.length + 32 + 4 + key.sealKey.length);
  out.writeUInt32LE(KEY_MAGIC, 0);
  out.writeUInt8(KEY_VERSION, 4);
  let o = 8;
  out.writeUInt32LE(params.length, o);
  params.copy(out, o + 4);
  o += 4 + params.length;
  Buffer.from(key.paramsId, 'hex').copy(out, o);
  o += 32;
  out.writeUInt32LE(key.sealKey.length, o);
  out.set(key.sealKey, o + 4);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function invalidKey(message: string): never {
  throw new FedtwinError('HE_KEY_INVALID', message, { hint: 'the key file is damaged or not a fedtwin HE key' });
}

export function deserializeSecretKey(bytes: Uint8Array): HeSecretKey {
  if (!(bytes instanceof Uint8Array) || bytes.length < 48 || bytes.length > MAX_KEY_FILE_BYTES) invalidKey('secret key has an impossible size');
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.readUInt32LE(0) !== KEY_MAGIC) invalidKey('not a fedtwin HE secret key (bad magic)');
  if (b.readUInt8(4) !== KEY_VERSION) invalidKey(`unsupported key version ${b.readUInt8(4)}`);
  let o = 8;
  const pLen = b.readUInt32LE(o);
  if (pLen > 4096 || o + 4 + pLen + 36 > b.length) invalidKey('secret key parameters section is truncated');
  let params: HeParams;
  try {
    params = JSON.parse(b.subarray(o + 4, o + 4 + pLen).toString('utf8')) as HeParams;
  } catch {
    invalidKey('secret key parameters are not JSON');
  }
  if (params === null || typeof params !== 'object' || params.scheme !== 'bfv') invalidKey('secret key parameters are not fedtwin BFV parameters');
  o += 4 + pLen;
  const paramsId = b.subarray(o, o + 32).toString('hex');
  o += 32;
  const sLen = b.readUInt32LE(o);
  if (o + 4 + sLen !== b.length) invalidKey('secret key body has the wrong length');
  const sealKey = new Uint8Array(b.subarray(o + 4, o + 4 + sLen));
  return { params, paramsId, keyId: computeKeyId(paramsId, sealKey), sealKey };
}

/** Writes the key readable by the owner only (0600), atomically (temp file + rename). */
export async function saveSecretKeyFile(path: string, key: HeSecretKey): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(serializeSecretKey(key));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, 0o600); // open()'s mode is ignored when the temp file already existed
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Loads a key file; refuses files that group or others can read or write. */
export async function loadSecretKeyFile(path: string): Promise<HeSecretKey> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new FedtwinError('HE_KEY_FILE_NOT_FOUND', `cannot read HE key file ${path}`, { hint: 'check the path, or generate a key first', cause: err });
  }
  if (!st.isFile()) throw new FedtwinError('HE_KEY_INVALID', `${path} is not a regular file`, { hint: 'point to the key file itself' });
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new FedtwinError('HE_KEY_FILE_PERMISSIONS', `HE key file ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)})`, {
      hint: `restrict it to its owner: chmod 600 ${path}`,
      details: { mode: st.mode & 0o777 },
    });
  }
  if (st.size > MAX_KEY_FILE_BYTES) invalidKey(`${path} is too large to be an HE key (${st.size} bytes)`);
  const fh = await open(path, 'r');
  try {
    return deserializeSecretKey(new Uint8Array(await fh.readFile()));
  } finally {
    await fh.close();
  }
}
