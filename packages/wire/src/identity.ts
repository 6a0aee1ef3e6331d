import { randomBytes } from 'node:crypto';
import { open, rename, stat, readFile, unlink, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Ed25519PrivateKey, PrivateKey } from '@libp2p/interface';
import { FedtwinError } from '@fedtwin/errors';
import { WIRE_CODES } from './codes.ts';

/**
 * A key file that group or others can read or write: refused at load, like an HE key file. Stable code;
 * it lives here rather than in WIRE_CODES (codes.ts) only until that file is free to edit.
 */
export const IDENTITY_INSECURE_PERMISSIONS = 'WIRE_IDENTITY_INSECURE_PERMISSIONS' as const;

/** An Ed25519 protobuf key is 68 bytes; anything much larger is not one of ours. */
const MAX_IDENTITY_FILE_BYTES = 4096;

/** A fresh Ed25519 identity: the node's libp2p key, also used to sign fedtwin headers. */
export async function generateIdentity(): Promise<Ed25519PrivateKey> {
  return generateKeyPair('Ed25519');
}

/** The peer ID string (12D3KooW...) of a private key. */
export function peerIdOf(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString();
}

/**
 * Persist a key as libp2p protobuf, mode 0600, atomically (tmp file + fsync + rename), so a
 * crash leaves either the old identity or the new one, never a torn file.
 */
export async function saveIdentity(file: string, key: PrivateKey): Promise<void> {
  if (key.type !== 'Ed25519') {
    throw new FedtwinError(WIRE_CODES.IDENTITY_WRONG_TYPE, `refusing to save a ${key.type} key: fedtwin identities are Ed25519`, {
      hint: 'Create the key with generateIdentity().',
    });
  }
  const bytes = privateKeyToProtobuf(key);
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new FedtwinError(WIRE_CODES.IDENTITY_WRITE_FAILED, `cannot write identity file ${file}: ${(e as Error).message}`, {
      hint: 'Check that the directory exists and is writable by this user.',
      cause: e,
    });
  }
  // Make the rename durable too; best effort because some filesystems refuse to fsync a directory.
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // not fatal: the file itself is already synced
  }
}

/**
 * Load an identity written by saveIdentity, with a distinct error code for each way it can fail.
 * A file with any group/other permission bit is refused before it is read (as HE key files are):
 * whoever can read it can speak as this member.
 */
export async function loadIdentity(file: string): Promise<Ed25519PrivateKey> {
  let bytes: Uint8Array;
  try {
    const st = await stat(file);
    if (!st.isFile()) {
      throw new FedtwinError(WIRE_CODES.IDENTITY_UNREADABLE, `identity path ${file} is not a regular file`, {
        hint: 'Point the config at the key file itself.',
      });
    }
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      const mode = st.mode & 0o777;
      throw new FedtwinError(IDENTITY_INSECURE_PERMISSIONS, `identity file ${file} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')})`, {
        hint: `restrict it to its owner: chmod 600 ${file}`,
        details: { mode },
      });
    }
    if (st.size > MAX_IDENTITY_FILE_BYTES) {
      throw new FedtwinError(WIRE_CODES.IDENTITY_CORRUPT, `identity file ${file} is ${st.size} bytes, too large to be an Ed25519 key`, {
        hint: 'The path probably points at the wrong file; fedtwin key files are under 100 bytes.',
      });
    }
    bytes = await readFile(file);
  } catch (e) {
    if (e instanceof FedtwinError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new FedtwinError(WIRE_CODES.IDENTITY_MISSING, `identity file ${file} does not exist`, {
        hint: 'Create one first (generateIdentity + saveIdentity, or `fedtwin keygen`).',
        cause: e,
      });
    }
    throw new FedtwinError(WIRE_CODES.IDENTITY_UNREADABLE, `cannot read identity file ${file}: ${(e as Error).message}`, {
      hint: 'Check the file permissions (it should be owned by this user, mode 0600).',
      cause: e,
    });
  }
  let key: PrivateKey;
  try {
    key = privateKeyFromProtobuf(bytes);
  } catch (e) {
    throw new FedtwinError(WIRE_CODES.IDENTITY_CORRUPT, `identity file ${file} is not a valid libp2p private key: ${(e as Error).message}`, {
      hint: 'Restore the file from backup; generating a new key changes this peer ID and the consortium allowlist must be updated.',
      cause: e,
    });
  }
  if (key.type !== 'Ed25519') {
    throw new FedtwinError(WIRE_CODES.IDENTITY_WRONG_TYPE, `identity file ${file} holds a ${key.type} key; fedtwin needs Ed25519`, {
      hint: 'Generate an Ed25519 identity with generateIdentity().',
    });
  }
  return key;
}
